/**
 * The API explains itself (issue 15, friction 5 and 6): every refusal has a specific code and
 * a hint that names the field and what it expects; a known path with another method is 405
 * with Allow, a body that is not JSON 415; digests are taken in either case, as the CLI takes
 * them. And /openapi.json documents every operation: summary, description, operationId, its
 * responses described (never "Default Response") and its error codes as problem+json.
 * A real coordinator API (buildApi) on a real database, driven by inject.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiToken } from '../../src/coordinator/auth/tokens.js';
import { buildApi } from '../../src/coordinator/http.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { PgBackend } from '../../src/coordinator/pg-backend.js';
import { Coordinator } from '../../src/coordinator/services/index.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/identity.js';
import { REQUEST_EXAMPLES } from '../../src/protocol/api.js';
import { ERROR_TABLE, isErrorCode, PROBLEM_TYPE } from '../../src/protocol/errors.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { assertProblem } from '../helpers/http.js';

/** The x-only key of the generator point: a valid Nostr pubkey. */
const G_X = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';

let t: TestDb;
let coordinator: Coordinator;
let app: FastifyInstance;
let token: string;

const problem = (r: LightMyRequestResponse) => ({ status: r.statusCode, body: r.json(), headers: r.headers });

function call(method: string, url: string, o: { json?: unknown; raw?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  if (o.contentType) headers['content-type'] = o.contentType;
  return app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(o.json !== undefined
      ? { payload: JSON.stringify(o.json) }
      : o.raw !== undefined
        ? { payload: o.raw }
        : {}),
  });
}

/** Every problem: about:blank, the status phrase, a known code of that status, a hint. */
function assertExplained(r: LightMyRequestResponse, status: number, code: string, what: string) {
  const p = problem(r);
  assertProblem(p, status, code, what);
  assert.equal(p.body.type, PROBLEM_TYPE, what);
  assert.ok(isErrorCode(p.body.code), what);
  assert.equal(ERROR_TABLE[p.body.code as keyof typeof ERROR_TABLE].status, status, what);
  assert.equal(typeof p.body.hint, 'string', `${what}: hint`);
  assert.ok(p.body.hint.length > 10, `${what}: a real hint, not ${p.body.hint}`);
  return p.body as { detail: string; hint: string; field?: string; allow?: string[] };
}

before(async () => {
  t = await testDb();
  const backend = new PgBackend(t.db);
  const metrics = new CoordinatorMetrics();
  coordinator = new Coordinator({ backend, identity: softwareIdentity(generateIdentityKey()), metrics });
  app = await buildApi({ coordinator, metrics, jwtSecret: new Uint8Array(32).fill(7) });
  await app.ready();
  await backend.ensureTenant('default', 'default', Date.now());
  token = (await createApiToken(backend, { tenantId: 'default', role: 'admin', now: Date.now() })).token;
});

after(async () => {
  await app?.close();
  await coordinator?.close();
  await t?.cleanup();
});

