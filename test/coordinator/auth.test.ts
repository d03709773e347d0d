/**
 * Coordinator HTTP API: authentication and authorization. Bearer API tokens (unknown,
 * malformed, expired, revoked), roles, the JWT exchange with single-use refresh tokens and
 * family revocation, and the per-token rate limit. One in-process cluster for the file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  createApiToken,
  newApiToken,
  type Principal,
  sha256hex,
  signAccessToken,
} from '../../src/coordinator/auth/tokens.js';
import { buildApi } from '../../src/coordinator/http.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { DEFAULT_TENANT } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { fromHex } from '../../src/crypto/hex.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem, type HttpResult, request } from '../helpers/http.js';

let cluster: TestCluster;
let keyId: string;
let signerIds: string[];
let jwtSecret: Uint8Array;
/** API tokens by role, created through POST /v1/tokens. */
const tokens: Record<Principal['role'], { id: string; token: string }> = {} as never;

const backend = () => cluster.coordinator!.backend as PgBackend;
const call = (method: string, path: string, o: Parameters<typeof request>[3] = {}) =>
  request(cluster.url, method, path, o);
const msg = () => randomBytes(32).toString('hex');

async function newToken(role: Principal['role'], extra: Record<string, unknown> = {}) {
  const r = await cluster.api('POST', '/v1/tokens', { role, label: `test ${role}`, ...extra });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body as { id: string; token: string; role: string; expires_at: number | null; created_at: number };
}

async function exchange(token: string): Promise<HttpResult> {
  return call('POST', '/v1/auth/token', { json: { token } });
}

before(async () => {
  cluster = await startCluster({ signers: 3 });
  signerIds = await cluster.registerSigners();
  keyId = (await cluster.createKey(2)).id;
  jwtSecret = fromHex(readFileSync(join(cluster.dir, 'coordinator', 'jwt.key'), 'utf8').trim(), 'jwt', 32);
  for (const role of ['viewer', 'requester', 'operator', 'admin'] as const) {
    const t = await newToken(role);
    tokens[role] = { id: t.id, token: t.token };
  }
});

after(async () => {
  await cluster?.close();
});

