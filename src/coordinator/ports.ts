/**
 * What the coordinator's orchestration needs from storage. The Postgres adapter implements
 * it with conditional UPDATEs inside tenant-scoped transactions (row-level security).
 */
import type { Intent } from '../domain/intent.js';
import type {
  CeremonyRecord,
  KeyMember,
  KeyRecord,
  Page,
  SessionRecord,
  SignerRecord,
} from '../domain/records.js';
import type { InitialSessionStatus } from '../domain/session-state.js';
import type { CeremonyStatus, IntentType, KeyStatus, SessionStatus } from '../domain/vocabulary.js';

export type {
  CeremonyRecord,
  CeremonyStatus,
  KeyMember,
  KeyRecord,
  KeyStatus,
  Page,
  SessionRecord,
  SignerRecord,
};

export type SessionPatch = Partial<
  Pick<
    SessionRecord,
    | 'attempt'
    | 'participants'
    | 'nonceCommitments'
    | 'partialSignatures'
    | 'finalSignature'
    | 'finalEventId'
    | 'errorCode'
    | 'errorMessage'
    | 'culprits'
    | 'nonceCollectionStartedAt'
    | 'signingStartedAt'
    | 'completedAt'
    | 'failedAt'
  >
>;

export interface FaultOutcome {
  faultCount: number;
  quarantined: boolean;
}

export interface CoordinatorStore {
  getKey(tenantId: string, keyId: string): Promise<KeyRecord | undefined>;
  listSigners(): Promise<SignerRecord[]>;
  getSession(tenantId: string, sessionId: string): Promise<SessionRecord | undefined>;
  /**
   * Conditional move: only if the session is in one of `from` with attempt `expectAttempt`.
   * Returns the updated session, or null if another writer got there first.
   */
  transitionSession(
    tenantId: string,
    sessionId: string,
    from: readonly SessionStatus[],
    expectAttempt: number,
    to: SessionStatus,
    patch: SessionPatch,
    /** An audit event written in the same transaction, only if the move happens. */
    event?: AuditEvent,
  ): Promise<SessionRecord | null>;
  /**
   * The end of round 1 for each session, in ONE transaction: record the attempt's commitments
   * and mark them used, then move the session nonce_collection → signing with its patch. A
   * session that moved on is null (nothing written for it); a commitment seen before throws
   * `nonce_reuse_detected` (with `culprits` when the database can name them) and writes nothing
   * at all.
   */
  commitAttempts(tenantId: string, items: readonly AttemptCommit[]): Promise<(SessionRecord | null)[]>;
  /**
   * The end of a successful round 2 for each session, in ONE transaction: signing → aggregating
   * (the shares) → completed (the signature), auditing its event. Null for a session that moved on.
   */
  completeAttempts(tenantId: string, items: readonly AttemptCompletion[]): Promise<(SessionRecord | null)[]>;
  /** Several conditional moves (as transitionSession) in ONE transaction. */
  transitionSessions(tenantId: string, moves: readonly SessionMove[]): Promise<(SessionRecord | null)[]>;
  /** Count a fault against a signer; quarantine it at the configured threshold. */
  recordSignerFault(signerId: string, kind: string, quarantineAfter: number): Promise<FaultOutcome>;
  recordSignerSeen(signerId: string, latencyMs: number): Promise<void>;
  audit(tenantId: string, kind: string, subjectType: string, subjectId: string, data: unknown): Promise<void>;
}

export interface AttemptCommit {
  sessionId: string;
  attempt: number;
  rows: { identifier: number; signerId: string; commitment: string }[];
  patch: SessionPatch;
}

export interface AttemptCompletion {
  sessionId: string;
  attempt: number;
  shares: SessionPatch;
  completion: SessionPatch;
  event: AuditEvent;
}

export interface SessionMove {
  sessionId: string;
  from: readonly SessionStatus[];
  expectAttempt: number;
  to: SessionStatus;
  patch: SessionPatch;
  event?: AuditEvent;
}

