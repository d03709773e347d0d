/** Webhooks, their deliveries and the per-tenant cursor over the audit log (migration 018). */
import type { Queryable } from '../connection.js';
import { camelize, clampLimit, json } from './util.js';

export interface WebhookRow {
  tenantId: string;
  id: string;
  url: string;
  events: string[];
  description: string | null;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
  secretRotatedAt: number | null;
  startAuditId: number;
  createdAt: number;
}

export interface DeliveryRow {
  tenantId: string;
  webhookId: string;
  eventId: string;
  auditId: number;
  eventType: string;
  payload: unknown;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface AttemptRow {
  eventId: string;
  attempt: number;
  statusCode: number | null;
  error: string | null;
  at: number;
}

/** An audit row with what a webhook event tells about its session, if it is about one. */
export interface AuditForWebhook {
  id: number;
  at: number;
  kind: string;
  subjectType: string | null;
  subjectId: string | null;
  data: Record<string, unknown>;
  sessionKeyId: string | null;
}

/** Creates the webhook, and the tenant's cursor if it has none (starting at the log's end). */
export async function insertWebhook(
  q: Queryable,
  w: {
    id: string;
    url: string;
    events: string[];
    description: string | null;
    secret: string;
    createdAt: number;
  },
): Promise<WebhookRow> {
  const head = await q.query<{ id: number }>(
    'SELECT coalesce(max(id), 0) AS id FROM audit_events WHERE tenant_id = floe_current_tenant()',
  );
  const start = Number(head.rows[0]!.id);
  await q.query(
    `INSERT INTO webhook_cursors (tenant_id, last_audit_id) VALUES (floe_current_tenant(), $1)
     ON CONFLICT (tenant_id) DO NOTHING`,
    [start],
  );
  const r = await q.query(
    `INSERT INTO webhooks (tenant_id, id, url, events, description, secret, start_audit_id, created_at)
     VALUES (floe_current_tenant(), $1, $2, $3::jsonb, $4, $5, $6, $7) RETURNING *`,
    [w.id, w.url, json(w.events), w.description, w.secret, start, w.createdAt],
  );
  return camelize<WebhookRow>(r.rows[0]!);
}

export async function listWebhooks(q: Queryable): Promise<WebhookRow[]> {
  const r = await q.query('SELECT * FROM webhooks ORDER BY created_at, id');
  return r.rows.map((x) => camelize<WebhookRow>(x));
}

export async function getWebhook(q: Queryable, id: string): Promise<WebhookRow | null> {
  const r = await q.query('SELECT * FROM webhooks WHERE id = $1', [id]);
  return r.rows[0] ? camelize<WebhookRow>(r.rows[0]) : null;
}

export async function deleteWebhook(q: Queryable, id: string): Promise<boolean> {
  const r = await q.query('DELETE FROM webhooks WHERE id = $1 RETURNING id', [id]);
  return r.rows.length > 0;
}

/** New secret; the current one stays valid (signed with too) until `graceUntil`. */
export async function rotateWebhookSecret(
  q: Queryable,
  id: string,
  secret: string,
  o: { now: number; graceUntil: number },
): Promise<WebhookRow | null> {
  const r = await q.query(
    `UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $3,
            secret = $2, secret_rotated_at = $4
      WHERE id = $1 RETURNING *`,
    [id, secret, o.graceUntil, o.now],
  );
  return r.rows[0] ? camelize<WebhookRow>(r.rows[0]) : null;
}

/** Tenants with a cursor (every tenant that ever had a webhook). */
export async function webhookTenants(q: Queryable): Promise<string[]> {
  const r = await q.query<{ t: string }>('SELECT floe_webhook_tenants() AS t');
  return r.rows.map((x) => x.t);
}

/**
 * Locks the tenant's cursor (SKIP LOCKED: another coordinator is on it) and reads the audit
 * rows after it. Null when the cursor is locked elsewhere or missing.
 */
export async function lockCursorAndRead(
  q: Queryable,
  limit: number,
): Promise<{ cursor: number; rows: AuditForWebhook[] } | null> {
  const c = await q.query<{ last_audit_id: number }>(
    'SELECT last_audit_id FROM webhook_cursors WHERE tenant_id = floe_current_tenant() FOR UPDATE SKIP LOCKED',
  );
  if (!c.rows[0]) return null;
  const cursor = Number(c.rows[0].last_audit_id);
  const r = await q.query(
    `SELECT a.id, a.at, a.kind, a.subject_type, a.subject_id, a.data, s.key_id AS session_key_id
       FROM audit_events a
       LEFT JOIN signing_sessions s
         ON a.subject_type = 'session' AND s.tenant_id = a.tenant_id AND s.session_id = a.subject_id
      WHERE a.tenant_id = floe_current_tenant() AND a.id > $1
      ORDER BY a.id LIMIT $2`,
    [cursor, limit],
  );
  return { cursor, rows: r.rows.map((x) => camelize<AuditForWebhook>(x)) };
}

export async function advanceCursor(q: Queryable, to: number): Promise<void> {
  await q.query('UPDATE webhook_cursors SET last_audit_id = $1 WHERE tenant_id = floe_current_tenant()', [
    to,
  ]);
}

export async function insertDelivery(
  q: Queryable,
  d: {
    webhookId: string;
    eventId: string;
    auditId: number;
    eventType: string;
    payload: unknown;
    now: number;
  },
): Promise<void> {
  await q.query(
    `INSERT INTO webhook_deliveries
       (tenant_id, webhook_id, event_id, audit_id, event_type, payload, next_attempt_at, created_at, updated_at)
     VALUES (floe_current_tenant(), $1, $2, $3, $4, $5::jsonb, $6, $6, $6)
     ON CONFLICT DO NOTHING`,
    [d.webhookId, d.eventId, d.auditId, d.eventType, json(d.payload), d.now],
  );
}

export async function claimDeliveries(
  q: Queryable,
  o: { owner: string; leaseMs: number; limit: number; now: number },
): Promise<{ tenantId: string; webhookId: string; eventId: string }[]> {
  const r = await q.query(
    'SELECT * FROM floe_claim_webhook_deliveries($1, $2::bigint, $3::integer, $4::bigint)',
    [o.owner, o.leaseMs, o.limit, o.now],
  );
  return r.rows.map((x) => camelize(x));
}

export async function getDelivery(
  q: Queryable,
  webhookId: string,
  eventId: string,
): Promise<DeliveryRow | null> {
  const r = await q.query('SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND event_id = $2', [
    webhookId,
    eventId,
  ]);
  return r.rows[0] ? camelize<DeliveryRow>(r.rows[0]) : null;
}

/**
 * Logs an attempt and moves the delivery on (delivered, failed, or pending again at `nextAt`),
 * only while `owner` holds its lease. False if the lease was lost.
 */
export async function recordAttempt(
  q: Queryable,
  o: {
    webhookId: string;
    eventId: string;
    owner: string;
    attempt: number;
    statusCode: number | null;
    error: string | null;
    status: 'pending' | 'delivered' | 'failed';
    nextAt: number | null;
    now: number;
  },
): Promise<boolean> {
  const r = await q.query(
    `UPDATE webhook_deliveries
        SET attempts = $4, status = $5, next_attempt_at = $6, lease_owner = NULL, lease_until = NULL,
            updated_at = $7
      WHERE webhook_id = $1 AND event_id = $2 AND lease_owner = $3 AND status = 'pending'
      RETURNING event_id`,
    [o.webhookId, o.eventId, o.owner, o.attempt, o.status, o.nextAt, o.now],
  );
  if (!r.rows[0]) return false;
  await q.query(
    `INSERT INTO webhook_attempts (tenant_id, webhook_id, event_id, attempt, status_code, error, at)
     VALUES (floe_current_tenant(), $1, $2, $3, $4, $5, $6)`,
    [o.webhookId, o.eventId, o.attempt, o.statusCode, o.error === null ? null : o.error.slice(0, 500), o.now],
  );
  return true;
}

/** Newest first, each with its attempts (oldest first). */
export async function listDeliveries(
  q: Queryable,
  webhookId: string,
  limit?: number,
): Promise<(DeliveryRow & { log: AttemptRow[] })[]> {
  const r = await q.query(
    `SELECT * FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, audit_id DESC LIMIT $2`,
    [webhookId, clampLimit(limit, 50, 500)],
  );
  const rows = r.rows.map((x) => camelize<DeliveryRow>(x));
  if (!rows.length) return [];
  const a = await q.query(
    `SELECT event_id, attempt, status_code, error, at FROM webhook_attempts
      WHERE webhook_id = $1 AND event_id = ANY($2::text[]) ORDER BY attempt`,
    [webhookId, rows.map((x) => x.eventId)],
  );
  const log = a.rows.map((x) => camelize<AttemptRow>(x));
  return rows.map((d) => ({ ...d, log: log.filter((x) => x.eventId === d.eventId) }));
}
