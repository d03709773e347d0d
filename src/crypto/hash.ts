import { createHash } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from './hex.js';

const enc = new TextEncoder();

export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError('u32 out of range');
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function u64be(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('u64 out of range');
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/**
 * Unambiguous encoding of a list of fields: each field prefixed by its 4-byte big-endian
 * length, the whole preceded by the length-prefixed domain tag.
 */
export function lengthPrefixed(tag: string, fields: Uint8Array[]): Uint8Array {
  const t = utf8(tag);
  const parts: Uint8Array[] = [u32be(t.length), t];
  for (const f of fields) parts.push(u32be(f.length), f);
  return concatBytes(...parts);
}

/** SHA-256 over a domain tag and length-prefixed fields. */
export function taggedFieldsHash(tag: string, fields: Uint8Array[]): Uint8Array {
  return sha256(lengthPrefixed(tag, fields));
}

export { sha256 };

/** SHA-256 of the concatenation of `parts` (node:crypto: no copy of the parts). */
export function sha256Parts(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

const ZPAD = new Uint8Array(64);

/**
 * expand_message_xmd with SHA-256 (RFC 9380 §5.3.1): `len` uniform bytes from `msg` under the
 * domain separation tag `dst` (at most 255 bytes).
 */
export function expandMessageXmd(msg: Uint8Array, dst: Uint8Array, len: number): Uint8Array {
  if (dst.length > 255) throw new RangeError('DST longer than 255 bytes');
  const ell = Math.ceil(len / 32);
  if (ell > 255 || len > 0xffff) throw new RangeError('expand_message_xmd: length too large');
  const dstPrime = concatBytes(dst, Uint8Array.of(dst.length));
  const b0 = sha256Parts(ZPAD, msg, Uint8Array.of(len >> 8, len & 0xff, 0), dstPrime);
  const out = new Uint8Array(ell * 32);
  let prev = sha256Parts(b0, Uint8Array.of(1), dstPrime);
  out.set(prev, 0);
  for (let i = 2; i <= ell; i++) {
    const x = new Uint8Array(32);
    for (let j = 0; j < 32; j++) x[j] = b0[j]! ^ prev[j]!;
    prev = sha256Parts(x, Uint8Array.of(i), dstPrime);
    out.set(prev, (i - 1) * 32);
  }
  return out.subarray(0, len);
}

const N_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * hash_to_field for the secp256k1 scalar field (RFC 9380, expand_message_xmd SHA-256, k = 128:
 * 48 bytes reduced mod n), as RFC 9591's FROST(secp256k1, SHA-256) H1, H2, H3 use it.
 */
export function hashToScalar(msg: Uint8Array, dst: Uint8Array): bigint {
  const u = expandMessageXmd(msg, dst, 48);
  return BigInt(`0x${Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex')}`) % N_ORDER;
}