describe('bearer authentication', () => {
  it('refuses a request without an Authorization header', async () => {
    for (const [method, path] of [
      ['GET', '/v1/keys'],
      ['GET', '/v1/sessions'],
      ['GET', '/v1/signers'],
      ['GET', '/v1/tokens'],
    ] as const) {
      assertProblem(await call(method, path), 401, 'unauthorized', `${method} ${path}`);
    }
  });

  it('authenticates before looking at the body', async () => {
    // An anonymous caller learns nothing from validation.
    const r = await call('POST', '/v1/sessions', { json: { key_id: keyId, message: 'zz', extra: 1 } });
    assertProblem(r, 401, 'unauthorized', 'invalid body without a token');
    const created = await call('POST', '/v1/sessions', { json: { key_id: keyId, message: msg() } });
    assertProblem(created, 401, 'unauthorized', 'valid body without a token');
  });

  it('refuses malformed Authorization headers', async () => {
    const admin = cluster.adminToken;
    for (const h of [
      `Basic ${Buffer.from('admin:admin').toString('base64')}`,
      'Bearer',
      'Bearer ',
      `bearer${admin}`,
      `Token ${admin}`,
      `Bearer ${admin.slice(0, -1)}`,
      `Bearer ${admin}x`,
      'Bearer floe_',
      'Bearer floe_0123456789abcdef_short',
      'Bearer not-a-jwt',
      'Bearer a.b.c',
      'Bearer ....',
    ]) {
      const r = await call('GET', '/v1/keys', { headers: { authorization: h } });
      assertProblem(r, 401, 'unauthorized', `Authorization: ${h.slice(0, 30)}`);
    }
  });

  it('refuses a well-formed but unknown API token', async () => {
    const { token } = newApiToken();
    assertProblem(await call('GET', '/v1/keys', { token }), 401, 'unauthorized');
    assertProblem(await exchange(token), 401, 'unauthorized', 'exchange of an unknown token');
  });

  it('refuses an expired API token (and its exchange)', async () => {
    const { id, token } = newApiToken();
    const now = Date.now();
    await backend().insertToken({
      id,
      tenantId: DEFAULT_TENANT,
      role: 'admin',
      label: 'expired',
      createdAt: now - 7_200_000,
      expiresAt: now - 3_600_000,
      revokedAt: null,
      hash: sha256hex(token),
    });
    const r = await call('GET', '/v1/keys', { token });
    assertProblem(r, 401, 'unauthorized', 'expired token');
    assert.match(r.body.detail, /expired/);
    assertProblem(await exchange(token), 401, 'unauthorized', 'exchange of an expired token');

    // The same token with a future expiry works: it was the expiry that was refused.
    const live = newApiToken();
    await backend().insertToken({
      id: live.id,
      tenantId: DEFAULT_TENANT,
      role: 'viewer',
      label: 'live',
      createdAt: now,
      expiresAt: now + 3_600_000,
      revokedAt: null,
      hash: sha256hex(live.token),
    });
    assert.equal((await call('GET', '/v1/keys', { token: live.token })).status, 200);
  });

  it('records ttl_s as an expiry', async () => {
    const t = await newToken('viewer', { ttl_s: 60 });
    assert.equal(t.expires_at, t.created_at + 60_000);
    assert.equal((await call('GET', '/v1/keys', { token: t.token })).status, 200);
    assertProblem(
      await cluster.api('POST', '/v1/tokens', { role: 'viewer', ttl_s: 59 }),
      400,
      'invalid_request',
      'ttl_s below the minimum',
    );
  });

  it('refuses a revoked API token', async () => {
    const t = await newToken('requester');
    assert.equal((await call('GET', '/v1/keys', { token: t.token })).status, 200);
    const del = await cluster.api('DELETE', `/v1/tokens/${t.id}`);
    assert.equal(del.status, 204);
    const r = await call('GET', '/v1/keys', { token: t.token });
    assertProblem(r, 401, 'unauthorized', 'revoked token');
    assertProblem(
      await call('POST', '/v1/sessions', { token: t.token, json: { key_id: keyId, message: msg() } }),
      401,
      'unauthorized',
      'revoked token signing',
    );
    assertProblem(await exchange(t.token), 401, 'unauthorized', 'exchange of a revoked token');
    // Revoking twice, or an unknown id: 404.
    assertProblem(await cluster.api('DELETE', `/v1/tokens/${t.id}`), 404, 'token_not_found', 'revoke twice');
    assertProblem(
      await cluster.api('DELETE', '/v1/tokens/nosuchtoken'),
      404,
      'token_not_found',
      'revoke unknown',
    );
    const listed = (await cluster.api('GET', '/v1/tokens')).body.items.find((x: any) => x.id === t.id);
    assert.equal(typeof listed.revoked_at, 'number');
  });
});

