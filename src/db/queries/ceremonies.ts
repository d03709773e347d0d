/** DKG ceremonies. Status moves are conditional UPDATEs, like signing sessions. */

import { type CeremonyStatus, canCeremonyTransition } from '../../domain/ceremony-state.js';
import type { CeremonyRecord, KeyMember } from '../../domain/records.js';
import type { Queryable } from '../connection.js';
import { assignments, camelize, json } from './util.js';

export type { CeremonyStatus };
export { canCeremonyTransition };

/** A row of dkg_ceremonies: the domain record plus the relayed round data. */
export interface CeremonyRow extends CeremonyRecord {
  round1: unknown;
  round2: unknown;
  certificates: unknown;
  completedAt: number | null;
  failedAt: number | null;
}

export interface NewCeremony {
  id: string;
  tenantId?: string;
  keyId: string;
  threshold: number;
  n: number;
  participants: KeyMember[];
  createdAt: number;
  expiresAt: number;
}

export type CeremonyPatch = Partial<
  Pick<
    CeremonyRow,
    'round1' | 'round2' | 'transcriptHash' | 'certificates' | 'errorCode' | 'errorMessage' | 'culprits'
  >
>;

const PATCH_COLUMNS: Record<keyof CeremonyPatch, { col: string; json?: boolean }> = {
  round1: { col: 'round1', json: true },
  round2: { col: 'round2', json: true },
  transcriptHash: { col: 'transcript_hash' },
  certificates: { col: 'certificates', json: true },
  errorCode: { col: 'error_code' },
  errorMessage: { col: 'error_message' },
  culprits: { col: 'culprits', json: true },
};

const toCeremony = (r: Record<string, unknown>) => camelize<CeremonyRow>(r);

export async function insertCeremony(q: Queryable, c: NewCeremony): Promise<CeremonyRow> {
  const r = await q.query(
    `INSERT INTO dkg_ceremonies (id, tenant_id, key_id, threshold, n, participants, created_at, updated_at, expires_at)
     VALUES ($1, coalesce($2, floe_current_tenant()), $3, $4, $5, $6::jsonb, $7, $7, $8) RETURNING *`,
    [c.id, c.tenantId ?? null, c.keyId, c.threshold, c.n, json(c.participants), c.createdAt, c.expiresAt],
  );
  return toCeremony(r.rows[0]!);
}

export async function getCeremony(q: Queryable, id: string): Promise<CeremonyRow | null> {
  const r = await q.query('SELECT * FROM dkg_ceremonies WHERE id = $1', [id]);
  return r.rows[0] ? toCeremony(r.rows[0]) : null;
}

/** The latest ceremony for a key. */
export async function getCeremonyForKey(q: Queryable, keyId: string): Promise<CeremonyRow | null> {
  const r = await q.query(
    'SELECT * FROM dkg_ceremonies WHERE key_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1',
    [keyId],
  );
  return r.rows[0] ? toCeremony(r.rows[0]) : null;
}

/**
 * Moves a ceremony from one of `from` to `to` (or patches it when `to` is its current status)
 * and applies `patch`; null if it is not in one of `from` or no move is legal. completed_at and
 * failed_at are stamped on entry.
 */
export async function transitionCeremony(
  q: Queryable,
  id: string,
  from: readonly CeremonyStatus[],
  to: CeremonyStatus,
  patch: CeremonyPatch = {},
  opts: { now?: number } = {},
): Promise<CeremonyRow | null> {
  const legal = from.filter((f) => canCeremonyTransition(f, to) || f === to);
  if (legal.length === 0) return null;
  const params: unknown[] = [to, opts.now ?? Date.now()];
  const sets = ['status = $1', 'updated_at = $2', ...assignments(patch, PATCH_COLUMNS, params)];
  if (to === 'completed') sets.push('completed_at = CASE WHEN status = $1 THEN completed_at ELSE $2 END');
  if (to === 'failed') sets.push('failed_at = CASE WHEN status = $1 THEN failed_at ELSE $2 END');
  params.push(id, legal);
  const r = await q.query(
    `UPDATE dkg_ceremonies SET ${sets.join(', ')}
      WHERE id = $${params.length - 1} AND status = ANY($${params.length}::text[]) RETURNING *`,
    params,
  );
  return r.rows[0] ? toCeremony(r.rows[0]) : null;
}

/** Fails past-due ceremonies (and their pending keys) in every tenant; returns how many. */
export async function expireCeremonies(q: Queryable): Promise<number> {
  const r = await q.query<{ n: number }>('SELECT expire_old_dkg_ceremonies() AS n');
  return r.rows[0]?.n ?? 0;
}
