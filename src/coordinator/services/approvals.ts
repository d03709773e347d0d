/**
 * The approval stage (DESIGN §13) as the session service sees it: whether a new session of a
 * key must wait for its stewards, and the two ways out of `awaiting_approval` (approved →
 * `pending`, rejected → `failed` with `approval_rejected`; the expiry job takes the third).
 * Stewards' policies and proofs plug in behind {@link ApprovalGate}; with none, a session
 * goes straight to signing, as before approvals existed.
 */
import type { ResolvedIntent } from '../../domain/intent.js';
import type { KeyRecord } from '../../domain/records.js';
import type { InitialSessionStatus } from '../../domain/session-state.js';

export type InitialStatus = InitialSessionStatus;

export interface ApprovalGate {
  /** The status a new session of `key` signing `intent` starts in. */
  initialStatus(key: KeyRecord, intent: ResolvedIntent): InitialStatus;
}

/** No approval policy anywhere: every session starts `pending`. */
export const noApprovals: ApprovalGate = { initialStatus: () => 'pending' };

export type ApprovalOutcome = { decision: 'approved' } | { decision: 'rejected'; reason: string };
