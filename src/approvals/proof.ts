/**
 * Approval proofs (DESIGN §13): a steward's decision is a Nostr event it signed, kind 30078
 * (NIP-78 application data), never a reply a server interprets. Pure: the coordinator checks
 * each decision as it arrives, and every signer checks the quorum again itself before it
 * releases a share, with these same functions.
 *
 * A decision about a signing session:
 *   ["d", "floe-approval:<session_id>"], ["session", "<session_id>"],
 *   ["intent", "<intent_hash hex>"], ["decision", "approve" | "reject"]
 * A decision about a key's next approval policy (PUT /v1/keys/:id/approval-policy):
 *   ["d", "floe-policy:<key_id>"], ["key", "<key_id>"], ["from", "<current state hash>"],
 *   ["policy", "<next state hash>"], ["decision", "approve" | "reject"]
 * Optional second factor (the seed's NFC tap):
 *   ["device", "<P-256 key, compressed SEC1 hex>", "<ECDSA r‖s hex>", "<created_at>"]
 *
 * Only exactly `approve` approves; any other word is not a decision at all (the system the
 * seed came from counted anything but "rejected" as an approval).
 */
import { createPublicKey, type KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { u64be, utf8 } from '../crypto/hash.js';
import { concatBytes, fromHex } from '../crypto/hex.js';
import type { EventTemplate, NostrEvent } from '../nostr/event.js';
import { validateEvent } from '../nostr/event.js';
import type { ApprovalPolicy } from './policy.js';

/** NIP-78 application-specific data (addressable: a steward's later decision replaces its earlier one on relays). */
export const APPROVAL_KIND = 30078;
export const SESSION_D_PREFIX = 'floe-approval:';
export const POLICY_D_PREFIX = 'floe-policy:';
export const DECISIONS = ['approve', 'reject'] as const;
export type Decision = (typeof DECISIONS)[number];

/** How far in the future a decision's created_at may be (a steward's phone clock). */
export const APPROVAL_CLOCK_SKEW_S = 300;
/**
 * A signer does not know when the coordinator created a session: it accepts decisions at most
 * the policy's `expires_in_s` plus this much old (the time the signing itself may take).
 */
export const SIGNER_GRACE_S = 600;
/** Most decisions one request may carry (to a signer, or to change a policy). */
export const MAX_APPROVAL_EVENTS = 64;
export const DEVICE_MESSAGE_TAG = 'floe-device-approval/v1';

/** Why a decision does not count: a stable reason the API returns as `reason`. */
export const APPROVAL_REFUSALS = [
  'malformed',
  'bad_signature',
  'wrong_kind',
  'wrong_session',
  'wrong_intent',
  'wrong_key',
  'wrong_policy',
  'not_a_decision',
  'not_steward',
  'outside_deadline',
  'device_missing',
  'device_unregistered',
  'device_bad_signature',
  'device_outside_deadline',
] as const;
export type ApprovalRefusal = (typeof APPROVAL_REFUSALS)[number];

/** What a decision is about. */
export type DecisionSubject =
  | { kind: 'session'; sessionId: string; intentHash: string }
  | {
      kind: 'policy';
      keyId: string;
      /** Hash of the key's current policy state (src/approvals/policy.ts policyStateHash). */
      from: string;
      /** Hash of the state asked for. */
      to: string;
    };

/** Inclusive bounds of created_at (Unix seconds) for the decision and its device signature. */
export interface TimeWindow {
  notBefore: number;
  notAfter: number;
}

export interface CheckedDecision {
  steward: string;
  decision: Decision;
  /** The event's created_at (Unix seconds). */
  createdAt: number;
  eventId: string;
  /** The event, reduced to the seven NIP-01 fields. */
  event: NostrEvent;
}

export type DecisionCheck =
  | { ok: true; value: CheckedDecision }
  | { ok: false; reason: ApprovalRefusal; detail: string };

export function dTagOf(s: DecisionSubject): string {
  return s.kind === 'session' ? `${SESSION_D_PREFIX}${s.sessionId}` : `${POLICY_D_PREFIX}${s.keyId}`;
}

function bindingTags(s: DecisionSubject): string[][] {
  return s.kind === 'session'
    ? [
        ['session', s.sessionId],
        ['intent', s.intentHash],
      ]
    : [
        ['key', s.keyId],
        ['from', s.from],
        ['policy', s.to],
      ];
}

/**
 * The bytes a steward's device signs (ECDSA P-256 with SHA-256, so the signed digest is
 * SHA-256 of these bytes):
 *
 *   utf8("floe-device-approval/v1") ‖ u16be(len(subject)) ‖ subject ‖ binding (32 bytes)
 *     ‖ u8(len(decision)) ‖ decision ‖ u64be(created_at)
 *
 * For a session, subject is the session id (UTF-8) and binding the intent hash: the seed's
 * SHA-256(session_id ‖ intent_hash ‖ decision ‖ created_at) with a domain tag and lengths.
 * For a policy change, subject is `floe-policy:<key_id>` and binding the next state's hash.
 */
export function deviceMessage(s: DecisionSubject, decision: Decision, createdAt: number): Uint8Array {
  const subject = utf8(s.kind === 'session' ? s.sessionId : dTagOf(s));
  const binding = fromHex(s.kind === 'session' ? s.intentHash : s.to, 'binding', 32);
  const d = utf8(decision);
  if (subject.length > 0xffff) throw new RangeError('device message: subject too long');
  return concatBytes(
    utf8(DEVICE_MESSAGE_TAG),
    Uint8Array.of(subject.length >> 8, subject.length & 0xff),
    subject,
    binding,
    Uint8Array.of(d.length),
    d,
    u64be(createdAt),
  );
}

// SubjectPublicKeyInfo of a P-256 key: the DER prefix before the SEC1 point (33 or 65 bytes).
const SPKI_P256_COMPRESSED = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
const SPKI_P256_UNCOMPRESSED = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** The node:crypto key of a SEC1 P-256 public key (hex). Throws when it is not one. */
export function deviceKeyObject(sec1Hex: string): KeyObject {
  const point = Buffer.from(sec1Hex, 'hex');
  const prefix =
    point.length === 33 ? SPKI_P256_COMPRESSED : point.length === 65 ? SPKI_P256_UNCOMPRESSED : null;
  if (!prefix) throw new RangeError('device key: expected 33 or 65 bytes');
  return createPublicKey({ key: Buffer.concat([prefix, point]), format: 'der', type: 'spki' });
}

/** ECDSA P-256 / SHA-256 verification of a 64-byte r‖s signature (hex) over `message`. */
export function verifyDeviceSignature(sec1Hex: string, message: Uint8Array, sigHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
  try {
    return nodeVerify(
      'sha256',
      message,
      { key: deviceKeyObject(sec1Hex), dsaEncoding: 'ieee-p1363' },
      Buffer.from(sigHex, 'hex'),
    );
  } catch {
    return false;
  }
}

/** Sign a device message with a P-256 private key (clients and tests: a card or passkey does this). */
export function signDeviceMessage(privateKey: KeyObject, message: Uint8Array): string {
  return nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('hex');
}

/** The unsigned decision event a steward signs. */
export function decisionTemplate(
  s: DecisionSubject,
  decision: Decision,
  o: {
    createdAt: number;
    content?: string;
    device?: { key: string; sig: string; createdAt: number };
  },
): EventTemplate {
  const tags = [['d', dTagOf(s)], ...bindingTags(s), ['decision', decision]];
  if (o.device) tags.push(['device', o.device.key, o.device.sig, String(o.device.createdAt)]);
  return { kind: APPROVAL_KIND, created_at: o.createdAt, tags, content: o.content ?? '' };
}

const refuse = (reason: ApprovalRefusal, detail: string): DecisionCheck => ({ ok: false, reason, detail });

function values(e: { tags: string[][] }, name: string): string[][] {
  return e.tags.filter((t) => t[0] === name);
}

/** Exactly one tag `name`, with exactly this value. */
function single(e: { tags: string[][] }, name: string, want: string): boolean {
  const t = values(e, name);
  return t.length === 1 && t[0]![1] === want;
}

/**
 * Check one steward's decision against a policy: signature, kind, what it is about, the
 * decision word, the steward, the time window and (when present or required) the device.
 */
export function checkDecision(
  event: unknown,
  o: { policy: ApprovalPolicy; subject: DecisionSubject; window: TimeWindow },
): DecisionCheck {
  const v = validateEvent(event);
  if (!v.ok) {
    return v.reason === 'event_sig_invalid' || v.reason === 'event_id_mismatch'
      ? refuse('bad_signature', v.detail)
      : refuse('malformed', v.detail);
  }
  const e = v.event;
  if (e.kind !== APPROVAL_KIND) return refuse('wrong_kind', `expected a kind-${APPROVAL_KIND} event`);
  const s = o.subject;
  if (s.kind === 'session') {
    if (!single(e, 'd', dTagOf(s)) || !single(e, 'session', s.sessionId)) {
      return refuse('wrong_session', 'the event is not about this session (d and session tags)');
    }
    if (!single(e, 'intent', s.intentHash)) {
      return refuse('wrong_intent', "the event's intent tag is not this session's intent hash");
    }
  } else {
    if (!single(e, 'd', dTagOf(s)) || !single(e, 'key', s.keyId)) {
      return refuse('wrong_key', 'the event is not about this key (d and key tags)');
    }
    if (!single(e, 'from', s.from) || !single(e, 'policy', s.to)) {
      return refuse('wrong_policy', "the event's from and policy tags are not this change");
    }
  }
  const d = values(e, 'decision');
  const decision = d.length === 1 ? d[0]![1] : undefined;
  if (decision !== 'approve' && decision !== 'reject') {
    return refuse('not_a_decision', 'expected exactly one decision tag, "approve" or "reject"');
  }
  if (!o.policy.stewards.includes(e.pubkey)) {
    return refuse('not_steward', "the event's author is not a steward of this key's policy");
  }
  const w = o.window;
  if (!(e.created_at >= w.notBefore && e.created_at <= w.notAfter)) {
    return refuse('outside_deadline', 'the decision was made outside the time allowed for it');
  }
  const dev = values(e, 'device');
  if (dev.length > 1) return refuse('malformed', 'more than one device tag');
  if (dev.length === 0) {
    if (o.policy.require_device) {
      return refuse('device_missing', "the policy requires the steward's device signature");
    }
  } else {
    const [, key, sig, at] = dev[0]!;
    if (!key || !(o.policy.devices[e.pubkey] ?? []).includes(key)) {
      return refuse('device_unregistered', 'the device key is not registered for this steward');
    }
    const t = at !== undefined && /^[0-9]{1,15}$/.test(at) ? Number(at) : Number.NaN;
    if (!(t >= w.notBefore && t <= w.notAfter)) {
      return refuse('device_outside_deadline', "the device's timestamp is outside the time allowed");
    }
    if (!sig || !verifyDeviceSignature(key, deviceMessage(s, decision, t), sig)) {
      return refuse('device_bad_signature', "the device's signature does not verify");
    }
  }
  return {
    ok: true,
    value: { steward: e.pubkey, decision, createdAt: e.created_at, eventId: e.id, event: e },
  };
}

export interface Tally {
  approvers: string[];
  rejecters: string[];
  outcome: 'approved' | 'rejected' | 'waiting';
}

/**
 * Count decisions, the first of each steward only. Rejected: with `veto` one rejection is
 * enough; without, once too few stewards are left to reach the threshold. Approved: at least
 * `threshold` stewards approved (and, with veto, none rejected).
 */
export function tally(
  policy: ApprovalPolicy,
  decisions: readonly { steward: string; decision: Decision }[],
): Tally {
  const first = new Map<string, Decision>();
  for (const d of decisions) {
    if (policy.stewards.includes(d.steward) && !first.has(d.steward)) first.set(d.steward, d.decision);
  }
  const approvers = [...first].filter(([, x]) => x === 'approve').map(([s]) => s);
  const rejecters = [...first].filter(([, x]) => x === 'reject').map(([s]) => s);
  const outcome =
    (policy.veto && rejecters.length > 0) || policy.stewards.length - rejecters.length < policy.threshold
      ? 'rejected'
      : approvers.length >= policy.threshold
        ? 'approved'
        : 'waiting';
  return { approvers, rejecters, outcome };
}

export type QuorumCheck =
  | { ok: true; approvers: string[] }
  | { ok: false; detail: string; approvers: string[]; refused: { index: number; reason: ApprovalRefusal }[] };

/**
 * Whether `events` prove the policy's quorum for `subject`: at least `threshold` distinct
 * stewards approved, each event valid on its own, and (with veto) no valid rejection among
 * them. Events that do not check out count for nothing and are reported.
 */
export function proveQuorum(
  events: readonly unknown[],
  o: { policy: ApprovalPolicy; subject: DecisionSubject; window: TimeWindow },
): QuorumCheck {
  const refused: { index: number; reason: ApprovalRefusal }[] = [];
  const valid: CheckedDecision[] = [];
  for (const [index, e] of events.slice(0, MAX_APPROVAL_EVENTS).entries()) {
    const c = checkDecision(e, o);
    if (c.ok) valid.push(c.value);
    else refused.push({ index, reason: c.reason });
  }
  const t = tally(o.policy, valid);
  if (t.outcome === 'approved') return { ok: true, approvers: t.approvers };
  const detail =
    t.outcome === 'rejected'
      ? 'a steward rejected it'
      : `${t.approvers.length} of the ${o.policy.threshold} steward approvals needed are proven`;
  return { ok: false, detail, approvers: t.approvers, refused };
}

/** The window a signer applies at `nowS` (it cannot know the session's deadline). */
export function signerWindow(policy: ApprovalPolicy, nowS: number): TimeWindow {
  return {
    notBefore: nowS - policy.expires_in_s - SIGNER_GRACE_S,
    notAfter: nowS + APPROVAL_CLOCK_SKEW_S,
  };
}
