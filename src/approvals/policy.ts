/**
 * Steward approval policies (DESIGN §13): which Nostr keys (stewards) must approve a key's
 * signatures, how many of them, whether one rejection vetoes, how long they have, for which
 * intents, and which second-factor devices they hold. Pure: the coordinator and every signer
 * normalize, hash and apply a policy with these same functions.
 *
 * A key holds a {@link PolicyState}: its policy (or none) and a revision that only ever grows.
 * The state's hash binds the key id, the revision and the canonical policy; it is what every
 * signer certifies at key creation (DKG transcript, import certificate) and what stewards
 * approve when the policy changes, so an old approval can never be replayed onto a later state.
 */
import { ECDH } from 'node:crypto';
import { npubDecode } from '../crypto/bech32.js';
import { parsePoint } from '../crypto/group.js';
import { taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { fromHex, toHex } from '../crypto/hex.js';
import type { IntentView } from '../domain/intent.js';
import { FloeError } from '../protocol/errors.js';

export const MAX_STEWARDS = 32;
export const MAX_DEVICES_PER_STEWARD = 4;
export const MAX_REQUIRED_KINDS = 64;
/** The longest a session may wait for its stewards: 30 days. */
export const MAX_EXPIRES_IN_S = 30 * 86_400;
export const DEFAULT_EXPIRES_IN_S = 3600;
/** 21 million BTC in satoshis. */
export const MAX_SATS = 2_100_000_000_000_000;

export const POLICY_STATE_TAG = 'floe/approval-policy/v1';

/** Which intents need the stewards. Absent (null): every intent. */
export interface RequiredFor {
  /** Nostr events of these kinds. */
  nostr_kinds?: number[];
  /** Bitcoin PSBTs with a non-change output above this many satoshis. */
  bitcoin_output_above_sat?: number;
}

/** A normalized policy: stewards as sorted x-only hex, devices as sorted compressed P-256 hex. */
export interface ApprovalPolicy {
  stewards: string[];
  threshold: number;
  veto: boolean;
  expires_in_s: number;
  required_for: RequiredFor | null;
  /** Steward (x-only hex) → its registered P-256 device keys (33-byte compressed SEC1, hex). */
  devices: Record<string, string[]>;
  /** Every decision must carry a signature by one of the steward's registered devices. */
  require_device: boolean;
}

/** What a key holds: its policy (null: none) and the revision, 0 at creation, +1 per change. */
export interface PolicyState {
  revision: number;
  policy: ApprovalPolicy | null;
}

/** A policy as a person writes it: stewards as npub or hex, optional members defaulted. */
export interface ApprovalPolicyInput {
  stewards: readonly string[];
  threshold: number;
  veto?: boolean;
  expires_in_s?: number;
  required_for?: RequiredFor | null;
  devices?: Readonly<Record<string, readonly string[]>>;
  require_device?: boolean;
}

export const NO_POLICY: PolicyState = Object.freeze({ revision: 0, policy: null }) as PolicyState;

function invalid(detail: string, hint?: string): FloeError {
  return new FloeError('approval_policy_invalid', detail, hint ? { hint } : {});
}

const HEX32 = /^[0-9a-fA-F]{64}$/;
const HEX_SEC1 = /^(?:0[23][0-9a-fA-F]{64}|04[0-9a-fA-F]{128})$/;

/** A steward's key as x-only lower-case hex, from an npub or 64 hex digits; a point on the curve. */
export function stewardKey(s: unknown, what = 'steward'): string {
  if (typeof s !== 'string') throw invalid(`${what}: expected an npub or 64 hex digits`);
  let x: Uint8Array;
  if (s.startsWith('npub1')) {
    try {
      x = npubDecode(s);
    } catch {
      throw invalid(`${what}: not a valid npub`);
    }
  } else if (HEX32.test(s)) {
    x = fromHex(s.toLowerCase(), what, 32);
  } else {
    throw invalid(`${what}: expected an npub or 64 hex digits`);
  }
  try {
    parsePoint(Uint8Array.of(2, ...x), what);
  } catch {
    throw invalid(`${what}: not a key on secp256k1`);
  }
  return toHex(x);
}

/**
 * A P-256 device key as 33-byte compressed SEC1 hex, from compressed or uncompressed SEC1 hex;
 * the point must be on the curve.
 */
export function deviceKey(s: unknown, what = 'device key'): string {
  if (typeof s !== 'string' || !HEX_SEC1.test(s)) {
    throw invalid(`${what}: expected a P-256 public key, SEC1 hex (33 or 65 bytes)`);
  }
  try {
    return ECDH.convertKey(s.toLowerCase(), 'prime256v1', 'hex', 'hex', 'compressed') as string;
  } catch {
    throw invalid(`${what}: not a point on P-256`);
  }
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(`${what}: expected an integer from ${min} to ${max}`);
  }
  return v;
}

