/**
 * Webhooks against a real cluster and a real receiver (node:http on loopback): completed and
 * failed sessions arrive signed (checked here with node:crypto's HMAC, not the coordinator's
 * code), a rotation signs with both secrets, a receiver that fails twice gets retries that the
 * delivery log shows, a tenant never hears of another tenant's events, and the audit log pages
 * as a chain that `floe audit verify` logic accepts.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { verifyAuditChain } from '../../src/domain/audit-chain.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/until.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; type: string; created_at: number; tenant_id: string; data: Record<string, unknown> };
}

/** A webhook receiver: records every POST; answers with the next status of `script`, then 200. */
async function receiver(
  script: number[] = [],
): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.statusCode = script.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** The Stripe-like check a receiver does: some v1 is HMAC-SHA256(secret, "<t>.<body>"). */
function signedWith(r: Received, secret: string): boolean {
  const parts = String(r.headers['floe-signature']).split(',');
  const t = parts.find((p) => p.startsWith('t='))?.slice(2);
  assert.ok(t && /^\d+$/.test(t), 'a timestamp');
  assert.ok(Math.abs(Number(t) - Date.now() / 1000) < 300, 'a recent timestamp');
  const want = createHmac('sha256', secret).update(`${t}.${r.body}`).digest();
  return parts
    .filter((p) => p.startsWith('v1='))
    .some((p) => {
      const sig = Buffer.from(p.slice(3), 'hex');
      return sig.length === want.length && timingSafeEqual(sig, want);
    });
}

