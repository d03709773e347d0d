/** Keys (key groups) of a tenant. */

import type { KeyMember, KeyRecord } from '../../domain/records.js';
import type { KeyOrigin, KeyStatus } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import type { Queryable } from '../connection.js';
import {
  assignments,
  camelize,
  clampLimit,
  decodeCursor,
  encodeCursor,
  isUniqueViolation,
  json,
} from './util.js';

export type { KeyMember, KeyOrigin, KeyStatus };

/** A row of keys: the domain record. */
export type KeyRow = KeyRecord;

export interface NewKey {
  id: string;
  tenantId?: string;
  label?: string | null;
  threshold: number;
  n: number;
  groupPublicKey?: string | null;
  xOnlyPublicKey?: string | null;
  publicKeyPackage?: unknown;
  members?: KeyMember[];
  origin: KeyOrigin;
  tweak?: unknown;
  status?: KeyStatus;
  createdAt: number;
}

export type KeyPatch = Partial<
  Pick<
    KeyRow,
    'label' | 'status' | 'groupPublicKey' | 'xOnlyPublicKey' | 'publicKeyPackage' | 'members' | 'tweak'
  >
>;

const PATCH_COLUMNS: Record<keyof KeyPatch, { col: string; json?: boolean }> = {
  label: { col: 'label' },
  status: { col: 'status' },
  groupPublicKey: { col: 'group_public_key' },
  xOnlyPublicKey: { col: 'x_only_public_key' },
  publicKeyPackage: { col: 'public_key_package', json: true },
  members: { col: 'members', json: true },
  tweak: { col: 'tweak', json: true },
};

const toKey = (r: Record<string, unknown>) => camelize<KeyRow>(r);
const jsonOrNull = (v: unknown) => (v === undefined || v === null ? null : json(v));

function keyExists(e: unknown): never {
  if (isUniqueViolation(e, ['keys_pkey', 'keys_tenant_active_pubkey_key'])) {
    throw new FloeError('key_exists', 'a key with this id or public key already exists');
  }
  throw e;
}

export async function insertKey(q: Queryable, k: NewKey): Promise<KeyRow> {
  try {
    const r = await q.query(
      `INSERT INTO keys (id, tenant_id, label, threshold, n, group_public_key, x_only_public_key,
         public_key_package, members, origin, tweak, status, created_at, updated_at)
       VALUES ($1, coalesce($2, floe_current_tenant()), $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11::jsonb,
         $12, $13, $13)
       RETURNING *`,
      [
        k.id,
        k.tenantId ?? null,
        k.label ?? null,
        k.threshold,
        k.n,
        k.groupPublicKey ?? null,
        k.xOnlyPublicKey ?? null,
        jsonOrNull(k.publicKeyPackage),
        json(k.members ?? []),
        k.origin,
        jsonOrNull(k.tweak),
        k.status ?? 'pending',
        k.createdAt,
      ],
    );
    return toKey(r.rows[0]!);
  } catch (e) {
    return keyExists(e);
  }
}

export async function getKey(q: Queryable, id: string): Promise<KeyRow | null> {
  const r = await q.query('SELECT * FROM keys WHERE id = $1', [id]);
  return r.rows[0] ? toKey(r.rows[0]) : null;
}

/**
 * getKey with the row's version (its xmin, which every UPDATE of the row changes): a session's
 * insert that names it writes nothing once the row changed (src/domain/key-version.ts).
 */
export async function getKeyVersioned(
  q: Queryable,
  id: string,
): Promise<{ key: KeyRow; version: string } | null> {
  const r = await q.query('SELECT *, xmin::text AS floe_row_version FROM keys WHERE id = $1', [id]);
  const row = r.rows[0];
  if (!row) return null;
  const { floe_row_version: version, ...rest } = row;
  return { key: toKey(rest), version: String(version) };
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listKeys(
  q: Queryable,
  o: { limit?: number; cursor?: string | null; status?: KeyStatus | null } = {},
): Promise<{ items: KeyRow[]; nextCursor: string | null }> {
  const limit = clampLimit(o.limit);
  const params: unknown[] = [];
  const where = ['tenant_id = floe_current_tenant()'];
  if (o.cursor) {
    const c = decodeCursor(o.cursor);
    params.push(c.createdAt, c.id);
    where.push(`(created_at, id) < ($${params.length - 1}, $${params.length})`);
  }
  if (o.status) {
    params.push(o.status);
    where.push(`status = $${params.length}`);
  }
  params.push(limit + 1);
  const r = await q.query(
    `SELECT * FROM keys WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const items = r.rows.slice(0, limit).map(toKey);
  const last = items[items.length - 1];
  return { items, nextCursor: r.rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
}

/**
 * Patches a key, only while its status is one of `from` when given (conditional UPDATE).
 * Null if no row matched. Status moves: pending → active | failed, active ⇄ disabled (the
 * database refuses others). Throws `key_exists` when activating a second active key with the
 * same public key in the tenant.
 */
export async function updateKey(
  q: Queryable,
  id: string,
  patch: KeyPatch,
  o: { at: number; from?: readonly KeyStatus[] },
): Promise<KeyRow | null> {
  const params: unknown[] = [o.at];
  const sets = ['updated_at = $1', ...assignments(patch, PATCH_COLUMNS, params)];
  params.push(id);
  let where = `id = $${params.length}`;
  if (o.from) {
    params.push([...o.from]);
    where += ` AND status = ANY($${params.length}::text[])`;
  }
  try {
    const r = await q.query(`UPDATE keys SET ${sets.join(', ')} WHERE ${where} RETURNING *`, params);
    return r.rows[0] ? toKey(r.rows[0]) : null;
  } catch (e) {
    return keyExists(e);
  }
}

/** Sets a key's default relays (normalized URLs, migration 012). Null if there is no such key. */
export async function setKeyRelays(
  q: Queryable,
  id: string,
  relays: readonly string[],
  at: number,
): Promise<KeyRow | null> {
  const r = await q.query('UPDATE keys SET relays = $1::jsonb, updated_at = $2 WHERE id = $3 RETURNING *', [
    json(relays),
    at,
    id,
  ]);
  return r.rows[0] ? toKey(r.rows[0]) : null;
}
