/**
 * Adapter between Floe's typed packages and the FROST engine (`@noble/curves`
 * `schnorr_FROST`, ciphersuite FROST-secp256k1-SHA256-TR-v1).
 */

import type { FrostPublic, FrostSecret, NonceCommitments } from '@noble/curves/abstract/frost.js';
import { schnorr_FROST } from '@noble/curves/secp256k1.js';
import { fromEngineId, toEngineId } from './identifier.js';

export { toEngineId };

/** The engine's types want ArrayBuffer-backed arrays; ours are plain Uint8Array. */
export const asEngine = <T>(x: unknown): T => x as T;

import type { KeyPackage, PublicKeyPackage, SigningCommitments } from './types.js';

export const suite = schnorr_FROST;
export const SUITE_NAME = 'FROST-secp256k1-SHA256-TR-v1';

export function toEnginePublic(pub: PublicKeyPackage): FrostPublic {
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const [id, vs] of pub.verifyingShares) verifyingShares[toEngineId(id)] = vs;
  return asEngine<FrostPublic>({
    signers: { min: pub.threshold, max: pub.n },
    commitments: pub.commitments,
    verifyingShares,
  });
}

export function fromEnginePublic(pub: FrostPublic, tweak: PublicKeyPackage['tweak']): PublicKeyPackage {
  const verifyingShares = new Map<number, Uint8Array>();
  for (const [id, vs] of Object.entries(pub.verifyingShares)) verifyingShares.set(fromEngineId(id), vs);
  return {
    threshold: pub.signers.min,
    n: pub.signers.max,
    commitments: pub.commitments.map((c) => Uint8Array.from(c)),
    verifyingShares,
    tweak,
  };
}

export function toEngineSecret(key: KeyPackage): FrostSecret {
  return asEngine<FrostSecret>({ identifier: toEngineId(key.identifier), signingShare: key.signingShare });
}

export function toEngineCommitments(list: readonly SigningCommitments[]): NonceCommitments[] {
  return asEngine<NonceCommitments[]>(
    list.map((c) => ({ identifier: toEngineId(c.identifier), hiding: c.hiding, binding: c.binding })),
  );
}
