/**
 * Signed envelopes between coordinators and signers (DESIGN §5).
 *
 * Every request and response body travels with a header
 *   {v, from, to, ts, nonce, type, body_sha256, re?}
 * and a BIP-340 signature by the sender's identity key over the header's canonical bytes:
 * SHA-256 of the domain tag and the length-prefixed fields, in the order above. `type`
 * names the message (so a signed body cannot be replayed at another endpoint) and `re`
 * (responses only) is the nonce of the request answered (so a response cannot be replayed
 * as the answer to another request). Both are additions to DESIGN §5.
 *
 * On HTTP the envelope is the `floe-envelope` header (compact JSON); the body is hashed as
 * the exact bytes sent.
 */
import { randomBytes } from 'node:crypto';
import { sha256, taggedFieldsHash, u64be, utf8 } from '../crypto/hash.js';
import { bytesEqual, fromHex, toHex } from '../crypto/hex.js';
import { type NodeIdentity, verifyDigest } from '../crypto/identity.js';
import { FloeError } from './errors.js';
import type { ReplayGuard } from './replay.js';

export const ENVELOPE_HEADER = 'floe-envelope';
export const ENVELOPE_TAG = 'floe/envelope/v1';
export const DEFAULT_WINDOW_MS = 60_000;

export interface EnvelopeHeader {
  v: 1;
  /** Sender identity key, x-only hex. */
  from: string;
  /** Recipient identity key, x-only hex. */
  to: string;
  /** Unix milliseconds. */
  ts: number;
  /** 16 random bytes, hex. */
  nonce: string;
  /** Message type, e.g. `sign.round2` or `sign.round2.response`. */
  type: string;
  body_sha256: string;
  /** Responses: the nonce of the request this answers. */
  re?: string;
}

export interface Envelope extends EnvelopeHeader {
  /** BIP-340 signature over {@link envelopeDigest}, hex. */
  sig: string;
}

const HEX32 = /^[0-9a-f]{64}$/;
const HEX16 = /^[0-9a-f]{32}$/;
const TYPE_RE = /^[a-z0-9_.]{1,64}$/;

export function bodyBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? utf8(body) : body;
}

export function envelopeDigest(h: EnvelopeHeader): Uint8Array {
  return taggedFieldsHash(ENVELOPE_TAG, [
    utf8(String(h.v)),
    fromHex(h.from, 'from', 32),
    fromHex(h.to, 'to', 32),
    u64be(h.ts),
    fromHex(h.nonce, 'nonce', 16),
    utf8(h.type),
    fromHex(h.body_sha256, 'body_sha256', 32),
    h.re === undefined ? new Uint8Array(0) : fromHex(h.re, 're', 16),
  ]);
}

export interface SealOptions {
  /** The sender's identity (signs the envelope; its public key is `from`). */
  identity: NodeIdentity;
  /** Recipient identity key, x-only hex. */
  to: string;
  type: string;
  body: string | Uint8Array;
  now: number;
  re?: string;
}

export function sealEnvelope(o: SealOptions): Envelope {
  const header: EnvelopeHeader = {
    v: 1,
    from: o.identity.publicKeyHex,
    to: o.to,
    ts: o.now,
    nonce: toHex(randomBytes(16)),
    type: o.type,
    body_sha256: toHex(sha256(bodyBytes(o.body))),
    ...(o.re === undefined ? {} : { re: o.re }),
  };
  return { ...header, sig: toHex(o.identity.sign(envelopeDigest(header))) };
}

export function encodeEnvelope(e: Envelope): string {
  return JSON.stringify(e);
}

