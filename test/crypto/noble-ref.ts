/**
 * Conversions between Floe's typed packages and noble's `schnorr_FROST` objects, so tests can
 * use noble as the reference implementation (DESIGN §10).
 */
import type { FrostPublic, FrostSecret, NonceCommitments } from '@noble/curves/abstract/frost.js';
import { schnorr_FROST } from '@noble/curves/secp256k1.js';
import type { KeyPackage, PublicKeyPackage, SigningCommitments } from '../../src/crypto/index.js';

/** noble's identifier (64 hex chars) of a Floe member number. */
export const nobleId = (id: number | bigint): string =>
  typeof id === 'bigint' ? id.toString(16).padStart(64, '0') : schnorr_FROST.Identifier.fromNumber(id);

export function toNoblePublic(pub: PublicKeyPackage): FrostPublic {
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const [id, vs] of pub.verifyingShares) verifyingShares[nobleId(id)] = vs;
  return {
    signers: { min: pub.threshold, max: pub.n },
    commitments: pub.commitments,
    verifyingShares,
  } as unknown as FrostPublic;
}

export function toNobleSecret(key: KeyPackage): FrostSecret {
  return { identifier: nobleId(key.identifier), signingShare: key.signingShare } as unknown as FrostSecret;
}

export function toNobleCommitments(list: readonly SigningCommitments[]): NonceCommitments[] {
  return list.map((c) => ({
    identifier: nobleId(c.identifier),
    hiding: c.hiding,
    binding: c.binding,
  })) as unknown as NonceCommitments[];
}
