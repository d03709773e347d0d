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
 *   bitcoin_psbt  a PSBT (base64); not supported yet (`intent_not_supported`)
 *
 * intent_hash = SHA-256 over the tag `floe/intent/v1` and the length-prefixed fields
 * (type, canonical payload, tweak or empty): what attempt ids and stewards' approvals bind.
 */
import { taggedFieldsHash, utf8 } from '../crypto/hash.js';
import { fromHex, toHex } from '../crypto/hex.js';
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
  | { type: 'bitcoin_psbt'; psbt: string };

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
    };

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
export function resolveIntent(intent: Intent, o: { xOnlyKey: Uint8Array }): ResolvedIntent {
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
      throw new FloeError('intent_not_supported', 'bitcoin_psbt intents are not supported yet', {
        hint: 'sign the BIP-341 sighash as a message intent meanwhile',
      });
    default:
      throw new FloeError('invalid_request', 'unknown intent type');
  }
}

function intentHash(type: IntentType, payload: Uint8Array, tweak: Uint8Array | null = null): Uint8Array {
  return taggedFieldsHash(INTENT_HASH_TAG, [utf8(type), payload, tweak ?? new Uint8Array(0)]);
}