describe('roles', () => {
  const as = (role: Principal['role'], method: string, path: string, json?: unknown) =>
    call(method, path, { token: tokens[role].token, ...(json === undefined ? {} : { json }) });
  const forbidden = async (role: Principal['role'], method: string, path: string, json?: unknown) =>
    assertProblem(await as(role, method, path, json), 403, 'forbidden', `${role} ${method} ${path}`);

  it('viewer reads but cannot sign, create keys, register signers or manage tokens', async () => {
    for (const path of ['/v1/keys', `/v1/keys/${keyId}`, '/v1/sessions', '/v1/signers']) {
      assert.equal((await as('viewer', 'GET', path)).status, 200, path);
    }
    const before = (await cluster.api('GET', '/v1/sessions?limit=500')).body.items.length;
    await forbidden('viewer', 'POST', '/v1/sessions', { key_id: keyId, message: msg(), wait: 1000 });
    await forbidden('viewer', 'POST', '/v1/keys', { threshold: 2, wait: 1000 });
    const s = cluster.signers[0]!;
    await forbidden('viewer', 'POST', '/v1/signers', { url: s.url, identity: s.identity });
    await forbidden('viewer', 'PATCH', `/v1/signers/${signerIds[0]}`, { quarantine_override: true });
    await forbidden('viewer', 'POST', '/v1/tokens', { role: 'viewer' });
    await forbidden('viewer', 'GET', '/v1/tokens');
    await forbidden('viewer', 'DELETE', `/v1/tokens/${tokens.requester.id}`);
    const done = (await cluster.api('GET', '/v1/sessions?limit=500')).body.items;
    assert.equal(done.length, before, 'a forbidden request created no session');
    const c = await cluster.sign(keyId, msg());
    await forbidden('viewer', 'POST', `/v1/sessions/${c.body.id}/cancel`);
  });

  it('requester signs but cannot create keys, register signers or manage tokens', async () => {
    const m = msg();
    const r = await as('requester', 'POST', '/v1/sessions', { key_id: keyId, message: m, wait: 30_000 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed');
    assert.equal(r.body.message, m);
    await forbidden('requester', 'POST', '/v1/keys', { threshold: 2, wait: 1000 });
    const s = cluster.signers[0]!;
    await forbidden('requester', 'POST', '/v1/signers', { url: s.url, identity: s.identity });
    await forbidden('requester', 'PATCH', `/v1/signers/${signerIds[0]}`, { clear_faults: true });
    await forbidden('requester', 'POST', '/v1/tokens', { role: 'viewer' });
    await forbidden('requester', 'GET', '/v1/tokens');
  });

  it('operator creates keys but cannot manage tokens or signers', async () => {
    const keysBefore = (await cluster.api('GET', '/v1/keys')).body.items.length;
    const k = await as('operator', 'POST', '/v1/keys', { threshold: 2, label: 'by operator', wait: 30_000 });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    assert.equal(k.body.status, 'active');
    assert.equal((await cluster.api('GET', '/v1/keys')).body.items.length, keysBefore + 1);
    const r = await as('operator', 'POST', '/v1/sessions', {
      key_id: k.body.id,
      message: msg(),
      wait: 30_000,
    });
    assert.equal(r.body.status, 'completed', 'operator can also sign');
    await forbidden('operator', 'POST', '/v1/tokens', { role: 'viewer' });
    await forbidden('operator', 'POST', '/v1/tokens', { role: 'admin' });
    await forbidden('operator', 'GET', '/v1/tokens');
    await forbidden('operator', 'DELETE', `/v1/tokens/${tokens.viewer.id}`);
    await forbidden('operator', 'PATCH', `/v1/signers/${signerIds[0]}`, { quarantine_override: false });
  });

  it('admin manages tokens', async () => {
    const r = await as('admin', 'POST', '/v1/tokens', { role: 'operator', label: 'from admin' });
    assert.equal(r.status, 201);
    assert.equal(r.body.role, 'operator');
    const list = await as('admin', 'GET', '/v1/tokens');
    assert.equal(list.status, 200);
    assert.ok(list.body.items.some((t: any) => t.id === r.body.id));
    assert.equal((await as('admin', 'DELETE', `/v1/tokens/${r.body.id}`)).status, 204);
  });
});

describe('access tokens (JWT) and refresh rotation', () => {
  it('exchanges an API token for an access token and a refresh token', async () => {
    const r = await exchange(tokens.requester.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), [
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ]);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 900);
    assert.match(r.body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(r.body.refresh_token, /^floer_[\w-]{43}$/);
    const claims = JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url').toString());
    assert.equal(claims.exp - claims.iat, 900);
    assert.equal(claims.role, 'requester');
    assert.equal(claims.sub, tokens.requester.id);

    // The access token is a bearer with the API token's role.
    const jwt = r.body.access_token;
    assert.equal((await call('GET', '/v1/keys', { token: jwt })).status, 200);
    const s = await call('POST', '/v1/sessions', {
      token: jwt,
      json: { key_id: keyId, message: msg(), wait: 30_000 },
    });
    assert.equal(s.body.status, 'completed');
    assertProblem(await call('POST', '/v1/keys', { token: jwt, json: { threshold: 2 } }), 403, 'forbidden');

    // Only the hash of the refresh token is stored.
    const rows = await backend().db.adminQuery<{ token_sha256: string }>(
      'SELECT token_sha256 FROM refresh_tokens WHERE token_sha256 = $1',
      [sha256hex(r.body.refresh_token)],
    );
    assert.equal(rows.rows.length, 1);
    const all = await backend().db.adminQuery('SELECT * FROM refresh_tokens');
    assert.ok(!JSON.stringify(all.rows).includes(r.body.refresh_token.slice(6)));
  });

  it('refuses malformed exchange bodies', async () => {
    assertProblem(await call('POST', '/v1/auth/token', { json: {} }), 400, 'invalid_request');
    assertProblem(
      await call('POST', '/v1/auth/token', { json: { token: tokens.viewer.token, role: 'admin' } }),
      400,
      'invalid_request',
    );
    assertProblem(await call('POST', '/v1/auth/token', { json: { token: 'garbage' } }), 401, 'unauthorized');
    assertProblem(
      await call('POST', '/v1/auth/refresh', { json: { refresh_token: 'floer_x' } }),
      401,
      'unauthorized',
    );
    assertProblem(
      await call('POST', '/v1/auth/refresh', { json: { refresh_token: `floer_${'A'.repeat(43)}` } }),
      401,
      'unauthorized',
    );
  });

  it('rotates refresh tokens; a spent one is refused and revokes its family', async () => {
    const first = (await exchange(tokens.viewer.token)).body;
    const r1 = await call('POST', '/v1/auth/refresh', { json: { refresh_token: first.refresh_token } });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r1.body.token_type, 'Bearer');
    assert.equal(r1.body.expires_in, 900);
    assert.notEqual(r1.body.refresh_token, first.refresh_token);
    assert.notEqual(r1.body.access_token, first.access_token);
    assert.equal((await call('GET', '/v1/keys', { token: r1.body.access_token })).status, 200);

    const r2 = await call('POST', '/v1/auth/refresh', { json: { refresh_token: r1.body.refresh_token } });
    assert.equal(r2.status, 200);
    assert.notEqual(r2.body.refresh_token, r1.body.refresh_token);

    // A second, independent family from another exchange of the same API token.
    const other = (await exchange(tokens.viewer.token)).body;

    // Replaying the spent first refresh token: refused, and the family's newest token with it.
    assertProblem(
      await call('POST', '/v1/auth/refresh', { json: { refresh_token: first.refresh_token } }),
      401,
      'unauthorized',
      'spent refresh token',
    );
    assertProblem(
      await call('POST', '/v1/auth/refresh', { json: { refresh_token: r2.body.refresh_token } }),
      401,
      'unauthorized',
      'newest refresh token of a revoked family',
    );
    // The other family is untouched.
    const o1 = await call('POST', '/v1/auth/refresh', { json: { refresh_token: other.refresh_token } });
    assert.equal(o1.status, 200, JSON.stringify(o1.body));
  });

  it('revoking the API token invalidates its access and refresh tokens', async () => {
    const t = await newToken('requester');
    const ex = (await exchange(t.token)).body;
    assert.equal((await call('GET', '/v1/sessions', { token: ex.access_token })).status, 200);
    assert.equal((await cluster.api('DELETE', `/v1/tokens/${t.id}`)).status, 204);
    assertProblem(
      await call('GET', '/v1/sessions', { token: ex.access_token }),
      401,
      'unauthorized',
      'access',
    );
    assertProblem(
      await call('POST', '/v1/auth/refresh', { json: { refresh_token: ex.refresh_token } }),
      401,
      'unauthorized',
      'refresh after revocation',
    );
  });

  it('refuses tampered, forged and expired access tokens', async () => {
    const jwt: string = (await exchange(tokens.viewer.token)).body.access_token;
    const [h, b, s] = jwt.split('.') as [string, string, string];
    assert.equal((await call('GET', '/v1/keys', { token: jwt })).status, 200);
    const claims = JSON.parse(Buffer.from(b, 'base64url').toString());
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const flip = (x: string, i: number) => x.slice(0, i) + (x[i] === 'A' ? 'B' : 'A') + x.slice(i + 1);

    const variants: Record<string, string> = {
      'role raised': `${h}.${enc({ ...claims, role: 'admin' })}.${s}`,
      'expiry extended': `${h}.${enc({ ...claims, exp: claims.exp + 86400 })}.${s}`,
      'signature byte changed': `${h}.${b}.${flip(s, 5)}`,
      'signature dropped': `${h}.${b}.`,
      'alg none': `${enc({ alg: 'none', typ: 'JWT' })}.${b}.`,
      'other secret': await signAccessToken(
        randomBytes(32),
        { tenantId: claims.tid, role: 'admin', tokenId: claims.sub },
        Date.now(),
      ),
    };
    for (const [what, token] of Object.entries(variants)) {
      const r = await call('GET', '/v1/keys', { token });
      assertProblem(r, 401, 'unauthorized', what);
    }
    // Validly signed, but expired / for an unknown token / for the wrong tenant.
    const p = { tenantId: DEFAULT_TENANT, role: 'admin' as const, tokenId: tokens.admin.id };
    const signed = {
      expired: await signAccessToken(jwtSecret, p, Date.now() - 3_600_000),
      'unknown token id': await signAccessToken(jwtSecret, { ...p, tokenId: '0123456789abcdef' }, Date.now()),
      'wrong tenant': await signAccessToken(jwtSecret, { ...p, tenantId: 'nosuchtenant' }, Date.now()),
    };
    for (const [what, token] of Object.entries(signed)) {
      assertProblem(await call('GET', '/v1/keys', { token }), 401, 'unauthorized', what);
    }
    // Control: the same secret and principal, now, is accepted.
    assert.equal(
      (await call('GET', '/v1/keys', { token: await signAccessToken(jwtSecret, p, Date.now()) })).status,
      200,
    );
  });
});

