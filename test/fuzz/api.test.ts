/**
 * Input fuzzing of every coordinator HTTP endpoint with fast-check, against a real cluster
 * (in-process coordinator on PGlite or the Postgres server, three signer processes).
 *
 * Requests start from a valid body and have one to three fields replaced (wrong types, huge
 * values, bad hex, points off the curve, scalars out of range), deleted or added; or they are
 * raw bodies (broken JSON, wrong content type, oversize), odd paths and query strings, bad
 * tokens and headers. For every request: no 5xx; a refusal is problem+json with a stable code;
 * and a refused request changes nothing in the database (every table, compared before and
 * after). A request that happens to be valid may change state; the test then waits until the
 * work it started has settled.
 *
 * Seeds: test/helpers/fuzz-seed.ts (FLOE_FUZZ_SEED, FLOE_FUZZ_PATH, FLOE_FUZZ_SCALE);
 * FLOE_FUZZ_RUNS sets the number of runs (default 200).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { prepareDealerImport } from '../../src/client/dealer-import.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { type FuzzLimits, fuzz, runs, testTimeout } from '../helpers/fuzz-seed.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/until.js';

// No shrinking: every run talks to a live cluster whose state the earlier runs changed. A run
// may wait up to 22.5 s for an accepted write to settle.
const API: FuzzLimits = {
  numRuns: Number(process.env.FLOE_FUZZ_RUNS ?? 200),
  timeLimitMs: 120_000,
  runTimeoutMs: 40_000,
  shrinkMs: 0,
};
const RUNS = runs(API.numRuns);

// ---- values that are wrong in interesting ways

const N = secp256k1.Point.Fn.ORDER;
const P = secp256k1.Point.Fp.ORDER;
const hex = (n: bigint, bytes = 32) => n.toString(16).padStart(bytes * 2, '0');

/** 33-byte compressed encodings that are not points of secp256k1. */
const OFF_CURVE: string[] = (() => {
  const out = [
    `02${hex(P)}`,
    `03${hex(P + 1n)}`,
    `02${'ff'.repeat(32)}`,
    `00${'00'.repeat(32)}`,
    `05${'11'.repeat(32)}`,
  ];
  for (let x = 1n; out.length < 10; x++) {
    try {
      secp256k1.Point.fromHex(`02${hex(x)}`);
    } catch {
      out.push(`02${hex(x)}`);
    }
  }
  return out;
})();

const BAD_SCALARS = [hex(0n), hex(N), hex(N + 1n), 'ff'.repeat(32)];
const VALID_POINT = secp256k1.Point.BASE.toHex(true);

const badHex = fc.oneof(
  fc.constantFrom('', '0', 'abc', 'zz', '0x00', 'GG'.repeat(32), 'AB'.repeat(32), ' 00', '00 '),
  fc.constantFrom(...OFF_CURVE, ...BAD_SCALARS, VALID_POINT, `04${'11'.repeat(64)}`),
  fc.integer({ min: 0, max: 200 }).map((n) => 'a'.repeat(n)),
  fc.uint8Array({ minLength: 0, maxLength: 80 }).map((b) => Buffer.from(b).toString('hex')),
);

const hugeString = fc.integer({ min: 1_000, max: 2_000_000 }).map((n) => 'x'.repeat(n));

const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 2, 255, 256, 1e308, -1e308, 2 ** 53, 2 ** 31, 0.5, '', '0'),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  badHex,
  hugeString,
  fc.array(fc.oneof(fc.integer(), fc.string(), badHex), { maxLength: 300 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string())),
  fc.constant(Array.from({ length: 300 }, (_, i) => i + 1)),
);

// ---- structural mutations of a valid body

type Path = (string | number)[];

function leafPaths(v: unknown, prefix: Path = []): Path[] {
  if (v === null || typeof v !== 'object') return [prefix];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [prefix, ...entries.flatMap(([k, x]) => leafPaths(x, [...prefix, k]))];
}

type Mutation =
  | { kind: 'set'; path: Path; value: unknown }
  | { kind: 'delete'; path: Path }
  | { kind: 'extra'; name: string };

function applyMutations(base: unknown, ms: Mutation[]): unknown {
  let root = structuredClone(base);
  for (const m of ms) {
    if (m.kind === 'extra') {
      if (root && typeof root === 'object' && !Array.isArray(root)) (root as any)[m.name] = 1;
      continue;
    }
    if (m.path.length === 0) {
      if (m.kind === 'set') root = m.value;
      continue;
    }
    let parent: any = root;
    for (const k of m.path.slice(0, -1)) {
      if (parent === null || typeof parent !== 'object') break;
      parent = parent[k];
    }
    if (parent === null || typeof parent !== 'object') continue;
    const last = m.path[m.path.length - 1]!;
    if (m.kind === 'set') parent[last] = m.value;
    else if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  }
  return root;
}

