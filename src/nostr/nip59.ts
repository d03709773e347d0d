/**
 * NIP-59 gift wrap: a rumor (an unsigned event with its id) is sealed (kind 13, signed by the
 * author, NIP-44 to the recipient) and the seal is wrapped (kind 1059, signed by a one-time
 * key, NIP-44 to the recipient, p-tagged). Seal and wrap carry a `created_at` drawn up to two
 * days in the past so relays cannot time the message.
 *
 * Keys are Floe's own identities held in memory (the coordinator's Nostr identity, DESIGN §14)
 * or any `NodeIdentity` (sign + ECDH), so a key kept in an HSM works the same; ECDH goes
 * through `src/crypto/identity.ts`, never a curve library here.
 */
import { randomInt } from 'node:crypto';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { FloeError } from '../protocol/errors.js';
import {
  checkUnsignedEvent,
  type EventTemplate,
  eventError,
  eventHash,
  eventId,
  type NostrEvent,
  nowSeconds,
  type UnsignedEvent,
  validateEvent,
  withSignature,
} from './event.js';
import * as nip44 from './nip44.js';

export const SEAL_KIND = 13;
export const GIFT_WRAP_KIND = 1059;
/** How far back seal and wrap timestamps are drawn (NIP-59: up to two days). */
export const TIMESTAMP_WINDOW_SECONDS = 2 * 24 * 60 * 60;

/** An unsigned event with its id: deniable, since nothing signs it but the seal around it. */
export interface Rumor extends UnsignedEvent {
  id: string;
}

/** A key held in memory (32-byte secret) or a capability to use one. */
export type NostrKey = Uint8Array | NodeIdentity;

const HEX32 = /^[0-9a-f]{64}$/;
const RUMOR_FIELDS = new Set(['id', 'pubkey', 'created_at', 'kind', 'tags', 'content']);

function withIdentity<T>(key: NostrKey, use: (id: NodeIdentity) => T): T {
  if (key instanceof Uint8Array) {
    const id = softwareIdentity(key);
    try {
      return use(id);
    } finally {
      id.dispose();
    }
  }
  return use(key);
}

function pubkeyBytes(hex: string, what: string): Uint8Array {
  if (typeof hex !== 'string' || !HEX32.test(hex)) {
    throw new FloeError('invalid_request', `${what}: expected 32 bytes of lower-case hex`);
  }
  return Buffer.from(hex, 'hex');
}

/** NIP-44 conversation key between `id` and `peer`, through the identity's ECDH. */
function conversationKey(id: NodeIdentity, peer: string, what: string): Uint8Array {
  const x = id.ecdh(pubkeyBytes(peer, what));
  try {
    return nip44.conversationKey(x);
  } finally {
    x.fill(0);
  }
}

function encryptJson(id: NodeIdentity, peer: string, value: unknown): string {
  const ck = conversationKey(id, peer, 'recipient');
  try {
    return nip44.encrypt(JSON.stringify(value), ck);
  } finally {
    ck.fill(0);
  }
}

function decryptJson(id: NodeIdentity, peer: string, payload: string, what: string): unknown {
  const ck = conversationKey(id, peer, `${what}.pubkey`);
  let text: string;
  try {
    text = nip44.decrypt(payload, ck);
  } finally {
    ck.fill(0);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new FloeError('invalid_request', `${what}: content is not JSON`);
  }
}

/** Sign a template with an identity (the author's pubkey is the identity's). */
export function signTemplate(template: EventTemplate, identity: NodeIdentity): NostrEvent {
  const check = checkUnsignedEvent({
    pubkey: identity.publicKeyHex,
    created_at: template.created_at,
    kind: template.kind,
    tags: template.tags,
    content: template.content,
  });
  if (!check.ok) throw eventError(check);
  return withSignature(check.event, identity.sign(eventHash(check.event)));
}

/** A `created_at` drawn uniformly from the last two days (NIP-59). */
export function randomPastTimestamp(now = nowSeconds()): number {
  return now - randomInt(0, TIMESTAMP_WINDOW_SECONDS + 1);
}

