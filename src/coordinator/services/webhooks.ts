/**
 * Webhooks per tenant (issue 15 item 9; docs/webhooks.md). Events come from the audit log, the
 * outbox every session, key and signer change already writes (migrations 007, 017, 018): on each
 * job tick, every tenant's new audit rows after its cursor become deliveries for the webhooks
 * subscribed to their event, then due deliveries are claimed (SKIP LOCKED, under a lease) and
 * sent, signed Stripe-like: `Floe-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
 * one v1 per valid secret (the old one too during the grace period after a rotation).
 * A non-2xx answer or a timeout is retried with exponential backoff up to `maxAttempts`, then
 * the delivery is failed; every attempt is logged.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Db } from '../../db/connection.js';
import * as q from '../../db/queries/webhooks.js';
import {
  type CreateWebhookBody,
  WEBHOOK_EVENTS,
  type WebhookDeliveryObject,
  type WebhookEvent,
  type WebhookObject,
  type WebhookWithSecret,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import { type SendOutcome, sendWebhook } from '../webhook-delivery.js';
import type { WebhookSealer } from '../webhook-seal.js';

export interface WebhookSettings {
  /** Tries per delivery, the first included. Default 8. */
  maxAttempts: number;
  /** Wait before the second try; each next one waits `backoffFactor` times longer. Default 1 s. */
  backoffMs: number;
  backoffFactor: number;
  /** Longest wait between tries. Default 1 hour. */
  maxBackoffMs: number;
  /** Per request. Default 10 s. */
  timeoutMs: number;
  /** How long the old secret still signs after a rotation. Default 24 hours. */
  graceMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  maxAttempts: 8,
  backoffMs: 1000,
  backoffFactor: 4,
  maxBackoffMs: 3_600_000,
  timeoutMs: 10_000,
  graceMs: 24 * 3_600_000,
};

/** The database behind a backend (every Backend is a PgBackend today). */
export function dbOf(backend: Backend): Db {
  const db = (backend as { db?: Db }).db;
  if (!db)
    throw new FloeError('internal', 'this storage backend has no database for webhooks and the audit log');
  return db;
}

/** The event an audit row stands for, with its `data`; undefined for rows no webhook is told of. */
export function webhookEventOf(
  a: q.AuditForWebhook,
): { type: WebhookEvent; data: Record<string, unknown> } | undefined {
  if (a.kind === 'status_change' && a.subjectType === 'session') {
    const to = a.data.to;
    const data = {
      session_id: a.subjectId,
      key_id: a.sessionKeyId,
      status: to,
      attempt: a.data.attempt ?? null,
      error_code: a.data.error_code ?? null,
    };
    if (to === 'completed') return { type: 'session.completed', data };
    if (to === 'failed' || to === 'expired') return { type: 'session.failed', data };
    if (to === 'awaiting_approval') return { type: 'approval.pending', data };
    return undefined;
  }
  if (a.kind === 'status_change' && a.subjectType === 'key' && a.data.to === 'active') {
    return { type: 'key.active', data: { key_id: a.subjectId } };
  }
  if (a.kind === 'signer.quarantined') {
    return {
      type: 'signer.quarantined',
      data: { signer_id: a.subjectId, fault_count: a.data.fault_count ?? null },
    };
  }
  return undefined;
}

/** The Floe-Signature header: `t=<unix s>` then one `v1=` per secret, in the order given. */
export function signatureHeader(secrets: readonly string[], t: number, body: string): string {
  const sigs = secrets.map((s) => `v1=${createHmac('sha256', s).update(`${t}.${body}`).digest('hex')}`);
  return [`t=${t}`, ...sigs].join(',');
}

/** http(s) only, no credentials in it; refused with the field's name, never echoing the URL. */
export function checkWebhookUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FloeError('invalid_request', 'url is not a valid URL', {
      hint: 'e.g. https://example.com/hooks/floe',
    });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FloeError('invalid_request', 'url must be http or https');
  }
  if (u.username || u.password) {
    throw new FloeError('invalid_request', 'url must not carry credentials', {
      hint: 'authenticate deliveries by their Floe-Signature header instead',
    });
  }
  return u.toString();
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export function webhookObject(w: q.WebhookRow, now: number): WebhookObject {
  const graceOpen = w.previousSecretExpiresAt !== null && w.previousSecretExpiresAt > now;
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    created_at: w.createdAt,
    secret_rotated_at: w.secretRotatedAt,
    previous_secret_expires_at: graceOpen ? w.previousSecretExpiresAt : null,
  };
}

