/**
 * Tenants through the API (admins of the system tenant create and list them; a new tenant
 * comes with its first admin token) and the CLI (`floe tenant create|list`); and what a tenant
 * is for: its tokens see none of another tenant's keys, sessions or tokens (row-level
 * security), and it makes and uses keys of its own on the shared signers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem, request } from '../helpers/http.js';
import { spawnFloe } from '../helpers/processes.js';

let cluster: TestCluster;
let defaultKey: any;
const backend = () => cluster.coordinator!.backend as PgBackend;
const as = (token: string, method: string, path: string, json?: unknown) =>
  request(cluster.url, method, path, { token, ...(json === undefined ? {} : { json }) });
const msg = () => randomBytes(32).toString('hex');

before(async () => {
  cluster = await startCluster({ signers: 3 });
  await cluster.registerSigners();
  defaultKey = await cluster.createKey(2);
});

after(async () => {
  await cluster?.close();
});

describe('POST /v1/tenants and GET /v1/tenants', () => {
  let acme: { id: string; token: string; tokenId: string };

  it('creates a tenant with its first admin token (shown once); 409 if it exists', async () => {
    const r = await cluster.api('POST', '/v1/tenants', { id: 'acme', name: 'Acme payments' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.id, 'acme');
    assert.equal(r.body.name, 'Acme payments');
    assert.equal(typeof r.body.created_at, 'number');
    const t = r.body.admin_token;
    assert.match(t.token, /^floe_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(t.role, 'admin');
    assert.equal(t.token.split('_')[1], t.id);
    assert.equal(t.expires_at, null);
    acme = { id: 'acme', token: t.token, tokenId: t.id };

    assertProblem(
      await cluster.api('POST', '/v1/tenants', { id: 'acme', name: 'again' }),
      409,
      'conflict',
      'same id',
    );
    assertProblem(
      await cluster.api('POST', '/v1/tenants', { id: 'default' }),
      409,
      'conflict',
      'the system tenant',
    );
    // The name defaults to the id.
    const plain = await cluster.api('POST', '/v1/tenants', { id: 'plain-1' });
    assert.equal(plain.status, 201);
    assert.equal(plain.body.name, 'plain-1');
  });

  it('refuses ids that are not ids, and unknown fields', async () => {
    for (const body of [
      { id: '' },
      { id: '-leading' },
      { id: '_leading' },
      { id: 'has space' },
      { id: 'has.dot' },
      { id: 'x'.repeat(65) },
      { id: 'ok', name: '' },
      { id: 'ok', extra: 1 },
      { name: 'no id' },
    ]) {
      assertProblem(
        await cluster.api('POST', '/v1/tenants', body),
        400,
        'invalid_request',
        JSON.stringify(body),
      );
    }
  });

  it('lists tenants to system admins', async () => {
    const r = await cluster.api('GET', '/v1/tenants');
    assert.equal(r.status, 200);
    const ids = r.body.items.map((t: { id: string }) => t.id);
    assert.ok(ids.includes('default') && ids.includes('acme') && ids.includes('plain-1'), ids.join());
    assert.equal(r.body.next_cursor, null);
  });

  it('only admins of the system tenant manage tenants', async () => {
    for (const role of ['operator', 'viewer'] as const) {
      const t = (await cluster.api('POST', '/v1/tokens', { role })).body.token;
      assertProblem(await as(t, 'POST', '/v1/tenants', { id: `by-${role}` }), 403, 'forbidden', role);
      assertProblem(await as(t, 'GET', '/v1/tenants'), 403, 'forbidden', role);
    }
    // The admin of another tenant is an admin, but not of the system tenant.
    assertProblem(await as(acme.token, 'POST', '/v1/tenants', { id: 'by-acme' }), 403, 'forbidden');
    assertProblem(await as(acme.token, 'GET', '/v1/tenants'), 403, 'forbidden');
    assertProblem(await request(cluster.url, 'GET', '/v1/tenants'), 401, 'unauthorized');
    const ids = (await cluster.api('GET', '/v1/tenants')).body.items.map((t: { id: string }) => t.id);
    assert.ok(!ids.some((id: string) => id.startsWith('by-')), 'none was created');
  });

  it('records audit events in both tenants', async () => {
    const rows = (
      await backend().db.adminQuery<{ tenant_id: string; kind: string; subject_id: string }>(
        `SELECT tenant_id, kind, subject_id FROM audit_events WHERE kind IN ('tenant.created', 'token.created')`,
      )
    ).rows;
    assert.ok(
      rows.some((e) => e.tenant_id === 'default' && e.kind === 'tenant.created' && e.subject_id === 'acme'),
    );
    assert.ok(
      rows.some((e) => e.tenant_id === 'acme' && e.kind === 'token.created' && e.subject_id === acme.tokenId),
    );
  });

  it("the new tenant sees none of the default tenant's keys, sessions or tokens, and makes its own", async () => {
    const mine = (await cluster.sign(defaultKey.id, msg())).body;
    assert.equal(mine.status, 'completed');
    // Nothing of the default tenant is visible.
    assert.deepEqual((await as(acme.token, 'GET', '/v1/keys')).body.items, []);
    assertProblem(
      await as(acme.token, 'GET', `/v1/keys/${defaultKey.id}`),
      404,
      'key_not_found',
      'a default key',
    );
    assert.deepEqual((await as(acme.token, 'GET', '/v1/sessions')).body.items, []);
    assertProblem(await as(acme.token, 'GET', `/v1/sessions/${mine.id}`), 404, 'session_not_found');
    const signWithTheirs = await as(acme.token, 'POST', '/v1/sessions', {
      key_id: defaultKey.id,
      message: msg(),
    });
    assert.equal(signWithTheirs.status, 404, JSON.stringify(signWithTheirs.body));
    const tokens = (await as(acme.token, 'GET', '/v1/tokens')).body.items;
    assert.deepEqual(
      tokens.map((t: { id: string }) => t.id),
      [acme.tokenId],
    );
    // The shared signers are visible (read only) ...
    assert.equal((await as(acme.token, 'GET', '/v1/signers')).body.items.length, 3);
    // ... and serve the new tenant's own key.
    const k = await as(acme.token, 'POST', '/v1/keys', { threshold: 2, label: 'acme key', wait: 30_000 });
    assert.equal(k.status, 201, JSON.stringify(k.body));
    assert.equal(k.body.status, 'active');
    const s = await as(acme.token, 'POST', '/v1/sessions', {
      key_id: k.body.id,
      message: msg(),
      wait: 30_000,
    });
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.deepEqual(
      (await as(acme.token, 'GET', '/v1/keys')).body.items.map((x: { id: string }) => x.id),
      [k.body.id],
    );
    // And the default tenant does not see it.
    assertProblem(
      await cluster.api('GET', `/v1/keys/${k.body.id}`),
      404,
      'key_not_found',
      'acme key from default',
    );
    const defaults = (await cluster.api('GET', '/v1/keys?limit=500')).body.items.map(
      (x: { id: string }) => x.id,
    );
    assert.ok(!defaults.includes(k.body.id));
    // Its admin manages its own tokens.
    const t = await as(acme.token, 'POST', '/v1/tokens', { role: 'requester' });
    assert.equal(t.status, 201);
    const s2 = await as(t.body.token, 'POST', '/v1/sessions', {
      key_id: k.body.id,
      message: msg(),
      wait: 30_000,
    });
    assert.equal(s2.body.status, 'completed');
  });
});

describe('floe tenant create | list', () => {
  async function floe(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const p = spawnFloe(args, { FLOE_URL: cluster.url, FLOE_TOKEN: cluster.adminToken });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('') };
  }

  it('creates a tenant (printing its admin token once) and lists tenants', async () => {
    const c = await floe(['tenant', 'create', '--id', 'cli-tenant', '--name', 'From the CLI', '--json']);
    assert.equal(c.code, 0, c.err);
    const t = JSON.parse(c.out);
    assert.equal(t.id, 'cli-tenant');
    assert.equal(t.name, 'From the CLI');
    assert.match(t.admin_token.token, /^floe_/);
    assert.equal((await as(t.admin_token.token, 'GET', '/v1/keys')).status, 200, 'the token works');

    const text = await floe(['tenant', 'create', '--id', 'cli-text']);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^floe_[0-9a-f]{16}_/m);
    assert.match(text.out, /shown once/);

    const again = await floe(['tenant', 'create', '--id', 'cli-tenant']);
    assert.equal(again.code, 1);
    assert.match(again.err, /conflict/);

    const l = await floe(['tenant', 'list', '--json']);
    assert.equal(l.code, 0, l.err);
    const ids = JSON.parse(l.out).items.map((x: { id: string }) => x.id);
    assert.ok(ids.includes('cli-tenant') && ids.includes('cli-text') && ids.includes('default'), ids.join());
    const table = await floe(['tenant', 'list']);
    assert.match(table.out, /^ID\s+NAME\s+CREATED/m);
    assert.match(table.out, /^cli-tenant\s+From the CLI\s/m);
  });
});
