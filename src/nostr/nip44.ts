/**
 * NIP-44 version 2 encryption (ChaCha20, HMAC-SHA256, power-of-two padding).
 *
 * The entry point takes the ECDH result (`sharedX`, the 32-byte x coordinate of sec·Pub), not
 * a secret key: for a user key that point is computed by threshold ECDH on the signers, and
 * no process ever holds the secret (DESIGN §14).
 *
 * Sizes: the original NIP-44 limit is 65535 plaintext bytes with a 2-byte length prefix. The
 * current NIP-44 text (nips#1907; nostr-tools#527, in the 2.25 we test with) adds a 6-byte
 * prefix (`00 00` + u32) for longer messages, which older implementations cannot read. So
 * `encrypt` stays within 65535 bytes unless the caller raises `maxPlaintextBytes` (and the
 * vectors' `encrypt_msg_lengths` stay refused), while `decrypt` reads both forms up to a bounded
 * size (1 MiB by default), so large NIP-46 requests from current clients still work.
 */
import { randomBytes } from 'node:crypto';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { bytesEqual, concatBytes, wipe } from '../crypto/hex.js';
import { type ErrorCode, FloeError } from '../protocol/errors.js';

export const NIP44_VERSION = 2;
export const MIN_PLAINTEXT_BYTES = 1;
/** Largest plaintext with the original 2-byte length prefix. */
export const MAX_PLAINTEXT_BYTES_U16 = 65_535;
/** Largest plaintext the extended 6-byte prefix can describe. */
export const MAX_PLAINTEXT_BYTES_U32 = 0xffff_ffff;
/** Default bound for `decrypt`. */
export const DEFAULT_MAX_DECRYPT_BYTES = 1024 * 1024;

/** Code of a refused payload (malformed, unauthenticated, or badly padded). */
const PAYLOAD_ERROR: ErrorCode = 'invalid_encoding';

const SALT = new TextEncoder().encode('nip44-v2');
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const LONE_SURROGATE = /\p{Cs}/u;

export interface Nip44Options {
  /** Largest plaintext accepted, in UTF-8 bytes. */
  maxPlaintextBytes?: number;
}

export interface MessageKeys {
  chachaKey: Uint8Array;
  chachaNonce: Uint8Array;
  hmacKey: Uint8Array;
}

function payloadError(rule: string): FloeError {
  return new FloeError(PAYLOAD_ERROR, `nip44 payload: ${rule}`);
}

function bytes(x: unknown, len: number, what: string): Uint8Array {
  if (!(x instanceof Uint8Array) || x.length !== len) {
    throw new FloeError('invalid_request', `${what}: expected ${len} bytes`);
  }
  return x;
}

function maxBytes(o: Nip44Options | undefined, fallback: number): number {
  const m = o?.maxPlaintextBytes ?? fallback;
  if (!Number.isSafeInteger(m) || m < MIN_PLAINTEXT_BYTES || m > MAX_PLAINTEXT_BYTES_U32) {
    throw new FloeError('invalid_request', 'maxPlaintextBytes: expected an integer from 1 to 2^32-1');
  }
  return m;
}

/** HKDF-extract(salt = "nip44-v2", ikm = sharedX): the key two parties share in both directions. */
export function conversationKey(sharedX: Uint8Array): Uint8Array {
  return extract(sha256, bytes(sharedX, 32, 'sharedX'), SALT);
}

/** HKDF-expand(conversationKey, info = nonce, 76) split into the three per-message keys. */
export function messageKeys(conversationKey: Uint8Array, nonce: Uint8Array): MessageKeys {
  const k = expand(sha256, bytes(conversationKey, 32, 'conversationKey'), bytes(nonce, 32, 'nonce'), 76);
  return { chachaKey: k.slice(0, 32), chachaNonce: k.slice(32, 44), hmacKey: k.slice(44, 76) };
}

/** Padded length of an `len`-byte plaintext (at least 32; then chunks of 1/8 of the next power of two). */
export function calcPaddedLen(len: number): number {
  if (!Number.isSafeInteger(len) || len < 1)
    throw new FloeError('invalid_request', 'len: expected a positive integer');
  if (len <= 32) return 32;
  let nextPower = 64;
  while (nextPower < len) nextPower *= 2;
  const chunk = nextPower <= 256 ? 32 : nextPower / 8;
  return chunk * Math.ceil(len / chunk);
}

function prefixLen(len: number): number {
  return len > MAX_PLAINTEXT_BYTES_U16 ? 6 : 2;
}

/** `[length prefix][plaintext][zeros]`. */
export function pad(plaintext: Uint8Array): Uint8Array {
  const len = plaintext.length;
  const p = prefixLen(len);
  const out = new Uint8Array(p + calcPaddedLen(len));
  const dv = new DataView(out.buffer);
  if (p === 2) dv.setUint16(0, len);
  else dv.setUint32(2, len);
  out.set(plaintext, p);
  return out;
}

