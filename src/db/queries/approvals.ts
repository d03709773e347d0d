/**
 * Steward approvals (migration 014): the decisions recorded on sessions, and the approval
 * policy state of keys. Decisions are final: inserted once per (session, steward), never
 * updated; the database refuses a second one.
 */
import type { Queryable } from '../connection.js';
import { camelize, isUniqueViolation, json } from './util.js';

export interface ApprovalRow {
  tenantId: string;
  sessionId: string;
  /** x-only hex */
  steward: string;
  decision: 'approve' | 'reject';
  eventId: string;
  /** The steward-signed event, as checked. */
  event: unknown;
  via: 'api' | 'relay';
  /** The event's created_at, Unix seconds. */
  decidedAt: number;
  /** Unix ms. */
  recordedAt: number;
}

export type NewApproval = Omit<ApprovalRow, 'tenantId'>;

const toApproval = (r: Record<string, unknown>): ApprovalRow => {
  const a = camelize<ApprovalRow>(r);
  return { ...a, decidedAt: Number(a.decidedAt), recordedAt: Number(a.recordedAt) };
};

/**
 * Insert a decision while the session waits for decisions: its row is locked first (FOR UPDATE),
 * so a decision and a move of the session never interleave. `duplicate` when the steward already
 * decided, `not_awaiting` when the session moved on; nothing is written then.
 */
export async function insertApproval(
  q: Queryable,
  a: NewApproval,
): Promise<'recorded' | 'duplicate' | 'not_awaiting'> {
  const s = await q.query<{ status: string }>(
    'SELECT status FROM signing_sessions WHERE session_id = $1 FOR UPDATE',
    [a.sessionId],
  );
  if (s.rows[0]?.status !== 'awaiting_approval') return 'not_awaiting';
  try {
    const r = await q.query(
      `INSERT INTO session_approvals (session_id, steward, decision, event_id, event, via, decided_at, recorded_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
       ON CONFLICT (session_id, steward) DO NOTHING RETURNING steward`,
      [a.sessionId, a.steward, a.decision, a.eventId, json(a.event), a.via, a.decidedAt, a.recordedAt],
    );
    return r.rows.length ? 'recorded' : 'duplicate';
  } catch (e) {
    if (isUniqueViolation(e, ['session_approvals_pkey'])) return 'duplicate';
    throw e;
  }
}

/** The decisions on these sessions, oldest first. */
export async function listApprovals(q: Queryable, sessionIds: readonly string[]): Promise<ApprovalRow[]> {
  if (sessionIds.length === 0) return [];
  const r = await q.query(
    `SELECT * FROM session_approvals WHERE session_id = ANY($1::text[]) ORDER BY recorded_at, steward`,
    [[...sessionIds]],
  );
  return r.rows.map(toApproval);
}

/** Set a key's approval policy state. Null if there is no such key. */
export async function setKeyApprovalPolicy(
  q: Queryable,
  keyId: string,
  state: { revision: number; policy: unknown } | null,
  at: number,
): Promise<boolean> {
  const r = await q.query('UPDATE keys SET approval_policy = $1::jsonb, updated_at = $2 WHERE id = $3', [
    state === null ? null : json(state),
    at,
    keyId,
  ]);
  return (r.rowCount ?? 0) > 0;
}

/** Sessions waiting for their stewards in every tenant (floe_sessions_awaiting_approval). */
export async function listAwaitingApproval(
  q: Queryable,
  limit: number,
): Promise<{ tenantId: string; sessionId: string }[]> {
  const r = await q.query<{ tenant_id: string; session_id: string }>(
    'SELECT tenant_id, session_id FROM floe_sessions_awaiting_approval($1)',
    [limit],
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, sessionId: x.session_id }));
}
