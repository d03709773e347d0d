/**
 * The coordinator's public HTTP API contract (DESIGN §9): every request and response schema,
 * declared once. The coordinator's routes validate and serialize with them (TypeBox type
 * provider), /openapi.json is generated from them, and src/client takes its types from them.
 * Unions come from the lists in src/domain/vocabulary.ts.
 */
import { type Static, type TObject, Type } from '@sinclair/typebox';
import { ID_PATTERN } from '../domain/ids.js';
import {
  CEREMONY_STATUSES,
  INTENT_TYPES,
  KEY_ORIGINS,
  KEY_STATUSES,
  ROLE_DESCRIPTION,
  ROLES,
  SESSION_STATUSES,
  SIGNER_STATUSES,
} from '../domain/vocabulary.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './messages/frost.js';
import { IntentSchema } from './messages/intent.js';
import { Hex, literalUnion, Strict } from './schema.js';

export const IdString = (description: string) => Type.String({ pattern: ID_PATTERN, description });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {});
const UnixMs = (description = 'Unix milliseconds') => Type.Integer({ description });

// ---------------------------------------------------------------- common

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'stable error code' }),
    detail: Type.String(),
    hint: Type.Optional(Type.String({ description: 'what to do about it, when there is something' })),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

export const List = <T extends TObject>(item: T) =>
  Strict({ items: Type.Array(item), next_cursor: Nullable(Type.String()) });

export const IdParams = Strict({ id: IdString('id') });

export const ListQuery = Strict({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.String({ maxLength: 32 })),
});

export const Role = literalUnion(ROLES, ROLE_DESCRIPTION);

// ---------------------------------------------------------------- health

export const CoordinatorHealth = Strict({
  status: Type.String(),
  role: Type.Literal('coordinator'),
  identity: Hex(32, "the coordinator's identity key (x-only): what signers allowlist"),
  database: Type.String(),
  crypto_backend: Type.String({
    description: 'secp256k1 backend in use: native, wasm or noble (DESIGN §10)',
  }),
});
export type CoordinatorHealth = Static<typeof CoordinatorHealth>;

// ---------------------------------------------------------------- auth and tokens

export const TokenBody = Strict({ token: Type.String({ maxLength: 200 }) });
export const RefreshBody = Strict({ refresh_token: Type.String({ maxLength: 200 }) });
export const TokenResponse = Strict({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.String(),
});
export const CreateTokenBody = Strict({
  role: Role,
  label: Type.Optional(Type.String({ maxLength: 200 })),
  ttl_s: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400 })),
});
export const TokenObject = Strict({
  id: Type.String(),
  role: Role,
  label: Nullable(Type.String()),
  created_at: UnixMs(),
  expires_at: Nullable(UnixMs()),
  revoked_at: Nullable(UnixMs()),
});
export const CreatedToken = Strict({
  token: Type.String({ description: 'shown once' }),
  ...TokenObject.properties,
});
export type TokenObject = Static<typeof TokenObject>;
export type CreatedToken = Static<typeof CreatedToken>;

// ---------------------------------------------------------------- tenants

/** Tenant ids: an id (letters, digits, `_`, `-`) that starts with a letter or digit. */
export const TENANT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
export const CreateTenantBody = Strict({
  id: Type.String({ pattern: TENANT_ID_PATTERN, description: 'tenant id, chosen by the caller' }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'default: the id' })),
});
export const TenantObject = Strict({
  id: Type.String(),
  name: Type.String(),
  created_at: UnixMs(),
});
export const CreatedTenant = Strict({
  ...TenantObject.properties,
  admin_token: Strict(CreatedToken.properties, "the new tenant's first admin token (shown once)"),
});
export type CreateTenantBody = Static<typeof CreateTenantBody>;
export type TenantObject = Static<typeof TenantObject>;
export type CreatedTenant = Static<typeof CreatedTenant>;

// ---------------------------------------------------------------- keys

export const KeyMemberObject = Strict({
  identifier: Type.Integer(),
  signer_id: Type.String(),
  identity: Type.String({ description: 'signer identity key (x-only hex)' }),
});

