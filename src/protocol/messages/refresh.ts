/**
 * Share refresh messages, coordinator → signer (issue "Key lifecycle"; src/signer/refresh.ts).
 *
 * A refresh gives every member a new share of the same secret: round 1 broadcasts each member's
 * commitment to a random polynomial with a zero constant term, round 2 sends each other member
 * its sub-share sealed to it, round 3 derives the new share, keeps it durably beside the old one
 * (not usable yet) and certifies the new public package; `commit`, carrying every member's
 * certificate, makes the new generation the only one and wipes the old share. Members rotate
 * together or not at all: without every certificate nobody commits.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Identifier, Strict } from '../schema.js';
import { CeremonyId, KeyId, Participant } from './dkg.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './frost.js';

/** A share generation: 0 for the shares a key was created with, +1 per completed refresh. */
export const Generation = Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'share generation' });

const Point = Hex(33, 'compressed secp256k1 point');

export const RefreshRound1Schema = Strict({
  identifier: Identifier,
  /** Commitments to a_1..a_{t-1} of a polynomial whose a_0 is zero (not sent). */
  commitment: Type.Array(Point, { minItems: 1, maxItems: 254 }),
});

export const RefreshRound1Request = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  /** The generation the refresh creates: the member's current one plus one. */
  generation: Generation,
  /** This signer's identifier in the key. */
  identifier: Identifier,
  /** Every member of the key (identifier and identity), each on this signer's roster. */
  participants: Type.Array(Participant, { minItems: 2, maxItems: 255 }),
});
export const RefreshRound1Response = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  round1: RefreshRound1Schema,
});

export const RefreshRound2Request = Strict({
  ceremony_id: CeremonyId,
  /** Every member's round-1 package, this signer's own included. */
  round1: Type.Array(RefreshRound1Schema, { minItems: 2, maxItems: 255 }),
});
const AddressedBox = Strict({ receiver: Identifier, box: SealedBoxSchema });
export const RefreshRound2Response = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  boxes: Type.Array(AddressedBox, { minItems: 1, maxItems: 254 }),
});

const ReceivedBox = Strict({ sender: Identifier, box: SealedBoxSchema });
export const RefreshRound3Request = Strict({
  ceremony_id: CeremonyId,
  boxes: Type.Array(ReceivedBox, { minItems: 1, maxItems: 254 }),
});
export const RefreshRound3Response = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  identifier: Identifier,
  generation: Generation,
  /** The new public package (same group key, new verifying shares). */
  public_key_package: PublicKeyPackageSchema,
  /** BIP-340 signature by the signer's identity key over the refresh certificate digest. */
  certificate: Hex(64),
});

export const RefreshCertificate = Strict({ identifier: Identifier, certificate: Hex(64) });
export const RefreshCommitRequest = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  generation: Generation,
  /** One certificate from every member, each over the same new public package. */
  certificates: Type.Array(RefreshCertificate, { minItems: 2, maxItems: 255 }),
});
export const RefreshCommitResponse = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  generation: Generation,
  status: Type.Literal('committed'),
});

export const RefreshAbortRequest = Strict({ ceremony_id: CeremonyId, key_id: KeyId });
export const RefreshAbortResponse = Strict({ ceremony_id: CeremonyId, aborted: Type.Boolean() });

export type RefreshRound1Request = Static<typeof RefreshRound1Request>;
export type RefreshRound1Response = Static<typeof RefreshRound1Response>;
export type RefreshRound2Request = Static<typeof RefreshRound2Request>;
export type RefreshRound2Response = Static<typeof RefreshRound2Response>;
export type RefreshRound3Request = Static<typeof RefreshRound3Request>;
export type RefreshRound3Response = Static<typeof RefreshRound3Response>;
export type RefreshCommitRequest = Static<typeof RefreshCommitRequest>;
export type RefreshCommitResponse = Static<typeof RefreshCommitResponse>;
export type RefreshAbortRequest = Static<typeof RefreshAbortRequest>;
export type RefreshAbortResponse = Static<typeof RefreshAbortResponse>;