function bool(v: unknown, what: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalid(`${what}: expected true or false`);
  return v;
}

function requiredFor(v: unknown): RequiredFor | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid('required_for: expected an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'nostr_kinds' && k !== 'bitcoin_output_above_sat') {
      throw invalid(
        `required_for: unknown member ${JSON.stringify(k.slice(0, 40))}`,
        'required_for takes nostr_kinds and bitcoin_output_above_sat',
      );
    }
  }
  const out: RequiredFor = {};
  if (o.nostr_kinds !== undefined) {
    if (!Array.isArray(o.nostr_kinds) || o.nostr_kinds.length > MAX_REQUIRED_KINDS) {
      throw invalid(`required_for.nostr_kinds: expected at most ${MAX_REQUIRED_KINDS} kinds`);
    }
    const kinds = o.nostr_kinds.map((k, i) => int(k, `required_for.nostr_kinds[${i}]`, 0, 65_535));
    out.nostr_kinds = [...new Set(kinds)].sort((a, b) => a - b);
  }
  if (o.bitcoin_output_above_sat !== undefined) {
    out.bitcoin_output_above_sat = int(
      o.bitcoin_output_above_sat,
      'required_for.bitcoin_output_above_sat',
      0,
      MAX_SATS,
    );
  }
  return out;
}

/**
 * The normalized form of a policy: stewards deduplicated (an npub and its hex are the same
 * steward) and sorted, defaults filled (veto false, expires_in_s 3600, require_device false),
 * device keys compressed and sorted. Idempotent: normalizing a normalized policy changes
 * nothing, so the coordinator, the client and every signer reach the same bytes.
 */
export function normalizePolicy(input: unknown): ApprovalPolicy {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('approval_policy: expected an object');
  }
  const o = input as Record<string, unknown>;
  const known = [
    'stewards',
    'threshold',
    'veto',
    'expires_in_s',
    'required_for',
    'devices',
    'require_device',
  ];
  for (const k of Object.keys(o)) {
    if (!known.includes(k))
      throw invalid(`approval_policy: unknown member ${JSON.stringify(k.slice(0, 40))}`);
  }
  if (!Array.isArray(o.stewards) || o.stewards.length === 0 || o.stewards.length > MAX_STEWARDS) {
    throw invalid(`stewards: expected 1 to ${MAX_STEWARDS} stewards`);
  }
  const stewards = o.stewards.map((s, i) => stewardKey(s, `stewards[${i}]`));
  if (new Set(stewards).size !== stewards.length) throw invalid('stewards: a steward is listed twice');
  stewards.sort();
  const threshold = int(o.threshold, 'threshold', 1, stewards.length);
  const devices: Record<string, string[]> = {};
  if (o.devices !== undefined) {
    if (typeof o.devices !== 'object' || o.devices === null || Array.isArray(o.devices)) {
      throw invalid('devices: expected an object of steward → device keys');
    }
    for (const [who, list] of Object.entries(o.devices as Record<string, unknown>)) {
      const steward = stewardKey(who, 'devices: steward');
      if (!stewards.includes(steward)) throw invalid('devices: names a key that is not a steward');
      if (devices[steward]) throw invalid('devices: a steward is listed twice');
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_DEVICES_PER_STEWARD) {
        throw invalid(`devices: 1 to ${MAX_DEVICES_PER_STEWARD} device keys per steward`);
      }
      const keys = [...new Set(list.map((k, i) => deviceKey(k, `devices[${steward.slice(0, 8)}…][${i}]`)))];
      devices[steward] = keys.sort();
    }
  }
  const requireDevice = bool(o.require_device, 'require_device', false);
  if (requireDevice) {
    const without = stewards.filter((s) => !devices[s]);
    // A steward who can never prove a decision cannot count towards the quorum.
    if (stewards.length - without.length < threshold) {
      throw invalid(
        'require_device: fewer stewards with a registered device than the threshold',
        'register a device key for each steward under devices',
      );
    }
  }
  const sortedDevices: Record<string, string[]> = {};
  for (const s of Object.keys(devices).sort()) sortedDevices[s] = devices[s]!;
  return {
    stewards,
    threshold,
    veto: bool(o.veto, 'veto', false),
    expires_in_s: int(o.expires_in_s ?? DEFAULT_EXPIRES_IN_S, 'expires_in_s', 1, MAX_EXPIRES_IN_S),
    required_for: requiredFor(o.required_for),
    devices: sortedDevices,
    require_device: requireDevice,
  };
}

