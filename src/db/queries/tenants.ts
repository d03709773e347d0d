/**
 * Tenants. Row-level security applies to this table too (a tenant sees only itself), so a
 * tenant is created inside a transaction opened with that tenant's id.
 */
import type { Queryable } from '../connection.js';
import { camelize } from './util.js';

export interface TenantRow {
  id: string;
  name: string;
  createdAt: number;
}

/** Inserts the transaction's tenant unless it exists; returns it. */
export async function ensureTenant(
  q: Queryable,
  t: { id: string; name: string; createdAt: number },
): Promise<TenantRow> {
  await q.query(
    'INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
    [t.id, t.name, t.createdAt],
  );
  const r = await q.query('SELECT * FROM tenants WHERE id = $1', [t.id]);
  if (!r.rows[0])
    throw new Error(`db: tenant ${t.id} is not visible: open the transaction with tenantId ${t.id}`);
  return camelize<TenantRow>(r.rows[0]);
}

export async function getTenant(q: Queryable, id: string): Promise<TenantRow | null> {
  const r = await q.query('SELECT * FROM tenants WHERE id = $1', [id]);
  return r.rows[0] ? camelize<TenantRow>(r.rows[0]) : null;
}

/** Inserts the transaction's tenant; false if a tenant with this id exists. */
export async function insertTenant(
  q: Queryable,
  t: { id: string; name: string; createdAt: number },
): Promise<boolean> {
  const r = await q.query(
    'INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id',
    [t.id, t.name, t.createdAt],
  );
  return r.rows.length === 1;
}

/** Every tenant, oldest first (through a SECURITY DEFINER function: RLS shows a tenant only itself). */
export async function listTenants(q: Queryable): Promise<TenantRow[]> {
  const r = await q.query('SELECT * FROM floe_list_tenants()');
  return r.rows.map((row) => camelize<TenantRow>(row));
}