export class WebhookService {
  readonly settings: WebhookSettings;
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  readonly db: Db;

  constructor(
    private readonly o: {
      db: Db;
      instanceId: string;
      now: () => number;
      /**
       * Seals the signing secrets in the database (webhook-seal.ts). Without it (a coordinator
       * built without `webhookSealKey`) webhooks cannot be created, rotated or delivered.
       */
      sealer?: WebhookSealer;
      settings?: Partial<WebhookSettings>;
      log?: { warn: (o: object, m?: string) => void };
    },
  ) {
    this.settings = { ...DEFAULT_WEBHOOK_SETTINGS, ...o.settings };
    this.db = o.db;
  }

  private t<T>(tenantId: string, fn: (tx: Parameters<Parameters<Db['transaction']>[0]>[0]) => Promise<T>) {
    return this.o.db.transaction(fn, { tenantId });
  }

  private sealer(): WebhookSealer {
    if (!this.o.sealer) {
      throw new FloeError('unavailable', 'this coordinator has no key to seal webhook secrets with', {
        hint: 'run the coordinator with its data dir (floe coordinator), which derives it from jwt.key',
      });
    }
    return this.o.sealer;
  }

  async create(tenantId: string, body: CreateWebhookBody): Promise<WebhookWithSecret> {
    const url = checkWebhookUrl(body.url);
    const events = [...new Set(body.events)].filter((e) => (WEBHOOK_EVENTS as readonly string[]).includes(e));
    const secret = newSecret();
    const now = this.o.now();
    const id = `wh_${randomBytes(16).toString('hex')}`;
    const row = await this.t(tenantId, async (tx) => {
      const w = await q.insertWebhook(tx, {
        id,
        url,
        events,
        description: body.description ?? null,
        secret: this.sealer().seal(secret, { tenantId, webhookId: id }),
        createdAt: now,
      });
      await tx.query(
        `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
         VALUES (floe_current_tenant(), $1, 'api', 'webhook.created', 'webhook', $2, $3::jsonb)`,
        [now, w.id, JSON.stringify({ url, events })],
      );
      return w;
    });
    return { webhook: webhookObject(row, now), secret };
  }

  async list(tenantId: string): Promise<WebhookObject[]> {
    const now = this.o.now();
    return (await this.t(tenantId, (tx) => q.listWebhooks(tx))).map((w) => webhookObject(w, now));
  }

  async remove(tenantId: string, id: string): Promise<void> {
    const ok = await this.t(tenantId, async (tx) => {
      if (!(await q.deleteWebhook(tx, id))) return false;
      await tx.query(
        `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id)
         VALUES (floe_current_tenant(), $1, 'api', 'webhook.removed', 'webhook', $2)`,
        [this.o.now(), id],
      );
      return true;
    });
    if (!ok) throw notFound(id);
  }

  async rotate(tenantId: string, id: string): Promise<WebhookWithSecret> {
    const secret = newSecret();
    const now = this.o.now();
    const w = await this.t(tenantId, async (tx) => {
      const sealed = this.sealer().seal(secret, { tenantId, webhookId: id });
      const r = await q.rotateWebhookSecret(tx, id, sealed, { now, graceUntil: now + this.settings.graceMs });
      if (r) {
        await tx.query(
          `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id)
           VALUES (floe_current_tenant(), $1, 'api', 'webhook.secret_rotated', 'webhook', $2)`,
          [now, id],
        );
      }
      return r;
    });
    if (!w) throw notFound(id);
    return { webhook: webhookObject(w, now), secret };
  }

  async deliveries(tenantId: string, id: string, limit?: number): Promise<WebhookDeliveryObject[]> {
    return this.t(tenantId, async (tx) => {
      if (!(await q.getWebhook(tx, id))) throw notFound(id);
      return (await q.listDeliveries(tx, id, limit)).map((d) => ({
        id: d.eventId,
        event: d.eventType,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.nextAttemptAt,
        created_at: d.createdAt,
        log: d.log.map((a) => ({ attempt: a.attempt, status_code: a.statusCode, error: a.error, at: a.at })),
      }));
    });
  }