describe('refusals have a specific code and a hint', () => {
  it('an unknown resource has its own code; an unknown URL is not_found', async () => {
    const cases: [string, string, unknown, string][] = [
      ['GET', '/v1/keys/key_nope', undefined, 'key_not_found'],
      ['PATCH', '/v1/keys/key_nope', { relays: [] }, 'key_not_found'],
      ['POST', '/v1/sessions', { key_id: 'key_nope', message: 'ab'.repeat(32) }, 'key_not_found'],
      ['GET', '/v1/sessions/ses_nope', undefined, 'session_not_found'],
      ['PATCH', '/v1/signers/sig_nope', { clear_faults: true }, 'signer_not_found'],
      ['DELETE', '/v1/tokens/0123456789abcdef', undefined, 'token_not_found'],
      ['PUT', '/v1/keys/key_nope/approval-policy', { approval_policy: null }, 'key_not_found'],
      ['POST', '/v1/keys/key_nope/nip44/encrypt', { pubkey: G_X, plaintext: 'hi' }, 'key_not_found'],
      ['GET', '/v1/nothing-here', undefined, 'not_found'],
      ['GET', '/v2/keys', undefined, 'not_found'],
    ];
    for (const [method, url, json, code] of cases) {
      const b = assertExplained(await call(method, url, json === undefined ? {} : { json }), 404, code, url);
      if (code !== 'not_found') assert.doesNotMatch(b.detail, /endpoint/, url);
    }
  });

  it('a known path with another method is 405 with the methods it takes in Allow', async () => {
    const del = await call('DELETE', '/v1/keys');
    const b = assertExplained(del, 405, 'method_not_allowed', 'DELETE /v1/keys');
    assert.equal(del.headers.allow, 'GET, HEAD, POST');
    assert.deepEqual(b.allow, ['GET', 'HEAD', 'POST']);
    assert.match(b.hint, /GET, HEAD, POST/);
    const put = await call('PUT', '/v1/sessions/ses_abc');
    assertExplained(put, 405, 'method_not_allowed', 'PUT /v1/sessions/:id');
    assert.equal(put.headers.allow, 'GET, HEAD');
    const get = await call('GET', '/v1/sessions/ses_abc/cancel');
    assertExplained(get, 405, 'method_not_allowed', 'GET …/cancel');
    assert.equal(get.headers.allow, 'POST');
    // Also before authentication: the path is in the public OpenAPI document anyway.
    const anon = await app.inject({ method: 'DELETE', url: '/v1/keys' });
    assert.equal(anon.statusCode, 405);
  });

  it('a body that is not JSON is 415, text/plain included', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const r = await call('POST', '/v1/sessions', { raw: 'key_id=k&message=00', contentType });
      const b = assertExplained(r, 415, 'unsupported_media_type', contentType);
      assert.match(b.hint, /application\/json/);
    }
  });

  it('an invalid field is named, with what it expects in words', async () => {
    const bad = async (json: unknown, field: string, hint: RegExp, url = '/v1/sessions') => {
      const b = assertExplained(
        await call('POST', url, { json }),
        400,
        'invalid_request',
        JSON.stringify(json),
      );
      assert.equal(b.field, field);
      assert.match(b.hint, hint, b.hint);
      assert.match(b.detail, new RegExp(field.replace(/[[\].]/g, '\\$&')), b.detail);
      assert.doesNotMatch(`${b.detail} ${b.hint}`, /must match pattern|\^\[/, 'no raw validator text');
      return b;
    };
    const digest =
      /^message: 32 bytes as 64 hex characters \(0-9, a-f, upper case accepted; no 0x prefix\).*floe sign --text/;
    await bad({ key_id: 'key_x', message: `0x${'ab'.repeat(32)}` }, 'message', /drop the 0x prefix/);
    await bad({ key_id: 'key_x', message: 'hello world' }, 'message', digest);
    await bad({ key_id: 'key_x', message: 'ab'.repeat(31) }, 'message', digest);
    await bad(
      { key_id: 'key_x', items: [{ message: 'zz' }] },
      'items[0].message',
      /64 hex characters/,
      '/v1/sessions/batch',
    );
    await bad({ message: 'ab'.repeat(32) }, 'key_id', /^key_id is required: an id: 1 to 64 letters/);
    await bad({ key_id: 'key_x', mesage: 'ab'.repeat(32) }, 'mesage', /key_id, message, .*snake_case/);
    await bad({ threshold: 'two' }, 'threshold', /^threshold: an integer from 2 to 255/, '/v1/keys');
    await bad({ role: 'boss' }, 'role', /^role: one of admin, operator, requester, viewer/, '/v1/tokens');
    const notObject = assertExplained(
      await call('POST', '/v1/sessions', { json: [1] }),
      400,
      'invalid_request',
      'array',
    );
    assert.match(notObject.hint, /JSON object/);
    const query = assertExplained(await call('GET', '/v1/keys?limit=0'), 400, 'invalid_request', 'limit=0');
    assert.equal(query.field, 'limit');
    assert.match(query.detail, /^query parameter limit/);
    assert.match(query.hint, /^limit: an integer from 1 to 500/);
    const empty = assertExplained(
      await call('PATCH', '/v1/keys/key_x', { json: {} }),
      400,
      'invalid_request',
      '{}',
    );
    assert.match(empty.hint, /at least one of relays/);
    const notJson = assertExplained(
      await call('POST', '/v1/sessions', { raw: '{"key_id": ', contentType: 'application/json' }),
      400,
      'invalid_request',
      'truncated JSON',
    );
    assert.match(notJson.hint, /JSON object/);
  });

  it('a digest is taken in upper case, as floe sign --message takes it, and signed in lower case', async () => {
    const upper = 'AB'.repeat(32);
    // Past validation: the key is what is missing, not the form of the digest.
    assertExplained(
      await call('POST', '/v1/sessions', { json: { key_id: 'key_nope', message: upper } }),
      404,
      'key_not_found',
      'upper-case digest',
    );
    assertExplained(
      await call('POST', '/v1/sessions/batch', { json: { key_id: 'key_nope', items: [{ message: upper }] } }),
      404,
      'key_not_found',
      'upper-case digest in a batch',
    );
  });

  it('without a token: 401 with a hint, before the body is looked at', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { message: 'x' } });
    assertExplained(r, 401, 'unauthorized', 'no token');
  });
});

