/**
 * Public HTTP API objects (DESIGN §9). Declared once: fastify validates requests against
 * them (additionalProperties: false), responses are serialized through them, and the
 * OpenAPI document at /openapi.json is generated from them.
 */
import { type Static, Type } from '@sinclair/typebox';
import { PublicKeyPackageSchema, SealedBoxSchema } from '../../protocol/messages/frost.js';
import { Hex, Strict } from '../../protocol/schema.js';

export const IdString = (description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description });

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'stable error code' }),
    detail: Type.String(),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

export const Role = Type.Union(
  ['admin', 'operator', 'requester', 'viewer'].map((r) => Type.Literal(r)),
  {
    description:
      'admin: tokens (and, in the system tenant, the signer registry); operator: keys; requester: sign; viewer: read',
  },
);
export type Role = 'admin' | 'operator' | 'requester' | 'viewer';

export const KeyMemberObject = Strict({
  identifier: Type.Integer(),
  signer_id: Type.String(),
  identity: Type.String({ description: 'signer identity key (x-only hex)' }),
});

export const KeyObject = Strict({
  id: Type.String(),
  label: Type.Union([Type.String(), Type.Null()]),
  threshold: Type.Integer(),
  n: Type.Integer(),
  status: Type.Union(['pending', 'active', 'failed', 'disabled'].map((s) => Type.Literal(s))),
  origin: Type.Union(['dkg', 'dealer', 'derived'].map((s) => Type.Literal(s))),
  public_key: Type.Union([Hex(33), Type.Null()], { description: '33-byte compressed group public key' }),
  x_only_public_key: Type.Union([Hex(32), Type.Null()], {
    description: 'BIP-340 public key the signatures verify under',
  }),
  npub: Type.Union([Type.String(), Type.Null()], { description: 'NIP-19 npub of x_only_public_key' }),
  tweak: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
    description: 'taproot: BIP-86 tweaked DKG key (internal_key recorded); none: dealer key as imported',
  }),
  members: Type.Array(KeyMemberObject),
  ceremony: Type.Optional(
    Type.Object(
      {
        id: Type.String(),
        status: Type.String(),
        error_code: Type.Union([Type.String(), Type.Null()]),
        culprits: Type.Array(Type.Integer()),
      },
      { additionalProperties: false },
    ),
  ),
  created_at: Type.Integer({ description: 'Unix ms' }),
});
export type KeyObject = Static<typeof KeyObject>;

export const CreateKeyBody = Strict({
  threshold: Type.Integer({ minimum: 2, maximum: 255 }),
  signers: Type.Optional(
    Type.Array(IdString('signer id'), { minItems: 2, maxItems: 255, uniqueItems: true }),
  ),
  label: Type.Optional(Type.String({ maxLength: 200 })),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the ceremony' }),
  ),
});

export const ImportKeyBody = Strict({
  key_id: IdString(
    'id of the new key, chosen by the client: every sealed share is bound to it (importBoxAad), so the coordinator cannot choose it',
  ),
  signers: Type.Array(IdString('signer id'), {
    minItems: 2,
    maxItems: 255,
    uniqueItems: true,
    description: 'signer i+1 receives sealed_shares[i]',
  }),
  public_key_package: PublicKeyPackageSchema,
  sealed_shares: Type.Array(SealedBoxSchema, { minItems: 2, maxItems: 255 }),
  label: Type.Optional(Type.String({ maxLength: 200 })),
});

export const SessionStatus = Type.Union(
  ['pending', 'nonce_collection', 'signing', 'aggregating', 'completed', 'failed', 'expired'].map((s) =>
    Type.Literal(s),
  ),
);

export const SessionObject = Strict({
  id: Type.String(),
  key_id: Type.String(),
  message: Hex(32),
  status: SessionStatus,
  attempt: Type.Integer(),
  participants: Type.Array(Type.Integer()),
  signature: Type.Union([Hex(64), Type.Null()], { description: 'BIP-340 signature, when completed' }),
  error_code: Type.Union([Type.String(), Type.Null()]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  culprits: Type.Array(Type.Integer()),
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
  expires_at: Type.Integer(),
  completed_at: Type.Union([Type.Integer(), Type.Null()]),
});
export type SessionObject = Static<typeof SessionObject>;

export const CreateSessionBody = Strict({
  key_id: IdString('key id'),
  message: Hex(32, '32-byte digest to sign'),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the signature' }),
  ),
});

export const SignerObject = Strict({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  url: Type.String(),
  identity: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  fault_count: Type.Integer(),
  quarantined: Type.Boolean(),
  quarantine_override: Type.Boolean(),
  last_seen_at: Type.Union([Type.Integer(), Type.Null()]),
  last_latency_ms: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Type.Integer(),
});
export type SignerObject = Static<typeof SignerObject>;

export const RegisterSignerBody = Strict({
  url: Type.String({ pattern: '^https?://', maxLength: 500 }),
  identity: Hex(32, 'signer identity key (x-only hex), as printed by `floe signer --print-identity`'),
  name: Type.Optional(Type.String({ maxLength: 100 })),
});

export const UpdateSignerBody = Strict({
  status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
  quarantine_override: Type.Optional(Type.Boolean()),
  clear_faults: Type.Optional(Type.Boolean()),
});

export const ListQuery = Strict({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.String({ maxLength: 32 })),
});

export const List = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Strict({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

export const IdParams = Strict({ id: IdString('id') });
