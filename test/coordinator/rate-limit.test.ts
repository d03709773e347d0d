/**
 * Rate limits (@fastify/rate-limit over a GCRA kept in the coordinator's database): per API
 * token on every authenticated route, per client address and per API token on the auth
 * routes, per tenant on token creation; and all of them shared by every coordinator of the
 * database. Two in-process coordinators, each with its own API, over one database (on Postgres
 * each with its own connection pool), on a fake clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiToken, newApiToken, signAccessToken } from '../../src/coordinator/auth/tokens.js';
import { buildApi } from '../../src/coordinator/http.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { PgBackend } from '../../src/coordinator/pg-backend.js';
import type { RateLimitSettings } from '../../src/coordinator/routes/auth-plugin.js';
import { Coordinator } from '../../src/coordinator/services/index.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/identity.js';
import { type Db, openDb, type Tx } from '../../src/db/connection.js';
import { hitRateLimit } from '../../src/db/queries/rate-limits.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { assertProblem } from '../helpers/http.js';

const LIMITS: RateLimitSettings = { perSecond: 1, burst: 3, authPerMinute: 3, tokenCreatePerHour: 2 };
const TENANT = 'default';

let t: TestDb;
let backendA: PgBackend;
let backendB: PgBackend;
let coordinatorA: Coordinator;
const apps: FastifyInstance[] = [];
let A: FastifyInstance;
let B: FastifyInstance;
let clock = 0;
const jwtSecret = randomBytes(32);

async function coordinatorApi(backend: PgBackend): Promise<{ c: Coordinator; app: FastifyInstance }> {
  const identity = softwareIdentity(generateIdentityKey());
  const metrics = new CoordinatorMetrics();
  const c = new Coordinator({ backend, identity, metrics, now: () => clock });
  const app = await buildApi({ coordinator: c, metrics, jwtSecret, now: () => clock, rateLimit: LIMITS });
  await app.ready();
  apps.push(app);
  return { c, app };
}

before(async () => {
  clock = Date.now();
  t = await testDb();
  backendA = new PgBackend(t.db);
  // PGlite is one process's database: there the two coordinators share the handle.
  backendB = t.url ? new PgBackend(await openDb({ url: t.url, migrate: false, poolSize: 2 })) : backendA;
  await backendA.ensureTenant(TENANT, 'default', clock);
  await backendA.ensureTenant('other', 'other tenant', clock);
  const a = await coordinatorApi(backendA);
  coordinatorA = a.c;
  A = a.app;
  B = (await coordinatorApi(backendB)).app;
});

after(async () => {
  for (const app of apps) await app.close();
  if (backendB !== backendA) await backendB.close();
  await t?.cleanup();
});

const problem = (r: LightMyRequestResponse) => ({ status: r.statusCode, body: r.json(), headers: r.headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const newToken = async (role: 'viewer' | 'admin' = 'viewer', tenantId = TENANT) =>
  createApiToken(backendA, { tenantId, role, now: clock });
let address = 0;
/** A client address of its own (TEST-NET-3), so that tests do not share address limits. */
const nextAddress = () => `203.0.113.${++address}`;

function exchange(app: FastifyInstance, token: string, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/v1/auth/token', payload: { token }, remoteAddress });
}
function refresh(app: FastifyInstance, refreshToken: string, remoteAddress = '127.0.0.1') {
  return app.inject({
    method: 'POST',
    url: '/v1/auth/refresh',
    payload: { refresh_token: refreshToken },
    remoteAddress,
  });
}

describe('the limit store (GCRA in the database)', () => {
  it('allows a burst, then one request per interval; a refusal is not counted', async () => {
    const key = `unit:${randomBytes(4).toString('hex')}`;
    const t0 = 1_000_000;
    const hit = (now: number) =>
      t.db.transaction((q) => hitRateLimit(q, key, { now, intervalMs: 3000 / 7, windowMs: 3000 }));
    for (let i = 0; i < 7; i++) assert.equal((await hit(t0)).allowed, true, `burst ${i + 1}`);
    assert.equal((await hit(t0)).allowed, false);
    assert.equal((await hit(t0 + 428)).allowed, false, 'before one interval (428.57 ms)');
    assert.equal((await hit(t0 + 429)).allowed, true, 'after one interval');
    assert.equal((await hit(t0 + 429)).allowed, false);
    // Refusals did not push the bucket further: after the whole window it is full again.
    const h = await hit(t0 + 429 + 3000);
    assert.equal(h.allowed, true);
    for (let i = 0; i < 6; i++) assert.equal((await hit(t0 + 3429)).allowed, true, `refilled ${i + 2}`);
    assert.equal((await hit(t0 + 3429)).allowed, false);
  });

  it('the jobs delete keys whose bucket is full again', async () => {
    const key = `stale:${randomBytes(4).toString('hex')}`;
    await t.db.transaction((q) =>
      hitRateLimit(q, key, { now: Date.now() - 7_200_000, intervalMs: 1, windowMs: 1 }),
    );
    const count = async () =>
      (
        await t.db.adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM rate_limits WHERE key = $1', [
          key,
        ])
      ).rows[0]!.n;
    assert.equal(await count(), 1);
    await coordinatorA.jobs.tick();
    assert.equal(await count(), 0);
  });
});

