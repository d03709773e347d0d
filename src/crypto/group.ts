import { secp256k1 } from '@noble/curves/secp256k1.js';
import { CryptoError } from './errors.js';
import { fromHex } from './hex.js';

export const Point = secp256k1.Point;
export type Point = InstanceType<typeof secp256k1.Point>;
export const Fn = secp256k1.Point.Fn;
export const CURVE_ORDER = Fn.ORDER;

/** Parse a 33-byte compressed point; rejects off-curve, identity and other lengths. */
export function parsePoint(bytes: Uint8Array, what: string): Point {
  if (bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)) {
    throw new CryptoError('invalid_point', `${what}: expected a 33-byte compressed point`);
  }
  try {
    const p = Point.fromBytes(bytes);
    p.assertValidity();
    return p;
  } catch {
    throw new CryptoError('invalid_point', `${what}: not a point on secp256k1`);
  }
}

export function pointFromHex(hex: unknown, what: string): Uint8Array {
  const b = fromHex(hex, what, 33);
  parsePoint(b, what);
  return b;
}

/** Parse a 32-byte big-endian scalar; `nonZero` also rejects 0. Always rejects >= n. */
export function parseScalar(bytes: Uint8Array, what: string, nonZero = true): bigint {
  if (bytes.length !== 32) throw new CryptoError('invalid_scalar', `${what}: expected 32 bytes`);
  const n = BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  if (n >= CURVE_ORDER || (nonZero && n === 0n)) {
    throw new CryptoError('invalid_scalar', `${what}: scalar out of range`);
  }
  return n;
}

export function scalarFromHex(hex: unknown, what: string, nonZero = true): Uint8Array {
  const b = fromHex(hex, what, 32);
  parseScalar(b, what, nonZero);
  return b;
}

export function scalarToBytes(n: bigint): Uint8Array {
  return Fn.toBytes(n);
}

/** x-only (BIP-340) form of a 33-byte compressed point. */
export function xOnly(compressed: Uint8Array): Uint8Array {
  return compressed.slice(1, 33);
}

export function hasEvenY(p: Point): boolean {
  return p.toAffine().y % 2n === 0n;
}
