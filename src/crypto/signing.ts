/**
 * FROST signing: round 1 (commit), round 2 (sign a share), share verification,
 * aggregation with cheater identification, and BIP-340 verification.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { suite, toEngineCommitments, toEnginePublic, toEngineSecret } from './engine.js';
import { CryptoError } from './errors.js';
import { parseScalar, xOnly } from './group.js';
import { sortedUniqueIds, toEngineId } from './identifier.js';
import type {
  KeyPackage,
  PublicKeyPackage,
  SignatureShare,
  SigningCommitments,
  SigningNonces,
  SigningPackage,
} from './types.js';

/** 33-byte compressed group public key (after any tweak). */
export function groupPublicKey(pub: PublicKeyPackage): Uint8Array {
  return pub.commitments[0]!;
}

/** 32-byte BIP-340 public key the group signs for. */
export function xOnlyGroupKey(pub: PublicKeyPackage): Uint8Array {
  return xOnly(groupPublicKey(pub));
}

/**
 * Round 1: fresh nonces (RFC 9591 nonce_generate: 32 bytes of OS randomness hashed with
 * the signing share) and their public commitments. `rng` exists only for test vectors.
 */
export function commit(
  key: KeyPackage,
  rng?: (len?: number) => Uint8Array,
): { nonces: SigningNonces; commitments: SigningCommitments } {
  const g = suite.commit(toEngineSecret(key), rng);
  return {
    nonces: { hiding: g.nonces.hiding, binding: g.nonces.binding },
    commitments: { identifier: key.identifier, hiding: g.commitments.hiding, binding: g.commitments.binding },
  };
}

/** Structural checks of a signing package against a key (no secrets involved). */
export function checkSigningPackage(pub: PublicKeyPackage, pkg: SigningPackage): void {
  const ids = sortedUniqueIds(
    pkg.commitments.map((c) => c.identifier),
    'signing package identifiers',
  );
  if (ids.length !== pub.threshold) {
    throw new CryptoError('invalid_package', `signing package needs exactly ${pub.threshold} commitments`);
  }
  for (const id of ids) {
    if (!pub.verifyingShares.has(id))
      throw new CryptoError('invalid_package', `identifier ${id} is not a member`);
  }
}

/**
 * Round 2: this member's signature share. The engine zero-fills `nonces` afterwards, so
 * the same nonce object can never sign twice.
 */
export function signShare(key: KeyPackage, nonces: SigningNonces, pkg: SigningPackage): SignatureShare {
  checkSigningPackage(key.public, pkg);
  if (!pkg.commitments.some((c) => c.identifier === key.identifier)) {
    throw new CryptoError('invalid_package', 'own identifier is not in the signing package');
  }
  let share: Uint8Array;
  try {
    share = suite.signShare(
      toEngineSecret(key),
      toEnginePublic(key.public),
      nonces,
      toEngineCommitments(pkg.commitments),
      pkg.message,
    );
  } catch {
    // e.g. nonces already used (zero-filled) or not matching this member's commitment
    throw new CryptoError('invalid_package', 'cannot sign: nonces used or not matching the commitment');
  }
  return { identifier: key.identifier, share: Uint8Array.from(share) };
}

export function verifyShare(pub: PublicKeyPackage, pkg: SigningPackage, share: SignatureShare): boolean {
  try {
    parseScalar(share.share, 'signature share', false);
    return suite.verifyShare(
      toEnginePublic(pub),
      toEngineCommitments(pkg.commitments),
      pkg.message,
      toEngineId(share.identifier),
      share.share,
    );
  } catch {
    return false;
  }
}

/**
 * Aggregate shares into a 64-byte BIP-340 signature and verify it. On failure every share
 * is verified on its own and the members whose shares are invalid are named as culprits.
 */
export function aggregate(
  pub: PublicKeyPackage,
  pkg: SigningPackage,
  shares: readonly SignatureShare[],
): Uint8Array {
  checkSigningPackage(pub, pkg);
  const want = pkg.commitments.map((c) => c.identifier);
  const got = sortedUniqueIds(
    shares.map((s) => s.identifier),
    'share identifiers',
  );
  if (got.length !== want.length || got.some((id, i) => id !== want[i])) {
    throw new CryptoError('invalid_package', 'shares must come from exactly the signers in the package');
  }
  const culprits = () => shares.filter((s) => !verifyShare(pub, pkg, s)).map((s) => s.identifier);
  let sig: Uint8Array;
  try {
    for (const s of shares) parseScalar(s.share, 'signature share', false);
    const byId: Record<string, Uint8Array> = {};
    for (const s of shares) byId[toEngineId(s.identifier)] = s.share;
    sig = suite.aggregate(toEnginePublic(pub), toEngineCommitments(pkg.commitments), pkg.message, byId);
  } catch {
    const bad = culprits();
    throw new CryptoError(
      'aggregate_failed',
      bad.length ? `invalid signature shares from ${bad.join(', ')}` : 'aggregation failed',
      bad,
    );
  }
  if (!verifySignature(sig, pkg.message, xOnlyGroupKey(pub))) {
    const bad = culprits();
    throw new CryptoError('aggregate_failed', 'aggregate signature does not verify', bad);
  }
  return Uint8Array.from(sig);
}

/** BIP-340 verification against a 32-byte x-only key. */
export function verifySignature(sig: Uint8Array, message: Uint8Array, xOnlyKey: Uint8Array): boolean {
  try {
    return sig.length === 64 && xOnlyKey.length === 32 && schnorr.verify(sig, message, xOnlyKey);
  } catch {
    return false;
  }
}
