/** JSON Schemas of the crypto encodings (src/crypto/encoding.ts) as they appear in messages. */
import { Type } from '@sinclair/typebox';
import { Hex, HexAny, Identifier, Strict } from '../schema.js';

const V = Type.Literal(1);
const Point = Hex(33, 'compressed secp256k1 point');
const Scalar = Hex(32, 'secp256k1 scalar');

export const KeyTweakSchema = Type.Union([
  Strict({ kind: Type.Literal('none') }),
  Strict({ kind: Type.Literal('taproot'), internal_key: Point, merkle_root: HexAny(32) }),
]);

export const PublicKeyPackageSchema = Strict({
  v: V,
  type: Type.Literal('public_key_package'),
  threshold: Type.Integer({ minimum: 2, maximum: 255 }),
  n: Type.Integer({ minimum: 2, maximum: 255 }),
  commitments: Type.Array(Point, { minItems: 2, maxItems: 255 }),
  verifying_shares: Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,2}$' }), Point),
  tweak: KeyTweakSchema,
});

export const CommitmentsSchema = Strict({
  v: V,
  type: Type.Literal('commitments'),
  identifier: Identifier,
  hiding: Point,
  binding: Point,
});

export const SigningPackageSchema = Strict({
  v: V,
  type: Type.Literal('signing_package'),
  message: HexAny(1 << 20),
  commitments: Type.Array(CommitmentsSchema, { minItems: 1, maxItems: 255 }),
});

export const SignatureShareSchema = Strict({
  v: V,
  type: Type.Literal('signature_share'),
  identifier: Identifier,
  share: Scalar,
});

export const DkgRound1Schema = Strict({
  v: V,
  type: Type.Literal('dkg_round1'),
  identifier: Identifier,
  commitment: Type.Array(Point, { minItems: 2, maxItems: 255 }),
  proof_of_knowledge: Hex(64),
});

export const SealedBoxSchema = Strict({
  sender: Hex(32, 'sender public key (x-only)'),
  nonce: Hex(12),
  ciphertext: HexAny(4096),
});