  /** One job tick: new events become deliveries, due deliveries are sent (not awaited here). */
  async runDue(): Promise<number> {
    if (this.closed) return 0;
    for (const tenantId of await this.o.db.transaction((tx) => q.webhookTenants(tx))) {
      await this.derive(tenantId);
    }
    const leaseMs = this.settings.timeoutMs + 30_000;
    const claimed = await this.o.db.transaction((tx) =>
      q.claimDeliveries(tx, { owner: this.o.instanceId, leaseMs, limit: 50, now: this.o.now() }),
    );
    for (const c of claimed) {
      const p = this.deliver(c.tenantId, c.webhookId, c.eventId)
        .catch((e) =>
          this.o.log?.warn({ err: e instanceof Error ? e.message : 'error' }, 'webhook delivery failed'),
        )
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
    return claimed.length;
  }

  /** The tenant's audit rows after its cursor, as deliveries of its subscribed webhooks. */
  private derive(tenantId: string): Promise<void> {
    return this.t(tenantId, async (tx) => {
      const read = await q.lockCursorAndRead(tx, 500);
      if (!read || read.rows.length === 0) return;
      const hooks = await q.listWebhooks(tx);
      const now = this.o.now();
      for (const a of read.rows) {
        const ev = webhookEventOf(a);
        if (!ev) continue;
        const eventId = `evt_${a.id}`;
        const payload = { id: eventId, type: ev.type, created_at: a.at, tenant_id: tenantId, data: ev.data };
        for (const w of hooks) {
          if (a.id <= w.startAuditId || !w.events.includes(ev.type)) continue;
          await q.insertDelivery(tx, {
            webhookId: w.id,
            eventId,
            auditId: a.id,
            eventType: ev.type,
            payload,
            now,
          });
        }
      }
      await q.advanceCursor(tx, read.rows.at(-1)!.id);
    });
  }

  private async deliver(tenantId: string, webhookId: string, eventId: string): Promise<void> {
    const found = await this.t(tenantId, async (tx) => {
      const d = await q.getDelivery(tx, webhookId, eventId);
      const w = d ? await q.getWebhook(tx, webhookId) : null;
      return d && w && d.leaseOwner === this.o.instanceId ? { d, w } : undefined;
    });
    if (!found) return;
    const { d, w } = found;
    const body = JSON.stringify(d.payload);
    const t = Math.floor(this.o.now() / 1000);
    const ctx = { tenantId, webhookId };
    let out: SendOutcome;
    try {
      const secrets = [this.sealer().open(w.secret, ctx)];
      if (w.previousSecret && (w.previousSecretExpiresAt ?? 0) > this.o.now()) {
        secrets.push(this.sealer().open(w.previousSecret, ctx));
      }
      out = await sendWebhook(
        w.url,
        body,
        { 'floe-signature': signatureHeader(secrets, t, body), 'floe-event-id': d.eventId },
        this.settings.timeoutMs,
      );
    } catch (e) {
      // A secret this coordinator cannot open (another jwt.key, an altered row): not sent,
      // recorded as a failed attempt with the reason (never the secret).
      out = { statusCode: null, error: e instanceof Error ? e.message : String(e) };
    }
    const attempt = d.attempts + 1;
    const now = this.o.now();
    const s = this.settings;
    const ok = out.error === null;
    const last = attempt >= s.maxAttempts;
    const wait = Math.min(s.maxBackoffMs, s.backoffMs * s.backoffFactor ** (attempt - 1));
    await this.t(tenantId, (tx) =>
      q.recordAttempt(tx, {
        webhookId,
        eventId,
        owner: this.o.instanceId,
        attempt,
        statusCode: out.statusCode,
        error: out.error,
        status: ok ? 'delivered' : last ? 'failed' : 'pending',
        nextAt: ok || last ? null : now + wait,
        now,
      }),
    );
  }

  /** Stops claiming; waits for the sends in progress. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }
}

function notFound(id: string): FloeError {
  return new FloeError('webhook_not_found', `no webhook ${id}`, {
    hint: 'list them with GET /v1/webhooks (floe webhook list)',
  });
}
