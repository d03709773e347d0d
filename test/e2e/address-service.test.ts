/**
 * The address tier (`floe address-service`, DESIGN §14) as its own process, started through the
 * CLI in front of a real cluster: it serves the address endpoints and nothing else, an `address`
 * token gets addresses and cannot sign or list sessions (here or on the coordinator), admins may
 * use it too, and it limits requests per client address before forwarding anything.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { type HttpResult, request } from '../helpers/http.js';
import { type Spawned, spawnFloe } from '../helpers/processes.js';

async function addressService(env: Record<string, string>): Promise<{ proc: Spawned; url: string }> {
  const proc = spawnFloe(['address-service'], {
    FLOE_ADDRESS_LISTEN: '127.0.0.1:0',
    // Every request logged: the passphrase must not be in any of it.
    FLOE_LOG_LEVEL: 'debug',
    ...env,
  });
  const started = await proc.waitFor('address_service_started', 60_000);
  return { proc, url: String(started.url) };
}

describe('floe address-service (separate process)', () => {
  let c: TestCluster;
  let svc: { proc: Spawned; url: string };
  let keyId: string;
  let addressToken: string;
  const passphrase = `user-${randomBytes(6).toString('hex')}`;
  const procs: Spawned[] = [];

  before(async () => {
    c = await startCluster({ signers: 3 });
    await c.registerSigners();
    keyId = (await c.createKey(2)).id;
    addressToken = (await c.api('POST', '/v1/tokens', { role: 'address', label: 'web' })).body.token;
    svc = await addressService({ FLOE_ADDRESS_COORDINATOR_URL: c.url });
    procs.push(svc.proc);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await c?.close();
  });

  const via = (method: string, path: string, token?: string, json?: unknown) =>
    request(svc.url, method, path, { ...(token ? { token } : {}), ...(json === undefined ? {} : { json }) });

  it('an address token gets per-passphrase and derived addresses, the same as the coordinator gives', async () => {
    const health = await via('GET', '/healthz');
    assert.equal(health.body.role, 'address-service');

    const created = await via('POST', '/v1/addresses', addressToken, { passphrase });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.address, /^bcrt1p/);
    const again = await via('POST', '/v1/addresses', addressToken, { passphrase });
    assert.equal(again.status, 200);
    assert.equal(again.body.address, created.body.address);
    const direct = await c.api('POST', '/v1/addresses', { passphrase });
    assert.equal(direct.body.address, created.body.address, 'admin on the coordinator: the same address');

    const derived = await via('GET', `/v1/keys/${keyId}/addresses?branch=1&from=3&count=4`, addressToken);
    assert.equal(derived.status, 200, derived.text);
    assert.deepEqual(
      derived.body,
      (await c.api('GET', `/v1/keys/${keyId}/addresses?branch=1&from=3&count=4`)).body,
    );
    const descriptor = await via('GET', `/v1/keys/${keyId}/descriptor`, addressToken);
    assert.deepEqual(descriptor.body, (await c.api('GET', `/v1/keys/${keyId}/descriptor`)).body);
    const mapped = await via('POST', `/v1/keys/${keyId}/addresses`, addressToken, { passphrase });
    assert.deepEqual(mapped.body, (await c.api('POST', `/v1/keys/${keyId}/addresses`, { passphrase })).body);
  });

  it('serves nothing else: no sessions, keys, tokens, signers, docs or metrics, whatever the token', async () => {
    for (const token of [addressToken, c.adminToken]) {
      for (const [method, path, json] of [
        ['GET', '/v1/sessions', undefined],
        ['POST', '/v1/sessions', { key_id: keyId, message: '00'.repeat(32) }],
        ['GET', '/v1/keys', undefined],
        ['GET', `/v1/keys/${keyId}`, undefined],
        ['POST', '/v1/keys', { threshold: 2 }],
        ['GET', '/v1/signers', undefined],
        ['POST', '/v1/tokens', { role: 'admin' }],
        ['GET', '/docs', undefined],
        ['GET', '/openapi.json', undefined],
        ['GET', '/metrics', undefined],
      ] as const) {
        const r = await via(method, path, token, json);
        assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
        assert.equal(r.body.code, 'not_found');
      }
    }
  });

  it('the address role cannot sign or list sessions on the coordinator either; admin can', async () => {
    const message = '11'.repeat(32);
    const sign = await request(c.url, 'POST', '/v1/sessions', {
      token: addressToken,
      json: { key_id: keyId, message, wait: 10_000 },
    });
    assert.equal(sign.status, 403, sign.text);
    assert.equal(sign.body.code, 'forbidden');
    assert.equal((await request(c.url, 'GET', '/v1/sessions', { token: addressToken })).status, 403);
    // Admin tokens may use the address service, and sign on the coordinator.
    assert.equal((await via('POST', '/v1/addresses', c.adminToken, { passphrase })).status, 200);
    assert.equal((await c.api('GET', '/v1/sessions')).status, 200);
    assert.equal((await c.sign(keyId, message)).body.status, 'completed');
  });

  it('refuses before forwarding: no token 401, bad body 400; the coordinator refusals come back as they are', async () => {
    const none = await via('POST', '/v1/addresses', undefined, { passphrase });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'unauthorized');
    assert.equal((await via('POST', '/v1/addresses', addressToken, {})).status, 400);
    assert.equal((await via('POST', '/v1/addresses', addressToken, { passphrase, extra: 1 })).status, 400);
    assert.equal((await via('POST', '/v1/addresses', addressToken, { passphrase: '' })).status, 400);
    assert.equal((await via('GET', `/v1/keys/${keyId}/addresses?count=5000`, addressToken)).status, 400);
    const bad = await via('POST', '/v1/addresses', `floe_${'0'.repeat(16)}_${'A'.repeat(43)}`, {
      passphrase,
    });
    assert.equal(bad.status, 401, bad.text);
    const missing = await via('GET', '/v1/keys/key_missing/descriptor', addressToken);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /problem\+json/);
  });

  it('limits requests per client address; says so when the coordinator is unreachable', async () => {
    const limited = await addressService({
      FLOE_ADDRESS_COORDINATOR_URL: c.url,
      FLOE_ADDRESS_RATE_LIMIT_PER_MIN: '3',
    });
    procs.push(limited.proc);
    const codes: number[] = [];
    let last: HttpResult | undefined;
    for (let i = 0; i < 5; i++) {
      last = await request(limited.url, 'GET', `/v1/keys/${keyId}/descriptor`, { token: addressToken });
      codes.push(last.status);
    }
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    assert.equal(last!.body.code, 'rate_limited');
    assert.ok(Number(last!.headers.get('retry-after')) >= 1);

    const orphan = await addressService({ FLOE_ADDRESS_COORDINATOR_URL: 'http://127.0.0.1:9' });
    procs.push(orphan.proc);
    const r = await request(orphan.url, 'POST', '/v1/addresses', {
      token: addressToken,
      json: { passphrase },
    });
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'unavailable');
  });

  it('logs requests, never the passphrase', () => {
    const log = [...svc.proc.stdout, ...svc.proc.stderr].join('\n');
    assert.match(log, /"reqId"/);
    assert.ok(!log.includes(passphrase));
  });
});
