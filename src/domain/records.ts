/**
 * The coordinator's entities as every layer sees them (storage ports, services, API
 * mappers). Timestamps are Unix milliseconds.
 */
import type { Intent } from './intent.js';
import type {
  CeremonyStatus,
  IntentType,
  KeyOrigin,
  KeyStatus,
  PublishStatus,
  RefreshStatus,
  RepairStatus,
  Role,
  SessionStatus,
  SignerStatus,
} from './vocabulary.js';

export interface KeyMember {
  identifier: number;
  signer_id: string;
  /** Signer identity key, x-only hex. */
  identity: string;
  /**
   * The share generation this member acknowledged (migration 020); absent: 0. A member behind
   * the key's generation is left out of signing until a refresh's commit reaches it.
   */
  generation?: number;
}

export interface KeyRecord {
  id: string;
  tenantId: string;
  label: string | null;
  threshold: number;
  n: number;
  /** 33-byte compressed hex; null until the key is active. */
  groupPublicKey: string | null;
  /** 32-byte x-only hex; null until the key is active. */
  xOnlyPublicKey: string | null;
  /** Encoded public key package (src/crypto/encoding.ts). */
  publicKeyPackage: unknown;
  members: KeyMember[];
  origin: KeyOrigin;
  tweak: unknown;
  status: KeyStatus;
  createdAt: number;
  updatedAt: number;
  /** Default relays of the key's Nostr events (normalized ws/wss URLs); absent before 012. */
  relays?: string[];
  /**
   * The steward approval policy state the key's members certified (DESIGN §13, migration 014;
   * src/approvals/policy.ts): `{revision, policy}`, stored as JSONB; null or absent: none.
   */
  approvalPolicy?: { revision: number; policy: unknown } | null;
  /** The share generation signatures are made with (migration 020); absent: 0. */
  generation?: number;
}

/** The members of a key that hold its current share generation (the others wait for a commit). */
export function currentMembers(key: Pick<KeyRecord, 'members' | 'generation'>): KeyMember[] {
  const g = key.generation ?? 0;
  return key.members.filter((m) => (m.generation ?? 0) === g);
}

export interface SignerRecord {
  id: string;
  name: string | null;
  url: string;
  identityPubkey: string;
  status: SignerStatus;
  faultCount: number;
  quarantined: boolean;
  quarantinedAt: number | null;
  quarantineOverride: boolean;
  lastSeenAt: number | null;
  lastLatencyMs: number | null;
  createdAt: number;
}

export interface SessionRecord {
  sessionId: string;
  tenantId: string;
  keyId: string;
  /** The 32-byte digest signed (hex): the message, the event id, … */
  messageHash: string;
  intentType: IntentType;
  intent: Intent;
  /** hex of the intent hash (src/domain/intent.ts). */
  intentHash: string;
  status: SessionStatus;
  attempt: number;
  threshold: number;
  /** Identifiers chosen for the current attempt. */
  participants: number[];
  /** Commitments by attempt then identifier (encoded). */
  nonceCommitments: Record<string, Record<string, unknown>>;
  /** Shares by attempt then identifier (encoded). */
  partialSignatures: Record<string, Record<string, unknown>>;
  finalSignature: string | null;
  /** nostr_event: the id of the signed event. */
  finalEventId: string | null;
  createdBy: string | null;
  idempotencyKey: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  culprits: number[];
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  nonceCollectionStartedAt: number | null;
  signingStartedAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  /** nostr_event: the relays the request asked to publish to (null: not published). */
  publishRelays?: string[] | null;
  /** One answer per relay tried so far. */
  publishResults?: RelayPublishResult[];
  /** null when not published; the database holds pending | done. */
  publishStatus?: Exclude<PublishStatus, 'skipped'> | null;
  /** When the next publishing round is due (Unix ms). */
  publishNextAt?: number | null;
  /** bitcoin_psbt: what the PSBT does, then the signed result (migration 015). */
  bitcoin?: SessionBitcoin | null;
  /** Members that refused by their own policy (availability events, not faults; migration 015). */
  policyRefusals?: PolicyRefusal[];
}

/** A member's policy refusal in one attempt (its own signer policy: DESIGN §14). */
export interface PolicyRefusal {
  attempt: number;
  identifier: number;
  signer_id: string;
  /** The policy rule (src/bitcoin/policy.ts POLICY_RULES), when the policy named one. */
  rule: string | null;
  message: string;
}

/**
 * A bitcoin_psbt session's Bitcoin side, as stored (JSON, snake_case) and shown: the PSBT as
 * the coordinator decoded it at creation (what an operator reads), then the signed result.
 * Amounts in satoshis.
 */
