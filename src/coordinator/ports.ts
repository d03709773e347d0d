/**
 * What the coordinator's orchestration needs from storage. The Postgres adapter implements
 * it with conditional UPDATEs inside tenant-scoped transactions (row-level security).
 */
import type { Intent } from '../domain/intent.js';
import type { VersionedKey } from '../domain/key-version.js';
import type {
  CeremonyRecord,
  KeyMember,
  KeyRecord,
  Page,
  PassphraseAddressRecord,
  RelayPublishResult,
  SessionBitcoin,
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
    // bitcoin_psbt sessions and policy refusals (migration 015)
    | 'bitcoin'
    | 'policyRefusals'
    // a session leaving awaiting_approval gets the signing TTL from then (DESIGN §13)
    | 'expiresAt'
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
  /** One per member, or (multi-digest attempts) one per member and input. */
  rows: { identifier: number; signerId: string; commitment: string; inputIndex?: number }[];
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
  /** nostr_event: the relays to publish to once completed (normalized); absent or null: none. */
  publishRelays?: string[] | null;
  /** bitcoin_psbt: the decoded PSBT summary (and whether to finalize), stored with the session. */
  bitcoin?: SessionBitcoin | null;
  /**
   * A `pending` session born in its first attempt: written in `nonce_collection`, attempt 1, on
   * these members, with the event its first move would have recorded — one move fewer.
   */
  firstAttempt?: { participants: number[]; startedAt: number; event: AuditEvent };
  /**
   * The version of the key's row this session was prepared against (getKeyVersioned): the
   * session is written only while the row is still that version, else KeyChanged is thrown
   * (src/domain/key-version.ts). Absent: no condition on the key.
   */
  keyVersion?: string;
}

export interface SessionStore {
  /** The key with its row's version, for inserts that name it (NewSession.keyVersion). */
  getKeyVersioned(tenantId: string, keyId: string): Promise<VersionedKey | undefined>;
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
  /** A DKG's start: its key and ceremony (both pending) and the audit event, in one transaction. */
  insertDkg(k: KeyRecord, c: CeremonyRecord, event: AuditEvent): Promise<void>;
  /**
   * A DKG's end, in one transaction: the key with its patch (active, its public package), the
   * ceremony completed with its transcript hash (while it is still running), and the audit event.
   */
  completeDkg(
    tenantId: string,
    keyId: string,
    patch: Parameters<KeyStore['updateKey']>[2],
    ceremony: { id: string; transcriptHash: string },
    event: AuditEvent,
  ): Promise<void>;
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
  /** A key and, for a DKG key, its latest ceremony, read in one transaction. */
  getKeyWithCeremony(
    tenantId: string,
    keyId: string,
  ): Promise<{ key: KeyRecord; ceremony: CeremonyRecord | undefined } | undefined>;
  /** Every status counted (0 for none); `live`: only the live statuses, without a scan of the whole table. */
  countSessionsByStatus(o?: { live?: boolean }): Promise<Record<string, number>>;
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
  /**
   * The embedded database's autovacuum (src/db/maintenance.ts): vacuums and analyzes the tables
   * that are due; nothing on a Postgres server, whose autovacuum does it.
   */
  maintainTables(): Promise<{ vacuumed: string[]; analyzed: string[] }>;
}

/** What one publishing round writes (DESIGN §14, migration 012). */
export interface PublishPatch {
  /** Every relay tried so far, in the order of the session's relays. */
  results: RelayPublishResult[];
  status: 'pending' | 'done';
  /** When the next round is due; null when done. */
  nextAt: number | null;
}

/** Publishing signed Nostr events and the default relays of keys (src/coordinator/services/publish.ts). */
export interface PublishStore {
  /**
   * Claim one completed session's publishing round for `owner` until now + `leaseMs`: only when
   * publishing is pending, due and not leased by another coordinator. Null otherwise.
   */
  claimPublish(
    tenantId: string,
    sessionId: string,
    owner: string,
    leaseMs: number,
  ): Promise<SessionRecord | null>;
  /** Claim due publishing rounds across tenants; two coordinators never claim the same one. */
  claimDuePublishes(
    owner: string,
    leaseMs: number,
    limit: number,
  ): Promise<{ tenantId: string; sessionId: string }[]>;
  /**
   * Record a round and release the lease, only while `owner` holds it; `event` is audited in the
   * same transaction. Null when the lease was taken over (nothing written).
   */
  recordPublish(
    tenantId: string,
    sessionId: string,
    owner: string,
    patch: PublishPatch,
    event?: AuditEvent,
  ): Promise<SessionRecord | null>;
  /** Set a key's default relays, auditing `event` in the same transaction. Null if no such key. */
  setKeyRelays(
    tenantId: string,
    keyId: string,
    relays: string[],
    event: AuditEvent & { actor: string },
  ): Promise<KeyRecord | null>;
}

/** Addresses per passphrase (DESIGN §14, migration 016; src/db/queries/addresses.ts). */
export interface AddressStore {
  getPassphraseAddress(tenantId: string, lookupId: string): Promise<PassphraseAddressRecord | undefined>;
  /** Inserts the row unless the lookup id has one; undefined when another request claimed it first. */
  claimPassphraseAddress(
    tenantId: string,
    a: { lookupId: string; keyId: string; network: string },
  ): Promise<PassphraseAddressRecord | undefined>;
  /** Moves the lookup id from a failed key to a new one, only if it still points at `fromKeyId`. */
  repointPassphraseAddress(
    tenantId: string,
    o: { lookupId: string; fromKeyId: string; keyId: string; network: string },
  ): Promise<PassphraseAddressRecord | undefined>;
  setPassphraseAddressOutput(
    tenantId: string,
    o: { lookupId: string; keyId: string; address: string; outputKey: string; internalKey: string },
  ): Promise<PassphraseAddressRecord | undefined>;
}

/** A steward's recorded decision on a session (migration 014). */
export interface ApprovalRecord {
  sessionId: string;
  /** x-only hex */
  steward: string;
  decision: 'approve' | 'reject';
  eventId: string;
  /** The steward-signed kind-30078 event, as checked when it arrived. */
  event: unknown;
  via: 'api' | 'relay';
  /** The event's created_at, Unix seconds. */
  decidedAt: number;
  /** Unix ms. */
  recordedAt: number;
}

/** Steward approvals (DESIGN §13; src/coordinator/services/approvals.ts). */
export interface ApprovalStore {
  /**
   * Record a steward's decision while the session waits for decisions (its row locked), auditing
   * `event` in the same transaction. Nothing is written when that steward already decided
   * (`duplicate`) or the session moved on (`not_awaiting`).
   */
  recordApproval(
    tenantId: string,
    a: ApprovalRecord,
    event: AuditEvent,
  ): Promise<'recorded' | 'duplicate' | 'not_awaiting'>;
  /** The decisions on these sessions, oldest first. */
  listApprovals(tenantId: string, sessionIds: readonly string[]): Promise<ApprovalRecord[]>;
  /** Set a key's approval policy state, auditing `event` in the same transaction; false if no such key. */
  setKeyApprovalPolicy(
    tenantId: string,
    keyId: string,
    state: { revision: number; policy: unknown } | null,
    event: AuditEvent & { actor: string },
  ): Promise<boolean>;
  /** Sessions waiting for their stewards, in every tenant (to listen for their decisions). */
  listAwaitingApproval(limit: number): Promise<{ tenantId: string; sessionId: string }[]>;
}
