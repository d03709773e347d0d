/**
 * Nonce commitments of signing attempts. A commitment (hiding || binding, two compressed
 * points) — or either of its points — may be stored once across all sessions of all tenants,
 * ever: the unique indexes refuse a second one even when row-level security hides the first,
 * and the table of used points (migration 010) even after the first was cleaned up.
 */
import { FloeError } from '../../protocol/errors.js';
import type { Queryable, Tx } from '../connection.js';
import { camelize, dbError, isUniqueViolation, json } from './util.js';

export interface NonceCommitmentRow {
  id: number;
  tenantId: string;
  sessionId: string;
  attempt: number;
  participant: number;
  signerId: string;
  /** The PSBT input of a multi-digest attempt (migration 015); 0 for a single digest. */
  inputIndex: number;
  /** hiding || binding, 132 hex characters. */
  nonceCommitment: string;
  nonceUsed: boolean;
  usedAt: number | null;
  createdAt: number;
}

export interface CommitmentInput {
  /** The member's identifier (1..255). */
  participant: number;
  signerId: string;
  commitment: string;
  /** Multi-digest attempts: the PSBT input this commitment is for (default 0). */
  inputIndex?: number;
}

const COMMITMENT_RE = /^0[23][0-9a-f]{64}0[23][0-9a-f]{64}$/;
const REUSE_CONSTRAINTS = [
  'unique_nonce_commitment',
  'unique_nonce_hiding',
  'unique_nonce_binding',
  // every point ever committed, kept after the session is cleaned up (migration 010)
  'used_nonce_points_pkey',
];

const toRow = (r: Record<string, unknown>) => camelize<NonceCommitmentRow>(r);

/**
 * The checks of one attempt's commitments made before the database sees them: throws
 * `invalid_encoding` for a malformed commitment, identifier or input index, and
 * `nonce_reuse_detected` (with `culprits`) if a nonce point repeats within the attempt.
 */
export function checkCommitments(rows: readonly CommitmentInput[]): void {
  const seen = new Map<string, number>();
  const culprits = new Set<number>();
  for (const r of rows) {
    if (!Number.isInteger(r.participant) || r.participant < 1 || r.participant > 255) {
      throw new FloeError('invalid_encoding', 'commitment: participant must be an integer from 1 to 255');
    }
    if (
      r.inputIndex !== undefined &&
      (!Number.isInteger(r.inputIndex) || r.inputIndex < 0 || r.inputIndex > 65_535)
    ) {
      throw new FloeError('invalid_encoding', 'commitment: input index must be an integer from 0 to 65535');
    }
    if (!COMMITMENT_RE.test(r.commitment)) {
      throw new FloeError('invalid_encoding', 'commitment: expected two 33-byte compressed points in hex');
    }
    for (const point of [r.commitment.slice(0, 66), r.commitment.slice(66)]) {
      const other = seen.get(point);
      if (other !== undefined) culprits.add(other).add(r.participant);
      seen.set(point, r.participant);
    }
  }
  if (culprits.size > 0) {
    throw new FloeError('nonce_reuse_detected', 'a nonce point repeats within one attempt', {
      culprits: [...culprits].sort((a, b) => a - b),
    });
  }
}

/** The commitments of one attempt of a session, for insertUsedCommitments. */
export interface AttemptCommitments {
  tenantId: string;
  sessionId: string;
  attempt: number;
  rows: readonly CommitmentInput[];
}

/**
 * Records the commitments of several attempts in one statement, in order, each already marked
 * used: for sessions the caller has just moved out of nonce_collection in this transaction, with
 * commitments that passed checkCommitments. Returns how many rows were inserted. Refusals are
 * those of insertCommitments (`nonce_reuse_detected` — without culprits: the statement does not
 * say whose —, `session_conflict`, `invalid_encoding`), and they leave the transaction aborted:
 * run it under a savepoint.
 */
export async function insertUsedCommitments(
  q: Queryable,
  attempts: readonly AttemptCommitments[],
  now: number = Date.now(),
): Promise<number> {
  const values = attempts.flatMap((a) =>
    a.rows.map((r) => ({
      tenant_id: a.tenantId,
      session_id: a.sessionId,
      attempt: a.attempt,
      participant: r.participant,
      signer_id: r.signerId,
      commitment: r.commitment,
      input_index: r.inputIndex ?? 0,
    })),
  );
  if (values.length === 0) return 0;
  try {
    const r = await q.query(
      `INSERT INTO nonce_commitments (tenant_id, session_id, attempt, participant, signer_id, nonce_commitment,
         created_at, input_index, nonce_used, used_at)
       SELECT v.tenant_id, v.session_id, v.attempt, v.participant, v.signer_id, v.commitment, $2,
              v.input_index, true, floe_now_ms()
         FROM jsonb_to_recordset($1::jsonb) AS v (ord integer, tenant_id text, session_id text,
              attempt integer, participant integer, signer_id text, commitment text, input_index integer)
        ORDER BY v.ord`,
      [json(values.map((v, ord) => ({ ord, ...v }))), now],
    );
    return r.rowCount;
  } catch (e) {
    if (isUniqueViolation(e, REUSE_CONSTRAINTS)) {
      throw new FloeError('nonce_reuse_detected', 'a nonce commitment was seen before');
    }
    if (isUniqueViolation(e, ['unique_participant_attempt'])) {
      throw new FloeError('session_conflict', 'commitments for an attempt are already recorded');
    }
    if (dbError(e).code === '23514')
      throw new FloeError('invalid_encoding', 'commitment refused by the database');
    throw e;
  }
}