export interface SessionBitcoin {
  network: string;
  /** The transaction id (segwit: the same before and after signing). */
  txid: string;
  /** The request asked to finalize and extract the transaction. */
  finalize: boolean;
  fee: number;
  total_in: number;
  total_out: number;
  /** What leaves the key (outputs that are not change). */
  sent: number;
  change: number;
  /** The inputs this session signs. */
  inputs_signed: number[];
  inputs: {
    index: number;
    prevout: string;
    value: number;
    address: string | null;
    /** Spends an output of the key (its own output key, or a derived address). */
    ours: boolean;
    path?: string;
    own?: true;
    /** Already signed or final in the PSBT as given. */
    signed: boolean;
  }[];
  outputs: {
    index: number;
    value: number;
    address: string | null;
    script: string;
    change: boolean;
    path?: string;
    own?: true;
  }[];
  /** Once completed: the PSBT with the signatures (tapKeySig), base64. */
  psbt?: string;
  /** Once completed with finalize: the network serialization, hex (absent if not complete). */
  raw_tx?: string;
  /** finalize was asked but the transaction cannot be extracted yet (why). */
  finalize_error?: string;
}

/** One relay's answer to a published event (DESIGN §14). */
export interface RelayPublishResult {
  /** Normalized relay URL. */
  relay: string;
  /** The relay's OK flag; false when it refused or never answered. */
  accepted: boolean;
  /** The relay's OK message, or why there was none (timeout, connection refused, …). */
  message: string;
  /** Unix ms of the last answer or failure. */
  at: number;
  /** Tries so far. */
  attempts: number;
}

export interface CeremonyRecord {
  id: string;
  tenantId: string;
  keyId: string;
  status: CeremonyStatus;
  threshold: number;
  n: number;
  participants: KeyMember[];
  transcriptHash: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  culprits: number[];
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

export interface ApiTokenRecord {
  id: string;
  tenantId: string;
  role: Role;
  label: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface RefreshRecord {
  id: string;
  tenantId: string;
  tokenId: string;
  familyId: string;
  expiresAt: number;
  usedAt: number | null;
  revokedAt: number | null;
}

/** Who is calling the API: a tenant, a role, and the API token behind the request. */
export interface Principal {
  tenantId: string;
  role: Role;
  tokenId: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * A tenant's passphrase and the key its deterministic DKG made (DESIGN §14, migration 016).
 * Never the passphrase: `lookupId` is the coordinator's HMAC of it (services/addresses.ts).
 */
export interface PassphraseAddressRecord {
  tenantId: string;
  /** 64 hex. */
  lookupId: string;
  keyId: string;
  /** The network of `address` (config `bitcoin_network` when it was made). */
  network: string;
  /** Set once the key is active. */
  address: string | null;
  /** x-only output key (the key's x_only_public_key), hex. */
  outputKey: string | null;
  /** The key's untweaked group key (BIP-86 internal key), 33-byte compressed hex. */
  internalKey: string | null;
  createdAt: number;
  updatedAt: number;
}

export type { RefreshStatus, RepairStatus };

/** A share refresh ceremony of one key (src/coordinator/refresh.ts). */
export interface KeyRefreshRecord {
  id: string;
  tenantId: string;
  keyId: string;
  status: RefreshStatus;
  /** The generation this refresh creates. */
  generation: number;
  participants: KeyMember[];
  /** The new public package (encoded), once every member derived it. */
  publicKeyPackage: unknown;
  /** Every member's certificate of it: `[{identifier, certificate}]`, kept to retry the commit. */
  certificates: { identifier: number; certificate: string }[] | null;
  /** Identifiers that acknowledged the commit. */
  committed: number[];
  errorCode: string | null;
  errorMessage: string | null;
  culprits: number[];
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  failedAt: number | null;
  expiresAt: number;
}

/** A share repair of one key (src/coordinator/repair.ts): member `lost` moves to a new signer. */
export interface KeyRepairRecord {
  id: string;
  tenantId: string;
  keyId: string;
  status: RepairStatus;
  generation: number;
  lost: number;
  /** The identity the lost member had (revoked for the key by the commit). */
  replaced: string;
  newSignerId: string;
  newIdentity: string;
  helpers: number[];
  /** Every member after the repair (the new signer at `lost`), as the commit names them. */
  members: KeyMember[];
  /** The signed commit (statements, certificate), kept to retry it. */
  commitRequest: unknown;
  committed: number[];
  errorCode: string | null;
  errorMessage: string | null;
  culprits: number[];
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  failedAt: number | null;
  expiresAt: number;
}