/** Shape check only; throws `envelope_malformed`. */
export function parseEnvelope(raw: unknown): Envelope {
  let o: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.length > 2048) throw new FloeError('envelope_malformed', 'envelope too long');
    try {
      o = JSON.parse(raw);
    } catch {
      throw new FloeError('envelope_malformed', 'envelope is not JSON');
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new FloeError('envelope_malformed', 'envelope missing or not an object');
  }
  const e = o as Record<string, unknown>;
  const allowed = new Set(['v', 'from', 'to', 'ts', 'nonce', 'type', 'body_sha256', 're', 'sig']);
  for (const k of Object.keys(e))
    if (!allowed.has(k)) throw new FloeError('envelope_malformed', `unexpected field ${k}`);
  const ok =
    e.v === 1 &&
    typeof e.from === 'string' &&
    HEX32.test(e.from) &&
    typeof e.to === 'string' &&
    HEX32.test(e.to) &&
    typeof e.ts === 'number' &&
    Number.isSafeInteger(e.ts) &&
    e.ts >= 0 &&
    typeof e.nonce === 'string' &&
    HEX16.test(e.nonce) &&
    typeof e.type === 'string' &&
    TYPE_RE.test(e.type) &&
    typeof e.body_sha256 === 'string' &&
    HEX32.test(e.body_sha256) &&
    (e.re === undefined || (typeof e.re === 'string' && HEX16.test(e.re))) &&
    typeof e.sig === 'string' &&
    /^[0-9a-f]{128}$/.test(e.sig);
  if (!ok) throw new FloeError('envelope_malformed', 'envelope fields malformed');
  return e as unknown as Envelope;
}

export interface OpenOptions {
  body: string | Uint8Array;
  /** Our own identity key, x-only hex. */
  self: string;
  /** Whether a sender key is allowed to talk to us. */
  isAllowedSender: (from: string) => boolean;
  type: string;
  now: number;
  windowMs?: number;
  /** Requests: replay guard. Responses are bound by `re` instead. */
  replay?: ReplayGuard;
  /**
   * Requests: refuse (`envelope_stale`) an envelope stamped before this time, in Unix ms. A
   * signer passes the moment it started, because its replay guard lives in memory and knows
   * nothing of what the process before it saw (see src/signer/server.ts).
   */
  notBefore?: number;
  /** Responses: the nonce of our request. */
  re?: string;
}

/**
 * Verify an envelope. Checks, each with its own code: shape, recipient, sender on the
 * allowlist, message type, signature, body hash, timestamp window (and `notBefore`), replay /
 * request binding.
 */
export function openEnvelope(raw: unknown, o: OpenOptions): EnvelopeHeader {
  const e = parseEnvelope(raw);
  if (e.to !== o.self)
    throw new FloeError('envelope_wrong_recipient', 'envelope is addressed to another node');
  if (!o.isAllowedSender(e.from))
    throw new FloeError('envelope_unknown_sender', 'sender is not on the allowlist');
  if (e.type !== o.type) throw new FloeError('envelope_wrong_type', `expected message type ${o.type}`);
  const { sig, ...header } = e;
  if (!verifyDigest(fromHex(sig, 'sig', 64), envelopeDigest(header), fromHex(e.from, 'from', 32))) {
    throw new FloeError('envelope_bad_signature', 'envelope signature does not verify');
  }
  if (!bytesEqual(sha256(bodyBytes(o.body)), fromHex(e.body_sha256, 'body_sha256', 32))) {
    throw new FloeError('envelope_body_mismatch', 'body does not match the signed hash');
  }
  const window = o.windowMs ?? DEFAULT_WINDOW_MS;
  if (e.ts < o.now - window) throw new FloeError('envelope_stale', 'envelope timestamp is too old');
  if (e.ts > o.now + window) throw new FloeError('envelope_future', 'envelope timestamp is in the future');
  if (o.notBefore !== undefined && e.ts < o.notBefore) {
    throw new FloeError('envelope_stale', 'envelope timestamp is earlier than this node started');
  }
  if (o.re !== undefined && e.re !== o.re) {
    throw new FloeError('envelope_replay', 'response does not answer this request');
  }
  if (o.replay && !o.replay.check(`${e.from}:${e.nonce}`, e.ts, o.now)) {
    throw new FloeError('envelope_replay', 'envelope nonce seen before');
  }
  return header;
}
