/**
 * Scalars mod n (the secp256k1 group order) as bigints. DESIGN §10 lets scalar arithmetic stay
 * in bigint; points never do (they go through the backend seam, `backend.ts`).
 */
import { CryptoError } from './errors.js';

/** Order n of the secp256k1 group. */
export const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export function mod(a: bigint): bigint {
  const r = a % N;
  return r < 0n ? r + N : r;
}
export const add = (a: bigint, b: bigint): bigint => mod(a + b);
export const sub = (a: bigint, b: bigint): bigint => mod(a - b);
export const mul = (a: bigint, b: bigint): bigint => mod(a * b);
export const neg = (a: bigint): bigint => (a === 0n ? 0n : N - mod(a));

/** Inverse mod n (extended Euclid); throws on 0. */
export function inv(a: bigint): bigint {
  let x = mod(a);
  if (x === 0n) throw new CryptoError('invalid_scalar', 'cannot invert zero');
  let m = N;
  let u = 1n;
  let v = 0n;
  while (x !== 0n) {
    const q = m / x;
    [m, x] = [x, m - q * x];
    [v, u] = [u, v - q * u];
  }
  return mod(v);
}

// Lagrange denominators of Floe's identifiers (1..255) are small: their inverses are cached.
const SMALL = 1n << 16n;
const smallInverses = new Map<bigint, bigint>();
function invMaybeSmall(a: bigint): bigint {
  if (a > -SMALL && a < SMALL) {
    let r = smallInverses.get(a);
    if (r === undefined) {
      r = inv(a);
      smallInverses.set(a, r);
    }
    return r;
  }
  return inv(a);
}

/**
 * Lagrange coefficient of `xi` over the set `xs` at 0 (RFC 9591 §4.2 derive_interpolating_value):
 * prod_{j != i} x_j / (x_j - x_i). `xs` must be distinct and contain `xi`.
 */
export function lagrange(xs: readonly bigint[], xi: bigint): bigint {
  let num = 1n;
  let den = 1n;
  let found = false;
  for (const x of xs) {
    if (x === xi) {
      if (found) throw new CryptoError('invalid_identifier', 'duplicate identifier');
      found = true;
      continue;
    }
    num = mul(num, x);
    den = mul(den, invMaybeSmall(x - xi));
  }
  if (!found) throw new CryptoError('invalid_identifier', 'identifier not in the signing set');
  return mul(num, den);
}

/**
 * Lagrange coefficient of `xi` over the set `xs` at `x`: prod_{j != i} (x − x_j) / (x_i − x_j),
 * so that f(x) = Σ_i lagrangeAt(xs, x_i, x)·f(x_i) for any f of degree < |xs|. At x = 0 it is
 * {@link lagrange}. Share repair (`repair.ts`) interpolates at the lost member's identifier.
 * `xs` must be distinct and contain `xi`.
 */
export function lagrangeAt(xs: readonly bigint[], xi: bigint, x: bigint): bigint {
  let num = 1n;
  let den = 1n;
  let found = false;
  for (const xj of xs) {
    if (xj === xi) {
      if (found) throw new CryptoError('invalid_identifier', 'duplicate identifier');
      found = true;
      continue;
    }
    num = mul(num, x - xj);
    den = mul(den, invMaybeSmall(xi - xj));
  }
  if (!found) throw new CryptoError('invalid_identifier', 'identifier not in the set');
  return mul(num, den);
}

/** Big-endian bytes to an integer (no range check). */
export function fromBytes(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

/** 32-byte big-endian encoding of a scalar in [0, n). */
export function toBytes(a: bigint): Uint8Array {
  if (a < 0n || a >= N) throw new CryptoError('invalid_scalar', 'scalar out of range');
  return new Uint8Array(Buffer.from(a.toString(16).padStart(64, '0'), 'hex'));
}

/** Parses 32 bytes as a scalar in [0, n) (or [1, n) with `nonZero`); errors name `what`. */
export function parse(b: Uint8Array, what: string, nonZero: boolean): bigint {
  if (b.length !== 32) throw new CryptoError('invalid_scalar', `${what}: expected 32 bytes`);
  const a = fromBytes(b);
  if (a >= N || (nonZero && a === 0n))
    throw new CryptoError('invalid_scalar', `${what}: scalar out of range`);
  return a;
}

/** An rng as the FROST API takes it: `rng(len)` returns `len` random bytes. */
export type Rng = (len?: number) => Uint8Array;

/**
 * A uniformly random non-zero scalar from 48 bytes of `rng`, reduced to [1, n-1] as
 * noble's `schnorr_FROST` does (mapHashToField): same rng, same scalar.
 */
export function randomScalar(rng: Rng): bigint {
  const bytes = rng(48);
  if (!(bytes instanceof Uint8Array) || bytes.length !== 48) {
    throw new CryptoError('invalid_encoding', 'rng: expected 48 bytes');
  }
  const r = (fromBytes(bytes) % (N - 1n)) + 1n;
  bytes.fill(0);
  return r;
}
