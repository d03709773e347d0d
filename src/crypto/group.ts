/**
 * Points and scalars at Floe's API boundary: compressed 33-byte points validated by the active
 * crypto backend (`backend.ts`), scalars as bigints mod n. Callers outside src/crypto use these
 * functions; no curve library is imported anywhere else.
 */
import { cryptoBackend } from './backend.js';
import { assertCompressed } from './backend-util.js';
import { CryptoError } from './errors.js';
import { fromHex } from './hex.js';
import * as S from './scalar.js';

/** Order n of the secp256k1 group. */
export const CURVE_ORDER = S.N;

/**
 * Validate a 33-byte compressed point (on the curve; the identity has no such encoding) and
 * return it. Rejects other lengths and prefixes.
 */
export function parsePoint(bytes: Uint8Array, what: string): Uint8Array {
  cryptoBackend().decode(bytes, what);
  return bytes;
}

export function pointFromHex(hex: unknown, what: string): Uint8Array {
  const b = fromHex(hex, what, 33);
  parsePoint(b, what);
  return b;
}

/** Parse a 32-byte big-endian scalar; `nonZero` also rejects 0. Always rejects >= n. */
export function parseScalar(bytes: Uint8Array, what: string, nonZero = true): bigint {
  return S.parse(bytes, what, nonZero);
}

export function scalarFromHex(hex: unknown, what: string, nonZero = true): Uint8Array {
  const b = fromHex(hex, what, 32);
  parseScalar(b, what, nonZero);
  return b;
}

/** 32-byte big-endian encoding of a scalar in [0, n). */
export function scalarToBytes(n: bigint): Uint8Array {
  return S.toBytes(n);
}

/** (a + b) mod n. */
export function scalarAdd(a: bigint, b: bigint): bigint {
  return S.add(a, b);
}

/** (a · b) mod n. */
export function scalarMul(a: bigint, b: bigint): bigint {
  return S.mul(a, b);
}

/** −a mod n. */
export function scalarNeg(a: bigint): bigint {
  return S.neg(a);
}

/** x-only (BIP-340) form of a 33-byte compressed point. */
export function xOnly(compressed: Uint8Array): Uint8Array {
  return compressed.slice(1, 33);
}

/** secret·G as a 33-byte compressed point, by constant-time base multiplication (0 < secret < n). */
export function pointFromScalar(secret: Uint8Array): Uint8Array {
  const b = cryptoBackend();
  return b.encode(b.mulBase(secret));
}

/** a + b of two compressed points; invalid_point if the sum is the identity. */
export function pointAdd(a: Uint8Array, c: Uint8Array): Uint8Array {
  const b = cryptoBackend();
  const s = b.add(b.decode(a, 'point a'), b.decode(c, 'point b'));
  if (!s) throw new CryptoError('invalid_point', 'sum is the identity');
  return b.encode(s);
}

/** k·P for a PUBLIC scalar k (variable time), 0 < k < n. */
export function pointMulPublic(p: Uint8Array, k: bigint | Uint8Array): Uint8Array {
  const b = cryptoBackend();
  const kb = typeof k === 'bigint' ? S.toBytes(k) : k;
  return b.encode(b.mulPublic(b.decode(p, 'point'), kb));
}

/** −P of a compressed point (validated; the same x with the other Y). */
export function pointNegate(p: Uint8Array): Uint8Array {
  assertCompressed(p, 'point');
  parsePoint(p, 'point');
  const out = Uint8Array.from(p);
  out[0]! ^= 1;
  return out;
}
