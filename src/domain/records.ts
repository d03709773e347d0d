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
  Role,
  SessionStatus,
  SignerStatus,
} from './vocabulary.js';

export interface KeyMember {
  identifier: number;
  signer_id: string;
  /** Signer identity key, x-only hex. */
  identity: string;
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
