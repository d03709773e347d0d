/**
 * NIP-01 events: the canonical serialization, the event id, BIP-340 signing and verification,
 * and a structural validator whose refusals are a stable union of codes (`EventRejection`)
 * that the API maps onto its own error codes.
 *
 * Verification goes through `src/crypto/signing.ts` and signing through
 * `src/crypto/identity.ts`, so the curve backend stays behind its seam (DESIGN §10).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { identityPublicKey, signDigest } from '../crypto/identity.js';
import { verifySignature } from '../crypto/signing.js';
import { type ErrorCode, FloeError } from '../protocol/errors.js';

/** An event before its id and signature: what is hashed. */
export interface UnsignedEvent {
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
}

/** A signed NIP-01 event. */
export interface NostrEvent extends UnsignedEvent {
  id: string;
  sig: string;
}

/** What a signer is asked to sign: an event without its author. */
export type EventTemplate = Omit<UnsignedEvent, 'pubkey'>;

/** Stable reasons `checkEvent` / `validateEvent` give for refusing an event. */
export const EVENT_REJECTIONS = [
  'event_not_object',
  'event_field_unknown',
  'event_pubkey_invalid',
  'event_created_at_invalid',
  'event_kind_invalid',
  'event_tags_invalid',
  'event_tags_too_large',
  'event_content_invalid',
  'event_content_too_large',
  'event_too_large',
  'event_id_malformed',
  'event_sig_malformed',
  'event_id_mismatch',
  'event_sig_invalid',
] as const satisfies readonly ErrorCode[];

export type EventRejection = (typeof EVENT_REJECTIONS)[number];

/** Size bounds for an event; every one is checked before anything is hashed. */
export interface EventLimits {
  /** UTF-8 bytes of `content`. */
  maxContentBytes: number;
  /** Number of tags. */
  maxTags: number;
  /** Strings in one tag. */
  maxTagElements: number;
  /** UTF-8 bytes of all tag strings together. */
  maxTagBytes: number;
  /** UTF-8 bytes of the NIP-01 serialization. */
  maxEventBytes: number;
}

/**
 * Defaults sized for large but real events (kind-3 follow lists with thousands of `p` tags),
 * still far below what would let one event exhaust memory.
 */
export const DEFAULT_EVENT_LIMITS: Readonly<EventLimits> = Object.freeze({
  maxContentBytes: 128 * 1024,
  maxTags: 10_000,
  maxTagElements: 64,
  maxTagBytes: 512 * 1024,
  maxEventBytes: 768 * 1024,
});

export type EventCheck<T> = { ok: true; event: T } | { ok: false; reason: EventRejection; detail: string };

/** Ephemeral, replaceable and addressable ranges of NIP-01. */
export type KindClass = 'regular' | 'replaceable' | 'ephemeral' | 'addressable';

export function kindClass(kind: number): KindClass {
  if (kind === 0 || kind === 3 || (kind >= 10_000 && kind < 20_000)) return 'replaceable';
  if (kind >= 20_000 && kind < 30_000) return 'ephemeral';
  if (kind >= 30_000 && kind < 40_000) return 'addressable';
  return 'regular';
}

const HEX32 = /^[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{128}$/;
// A lone UTF-16 surrogate has no UTF-8 form: implementations would hash different bytes.
const LONE_SURROGATE = /\p{Cs}/u;
const UNSIGNED_FIELDS = new Set(['pubkey', 'created_at', 'kind', 'tags', 'content']);
const SIGNED_FIELDS = new Set([...UNSIGNED_FIELDS, 'id', 'sig']);
const utf8 = new TextEncoder();

/**
 * The NIP-01 serialization `[0,pubkey,created_at,kind,tags,content]`. JSON.stringify's
 * escaping (only `"`, `\\` and C0 controls; U+2028/2029 and non-ASCII verbatim) is what
 * NIP-01 prescribes and what every mainstream implementation hashes.
 */
export function serializeEvent(e: UnsignedEvent): string {
  return JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]);
}

