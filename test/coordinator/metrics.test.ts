/**
 * GET /metrics is not public: loopback clients only by default; with a metrics token
 * (metrics_token_file), whoever presents it and nobody else; with metrics_listen, on that
 * separate address only. And the floe_signer_quarantined gauge, refreshed by the jobs.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadCoordinatorConfig } from '../../src/config/coordinator.js';
import { buildApi, buildMetricsApi } from '../../src/coordinator/http.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { type RunningCoordinator, startCoordinator } from '../../src/coordinator/node.js';
import { PgBackend } from '../../src/coordinator/pg-backend.js';
import { isLoopback } from '../../src/coordinator/routes/health.js';
import { Coordinator } from '../../src/coordinator/services/index.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/identity.js';
import { freshServerDatabase, type TestDb, testDb } from '../helpers/db.js';
import { assertProblem, request } from '../helpers/http.js';

const problem = (r: LightMyRequestResponse) => ({ status: r.statusCode, body: r.json(), headers: r.headers });
const TOKEN = 'metrics-secret-0123456789abcdef';

let t: TestDb;
let backend: PgBackend;
let coordinator: Coordinator;
let metrics: CoordinatorMetrics;
const apps: FastifyInstance[] = [];

async function api(o: Partial<Parameters<typeof buildApi>[0]> = {}): Promise<FastifyInstance> {
  const app = await buildApi({ coordinator, metrics, jwtSecret: new Uint8Array(32).fill(1), ...o });
  await app.ready();
  apps.push(app);
  return app;
}

const scrape = (app: FastifyInstance, remoteAddress: string, token?: string) =>
  app.inject({
    method: 'GET',
    url: '/metrics',
    remoteAddress,
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
  });

before(async () => {
  t = await testDb();
  backend = new PgBackend(t.db);
  metrics = new CoordinatorMetrics();
  coordinator = new Coordinator({ backend, identity: softwareIdentity(generateIdentityKey()), metrics });
});

after(async () => {
  for (const a of apps) await a.close();
  await coordinator?.close();
  await t?.cleanup();
});

describe('GET /metrics on the API', () => {
  it('loopback addresses are 127.0.0.0/8 and ::1, in any spelling', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopback(a), true, a);
    }
    for (const a of ['10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1', '', undefined]) {
      assert.equal(isLoopback(a), false, String(a));
    }
  });

  it('by default answers loopback clients only', async () => {
    const app = await api();
    for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) {
      const r = await scrape(app, a);
      assert.equal(r.statusCode, 200, a);
      assert.match(r.body, /^# HELP floe_http_requests_total/m);
    }
    for (const a of ['10.1.2.3', '192.0.2.1', '2001:db8::1', '::ffff:10.1.2.3']) {
      const r = await scrape(app, a);
      assertProblem(problem(r), 403, 'forbidden', a);
      assert.doesNotMatch(r.body, /floe_/);
    }
    // Even with a bearer token (there is none to check).
    assertProblem(problem(await scrape(app, '10.1.2.3', TOKEN)), 403, 'forbidden');
  });

  it('with a metrics token: any address that presents it, nobody else (401)', async () => {
    const app = await api({ metricsAccess: { token: TOKEN } });
    for (const a of ['10.1.2.3', '127.0.0.1', '2001:db8::1']) {
      assert.equal((await scrape(app, a, TOKEN)).statusCode, 200, a);
    }
    for (const [what, token] of [
      ['none', undefined],
      ['wrong', 'metrics-secret-0123456789abcdeX'],
      ['prefix', TOKEN.slice(0, -1)],
      ['longer', `${TOKEN}x`],
      ['empty', ''],
    ] as const) {
      for (const a of ['127.0.0.1', '10.1.2.3']) {
        const r = await scrape(app, a, token);
        assertProblem(problem(r), 401, 'unauthorized', `${what} token from ${a}`);
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      }
    }
  });

  it('is not served on the API when it has its own listener', async () => {
    const app = await api({ metricsAccess: false });
    assertProblem(problem(await scrape(app, '127.0.0.1')), 404, 'not_found');
    // The separate listener: anyone who can connect, unless a token is set there too.
    const open = await buildMetricsApi({ coordinator, metrics });
    apps.push(open);
    assert.equal((await scrape(open, '10.1.2.3')).statusCode, 200);
    assert.equal((await open.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz too');
    assertProblem(problem(await open.inject({ method: 'GET', url: '/v1/keys' })), 404, 'not_found');
    const guarded = await buildMetricsApi({ coordinator, metrics, token: TOKEN });
    apps.push(guarded);
    assertProblem(problem(await scrape(guarded, '10.1.2.3')), 401, 'unauthorized');
    assert.equal((await scrape(guarded, '10.1.2.3', TOKEN)).statusCode, 200);
  });
});

describe('floe_signer_quarantined', () => {
  it('is 1 for quarantined signers and 0 for the others, refreshed by the jobs', async () => {
    const app = await api();
    const now = Date.now();
    const ids = ['sig_metrics_a', 'sig_metrics_b'];
    for (const [i, id] of ids.entries()) {
      await backend.insertSigner({
        id,
        name: null,
        // Nothing listens there: the health probe of the jobs fails at once.
        url: `http://127.0.0.1:${9 + i}`,
        identityPubkey: softwareIdentity(generateIdentityKey()).publicKeyHex,
        status: 'active',
        faultCount: 0,
        quarantined: false,
        quarantinedAt: null,
        quarantineOverride: false,
        lastSeenAt: null,
        lastLatencyMs: null,
        createdAt: now,
      });
    }
    const gauge = async () => {
      const text = (await scrape(app, '127.0.0.1')).body;
      assert.match(text, /^# TYPE floe_signer_faults_total counter$/m, 'the fault counter stays');
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^floe_signer_quarantined\{signer="([^"]+)"\} (\d+)$/gm))
        out[m[1]!] = Number(m[2]);
      return out;
    };
    await coordinator.jobs.tick();
    assert.deepEqual(await gauge(), { sig_metrics_a: 0, sig_metrics_b: 0 });

    const q = await backend.recordSignerFault('sig_metrics_b', 'invalid_share', 1);
    assert.equal(q.quarantined, true);
    await coordinator.jobs.tick();
    assert.deepEqual(await gauge(), { sig_metrics_a: 0, sig_metrics_b: 1 });

    await backend.updateSigner('sig_metrics_b', { faultCount: 0, quarantined: false, quarantinedAt: null });
    await coordinator.jobs.tick();
    assert.deepEqual(await gauge(), { sig_metrics_a: 0, sig_metrics_b: 0 });
  });
});

describe('a coordinator started with metrics settings', () => {
  const dirs: string[] = [];
  const running: RunningCoordinator[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const r of running) await r.close();
    for (const d of drops) await d();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function start(env: Record<string, string>): Promise<RunningCoordinator> {
    const dir = mkdtempSync(join(tmpdir(), 'floe-metrics-'));
    dirs.push(dir);
    const database = await freshServerDatabase();
    if (database) drops.push(database.drop);
    const cfg = loadCoordinatorConfig(undefined, {
      FLOE_COORDINATOR_DATA_DIR: join(dir, 'coordinator'),
      FLOE_COORDINATOR_LISTEN: '127.0.0.1:0',
      FLOE_ADMIN_TOKEN_FILE: join(dir, 'admin.token'),
      FLOE_LOG_LEVEL: 'warn',
      ...(database ? { DATABASE_URL: database.url } : {}),
      ...env,
    });
    const r = await startCoordinator(cfg, { logger: false });
    running.push(r);
    return r;
  }

  function tokenFile(mode: number): string {
    const dir = mkdtempSync(join(tmpdir(), 'floe-metrics-token-'));
    dirs.push(dir);
    const f = join(dir, 'metrics.token');
    writeFileSync(f, `${TOKEN}\n`, { mode });
    chmodSync(f, mode);
    return f;
  }

  it('FLOE_COORDINATOR_METRICS_TOKEN_FILE: the token is required', async () => {
    const r = await start({ FLOE_COORDINATOR_METRICS_TOKEN_FILE: tokenFile(0o600) });
    assertProblem(await request(r.url, 'GET', '/metrics'), 401, 'unauthorized', 'loopback without the token');
    const ok = await request(r.url, 'GET', '/metrics', { token: TOKEN });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /^floe_crypto_backend_info/m);
    const far = await r.app.inject({
      method: 'GET',
      url: '/metrics',
      remoteAddress: '198.51.100.4',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(far.statusCode, 200, 'any address with the token');
  });

  it('refuses a metrics token file that group or others can read, or an empty one', async () => {
    await assert.rejects(
      start({ FLOE_COORDINATOR_METRICS_TOKEN_FILE: tokenFile(0o644) }),
      /accessible by group or others/,
    );
    const empty = tokenFile(0o600);
    writeFileSync(empty, '\n');
    await assert.rejects(start({ FLOE_COORDINATOR_METRICS_TOKEN_FILE: empty }), /empty/);
  });

  it('FLOE_COORDINATOR_METRICS_LISTEN: /metrics there, unauthenticated, and not on the API', async () => {
    const r = await start({ FLOE_COORDINATOR_METRICS_LISTEN: '127.0.0.1:0' });
    assert.ok(r.metricsUrl, 'the metrics listener is up');
    assert.notEqual(r.metricsUrl, r.url);
    const m = await request(r.metricsUrl!, 'GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^# HELP floe_signer_quarantined/m);
    assertProblem(await request(r.url, 'GET', '/metrics'), 404, 'not_found', '/metrics on the API');
    assert.equal((await request(r.url, 'GET', '/healthz')).status, 200, 'the API is otherwise unchanged');
    assert.equal((await request(r.metricsUrl!, 'GET', '/healthz')).status, 200, '/healthz on both');
  });

  it('refuses metrics_listen equal to listen', () => {
    assert.throws(
      () =>
        loadCoordinatorConfig(undefined, {
          FLOE_COORDINATOR_LISTEN: '127.0.0.1:8080',
          FLOE_COORDINATOR_METRICS_LISTEN: '127.0.0.1:8080',
        }),
      /metrics_listen must differ from listen/,
    );
  });
});
