/**
 * Share refresh ceremonies (migration 020). Status moves are conditional UPDATEs; the decision
 * (round3 → committing) moves the key's generation and public package in the same transaction.
 */
import type { KeyMember, KeyRefreshRecord, RefreshStatus } from '../../domain/records.js';
import { FloeError } from '../../protocol/errors.js';
import type { Queryable } from '../connection.js';
import { camelize, isUniqueViolation, json } from './util.js';

const toRefresh = (r: Record<string, unknown>) => camelize<KeyRefreshRecord>(r);

export async function insertRefresh(
  q: Queryable,
  r: {
    id: string;
    keyId: string;
    generation: number;
    participants: KeyMember[];
    createdAt: number;
    expiresAt: number;
  },
): Promise<KeyRefreshRecord> {
  try {
    const res = await q.query(
      `INSERT INTO key_refreshes (id, tenant_id, key_id, generation, participants, created_at, updated_at, expires_at)
       VALUES ($1, floe_current_tenant(), $2, $3, $4::jsonb, $5, $5, $6) RETURNING *`,
      [r.id, r.keyId, r.generation, json(r.participants), r.createdAt, r.expiresAt],
    );
    return toRefresh(res.rows[0]!);
  } catch (e) {
    if (isUniqueViolation(e, ['key_refreshes_one_open'])) {
      throw new FloeError('refresh_pending', 'a refresh of this key is still running', {
        hint: 'wait for it to complete or fail (GET /v1/keys/<id>/refreshes)',
      });
    }
    throw e;
  }
}

export async function getRefresh(q: Queryable, id: string): Promise<KeyRefreshRecord | null> {
  const r = await q.query('SELECT * FROM key_refreshes WHERE id = $1', [id]);
  return r.rows[0] ? toRefresh(r.rows[0]) : null;
}

/** A key's refreshes, newest first. */
export async function listRefreshes(q: Queryable, keyId: string, limit = 50): Promise<KeyRefreshRecord[]> {
  const r = await q.query(
    'SELECT * FROM key_refreshes WHERE key_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2',
    [keyId, limit],
  );
  return r.rows.map(toRefresh);
}

/** Move a refresh from `from` to `to`, with error fields on failure; null if it was not in `from`. */
export async function transitionRefresh(
  q: Queryable,
  id: string,
  from: readonly RefreshStatus[],
  to: RefreshStatus,
  now: number,
  failure?: { code: string; message: string; culprits: number[] },
): Promise<KeyRefreshRecord | null> {
  const r = await q.query(
    `UPDATE key_refreshes SET status = $2, updated_at = $3,
       failed_at = CASE WHEN $2 = 'failed' THEN $3 ELSE failed_at END,
       completed_at = CASE WHEN $2 = 'completed' THEN $3 ELSE completed_at END,
       error_code = coalesce($4, error_code), error_message = coalesce($5, error_message),
       culprits = coalesce($6::jsonb, culprits)
     WHERE id = $1 AND status = ANY($7::text[]) RETURNING *`,
    [
      id,
      to,
      now,
      failure?.code ?? null,
      failure?.message ?? null,
      failure ? json(failure.culprits) : null,
      from,
    ],
  );
  return r.rows[0] ? toRefresh(r.rows[0]) : null;
}

/**
 * The decision: every member certified `publicKeyPackage`. In one statement pair (the caller's
 * transaction): the refresh moves round3 → committing with the certificates, and the key takes
 * the new generation and public package (its group key is unchanged: the keys trigger refuses
 * any change of it). Null if the refresh was not in round3 (failed or expired meanwhile).
 */
export async function decideRefresh(
  q: Queryable,
  id: string,
  publicKeyPackage: unknown,
  certificates: { identifier: number; certificate: string }[],
  now: number,
): Promise<KeyRefreshRecord | null> {
  const r = await q.query(
    `UPDATE key_refreshes SET status = 'committing', updated_at = $2, public_key_package = $3::jsonb,
       certificates = $4::jsonb
     WHERE id = $1 AND status = 'round3' RETURNING *`,
    [id, now, json(publicKeyPackage), json(certificates)],
  );
  const row = r.rows[0] ? toRefresh(r.rows[0]) : null;
  if (!row) return null;
  const k = await q.query(
    `UPDATE keys SET generation = $2, public_key_package = $3::jsonb, updated_at = $4
      WHERE id = $1 AND generation = $2 - 1 RETURNING id`,
    [row.keyId, row.generation, json(publicKeyPackage), now],
  );
  if (k.rows.length !== 1) {
    throw new FloeError('refresh_failed', 'the key is not at the generation this refresh started from');
  }
  return row;
}

/**
 * Record that member `identifier` committed the refresh: its member entry in the key takes the
 * generation (it signs again), and the refresh notes it; when every member has, it completes.
 */
export async function acknowledgeCommit(
  q: Queryable,
  id: string,
  identifier: number,
  now: number,
): Promise<KeyRefreshRecord | null> {
  const r = await q.query(
    `UPDATE key_refreshes SET updated_at = $3,
       committed = CASE WHEN committed @> to_jsonb($2::int) THEN committed
                        ELSE committed || to_jsonb($2::int) END
     WHERE id = $1 AND status IN ('committing', 'completed') RETURNING *`,
    [id, identifier, now],
  );
  const row = r.rows[0] ? toRefresh(r.rows[0]) : null;
  if (!row) return null;
  await q.query(
    `UPDATE keys SET members = (
       SELECT jsonb_agg(CASE WHEN (m->>'identifier')::int = $2
                             THEN m || jsonb_build_object('generation', $3::int) ELSE m END ORDER BY o)
         FROM jsonb_array_elements(members) WITH ORDINALITY AS x(m, o)), updated_at = $4
     WHERE id = $1 AND generation = $3`,
    [row.keyId, identifier, row.generation, now],
  );
  if (row.status === 'committing' && row.committed.length >= row.participants.length) {
    return (await transitionRefresh(q, id, ['committing'], 'completed', now)) ?? row;
  }
  return row;
}

/** Refreshes not finished, in every tenant (for the jobs). */
export async function openRefreshes(
  q: Queryable,
): Promise<{ tenantId: string; id: string; status: RefreshStatus }[]> {
  const r = await q.query<{ tenant_id: string; id: string; status: RefreshStatus }>(
    'SELECT * FROM floe_open_key_refreshes()',
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, id: x.id, status: x.status }));
}

/** Fail the undecided refreshes past their deadline (every tenant); those failed. */
export async function expireRefreshes(
  q: Queryable,
): Promise<{ tenantId: string; id: string; keyId: string }[]> {
  const r = await q.query<{ tenant_id: string; id: string; key_id: string }>(
    'SELECT * FROM expire_old_key_refreshes()',
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, id: x.id, keyId: x.key_id }));
}