/** SHA-256 of the UTF-8 serialization: the 32 bytes a BIP-340 signature covers. */
export function eventHash(e: UnsignedEvent): Uint8Array {
  return sha256(utf8.encode(serializeEvent(e)));
}

/** Lower-case hex event id. */
export function eventId(e: UnsignedEvent): string {
  return Buffer.from(eventHash(e)).toString('hex');
}

function fail<T>(reason: EventRejection, detail: string): EventCheck<T> {
  return { ok: false, reason, detail };
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkFields(
  x: unknown,
  fields: Set<string>,
  limits: EventLimits,
): EventCheck<Record<string, unknown>> {
  if (!isPlainObject(x)) return fail('event_not_object', 'event: expected a JSON object');
  for (const k of Object.keys(x)) {
    if (!fields.has(k)) return fail('event_field_unknown', `event: unknown field "${k.slice(0, 32)}"`);
  }
  if (typeof x.pubkey !== 'string' || !HEX32.test(x.pubkey)) {
    return fail('event_pubkey_invalid', 'event.pubkey: expected 32 bytes of lower-case hex');
  }
  if (typeof x.created_at !== 'number' || !Number.isSafeInteger(x.created_at) || x.created_at < 0) {
    return fail('event_created_at_invalid', 'event.created_at: expected a non-negative integer (seconds)');
  }
  if (typeof x.kind !== 'number' || !Number.isInteger(x.kind) || x.kind < 0 || x.kind > 65_535) {
    return fail('event_kind_invalid', 'event.kind: expected an integer from 0 to 65535');
  }
  const tags = x.tags;
  if (!Array.isArray(tags)) return fail('event_tags_invalid', 'event.tags: expected an array of arrays');
  if (tags.length > limits.maxTags) {
    return fail('event_tags_too_large', `event.tags: more than ${limits.maxTags} tags`);
  }
  let tagBytes = 0;
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i];
    if (!Array.isArray(tag))
      return fail('event_tags_invalid', `event.tags[${i}]: expected an array of strings`);
    if (tag.length > limits.maxTagElements) {
      return fail('event_tags_too_large', `event.tags[${i}]: more than ${limits.maxTagElements} elements`);
    }
    for (const s of tag) {
      if (typeof s !== 'string') {
        return fail('event_tags_invalid', `event.tags[${i}]: expected an array of strings`);
      }
      if (LONE_SURROGATE.test(s)) {
        return fail('event_tags_invalid', `event.tags[${i}]: contains a lone UTF-16 surrogate`);
      }
      tagBytes += Buffer.byteLength(s, 'utf8');
    }
    if (tagBytes > limits.maxTagBytes) {
      return fail('event_tags_too_large', `event.tags: more than ${limits.maxTagBytes} bytes`);
    }
  }
  if (typeof x.content !== 'string') return fail('event_content_invalid', 'event.content: expected a string');
  if (Buffer.byteLength(x.content, 'utf8') > limits.maxContentBytes) {
    return fail('event_content_too_large', `event.content: more than ${limits.maxContentBytes} bytes`);
  }
  if (LONE_SURROGATE.test(x.content)) {
    return fail('event_content_invalid', 'event.content: contains a lone UTF-16 surrogate');
  }
  return { ok: true, event: x };
}

/** Structural check of an unsigned event (no `id`, no `sig`). */
export function checkUnsignedEvent(
  x: unknown,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): EventCheck<UnsignedEvent> {
  const r = checkFields(x, UNSIGNED_FIELDS, limits);
  if (!r.ok) return r;
  return checkSize(r.event as unknown as UnsignedEvent, limits);
}

function checkSize<T extends UnsignedEvent>(e: T, limits: EventLimits): EventCheck<T> {
  if (Buffer.byteLength(serializeEvent(e), 'utf8') > limits.maxEventBytes) {
    return fail('event_too_large', `event: serialization exceeds ${limits.maxEventBytes} bytes`);
  }
  return { ok: true, event: e };
}

