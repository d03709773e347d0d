/**
 * Signer nodes: global infrastructure shared by all tenants (no tenant column, no RLS).
 * Managing them is an admin operation; the API layer enforces that.
 */
import type { SignerRecord } from '../../domain/records.js';
import type { SignerStatus } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import type { Queryable } from '../connection.js';
import { assignments, camelize, isUniqueViolation } from './util.js';

export type { SignerStatus };

/** A row of signer_nodes: the domain record. */
export interface SignerRow extends SignerRecord {
  updatedAt: number;
}

export interface NewSigner {
  id: string;
  name?: string | null;
  url: string;
  identityPubkey: string;
  status?: SignerStatus;
  createdAt: number;
}

export type SignerPatch = Partial<
  Pick<
    SignerRow,
    'name' | 'url' | 'status' | 'quarantineOverride' | 'faultCount' | 'quarantined' | 'quarantinedAt'
  >
>;

const PATCH_COLUMNS: Record<keyof SignerPatch, { col: string }> = {
  name: { col: 'name' },
  url: { col: 'url' },
  status: { col: 'status' },
  quarantineOverride: { col: 'quarantine_override' },
  faultCount: { col: 'fault_count' },
  quarantined: { col: 'quarantined' },
  quarantinedAt: { col: 'quarantined_at' },
};

const toSigner = (r: Record<string, unknown>) => camelize<SignerRow>(r);

/** Throws `conflict` if the id or the identity key is already registered. */
export async function insertSigner(q: Queryable, s: NewSigner): Promise<SignerRow> {
  try {
    const r = await q.query(
      `INSERT INTO signer_nodes (id, name, url, identity_pubkey, status, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *`,
      [s.id, s.name ?? null, s.url, s.identityPubkey, s.status ?? 'active', s.createdAt],
    );
    return toSigner(r.rows[0]!);
  } catch (e) {
    if (isUniqueViolation(e, ['signer_nodes_pkey', 'signer_nodes_identity_pubkey_key'])) {
      throw new FloeError('conflict', 'a signer with this id or identity key is already registered');
    }
    throw e;
  }
}

export async function getSigner(q: Queryable, id: string): Promise<SignerRow | null> {
  const r = await q.query('SELECT * FROM signer_nodes WHERE id = $1', [id]);
  return r.rows[0] ? toSigner(r.rows[0]) : null;
}

export async function getSignerByIdentity(q: Queryable, identityPubkey: string): Promise<SignerRow | null> {
  const r = await q.query('SELECT * FROM signer_nodes WHERE identity_pubkey = $1', [identityPubkey]);
  return r.rows[0] ? toSigner(r.rows[0]) : null;
}

export async function listSigners(q: Queryable, o: { status?: SignerStatus } = {}): Promise<SignerRow[]> {
  const r = o.status
    ? await q.query('SELECT * FROM signer_nodes WHERE status = $1 ORDER BY created_at, id', [o.status])
    : await q.query('SELECT * FROM signer_nodes ORDER BY created_at, id');
  return r.rows.map(toSigner);
}

export async function updateSigner(
  q: Queryable,
  id: string,
  patch: SignerPatch,
  at: number,
): Promise<SignerRow | null> {
  const params: unknown[] = [at];
  const sets = ['updated_at = $1', ...assignments(patch, PATCH_COLUMNS, params)];
  params.push(id);
  const r = await q.query(
    `UPDATE signer_nodes SET ${sets.join(', ')} WHERE id = $${params.length} RETURNING *`,
    params,
  );
  return r.rows[0] ? toSigner(r.rows[0]) : null;
}

export async function recordSignerSeen(
  q: Queryable,
  id: string,
  at: number,
  latencyMs: number,
): Promise<void> {
  await q.query(
    'UPDATE signer_nodes SET last_seen_at = $2, last_latency_ms = $3, updated_at = $2 WHERE id = $1',
    [id, at, Math.max(0, Math.round(latencyMs))],
  );
}

/**
 * Counts a fault; the signer is quarantined when its count reaches `quarantineAfter`, unless an
 * operator set quarantine_override. Atomic (one UPDATE). Null if there is no such signer.
 */
export async function recordSignerFault(
  q: Queryable,
  id: string,
  quarantineAfter: number,
  at: number,
): Promise<{ faultCount: number; quarantined: boolean } | null> {
  const r = await q.query<{ fault_count: number; quarantined: boolean }>(
    `UPDATE signer_nodes
        SET fault_count = fault_count + 1,
            quarantined = quarantined OR (fault_count + 1 >= $2 AND NOT quarantine_override),
            quarantined_at = CASE
              WHEN NOT quarantined AND fault_count + 1 >= $2 AND NOT quarantine_override THEN $3
              ELSE quarantined_at END,
            updated_at = $3
      WHERE id = $1
      RETURNING fault_count, quarantined`,
    [id, quarantineAfter, at],
  );
  const row = r.rows[0];
  return row ? { faultCount: row.fault_count, quarantined: row.quarantined } : null;
}

/** Lifts a quarantine and resets the fault count. */
export async function clearQuarantine(q: Queryable, id: string, at: number): Promise<SignerRow | null> {
  return updateSigner(q, id, { quarantined: false, quarantinedAt: null, faultCount: 0 }, at);
}
