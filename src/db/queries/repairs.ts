/** Share repairs (migration 020). Status moves are conditional UPDATEs. */
import type { KeyMember, KeyRepairRecord, RepairStatus } from '../../domain/records.js';
import { FloeError } from '../../protocol/errors.js';
import type { Queryable } from '../connection.js';
import { camelize, isUniqueViolation, json } from './util.js';

const toRepair = (r: Record<string, unknown>) => camelize<KeyRepairRecord>(r);

export async function insertRepair(
  q: Queryable,
  r: Pick<
    KeyRepairRecord,
    | 'id'
    | 'keyId'
    | 'generation'
    | 'lost'
    | 'replaced'
    | 'newSignerId'
    | 'newIdentity'
    | 'helpers'
    | 'members'
    | 'createdAt'
    | 'expiresAt'
  >,
): Promise<KeyRepairRecord> {
  try {
    const res = await q.query(
      `INSERT INTO key_repairs (id, tenant_id, key_id, generation, lost, replaced, new_signer_id, new_identity,
         helpers, members, created_at, updated_at, expires_at)
       VALUES ($1, floe_current_tenant(), $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $10, $11) RETURNING *`,
      [
        r.id,
        r.keyId,
        r.generation,
        r.lost,
        r.replaced,
        r.newSignerId,
        r.newIdentity,
        json(r.helpers),
        json(r.members),
        r.createdAt,
        r.expiresAt,
      ],
    );
    return toRepair(res.rows[0]!);
  } catch (e) {
    if (isUniqueViolation(e, ['key_repairs_one_open'])) {
      throw new FloeError('refresh_pending', 'a repair of this key is still running', {
        hint: 'wait for it to complete or fail (GET /v1/keys/<id>/repairs)',
      });
    }
    throw e;
  }
}

export async function getRepair(q: Queryable, id: string): Promise<KeyRepairRecord | null> {
  const r = await q.query('SELECT * FROM key_repairs WHERE id = $1', [id]);
  return r.rows[0] ? toRepair(r.rows[0]) : null;
}

export async function listRepairs(q: Queryable, keyId: string, limit = 50): Promise<KeyRepairRecord[]> {
  const r = await q.query(
    'SELECT * FROM key_repairs WHERE key_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2',
    [keyId, limit],
  );
  return r.rows.map(toRepair);
}

export async function transitionRepair(
  q: Queryable,
  id: string,
  from: readonly RepairStatus[],
  to: RepairStatus,
  now: number,
  patch: { failure?: { code: string; message: string; culprits: number[] }; commitRequest?: unknown } = {},
): Promise<KeyRepairRecord | null> {
  const f = patch.failure;
  const r = await q.query(
    `UPDATE key_repairs SET status = $2, updated_at = $3,
       failed_at = CASE WHEN $2 = 'failed' THEN $3 ELSE failed_at END,
       completed_at = CASE WHEN $2 = 'completed' THEN $3 ELSE completed_at END,
       error_code = coalesce($4, error_code), error_message = coalesce($5, error_message),
       culprits = coalesce($6::jsonb, culprits), commit_request = coalesce($7::jsonb, commit_request)
     WHERE id = $1 AND status = ANY($8::text[]) RETURNING *`,
    [
      id,
      to,
      now,
      f?.code ?? null,
      f?.message ?? null,
      f ? json(f.culprits) : null,
      patch.commitRequest === undefined ? null : json(patch.commitRequest),
      from,
    ],
  );
  return r.rows[0] ? toRepair(r.rows[0]) : null;
}

/**
 * Member `identifier` committed the repair. When it is the new member (it activated its share),
 * the key's member entry at `lost` becomes the new signer, on the repair's generation. When every
 * member has, the repair completes.
 */
export async function acknowledgeRepair(
  q: Queryable,
  id: string,
  identifier: number,
  now: number,
): Promise<KeyRepairRecord | null> {
  const r = await q.query(
    `UPDATE key_repairs SET updated_at = $3,
       committed = CASE WHEN committed @> to_jsonb($2::int) THEN committed ELSE committed || to_jsonb($2::int) END
     WHERE id = $1 AND status IN ('committing', 'completed') RETURNING *`,
    [id, identifier, now],
  );
  const row = r.rows[0] ? toRepair(r.rows[0]) : null;
  if (!row) return null;
  if (identifier === row.lost) {
    const member: KeyMember = {
      identifier: row.lost,
      signer_id: row.newSignerId,
      identity: row.newIdentity,
      ...(row.generation ? { generation: row.generation } : {}),
    };
    await q.query(
      `UPDATE keys SET members = (
         SELECT jsonb_agg(CASE WHEN (m->>'identifier')::int = $2 THEN $3::jsonb ELSE m END ORDER BY o)
           FROM jsonb_array_elements(members) WITH ORDINALITY AS x(m, o)), updated_at = $4
       WHERE id = $1`,
      [row.keyId, row.lost, json(member), now],
    );
    // A refresh decided while this member was lost could never reach it; the new member holds
    // the key's current generation already, so for that refresh this member is done.
    await q.query(
      `UPDATE key_refreshes SET updated_at = $3,
         committed = CASE WHEN committed @> to_jsonb($2::int) THEN committed ELSE committed || to_jsonb($2::int) END
       WHERE key_id = $1 AND status = 'committing' AND generation = $4`,
      [row.keyId, row.lost, now, row.generation],
    );
    await q.query(
      `UPDATE key_refreshes SET status = 'completed', completed_at = $2, updated_at = $2
        WHERE key_id = $1 AND status = 'committing' AND jsonb_array_length(committed) >= jsonb_array_length(participants)`,
      [row.keyId, now],
    );
  }
  if (row.status === 'committing' && row.committed.length >= row.members.length) {
    return (await transitionRepair(q, id, ['committing'], 'completed', now)) ?? row;
  }
  return row;
}

export async function openRepairs(
  q: Queryable,
): Promise<{ tenantId: string; id: string; status: RepairStatus }[]> {
  const r = await q.query<{ tenant_id: string; id: string; status: RepairStatus }>(
    'SELECT * FROM floe_open_key_repairs()',
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, id: x.id, status: x.status }));
}

export async function expireRepairs(
  q: Queryable,
): Promise<{ tenantId: string; id: string; keyId: string }[]> {
  const r = await q.query<{ tenant_id: string; id: string; key_id: string }>(
    'SELECT * FROM expire_old_key_repairs()',
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, id: x.id, keyId: x.key_id }));
}