describe('per API token, on every authenticated route', () => {
  it('is one limit across coordinators: 429 with Retry-After past it', async () => {
    const { token } = await newToken();
    const get = (app: FastifyInstance) =>
      app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(token) });
    for (const [i, app] of [A, B, A].entries()) {
      const r = await get(app);
      assert.equal(r.statusCode, 200, `request ${i + 1}`);
      assert.equal(r.headers['x-ratelimit-limit'], '3');
      assert.equal(r.headers['x-ratelimit-remaining'], String(2 - i));
    }
    const limited = await get(B);
    assertProblem(problem(limited), 429, 'rate_limited', 'the 4th request, on the other coordinator');
    assert.equal(limited.headers['retry-after'], '1');
    assert.match(limited.json().detail, /this token/);
    assertProblem(problem(await get(A)), 429, 'rate_limited', 'and on the first');
    clock += 1000;
    assert.equal((await get(B)).statusCode, 200, 'one more after Retry-After');
    assertProblem(problem(await get(A)), 429, 'rate_limited', 'and only one');
  });
});

describe('per API token: the API token itself and its access tokens', () => {
  it('answer the same headers from the same bucket (the API token is counted with its lookup)', async () => {
    const { token, record } = await newToken();
    const jwt = await signAccessToken(
      jwtSecret,
      { tenantId: TENANT, role: 'viewer', tokenId: record.id },
      clock,
    );
    const get = (app: FastifyInstance, credential: string) =>
      app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(credential) });
    // 1 per second, burst 3: after the n-th request the bucket is full again in n seconds
    for (const [i, [app, credential]] of (
      [
        [A, token],
        [B, jwt],
        [A, token],
      ] as const
    ).entries()) {
      const r = await get(app, credential);
      assert.equal(r.statusCode, 200, `request ${i + 1}`);
      assert.deepEqual(
        [r.headers['x-ratelimit-limit'], r.headers['x-ratelimit-remaining'], r.headers['x-ratelimit-reset']],
        ['3', String(2 - i), String(i + 1)],
        `request ${i + 1}`,
      );
    }
    for (const credential of [token, jwt]) {
      const r = await get(B, credential);
      assertProblem(problem(r), 429, 'rate_limited', credential === token ? 'API token' : 'access token');
      assert.deepEqual(
        [r.headers['x-ratelimit-remaining'], r.headers['x-ratelimit-reset'], r.headers['retry-after']],
        ['0', '1', '1'],
      );
    }
    clock += 400;
    assert.equal((await get(A, token)).headers['retry-after'], '1', 'in 0.6 s');
    // 1.25 s on: one more request, after which the bucket is full in 2.75 s (rounded up)
    clock += 850;
    const again = await get(A, token);
    assert.equal(again.statusCode, 200);
    assert.deepEqual(
      [again.headers['x-ratelimit-remaining'], again.headers['x-ratelimit-reset']],
      ['0', '3'],
    );
  });

  it("an API token's lookup and its count are one transaction; a refused token counts nothing", async () => {
    const { token, record } = await newToken();
    const db = backendA.db;
    const original = db.transaction;
    const seen: string[][] = [];
    db.transaction = (<T>(fn: (tx: Tx) => Promise<T>, o?: Parameters<Db['transaction']>[1]) =>
      original.call(
        db,
        (tx) => {
          const statements: string[] = [];
          seen.push(statements);
          return fn({
            tenantId: tx.tenantId,
            query: ((sql: string, params?: readonly unknown[]) => {
              statements.push(sql);
              return tx.query(sql, params);
            }) as Tx['query'],
          });
        },
        o,
      )) as Db['transaction'];
    const tokenOf = (statements: string[]) => [
      statements.some((s) => s.includes('floe_lookup_token')),
      statements.some((s) => s.includes('rate_limits')),
    ];
    try {
      assert.equal(
        (await A.inject({ method: 'GET', url: '/v1/keys', headers: bearer(token) })).statusCode,
        200,
      );
      assert.deepEqual(
        seen.map(tokenOf).filter(([a, b]) => a || b),
        [[true, true]],
      );
      seen.length = 0;
      await backendA.revokeToken(TENANT, record.id, clock);
      const refused = await A.inject({ method: 'GET', url: '/v1/keys', headers: bearer(token) });
      assertProblem(problem(refused), 401, 'unauthorized', 'revoked');
      assert.deepEqual(
        seen.map(tokenOf).filter(([a, b]) => a || b),
        [[true, false]],
      );
    } finally {
      db.transaction = original;
    }
  });
});

