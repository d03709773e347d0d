/**
 * The coordinator's public HTTP API contract (DESIGN §9): every request and response schema,
 * declared once. The coordinator's routes validate and serialize with them (TypeBox type
 * provider), /openapi.json is generated from them, and src/client takes its types from them.
 * Unions come from the lists in src/domain/vocabulary.ts.
 */
import { type Static, type TObject, Type } from '@sinclair/typebox';
import {
  MAX_APPROVAL_EVENTS,
  MAX_DEVICES_PER_STEWARD,
  MAX_EXPIRES_IN_S,
  MAX_REQUIRED_KINDS,
  MAX_SATS,
  MAX_STEWARDS,
} from '../approvals/index.js';
import { ID_PATTERN } from '../domain/ids.js';
import { THRESHOLD_RULES } from '../domain/threshold-rules.js';
import {
  CEREMONY_STATUSES,
  INTENT_TYPES,
  KEY_ORIGINS,
  KEY_STATUSES,
  PUBLISH_STATUSES,
  REFRESH_STATUSES,
  REPAIR_STATUSES,
  ROLE_DESCRIPTION,
  ROLES,
  SESSION_STATUSES,
  SIGNER_STATUSES,
} from '../domain/vocabulary.js';
import { ApprovalEventSchema } from './messages/approvals.js';
import { PublicKeyPackageSchema, SealedBoxSchema } from './messages/frost.js';
import { IntentSchema } from './messages/intent.js';
import { SignedOperatorInstructionSchema } from './messages/operator.js';
import { Hex, literalUnion, Strict } from './schema.js';

export const IdString = (description: string) => Type.String({ pattern: ID_PATTERN, description });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {});
const UnixMs = (description = 'Unix milliseconds') => Type.Integer({ description });

// ---------------------------------------------------------------- common

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'about:blank: the meaning is in `code`' }),
    title: Type.String({ description: 'the HTTP status phrase' }),
    status: Type.Integer({ description: 'the HTTP status' }),
    code: Type.String({ description: 'stable error code, catalogued in docs/errors.md' }),
    detail: Type.String({ description: 'what failed, for this request (never a secret)' }),
    hint: Type.String({ description: 'what to do about it' }),
    field: Type.Optional(Type.String({ description: 'invalid_request: the field at fault' })),
  },
  {
    additionalProperties: true,
    description: 'RFC 9457 problem details; some codes add members (culprits, allow, reason)',
  },
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

// ---------------------------------------------------------------- steward approvals (DESIGN §13, issue 13)
// Shapes the keys and sessions below carry; the approval endpoints are at the end of the file.

/** A steward approval policy as a person writes it (POST /v1/keys, import, PUT …/approval-policy). */
export const ApprovalPolicyBody = Strict(
  {
    stewards: Type.Array(Type.String({ maxLength: 100, description: 'npub or 64 hex digits (x-only)' }), {
      minItems: 1,
      maxItems: MAX_STEWARDS,
    }),
    threshold: Type.Integer({ minimum: 1, maximum: MAX_STEWARDS, description: 'approvals needed' }),
    veto: Type.Optional(
      Type.Boolean({ description: 'one valid rejection fails the session (default false)' }),
    ),
    expires_in_s: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_EXPIRES_IN_S,
        description: 'how long the stewards have, from the creation of the session (default 3600)',
      }),
    ),
    required_for: Type.Optional(
      Nullable(
        Strict(
          {
            nostr_kinds: Type.Optional(
              Type.Array(Type.Integer({ minimum: 0, maximum: 65535 }), { maxItems: MAX_REQUIRED_KINDS }),
            ),
            bitcoin_output_above_sat: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SATS })),
          },
          'absent or null: every intent; else Nostr events of these kinds and PSBTs with a non-change output above this value (bare digests always need the stewards)',
        ),
      ),
    ),
    devices: Type.Optional(
      Type.Record(
        Type.String({ maxLength: 100 }),
        Type.Array(Type.String({ maxLength: 130 }), { minItems: 1, maxItems: MAX_DEVICES_PER_STEWARD }),
        {
          maxProperties: MAX_STEWARDS,
          description:
            'second factor: steward (npub or hex) → its P-256 device keys (SEC1 hex, 33 or 65 bytes)',
        },
      ),
    ),
    require_device: Type.Optional(
      Type.Boolean({
        description: "every decision must carry the steward's device signature (default false)",
      }),
    ),
  },
  "the key's steward approval policy (docs/approvals.md)",
);
export type ApprovalPolicyBody = Static<typeof ApprovalPolicyBody>;

