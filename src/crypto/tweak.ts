import { CryptoError } from './errors.js';
import { Fn, hasEvenY, Point, parsePoint, parseScalar, scalarToBytes } from './group.js';
import { sha256, utf8 } from './hash.js';
import { concatBytes } from './hex.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

/** BIP-340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || msg). */
export function taggedHash(tag: string, ...msgs: Uint8Array[]): Uint8Array {
  const t = sha256(utf8(tag));
  return sha256(concatBytes(t, t, ...msgs));
}

function checkMerkleRoot(merkleRoot: Uint8Array): void {
  if (merkleRoot.length !== 0 && merkleRoot.length !== 32) {
    throw new CryptoError('invalid_encoding', 'merkle root: expected 0 or 32 bytes');
  }
}

/** BIP-341 tweak scalar t = int(H_TapTweak(x(P) || merkle_root)); fails if t >= n. */
export function tapTweakScalar(internalKey: Uint8Array, merkleRoot: Uint8Array): bigint {
  checkMerkleRoot(merkleRoot);
  const p = parsePoint(internalKey, 'internal key');
  const x = p.toBytes(true).subarray(1);
  const h = taggedHash('TapTweak', x, merkleRoot);
  return parseScalar(h, 'TapTweak hash', false);
}

/**
 * BIP-341 output key of an internal key (33-byte compressed in, 33-byte compressed out):
 * Q = lift_x(x(P)) + t·G.
 */
export function taprootOutputKey(
  internalKey: Uint8Array,
  merkleRoot: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const p = parsePoint(internalKey, 'internal key');
  const even = hasEvenY(p) ? p : p.negate();
  const t = tapTweakScalar(internalKey, merkleRoot);
  return (t === 0n ? even : even.add(Point.BASE.multiply(t))).toBytes(true);
}

/**
 * Tweak a public key package so that the group signs for the BIP-341 output key.
 * The group key P is first made even (negating every commitment and verifying share when
 * needed), then t·G is added to the group key and to every verifying share: since the
 * Lagrange weights of any t signers sum to 1, the shares then sign for P_even + t·G.
 */
export function tweakPublicKeyPackage(
  pub: PublicKeyPackage,
  merkleRoot: Uint8Array = new Uint8Array(0),
): PublicKeyPackage {
  if (pub.tweak.kind !== 'none') throw new CryptoError('invalid_package', 'key is already tweaked');
  const internalKey = pub.commitments[0]!;
  const P = parsePoint(internalKey, 'group key');
  const flip = !hasEvenY(P);
  const norm = (b: Uint8Array, what: string) => {
    const pt = parsePoint(b, what);
    return flip ? pt.negate() : pt;
  };
  const t = tapTweakScalar(internalKey, merkleRoot);
  // t = 0 has negligible probability; multiply() rejects 0, and adding 0·G changes nothing.
  const tG = t === 0n ? undefined : Point.BASE.multiply(t);
  const add = (pt: ReturnType<typeof norm>) => (tG ? pt.add(tG) : pt);
  const commitments = pub.commitments.map((c, i) =>
    (i === 0 ? add(norm(c, 'group key')) : norm(c, 'commitment')).toBytes(true),
  );
  const verifyingShares = new Map<number, Uint8Array>();
  for (const [id, vs] of pub.verifyingShares)
    verifyingShares.set(id, add(norm(vs, 'verifying share')).toBytes(true));
  return {
    threshold: pub.threshold,
    n: pub.n,
    commitments,
    verifyingShares,
    tweak: {
      kind: 'taproot',
      internalKey: Uint8Array.from(internalKey),
      merkleRoot: Uint8Array.from(merkleRoot),
    },
  };
}

/** Tweak one member's key package to match {@link tweakPublicKeyPackage}. */
export function tweakKeyPackage(key: KeyPackage, merkleRoot: Uint8Array = new Uint8Array(0)): KeyPackage {
  const pub = tweakPublicKeyPackage(key.public, merkleRoot);
  const P = parsePoint(key.public.commitments[0]!, 'group key');
  const s = parseScalar(key.signingShare, 'signing share');
  const t = tapTweakScalar(key.public.commitments[0]!, merkleRoot);
  const even = hasEvenY(P) ? s : Fn.neg(s);
  return { identifier: key.identifier, signingShare: scalarToBytes(Fn.add(even, t)), public: pub };
}