/**
 * Structural check of a signed event: exactly the seven NIP-01 fields, each well formed
 * and within `limits`. Does not hash or verify; see `validateEvent`.
 */
export function checkEvent(x: unknown, limits: EventLimits = DEFAULT_EVENT_LIMITS): EventCheck<NostrEvent> {
  const r = checkFields(x, SIGNED_FIELDS, limits);
  if (!r.ok) return r;
  const o = r.event;
  if (typeof o.id !== 'string' || !HEX32.test(o.id)) {
    return fail('event_id_malformed', 'event.id: expected 32 bytes of lower-case hex');
  }
  if (typeof o.sig !== 'string' || !HEX64.test(o.sig)) {
    return fail('event_sig_malformed', 'event.sig: expected 64 bytes of lower-case hex');
  }
  return checkSize(o as unknown as NostrEvent, limits);
}

/** `checkEvent`, then the id must be the hash and the BIP-340 signature must verify. */
export function validateEvent(
  x: unknown,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): EventCheck<NostrEvent> {
  const r = checkEvent(x, limits);
  if (!r.ok) return r;
  const e = r.event;
  const hash = eventHash(e);
  if (Buffer.from(hash).toString('hex') !== e.id) {
    return fail('event_id_mismatch', 'event.id: does not match the hash of the event');
  }
  if (!verifySignature(Buffer.from(e.sig, 'hex'), hash, Buffer.from(e.pubkey, 'hex'))) {
    return fail('event_sig_invalid', 'event.sig: not a valid BIP-340 signature by event.pubkey');
  }
  return { ok: true, event: pickSigned(e) };
}

/** True when `x` is a well-formed event whose id and signature are valid. */
export function verifyEvent(x: unknown, limits: EventLimits = DEFAULT_EVENT_LIMITS): x is NostrEvent {
  return validateEvent(x, limits).ok;
}

/** The error an API answers with for a refused event: the reason is its stable error code. */
export function eventError(check: { reason: EventRejection; detail: string }): FloeError {
  return new FloeError(check.reason, check.detail);
}

function pickSigned(e: NostrEvent): NostrEvent {
  return {
    id: e.id,
    pubkey: e.pubkey,
    created_at: e.created_at,
    kind: e.kind,
    tags: e.tags.map((t) => [...t]),
    content: e.content,
    sig: e.sig,
  };
}

/** Attach an externally produced signature (for example a FROST aggregate) to an event. */
export function withSignature(e: UnsignedEvent, sig: Uint8Array): NostrEvent {
  if (sig.length !== 64) throw new FloeError('invalid_request', 'sig: expected 64 bytes');
  const check = checkUnsignedEvent(e);
  if (!check.ok) throw eventError(check);
  const u = check.event;
  return {
    id: eventId(u),
    pubkey: u.pubkey,
    created_at: u.created_at,
    kind: u.kind,
    tags: u.tags.map((t) => [...t]),
    content: u.content,
    sig: Buffer.from(sig).toString('hex'),
  };
}

/**
 * Sign a template with a secret held in memory. Only for Floe's own identities (coordinator,
 * bunker transport keys); a user's key exists only as shares and signs through FROST.
 */
export function finalizeEvent(template: EventTemplate, secret: Uint8Array): NostrEvent {
  const pubkey = Buffer.from(identityPublicKey(secret)).toString('hex');
  const check = checkUnsignedEvent({ ...pickTemplate(template), pubkey });
  if (!check.ok) throw eventError(check);
  const sig = signDigest(secret, eventHash(check.event));
  return withSignature(check.event, sig);
}

function pickTemplate(t: EventTemplate): EventTemplate {
  return { created_at: t.created_at, kind: t.kind, tags: t.tags, content: t.content };
}

/** The value of the first tag named `name`, if any (e.g. the `d` tag of an addressable event). */
export function tagValue(e: { tags: string[][] }, name: string): string | undefined {
  for (const t of e.tags) if (t[0] === name) return t[1];
  return undefined;
}

/** Unix time in seconds, the unit of `created_at`. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