/** A key's policy as its members certified it, with its revision and state hash. */
export const ApprovalPolicyObject = Strict({
  stewards: Type.Array(Hex(32), { description: 'x-only keys, sorted' }),
  stewards_npub: Type.Array(Type.String(), { description: 'the same stewards as npubs' }),
  threshold: Type.Integer(),
  veto: Type.Boolean(),
  expires_in_s: Type.Integer(),
  required_for: Nullable(
    Strict({
      nostr_kinds: Type.Optional(Type.Array(Type.Integer())),
      bitcoin_output_above_sat: Type.Optional(Type.Integer()),
    }),
  ),
  devices: Type.Record(Type.String(), Type.Array(Type.String())),
  require_device: Type.Boolean(),
  revision: Type.Integer({ description: '0 at creation, +1 per approved change' }),
  policy_hash: Hex(32, 'policyStateHash (src/approvals/policy.ts): what a change approval names in `from`'),
});
export type ApprovalPolicyObject = Static<typeof ApprovalPolicyObject>;

export const ApprovalDecisionObject = Strict({
  steward: Hex(32),
  decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
  at: UnixMs('when the coordinator recorded it'),
  event_id: Hex(32, "the steward's signed kind-30078 event"),
});
export type ApprovalDecisionObject = Static<typeof ApprovalDecisionObject>;

// ---------------------------------------------------------------- keys

export const KeyMemberObject = Strict({
  identifier: Type.Integer(),
  signer_id: Type.String(),
  identity: Type.String({ description: 'signer identity key (x-only hex)' }),
  generation: Type.Optional(
    Type.Integer({
      description:
        "the share generation this member acknowledged (absent: 0); a member behind the key's generation signs again once the refresh's commit reaches it",
    }),
  ),
});

/** A threshold rule a new key breaks (src/domain/threshold-rules.ts): created anyway unless strict. */
export const ThresholdWarningObject = Strict({
  rule: literalUnion(THRESHOLD_RULES, 'two_thirds: t <= 2n/3; two_spare: n - t >= 2'),
  detail: Type.String(),
});
export type ThresholdWarningObject = Static<typeof ThresholdWarningObject>;

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
  relays: Type.Optional(
    Type.Array(Type.String(), {
      description: "default relays of the key's Nostr events (publish: {} uses them)",
    }),
  ),
  warnings: Type.Optional(
    Type.Array(ThresholdWarningObject, {
      description: 'when the key was just created: the threshold rules it breaks (seed 004)',
    }),
  ),
  approval_policy: Type.Optional(Nullable(ApprovalPolicyObject, 'steward approval policy (DESIGN §13)')),
  generation: Type.Optional(
    Type.Integer({ description: 'share generation: 0 as created, +1 per completed share refresh' }),
  ),
  created_at: UnixMs(),
});
export type KeyObject = Static<typeof KeyObject>;

// ---------------------------------------------------------------- share refresh (key lifecycle)

export const RefreshKeyBody = Strict({
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the refresh to complete' }),
  ),
});
export type RefreshKeyBody = Static<typeof RefreshKeyBody>;

export const RefreshObject = Strict({
  id: Type.String(),
  key_id: Type.String(),
  status: literalUnion(
    REFRESH_STATUSES,
    'committing: every member certified; the commit is reaching each member',
  ),
  generation: Type.Integer({ description: 'the share generation this refresh creates' }),
  committed: Type.Array(Type.Integer(), { description: 'members that switched to the new shares' }),
  error_code: Nullable(Type.String()),
  error_message: Nullable(Type.String()),
  culprits: Type.Array(Type.Integer()),
  created_at: UnixMs(),
  completed_at: Nullable(UnixMs()),
  expires_at: UnixMs('an undecided refresh fails then; a decided one always completes'),
});
export type RefreshObject = Static<typeof RefreshObject>;
export const RepairKeyBody = Strict({
  identifier: Type.Integer({ minimum: 1, maximum: 255, description: 'the member whose share is lost' }),
  signer: IdString('the registered signer that takes its place (on every member roster)'),
  helpers: Type.Optional(
    Type.Array(Type.Integer({ minimum: 1, maximum: 255 }), {
      minItems: 1,
      maxItems: 255,
      description: 'the t members that help (default: the first t on the current generation)',
    }),
  ),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the repair to complete' }),
  ),
});
export type RepairKeyBody = Static<typeof RepairKeyBody>;

export const RepairObject = Strict({
  id: Type.String(),
  key_id: Type.String(),
  status: literalUnion(
    REPAIR_STATUSES,
    'committing: the new member holds the share; the commit is reaching each member',
  ),
  identifier: Type.Integer({ description: 'the member repaired' }),
  replaced: Hex(32, 'the identity the member had: revoked for this key once the repair commits'),
  signer_id: Type.String({ description: 'the signer that holds the share now' }),
  helpers: Type.Array(Type.Integer()),
  generation: Type.Integer(),
  committed: Type.Array(Type.Integer(), { description: 'members that applied the repair' }),
  error_code: Nullable(Type.String()),
  error_message: Nullable(Type.String()),
  culprits: Type.Array(Type.Integer()),
  created_at: UnixMs(),
  completed_at: Nullable(UnixMs()),
  expires_at: UnixMs('an undecided repair fails then; a decided one always completes'),
});
export type RepairObject = Static<typeof RepairObject>;
export const RepairParams = Strict({ id: IdString('key id'), repair_id: IdString('repair id') });