export const KeyObject = Strict({
  id: Type.String(),
  label: Nullable(Type.String()),
  threshold: Type.Integer(),
  n: Type.Integer(),
  status: literalUnion(KEY_STATUSES),
  origin: literalUnion(KEY_ORIGINS),
  public_key: Nullable(Hex(33), '33-byte compressed group public key'),
  x_only_public_key: Nullable(Hex(32), 'BIP-340 public key the signatures verify under'),
  npub: Nullable(Type.String(), 'NIP-19 npub of x_only_public_key'),
  tweak: Nullable(
    Type.Object({}, { additionalProperties: true }),
    'taproot: BIP-86 tweaked DKG key (internal_key recorded); none: dealer key as imported',
  ),
  members: Type.Array(KeyMemberObject),
  ceremony: Type.Optional(
    Strict({
      id: Type.String(),
      status: literalUnion(CEREMONY_STATUSES),
      error_code: Nullable(Type.String()),
      culprits: Type.Array(Type.Integer()),
    }),
  ),
  created_at: UnixMs(),
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
export type CreateKeyBody = Static<typeof CreateKeyBody>;

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
export type ImportKeyBody = Static<typeof ImportKeyBody>;

/**
 * An imported key with every member's signed import certificate: the client checks each one
 * against the identity keys it pinned (`floe key import --roster`) before it trusts the key.
 */
export const ImportedKeyObject = Strict({
  ...KeyObject.properties,
  import_certificates: Type.Array(
    Strict({
      identifier: Type.Integer(),
      signer_id: Type.String(),
      identity: Hex(32, 'the member identity key the coordinator says signed'),
      verifying_share: Hex(33),
      certificate: Hex(64, 'BIP-340 signature over importCertificateDigest (src/protocol/transcript.ts)'),
    }),
  ),
});
export type ImportedKeyObject = Static<typeof ImportedKeyObject>;

// ---------------------------------------------------------------- sessions

/**
 * A Nostr event to sign. Loosely typed here on purpose: the service checks kind, tags,
 * content size and created_at itself so that each mistake gets its own error code
 * (event_kind_invalid, event_tags_invalid, event_content_too_large, event_created_at_invalid).
 */
export const NostrEventBody = Strict(
  {
    kind: Type.Integer({ description: 'event kind, 0–65535', examples: [1] }),
    content: Type.String({ description: 'event content (at most 64 KiB of UTF-8)' }),
    tags: Type.Optional(
      Type.Unknown({
        description: 'array of tags, each a non-empty array of strings',
        examples: [[['t', 'floe']]],
      }),
    ),
    created_at: Type.Optional(
      Type.Integer({ description: 'Unix seconds; default now; at most 15 minutes from now' }),
    ),
  },
  "an unsigned NIP-01 event: the pubkey is the key's x-only key and the id is computed, never supplied",
);
export type NostrEventBody = Static<typeof NostrEventBody>;

export const CreateSessionBody = Strict({
  key_id: IdString('key id'),
  message: Type.Optional(Hex(32, '32-byte digest to sign (lower-case hex)')),
  nostr_event: Type.Optional(NostrEventBody),
  bitcoin_psbt: Type.Optional(
    Type.String({ maxLength: 4 * 1024 * 1024, description: 'a PSBT, base64 (not supported yet)' }),
  ),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the signature' }),
  ),
});
export type CreateSessionBody = Static<typeof CreateSessionBody>;

/** One intent of a batch: exactly one of message, nostr_event, bitcoin_psbt (as in CreateSessionBody). */
export const BatchItemBody = Strict({
  message: Type.Optional(Hex(32, '32-byte digest to sign (lower-case hex)')),
  nostr_event: Type.Optional(NostrEventBody),
  bitcoin_psbt: Type.Optional(Type.String({ maxLength: 4 * 1024 * 1024, description: 'a PSBT, base64' })),
});
export type BatchItemBody = Static<typeof BatchItemBody>;

export const MAX_API_BATCH_ITEMS = 256;
export const CreateBatchBody = Strict({
  key_id: IdString('key id'),
  items: Type.Array(BatchItemBody, {
    minItems: 1,
    maxItems: MAX_API_BATCH_ITEMS,
    description: 'the intents to sign, one session each',
  }),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the signatures' }),
  ),
});
export type CreateBatchBody = Static<typeof CreateBatchBody>;

export const SignedNostrEvent = Strict({
  id: Hex(32),
  pubkey: Hex(32),
  created_at: Type.Integer(),
  kind: Type.Integer(),
  tags: Type.Array(Type.Array(Type.String())),
  content: Type.String(),
  sig: Hex(64),
});
export type SignedNostrEvent = Static<typeof SignedNostrEvent>;

export const SessionObject = Strict({
  id: Type.String(),
  key_id: Type.String(),
  message: Hex(32, 'the 32-byte digest signed (for nostr_event: the event id)'),
  intent_type: literalUnion(INTENT_TYPES),
  intent: IntentSchema,
  intent_hash: Hex(32, 'hash of the intent: what attempts and approvals bind'),
  status: literalUnion(SESSION_STATUSES),
  attempt: Type.Integer(),
  participants: Type.Array(Type.Integer()),
  signature: Nullable(Hex(64), 'BIP-340 signature, when completed'),
  event: Type.Optional(SignedNostrEvent),
  final_event_id: Nullable(Hex(32), 'nostr_event: id of the signed event'),
  error_code: Nullable(Type.String()),
  error_message: Nullable(Type.String()),
  culprits: Type.Array(Type.Integer()),
  created_at: UnixMs(),
  updated_at: UnixMs(),
  expires_at: UnixMs(),
  completed_at: Nullable(UnixMs()),
});
export type SessionObject = Static<typeof SessionObject>;

export const BatchObject = Strict({
  items: Type.Array(SessionObject, { description: 'one session per item, in the order of the request' }),
});
export type BatchObject = Static<typeof BatchObject>;

export const SessionQuery = Strict({
  wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })),
});

export const IdempotencyHeaders = Type.Object(
  { 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: true },
);

// ---------------------------------------------------------------- signers

export const SignerObject = Strict({
  id: Type.String(),
  name: Nullable(Type.String()),
  url: Type.String(),
  identity: Type.String(),
  status: literalUnion(SIGNER_STATUSES),
  fault_count: Type.Integer(),
  quarantined: Type.Boolean(),
  quarantine_override: Type.Boolean(),
  last_seen_at: Nullable(UnixMs()),
  last_latency_ms: Nullable(Type.Integer()),
  created_at: UnixMs(),
});
export type SignerObject = Static<typeof SignerObject>;

export const RegisterSignerBody = Strict({
  url: Type.String({ pattern: '^https?://', maxLength: 500 }),
  identity: Hex(32, 'signer identity key (x-only hex), as printed by `floe signer --print-identity`'),
  name: Type.Optional(Type.String({ maxLength: 100 })),
});
export type RegisterSignerBody = Static<typeof RegisterSignerBody>;

export const UpdateSignerBody = Strict({
  status: Type.Optional(literalUnion(SIGNER_STATUSES)),
  quarantine_override: Type.Optional(Type.Boolean()),
  clear_faults: Type.Optional(Type.Boolean()),
});
export type UpdateSignerBody = Static<typeof UpdateSignerBody>;

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
