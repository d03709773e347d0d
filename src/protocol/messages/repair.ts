/**
 * Share repair messages, coordinator → signer (issue "Key lifecycle"; src/signer/repair.ts).
 *
 * A member lost its share (its machine died): t helpers, each holding a share of the current
 * generation, let a new signer on their roster derive the lost member's share, and nobody
 * learns the secret or another's share (the repairable threshold scheme, as ZF's frost-core):
 *   help     each helper splits λ_i·s_i (λ_i: its Lagrange coefficient at the lost identifier)
 *            into t random parts, seals one to each other helper, and publishes each part's
 *            point (their sum is λ_i·VS_i: anyone can check it against the public package);
 *   combine  each helper adds the parts it received, checks each against its point, and seals
 *            the sum to the new signer; it signs the repair statement (key, generation, lost
 *            identifier, the identity it is replaced by, the members, the public package);
 *   enroll   the new signer adds the sums, checks each against the points and the result
 *            against the lost member's verifying share, keeps the share pending and certifies;
 *   commit   every member learns the replacement (the lost identity is revoked for the key:
 *            never again a member of its ceremonies); the new signer's share becomes active.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Identifier, Strict } from '../schema.js';
import { ApprovalPolicySchema } from './approvals.js';
import { CeremonyId, KeyId, Participant } from './dkg.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './frost.js';
import { Generation } from './refresh.js';

const Point = Hex(33, 'compressed secp256k1 point');
const Identity = Hex(32, 'signer identity key (x-only)');
const Helpers = Type.Array(Identifier, { minItems: 2, maxItems: 255, description: 'the t helpers, sorted' });
const Members = Type.Array(Participant, {
  minItems: 2,
  maxItems: 255,
  description: 'every member after the repair: the new identity at the lost identifier',
});

/** What a repair is about; the same in every message (the signers bind it into what they sign). */
const Subject = {
  ceremony_id: CeremonyId,
  key_id: KeyId,
  /** The share generation repaired (the helpers' current one). */
  generation: Generation,
  /** The identifier whose share is repaired. */
  lost: Identifier,
  /** The identity the lost member had (revoked for this key by the commit). */
  replaced: Identity,
  helpers: Helpers,
  members: Members,
};

export const DeltaCommitment = Strict({ helper: Identifier, receiver: Identifier, commitment: Point });

export const RepairHelpRequest = Strict({ ...Subject });
export const RepairHelpResponse = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  /** δ_{i→j}·G for every helper j (this one included). */
  commitments: Type.Array(Strict({ receiver: Identifier, commitment: Point }), {
    minItems: 2,
    maxItems: 255,
  }),
  /** δ_{i→j} sealed to every other helper j. */
  boxes: Type.Array(Strict({ receiver: Identifier, box: SealedBoxSchema }), { minItems: 1, maxItems: 254 }),
});

export const RepairCombineRequest = Strict({
  ceremony_id: CeremonyId,
  boxes: Type.Array(Strict({ sender: Identifier, box: SealedBoxSchema }), { minItems: 1, maxItems: 254 }),
  /** Every helper's published points (t × t). */
  commitments: Type.Array(DeltaCommitment, { minItems: 4, maxItems: 65_025 }),
});
export const RepairCombineResponse = Strict({
  ceremony_id: CeremonyId,
  identifier: Identifier,
  /** σ_j sealed to the new member. */
  box: SealedBoxSchema,
  /** BIP-340 signature by this helper's identity over the repair statement. */
  statement: Hex(64),
});

export const HelperStatement = Strict({ identifier: Identifier, statement: Hex(64) });
export const RepairEnrollRequest = Strict({
  ...Subject,
  public_key_package: PublicKeyPackageSchema,
  origin: Type.Union([Type.Literal('dkg'), Type.Literal('dealer')]),
  commitments: Type.Array(DeltaCommitment, { minItems: 4, maxItems: 65_025 }),
  sigmas: Type.Array(Strict({ helper: Identifier, box: SealedBoxSchema }), { minItems: 2, maxItems: 255 }),
  statements: Type.Array(HelperStatement, { minItems: 2, maxItems: 255 }),
  /** The key's steward approval policy, when it has one (DESIGN §13). */
  approval_policy: Type.Optional(ApprovalPolicySchema),
});
export const RepairEnrollResponse = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  identifier: Identifier,
  verifying_share: Point,
  /** BIP-340 signature by the new member's identity over the repair statement. */
  certificate: Hex(64),
});

export const RepairCommitRequest = Strict({
  ...Subject,
  public_key_package: PublicKeyPackageSchema,
  statements: Type.Array(HelperStatement, { minItems: 2, maxItems: 255 }),
  /** The new member's certificate. */
  certificate: Hex(64),
});
export const RepairCommitResponse = Strict({
  ceremony_id: CeremonyId,
  key_id: KeyId,
  status: Type.Literal('committed'),
});

export const RepairAbortRequest = Strict({ ceremony_id: CeremonyId, key_id: KeyId });
export const RepairAbortResponse = Strict({ ceremony_id: CeremonyId, aborted: Type.Boolean() });

export type RepairHelpRequest = Static<typeof RepairHelpRequest>;
export type RepairHelpResponse = Static<typeof RepairHelpResponse>;
export type RepairCombineRequest = Static<typeof RepairCombineRequest>;
export type RepairCombineResponse = Static<typeof RepairCombineResponse>;
export type RepairEnrollRequest = Static<typeof RepairEnrollRequest>;
export type RepairEnrollResponse = Static<typeof RepairEnrollResponse>;
export type RepairCommitRequest = Static<typeof RepairCommitRequest>;
export type RepairCommitResponse = Static<typeof RepairCommitResponse>;
export type RepairAbortRequest = Static<typeof RepairAbortRequest>;
export type RepairAbortResponse = Static<typeof RepairAbortResponse>;