export const RefreshParams = Strict({ id: IdString('key id'), refresh_id: IdString('refresh id') });

// ---------------------------------------------------------------- relays (DESIGN §14)

/** Most relays a key keeps as defaults, and a session publishes to. */
export const MAX_RELAYS = 20;
/**
 * A relay URL. Only its length is checked here: the service checks scheme and form
 * (src/nostr/url.ts) so that a bad URL gets its own code, `relay_url_invalid`.
 */
export const RelayUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'ws:// or wss:// relay URL',
  examples: ['wss://relay.example.com'],
});
export const RelayList = (description: string) => Type.Array(RelayUrl, { maxItems: MAX_RELAYS, description });

export const UpdateKeyBody = Type.Object(
  {
    relays: Type.Optional(
      RelayList(
        'default relays for publishing (ws/wss, at most 20); normalized and deduplicated; [] clears them',
      ),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateKeyBody = Static<typeof UpdateKeyBody>;

export const PublishBody = Strict(
  {
    relays: Type.Optional(RelayList("relays to publish to; default: the key's relays")),
  },
  'publish the signed event to relays once the session completes (nostr_event only)',
);
export type PublishBody = Static<typeof PublishBody>;

export const RelayResultObject = Strict({
  relay: Type.String({ description: 'normalized relay URL' }),
  accepted: Type.Boolean({ description: "the relay's OK flag; false when it refused or never answered" }),
  message: Type.String({ description: "the relay's OK message, or why there was none" }),
  at: UnixMs('when the last answer (or failure) came'),
  attempts: Type.Integer({ description: 'tries so far' }),
});
export type RelayResultObject = Static<typeof RelayResultObject>;

export const PublishObject = Strict({
  relays: Type.Array(Type.String(), { description: 'the relays asked for (normalized)' }),
  status: literalUnion(
    PUBLISH_STATUSES,
    'pending: tries left; done: every relay answered or ran out of tries; skipped: the session never completed',
  ),
  results: Type.Array(RelayResultObject, { description: 'one per relay tried so far' }),
  next_attempt_at: Nullable(UnixMs(), 'when the relays without an answer are tried again'),
});
export type PublishObject = Static<typeof PublishObject>;

export const CreateKeyBody = Strict({
  threshold: Type.Integer({ minimum: 2, maximum: 255 }),
  signers: Type.Optional(
    Type.Array(IdString('signer id'), { minItems: 2, maxItems: 255, uniqueItems: true }),
  ),
  label: Type.Optional(Type.String({ maxLength: 200 })),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the ceremony' }),
  ),
  strict_thresholds: Type.Optional(
    Type.Boolean({
      description:
        'refuse (threshold_unsafe) instead of warning when t > 2n/3 or n - t < 2; the coordinator config strict_thresholds forces it',
    }),
  ),
  approval_policy: Type.Optional(ApprovalPolicyBody),
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
  approval_policy: Type.Optional(ApprovalPolicyBody),
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

/**
 * A 32-byte digest a client asks to sign: hex in either case, as `floe sign --message` takes
 * it; the routes lower-case it before anything else sees it (routes/sessions.ts).
 */
export const DigestInput = Type.String({
  pattern: '^[0-9a-fA-F]{64}$',
  description: 'the 32-byte digest to sign; to sign text, hash it with SHA-256 first (floe sign --text does)',
  examples: ['b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9'],
});

export const CreateSessionBody = Strict({
  key_id: IdString('key id'),
  message: Type.Optional(DigestInput),
  nostr_event: Type.Optional(NostrEventBody),
  bitcoin_psbt: Type.Optional(
    Type.String({
      maxLength: 4 * 1024 * 1024,
      description:
        'a PSBT, base64: every unsigned Taproot key-path input of the key (its own output key, or a BIP-86 address derived from it and named in tapBip32Derivation) is signed; other inputs are left alone',
    }),
  ),
  finalize: Type.Optional(
    Type.Boolean({
      description:
        'bitcoin_psbt: also finalize the inputs and return raw_tx once the transaction is complete',
    }),
  ),
  publish: Type.Optional(PublishBody),
  wait: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 120_000, description: 'ms to wait for the signature' }),
  ),
});
export type CreateSessionBody = Static<typeof CreateSessionBody>;

// ---------------------------------------------------------------- PSBT sessions (DESIGN §14)

const Sats = (description: string) =>
  Type.Integer({ minimum: 0, description: `${description}, in satoshis` });

/** What a bitcoin_psbt session signs, as the coordinator decoded it (signers decode it again). */
export const BitcoinSummaryObject = Strict({
  network: Type.String(),
  txid: Hex(32, 'the transaction id'),
  fee: Sats('fee'),
  total_in: Sats('sum of the inputs'),
  total_out: Sats('sum of the outputs'),
  sent: Sats('sum of the outputs that are not change'),
  change: Sats('sum of the change outputs (to the key itself)'),
  inputs_signed: Type.Array(Type.Integer(), { description: 'the inputs this session signs' }),
  finalize_error: Type.Optional(
    Type.String({ description: 'finalize was asked, but the transaction is not complete (why)' }),
  ),
  inputs: Type.Array(
    Strict({
      index: Type.Integer(),
      prevout: Type.String({ description: 'txid:vout of the spent output' }),
      value: Sats('amount spent'),
      address: Nullable(Type.String()),
      ours: Type.Boolean({ description: 'spends an output of the key' }),
      path: Type.Optional(Type.String({ description: 'derivation path of the key (m/…)' })),
      own: Type.Optional(Type.Literal(true, { description: "the key's own output key" })),
      signed: Type.Boolean({ description: 'already signed or final in the PSBT given' }),
    }),
  ),
  outputs: Type.Array(
    Strict({
      index: Type.Integer(),
      value: Sats('amount'),
      address: Nullable(Type.String()),
      script: Type.String({ description: 'output script, hex' }),
      change: Type.Boolean({ description: 'pays to the key itself (checked by derivation)' }),
      path: Type.Optional(Type.String()),
      own: Type.Optional(Type.Literal(true)),
    }),
  ),
});

export const PolicyRefusalObject = Strict({
  attempt: Type.Integer(),
  identifier: Type.Integer(),
  signer_id: Type.String(),
  rule: Nullable(Type.String(), 'the policy rule that refused (bitcoin policy: max_output_value, …)'),
  message: Type.String(),
});

/** One intent of a batch: exactly one of message, nostr_event, bitcoin_psbt (as in CreateSessionBody). */
export const BatchItemBody = Strict({
  message: Type.Optional(DigestInput),
  nostr_event: Type.Optional(NostrEventBody),
  bitcoin_psbt: Type.Optional(Type.String({ maxLength: 4 * 1024 * 1024, description: 'a PSBT, base64' })),
  publish: Type.Optional(PublishBody),
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
  signature: Nullable(
    Hex(64),
    "BIP-340 signature, when completed (bitcoin_psbt: the first signed input's; all are in psbt)",
  ),
  event: Type.Optional(SignedNostrEvent),
  final_event_id: Nullable(Hex(32), 'nostr_event: id of the signed event'),
  error_code: Nullable(Type.String()),
  error_message: Nullable(Type.String()),
  culprits: Type.Array(Type.Integer()),
  created_at: UnixMs(),
  updated_at: UnixMs(),
  expires_at: UnixMs(),
  completed_at: Nullable(UnixMs()),
  publish: Type.Optional(PublishObject),
  psbt: Type.Optional(Type.String({ description: 'bitcoin_psbt: the signed PSBT (tapKeySig set), base64' })),
  raw_tx: Type.Optional(
    Type.String({ description: 'bitcoin_psbt with finalize: the signed transaction, hex' }),
  ),
  txid: Type.Optional(Hex(32, 'bitcoin_psbt: the transaction id')),
  bitcoin: Type.Optional(BitcoinSummaryObject),
  policy_refusals: Type.Optional(
    Type.Array(PolicyRefusalObject, {
      description: 'members that refused by their own signer policy (never blamed)',
    }),
  ),
  approvals: Type.Optional(
    Type.Array(ApprovalDecisionObject, {
      description: "the stewards' decisions (keys with an approval policy)",
    }),
  ),
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

// ================================================================ bunkers (NIP-46, DESIGN §14)
// Issue 12: a NIP-46 remote signer per key, run by the coordinator (src/coordinator/bunkers/,
// routes/bunker.ts, docs/nostr.md). Permissions are `method[:kind]` strings (src/nostr/nip46.ts).

export const BUNKER_CLIENT_VIAS = ['bunker', 'nostrconnect'] as const;
export const BUNKER_APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;

const BunkerPermissionString = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'method[:kind], for example sign_event:1, sign_event (every kind but 27235), nip44_encrypt',
});
const RelayUrlString = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'a ws:// or wss:// relay URL',
});