describe('GET /openapi.json', () => {
  const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
  let doc: any;
  before(async () => {
    const r = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(r.statusCode, 200);
    doc = r.json();
  });
  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([m]) => METHODS.includes(m))
        .map(([method, op]) => ({ what: `${method.toUpperCase()} ${path}`, op })),
    );

  it('documents /healthz and /metrics, without a bearer token', () => {
    assert.equal(doc.paths['/healthz'].get.operationId, 'getHealth');
    assert.deepEqual(doc.paths['/healthz'].get.security, []);
    assert.equal(doc.paths['/metrics'].get.operationId, 'getMetrics');
    assert.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain']);
    assert.ok(doc.paths['/v1/keys'].post, 'and the API');
    assert.equal(doc.paths['/docs'], undefined, 'not the UI itself');
  });

  it('every operation has a summary, a description and a unique operationId', () => {
    const ids = new Set<string>();
    const ops = operations();
    assert.ok(ops.length >= 40, `${ops.length} operations`);
    for (const { what, op } of ops) {
      assert.ok(op.summary?.length > 5, `${what}: summary`);
      assert.ok(op.description?.length > 20, `${what}: description`);
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]+$/, `${what}: operationId`);
      assert.ok(!ids.has(op.operationId), `${what}: operationId ${op.operationId} is used twice`);
      ids.add(op.operationId);
    }
  });

  it('every operation that takes a body shows an example, and each example is valid for its schema', () => {
    let bodies = 0;
    for (const { what, op } of operations()) {
      const media = op.requestBody?.content?.['application/json'];
      if (!media) continue;
      bodies++;
      assert.ok(media.example !== undefined, `${what}: an example body`);
    }
    assert.ok(bodies >= 20, `${bodies} operations with a body`);
    for (const [schema, example] of REQUEST_EXAMPLES) {
      assert.ok(
        Value.Check(schema, example),
        `example for ${JSON.stringify(example).slice(0, 80)}: ${[...Value.Errors(schema, example)].map((e) => `${e.path} ${e.message}`).join('; ')}`,
      );
    }
  });

  it('every response is described; error responses are problem+json and list their codes', () => {
    for (const { what, op } of operations()) {
      const statuses = Object.keys(op.responses);
      assert.ok(
        statuses.some((s) => Number(s) < 400),
        `${what}: a success response`,
      );
      assert.ok(
        statuses.some((s) => Number(s) >= 400),
        `${what}: error responses`,
      );
      for (const [status, r] of Object.entries(op.responses as Record<string, any>)) {
        assert.notEqual(r.description, 'Default Response', `${what} ${status}`);
        assert.ok(r.description?.length > 3, `${what} ${status}: description`);
        if (Number(status) < 400) continue;
        assert.deepEqual(Object.keys(r.content ?? {}), ['application/problem+json'], `${what} ${status}`);
        assert.ok(r.content['application/problem+json'].schema.properties.hint, `${what} ${status}: hint`);
        const codes = [...r.description.matchAll(/^- `([a-z0-9_]+)`: /gm)].map((m) => m[1]);
        assert.ok(codes.length > 0, `${what} ${status}: codes`);
        for (const c of codes) {
          assert.ok(isErrorCode(c), `${what} ${status}: ${c} is a code`);
          assert.equal(ERROR_TABLE[c as keyof typeof ERROR_TABLE].status, Number(status), `${what}: ${c}`);
        }
      }
    }
  });

  it('lists the specific codes where they are answered', () => {
    const codesOf = (path: string, method: string, status: number) =>
      doc.paths[path][method].responses[String(status)].description as string;
    assert.match(codesOf('/v1/keys/{id}', 'get', 404), /`key_not_found`/);
    assert.match(codesOf('/v1/sessions', 'post', 404), /`key_not_found`/);
    assert.match(codesOf('/v1/sessions', 'post', 415), /`unsupported_media_type`/);
    assert.match(codesOf('/v1/sessions/{id}', 'get', 404), /`session_not_found`/);
    assert.match(codesOf('/v1/signers/{id}', 'patch', 404), /`signer_not_found`/);
    assert.match(codesOf('/v1/tokens/{id}', 'delete', 404), /`token_not_found`/);
    assert.match(codesOf('/v1/sessions', 'post', 401), /`unauthorized`/);
  });
});
