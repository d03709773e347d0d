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
