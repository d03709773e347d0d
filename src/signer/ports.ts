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
  setKeyStatus(keyId: string, status: ShareStatus): void;
  /** Replace a key's approval policy state (under the key row's MAC); unknown_key if absent. */
  setApprovalPolicy(keyId: string, state: PolicyState): void;
  deleteKey(keyId: string): void;
  countKeys(): number;
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
  close(): void;
}

export interface Clock {
  now(): number;
}

export type Rng = (len?: number) => Uint8Array;

export const systemClock: Clock = { now: () => Date.now() };
