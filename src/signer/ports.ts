/**
 * What the signer engine needs from the outside world. The engine is a pure state machine;
 * storage, time and randomness are injected so every rule can be tested on its own.
 */
import type { PolicyState } from '../approvals/policy.js';
import type { KeyPackage } from '../crypto/types.js';
import type { ShareOrigin, ShareStatus } from '../domain/vocabulary.js';

export type { ShareOrigin, ShareStatus };

export interface StoredKey {
  keyId: string;
  identifier: number;
  status: ShareStatus;
  origin: ShareOrigin;
  /** Decrypted key package (secret share + public package). Never logged. */
  keyPackage: KeyPackage;
  /** DKG: the transcript hash this node certified. */
  transcriptHash?: Uint8Array;
  /** The steward approval policy this node certified (DESIGN §13), and its later changes. */
  approvalPolicy?: PolicyState;
  createdAt: number;
  /** Share generation: 0 (or absent) for the key's first shares, +1 per committed refresh. */
  generation?: number;
}

/**
 * A refresh's new share (src/signer/refresh.ts), kept sealed beside the share in force until
 * every member certified the new public package; then `commitRefresh` swaps them.
 */
export interface PendingRefresh {
  keyId: string;
  ceremonyId: string;
  generation: number;
  keyPackage: KeyPackage;
  /** publicKeyPackageHash of the new public package (src/protocol/transcript.ts). */
  publicHash: Uint8Array;
  /** The members (identifier, identity) the refresh ran with: commit checks their certificates. */
  members: { identifier: number; identity: string }[];
  createdAt: number;
}

/** Durable consumption marker: this member released (or was about to release) a share for this attempt. */
export interface ConsumptionMarker {
  keyId: string;
  sessionId: string;
  /** hex */
  attemptId: string;
  identifier: number;
  /** hex of the 32-byte digest signed */
  messageDigest: string;
  at: number;
}

export interface AuditEntry {
  at: number;
  kind: string;
  keyId?: string;
  sessionId?: string;
  attemptId?: string;
  messageDigest?: string;
  detail?: string;
}

export interface SignerStore {
  /** Insert a key; throws FloeError('key_exists') if the key id is taken. Shares are encrypted at rest. */
  putKey(key: StoredKey): void;
  getKey(keyId: string): StoredKey | undefined;
  /** Set a key's status, with its audit entry if given, in one transaction; unknown_key if absent. */
  setKeyStatus(keyId: string, status: ShareStatus, audit?: AuditEntry): void;
  /** Replace a key's approval policy state (under the key row's MAC); unknown_key if absent. */
  setApprovalPolicy(keyId: string, state: PolicyState): void;
  deleteKey(keyId: string): void;
  countKeys(): number;
  /** Keep (replacing any earlier one) a refresh's new share for a key, sealed and MAC'd. */
  putPendingRefresh(p: PendingRefresh): void;
  /** The pending refresh of a key, if any (its share is a copy: wipe it). */
  getPendingRefresh(keyId: string): PendingRefresh | undefined;
  /** Drop a key's pending refresh if it is the one of `ceremonyId`; whether one was dropped. */
  dropPendingRefresh(keyId: string, ceremonyId: string): boolean;
  /**
   * In one transaction: the pending share of `ceremonyId` becomes the key's share (its generation
   * with it), the old share's record is overwritten and the pending row deleted, audited
   * `key_refreshed`. unknown_key / ceremony_unknown when there is nothing to commit.
   */
  commitRefresh(keyId: string, ceremonyId: string, at: number): void;
  /** Record that a repair replaced `identity` (member `identifier`) of a key: revoked for it. Idempotent. */
  revokeIdentity(keyId: string, identity: string, identifier: number, ceremonyId: string, at: number): void;
  /** Whether a repair revoked `identity` for this key. */
  isRevoked(keyId: string, identity: string): boolean;
  hasMarker(keyId: string, sessionId: string, attemptId: string): boolean;
  /**
   * Durably record consumption markers, each with its audit entry, all in ONE transaction
   * (one fsync) before returning: a marker already there is `replay` (its audit entry is not
   * written); any failure to write throws FloeError('marker_write_failed') and writes nothing
   * (the caller must not release a share).
   */
  putMarkers(entries: readonly { marker: ConsumptionMarker; audit: AuditEntry }[]): ('ok' | 'replay')[];
  listMarkers(): ConsumptionMarker[];
  appendAudit(e: AuditEntry): void;
  listAudit(limit?: number): AuditEntry[];
  /** Whether any audit entry, however old, has this kind, key and detail. */
  hasAudit(kind: string, keyId: string, detail: string): boolean;
  close(): void;
}

export interface Clock {
  now(): number;
}

export type Rng = (len?: number) => Uint8Array;

export const systemClock: Clock = { now: () => Date.now() };
