/**
 * Independent references for the Bitcoin tests: noble (@noble/curves) for scalar/point
 * arithmetic and BIP-340 signing, node:crypto for hashes. Nothing here calls src/bitcoin.
 */
import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';

export const N = secp256k1.Point.Fn.ORDER;
const Point = secp256k1.Point;

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const big = (b: Uint8Array): bigint => BigInt(`0x${hex(b) || '0'}`);
export const bytes32 = (n: bigint): Uint8Array => unhex(n.toString(16).padStart(64, '0'));

export const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** BIP-340 tagged hash, written out. */
export function tagged(tag: string, ...parts: Uint8Array[]): Uint8Array {
  const t = sha256(new TextEncoder().encode(tag));
  return sha256(t, t, ...parts);
}

/** A random secret scalar, 0 < s < n. */
export function randomSecret(): bigint {
  for (;;) {
    const s = big(new Uint8Array(randomBytes(32)));
    if (s > 0n && s < N) return s;
  }
}

/** s·G compressed (noble). */
export const pub = (s: bigint): Uint8Array => Point.BASE.multiply(s).toBytes(true);

/**
 * The BIP-341 tweaked secret of an internal secret: negate when s·G has an odd Y, add
 * int(TapTweak(x || merkleRoot)). Written from the BIP, with noble, for comparison.
 */
export function tweakSecret(s: bigint, merkleRoot: Uint8Array = new Uint8Array(0)): bigint {
  const P = pub(s);
  const even = P[0] === 3 ? N - s : s;
  const t = big(tagged('TapTweak', P.subarray(1), merkleRoot));
  return (even + t) % N;
}

/** BIP-340 signature with noble (aux randomness defaults to zero bytes). */
export function schnorrSign(msg: Uint8Array, secret: bigint, aux = new Uint8Array(32)): Uint8Array {
  return schnorr.sign(msg, bytes32(secret), aux);
}

/** BIP-39 seed of a mnemonic (empty passphrase): PBKDF2-HMAC-SHA512, 2048 rounds. */
export function mnemonicSeed(mnemonic: string): Uint8Array {
  return new Uint8Array(pbkdf2Sync(mnemonic.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512'));
}

/** BIP-341 compact-size prefix. */
export function compactSize(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >> 8);
  throw new Error('script too long for this helper');
}

/** TapLeaf hash of a script. */
export function tapLeaf(script: Uint8Array, leafVersion = 0xc0): Uint8Array {
  return tagged('TapLeaf', Uint8Array.of(leafVersion), compactSize(script.length), script);
}

/** TapBranch hash of two child hashes (sorted). */
export function tapBranch(a: Uint8Array, b: Uint8Array): Uint8Array {
  return Buffer.compare(a, b) <= 0 ? tagged('TapBranch', a, b) : tagged('TapBranch', b, a);
}