/** An audit event about the session it goes with. */
export interface AuditEvent {
  kind: string;
  data: unknown;
}

export interface NewSession {
  sessionId: string;
  tenantId: string;
  keyId: string;
  messageHash: string;
  intentType: IntentType;
  intent: Intent;
  intentHash: string;
  status: InitialSessionStatus;
  /** Identifies the request behind an idempotency key: the same key with another fingerprint is a conflict. */
  fingerprint: string;
  threshold: number;
  createdBy: string | null;
  idempotencyKey: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface SessionStore {
  /**
   * Insert, or return the existing session with the same (tenant, idempotency key); `event` is
   * audited in the same transaction when the session is new.
   */
  insertSession(s: NewSession, event?: AuditEvent): Promise<{ session: SessionRecord; created: boolean }>;
  /** Insert several new sessions (no idempotency keys) in ONE transaction, each audited with `event`. */
  insertSessions(list: readonly NewSession[], event: AuditEvent): Promise<SessionRecord[]>;
  /** Non-terminal sessions not updated for `staleMs`, across tenants (for resumption after a crash). */
  /**
   * Claim non-terminal sessions nobody moved for `staleMs` (a coordinator crashed, or lost its
   * database), across tenants, for `owner` until now + `leaseMs`: two coordinators never claim
   * the same session at once, and a claimed session is not claimed again while its owner moves it.
   */
  claimStaleSessions(
    owner: string,
    staleMs: number,
    leaseMs: number,
    limit: number,
  ): Promise<{ tenantId: string; sessionId: string }[]>;
}

export interface KeyStore {
  insertKey(k: KeyRecord): Promise<void>;
  /** Set status and (on activation) the public package fields. */
  updateKey(
    tenantId: string,
    keyId: string,
    patch: Partial<
      Pick<KeyRecord, 'status' | 'groupPublicKey' | 'xOnlyPublicKey' | 'publicKeyPackage' | 'tweak'>
    >,
  ): Promise<void>;
  insertCeremony(c: CeremonyRecord): Promise<void>;
  updateCeremony(
    tenantId: string,
    id: string,
    patch: Partial<
      Pick<CeremonyRecord, 'status' | 'transcriptHash' | 'errorCode' | 'errorMessage' | 'culprits'>
    >,
  ): Promise<void>;
  getCeremony(tenantId: string, id: string): Promise<CeremonyRecord | undefined>;
}

export interface RegistryStore {
  insertSigner(s: SignerRecord): Promise<void>;
  getSigner(id: string): Promise<SignerRecord | undefined>;
  updateSigner(
    id: string,
    patch: Partial<
      Pick<
        SignerRecord,
        'status' | 'quarantineOverride' | 'faultCount' | 'quarantined' | 'quarantinedAt' | 'name' | 'url'
      >
    >,
  ): Promise<void>;
}

export interface ListingStore {
  listKeys(tenantId: string, limit: number, cursor: string | null): Promise<Page<KeyRecord>>;
  listSessions(
    tenantId: string,
    limit: number,
    cursor: string | null,
    status: string | null,
  ): Promise<Page<SessionRecord>>;
  getCeremonyForKey(tenantId: string, keyId: string): Promise<CeremonyRecord | undefined>;
  countSessionsByStatus(): Promise<Record<string, number>>;
}

export interface TenantStore {
  ensureTenant(id: string, name: string, now: number): Promise<void>;
}

export interface JobStore {
  /** Runs `fn` only if this coordinator wins the advisory lock `lockKey`; false otherwise. */
  withJobLock(lockKey: number, fn: () => Promise<void>): Promise<boolean>;
  expireSessions(): Promise<number>;
  /** Fails DKG ceremonies past their deadline, and the keys they were creating. */
  expireCeremonies(): Promise<number>;
  cleanupSessions(retentionDays: number): Promise<number>;
}
