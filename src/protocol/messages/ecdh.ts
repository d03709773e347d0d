/**
 * Threshold ECDH, coordinator → signer (DESIGN §14; src/crypto/threshold-ecdh.ts): each member
 * returns S_i = s_i·lift_x(peer) with a DLEQ proof against its verifying share; the coordinator
 * checks the proofs and combines t of them into the ECDH value NIP-04 and NIP-44 need.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Id, Identifier, literalUnion, Strict } from '../schema.js';
import { KeyId } from './dkg.js';
import { Generation } from './refresh.js';

/**
 * What the shared x is for: `nip04` and `nip44` (the coordinator's encrypt/decrypt API) or
 * `ecdh` (a caller that uses the x itself, such as the NIP-46 bunker). Signed into each proof
 * and shown to the signer's policy and audit.
 */
export const ECDH_PURPOSES = ['nip04', 'nip44', 'ecdh'] as const;
export type EcdhPurpose = (typeof ECDH_PURPOSES)[number];

export const EcdhRequestId = Id('ECDH request id (chosen by the coordinator, one per ECDH)');

export const EcdhShareRequest = Strict({
  key_id: KeyId,
  request_id: EcdhRequestId,
  /** Members the coordinator asks (sorted, unique, at least the threshold); this signer among them. */
  included: Type.Array(Identifier, { minItems: 1, maxItems: 255 }),
  /** The peer's x-only public key; the signer refuses one that is not on the curve. */
  peer: Hex(32, "peer's x-only public key"),
  purpose: literalUnion(ECDH_PURPOSES, 'what the shared x is for'),
  /** The tenant the coordinator acts for (for the signer's policy and audit; the coordinator's word). */
  tenant_id: Type.Optional(Id('tenant id')),
  /**
   * The share generation the coordinator checks the proofs against (absent: 0). A signer holding
   * another generation refuses (`generation_mismatch`) instead of answering with a share whose
   * proof would fail against the coordinator's verifying share and read as a proven fault.
   */
  generation: Type.Optional(Generation),
});
export const EcdhShareResponse = Strict({
  key_id: KeyId,
  request_id: EcdhRequestId,
  identifier: Identifier,
  /** S_i = s_i·lift_x(peer), 33-byte compressed. */
  shared: Hex(33, 'S_i = s_i·P'),
  /** DLEQ proof c ‖ z that log_G(Y_i) = log_P(S_i) (src/crypto/dleq.ts proveDleq). */
  proof: Hex(64, 'DLEQ proof'),
});

export type EcdhShareRequest = Static<typeof EcdhShareRequest>;
export type EcdhShareResponse = Static<typeof EcdhShareResponse>;
