/**
 * Signing intents (DESIGN §12): what a session signs, never a bare hash chosen by the caller
 * alone. The coordinator stores the intent with the session and sends it in `sign.open`;
 * every signer resolves it again itself (digest, intent hash, per-session tweak) and shows
 * its policy the decoded intent, so a coordinator cannot make a signer sign something other
 * than what the intent says.
 *
 *   message       a 32-byte digest the caller vouches for (the behaviour before intents)
 *   nostr_event   an unsigned NIP-01 event; its pubkey is the key's x-only key and its id
 *                 (the digest) is computed here, never supplied
 *   bitcoin_psbt  a PSBT (base64) for a network: every unsigned Taproot key-path input of the key
 *                 (its own output key, or a BIP-86 output derived from its root xpub) is one
 *                 digest, its BIP-341 sighash, signed under its own key (a multi-digest intent:
 *                 `digests`); `digest` is then the hash of all of them, what attempt ids bind
 *
 * intent_hash = SHA-256 over the tag `floe/intent/v1` and the length-prefixed fields
 * (type, canonical payload, tweak or empty): what attempt ids and stewards' approvals bind.
 * A PSBT's payload is the network and the PSBT's bytes, length-prefixed.
 */
import { base64 } from '@scure/base';
import { keyRootXpub } from '../bitcoin/derive.js';
import { bitcoinError } from '../bitcoin/errors.js';
import { type NetworkName, networkByName } from '../bitcoin/network.js';
import { type PsbtPlan, type PsbtView, planPsbt, psbtBytes } from '../bitcoin/psbt.js';
import type { TaprootDerivation } from '../crypto/derive-key.js';
import { lengthPrefixed, taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { fromHex, toHex } from '../crypto/hex.js';
import type { PublicKeyPackage } from '../crypto/types.js';
import {
  checkUnsignedEvent,
  eventError,
  eventHash,
  serializeEvent,
  type UnsignedEvent,
} from '../nostr/event.js';
import { FloeError } from '../protocol/errors.js';
import type { IntentType } from './vocabulary.js';

export const INTENT_HASH_TAG = 'floe/intent/v1';

/** A Nostr event as a client asks for it: the pubkey comes from the key, the id is computed. */
export interface NostrEventTemplate {
  kind: number;
  content: string;
  tags: string[][];
  created_at: number;
}

/** The wire form of an intent (stored with the session, carried in `sign.open`). */
export type Intent =
  | { type: 'message'; message: string }
  | { type: 'nostr_event'; event: NostrEventTemplate }
  | { type: 'bitcoin_psbt'; psbt: string; network: NetworkName };

/** What a policy sees: the decoded intent, as a person would read it. */
export type IntentView =
  | { type: 'message'; digest: string }
  | {
      type: 'nostr_event';
      /** The event id (also the digest signed). */
      id: string;
      pubkey: string;
      kind: number;
      content: string;
      tags: string[][];
      created_at: number;
    }
  | ({
      type: 'bitcoin_psbt';
      /** The inputs this session signs, in order (one digest each). */
      signs: number[];
    } & PsbtView); // what the transaction does: inputs, outputs with addresses and amounts, fee

/** One digest of a multi-digest intent (a PSBT input) and the key it is signed under. */
export interface SigningDigest {
  /** The PSBT input it signs. */
  input: number;
  /** The 32-byte message (the input's BIP-341 sighash). */
  digest: Uint8Array;
  /** null: the key as stored; else the derived Taproot key each member computes itself. */
  key: TaprootDerivation | null;
}

/** Most inputs of one key a PSBT session signs (each is a nonce pair on every signer). */
export const MAX_SIGNED_INPUTS = 256;

export interface ResolvedIntent {
  type: IntentType;
  /** The 32-byte digest the group signs. */
  digest: Uint8Array;
  /** Binds the whole intent: attempt ids and approvals commit to it. */
  intentHash: Uint8Array;
  /**
   * Per-session tweak each signer adds to its key package before signing (a derived key:
   * a Bitcoin derivation path or a passphrase key). None of today's intents carries one.
   */
  tweak: Uint8Array | null;
  view: IntentView;
  /**
   * Multi-digest intents (bitcoin_psbt): every digest signed, in input order, each under its own
   * key; absent for single-digest intents (`digest` is then the one signed).
   */
  digests?: SigningDigest[];
  /** bitcoin_psbt: the plan the digests come from (to insert the signatures afterwards). */
  psbt?: PsbtPlan;
}

/** What resolving an intent needs to know about the key (see {@link intentKeyOf}). */
export interface IntentKey {
  /** The 32-byte key the signatures verify under (the key's x-only key). */
  xOnlyKey: Uint8Array;
  /** bitcoin_psbt: the key's stored 33-byte group key (root xpub, chain code). */
  groupKey?: Uint8Array;
  /** bitcoin_psbt: the internal key whose BIP-86 output the stored key is (DKG keys), if any. */
  internalKey?: Uint8Array | null;
}

/** The {@link IntentKey} of a key from its public package: the same on signers and coordinator. */
export function intentKeyOf(pub: PublicKeyPackage): IntentKey {
  const groupKey = pub.commitments[0]!;
  const t = pub.tweak;
  return {
    xOnlyKey: groupKey.subarray(1),
    groupKey,
    internalKey: t.kind === 'taproot' && t.merkleRoot.length === 0 ? t.internalKey : null,
  };
}

/** How far a Nostr event's created_at may be from now, in seconds, unless the caller allows more. */
export const NOSTR_CREATED_AT_SKEW_S = 15 * 60;

/**
 * Structural checks of an event template (src/nostr/event.ts: kind, tags, content, sizes),
 * each with its own stable code (400); `nowS` (Unix seconds) fills a missing created_at and,
 * with `maxSkewS`, bounds it (pass `maxSkewS: null` to accept any time).
 */
export function checkNostrEventTemplate(
  e: { kind: unknown; content: unknown; tags?: unknown; created_at?: unknown },
  o: { nowS: number; maxSkewS: number | null },
): NostrEventTemplate {
  const created = e.created_at ?? o.nowS;
  // The pubkey is the key's (a stand-in of the same length here): only the structure is checked.
  const r = checkUnsignedEvent({
    pubkey: '0'.repeat(64),
    created_at: created,
    kind: e.kind,
    tags: e.tags ?? [],
    content: e.content,
  });
  if (!r.ok) throw eventError(r);
  const t = r.event;
  if (o.maxSkewS !== null && Math.abs(t.created_at - o.nowS) > o.maxSkewS) {
    throw new FloeError(
      'event_created_at_invalid',
      `nostr_event.created_at is more than ${o.maxSkewS} s from now`,
      {
        hint: 'omit created_at to use the current time',
      },
    );
  }
  return { kind: t.kind, content: t.content, tags: t.tags, created_at: t.created_at };
}

/** The unsigned NIP-01 event of a template under a key (x-only hex). */
export function unsignedEvent(t: NostrEventTemplate, xOnlyPubkey: string): UnsignedEvent {
  return { pubkey: xOnlyPubkey, created_at: t.created_at, kind: t.kind, tags: t.tags, content: t.content };
}

/**
 * Resolve an intent for a key whose signatures verify under `xOnlyKey` (32 bytes): the digest,
 * the intent hash and the view. Pure; both the coordinator and every signer call it.
 */
export function resolveIntent(intent: Intent, o: IntentKey): ResolvedIntent {
  switch (intent.type) {
    case 'message': {
      const digest = fromHex(intent.message, 'message', 32);
      return {
        type: 'message',
        digest,
        intentHash: intentHash('message', digest),
        tweak: null,
        view: { type: 'message', digest: intent.message },
      };
    }
    case 'nostr_event': {
      const t = checkNostrEventTemplate(intent.event, { nowS: 0, maxSkewS: null });
      const event = unsignedEvent(t, toHex(o.xOnlyKey));
      const digest = eventHash(event);
      return {
        type: 'nostr_event',
        digest,
        intentHash: intentHash('nostr_event', utf8(serializeEvent(event))),
        tweak: null,
        view: { type: 'nostr_event', id: toHex(digest), ...event },
      };
    }
    case 'bitcoin_psbt':
      return resolvePsbt(intent, o);
    default:
      throw new FloeError('invalid_request', 'unknown intent type');
  }
}

/**
 * A PSBT as this key signs it: planned against the key's own output key and its root xpub
 * (keyRootXpub: the chain code follows from the key), every claim of the PSBT re-derived.
 */
function resolvePsbt(intent: Extract<Intent, { type: 'bitcoin_psbt' }>, o: IntentKey): ResolvedIntent {
  if (!o.groupKey) throw new FloeError('internal', 'a bitcoin_psbt intent needs the key group key');
  const network = networkByName(intent.network);
  const bytes = psbtBytes(intent.psbt);
  const plan = planPsbt(bytes, {
    xpub: keyRootXpub(o.groupKey),
    network,
    own: { outputKey: o.xOnlyKey, ...(o.internalKey ? { internalKey: o.internalKey } : {}) },
  });
  if (plan.spends.length === 0) {
    throw bitcoinError('psbt_no_owned_inputs', 'PSBT: no unsigned Taproot key-path input of this key', {
      hint: "an input is the key's when its witnessUtxo pays to the key's x_only_public_key, or to a BIP-86 address derived from it that tapBip32Derivation names",
    });
  }
  if (plan.spends.length > MAX_SIGNED_INPUTS) {
    throw bitcoinError(
      'psbt_too_many_inputs',
      `PSBT: ${plan.spends.length} inputs of this key; at most ${MAX_SIGNED_INPUTS} per session`,
      { hint: 'split the transaction, or sign it in several sessions of fewer inputs each' },
    );
  }
  const digests: SigningDigest[] = plan.spends.map((sp) => ({
    input: sp.inputIndex,
    digest: sp.sighash,
    key: sp.kind === 'own' ? null : { derivation: sp.derivationTweak, merkleRoot: sp.merkleRoot },
  }));
  return {
    type: 'bitcoin_psbt',
    digest: psbtDigest(digests),
    intentHash: intentHash(
      'bitcoin_psbt',
      lengthPrefixed('floe/intent/bitcoin-psbt/v1', [utf8(network.name), bytes]),
    ),
    tweak: null,
    view: { type: 'bitcoin_psbt', signs: digests.map((d) => d.input), ...plan.view },
    digests,
    psbt: plan,
  };
}

/** The digest of a multi-digest intent: every (input, sighash), in order, under one tag. */
export function psbtDigest(digests: readonly Pick<SigningDigest, 'input' | 'digest'>[]): Uint8Array {
  return taggedFieldsHash(
    'floe/psbt-digests/v1',
    digests.flatMap((d) => [u32be(d.input), d.digest]),
  );
}

/** A PSBT as the coordinator stores it in an intent: base64 of its bytes (whitespace dropped). */
export function canonicalPsbt(psbt: string): string {
  return base64.encode(psbtBytes(psbt));
}

function intentHash(type: IntentType, payload: Uint8Array, tweak: Uint8Array | null = null): Uint8Array {
  return taggedFieldsHash(INTENT_HASH_TAG, [utf8(type), payload, tweak ?? new Uint8Array(0)]);
}