describe('an access token ends with its API token', () => {
  let app: FastifyInstance;
  let clock = 0;
  const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

  before(async () => {
    clock = Date.now();
    app = await buildApi({
      coordinator: cluster.coordinator!.coordinator,
      metrics: new CoordinatorMetrics(),
      jwtSecret,
      now: () => clock,
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
  });

  const get = (token: string) =>
    app.inject({ method: 'GET', url: '/v1/keys', headers: { authorization: `Bearer ${token}` } });

  it('is issued to expire no later than its API token', async () => {
    const { record, token } = await createApiToken(backend(), {
      tenantId: DEFAULT_TENANT,
      role: 'viewer',
      ttlMs: 120_000,
      now: clock,
    });
    const ex = await app.inject({ method: 'POST', url: '/v1/auth/token', payload: { token } });
    assert.equal(ex.statusCode, 200, ex.body);
    const body = ex.json();
    const claims = claimsOf(body.access_token);
    assert.equal(claims.exp, Math.floor(record.expiresAt! / 1000), 'exp is the API token’s expiry');
    assert.equal(body.expires_in, claims.exp - claims.iat);
    assert.ok(body.expires_in <= 120, `expires_in ${body.expires_in}`);
    // A refresh issues one capped the same way.
    clock += 30_000;
    const r = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      payload: { refresh_token: body.refresh_token },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(claimsOf(r.json().access_token).exp, Math.floor(record.expiresAt! / 1000));
    assert.ok(r.json().expires_in <= 90);
  });

  it('is refused once its API token expired, even within its own lifetime', async () => {
    const { record } = await createApiToken(backend(), {
      tenantId: DEFAULT_TENANT,
      role: 'viewer',
      ttlMs: 120_000,
      now: clock,
    });
    // 15 minutes, as a coordinator that did not cap it would have issued it.
    const jwt = await signAccessToken(
      jwtSecret,
      { tenantId: DEFAULT_TENANT, role: 'viewer', tokenId: record.id },
      clock,
    );
    assert.equal(claimsOf(jwt).exp - claimsOf(jwt).iat, 900);
    assert.equal((await get(jwt)).statusCode, 200);
    clock += 119_000;
    assert.equal((await get(jwt)).statusCode, 200, 'a second before the API token expires');
    clock += 1_000;
    const r = await get(jwt);
    assertProblem(
      { status: r.statusCode, body: r.json(), headers: r.headers },
      401,
      'unauthorized',
      'expired',
    );
    assert.match(r.json().detail, /expired/);
  });
});

describe('rate limit per token', () => {
  let app: FastifyInstance;
  let clock = 0;
  const secret = randomBytes(32);

  before(async () => {
    clock = Date.now();
    app = await buildApi({
      coordinator: cluster.coordinator!.coordinator,
      metrics: new CoordinatorMetrics(),
      jwtSecret: secret,
      now: () => clock,
      rateLimit: { perSecond: 1, burst: 3 },
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
  });

  const get = (token: string) =>
    app.inject({ method: 'GET', url: '/v1/keys', headers: { authorization: `Bearer ${token}` } });

  it('answers 429 with Retry-After past the burst; other tokens are unaffected', async () => {
    const a = await createApiToken(backend(), { tenantId: DEFAULT_TENANT, role: 'viewer', now: clock });
    const b = await createApiToken(backend(), { tenantId: DEFAULT_TENANT, role: 'viewer', now: clock });
    for (let i = 0; i < 3; i++) assert.equal((await get(a.token)).statusCode, 200, `request ${i + 1}`);
    const limited = await get(a.token);
    assertProblem(
      { status: limited.statusCode, body: limited.json(), headers: limited.headers },
      429,
      'rate_limited',
      '4th request',
    );
    const retry = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1, `retry-after ${limited.headers['retry-after']}`);

    // Access tokens of the same API token share its bucket.
    const jwt = await signAccessToken(
      secret,
      { tenantId: DEFAULT_TENANT, role: 'viewer', tokenId: a.record.id },
      clock,
    );
    assert.equal((await get(jwt)).statusCode, 429);

    // Another token has its own bucket.
    for (let i = 0; i < 3; i++) assert.equal((await get(b.token)).statusCode, 200, `other token ${i + 1}`);

    // After Retry-After seconds the first token may go again (once: 1/s refill).
    clock += retry * 1000;
    assert.equal((await get(a.token)).statusCode, 200);
    assert.equal((await get(a.token)).statusCode, 429);
  });
});
