/** Import of a dealer share (split on the client, encrypted to this signer; the coordinator relays it blind). */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Identifier, Strict } from '../schema.js';
import { KeyId } from './dkg.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './frost.js';

export const KeyImportRequest = Strict({
  key_id: KeyId,
  identifier: Identifier,
  public_key_package: PublicKeyPackageSchema,
  /** The 32-byte signing share, sealed to this signer's identity key by an ephemeral key. */
  sealed_share: SealedBoxSchema,
});
export const KeyImportResponse = Strict({
  key_id: KeyId,
  identifier: Identifier,
  verifying_share: Hex(33),
  status: Type.Literal('active'),
  /** BIP-340 signature by the signer's identity key over the import digest. */
  certificate: Hex(64),
});

export type KeyImportRequest = Static<typeof KeyImportRequest>;
export type KeyImportResponse = Static<typeof KeyImportResponse>;