/** Inverse of `pad`; refuses a length outside [1, max] or padding of the wrong size. */
export function unpad(padded: Uint8Array, max: number): Uint8Array {
  if (padded.length < 2) throw payloadError('invalid padding');
  const dv = new DataView(padded.buffer, padded.byteOffset, padded.byteLength);
  let len = dv.getUint16(0);
  let p = 2;
  if (len === 0) {
    // extended prefix: only for lengths a u16 cannot hold, so each length has one encoding
    if (padded.length < 6) throw payloadError('invalid padding');
    len = dv.getUint32(2);
    p = 6;
    if (len <= MAX_PLAINTEXT_BYTES_U16) throw payloadError('invalid padding');
  }
  if (len > max) throw payloadError(`invalid padding (declared length above ${max} bytes)`);
  if (padded.length !== p + calcPaddedLen(len)) throw payloadError('invalid padding');
  return padded.subarray(p, p + len);
}

function hmacAad(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return hmac(sha256, key, concatBytes(nonce, ciphertext));
}

/** Longest base64 payload that can carry a plaintext of `max` bytes. */
function maxPayloadChars(max: number): number {
  const decoded = 1 + 32 + prefixLen(max) + calcPaddedLen(max) + 32;
  return 4 * Math.ceil(decoded / 3);
}

/**
 * Encrypt `plaintext` (1..65535 UTF-8 bytes unless `maxPlaintextBytes` says more). `nonce`
 * exists for test vectors; by default 32 fresh random bytes.
 */
export function encrypt(
  plaintext: string,
  conversationKey: Uint8Array,
  nonce: Uint8Array = new Uint8Array(randomBytes(32)),
  opts?: Nip44Options,
): string {
  if (typeof plaintext !== 'string') throw new FloeError('invalid_request', 'plaintext: expected a string');
  // TextEncoder would silently turn a lone surrogate into U+FFFD and change the message
  if (LONE_SURROGATE.test(plaintext)) {
    throw new FloeError('invalid_request', 'plaintext: contains a lone UTF-16 surrogate');
  }
  const max = maxBytes(opts, MAX_PLAINTEXT_BYTES_U16);
  const pt = utf8.encode(plaintext);
  if (pt.length < MIN_PLAINTEXT_BYTES || pt.length > max) {
    wipe(pt);
    throw new FloeError('invalid_request', `plaintext: must be 1 to ${max} bytes of UTF-8`);
  }
  const k = messageKeys(conversationKey, nonce);
  const padded = pad(pt);
  const ciphertext = chacha20(k.chachaKey, k.chachaNonce, padded);
  const mac = hmacAad(k.hmacKey, nonce, ciphertext);
  wipe(pt, padded, k.chachaKey, k.chachaNonce, k.hmacKey);
  return base64.encode(concatBytes(new Uint8Array([NIP44_VERSION]), nonce, ciphertext, mac));
}

/** Authenticate, then decrypt a NIP-44 v2 payload. Every refusal is a FloeError naming the rule. */
export function decrypt(payload: string, conversationKey: Uint8Array, opts?: Nip44Options): string {
  bytes(conversationKey, 32, 'conversationKey');
  const max = maxBytes(opts, DEFAULT_MAX_DECRYPT_BYTES);
  if (typeof payload !== 'string') throw payloadError('expected a string');
  // length checked before decoding, so an oversized payload costs nothing
  if (payload.length < 132 || payload.length > maxPayloadChars(max)) throw payloadError('invalid length');
  if (payload[0] === '#') throw payloadError('unknown encryption version');
  let data: Uint8Array;
  try {
    data = base64.decode(payload);
  } catch {
    throw payloadError('invalid base64');
  }
  if (data.length < 99) throw payloadError('invalid length');
  if (data[0] !== NIP44_VERSION) throw payloadError('unknown encryption version');
  const nonce = data.subarray(1, 33);
  const ciphertext = data.subarray(33, data.length - 32);
  const mac = data.subarray(data.length - 32);
  const k = messageKeys(conversationKey, nonce);
  try {
    if (!bytesEqual(hmacAad(k.hmacKey, nonce, ciphertext), mac)) throw payloadError('invalid MAC');
    const padded = chacha20(k.chachaKey, k.chachaNonce, ciphertext);
    try {
      return utf8Strict.decode(unpad(padded, max));
    } catch (e) {
      if (e instanceof FloeError) throw e;
      throw payloadError('plaintext is not valid UTF-8');
    } finally {
      wipe(padded);
    }
  } finally {
    wipe(k.chachaKey, k.chachaNonce, k.hmacKey);
  }
}
