/**
 * NIP-04 encrypted content (deprecated by NIP-44, still spoken by many NIP-46 clients):
 * AES-256-CBC with key = the 32-byte x coordinate of the ECDH point, as
 * `base64(ciphertext)?iv=base64(iv)`.
 *
 * Like NIP-44 the entry points take the ECDH result (`sharedX`), so threshold ECDH on the
 * signers can supply it. NIP-04 has no MAC: a wrong key or a tampered payload is only caught
 * when the padding or the UTF-8 happens to be invalid; prefer NIP-44 wherever the peer can.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { base64 } from '@scure/base';
import { wipe } from '../crypto/hex.js';
import { type ErrorCode, FloeError } from '../protocol/errors.js';

/** Default bound on the plaintext `decrypt` accepts. */
export const DEFAULT_MAX_DECRYPT_BYTES = 1024 * 1024;

const PAYLOAD_ERROR: ErrorCode = 'invalid_encoding';
const SEPARATOR = '?iv=';
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const LONE_SURROGATE = /\p{Cs}/u;

function payloadError(rule: string): FloeError {
  return new FloeError(PAYLOAD_ERROR, `nip04 payload: ${rule}`);
}

function key(sharedX: unknown): Uint8Array {
  if (!(sharedX instanceof Uint8Array) || sharedX.length !== 32) {
    throw new FloeError('invalid_request', 'sharedX: expected 32 bytes');
  }
  return sharedX;
}

/** Encrypt `text` for the peer whose ECDH x coordinate with us is `sharedX`. */
export function encrypt(
  text: string,
  sharedX: Uint8Array,
  iv: Uint8Array = new Uint8Array(randomBytes(16)),
): string {
  if (typeof text !== 'string') throw new FloeError('invalid_request', 'plaintext: expected a string');
  if (LONE_SURROGATE.test(text))
    throw new FloeError('invalid_request', 'plaintext: contains a lone UTF-16 surrogate');
  if (!(iv instanceof Uint8Array) || iv.length !== 16)
    throw new FloeError('invalid_request', 'iv: expected 16 bytes');
  const pt = Buffer.from(text, 'utf8');
  const c = createCipheriv('aes-256-cbc', key(sharedX), iv);
  const ct = Buffer.concat([c.update(pt), c.final()]);
  wipe(pt);
  return `${base64.encode(ct)}${SEPARATOR}${base64.encode(iv)}`;
}

/** Decrypt a NIP-04 payload; strict about its form, bounded in size. */
export function decrypt(
  payload: string,
  sharedX: Uint8Array,
  opts: { maxPlaintextBytes?: number } = {},
): string {
  const k = key(sharedX);
  const max = opts.maxPlaintextBytes ?? DEFAULT_MAX_DECRYPT_BYTES;
  if (typeof payload !== 'string') throw payloadError('expected a string');
  // base64 of at most max+16 bytes of ciphertext, the separator and a 16-byte iv
  if (payload.length > 4 * Math.ceil((max + 16) / 3) + SEPARATOR.length + 24) {
    throw payloadError(`longer than a ${max}-byte plaintext allows`);
  }
  const parts = payload.split(SEPARATOR);
  if (parts.length !== 2) throw payloadError('expected base64(ciphertext)?iv=base64(iv)');
  let ct: Uint8Array;
  let iv: Uint8Array;
  try {
    ct = base64.decode(parts[0]!);
    iv = base64.decode(parts[1]!);
  } catch {
    throw payloadError('invalid base64');
  }
  if (iv.length !== 16) throw payloadError('iv must be 16 bytes');
  if (ct.length === 0 || ct.length % 16 !== 0) throw payloadError('ciphertext must be whole AES blocks');
  let pt: Buffer;
  try {
    const d = createDecipheriv('aes-256-cbc', k, iv);
    pt = Buffer.concat([d.update(ct), d.final()]);
  } catch {
    throw payloadError('cannot decrypt (wrong key or corrupted payload)');
  }
  try {
    return utf8Strict.decode(pt);
  } catch {
    throw payloadError('plaintext is not valid UTF-8');
  } finally {
    wipe(pt);
  }
}