describe('webhooks', () => {
  let c: TestCluster;
  const receivers: { close(): Promise<void> }[] = [];
  const recv = async (script?: number[]) => {
    const r = await receiver(script);
    receivers.push(r);
    return r;
  };
  let keyId: string;

  before(async () => {
    c = await startCluster({ signers: 2 });
    await c.registerSigners();
  });
  after(async () => {
    await c.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('delivers completed and failed sessions, signed; the secret is shown once', async () => {
    const r = await recv();
    const created = await c.api('POST', '/v1/webhooks', {
      url: r.url,
      events: ['session.completed', 'session.failed', 'key.active'],
      description: 'test receiver',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { webhook, secret } = created.body;
    assert.match(secret, /^whsec_/);
    const listed = await c.api('GET', '/v1/webhooks');
    assert.equal(listed.status, 200);
    assert.ok(!JSON.stringify(listed.body).includes(secret), 'a listing never shows the secret');
    assert.deepEqual(
      listed.body.items.map((w: { id: string }) => w.id),
      [webhook.id],
    );

    const key = await c.createKey(2);
    keyId = key.id;
    const done = await c.sign(keyId, 'aa'.repeat(32));
    assert.equal(done.body.status, 'completed', JSON.stringify(done.body));
    const sessionId = done.body.id;

    // A session that fails: one signer frozen, the session cancelled while it waits.
    c.signers[1]!.proc.kill('SIGSTOP');
    let failedId: string;
    try {
      const pending = await c.api('POST', '/v1/sessions', {
        key_id: keyId,
        message: 'bb'.repeat(32),
        wait: 0,
      });
      failedId = pending.body.id;
      const cancelled = await c.api('POST', `/v1/sessions/${failedId}/cancel`);
      assert.equal(cancelled.body.status, 'failed', JSON.stringify(cancelled.body));
    } finally {
      c.signers[1]!.proc.kill('SIGCONT');
    }

    const byType = (type: string, sid: string) =>
      r.got.find((g) => g.json.type === type && g.json.data.session_id === sid);
    await until(
      () => `both sessions delivered (got ${r.got.map((g) => g.json.type).join(', ')})`,
      () => byType('session.completed', sessionId) && byType('session.failed', failedId),
      30_000,
    );
    const ok = byType('session.completed', sessionId)!;
    assert.equal(ok.json.tenant_id, 'default');
    assert.equal(ok.json.data.key_id, keyId);
    assert.equal(ok.headers['floe-event-id'], ok.json.id);
    assert.equal(ok.headers['content-type'], 'application/json');
    assert.ok(signedWith(ok, secret), 'the signature verifies with the secret');
    assert.ok(!signedWith(ok, `${secret}x`), 'and not with another one');
    const failed = byType('session.failed', failedId)!;
    assert.equal(failed.json.data.error_code, 'cancelled');
    assert.ok(signedWith(failed, secret));
    assert.ok(r.got.some((g) => g.json.type === 'key.active' && g.json.data.key_id === keyId));
    assert.equal(new Set(r.got.map((g) => g.json.id)).size, r.got.length, 'each event once');

    // After a rotation: the new secret signs, and the old one still does during the grace period.
    const rotated = await c.api('POST', `/v1/webhooks/${webhook.id}/rotate-secret`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const next = rotated.body.secret;
    assert.notEqual(next, secret);
    assert.ok(rotated.body.webhook.previous_secret_expires_at > Date.now());
    const again = await c.sign(keyId, 'cc'.repeat(32));
    const afterRotation = await until('the session after the rotation arrives', () =>
      byType('session.completed', again.body.id),
    );
    assert.ok(signedWith(afterRotation, next), 'new secret');
    assert.ok(signedWith(afterRotation, secret), 'old secret, in its grace period');

    // Neither secret is in the database: both are sealed (webhook-seal.ts), bound to their row.
    const db = (c.coordinator!.backend as unknown as { db: Db }).db;
    const rows = await db.adminQuery<{ row: string }>('SELECT w::text AS row FROM webhooks w WHERE id = $1', [
      webhook.id,
    ]);
    assert.equal(rows.rows.length, 1);
    assert.match(rows.rows[0]!.row, /v1\.[0-9a-f]{16}\.[0-9a-f]{24}\.[0-9a-f]+/, 'sealed values stored');
    for (const s of [secret, next, secret.slice(6), next.slice(6)]) {
      assert.ok(!rows.rows[0]!.row.includes(s), 'no secret in the row');
    }

    const removed = await c.api('DELETE', `/v1/webhooks/${webhook.id}`);
    assert.equal(removed.status, 204);
    assert.equal((await c.api('GET', `/v1/webhooks/${webhook.id}/deliveries`)).status, 404);
  });

  it('retries a receiver that fails twice, and the delivery log shows it', async () => {
    const r = await recv([500, 500]);
    const created = await c.api('POST', '/v1/webhooks', { url: r.url, events: ['session.completed'] });
    assert.equal(created.status, 201);
    const id = created.body.webhook.id;
    const s = await c.sign(keyId, 'dd'.repeat(32));
    assert.equal(s.body.status, 'completed');
    await until('three tries', () => r.got.length >= 3, 30_000);
    assert.deepEqual(
      r.got.map((g) => g.json.id),
      [r.got[0]!.json.id, r.got[0]!.json.id, r.got[0]!.json.id],
      'the same event each time',
    );
    const log = await until('the delivery is marked delivered', async () => {
      const d = await c.api('GET', `/v1/webhooks/${id}/deliveries`);
      const x = d.body.items[0];
      return x?.status === 'delivered' && x;
    });
    assert.equal(log.event, 'session.completed');
    assert.equal(log.attempts, 3);
    assert.deepEqual(
      log.log.map((a: { attempt: number; status_code: number }) => [a.attempt, a.status_code]),
      [
        [1, 500],
        [2, 500],
        [3, 200],
      ],
    );
    assert.equal(log.log[0].error, 'HTTP 500');
    assert.ok(log.log[1].at - log.log[0].at >= 900, 'backoff between tries');
  });

  it("a tenant's webhook never receives another tenant's events", async () => {
    const t = await c.api('POST', '/v1/tenants', { id: 'other', name: 'other' });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const token = t.body.admin_token.token;
    const other = (method: string, path: string, json?: unknown) =>
      request(c.url, method, path, { token, ...(json === undefined ? {} : { json }) });
    const mine = await recv();
    const theirs = await recv();
    const all = [
      'session.completed',
      'session.failed',
      'approval.pending',
      'key.active',
      'signer.quarantined',
    ];
    assert.equal((await c.api('POST', '/v1/webhooks', { url: mine.url, events: all })).status, 201);
    const hook = await other('POST', '/v1/webhooks', { url: theirs.url, events: all });
    assert.equal(hook.status, 201);
    assert.deepEqual((await other('GET', '/v1/webhooks')).body.items.length, 1, 'only its own webhook');

    // The other tenant makes a key; the default tenant signs.
    const k = await other('POST', '/v1/keys', { threshold: 2, wait: 30_000 });
    assert.ok(k.status === 201 || k.status === 202, JSON.stringify(k.body));
    const s = await c.sign(keyId, 'ee'.repeat(32));
    await until(
      'each tenant hears of its own event',
      () =>
        theirs.got.some((g) => g.json.type === 'key.active' && g.json.data.key_id === k.body.id) &&
        mine.got.some((g) => g.json.data.session_id === s.body.id),
    );
    // One more tick of the job loop's worth: anything leaking would be on its way by now.
    const s2 = await c.sign(keyId, 'ef'.repeat(32));
    await until('the second session arrives', () =>
      mine.got.some((g) => g.json.data.session_id === s2.body.id),
    );
    assert.ok(theirs.got.every((g) => g.json.tenant_id === 'other'));
    assert.ok(
      !theirs.got.some((g) => g.json.type.startsWith('session.')),
      'no session of the default tenant',
    );
    assert.ok(mine.got.every((g) => g.json.tenant_id === 'default'));
    assert.ok(!mine.got.some((g) => g.json.data.key_id === k.body.id), 'no key of the other tenant');
    assert.equal((await other('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).status, 200);
    const foreign = (await c.api('GET', '/v1/webhooks')).body.items.map((w: { id: string }) => w.id);
    assert.ok(!foreign.includes(hook.body.webhook.id));
    assert.equal((await c.api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).status, 404);
  });

  it('refuses URLs that are not http(s) and unknown events', async () => {
    for (const body of [
      { url: 'ftp://127.0.0.1/x', events: ['session.completed'] },
      { url: 'http://u:p@127.0.0.1/x', events: ['session.completed'] },
      { url: 'http://127.0.0.1/x', events: ['session.exploded'] },
      { url: 'http://127.0.0.1/x', events: [] },
    ]) {
      const r = await c.api('POST', '/v1/webhooks', body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
  });

  it('GET /v1/audit pages the chain, and the chain verifies', async () => {
    const rows: Parameters<typeof verifyAuditChain>[0][number][] = [];
    let after = 0;
    for (;;) {
      const page = await c.api('GET', `/v1/audit?after=${after}&limit=7`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      rows.push(...page.body.items);
      if (page.body.next_after === null) break;
      after = page.body.next_after;
    }
    assert.ok(rows.length > 10);
    assert.ok(rows.every((x) => x.tenant_id === 'default'));
    assert.equal(verifyAuditChain(rows).ok, true);
    assert.equal((await c.api('GET', '/v1/audit?limit=0')).status, 400);
  });
});