export const EnableBunkerBody = Strict({
  relays: Type.Optional(
    Type.Array(RelayUrlString, {
      minItems: 1,
      maxItems: 16,
      description:
        "relays the bunker listens on; default: the bunker's current relays, else the key's relays",
    }),
  ),
  permissions: Type.Optional(
    Type.Array(BunkerPermissionString, {
      minItems: 1,
      maxItems: 64,
      description:
        'what the secret grants (a client narrows it in connect); default sign_event, nip04_encrypt, nip04_decrypt, nip44_encrypt, nip44_decrypt',
    }),
  ),
  expires_in_s: Type.Optional(
    Type.Integer({ minimum: 60, maximum: 2_592_000, description: 'lifetime of the secret; default 900' }),
  ),
  require_approval: Type.Optional(
    Type.Array(BunkerPermissionString, {
      maxItems: 64,
      description:
        'requests these cover wait for an operator (auth_url); replaces the policy; default: unchanged (none at first)',
    }),
  ),
});
export type EnableBunkerBody = Static<typeof EnableBunkerBody>;

export const BunkerUrlObject = Strict({
  bunker_url: Type.String({
    description:
      'bunker://<remote_signer_pubkey>?relay=…&secret=…; the secret is single use and shown only here',
  }),
  remote_signer_pubkey: Hex(32, "the bunker's transport key (never the user key)"),
  relays: Type.Array(Type.String()),
  expires_at: UnixMs('when the secret expires (Unix milliseconds)'),
});
export type BunkerUrlObject = Static<typeof BunkerUrlObject>;

