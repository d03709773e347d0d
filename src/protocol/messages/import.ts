/**
 * Import of a dealer share (split on the client, sealed to each signer; the coordinator relays
 * it blind). Two steps, as DKG: every member stores its share `pending` and signs an import
 * certificate; only when every member's certificate is shown to it (key.import.confirm) does a
 * member activate the share, so a failed import leaves no usable share anywhere
 * (key.import.abort drops it).
 */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Identifier, Strict } from '../schema.js';
import { ApprovalPolicySchema } from './approvals.js';
import { KeyId, Participant } from './dkg.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './frost.js';

/** Every member of the key, each on the receiving signer's roster (DESIGN §11). */
export const Members = Type.Array(Participant, { minItems: 2, maxItems: 255 });

export const KeyImportRequest = Strict({
  key_id: KeyId,
  identifier: Identifier,
  members: Members,
  public_key_package: PublicKeyPackageSchema,
  /** The 32-byte signing share, sealed to this signer's identity key by an ephemeral key. */
  sealed_share: SealedBoxSchema,
  /**
   * The key's steward approval policy (DESIGN §13): bound into the box's associated data by the
   * client and into the import certificate, so a coordinator can neither drop nor change it.
   */
  approval_policy: Type.Optional(ApprovalPolicySchema),
});
export const KeyImportResponse = Strict({
  key_id: KeyId,
  identifier: Identifier,
  verifying_share: Hex(33),
  status: Type.Literal('pending'),
  /** BIP-340 signature by the signer's identity key over importCertificateDigest. */
  certificate: Hex(64),
});

export const ImportCertificate = Strict({
  identifier: Identifier,
  verifying_share: Hex(33),
  certificate: Hex(64),
});
export const KeyImportConfirmRequest = Strict({
  key_id: KeyId,
  members: Members,
  certificates: Type.Array(ImportCertificate, { minItems: 2, maxItems: 255 }),
});
export const KeyImportConfirmResponse = Strict({ key_id: KeyId, status: Type.Literal('active') });

export const KeyImportAbortRequest = Strict({ key_id: KeyId });
export const KeyImportAbortResponse = Strict({ key_id: KeyId, aborted: Type.Boolean() });

export type KeyImportRequest = Static<typeof KeyImportRequest>;
export type KeyImportResponse = Static<typeof KeyImportResponse>;
export type ImportCertificate = Static<typeof ImportCertificate>;
export type KeyImportConfirmRequest = Static<typeof KeyImportConfirmRequest>;
export type KeyImportConfirmResponse = Static<typeof KeyImportConfirmResponse>;
export type KeyImportAbortRequest = Static<typeof KeyImportAbortRequest>;
export type KeyImportAbortResponse = Static<typeof KeyImportAbortResponse>;