/** The rumor of `template` by `author` (hex pubkey): the event with its id, never signed. */
export function createRumor(template: EventTemplate, author: string): Rumor {
  const check = checkUnsignedEvent({
    pubkey: author,
    created_at: template.created_at,
    kind: template.kind,
    tags: template.tags,
    content: template.content,
  });
  if (!check.ok) throw eventError(check);
  return { ...check.event, id: eventId(check.event) };
}

/** Kind 13: the rumor encrypted to `recipient` and signed by its author. */
export function createSeal(
  rumor: Rumor,
  author: NostrKey,
  recipient: string,
  opts: { createdAt?: number } = {},
): NostrEvent {
  return withIdentity(author, (id) => {
    if (rumor.pubkey !== id.publicKeyHex) {
      throw new FloeError('invalid_request', 'rumor.pubkey: must be the sealing key');
    }
    return signTemplate(
      {
        kind: SEAL_KIND,
        created_at: opts.createdAt ?? randomPastTimestamp(),
        tags: [],
        content: encryptJson(id, recipient, rumor),
      },
      id,
    );
  });
}

/** Kind 1059: the seal encrypted to `recipient` by a fresh one-time key, p-tagged. */
export function createWrap(
  seal: NostrEvent,
  recipient: string,
  opts: { createdAt?: number; tags?: string[][] } = {},
): NostrEvent {
  pubkeyBytes(recipient, 'recipient');
  const oneTime = generateIdentityKey();
  try {
    return withIdentity(oneTime, (id) =>
      signTemplate(
        {
          kind: GIFT_WRAP_KIND,
          created_at: opts.createdAt ?? randomPastTimestamp(),
          tags: [['p', recipient], ...(opts.tags ?? [])],
          content: encryptJson(id, recipient, seal),
        },
        id,
      ),
    );
  } finally {
    oneTime.fill(0);
  }
}

/** Rumor → seal → gift wrap of `template` from `author` to `recipient`. */
export function wrapEvent(template: EventTemplate, author: NostrKey, recipient: string): NostrEvent {
  return withIdentity(author, (id) => {
    const rumor = createRumor(template, id.publicKeyHex);
    return createWrap(createSeal(rumor, id, recipient), recipient);
  });
}

function checkRumor(x: unknown): Rumor {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new FloeError('invalid_request', 'rumor: expected an event object');
  }
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    // a signed "rumor" is not deniable and not what NIP-59 seals
    if (!RUMOR_FIELDS.has(k))
      throw new FloeError('invalid_request', 'rumor: unknown field (rumors are unsigned)');
  }
  const { id, ...unsigned } = o;
  const check = checkUnsignedEvent(unsigned);
  if (!check.ok) throw eventError(check);
  if (typeof id !== 'string' || id !== eventId(check.event)) {
    throw new FloeError('invalid_request', 'rumor.id: does not match the hash of the rumor');
  }
  return { ...check.event, id };
}

/**
 * Open a gift wrap addressed to `recipient`: the wrap and the seal must be valid signed
 * events of their kinds, and the rumor must claim the seal's author (the seal's signature is
 * the only proof of authorship). Returns the rumor, whose pubkey is the seal's author.
 */
export function unwrapEvent(wrap: NostrEvent, recipient: NostrKey): Rumor {
  const w = validateEvent(wrap);
  if (!w.ok) throw eventError(w);
  if (w.event.kind !== GIFT_WRAP_KIND) {
    throw new FloeError('invalid_request', `gift wrap: expected kind ${GIFT_WRAP_KIND}`);
  }
  return withIdentity(recipient, (id) => {
    const s = validateEvent(decryptJson(id, w.event.pubkey, w.event.content, 'gift wrap'));
    if (!s.ok) throw eventError(s);
    const seal = s.event;
    if (seal.kind !== SEAL_KIND) throw new FloeError('invalid_request', `seal: expected kind ${SEAL_KIND}`);
    const rumor = checkRumor(decryptJson(id, seal.pubkey, seal.content, 'seal'));
    if (rumor.pubkey !== seal.pubkey) {
      throw new FloeError('invalid_request', "rumor.pubkey: is not the seal's author");
    }
    return rumor;
  });
}