/**
 * Records the commitments of `attempt` of a session that is in nonce_collection at that attempt.
 * All or nothing. Throws FloeError:
 * - `nonce_reuse_detected` (with `culprits`: the participants at fault) if any commitment or
 *   point was stored before anywhere, or repeats within the batch;
 * - `session_conflict` if the session is not at that attempt in nonce_collection, or the
 *   attempt's commitments were already recorded;
 * - `invalid_encoding` for a malformed commitment or identifier.
 * The statement runs under a savepoint, so the caller's transaction stays usable after a refusal
 * (for example to fail the session).
 */
export async function insertCommitments(
  q: Tx,
  sessionId: string,
  attempt: number,
  rows: readonly CommitmentInput[],
  now: number = Date.now(),
): Promise<NonceCommitmentRow[]> {
  if (rows.length === 0) return [];
  checkCommitments(rows);

  await q.query('SAVEPOINT floe_insert_commitments');
  let inserted: NonceCommitmentRow[];
  try {
    const r = await q.query(
      `INSERT INTO nonce_commitments (tenant_id, session_id, attempt, participant, signer_id, nonce_commitment,
         created_at, input_index)
       SELECT s.tenant_id, s.session_id, $2, c.participant, c.signer_id, c.commitment, $3, c.input_index
         FROM signing_sessions s
        CROSS JOIN jsonb_to_recordset($4::jsonb)
             AS c (participant integer, signer_id text, commitment text, input_index integer)
        WHERE s.session_id = $1 AND s.attempt = $2 AND s.status = 'nonce_collection'
       RETURNING *`,
      [
        sessionId,
        attempt,
        now,
        json(
          rows.map((r) => ({
            participant: r.participant,
            signer_id: r.signerId,
            commitment: r.commitment,
            input_index: r.inputIndex ?? 0,
          })),
        ),
      ],
    );
    inserted = r.rows.map(toRow);
    await q.query('RELEASE SAVEPOINT floe_insert_commitments');
  } catch (e) {
    await q.query('ROLLBACK TO SAVEPOINT floe_insert_commitments');
    await q.query('RELEASE SAVEPOINT floe_insert_commitments');
    if (isUniqueViolation(e, REUSE_CONSTRAINTS)) {
      const at: number[] = [];
      for (const r of rows) if (await commitmentSeen(q, r.commitment)) at.push(r.participant);
      throw new FloeError('nonce_reuse_detected', 'a nonce commitment was seen before', {
        culprits: at.sort((a, b) => a - b),
      });
    }
    if (isUniqueViolation(e, ['unique_participant_attempt'])) {
      throw new FloeError('session_conflict', `commitments for attempt ${attempt} are already recorded`);
    }
    if (dbError(e).code === '23514')
      throw new FloeError('invalid_encoding', 'commitment refused by the database');
    throw e;
  }
  if (inserted.length === 0) {
    throw new FloeError(
      'session_conflict',
      `session ${sessionId} is not collecting nonces for attempt ${attempt}`,
    );
  }
  return inserted;
}

/** mark_nonce_as_used: true only for the first caller. Tenant-scoped (RLS). */
export async function markUsed(q: Queryable, commitment: string): Promise<boolean> {
  const r = await q.query<{ ok: boolean }>('SELECT mark_nonce_as_used($1) AS ok', [commitment]);
  return r.rows[0]?.ok === true;
}

/**
 * Marks every commitment used; true only if all of them were unused before (and exist in the
 * tenant). The ones that were unused are marked either way.
 */
export async function markAllUsed(q: Queryable, commitments: readonly string[]): Promise<boolean> {
  const unique = [...new Set(commitments)];
  if (unique.length !== commitments.length) return false;
  if (unique.length === 0) return true;
  const r = await q.query(
    `UPDATE nonce_commitments SET nonce_used = true, used_at = floe_now_ms()
      WHERE nonce_commitment = ANY($1::text[]) AND nonce_used = false`,
    [unique],
  );
  return r.rowCount === unique.length;
}

export async function listCommitments(
  q: Queryable,
  sessionId: string,
  attempt?: number,
): Promise<NonceCommitmentRow[]> {
  const r =
    attempt === undefined
      ? await q.query(
          'SELECT * FROM nonce_commitments WHERE session_id = $1 ORDER BY attempt, participant, input_index',
          [sessionId],
        )
      : await q.query(
          'SELECT * FROM nonce_commitments WHERE session_id = $1 AND attempt = $2 ORDER BY participant, input_index',
          [sessionId, attempt],
        );
  return r.rows.map(toRow);
}

/** Whether the commitment or either of its points was stored before, in any tenant. */
export async function commitmentSeen(q: Queryable, commitment: string): Promise<boolean> {
  const r = await q.query<{ seen: boolean }>('SELECT floe_nonce_commitment_seen($1) AS seen', [commitment]);
  return r.rows[0]?.seen === true;
}