export const BunkerConnectBody = Strict({
  uri: Type.String({ minLength: 1, maxLength: 8192, description: "a client's nostrconnect:// URI" }),
  permissions: Type.Optional(
    Type.Array(BunkerPermissionString, {
      minItems: 1,
      maxItems: 64,
      description:
        'the most the client may have (it gets what it asked for within this); default as for secrets',
    }),
  ),
});
export type BunkerConnectBody = Static<typeof BunkerConnectBody>;

export const BunkerClientObject = Strict({
  pubkey: Hex(32, "the client's transport key"),
  via: literalUnion(BUNKER_CLIENT_VIAS),
  permissions: Type.Array(Type.String()),
  relays: Type.Array(Type.String(), { description: 'nostrconnect clients: the relays of their URI' }),
  name: Nullable(Type.String(), 'self-declared, never trusted'),
  url: Nullable(Type.String()),
  image: Nullable(Type.String()),
  connected_at: UnixMs(),
});
export type BunkerClientObject = Static<typeof BunkerClientObject>;

export const BunkerConnectedObject = Strict({
  client: BunkerClientObject,
  ignored_permissions: Type.Array(Type.String(), {
    description: 'what the client asked for that Floe does not know',
  }),
});
export type BunkerConnectedObject = Static<typeof BunkerConnectedObject>;

export const BunkerApprovalObject = Strict({
  id: Hex(16),
  client: Hex(32),
  request_id: Type.String(),
  method: Type.String(),
  kind: Nullable(Type.Integer(), 'sign_event: the kind'),
  status: literalUnion(BUNKER_APPROVAL_STATUSES),
  created_at: UnixMs(),
  expires_at: UnixMs(),
  decided_at: Nullable(UnixMs()),
  decided_by: Nullable(Type.String(), 'the API token that decided'),
});
export type BunkerApprovalObject = Static<typeof BunkerApprovalObject>;

export const BunkerObject = Strict({
  key_id: Type.String(),
  remote_signer_pubkey: Hex(32),
  relays: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  require_approval: Type.Array(Type.String()),
  clients: Type.Integer(),
  running: Nullable(
    Strict({
      coordinator: Type.String({ description: 'instance id of the coordinator holding the lease' }),
      lease_until: UnixMs(),
      here: Type.Boolean({ description: 'the coordinator that answered runs it' }),
    }),
    'where it runs; null when no coordinator holds its lease',
  ),
  sealing_key: Type.String({
    description: 'fingerprint of the bunker.key its remote-signer key is sealed under',
  }),
  openable_here: Type.Boolean({ description: "whether this coordinator's bunker.key opens it" }),
  created_at: UnixMs(),
  updated_at: UnixMs(),
});
export type BunkerObject = Static<typeof BunkerObject>;

export const BunkerClientParams = Strict({ id: IdString('key id'), pubkey: Hex(32, "the client's pubkey") });
export const BunkerApprovalParams = Strict({ id: IdString('key id'), approval_id: Hex(16) });

// ---------------------------------------------------------------- NIP-04 / NIP-44 (threshold ECDH)
// POST /v1/keys/:id/nip44/encrypt|decrypt and /v1/keys/:id/nip04/encrypt|decrypt
// (src/coordinator/routes/nostr-crypto.ts, DESIGN §14). The pubkey's form and curve membership
// and the plaintext's size are checked by the service, so each mistake has its own code.

const PeerPubkey = Type.String({
  minLength: 1,
  maxLength: 128,
  description:
    "the other party's x-only public key: 64 lower-case hex characters of a point on secp256k1 (else invalid_pubkey)",
});
export const NostrEncryptBody = Strict({
  pubkey: PeerPubkey,
  plaintext: Type.String({
    maxLength: 256 * 1024,
    description:
      'text to encrypt; NIP-44: 1 to 65535 bytes of UTF-8, NIP-04: at most 131072 (payload_too_large otherwise)',
  }),
});
export type NostrEncryptBody = Static<typeof NostrEncryptBody>;
export const NostrDecryptBody = Strict({
  pubkey: PeerPubkey,
  ciphertext: Type.String({
    maxLength: 2 * 1024 * 1024,
    description:
      'NIP-44 v2 payload (base64) or NIP-04 content (base64?iv=base64); malformed or not authentic: invalid_encoding',
  }),
});
export type NostrDecryptBody = Static<typeof NostrDecryptBody>;
export const CiphertextObject = Strict({ ciphertext: Type.String() });
export type CiphertextObject = Static<typeof CiphertextObject>;
export const PlaintextObject = Strict({ plaintext: Type.String() });
export type PlaintextObject = Static<typeof PlaintextObject>;