/** The canonical JSON of a normalized policy (members in a fixed order): what its hash covers. */
export function canonicalPolicyJson(p: ApprovalPolicy): string {
  const rf = p.required_for;
  return JSON.stringify({
    stewards: p.stewards,
    threshold: p.threshold,
    veto: p.veto,
    expires_in_s: p.expires_in_s,
    required_for:
      rf === null
        ? null
        : {
            ...(rf.nostr_kinds !== undefined ? { nostr_kinds: rf.nostr_kinds } : {}),
            ...(rf.bitcoin_output_above_sat !== undefined
              ? { bitcoin_output_above_sat: rf.bitcoin_output_above_sat }
              : {}),
          },
    devices: Object.fromEntries(Object.keys(p.devices).map((s) => [s, p.devices[s]])),
    require_device: p.require_device,
  });
}

/** A state from its parts, the policy normalized. */
export function policyState(revision: number, policy: unknown): PolicyState {
  return {
    revision: int(revision, 'revision', 0, 0xffffffff),
    policy: policy === null || policy === undefined ? null : normalizePolicy(policy),
  };
}

/**
 * The state's hash: SHA-256 over the tag `floe/approval-policy/v1` and the length-prefixed
 * key id (UTF-8), revision (u32 BE) and canonical policy JSON (UTF-8; empty for none).
 */
export function policyStateHash(keyId: string, s: PolicyState): Uint8Array {
  return taggedFieldsHash(POLICY_STATE_TAG, [
    utf8(keyId),
    u32be(s.revision),
    s.policy ? utf8(canonicalPolicyJson(s.policy)) : new Uint8Array(0),
  ]);
}

export const policyStateHashHex = (keyId: string, s: PolicyState): string => toHex(policyStateHash(keyId, s));

/** The stored form of a state (the signer's SQLite column, the coordinator's JSONB). */
export function encodePolicyState(s: PolicyState): string {
  return JSON.stringify({
    revision: s.revision,
    policy: s.policy ? JSON.parse(canonicalPolicyJson(s.policy)) : null,
  });
}

/** Parse a stored state; anything but a normalized state is refused (`approval_policy_invalid`). */
export function decodePolicyState(json: unknown): PolicyState {
  const v = typeof json === 'string' ? (JSON.parse(json) as unknown) : json;
  if (typeof v !== 'object' || v === null) throw invalid('policy state: expected an object');
  const o = v as { revision?: unknown; policy?: unknown };
  const s = policyState(o.revision as number, o.policy);
  if (s.policy && canonicalPolicyJson(s.policy) !== JSON.stringify(o.policy)) {
    throw invalid('policy state: the stored policy is not in normal form');
  }
  return s;
}

/**
 * What a policy is shown of a PSBT (src/bitcoin/psbt.ts PsbtView): its outputs, each with its
 * value and whether it is change. A PSBT intent whose view lacks them counts as above any limit.
 */
export interface PsbtSubject {
  type: 'bitcoin_psbt';
  outputs?: readonly { value: number; change?: boolean }[];
}

export type ApprovalSubject = IntentView | PsbtSubject;

/**
 * Whether a session of this intent needs the stewards (pure; both the coordinator's gate and
 * every signer call it). Without `required_for` every intent does. With it, a Nostr event
 * does when its kind is listed, a PSBT when a non-change output exceeds the limit; a bare
 * digest always does: it could be any event id or sighash, so nothing narrower is provable.
 */
export function policyApplies(p: ApprovalPolicy, subject: ApprovalSubject): boolean {
  const rf = p.required_for;
  if (rf === null) return true;
  switch (subject.type) {
    case 'message':
      return true;
    case 'nostr_event':
      return rf.nostr_kinds?.includes(subject.kind) ?? false;
    case 'bitcoin_psbt': {
      const limit = rf.bitcoin_output_above_sat;
      if (limit === undefined) return false;
      if (!Array.isArray(subject.outputs)) return true;
      return subject.outputs.some((o) => !o.change && !(o.value <= limit));
    }
    default:
      // An intent this version cannot read: fail closed.
      return true;
  }
}

/**
 * What a key's members certify about its policy at creation (DKG transcript, import box and
 * certificate): the state's hash, or nothing for a key without a policy (so those keys keep
 * the transcripts and certificates they had before policies existed).
 */
export function creationPolicyHash(keyId: string, s: PolicyState | null | undefined): Uint8Array | undefined {
  return s?.policy ? policyStateHash(keyId, s) : undefined;
}
