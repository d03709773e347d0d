/**
 * NIP-04 and NIP-44 over an ECDH value computed elsewhere (threshold ECDH on the signers), with
 * the checks that need no key split off: a request whose plaintext is too large or whose payload
 * is malformed is refused before any signer is asked, so it costs nothing and leaves no trace.
 * Only a payload that is well formed but does not authenticate (NIP-44 MAC, NIP-04 padding)
 * needs the key to be refused.
 *
 * Refusals: `payload_too_large` (a plaintext over the scheme's limit), `invalid_request` (an
 * empty NIP-44 plaintext, a lone UTF-16 surrogate), `invalid_encoding` (a malformed payload, a
 * MAC or padding that does not check out — the codes src/nostr/nip04.ts and nip44.ts use).
 */
import { base64 } from '@scure/base';
import { wipe } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';
import * as nip04 from './nip04.js';
import * as nip44 from './nip44.js';

export const CONVERSATION_SCHEMES = ['nip04', 'nip44'] as const;
export type ConversationScheme = (typeof CONVERSATION_SCHEMES)[number];

/**
 * Largest plaintext, in UTF-8 bytes: NIP-44 v2's 65535 (the 2-byte length prefix every
 * implementation reads); NIP-04 sets no limit, 128 KiB here (a large contact list fits).
 */
export const MAX_PLAINTEXT_BYTES: Record<ConversationScheme, number> = {
  nip04: 128 * 1024,
  nip44: nip44.MAX_PLAINTEXT_BYTES_U16,
};
/** Largest plaintext a payload may carry when decrypting (both forms of NIP-44 prefix). */
export const MAX_DECRYPT_BYTES = 1024 * 1024;

const LONE_SURROGATE = /\p{Cs}/u;
const NIP04_SEPARATOR = '?iv=';

/** Refuse a plaintext `encrypt` would refuse, without the key. */
export function checkPlaintext(scheme: ConversationScheme, plaintext: unknown): asserts plaintext is string {
  if (typeof plaintext !== 'string') throw new FloeError('invalid_request', 'plaintext: expected a string');
  if (LONE_SURROGATE.test(plaintext)) {
    throw new FloeError('invalid_request', 'plaintext: contains a lone UTF-16 surrogate');
  }
  const max = MAX_PLAINTEXT_BYTES[scheme];
  const len = Buffer.byteLength(plaintext, 'utf8');
  if (len > max) {
    throw new FloeError(
      'payload_too_large',
      `plaintext: ${scheme} carries at most ${max} bytes of UTF-8`,
      scheme === 'nip44' ? { hint: 'NIP-44 v2 messages are 1 to 65535 bytes; split longer ones' } : {},
    );
  }
  if (scheme === 'nip44' && len < nip44.MIN_PLAINTEXT_BYTES) {
    throw new FloeError('invalid_request', 'plaintext: NIP-44 needs at least 1 byte');
  }
}

function payloadError(scheme: ConversationScheme, rule: string): FloeError {
  return new FloeError('invalid_encoding', `${scheme} payload: ${rule}`);
}

/** Longest NIP-44 payload (base64 characters) carrying at most `max` plaintext bytes. */
function nip44MaxChars(max: number): number {
  const prefix = max > nip44.MAX_PLAINTEXT_BYTES_U16 ? 6 : 2;
  return 4 * Math.ceil((1 + 32 + prefix + nip44.calcPaddedLen(max) + 32) / 3);
}

/**
 * Refuse a payload `decrypt` would refuse before it needs the key: its form, size, encoding
 * and version. What passes may still fail authentication once the key is there.
 */
export function checkPayload(scheme: ConversationScheme, payload: unknown): asserts payload is string {
  if (typeof payload !== 'string') throw payloadError(scheme, 'expected a string');
  if (scheme === 'nip44') {
    if (payload.length < 132 || payload.length > nip44MaxChars(MAX_DECRYPT_BYTES)) {
      throw payloadError(scheme, 'invalid length');
    }
    if (payload[0] === '#') throw payloadError(scheme, 'unknown encryption version');
    let data: Uint8Array;
    try {
      data = base64.decode(payload);
    } catch {
      throw payloadError(scheme, 'invalid base64');
    }
    if (data.length < 99) throw payloadError(scheme, 'invalid length');
    if (data[0] !== nip44.NIP44_VERSION) throw payloadError(scheme, 'unknown encryption version');
    return;
  }
  if (payload.length > 4 * Math.ceil((MAX_DECRYPT_BYTES + 16) / 3) + NIP04_SEPARATOR.length + 24) {
    throw payloadError(scheme, `longer than a ${MAX_DECRYPT_BYTES}-byte plaintext allows`);
  }
  const parts = payload.split(NIP04_SEPARATOR);
  if (parts.length !== 2) throw payloadError(scheme, 'expected base64(ciphertext)?iv=base64(iv)');
  let ct: Uint8Array;
  let iv: Uint8Array;
  try {
    ct = base64.decode(parts[0]!);
    iv = base64.decode(parts[1]!);
  } catch {
    throw payloadError(scheme, 'invalid base64');
  }
  if (iv.length !== 16) throw payloadError(scheme, 'iv must be 16 bytes');
  if (ct.length === 0 || ct.length % 16 !== 0)
    throw payloadError(scheme, 'ciphertext must be whole AES blocks');
}

/** Encrypt for the peer whose ECDH value with the key is `sharedX` (32 bytes; not wiped here). */
export function encryptWith(scheme: ConversationScheme, sharedX: Uint8Array, plaintext: string): string {
  checkPlaintext(scheme, plaintext);
  if (scheme === 'nip04') return nip04.encrypt(plaintext, sharedX);
  const ck = nip44.conversationKey(sharedX);
  try {
    return nip44.encrypt(plaintext, ck);
  } finally {
    wipe(ck);
  }
}

/** Decrypt a payload from the peer whose ECDH value with the key is `sharedX` (not wiped here). */
export function decryptWith(scheme: ConversationScheme, sharedX: Uint8Array, payload: string): string {
  checkPayload(scheme, payload);
  if (scheme === 'nip04') return nip04.decrypt(payload, sharedX, { maxPlaintextBytes: MAX_DECRYPT_BYTES });
  const ck = nip44.conversationKey(sharedX);
  try {
    return nip44.decrypt(payload, ck, { maxPlaintextBytes: MAX_DECRYPT_BYTES });
  } finally {
    wipe(ck);
  }
}