// ---------------------------------------------------------------- addresses (DESIGN §14)

/** Passphrases: any string of 1 to 1024 characters, compared as its exact UTF-8 bytes. */
export const Passphrase = Type.String({
  minLength: 1,
  maxLength: 1024,
  description:
    'any string (1 to 1024 characters), used as its exact UTF-8 bytes: never stored or logged; prefer high entropy (docs/custody.md)',
});

export const CreateAddressBody = Strict({
  passphrase: Passphrase,
  wait: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 120_000,
      description: 'ms to wait for a new key (default 60000); answered 202 with status pending after that',
    }),
  ),
});
export type CreateAddressBody = Static<typeof CreateAddressBody>;

export const PassphraseAddressObject = Strict({
  key_id: Type.String({ description: "the passphrase's own key (a deterministic t-of-n DKG)" }),
  status: literalUnion(KEY_STATUSES, 'the key: active once its DKG completed'),
  network: Type.String({ description: 'mainnet | testnet | signet | regtest' }),
  address: Nullable(Type.String(), 'bech32m P2TR address (BIP-86 key path), once active'),
  output_key: Nullable(Hex(32), "x-only output key: the key's x_only_public_key"),
  internal_key: Nullable(Hex(33), 'BIP-86 internal key: the untweaked group key of the DKG'),
  created: Type.Boolean({ description: 'this request ran the DKG (false: the stored address)' }),
  warnings: Type.Optional(Type.Array(ThresholdWarningObject)),
});
export type PassphraseAddressObject = Static<typeof PassphraseAddressObject>;

export const MAX_DERIVED_ADDRESSES = 1000;

export const DerivedAddressQuery = Strict({
  branch: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 1,
      description: '0 receive (default), 1 change: m/<branch>/<index>',
    }),
  ),
  from: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 0x7fffffff, description: 'first index (default 0)' }),
  ),
  count: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_DERIVED_ADDRESSES,
      description: 'how many (default 20, at most 1000)',
    }),
  ),
});
export type DerivedAddressQuery = Static<typeof DerivedAddressQuery>;

export const DerivedAddressObject = Strict({
  index: Type.Integer(),
  path: Type.String({ description: 'from the key root xpub, e.g. m/0/5' }),
  address: Type.String({ description: 'bech32m P2TR address: BIP-86 of the child key' }),
  internal_key: Hex(33, 'the child key K + d·G: the BIP-86 internal key'),
  output_key: Hex(32, 'x-only output key (tweaked child key)'),
});
export type DerivedAddressObject = Static<typeof DerivedAddressObject>;

export const DerivedAddressList = Strict({
  key_id: Type.String(),
  network: Type.String(),
  branch: Type.Integer(),
  items: Type.Array(DerivedAddressObject),
});
export type DerivedAddressList = Static<typeof DerivedAddressList>;

export const DerivePassphraseBody = Strict({ passphrase: Passphrase });
export type DerivePassphraseBody = Static<typeof DerivePassphraseBody>;

export const PassphraseDerivedAddressObject = Strict({
  key_id: Type.String(),
  network: Type.String(),
  path: Type.String({
    description:
      "m/a/b/c/d: four non-hardened steps from an HMAC of the passphrase under the service's secret",
  }),
  address: Type.String(),
  internal_key: Hex(33),
  output_key: Hex(32),
});
export type PassphraseDerivedAddressObject = Static<typeof PassphraseDerivedAddressObject>;

export const DescriptorObject = Strict({
  key_id: Type.String(),
  network: Type.String(),
  xpub: Type.String({ description: 'root extended public key: the group key and its chain code, depth 0' }),
  receive: Type.String({ description: 'tr(<xpub>/0/*)#checksum (BIP-386, BIP-380 checksum)' }),
  change: Type.String({ description: 'tr(<xpub>/1/*)#checksum' }),
  multipath: Type.String({
    description: 'tr(<xpub>/<0;1>/*)#checksum (BIP-389): receive and change in one, for wallets that take it',
  }),
});
export type DescriptorObject = Static<typeof DescriptorObject>;

// ---------------------------------------------------------------- steward approvals: endpoints (issue 13)