function mutated(base: unknown): fc.Arbitrary<unknown> {
  const paths = leafPaths(base);
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('set' as const),
        path: fc.constantFrom(...paths),
        value: junk,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('delete' as const), path: fc.constantFrom(...paths) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('extra' as const),
        name: fc.string({ minLength: 1, maxLength: 12 }),
      }),
    },
  );
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => applyMutations(base, ms));
}

// ---- requests

interface Req {
  method: string;
  path: string;
  json?: unknown;
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** undefined: the admin token; null: none. */
  token?: string | null;
}

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 300,
});
const pathSegment = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom('', '..', '%', 'key_', 'ses_', 'sig_', 'x'.repeat(65), "'; DROP TABLE keys; --"),
  hugeString.map((s) => s.slice(0, 5000)),
);
const query = fc
  .record(
    {
      limit: fc.oneof(fc.integer({ min: -5, max: 1000 }).map(String), printable),
      cursor: printable,
      status: printable,
      wait: fc.oneof(fc.integer({ min: -1, max: 200_000 }).map(String), printable),
    },
    { requiredKeys: [] },
  )
  .map((q) => new URLSearchParams(q as Record<string, string>).toString());
const badToken = fc.oneof(
  printable,
  fc.constantFrom('floe_', 'floe_x_y', 'Bearer', 'eyJhbGciOiJub25lIn0.e30.', 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA'),
  fc
    .uint8Array({ minLength: 1, maxLength: 64 })
    .map((b) => `floe_${Buffer.from(b).toString('hex')}_${Buffer.from(b).toString('base64url')}`),
);

describe('fuzzing every coordinator endpoint', () => {
  let c: TestCluster;
  let db: PgBackend['db'];
  const bases: Record<string, unknown> = {};
  let adminTokenId: string;
  let keyId: string;
  let sessionId: string;
  let signerIds: string[];

  before(async () => {
    c = await startCluster({
      signers: 3,
      env: {
        // No background jobs between snapshots (one tick at start), no rate limiting.
        FLOE_JOB_INTERVAL_MS: '600000',
        FLOE_RATE_LIMIT_PER_S: '100000',
        FLOE_RATE_LIMIT_BURST: '100000',
      },
    });
    db = (c.coordinator!.backend as PgBackend).db;
    signerIds = await c.registerSigners();
    const key = await c.createKey(2, signerIds);
    keyId = key.id;
    const s = await c.sign(keyId, randomBytes(32).toString('hex'));
    assert.equal(s.body.status, 'completed');
    sessionId = s.body.id;
    adminTokenId = c.adminToken.split('_')[1]!;
    const requester = await c.api('POST', '/v1/tokens', { role: 'requester', label: 'fuzz' });
    const pair = await c.api('POST', '/v1/auth/token', { token: requester.body.token });
    const members = key.members.map((m: any) => ({ id: m.signer_id, identity: m.identity }));
    bases.importKey = prepareDealerImport({
      secret: secp256k1.utils.randomSecretKey(),
      threshold: 2,
      signers: members,
      keyId: `key_fuzz${randomBytes(6).toString('hex')}`,
    }).body;
    bases.authToken = { token: requester.body.token };
    bases.refresh = { refresh_token: pair.body.refresh_token };
    bases.createToken = { role: 'viewer', label: 'x', ttl_s: 3600 };
    bases.createKey = { threshold: 2, signers: signerIds, label: 'fuzz' };
    bases.createSession = { key_id: keyId, message: randomBytes(32).toString('hex') };
    // Port 9 on loopback: nothing listens, so a registration that happens to be valid fails its probe fast.
    bases.registerSigner = {
      url: 'http://127.0.0.1:9',
      identity: randomBytes(32).toString('hex'),
      name: 'fuzz',
    };
    bases.updateSigner = { quarantine_override: false, clear_faults: true };
  });
  after(() => c?.close());

  /** Every table, as the owner sees it (no RLS), minus columns that reads legitimately touch. */
  async function snapshot(): Promise<Record<string, string>> {
    const tables = await db.adminQuery<{ t: string }>(
      // Rate-limit counters count every request, refused or not: not state a request may change.
      "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'rate_limits' ORDER BY 1",
    );
    const out: Record<string, string> = {};
    for (const { t } of tables.rows) {
      const r = await db.adminQuery<{ n: number; h: string }>(
        `SELECT count(*)::int AS n, md5(coalesce(string_agg(j, '|' ORDER BY j), '')) AS h
           FROM (SELECT (to_jsonb(x) - '{last_used_at,last_seen_at,last_latency_ms}'::text[])::text AS j FROM "${t}" x) s`,
      );
      out[t] = `${r.rows[0]!.n}:${r.rows[0]!.h}`;
    }
    return out;
  }

  /** Wait until what a valid request started (a ceremony, a session) stops changing the database. */
  async function settle(): Promise<void> {
    let prev = JSON.stringify(await snapshot());
    let since = Date.now();
    await until(
      'the database to stay unchanged for 300 ms after an accepted write',
      async () => {
        const next = JSON.stringify(await snapshot());
        if (next !== prev) [prev, since] = [next, Date.now()];
        return Date.now() - since >= 300;
      },
      22_500,
    );
  }

  function requests(): fc.Arbitrary<Req> {
    const id = fc.oneof(pathSegment, fc.constantFrom(keyId, sessionId, ...signerIds));
    const enc = (s: string) => encodeURIComponent(s) || '%20';
    const tokenIds = pathSegment.filter((s) => s !== adminTokenId);
    const body = (method: string, path: string, base: unknown): fc.Arbitrary<Req> =>
      mutated(base).map((json) => ({ method, path, json }));
    return fc.oneof(
      body('POST', '/v1/auth/token', bases.authToken).map((r) => ({ ...r, token: null })),
      body('POST', '/v1/auth/refresh', bases.refresh).map((r) => ({ ...r, token: null })),
      body('POST', '/v1/tokens', bases.createToken),
      tokenIds.map((t) => ({ method: 'DELETE', path: `/v1/tokens/${enc(t)}` })),
      body('POST', '/v1/keys', bases.createKey),
      body('POST', '/v1/keys/import', bases.importKey),
      query.map((q) => ({ method: 'GET', path: `/v1/keys?${q}` })),
      id.map((k) => ({ method: 'GET', path: `/v1/keys/${enc(k)}` })),
      fc
        .tuple(body('POST', '/v1/sessions', bases.createSession), fc.option(printable, { nil: undefined }))
        .map(([r, idem]) => ({
          ...r,
          ...(idem === undefined ? {} : { headers: { 'idempotency-key': idem } }),
        })),
      query.map((q) => ({ method: 'GET', path: `/v1/sessions?${q}` })),
      fc.tuple(id, query).map(([s, q]) => ({ method: 'GET', path: `/v1/sessions/${enc(s)}?${q}` })),
      id.map((s) => ({ method: 'POST', path: `/v1/sessions/${enc(s)}/cancel` })),
      body('POST', '/v1/signers', bases.registerSigner),
      fc
        .tuple(id, mutated(bases.updateSigner))
        .map(([s, json]) => ({ method: 'PATCH', path: `/v1/signers/${enc(s)}`, json })),
      // Raw bodies on every body-taking endpoint.
      fc
        .tuple(
          fc.constantFrom(
            '/v1/auth/token',
            '/v1/auth/refresh',
            '/v1/tokens',
            '/v1/keys',
            '/v1/keys/import',
            '/v1/sessions',
            '/v1/signers',
          ),
          fc.oneof(
            fc.string({ maxLength: 200 }),
            fc.constantFrom(
              '{',
              '{"a":',
              '[]',
              'null',
              '1',
              '"x"',
              '{"__proto__":{"x":1}}',
              '{"constructor":{"prototype":{}}}',
            ),
            hugeString.map((s) => `{"label":"${s}"}`),
            fc.jsonValue().map((v) => JSON.stringify(v)),
          ),
          fc.constantFrom(
            'application/json',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json; charset=latin1',
          ),
        )
        .map(([path, raw, contentType]) => ({ method: 'POST', path, raw, contentType })),
      // Anonymous or bad bearer tokens on every authenticated endpoint.
      fc
        .tuple(
          fc.constantFrom(
            ['GET', '/v1/keys'],
            ['POST', '/v1/keys'],
            ['GET', '/v1/sessions'],
            ['POST', '/v1/sessions'],
            ['GET', '/v1/signers'],
            ['POST', '/v1/signers'],
            ['POST', '/v1/tokens'],
            ['GET', '/v1/tokens'],
          ),
          fc.option(badToken, { nil: null }),
        )
        .map(([[method, path], token]) => ({
          method: method!,
          path: path!,
          token,
          json: method === 'POST' ? bases.createKey : undefined,
        })),
    );
  }

  it('no 5xx, refusals are problem+json with a code, and a refused request changes nothing', {
    timeout: testTimeout(API),
  }, async (t) => {
    let refused = 0;
    let accepted = 0;
    const codes = new Map<string, number>();
    await fuzz(
      t,
      fc.asyncProperty(requests(), async (req) => {
        // A mutation can make a body cyclic (a value set inside itself): no client can send
        // that as JSON, so it is not a request the API can get.
        try {
          JSON.stringify(req.json);
        } catch {
          return;
        }
        const before = await snapshot();
        const token = req.token === undefined ? c.adminToken : (req.token ?? undefined);
        const r = await request(c.url, req.method, req.path, {
          ...(token ? { token } : {}),
          ...(req.json !== undefined ? { json: req.json } : {}),
          ...(req.raw !== undefined ? { raw: req.raw, contentType: req.contentType! } : {}),
          ...(req.headers ? { headers: req.headers } : {}),
        });
        const what = `${req.method} ${req.path.slice(0, 200)} → ${r.status} ${r.text.slice(0, 300)}`;
        assert.ok(r.status < 500, what);
        if (r.status >= 400) {
          refused++;
          assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
          assert.match(String(r.body?.code), /^[a-z_]+$/, what);
          codes.set(r.body.code, (codes.get(r.body.code) ?? 0) + 1);
          const now = await snapshot();
          if (req.path === '/v1/auth/refresh' && r.status === 401) {
            // By design: replaying a spent refresh token revokes its whole family (and nothing else).
            const [a, b] = [{ ...now }, { ...before }];
            assert.equal(a.refresh_tokens!.split(':')[0], b.refresh_tokens!.split(':')[0], what);
            delete a.refresh_tokens;
            delete b.refresh_tokens;
            assert.deepEqual(a, b, `refused refresh changed more than its family: ${what}`);
          } else if (req.path === '/v1/keys/import' && r.body.code === 'import_failed') {
            // By design: an import the signers refused was attempted, and is recorded as such
            // (a failed key row and its audit events); nothing else changes.
            const [a, b] = [{ ...now }, { ...before }];
            for (const t of ['keys', 'audit_events']) {
              delete a[t];
              delete b[t];
            }
            assert.deepEqual(a, b, `a refused import changed more than its own record: ${what}`);
          } else {
            assert.deepEqual(now, before, `refused request changed the database: ${what}`);
          }
        } else if (req.method === 'GET') {
          assert.deepEqual(await snapshot(), before, `a read changed the database: ${what}`);
        } else {
          accepted++;
          await settle();
        }
      }),
      API,
    );
    t.diagnostic(`${refused} refused, ${accepted} writes accepted; codes ${JSON.stringify([...codes])}`);
    // The fuzzer must reach past authentication and the schemas, into the handlers.
    assert.ok(refused > RUNS / 2, `mostly refusals (${refused} of ${RUNS}; ${accepted} writes accepted)`);
    assert.ok(codes.size >= 4, `several refusal codes: ${JSON.stringify([...codes])}`);
    const health = await request(c.url, 'GET', '/healthz');
    assert.equal(health.status, 200);
    // The cluster still signs.
    const s = await c.sign(keyId, randomBytes(32).toString('hex'));
    assert.ok(['completed', 'failed'].includes(s.body.status), JSON.stringify(s.body));
  });

  it('router-level refusals (too long a path parameter, a broken URL) are problem+json too', async () => {
    for (const [path, status, code] of [
      [`/v1/sessions/${'x'.repeat(5000)}/cancel`, 414, 'uri_too_long'],
      [`/v1/keys/${'k'.repeat(2000)}`, 414, 'uri_too_long'],
      ['/v1/keys/%E0%A4%A', 400, 'invalid_request'],
    ] as const) {
      const r = await request(c.url, path.includes('cancel') ? 'POST' : 'GET', path, { token: c.adminToken });
      assert.equal(r.status, status, `${path.slice(0, 40)} → ${r.status} ${r.text.slice(0, 200)}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(r.body.code, code);
    }
  });

  it('deep refusals: off-curve points and out-of-range values inside an import are refused, not crashed on', async () => {
    const base = bases.importKey as any;
    for (const bad of OFF_CURVE) {
      for (const path of [
        ['public_key_package', 'commitments', 0],
        ['public_key_package', 'verifying_shares', '1'],
      ] as Path[]) {
        const before = await snapshot();
        // A key id of its own: the random fuzzing above may already have imported (or failed to
        // import) the base key id, and a taken id is refused (409) before the points are looked at.
        const fresh = `key_deep${randomBytes(6).toString('hex')}`;
        const json = applyMutations(base, [
          { kind: 'set', path, value: bad },
          { kind: 'set', path: ['key_id'], value: fresh },
        ]);
        const r = await c.api('POST', '/v1/keys/import', json);
        assert.equal(r.status, 400, `${path.join('.')}=${bad} → ${r.status} ${JSON.stringify(r.body)}`);
        assert.deepEqual(await snapshot(), before);
      }
    }
    for (const bad of BAD_SCALARS) {
      const json = applyMutations(base, [{ kind: 'set', path: ['sealed_shares', 0, 'sender'], value: bad }]);
      const r = await c.api('POST', '/v1/keys/import', json);
      assert.ok(r.status >= 400 && r.status < 500, `sender=${bad} → ${r.status}`);
    }
  });
});