describe('the auth routes', () => {
  it('are limited per client address, across coordinators, before the body is read', async () => {
    const addr = nextAddress();
    const { token } = await newToken();
    // Three failed exchanges (unknown tokens) from one address, on either coordinator.
    for (const app of [A, B, A]) {
      assertProblem(problem(await exchange(app, newApiToken().token, addr)), 401, 'unauthorized');
    }
    // The fourth is refused whatever it carries: a valid token, or a body that is not even JSON.
    const r = await exchange(B, token, addr);
    assertProblem(problem(r), 429, 'rate_limited', 'a valid token from a limited address');
    assert.equal(r.headers['retry-after'], '20', '3 a minute: one every 20 s');
    const junk = await A.inject({
      method: 'POST',
      url: '/v1/auth/token',
      headers: { 'content-type': 'application/json' },
      payload: '{nope',
      remoteAddress: addr,
    });
    assertProblem(problem(junk), 429, 'rate_limited', 'an unparsable body');
    // Refresh shares the address's limit.
    assertProblem(problem(await refresh(A, `floer_${'A'.repeat(43)}`, addr)), 429, 'rate_limited');
    // Another address is not affected; the limited one may go again 20 s later.
    assert.equal((await exchange(A, token, nextAddress())).statusCode, 200);
    clock += 20_000;
    assert.equal((await exchange(B, token, addr)).statusCode, 200);
    assertProblem(problem(await exchange(A, token, addr)), 429, 'rate_limited');
  });

  it('count IPv6 clients per /64', async () => {
    for (const a of ['2001:db8:7:1::1', '2001:db8:7:1::2', '2001:db8:7:1:ffff::3']) {
      assert.equal((await exchange(A, (await newToken()).token, a)).statusCode, 200, a);
    }
    const { token } = await newToken();
    assertProblem(problem(await exchange(B, token, '2001:db8:7:1::4')), 429, 'rate_limited', 'same /64');
    assert.equal((await exchange(B, token, '2001:db8:7:2::1')).statusCode, 200, 'another /64');
  });

  it('are limited per API token, from any address; invalid presentations of its id do not count', async () => {
    const v = await newToken();
    // Somebody presenting v's id with a wrong secret, from many addresses: refused, not counted.
    for (let i = 0; i < 5; i++) {
      const forged = `floe_${v.record.id}_${newApiToken().token.split('_').slice(2).join('_')}`;
      assertProblem(problem(await exchange(A, forged, nextAddress())), 401, 'unauthorized');
    }
    // v itself: three exchanges a minute, wherever they come from, on whichever coordinator.
    for (const app of [A, B, A]) assert.equal((await exchange(app, v.token, nextAddress())).statusCode, 200);
    const r = await exchange(B, v.token, nextAddress());
    assertProblem(problem(r), 429, 'rate_limited', 'the 4th exchange of one token');
    assert.match(r.json().detail, /for this token/);
    // Another token from that same address is fine.
    assert.equal((await exchange(B, (await newToken()).token, nextAddress())).statusCode, 200);
  });

  it('count a refresh against its API token before spending it', async () => {
    const u = await newToken();
    const first = (await exchange(A, u.token, nextAddress())).json();
    let rt: string = first.refresh_token;
    for (const app of [B, A]) {
      const r = await refresh(app, rt, nextAddress());
      assert.equal(r.statusCode, 200, r.body);
      rt = r.json().refresh_token;
    }
    assertProblem(problem(await refresh(B, rt, nextAddress())), 429, 'rate_limited', '4th use of one token');
    // The refused refresh token was not spent: it works once the limit allows.
    clock += 20_000;
    const ok = await refresh(A, rt, nextAddress());
    assert.equal(ok.statusCode, 200, ok.body);
  });
});

describe('POST /v1/tokens', () => {
  it('is limited per tenant, across coordinators and admin tokens', async () => {
    const admins = [await newToken('admin'), await newToken('admin')];
    const viewer = await newToken('viewer');
    const create = (app: FastifyInstance, token: string) =>
      app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(token), payload: { role: 'viewer' } });
    // Refused requests (no admin role) do not count.
    for (let i = 0; i < 3; i++) {
      clock += 1000;
      assertProblem(problem(await create(A, viewer.token)), 403, 'forbidden');
    }
    clock += 1000;
    assert.equal((await create(A, admins[0]!.token)).statusCode, 201);
    clock += 1000;
    assert.equal((await create(B, admins[1]!.token)).statusCode, 201);
    clock += 1000;
    const r = await create(A, admins[1]!.token);
    assertProblem(problem(r), 429, 'rate_limited', 'the 3rd token of the tenant in an hour');
    assert.match(r.json().detail, /creating tokens/);
    const retry = Number(r.headers['retry-after']);
    assert.ok(retry > 1700 && retry <= 1800, `retry-after ${retry} (2 an hour: one every 30 min)`);
    // Another tenant has its own limit.
    const other = await newToken('admin', 'other');
    assert.equal((await create(B, other.token)).statusCode, 201);
    clock += 1_800_000;
    assert.equal((await create(B, admins[0]!.token)).statusCode, 201, 'half an hour later');
  });
});
