import { type BPoint, cryptoBackend } from './backend.js';
import { assertCompressed } from './backend-util.js';
import { CryptoError } from './errors.js';
import { flipEncoding } from './frost.js';
import { parsePoint, parseScalar, scalarToBytes } from './group.js';
import * as S from './scalar.js';
import { taggedHash } from './tagged.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

/** BIP-340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || msg). */
export { taggedHash };

function checkMerkleRoot(merkleRoot: Uint8Array): void {
  if (merkleRoot.length !== 0 && merkleRoot.length !== 32) {
    throw new CryptoError('invalid_encoding', 'merkle root: expected 0 or 32 bytes');
  }
}

/** BIP-341 tweak scalar t = int(H_TapTweak(x(P) || merkle_root)); fails if t >= n. */
export function tapTweakScalar(internalKey: Uint8Array, merkleRoot: Uint8Array): bigint {
  checkMerkleRoot(merkleRoot);
  parsePoint(internalKey, 'internal key');
  const h = taggedHash('TapTweak', internalKey.subarray(1), merkleRoot);
  return parseScalar(h, 'TapTweak hash', false);
}

/** P + t·G (t public), or P when t = 0; invalid_point if the result is the identity. */
function addTweak(P: BPoint, t: bigint): BPoint {
  if (t === 0n) return P;
  const b = cryptoBackend();
  const q = b.add(P, b.mulBase(S.toBytes(t)));
  if (!q) throw new CryptoError('invalid_point', 'tweaked key is the identity');
  return q;
}

/**
 * BIP-341 output key of an internal key (33-byte compressed in, 33-byte compressed out):
 * Q = lift_x(x(P)) + t·G.
 */
export function taprootOutputKey(
  internalKey: Uint8Array,
  merkleRoot: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const t = tapTweakScalar(internalKey, merkleRoot);
  const b = cryptoBackend();
  return b.encode(addTweak(b.liftX(internalKey.subarray(1), 'internal key'), t));
}

/**
 * Tweak a public key package so that the group signs for the BIP-341 output key.
 * The group key P is first made even (negating every commitment and verifying share when
 * needed: the other-Y encoding of the same x), then t·G is added to the group key and to
 * every verifying share: since the Lagrange weights of any t signers sum to 1, the shares
 * then sign for P_even + t·G.
 */
export function tweakPublicKeyPackage(
  pub: PublicKeyPackage,
  merkleRoot: Uint8Array = new Uint8Array(0),
): PublicKeyPackage {
  if (pub.tweak.kind !== 'none') throw new CryptoError('invalid_package', 'key is already tweaked');
  const internalKey = pub.commitments[0]!;
  const t = tapTweakScalar(internalKey, merkleRoot);
  const flip = internalKey[0] === 3;
  const b = cryptoBackend();
  const tG = t === 0n ? undefined : b.mulBase(S.toBytes(t));
  const shifted = (raw: Uint8Array, what: string) => {
    assertCompressed(raw, what);
    const p = b.decode(flip ? flipEncoding(raw) : raw, what);
    const q = tG ? b.add(p, tG) : p;
    if (!q) throw new CryptoError('invalid_point', `${what}: tweaked point is the identity`);
    return b.encode(q);
  };
  const commitments = pub.commitments.map((c, i) => {
    if (i === 0) return shifted(c, 'group key');
    parsePoint(c, 'commitment');
    return flip ? flipEncoding(c) : Uint8Array.from(c);
  });
  const verifyingShares = new Map<number, Uint8Array>();
  for (const [id, vs] of pub.verifyingShares) verifyingShares.set(id, shifted(vs, 'verifying share'));
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
  const internalKey = key.public.commitments[0]!;
  const s = parseScalar(key.signingShare, 'signing share');
  const t = tapTweakScalar(internalKey, merkleRoot);
  const even = internalKey[0] === 3 ? S.neg(s) : s;
  return { identifier: key.identifier, signingShare: scalarToBytes(S.add(even, t)), public: pub };
}
