/** The append-only audit log (the database refuses UPDATE and DELETE). */
import type { Queryable } from '../connection.js';
import { camelize, clampLimit, json } from './util.js';

export interface AuditRow {
  id: number;
  tenantId: string;
  at: number;
  actor: string;
  kind: string;
  subjectType: string | null;
  subjectId: string | null;
  data: unknown;
  /** The hash of the tenant's previous row (migration 017; 64 zeros for the first). */
  prevHash: string;
  /** This row's hash (src/domain/audit-chain.ts). */
  hash: string;
}

export interface NewAuditEvent {
  /** Defaults to the transaction's tenant. */
  tenantId?: string;
  /** Unix ms; defaults to Date.now(). */
  at?: number;
  actor: string;
  kind: string;
  subjectType?: string | null;
  subjectId?: string | null;
  data?: unknown;
}

const toAudit = (r: Record<string, unknown>) => camelize<AuditRow>(r);

export async function appendAudit(q: Queryable, e: NewAuditEvent): Promise<AuditRow> {
  const r = await q.query(
    `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
     VALUES (coalesce($1, floe_current_tenant()), $2, $3, $4, $5, $6, $7::jsonb) RETURNING *`,
    [
      e.tenantId ?? null,
      e.at ?? Date.now(),
      e.actor,
      e.kind,
      e.subjectType ?? null,
      e.subjectId ?? null,
      json(e.data ?? {}),
    ],
  );
  return toAudit(r.rows[0]!);
}

/**
 * Appends several events in one statement, in order: the chain trigger (migration 017) links
 * each to the one before, as if they were appended one by one.
 */
export async function appendAudits(q: Queryable, events: readonly NewAuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const now = Date.now();
  await q.query(
    `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
     SELECT coalesce(v.tenant_id, floe_current_tenant()), v.at, v.actor, v.kind, v.subject_type,
            v.subject_id, v.data
       FROM jsonb_to_recordset($1::jsonb) AS v (ord integer, tenant_id text, at bigint, actor text,
            kind text, subject_type text, subject_id text, data jsonb)
      ORDER BY v.ord`,
    [
      json(
        events.map((e, ord) => ({
          ord,
          tenant_id: e.tenantId ?? null,
          at: e.at ?? now,
          actor: e.actor,
          kind: e.kind,
          subject_type: e.subjectType ?? null,
          subject_id: e.subjectId ?? null,
          data: e.data ?? {},
        })),
      ),
    ],
  );
}

/** Newest first; `beforeId` continues a previous page. */
export async function listAudit(
  q: Queryable,
  o: { limit?: number; beforeId?: number; subjectType?: string; subjectId?: string } = {},
): Promise<AuditRow[]> {
  const params: unknown[] = [];
  const where = ['tenant_id = floe_current_tenant()'];
  if (o.beforeId !== undefined) {
    params.push(o.beforeId);
    where.push(`id < $${params.length}`);
  }
  if (o.subjectType !== undefined) {
    params.push(o.subjectType);
    where.push(`subject_type = $${params.length}`);
  }
  if (o.subjectId !== undefined) {
    params.push(o.subjectId);
    where.push(`subject_id = $${params.length}`);
  }
  params.push(clampLimit(o.limit, 100, 1000));
  const r = await q.query(
    `SELECT * FROM audit_events WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return r.rows.map(toAudit);
}

/** The chain of the transaction's tenant in id order (its order), after `afterId`. */
export async function listAuditChain(
  q: Queryable,
  o: { afterId?: number; limit?: number } = {},
): Promise<AuditRow[]> {
  const r = await q.query(
    `SELECT * FROM audit_events WHERE tenant_id = floe_current_tenant() AND id > $1 ORDER BY id LIMIT $2`,
    [o.afterId ?? 0, clampLimit(o.limit, 100, 1000)],
  );
  return r.rows.map(toAudit);
}