export const ApprovalsQuery = Strict({
  status: Type.Optional(
    Type.Literal('pending', { description: 'sessions waiting for their stewards (the only status listed)' }),
  ),
  steward: Type.Optional(
    Type.String({ maxLength: 100, description: 'npub or hex: only what this steward has not decided yet' }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
});
export type ApprovalsQuery = Static<typeof ApprovalsQuery>;

/** A session waiting for its stewards, as they need to see it. */
export const PendingApprovalObject = Strict({
  session_id: Type.String(),
  key_id: Type.String(),
  key_label: Nullable(Type.String()),
  intent_type: literalUnion(INTENT_TYPES),
  intent: IntentSchema,
  intent_hash: Hex(32, 'what a decision names in its intent tag'),
  message: Hex(32, 'the digest to be signed (for nostr_event: the event id)'),
  summary: Type.String({ description: 'what is to be signed, in words' }),
  deadline: UnixMs('decisions count until then'),
  threshold: Type.Integer(),
  veto: Type.Boolean(),
  require_device: Type.Boolean(),
  stewards: Type.Array(Hex(32)),
  approvals: Type.Array(ApprovalDecisionObject),
  waiting_for: Type.Array(Hex(32), { description: 'stewards who have not decided' }),
  tags: Type.Array(Type.Array(Type.String()), {
    description: 'the tags of an approving kind-30078 event (use "reject" to reject)',
  }),
});
export type PendingApprovalObject = Static<typeof PendingApprovalObject>;

export const SubmitApprovalBody = Strict({
  event: ApprovalEventSchema,
});
export type SubmitApprovalBody = Static<typeof SubmitApprovalBody>;

export const UpdateApprovalPolicyBody = Strict({
  approval_policy: Nullable(ApprovalPolicyBody, 'the new policy; null removes it'),
  approvals: Type.Optional(
    Type.Array(ApprovalEventSchema, {
      maxItems: MAX_APPROVAL_EVENTS,
      description:
        'decisions of a quorum of the current stewards: kind 30078, tags d=floe-policy:<key_id>, key, from (current policy_hash), policy (the next one), decision',
    }),
  ),
});
export type UpdateApprovalPolicyBody = Static<typeof UpdateApprovalPolicyBody>;

// ---------------------------------------------------------------- audit log and webhooks (issue 15 items 9, 10)

export const AuditQuery = Strict({
  after: Type.Optional(
    Type.Integer({ minimum: 0, description: 'rows with a larger id (0: from the start)' }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'default 100' })),
});
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditEventObject = Strict({
  id: Type.Integer(),
  tenant_id: Type.String(),
  at: UnixMs(),
  actor: Type.String(),
  kind: Type.String(),
  subject_type: Nullable(Type.String()),
  subject_id: Nullable(Type.String()),
  data: Type.Unknown(),
  prev_hash: Hex(32, "the hash of the tenant's previous row (64 zeros for the first)"),
  hash: Hex(32, "this row's hash (docs/webhooks.md, src/domain/audit-chain.ts)"),
});
export type AuditEventObject = Static<typeof AuditEventObject>;

export const AuditPage = Strict({
  items: Type.Array(AuditEventObject, { description: "the tenant's chain in id order" }),
  next_after: Nullable(Type.Integer(), 'pass as `after` for the next page; null at the end'),
});
export type AuditPage = Static<typeof AuditPage>;

export const WEBHOOK_EVENTS = [
  'session.completed',
  'session.failed',
  'approval.pending',
  'key.active',
  'signer.quarantined',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const WebhookUrl = Type.String({
  maxLength: 2048,
  pattern: '^https?://[^\\s]+$',
  description: 'http(s) URL the events are POSTed to',
});

export const CreateWebhookBody = Strict({
  url: WebhookUrl,
  events: Type.Array(literalUnion(WEBHOOK_EVENTS, 'event type'), {
    minItems: 1,
    maxItems: WEBHOOK_EVENTS.length,
  }),
  description: Type.Optional(Type.String({ maxLength: 200 })),
});
export type CreateWebhookBody = Static<typeof CreateWebhookBody>;

export const WebhookObject = Strict({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Nullable(Type.String()),
  created_at: UnixMs(),
  secret_rotated_at: Nullable(UnixMs()),
  previous_secret_expires_at: Nullable(
    UnixMs('until then deliveries carry a signature with the old secret too'),
  ),
});
export type WebhookObject = Static<typeof WebhookObject>;

export const WebhookWithSecret = Strict({
  webhook: WebhookObject,
  secret: Type.String({ description: 'the signing secret, shown once' }),
});
export type WebhookWithSecret = Static<typeof WebhookWithSecret>;

export const WebhookAttemptObject = Strict({
  attempt: Type.Integer(),
  status_code: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  at: UnixMs(),
});

export const WebhookDeliveryObject = Strict({
  id: Type.String({ description: 'the event id (Floe-Event-Id)' }),
  event: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(UnixMs()),
  created_at: UnixMs(),
  log: Type.Array(WebhookAttemptObject),
});
export type WebhookDeliveryObject = Static<typeof WebhookDeliveryObject>;

// ---------- key controls: disable / enable, and the kill switch (issue 15 items 7, 8) ----------

/** POST /v1/keys/:id/freeze | unfreeze: the operator's signed instruction (floe key freeze). */
export const KeyInstructionBody = Strict({ instruction: SignedOperatorInstructionSchema });
export type KeyInstructionBody = Static<typeof KeyInstructionBody>;

/** What one member signer said to a forwarded operator instruction. */
export const KeyInstructionDelivery = Strict({
  signer_id: Type.String(),
  identifier: Type.Integer(),
  applied: Type.Boolean({ description: 'the signer verified and applied the instruction' }),
  error_code: Type.Optional(
    Type.String({ description: 'why not: e.g. operator_not_pinned, signer_unreachable' }),
  ),
  detail: Type.Optional(Type.String()),
});

export const KeyControlObject = Strict({
  key: KeyObject,
  /** Each member signer told (freeze / unfreeze only): applied, or why it could not be told. */
  signers: Type.Optional(Type.Array(KeyInstructionDelivery)),
  /** Running sessions of the key failed with key_frozen (freeze only). */
  sessions_failed: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type KeyControlObject = Static<typeof KeyControlObject>;

// ---------------------------------------------------------------- request examples (OpenAPI)
// One example body per operation that takes one: the OpenAPI document shows it (as the media
// type's `example`), and test/coordinator/openapi.test.ts checks that each validates against
// its own schema. Ids, keys and signatures here are placeholders of the right shape.

const H = (c: string, bytes: number) => c.repeat(bytes * 2);
const exampleApproval = {
  id: H('a', 32),
  pubkey: H('b', 32),
  created_at: 1796000000,
  kind: 30078,
  tags: [
    ['d', 'floe-approval:ses_0123456789abcdef'],
    ['session', 'ses_0123456789abcdef'],
    ['intent', H('c', 32)],
    ['decision', 'approve'],
  ],
  content: 'ok from grandma',
  sig: H('d', 64),
};

/** The example request bodies, by schema (set as each schema's `examples`). */
export const REQUEST_EXAMPLES: readonly (readonly [TObject, unknown])[] = [
  [TokenBody, { token: 'floe_tok0123456789abcdef_secret' }],
  [RefreshBody, { refresh_token: 'rt_0123456789abcdef' }],
  [CreateTokenBody, { role: 'requester', label: 'payments service', ttl_s: 86400 }],
  [CreateTenantBody, { id: 'acme', name: 'ACME Corp' }],
  [UpdateKeyBody, { relays: ['wss://relay.example.com'] }],
  [CreateKeyBody, { threshold: 2, label: 'treasury', wait: 30000 }],
  [RefreshKeyBody, { wait: 30000 }],
  [RepairKeyBody, { identifier: 3, signer: 'sig_3123456789abcdef', wait: 30000 }],
  [
    ImportKeyBody,
    {
      key_id: 'key_0123456789abcdef',
      signers: ['sig_0123456789abcdef', 'sig_1123456789abcdef', 'sig_2123456789abcdef'],
      public_key_package: {
        v: 1,
        type: 'public_key_package',
        threshold: 2,
        n: 3,
        commitments: [`02${H('1', 32)}`, `03${H('2', 32)}`],
        verifying_shares: { 1: `02${H('3', 32)}`, 2: `03${H('4', 32)}`, 3: `02${H('5', 32)}` },
        tweak: { kind: 'none' },
      },
      sealed_shares: [1, 2, 3].map((i) => ({
        sender: H('6', 32),
        nonce: H(String(i), 12),
        ciphertext: H('7', 80),
      })),
      label: 'imported nsec',
    },
  ],
  [CreateSessionBody, { key_id: 'key_0123456789abcdef', message: H('7', 32), wait: 10000 }],
  [
    CreateBatchBody,
    {
      key_id: 'key_0123456789abcdef',
      items: [{ message: H('1', 32) }, { nostr_event: { kind: 1, content: 'gm', tags: [] } }],
      wait: 10000,
    },
  ],
  [RegisterSignerBody, { url: 'https://signer-1.internal:7101', identity: H('e', 32), name: 'signer-1' }],
  [UpdateSignerBody, { status: 'active', clear_faults: true }],
  [EnableBunkerBody, { relays: ['wss://relay.example.com'], permissions: ['sign_event:1', 'nip44_encrypt'] }],
  [
    BunkerConnectBody,
    { uri: `nostrconnect://${H('f', 32)}?relay=wss%3A%2F%2Frelay.example.com&secret=s3cret` },
  ],
  [NostrEncryptBody, { pubkey: H('f', 32), plaintext: 'hello' }],
  [NostrDecryptBody, { pubkey: H('f', 32), ciphertext: 'AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
  [CreateAddressBody, { passphrase: 'correct horse battery staple 42', wait: 60000 }],
  [DerivePassphraseBody, { passphrase: 'correct horse battery staple 42' }],
  [SubmitApprovalBody, { event: exampleApproval }],
  [UpdateApprovalPolicyBody, { approval_policy: null, approvals: [exampleApproval] }],
  [
    CreateWebhookBody,
    { url: 'https://hooks.example.com/floe', events: ['session.completed', 'session.failed'] },
  ],
  [
    KeyInstructionBody,
    {
      instruction: {
        type: 'freeze',
        key_id: 'key_0123456789abcdef',
        issued_at: 1796000000000,
        nonce: H('0', 16),
        operator: H('9', 32),
        sig: H('8', 64),
      },
    },
  ],
];
for (const [schema, example] of REQUEST_EXAMPLES) Object.assign(schema, { examples: [example] });
