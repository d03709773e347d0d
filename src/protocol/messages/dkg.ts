/** DKG ceremony messages, coordinator → signer (DESIGN §8). */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Id, Identifier, Strict } from '../schema.js';
import { ApprovalPolicySchema } from './approvals.js';
import { DkgRound1Schema, PublicKeyPackageSchema, SealedBoxSchema } from './frost.js';

export const CeremonyId = Id('ceremony id');
export const KeyId = Id('key id');

export const Participant = Strict({
  identifier: Identifier,
  identity: Hex(32, 'signer identity key (x-only)'),
});

export const DkgRound1Request = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  threshold: Type.Integer({ minimum: 2, maximum: 255 }),
  n: Type.Integer({ minimum: 2, maximum: 255 }),
  /** This signer's identifier in the ceremony. */
  identifier: Identifier,
  participants: Type.Array(Participant, { minItems: 2, maxItems: 255 }),
  /**
   * The key's steward approval policy (DESIGN §13), bound into the transcript every member
   * certifies and kept by each member: its shares sign only with the stewards' quorum.
   */
  approval_policy: Type.Optional(ApprovalPolicySchema),
  /**
   * A deterministic DKG (DESIGN §14, per-passphrase addresses): the signer draws its polynomial
   * and proof nonce from its deterministic secret (HSM HMAC) over this passphrase id, the
   * threshold, n, its identifier and the members, so the same request on any rebuild with the
   * same HSM gives the same key. Absent: fresh randomness, as always.
   */
  deterministic: Type.Optional(
    Strict({
      passphrase_id: Hex(
        32,
        "not the passphrase: the coordinator's HMAC of it (under its address secret, per tenant)",
      ),
    }),
  ),
});
export const DkgRound1Response = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  round1: DkgRound1Schema,
});

export const DkgRound2Request = Strict({
  ceremony_id: CeremonyId,
  /** Every member's round-1 package, this signer's own included. */
  round1: Type.Array(DkgRound1Schema, { minItems: 2, maxItems: 255 }),
});
export const AddressedBox = Strict({ receiver: Identifier, box: SealedBoxSchema });
export const DkgRound2Response = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  boxes: Type.Array(AddressedBox, { minItems: 1, maxItems: 254 }),
});

export const ReceivedBox = Strict({ sender: Identifier, box: SealedBoxSchema });
export const DkgRound3Request = Strict({
  ceremony_id: CeremonyId,
  boxes: Type.Array(ReceivedBox, { minItems: 1, maxItems: 254 }),
});
export const DkgRound3Response = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  identifier: Identifier,
  public_key_package: PublicKeyPackageSchema,
  transcript_hash: Hex(32),
  /** BIP-340 signature by the signer's identity key over the certificate digest. */
  certificate: Hex(64),
});

export const Certificate = Strict({
  identifier: Identifier,
  transcript_hash: Hex(32),
  group_public_key: Hex(33),
  certificate: Hex(64),
});
export const DkgCertifyRequest = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  certificates: Type.Array(Certificate, { minItems: 2, maxItems: 255 }),
});
export const DkgCertifyResponse = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  status: Type.Literal('active'),
});

export const DkgAbortRequest = Strict({ ceremony_id: CeremonyId });
export const DkgAbortResponse = Strict({ ceremony_id: CeremonyId, aborted: Type.Boolean() });

export type DkgRound1Request = Static<typeof DkgRound1Request>;
export type DkgRound1Response = Static<typeof DkgRound1Response>;
export type DkgRound2Request = Static<typeof DkgRound2Request>;
export type DkgRound2Response = Static<typeof DkgRound2Response>;
export type DkgRound3Request = Static<typeof DkgRound3Request>;
export type DkgRound3Response = Static<typeof DkgRound3Response>;
export type DkgCertifyRequest = Static<typeof DkgCertifyRequest>;
export type DkgCertifyResponse = Static<typeof DkgCertifyResponse>;
export type DkgAbortRequest = Static<typeof DkgAbortRequest>;
export type DkgAbortResponse = Static<typeof DkgAbortResponse>;
