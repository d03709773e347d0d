/**
 * Input fuzzing (fast-check) of every message a signer node accepts over HTTP, and of the
 * envelope layer in front of them, against three in-process signers with real SQLite stores.
 *
 * Bodies start from a VALID request of each type (a live DKG ceremony at the right round, a
 * held key, a live signing attempt) and get one to three mutations: a field replaced by a
 * value of the same kind but wrong (a point off the curve or at infinity, a scalar >= n or 0,
 * hex of another length or with a flipped nibble, identifiers 0 / 256 / duplicated, numbers
 * like -1, 2^53 or 1e308, ~100 kB strings, ids of other live objects), by junk of another
 * type, deleted, added, arrays reordered / shortened / duplicated / blown up, or a
 * message-specific change that passes the schema and reaches deep validation (a sealed share
 * that opens to a wrong scalar, an altered own commitment, a re-derived attempt_id, ...).
 * The envelope property sends raw bodies and headers: broken JSON, wrong top-level types,
 * truncations, forged or garbled signatures, wrong recipient / type / time, replays.
 *
 * Every request: no 5xx; a refusal is a signed RFC 9457 problem with a stable code whose
 * status matches the code table; the node still answers /healthz; and a refused request
 * changes nothing (row counts and content hashes of every SQLite table, read through a
 * separate read-only connection, and the live attempts / ceremonies / keys gauges of
 * /metrics), except the documented fail-closed refusals that end a DKG ceremony
 * (`dkg_failed` in round 3, `certification_mismatch`), which may drop exactly that ceremony
 * and its pending key. Live objects are also probed after refusals: a live signing attempt
 * re-opens with the same commitments, and is then signed (the aggregate verifies under
 * BIP-340); a DKG ceremony that saw refusals still completes and is certified by everyone.
 *
 * FLOE_FUZZ_SEED fixes the seed (printed as a test diagnostic and by fast-check on failure);
 * FLOE_FUZZ_SCALE multiplies the number of runs; FLOE_FUZZ_SHRINK_MS bounds shrinking (below).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import {
  aggregate,
  dkgRound1 as cryptoDkgRound1,
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  encodeDkgRound1,
  encodePublicKeyPackage,
  fromHex,
  generateIdentityKey,
  groupPublicKey,
  identityPublicKey,
  type PublicKeyPackage,
  sealBox,
  toHex,
  verifySignature,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { ERROR_STATUS, FloeError, isErrorCode } from '../../src/protocol/errors.js';
import { acceptResponse } from '../../src/protocol/exchange.js';
import {
  type RequestOf,
  type ResponseOf,
  SIGNER_MESSAGES,
  type SignerMessageName,
} from '../../src/protocol/messages/index.js';
import { DKG_BOX_INFO, dkgBoxAad, IMPORT_BOX_INFO, importBoxAad } from '../../src/protocol/transcript.js';
import { attemptIdHex } from '../../src/signer/engine.js';
import { type RunningSigner, startSigner } from '../../src/signer/node.js';
import { dkgOver, importOver } from '../helpers/drive.js';

const SEED = Number(process.env.FLOE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const SCALE = Number(process.env.FLOE_FUZZ_SCALE ?? 1);
const SHRINK_MS = Number(process.env.FLOE_FUZZ_SHRINK_MS ?? 20_000);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const PASS = 'correct horse battery staple';

const coordinator = generateIdentityKey();
const coordinatorPub = toHex(identityPublicKey(coordinator));
const stranger = generateIdentityKey();

// ------------------------------------------------------------------------------------------
// Values that are wrong in interesting ways

const N = secp256k1.Point.Fn.ORDER;
const P = secp256k1.Point.Fp.ORDER;
const hexN = (n: bigint, bytes = 32) => n.toString(16).padStart(bytes * 2, '0');

/** 33-byte compressed encodings that are not points of secp256k1 (x with no curve point, x >= p). */
const OFF_CURVE: string[] = (() => {
  const out = [`02${hexN(P)}`, `03${hexN(P + 1n)}`, `02${'ff'.repeat(32)}`];
  for (let x = 1n; out.length < 12; x++) {
    try {
      secp256k1.Point.fromHex(`02${hexN(x)}`);
    } catch {
      out.push(`02${hexN(x)}`, `03${hexN(x)}`);
    }
  }
  return out;
})();
/** Encodings of the point at infinity (SEC1 `00`, also padded; x = 0 has no point) and the uncompressed prefix. */
const INFINITY = [
  '00',
  `00${'00'.repeat(32)}`,
  `02${'00'.repeat(32)}`,
  `03${'00'.repeat(32)}`,
  `04${'00'.repeat(64)}`,
];
/** 32-byte values that are not scalars: 0 (where a non-zero one is needed), n, n + 1, p, 2^256 - 1. */
const BAD_SCALARS = [hexN(0n), hexN(N), hexN(N + 1n), hexN(P), 'ff'.repeat(32)];
const scalarFrom = (salt: Uint8Array) => (BigInt(`0x${toHex(salt.subarray(0, 32)) || '01'}`) % (N - 1n)) + 1n;
const pointFrom = (salt: Uint8Array) => secp256k1.Point.BASE.multiply(scalarFrom(salt)).toHex(true);
const bytesFrom = (salt: Uint8Array, n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (salt[i % salt.length]! + i * 31) & 0xff;
  return out;
};
const rid = (prefix: string) => `${prefix}-${toHex(randomBytes(5))}`;

/** A ~100 kB (or other size) string, shown by its size in counterexamples. */
class Huge {
  constructor(
    readonly size: number,
    readonly unit: string,
  ) {}
  value(): string {
    return this.unit.repeat(Math.ceil(this.size / this.unit.length)).slice(0, this.size);
  }
  [fc.toStringMethod](): string {
    return `Huge(${this.size}, ${JSON.stringify(this.unit)})`;
  }
}
const materialize = (x: unknown): unknown => (x instanceof Huge ? x.value() : x);

const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1,
    2,
    255,
    256,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 32,
    0.5,
  ),
  fc.constantFrom('', '0', '00', 'zz', 'null', '{}', '[]', '\u0000', 'é', ...OFF_CURVE.slice(0, 3)),
  fc.constantFrom(...INFINITY, ...BAD_SCALARS),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.uint8Array({ maxLength: 70 }).map((b) => toHex(b)),
  fc
    .tuple(fc.integer({ min: 1000, max: 100_000 }), fc.constantFrom('x', 'ab', '0', 'é'))
    .map(([n, u]) => new Huge(n, u)),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 300 }), fc.string({ maxLength: 8 })), { maxLength: 20 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), {
    maxKeys: 4,
  }),
  fc.constant({}),
  fc.constant([]),
);

// ------------------------------------------------------------------------------------------
// Structural mutations of a valid body

type Seg = string | number;
type Body = any;

interface Mut {
  kind: 'tweak' | 'junk' | 'delete' | 'add' | 'array' | 'domain';
  at: number;
  pick: number;
  salt: Uint8Array;
  junk: unknown;
  key: string;
}

const mutArb: fc.Arbitrary<Mut> = fc.record({
  kind: fc.oneof(
    { weight: 5, arbitrary: fc.constant('tweak' as const) },
    { weight: 2, arbitrary: fc.constant('junk' as const) },
    { weight: 1, arbitrary: fc.constant('delete' as const) },
    { weight: 1, arbitrary: fc.constant('add' as const) },
    { weight: 2, arbitrary: fc.constant('array' as const) },
    { weight: 5, arbitrary: fc.constant('domain' as const) },
  ),
  at: fc.nat({ max: 1023 }),
  pick: fc.nat({ max: 1023 }),
  salt: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  junk: junkArb,
  key: fc.constantFrom(
    'extra',
    '__proto__',
    'constructor',
    'v',
    'type',
    'sig',
    '',
    'identifier',
    'x'.repeat(200),
  ),
});
const mutsArb = fc.array(mutArb, { minLength: 1, maxLength: 3 });
/** Several mutated requests in a row against one fixture. */
const seqArb = fc.array(mutsArb, { minLength: 1, maxLength: 4 });

function paths(v: Body, p: Seg[] = [], out: Seg[][] = []): Seg[][] {
  out.push(p);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, [...p, i], out);
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k], [...p, k], out);
  return out;
}
function getAt(root: Body, p: Seg[]): Body {
  return p.reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), root);
}
/** Own property assignment (so `__proto__` becomes a JSON member, not a prototype). */
function put(o: Body, k: Seg, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
function setAt(root: Body, p: Seg[], v: unknown): Body {
  if (p.length === 0) return v;
  put(getAt(root, p.slice(0, -1)), p[p.length - 1]!, v);
  return root;
}

interface Ctx {
  /** Ids of live or existing objects (keys, sessions, ceremonies) a string may be replaced by. */
  ids: string[];
}

function tweak(v: unknown, m: Mut, ctx: Ctx): unknown {
  const { pick, salt } = m;
  const choose = (opts: (() => unknown)[]) => opts[pick % opts.length]!();
  if (typeof v === 'string' && v.length >= 2 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v)) {
    const flip = () => {
      const i = salt[0]! % v.length;
      return (
        v.slice(0, i) +
        ((Number.parseInt(v[i]!, 16) ^ (1 + (salt[1]! % 15))) & 15).toString(16) +
        v.slice(i + 1)
      );
    };
    const opts: (() => unknown)[] = [
      flip,
      () => v.slice(0, -1),
      () => `${v}00`,
      () => v.slice(0, -2),
      () => v.toUpperCase(),
      () => `${v.slice(0, 2)}zz${v.slice(4)}`,
      () => '',
      () => `0x${v}`,
      () => ` ${v}`,
      () => 'ab'.repeat(50_000),
      () => toHex(bytesFrom(salt, v.length / 2)),
    ];
    if (v.length === 66) {
      opts.push(
        () => OFF_CURVE[salt[2]! % OFF_CURVE.length],
        () => OFF_CURVE[salt[3]! % OFF_CURVE.length],
        () => INFINITY[salt[4]! % INFINITY.length],
        () => pointFrom(salt),
        () => `${v.startsWith('02') ? '03' : '02'}${v.slice(2)}`,
        () => `04${v.slice(2)}`,
      );
    }
    if (v.length === 64) {
      opts.push(
        () => BAD_SCALARS[salt[2]! % BAD_SCALARS.length],
        () => hexN(scalarFrom(salt)),
        () => OFF_CURVE[salt[3]! % OFF_CURVE.length]!.slice(2),
      );
    }
    if (v.length === 128)
      opts.push(
        () => `${hexN(P)}${v.slice(64)}`,
        () => `${v.slice(0, 64)}${hexN(N)}`,
      );
    return choose(opts);
  }
  if (typeof v === 'string') {
    return choose([
      () => '',
      () => 'x'.repeat(65),
      () => `${v}é`,
      () => `${v} x`,
      () => `${v}\u0000`,
      () => v.toUpperCase(),
      () => 'x'.repeat(100_000),
      () => `${v}x`,
      () => ctx.ids[salt[5]! % Math.max(1, ctx.ids.length)] ?? v,
      () => ctx.ids[salt[6]! % Math.max(1, ctx.ids.length)] ?? v,
    ]);
  }
  if (typeof v === 'number') {
    return choose([
      () => v + 1,
      () => v - 1,
      () => 0,
      () => -1,
      () => 256,
      () => 255,
      () => 1e308,
      () => -1e308,
      () => 2 ** 53,
      () => 2 ** 53 + 2,
      () => 0.5,
      () => v + 0.5,
      () => 1_000_001,
      () => 2 ** 32,
      () => `${v}`,
      () => null,
      () => v * 1000,
    ]);
  }
  if (typeof v === 'boolean') return choose([() => !v, () => `${v}`, () => 0]);
  if (v === null || v === undefined) return choose([() => 0, () => '', () => ({})]);
  if (Array.isArray(v)) {
    return choose([
      () => [],
      () => v.slice(0, 1),
      () => [...v, ...v],
      () => 'x',
      () => ({}),
      () => Array.from({ length: 300 }, () => structuredClone(v[0] ?? 1)),
    ]);
  }
  return choose([() => ({}), () => [], () => null, () => 'x', () => 1]);
}

function arrayOp(root: Body, p: Seg[], m: Mut): Body {
  // The array at p or the nearest enclosing one.
  let q = p;
  while (q.length > 0 && !Array.isArray(getAt(root, q))) q = q.slice(0, -1);
  const a = getAt(root, q);
  if (!Array.isArray(a)) return root;
  const i = a.length ? m.salt[0]! % a.length : 0;
  const j = a.length ? m.salt[1]! % a.length : 0;
  const b = [...a];
  switch (m.pick % 7) {
    case 0:
      if (a.length) b.splice(i + 1, 0, structuredClone(a[i]));
      break;
    case 1:
      b.splice(i, 1);
      break;
    case 2:
      b.reverse();
      break;
    case 3:
      b.length = 0;
      break;
    case 4:
      [b[i], b[j]] = [b[j], b[i]];
      break;
    case 5: {
      // Just over the body limit at most: enough copies to hit every count limit.
      const each = JSON.stringify(a[0] ?? 1).length + 1;
      const count = Math.min(300, Math.floor(600_000 / each) + 1);
      for (let k = b.length; k < count; k++) b.push(structuredClone(a[k % Math.max(1, a.length)] ?? 1));
      break;
    }
    default:
      if (a.length) b[i] = structuredClone(a[j]);
  }
  return setAt(root, q, b);
}

type DomainOp = (b: Body, m: Mut) => Body | Promise<Body>;

async function mutate(valid: Body, muts: Mut[], ctx: Ctx, domain: DomainOp[]): Promise<Body> {
  let body: Body = structuredClone(valid);
  for (const m of muts) {
    const all = body === undefined ? [[]] : paths(body);
    const p = all[m.at % all.length]!;
    switch (m.kind) {
      case 'tweak':
        body = setAt(body, p, tweak(getAt(body, p), m, ctx));
        break;
      case 'junk':
        body = setAt(body, p, materialize(m.junk));
        break;
      case 'delete':
        if (p.length === 0) body = undefined;
        else {
          const parent = getAt(body, p.slice(0, -1));
          if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
          else delete parent[p[p.length - 1]!];
        }
        break;
      case 'add': {
        let q = p;
        while (q.length > 0 && (getAt(body, q) === null || typeof getAt(body, q) !== 'object'))
          q = q.slice(0, -1);
        const t = getAt(body, q);
        if (Array.isArray(t)) t.push(materialize(m.junk));
        else if (t !== null && typeof t === 'object') put(t, m.key, materialize(m.junk));
        else body = { [m.key]: materialize(m.junk) };
        break;
      }
      case 'array':
        body = arrayOp(body, p, m);
        break;
      case 'domain':
        if (!domain.length) body = setAt(body, p, tweak(getAt(body, p), m, ctx));
        else {
          try {
            body = await domain[m.pick % domain.length]!(body, m);
          } catch {
            // an earlier mutation already broke the shape this change needs
          }
        }
        break;
    }
  }
  return body;
}

// ------------------------------------------------------------------------------------------
// State snapshots

type Db = {
  prepare(sql: string): { all(...p: unknown[]): unknown[] };
  close(): void;
};
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  o: { readonly: boolean; fileMustExist: boolean },
) => Db;

interface Snapshot {
  tables: Record<string, { rows: number; sha256: string }>;
  /** key_id → `status:sha256 of the row`, to describe the one change a terminal DKG refusal may make. */
  keys: Record<string, string>;
  live_attempts: number;
  live_ceremonies: number;
  keys_gauge: number;
}

// ------------------------------------------------------------------------------------------

describe('signer message fuzzing (fast-check, real SQLite stores)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-fuzz-signer-'));
  let nodes: RunningSigner[] = [];
  let clients: SignerClient[] = [];
  let T: RunningSigner; // the node under fuzz (identifier 1 in every key and ceremony)
  let db: Db;
  let identities: Uint8Array[] = [];
  const keys: Record<string, PublicKeyPackage> = {};
  let exchanges = 0;

  before(async () => {
    nodes = await Promise.all(
      [1, 2, 3].map((i) =>
        startSigner(
          {
            data_dir: join(dir, `s${i}`),
            listen: '127.0.0.1:0',
            coordinators: [coordinatorPub],
            max_live_attempts: 1024,
            attempt_ttl_s: 600,
            log_level: 'fatal',
          },
          { FLOE_SIGNER_PASSPHRASE: PASS },
          { scryptN: 1 << 12, logger: false },
        ),
      ),
    );
    T = nodes[0]!;
    clients = nodes.map(
      (n) => new SignerClient({ url: n.url, signerIdentity: n.identityPub, identity: coordinator }),
    );
    identities = nodes.map((n) => n.store.getIdentity()!);
    db = new Database(T.store.path, { readonly: true, fileMustExist: true });
    keys['k-dkg'] = await dkgOver(clients, 2, 'k-dkg');
    keys['k-imp'] = (await importOver(clients, 2, 'k-imp')).pub;
  });

  after(async () => {
    db?.close();
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Shrinking re-runs the whole scenario (DKG ceremonies, signings) for every candidate, which
   * can take minutes. After the first failure, shrinking gets FLOE_FUZZ_SHRINK_MS (default 20 s):
   * then every further candidate passes at once, so fast-check reports the smallest
   * counterexample found so far (with its seed and path, to replay it).
   */
  function budget<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
    let failedAt: number | undefined;
    return async (...a: A) => {
      if (failedAt !== undefined && performance.now() - failedAt > SHRINK_MS) return;
      try {
        await fn(...a);
      } catch (e) {
        failedAt ??= performance.now();
        throw e;
      }
    };
  }

  const fcOptions = (numRuns: number) => ({ numRuns, seed: SEED, includeErrorInReport: true });

  async function metrics(): Promise<{ live_attempts: number; live_ceremonies: number; keys_gauge: number }> {
    const text = await (await fetch(`${T.url}/metrics`)).text();
    const g = (name: string) => {
      const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
      assert.ok(m, `gauge ${name} in /metrics`);
      return Number(m[1]);
    };
    return {
      live_attempts: g('floe_signer_live_attempts'),
      live_ceremonies: g('floe_signer_live_ceremonies'),
      keys_gauge: g('floe_signer_keys'),
    };
  }

  async function snapshot(): Promise<Snapshot> {
    const tables: Snapshot['tables'] = {};
    const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[];
    for (const { name } of names) {
      const rows = db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all();
      const h = createHash('sha256');
      for (const r of rows)
        h.update(JSON.stringify(r, (_k, v) => (Buffer.isBuffer(v) ? `b:${v.toString('hex')}` : v)));
      tables[name] = { rows: rows.length, sha256: h.digest('hex') };
    }
    const keyRows = db.prepare('SELECT * FROM keys ORDER BY key_id').all() as {
      key_id: string;
      status: string;
      sealed: Buffer;
    }[];
    const rowHash = (r: { sealed: Buffer }) =>
      createHash('sha256')
        .update(JSON.stringify({ ...r, sealed: r.sealed.toString('hex') }))
        .digest('hex');
    return {
      tables,
      keys: Object.fromEntries(keyRows.map((r) => [r.key_id, `${r.status}:${rowHash(r)}`])),
      ...(await metrics()),
    };
  }

  async function healthy(): Promise<void> {
    const res = await fetch(`${T.url}/healthz`);
    assert.equal(res.status, 200, 'the node still serves /healthz');
    await res.body?.cancel();
  }

  interface Answer {
    status: number;
    code?: string;
    text: string;
    /** Parsed response when accepted. */
    ok?: any;
  }

  /** A refusal must be an RFC 9457 problem with a stable code, never a 5xx. */
  function checkShape(status: number, contentType: string, text: string, what: string): string | undefined {
    assert.ok(status < 500, `${what}: HTTP ${status} (${text.slice(0, 200)})`);
    if (status === 200) return undefined;
    assert.ok(status >= 400, `${what}: HTTP ${status}`);
    assert.match(contentType, /^application\/problem\+json/, `${what}: problem content type`);
    const p = JSON.parse(text) as Record<string, unknown>;
    assert.ok(isErrorCode(p.code), `${what}: stable code, got ${String(p.code)}`);
    assert.notEqual(p.code, 'internal', what);
    assert.equal(p.status, status, `${what}: problem status`);
    assert.equal(ERROR_STATUS[p.code], status, `${what}: status of ${p.code}`);
    assert.equal(p.type, `https://floe.dev/errors/${p.code}`, what);
    assert.equal(typeof p.title, 'string', what);
    assert.equal(typeof p.detail, 'string', what);
    return p.code;
  }

  /** Send `body` (any JSON value; undefined: empty body) in a valid envelope to the node under test. */
  async function send(name: SignerMessageName, body: Body): Promise<Answer> {
    exchanges++;
    const spec = SIGNER_MESSAGES[name];
    const text = body === undefined ? '' : JSON.stringify(body);
    const env = sealEnvelope({
      identity: coordinator,
      from: coordinatorPub,
      to: T.identityPub,
      type: spec.type,
      body: text,
      now: Date.now(),
    });
    const res = await fetch(`${T.url}${spec.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ENVELOPE_HEADER]: encodeEnvelope(env) },
      body: text,
    });
    const out = await res.text();
    const code = checkShape(res.status, res.headers.get('content-type') ?? '', out, spec.type);
    if (res.status === 413) return { status: res.status, code: code!, text: out };
    // Every answer to a well-formed envelope is signed by the node and bound to the request.
    try {
      const ok = acceptResponse(
        spec,
        { status: res.status, envelope: res.headers.get(ENVELOPE_HEADER) ?? undefined, text: out },
        { self: coordinatorPub, peer: T.identityPub, re: env.nonce, now: Date.now() },
      );
      assert.equal(res.status, 200);
      return { status: 200, text: out, ok };
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof FloeError, `${spec.type}: unexpected ${String(e)}`);
      assert.equal(e.code, code, `${spec.type}: the refusal is signed and bound (${e.code})`);
      return { status: res.status, code: code!, text: out };
    }
  }

  function assertUnchanged(before: Snapshot, after: Snapshot, what: string): void {
    assert.deepStrictEqual(after, before, `${what}: a refused request changed the signer's state`);
  }

  /** A fail-closed DKG refusal may drop exactly one ceremony and that ceremony's pending key. */
  function assertCeremonyDropped(before: Snapshot, after: Snapshot, keyId: string, what: string): void {
    assert.equal(after.live_ceremonies, before.live_ceremonies - 1, `${what}: the ceremony is dropped`);
    assert.equal(after.live_attempts, before.live_attempts, what);
    const expected = { ...before.keys };
    if (expected[keyId]?.startsWith('pending:')) delete expected[keyId];
    assert.deepStrictEqual(after.keys, expected, `${what}: only the ceremony's pending key may go`);
    for (const [t, v] of Object.entries(before.tables)) {
      if (t !== 'keys') assert.deepStrictEqual(after.tables[t], v, `${what}: table ${t} changed`);
    }
  }

  /** One fuzzed request with the common checks; returns the answer and both snapshots. */
  async function fuzzOne(name: SignerMessageName, body: Body) {
    const before = await snapshot();
    const r = await send(name, body);
    await healthy();
    const after = await snapshot();
    return { r, before, after };
  }

  // ----------------------------------------------------------------------------------------
  // Fixtures

  const participants = () => nodes.map((n, i) => ({ identifier: i + 1, identity: n.identityPub }));

  interface Ceremony {
    id: string;
    /** Members: the first n nodes. */
    n: number;
    keyId: string;
    round1Req: RequestOf<'dkgRound1'>[];
    round1?: ResponseOf<'dkgRound1'>[];
    round2?: ResponseOf<'dkgRound2'>[];
    round3?: ResponseOf<'dkgRound3'>[];
  }

  const round2Body = (c: Ceremony): RequestOf<'dkgRound2'> => ({
    ceremony_id: c.id,
    round1: c.round1!.map((r) => r.round1),
  });
  const round3Body = (c: Ceremony, i: number): RequestOf<'dkgRound3'> => ({
    ceremony_id: c.id,
    boxes: c.round2!.flatMap((r) =>
      r.boxes.filter((b) => b.receiver === i + 1).map((b) => ({ sender: r.identifier, box: b.box })),
    ),
  });
  const certifyBody = (c: Ceremony): RequestOf<'dkgCertify'> => ({
    ceremony_id: c.id,
    key_id: c.keyId,
    certificates: c.round3!.map((r) => ({
      identifier: r.identifier,
      transcript_hash: r.transcript_hash,
      group_public_key: r.public_key_package.commitments[0]!,
      certificate: r.certificate,
    })),
  });

  /**
   * A 2-of-n ceremony of the first n nodes (2-of-2 is a third of the work of 2-of-3), run on
   * every member up to (and including) `stage`.
   */
  async function ceremonyAt(stage: 1 | 2 | 3, n = 3): Promise<Ceremony> {
    const c: Ceremony = { id: rid('c'), n, keyId: rid('k'), round1Req: [] };
    const members = clients.slice(0, n);
    c.round1Req = members.map((_, i) => ({
      ceremony_id: c.id,
      key_id: c.keyId,
      threshold: 2,
      n,
      identifier: i + 1,
      participants: participants().slice(0, n),
    }));
    c.round1 = await Promise.all(members.map((cl, i) => cl.call('dkgRound1', c.round1Req[i]!)));
    if (stage >= 2) c.round2 = await Promise.all(members.map((cl) => cl.call('dkgRound2', round2Body(c))));
    if (stage >= 3)
      c.round3 = await Promise.all(members.map((cl, i) => cl.call('dkgRound3', round3Body(c, i))));
    return c;
  }

  /** Complete a ceremony from `stage` on every member; the key becomes active everywhere. */
  async function completeCeremony(c: Ceremony, stage: 2 | 3 | 4): Promise<void> {
    const members = clients.slice(0, c.n);
    if (stage <= 2) c.round2 = await Promise.all(members.map((cl) => cl.call('dkgRound2', round2Body(c))));
    if (stage <= 3)
      c.round3 = await Promise.all(members.map((cl, i) => cl.call('dkgRound3', round3Body(c, i))));
    const cert = await Promise.all(members.map((cl) => cl.call('dkgCertify', certifyBody(c))));
    assert.ok(cert.every((x) => x.status === 'active'));
    assert.equal(T.store.getKey(c.keyId)?.status, 'active');
  }

  /** Mostly 2-of-2 ceremonies, sometimes 2-of-3. */
  const sizeArb = fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, fc.constant(3));

  async function abortEverywhere(ceremonyId: string): Promise<void> {
    await Promise.all(clients.map((cl) => cl.call('dkgAbort', { ceremony_id: ceremonyId })));
  }

  interface Attempt {
    keyId: string;
    pub: PublicKeyPackage;
    open: RequestOf<'signOpen'>;
    /** Commitments node 1 (the node under test) answered. */
    own: ResponseOf<'signOpen'>['commitments'];
    /** Members whose commitments form the signing package (1 always among them). */
    signers: number[];
    round2: RequestOf<'signRound2'>;
  }

  /** A live attempt, opened on every included member; the package uses `signers`. */
  async function openAttempt(variant: number): Promise<Attempt> {
    const v = [
      { keyId: 'k-dkg', included: [1, 2], signers: [1, 2] },
      { keyId: 'k-imp', included: [1, 3], signers: [1, 3] },
      { keyId: 'k-dkg', included: [1, 2, 3], signers: [1, 3] },
    ][variant % 3]!;
    const sessionId = rid('s');
    const message = new Uint8Array(randomBytes(32));
    const open = {
      key_id: v.keyId,
      session_id: sessionId,
      attempt: 1,
      included: v.included,
      message: toHex(message),
      attempt_id: attemptIdHex(sessionId, message, 1, v.included),
    };
    const opened = await Promise.all(v.included.map((id) => clients[id - 1]!.call('signOpen', open)));
    const commitments = opened.map((o) => o.commitments).filter((c) => v.signers.includes(c.identifier));
    return {
      keyId: v.keyId,
      pub: keys[v.keyId]!,
      open,
      own: opened[0]!.commitments,
      signers: v.signers,
      round2: {
        key_id: v.keyId,
        session_id: sessionId,
        attempt_id: open.attempt_id,
        signing_package: { v: 1, type: 'signing_package', message: toHex(message), commitments },
      },
    };
  }

  /** The attempt is still live on the node under test with the very commitments it issued. */
  async function assertStillOpen(a: Attempt, what: string): Promise<void> {
    const again = await clients[0]!.call('signOpen', a.open);
    assert.deepStrictEqual(again.commitments, a.own, `${what}: the live attempt was altered`);
  }

  /** Sign the attempt with its valid package on every signer; the aggregate verifies (BIP-340). */
  async function signAttempt(a: Attempt): Promise<void> {
    const shares = await Promise.all(a.signers.map((id) => clients[id - 1]!.call('signRound2', a.round2)));
    const pkg = {
      message: fromHex(a.round2.signing_package.message, 'message', 32),
      commitments: a.round2.signing_package.commitments.map(decodeCommitments),
    };
    const sig = aggregate(
      a.pub,
      pkg,
      shares.map((s) => decodeSignatureShare(s.share)),
    );
    assert.ok(verifySignature(sig, pkg.message, xOnlyGroupKey(a.pub)), 'the attempt signs a valid signature');
    for (const id of a.open.included.filter((x) => !a.signers.includes(x))) {
      await clients[id - 1]!.call('signAbort', { session_id: a.open.session_id });
    }
  }

  const knownIds = (...extra: string[]) => ['k-dkg', 'k-imp', 'nope', ...extra];

  // ----------------------------------------------------------------------------------------
  // The envelope layer and raw HTTP bodies

  it('envelope layer: raw bodies and headers are refused with 4xx problems and change nothing', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    const routes = Object.values(SIGNER_MESSAGES);
    const harmless: { type: string; body: string }[] = [
      { type: 'node.info', body: '{}' },
      { type: 'sign.abort', body: JSON.stringify({ session_id: 's-none' }) },
      { type: 'dkg.abort', body: JSON.stringify({ ceremony_id: 'c-none' }) },
    ];
    type EnvKind =
      | { k: 'none' }
      | { k: 'valid' }
      | { k: 'replay' }
      | { k: 'field'; field: string; value: unknown }
      | { k: 'drop'; field: string }
      | { k: 'extra' }
      | { k: 'sigflip'; i: number }
      | { k: 'sigrandom'; b: Uint8Array }
      | { k: 'sigother' }
      | { k: 'stranger' }
      | { k: 'wrongto' }
      | { k: 'wrongtype' }
      | { k: 'stale' }
      | { k: 'future' }
      | { k: 'otherbody' }
      | { k: 'truncated'; cut: number }
      | { k: 'junk'; s: string }
      | { k: 'long'; n: number };
    const field = fc.constantFrom('v', 'from', 'to', 'ts', 'nonce', 'type', 'body_sha256', 're', 'sig');
    const envArb: fc.Arbitrary<EnvKind> = fc.oneof(
      fc.constant({ k: 'none' as const }),
      fc.constant({ k: 'valid' as const }),
      fc.constant({ k: 'replay' as const }),
      fc.record({ k: fc.constant('field' as const), field, value: junkArb }),
      fc.record({ k: fc.constant('drop' as const), field }),
      fc.constant({ k: 'extra' as const }),
      fc.record({ k: fc.constant('sigflip' as const), i: fc.nat({ max: 127 }) }),
      fc.record({ k: fc.constant('sigrandom' as const), b: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
      fc.constantFrom(
        { k: 'sigother' as const },
        { k: 'stranger' as const },
        { k: 'wrongto' as const },
        { k: 'wrongtype' as const },
        { k: 'stale' as const },
        { k: 'future' as const },
        { k: 'otherbody' as const },
      ),
      fc.record({ k: fc.constant('truncated' as const), cut: fc.nat({ max: 400 }) }),
      fc.record({
        k: fc.constant('junk' as const),
        s: fc.string({ maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
      }),
      fc.record({ k: fc.constant('long' as const), n: fc.integer({ min: 2049, max: 12_000 }) }),
    );
    type BodyKind =
      | { k: 'valid' }
      | { k: 'text'; s: string }
      | { k: 'bytes'; b: Uint8Array }
      | { k: 'truncated'; cut: number }
      | { k: 'json'; v: unknown }
      | { k: 'deep'; n: number }
      | { k: 'big'; n: number }
      | { k: 'bignum' }
      | { k: 'empty' };
    const bodyArb: fc.Arbitrary<BodyKind> = fc.oneof(
      { weight: 3, arbitrary: fc.constant({ k: 'valid' as const }) },
      fc.record({ k: fc.constant('text' as const), s: fc.string({ maxLength: 100 }) }),
      fc.record({
        k: fc.constant('text' as const),
        s: fc.constantFrom(
          '{',
          '}',
          '[',
          '{"a":',
          'nul',
          'true',
          '"x"',
          '1',
          '[]',
          'null',
          '{"a":1,}',
          "{'a':1}",
        ),
      }),
      fc.record({ k: fc.constant('bytes' as const), b: fc.uint8Array({ maxLength: 100 }) }),
      fc.record({ k: fc.constant('truncated' as const), cut: fc.nat({ max: 60 }) }),
      fc.record({ k: fc.constant('json' as const), v: fc.jsonValue({ maxDepth: 3 }) }),
      fc.record({ k: fc.constant('deep' as const), n: fc.integer({ min: 100, max: 20_000 }) }),
      fc.record({ k: fc.constant('big' as const), n: fc.integer({ min: 400_000, max: 700_000 }) }),
      fc.constant({ k: 'bignum' as const }),
      fc.constant({ k: 'empty' as const }),
    );
    const caseArb = fc.record({
      route: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...routes.map((r) => r.path)) },
        fc.constantFrom('/v1/nope', '/healthz', '/v1/sign/open/', '/v1/SIGN/OPEN', '/v1/sign/open?x=1', '/'),
      ),
      method: fc.oneof(
        { weight: 8, arbitrary: fc.constant('POST') },
        fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH'),
      ),
      contentType: fc.oneof(
        { weight: 6, arbitrary: fc.constant('application/json') },
        fc.constantFrom(
          'application/json; charset=utf-8',
          'text/plain',
          'application/octet-stream',
          'application/x-www-form-urlencoded',
          'APPLICATION/JSON',
          'application/json; charset=latin1',
          'multipart/form-data; boundary=x',
          '',
        ),
      ),
      harmless: fc.nat({ max: harmless.length - 1 }),
      ownType: fc.boolean(),
      body: bodyArb,
      env: envArb,
    });

    const expectedCode: Partial<Record<EnvKind['k'], string>> = {
      none: 'envelope_malformed',
      replay: 'envelope_replay',
      sigflip: 'envelope_bad_signature',
      sigrandom: 'envelope_bad_signature',
      sigother: 'envelope_bad_signature',
      stranger: 'envelope_unknown_sender',
      wrongto: 'envelope_wrong_recipient',
      wrongtype: 'envelope_wrong_type',
      stale: 'envelope_stale',
      future: 'envelope_future',
      otherbody: 'envelope_body_mismatch',
      extra: 'envelope_malformed',
      long: 'envelope_malformed',
    };

    await fc.assert(
      fc.asyncProperty(
        caseArb,
        budget(async (c) => {
          const spec = routes.find((r) => r.path === c.route);
          const h = harmless[c.harmless]!;
          const type = c.ownType && spec ? spec.type : h.type;
          const validText = h.body;
          let body: string | Uint8Array;
          switch (c.body.k) {
            case 'valid':
              body = validText;
              break;
            case 'text':
              body = c.body.s;
              break;
            case 'bytes':
              body = c.body.b;
              break;
            case 'truncated':
              body = validText.slice(0, c.body.cut % Math.max(1, validText.length));
              break;
            case 'json':
              body = JSON.stringify(c.body.v) ?? '';
              break;
            case 'deep':
              body = `${'['.repeat(c.body.n)}${']'.repeat(c.body.n)}`;
              break;
            case 'big':
              body = JSON.stringify({ session_id: 'x'.repeat(c.body.n) });
              break;
            case 'bignum':
              body = '{"session_id":"s","attempt_id":1e400,"ceremony_id":-0}';
              break;
            case 'empty':
              body = '';
              break;
          }
          const seal = (o: {
            identity?: Uint8Array;
            to?: string;
            type?: string;
            now?: number;
            body?: string | Uint8Array;
          }) =>
            sealEnvelope({
              identity: o.identity ?? coordinator,
              to: o.to ?? T.identityPub,
              type: o.type ?? type,
              body: o.body ?? body,
              now: o.now ?? Date.now(),
            });
          let envelope: string | undefined;
          const e = c.env;
          const base = seal({}) as unknown as Record<string, unknown>;
          switch (e.k) {
            case 'none':
              envelope = undefined;
              break;
            case 'valid':
            case 'replay':
              envelope = encodeEnvelope(base as never);
              break;
            case 'field':
              envelope = JSON.stringify({ ...base, [e.field]: materialize(e.value) });
              break;
            case 'drop': {
              const { [e.field]: _gone, ...rest } = base;
              envelope = JSON.stringify(rest);
              break;
            }
            case 'extra':
              envelope = JSON.stringify({ ...base, extra: 1 });
              break;
            case 'sigflip': {
              const s = base.sig as string;
              const ch = s[e.i]!;
              envelope = JSON.stringify({
                ...base,
                sig: `${s.slice(0, e.i)}${ch === '0' ? '1' : '0'}${s.slice(e.i + 1)}`,
              });
              break;
            }
            case 'sigrandom':
              envelope = JSON.stringify({ ...base, sig: toHex(e.b) });
              break;
            case 'sigother':
              envelope = JSON.stringify({ ...base, sig: seal({ body: 'other' }).sig });
              break;
            case 'stranger':
              envelope = encodeEnvelope(seal({ identity: stranger }));
              break;
            case 'wrongto':
              envelope = encodeEnvelope(seal({ to: nodes[1]!.identityPub }));
              break;
            case 'wrongtype':
              envelope = encodeEnvelope(
                seal({ type: spec?.type === 'node.info' ? 'sign.abort' : 'node.info' }),
              );
              break;
            case 'stale':
              envelope = encodeEnvelope(seal({ now: Date.now() - 3_600_000 }));
              break;
            case 'future':
              envelope = encodeEnvelope(seal({ now: Date.now() + 3_600_000 }));
              break;
            case 'otherbody':
              envelope = encodeEnvelope(seal({ body: `${typeof body === 'string' ? body : toHex(body)} ` }));
              break;
            case 'truncated': {
              const full = encodeEnvelope(base as never);
              envelope = full.slice(0, e.cut % full.length);
              break;
            }
            case 'junk':
              envelope = e.s;
              break;
            case 'long':
              envelope = JSON.stringify({ ...base, sig: 'a'.repeat(e.n) });
              break;
          }
          const headers: Record<string, string> = {};
          if (c.contentType) headers['content-type'] = c.contentType;
          // Header values are bytes: non-ASCII travels as JSON \u escapes (same JSON value).
          if (envelope !== undefined && envelope !== '')
            headers[ENVELOPE_HEADER] = envelope.replace(
              /[\u007f-\uffff]/g,
              (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
            );
          const go = async () => {
            exchanges++;
            const res = await fetch(`${T.url}${c.route}`, {
              method: c.method,
              headers,
              ...(c.method === 'GET' ? {} : { body }),
            });
            const text = await res.text();
            if (res.status === 431) {
              // Node's HTTP parser refuses a header block over 16 kB before any route runs
              // (fastify's client-error answer, not a problem document): only for huge headers.
              assert.ok(
                Buffer.byteLength(JSON.stringify(headers)) > 16_000,
                'HTTP 431 only for oversized headers',
              );
              return { status: res.status, code: undefined, text };
            }
            const code = checkShape(
              res.status,
              res.headers.get('content-type') ?? '',
              text,
              `${c.method} ${c.route}`,
            );
            return { status: res.status, code, text };
          };
          const before = await snapshot();
          const r = await go();
          const second = e.k === 'replay' ? await go() : undefined;
          await healthy();
          assertUnchanged(before, await snapshot(), `${c.method} ${c.route}`);

          // Where the outcome is determined by the envelope alone, it is that exact refusal.
          const plain =
            spec !== undefined &&
            c.method === 'POST' &&
            c.route === spec.path &&
            (c.contentType === 'application/json' || c.contentType === 'application/json; charset=utf-8') &&
            typeof body === 'string' &&
            body.length < 400_000;
          if (r.status === 200 && !(c.route === '/healthz' && c.method === 'GET')) {
            assert.ok(
              plain && ['valid', 'replay', 'field', 'drop'].includes(e.k),
              'accepted only with a valid envelope',
            );
          }
          // Checked before the message type: recipient, sender, shape.
          const early = ['none', 'extra', 'long', 'wrongto', 'stranger'].includes(e.k);
          const want = expectedCode[e.k];
          if (plain && want && e.k !== 'replay' && (early || type === spec.type || e.k === 'wrongtype')) {
            assert.equal(r.code, want, `envelope ${e.k}`);
          }
          if (plain && second && !r.code?.startsWith('envelope_')) {
            assert.equal(second.code, 'envelope_replay', 'a replayed envelope is refused');
          }
        }),
      ),
      fcOptions(runs(150)),
    );
  });

  // ----------------------------------------------------------------------------------------
  // node.info, sign.abort, dkg.abort

  it('node.info, sign.abort and dkg.abort: mutated bodies are refused or change nothing they should not', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    let live: Attempt | undefined;
    let cer: Ceremony | undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 5 }),
        mutsArb,
        budget(async (which, muts) => {
          live ??= await openAttempt(0);
          cer ??= await ceremonyAt(1);
          const ctx: Ctx = { ids: knownIds(live.open.session_id, cer.id, 's-none', 'c-none') };
          const wrongAttempt = toHex(randomBytes(32));
          const cases: { name: 'nodeInfo' | 'signAbort' | 'dkgAbort'; body: Body }[] = [
            { name: 'nodeInfo', body: {} },
            { name: 'signAbort', body: { session_id: live.open.session_id, attempt_id: wrongAttempt } },
            { name: 'signAbort', body: { session_id: 's-none' } },
            { name: 'dkgAbort', body: { ceremony_id: 'c-none' } },
            { name: 'signAbort', body: { session_id: live.open.session_id, attempt_id: wrongAttempt } },
            { name: 'dkgAbort', body: { ceremony_id: `${cer.id}x` } },
          ];
          const c = cases[which]!;
          const body = await mutate(c.body, muts, ctx, [
            (b) => ({ ...b, session_id: live!.open.session_id }),
            (b) => ({ ...b, attempt_id: live!.open.attempt_id.toUpperCase() }),
            (b) => ({ ...b, ceremony_id: cer!.id.slice(0, -1) }),
            (b) => ({ ...b, ceremony_id: 'x'.repeat(64) }),
          ]);
          const { r, before, after } = await fuzzOne(c.name, body);
          if (r.status !== 200) return assertUnchanged(before, after, c.name);
          if (c.name === 'nodeInfo') {
            assert.equal(r.ok.identity, T.identityPub);
            assert.equal(r.ok.live_attempts, before.live_attempts);
            return assertUnchanged(before, after, c.name);
          }
          if (c.name === 'signAbort') {
            if (r.ok.aborted === 0) return assertUnchanged(before, after, 'sign.abort that aborted nothing');
            assert.equal(r.ok.session_id, live.open.session_id, 'only the live session could be aborted');
            assert.equal(after.live_attempts, before.live_attempts - 1);
            await clients[1]!.call('signAbort', { session_id: live.open.session_id });
            live = undefined;
            return;
          }
          if (r.ok.aborted === false) return assertUnchanged(before, after, 'dkg.abort that aborted nothing');
          assert.equal(r.ok.ceremony_id, cer.id, 'only the live ceremony could be aborted');
          assertCeremonyDropped(before, after, cer.keyId, 'dkg.abort');
          await abortEverywhere(cer.id);
          cer = undefined;
        }),
      ),
      fcOptions(runs(80)),
    );
    // The live attempt survived every refused or no-op abort: it still signs.
    if (live) {
      await assertStillOpen(live, 'after the abort fuzz');
      await signAttempt(live);
    }
    if (cer) await completeCeremony(cer, 2);
  });

  // ----------------------------------------------------------------------------------------
  // DKG

  it('dkg.round1: mutated requests are refused without state change (or start a ceremony)', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    let live: Ceremony | undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        mutsArb,
        budget(async (existing, muts) => {
          live ??= await ceremonyAt(1);
          const valid: RequestOf<'dkgRound1'> = existing
            ? structuredClone(live.round1Req[0]!)
            : {
                ceremony_id: rid('c'),
                key_id: rid('k'),
                threshold: 2,
                n: 3,
                identifier: 1,
                participants: participants(),
              };
          const ctx: Ctx = { ids: knownIds(live.id, live.keyId) };
          const off = OFF_CURVE[0]!.slice(2);
          const body = await mutate(valid, muts, ctx, [
            (b) => ({ ...b, threshold: 4 }),
            (b) => ({ ...b, threshold: 3 }),
            (b) => ({ ...b, n: 4 }),
            (b) => ({ ...b, n: 2 }),
            (b) => ({ ...b, identifier: 2 }),
            (b) => ({ ...b, identifier: 4 }),
            (b) => ({ ...b, key_id: 'k-dkg' }),
            (b) => ({ ...b, ceremony_id: live!.id }),
            (b) => ({
              ...b,
              participants: b.participants?.map?.((p: any) => ({ ...p, identity: T.identityPub })),
            }),
            (b) => ({
              ...b,
              participants: b.participants?.map?.((p: any, i: number) => ({ ...p, identifier: i + 2 })),
            }),
            (b, m) => ({
              ...b,
              participants: b.participants?.map?.((p: any, i: number) =>
                i === 1 + (m.salt[0]! % 2)
                  ? { ...p, identity: m.salt[1]! % 2 ? off : toHex(bytesFrom(m.salt, 32)) }
                  : p,
              ),
            }),
            (b) => ({ ...b, participants: [...(b.participants ?? [])].reverse() }),
          ]);
          const { r, before, after } = await fuzzOne('dkgRound1', body);
          if (r.status !== 200) return assertUnchanged(before, after, 'dkg.round1');
          // Accepted: a new ceremony (cleaned up here) or the idempotent repeat of the live one.
          if (r.ok.ceremony_id === live.id) {
            assert.deepStrictEqual(r.ok, live.round1![0], 'a repeated round 1 answers the same package');
            return assertUnchanged(before, after, 'repeated dkg.round1');
          }
          assert.equal(after.live_ceremonies, before.live_ceremonies + 1);
          assert.deepStrictEqual(after.tables, before.tables, 'round 1 writes nothing durable');
          await send('dkgAbort', { ceremony_id: r.ok.ceremony_id });
        }),
      ),
      fcOptions(runs(80)),
    );
    // The ceremony whose id the fuzzer kept hitting is intact: it completes.
    if (live) await completeCeremony(live, 2);
  });

  it('dkg.round2: refusals change nothing and the ceremony still completes', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    await fc.assert(
      fc.asyncProperty(
        sizeArb,
        seqArb,
        budget(async (n, seq) => {
          const c = await ceremonyAt(1, n);
          let settled = false;
          try {
            const valid = round2Body(c);
            const ctx: Ctx = { ids: knownIds(c.id, c.keyId) };
            // A real round-1 package with the wrong number of commitments (threshold 3).
            const wrongT = (id: number) => encodeDkgRound1(cryptoDkgRound1(id, 3, 3).package);
            const domain: DomainOp[] = [
              (b, m) => {
                const pk = b.round1?.[m.salt[0]! % b.round1.length];
                if (pk?.commitment)
                  pk.commitment[m.salt[1]! % pk.commitment.length] = OFF_CURVE[m.salt[2]! % OFF_CURVE.length];
                return b;
              },
              (b, m) => {
                const pk = b.round1?.[1 + (m.salt[0]! % (b.round1.length - 1))];
                if (pk?.commitment) pk.commitment[m.salt[1]! % pk.commitment.length] = pointFrom(m.salt);
                return b;
              },
              (b, m) => {
                const pk = b.round1?.[m.salt[0]! % b.round1.length];
                if (typeof pk?.proof_of_knowledge === 'string')
                  pk.proof_of_knowledge = `${pk.proof_of_knowledge.slice(0, 64)}${BAD_SCALARS[m.salt[1]! % BAD_SCALARS.length]}`;
                return b;
              },
              (b, m) => {
                if (Array.isArray(b.round1)) {
                  const i = 1 + (m.salt[0]! % (b.round1.length - 1));
                  b.round1[i] = wrongT(i + 1);
                }
                return b;
              },
              (b, m) => {
                // This signer's own package, altered (a commitment of the same form).
                const pk = b.round1?.[0];
                if (pk?.commitment) pk.commitment[m.salt[0]! % pk.commitment.length] = pointFrom(m.salt);
                return b;
              },
              (b, m) => {
                const pk = b.round1?.[m.salt[0]! % b.round1.length];
                if (pk) pk.identifier = [0, 4, 256, 1, 2, 3][m.salt[1]! % 6];
                return b;
              },
              (b) => {
                const pk = b.round1?.[1];
                if (pk?.commitment) pk.commitment = [...pk.commitment, pk.commitment[0]];
                return b;
              },
              (b) => ({ ...b, ceremony_id: 'c-none' }),
            ];
            const sorted = (b: Body) => [...b.round1].sort((x: any, y: any) => x.identifier - y.identifier);
            let first: Body | undefined; // the first accepted round-2 request: the transcript from then on
            for (const muts of seq) {
              const body = await mutate(valid, muts, ctx, domain);
              const { r, before, after } = await fuzzOne('dkgRound2', body);
              if (r.status === 200) {
                // Packages this signer cannot tell from real ones (a commitment beyond the first,
                // which the proof of knowledge does not cover) are answered; a repeat answers the
                // cache only for the very same packages.
                if (first)
                  assert.deepStrictEqual(sorted(body), sorted(first), 'repeat of another transcript');
                first ??= body;
                assert.equal(r.ok.ceremony_id, c.id);
                assert.deepStrictEqual(after.tables, before.tables, 'round 2 writes nothing durable');
                continue;
              }
              assertUnchanged(before, after, 'dkg.round2');
            }
            if (first) assert.equal(T.store.getKey(c.keyId), undefined, 'round 2 stores no key');
            if (first && !isDeepStrictEqual(sorted(first), sorted(valid))) {
              // This signer took another transcript: the real one is refused, not answered from cache.
              const r = await send('dkgRound2', valid);
              assert.equal(r.code, 'ceremony_conflict');
              return;
            }
            // Refusals left the ceremony as it was: it completes and every member certifies.
            await completeCeremony(c, 2);
            settled = true;
          } finally {
            if (!settled) await abortEverywhere(c.id);
          }
        }),
      ),
      fcOptions(runs(20)),
    );
  });

  it('dkg.round3: refusals change nothing (a fail-closed dkg_failed only drops the ceremony)', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    await fc.assert(
      fc.asyncProperty(
        sizeArb,
        seqArb,
        budget(async (n, seq) => {
          const c = await ceremonyAt(2, n);
          let settled = false;
          try {
            const valid = round3Body(c, 0);
            const ctx: Ctx = { ids: knownIds(c.id, c.keyId) };
            // A box that opens but holds something else than the sender's share (sealed by the real sender).
            const lie = (sender: number, plain: Uint8Array) =>
              sealBox(
                identities[sender - 1]!,
                fromHex(T.identityPub, 'id', 32),
                plain,
                dkgBoxAad(c.id, c.keyId, sender, 1),
                DKG_BOX_INFO,
              );
            const lies = (salt: Uint8Array) => [
              fromHex(hexN(0n), 's', 32),
              fromHex(hexN(N), 's', 32),
              fromHex(hexN(scalarFrom(salt)), 's', 32),
              bytesFrom(salt, 31),
              bytesFrom(salt, 33),
            ];
            const domain: DomainOp[] = [
              (b, m) => {
                const i = m.salt[0]! % b.boxes.length;
                if (b.boxes?.[i]) b.boxes[i].box = lie(b.boxes[i].sender, lies(m.salt)[m.salt[1]! % 5]!);
                return b;
              },
              (b) => {
                // Boxes attributed to the wrong senders.
                if (b.boxes?.length === 2)
                  [b.boxes[0].sender, b.boxes[1].sender] = [b.boxes[1].sender, b.boxes[0].sender];
                return b;
              },
              (b, m) => {
                const i = m.salt[0]! % b.boxes.length;
                if (b.boxes?.[i]) b.boxes[i].sender = [0, 1, 4, 256, 2, 3][m.salt[1]! % 6];
                return b;
              },
              (b, m) => {
                const box = b.boxes?.[m.salt[0]! % 2]?.box;
                if (box) box.ciphertext = box.ciphertext.slice(0, 2 * (m.salt[1]! % 20));
                return b;
              },
              (b, m) => {
                const box = b.boxes?.[m.salt[0]! % 2]?.box;
                if (box)
                  box.sender = [T.identityPub, OFF_CURVE[2]!.slice(2), nodes[2]!.identityPub][m.salt[1]! % 3];
                return b;
              },
              (b, m) => {
                const box = b.boxes?.[m.salt[0]! % 2]?.box;
                if (box) box.nonce = toHex(bytesFrom(m.salt, 12));
                return b;
              },
              (b) => ({ ...b, ceremony_id: 'c-none' }),
            ];
            let dead = false;
            let done = false;
            for (const muts of seq) {
              const body = await mutate(valid, muts, ctx, domain);
              const { r, before, after } = await fuzzOne('dkgRound3', body);
              if (r.status === 200) {
                done = true;
                continue;
              }
              if (
                !dead &&
                !done &&
                r.code === 'dkg_failed' &&
                after.live_ceremonies === before.live_ceremonies - 1
              ) {
                assertCeremonyDropped(before, after, c.keyId, 'dkg.round3');
                dead = true;
                continue;
              }
              assertUnchanged(before, after, `dkg.round3 (${r.code})`);
            }
            if (dead) {
              assert.equal(T.store.getKey(c.keyId), undefined, 'a failed round 3 leaves no key behind');
              const again = await send('dkgRound3', valid);
              assert.equal(again.code, 'ceremony_unknown');
              return; // the other members' ceremony is aborted in finally
            }
            await completeCeremony(c, 3);
            settled = true;
          } finally {
            if (!settled) await abortEverywhere(c.id);
          }
        }),
      ),
      fcOptions(runs(20)),
    );
  });

  it('dkg.certify: refusals change nothing (certification_mismatch only drops the ceremony)', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    await fc.assert(
      fc.asyncProperty(
        sizeArb,
        seqArb,
        budget(async (n, seq) => {
          const c = await ceremonyAt(3, n);
          let settled = false;
          try {
            const valid = certifyBody(c);
            const ctx: Ctx = { ids: knownIds(c.id, c.keyId) };
            const domain: DomainOp[] = [
              (b, m) => {
                const x = b.certificates?.[m.salt[0]! % b.certificates.length];
                if (x) x.certificate = b.certificates[(m.salt[0]! + 1) % b.certificates.length].certificate;
                return b;
              },
              (b, m) => {
                const x = b.certificates?.[m.salt[0]! % b.certificates.length];
                if (x) x.group_public_key = [pointFrom(m.salt), OFF_CURVE[0], INFINITY[2]][m.salt[1]! % 3];
                return b;
              },
              (b, m) => {
                const x = b.certificates?.[m.salt[0]! % b.certificates.length];
                if (x) x.transcript_hash = toHex(bytesFrom(m.salt, 32));
                return b;
              },
              (b, m) => {
                const x = b.certificates?.[m.salt[0]! % b.certificates.length];
                if (x) x.identifier = [0, 4, 256, 1, 2, 3][m.salt[1]! % 6];
                return b;
              },
              (b, m) => ({ ...b, key_id: ['k-dkg', 'k-imp', `${c.keyId}x`][m.salt[0]! % 3] }),
              (b) => ({ ...b, ceremony_id: 'c-none' }),
            ];
            let dead = false;
            for (const muts of seq) {
              const body = await mutate(valid, muts, ctx, domain);
              const { r, before, after } = await fuzzOne('dkgCertify', body);
              if (r.status === 200) {
                assert.equal(r.ok.key_id, c.keyId);
                assert.equal(T.store.getKey(c.keyId)?.status, 'active');
                dead = true; // certified here; the ceremony is over on this node
                continue;
              }
              if (
                !dead &&
                r.code === 'certification_mismatch' &&
                after.live_ceremonies === before.live_ceremonies - 1
              ) {
                assertCeremonyDropped(before, after, c.keyId, 'dkg.certify');
                assert.equal(T.store.getKey(c.keyId), undefined, 'the pending key is dropped');
                dead = true;
                continue;
              }
              assertUnchanged(before, after, `dkg.certify (${r.code})`);
            }
            if (dead) return; // aborted on the other members in finally
            await completeCeremony(c, 4);
            settled = true;
          } finally {
            if (!settled) await abortEverywhere(c.id);
          }
        }),
      ),
      fcOptions(runs(20)),
    );
  });

  // ----------------------------------------------------------------------------------------
  // Dealer-share import

  it('key.import: mutated imports are refused without state change (or import exactly one key)', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    await fc.assert(
      fc.asyncProperty(
        mutsArb,
        budget(async (muts) => {
          const keyId = rid('ki');
          const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
          const gk = groupPublicKey(pub);
          const sealTo = (plain: Uint8Array, aadKey = keyId, aadId = 1, aadGk = gk) =>
            sealBox(
              generateIdentityKey(),
              fromHex(T.identityPub, 'id', 32),
              plain,
              importBoxAad(aadKey, aadId, aadGk),
              IMPORT_BOX_INFO,
            );
          const valid: RequestOf<'keyImport'> = {
            key_id: keyId,
            identifier: 1,
            public_key_package: encodePublicKeyPackage(pub),
            sealed_share: sealTo(shares[0]!.signingShare),
          };
          const ctx: Ctx = { ids: knownIds(keyId) };
          const domain: DomainOp[] = [
            (b, m) => {
              const plains = [
                shares[1]!.signingShare,
                fromHex(hexN(0n), 's', 32),
                fromHex(hexN(N), 's', 32),
                fromHex(hexN(scalarFrom(m.salt)), 's', 32),
                bytesFrom(m.salt, 31),
                new Uint8Array([...shares[0]!.signingShare, 0]),
              ];
              return { ...b, sealed_share: sealTo(plains[m.salt[0]! % plains.length]!) };
            },
            (b, m) => ({
              ...b,
              sealed_share: [
                sealTo(shares[0]!.signingShare, 'k-dkg'),
                sealTo(shares[0]!.signingShare, keyId, 2),
                sealTo(shares[0]!.signingShare, keyId, 1, fromHex(pointFrom(m.salt), 'p', 33)),
              ][m.salt[0]! % 3],
            }),
            (b, m) => {
              const vs = b.public_key_package?.verifying_shares;
              if (vs)
                vs[String(1 + (m.salt[0]! % 3))] = [pointFrom(m.salt), OFF_CURVE[1], INFINITY[2]][
                  m.salt[1]! % 3
                ];
              return b;
            },
            (b, m) => {
              const cs = b.public_key_package?.commitments;
              if (Array.isArray(cs))
                cs[m.salt[0]! % cs.length] = [pointFrom(m.salt), OFF_CURVE[3]][m.salt[1]! % 2];
              return b;
            },
            (b, m) => {
              const p = b.public_key_package;
              if (p)
                Object.assign(p, [{ threshold: 3 }, { n: 2 }, { threshold: 1 }, { n: 4 }][m.salt[0]! % 4]);
              return b;
            },
            (b, m) => {
              const p = b.public_key_package;
              if (p)
                p.tweak = [
                  { kind: 'taproot', internal_key: pointFrom(m.salt), merkle_root: '' },
                  { kind: 'taproot', internal_key: OFF_CURVE[4], merkle_root: 'ab'.repeat(32) },
                  { kind: 'taproot', internal_key: pointFrom(m.salt), merkle_root: 'ab'.repeat(31) },
                ][m.salt[0]! % 3];
              return b;
            },
            (b, m) => {
              if (b.sealed_share)
                b.sealed_share.sender = [OFF_CURVE[5]!.slice(2), T.identityPub, '00'.repeat(32)][
                  m.salt[0]! % 3
                ];
              return b;
            },
            (b, m) => ({ ...b, identifier: [2, 3, 4, 0, 256][m.salt[0]! % 5] }),
            (b, m) => ({ ...b, key_id: ['k-dkg', 'k-imp'][m.salt[0]! % 2] }),
          ];
          const body = await mutate(valid, muts, ctx, domain);
          const { r, before, after } = await fuzzOne('keyImport', body);
          if (r.status !== 200) return assertUnchanged(before, after, `key.import (${r.code})`);
          // Accepted: exactly one new active key, and only one whose share matches its package.
          assert.equal(Object.keys(after.keys).length, Object.keys(before.keys).length + 1);
          assert.match(after.keys[r.ok.key_id] ?? '', /^active:/);
          assert.equal(before.keys[r.ok.key_id], undefined);
          const { [r.ok.key_id]: _new, ...others } = after.keys;
          assert.deepStrictEqual(others, before.keys, 'an import touches no other key');
        }),
      ),
      fcOptions(runs(60)),
    );
  });

  // ----------------------------------------------------------------------------------------
  // Signing

  it('sign.open: mutated opens for held keys and live attempts are refused without state change', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    let live: Attempt | undefined;
    const pending = await ceremonyAt(3); // a key that exists but is not active on this node
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 3 }),
        fc.boolean(),
        mutsArb,
        budget(async (base, fix, muts) => {
          live ??= await openAttempt(0);
          const sessionId = rid('s');
          const message = toHex(randomBytes(32));
          const included = base === 3 ? [1, 3] : [1, 2];
          const fresh: RequestOf<'signOpen'> = {
            key_id: base === 3 ? 'k-imp' : 'k-dkg',
            session_id: sessionId,
            attempt: 1,
            included,
            message,
            attempt_id: attemptIdHex(sessionId, fromHex(message, 'm', 32), 1, included),
          };
          const valid = base === 0 ? structuredClone(live.open) : fresh;
          const ctx: Ctx = { ids: knownIds(live.open.session_id, pending.keyId) };
          const domain: DomainOp[] = [
            (b, m) => ({
              ...b,
              included: [[2, 3], [1, 4], [1], [2, 1], [1, 1], [1, 2, 3], [0, 1], [1, 256], [], [1, 2, 2, 3]][
                m.salt[0]! % 10
              ],
            }),
            (b, m) => ({ ...b, attempt: [0, 2, 1_000_000, 1_000_001, -1, 1.5][m.salt[0]! % 6] }),
            (b, m) => ({ ...b, key_id: [pending.keyId, 'nope', 'k-imp', 'k-dkg'][m.salt[0]! % 4] }),
            (b) => ({ ...b, session_id: live!.open.session_id }),
            (b, m) => ({
              ...b,
              message: [toHex(bytesFrom(m.salt, 31)), toHex(bytesFrom(m.salt, 33)), ''][m.salt[0]! % 3],
            }),
            (b) => ({ ...b, attempt_id: live!.open.attempt_id }),
          ];
          let body = await mutate(valid, muts, ctx, domain);
          if (fix) {
            // Re-derive attempt_id from the mutated fields, to get past that check to the deeper ones.
            try {
              body = {
                ...body,
                attempt_id: attemptIdHex(
                  body.session_id,
                  fromHex(body.message, 'm', 32),
                  body.attempt,
                  body.included,
                ),
              };
            } catch {
              // fields no longer derivable: send as mutated
            }
          }
          const { r, before, after } = await fuzzOne('signOpen', body);
          if (r.status !== 200) {
            assertUnchanged(before, after, `sign.open (${r.code})`);
            return assertStillOpen(live, `sign.open (${r.code})`);
          }
          if (r.ok.session_id === live.open.session_id) {
            if (r.ok.attempt_id === live.open.attempt_id) {
              assert.deepStrictEqual(
                r.ok.commitments,
                live.own,
                'a repeated open answers the same commitments',
              );
              return assertUnchanged(before, after, 'repeated sign.open');
            }
            // A higher attempt number replaced the live attempt (its nonces are gone).
            assert.ok(r.ok.attempt > live.open.attempt);
            assert.equal(after.live_attempts, before.live_attempts);
            await send('signAbort', { session_id: r.ok.session_id });
            await clients[1]!.call('signAbort', { session_id: r.ok.session_id });
            live = undefined;
            return;
          }
          assert.equal(after.live_attempts, before.live_attempts + 1);
          assert.deepStrictEqual(after.tables, before.tables, 'open writes nothing durable');
          await send('signAbort', { session_id: r.ok.session_id });
        }),
      ),
      fcOptions(runs(100)),
    );
    if (live) {
      await assertStillOpen(live, 'after the open fuzz');
      await signAttempt(live);
    }
    await abortEverywhere(pending.id);
  });

  it('sign.round2: refused packages consume nothing; the same attempt then signs a valid signature', async (t) => {
    t.diagnostic(`fast-check seed ${SEED}`);
    let other: Attempt | undefined; // another live attempt, for cross-attempt mix-ups (kept across runs)
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 2 }),
        fc.array(mutsArb, { minLength: 1, maxLength: 4 }),
        budget(async (variant, sequence) => {
          const a = await openAttempt(variant);
          other ??= await openAttempt(variant + 1);
          const o = other;
          const ctx: Ctx = { ids: knownIds(a.open.session_id, o.open.session_id) };
          const own = (b: Body) => b.signing_package?.commitments?.find?.((x: any) => x?.identifier === 1);
          const peer = (b: Body) => b.signing_package?.commitments?.find?.((x: any) => x?.identifier !== 1);
          const domain: DomainOp[] = [
            (b, m) => {
              const c = own(b);
              if (c) c[m.salt[0]! % 2 ? 'hiding' : 'binding'] = OFF_CURVE[m.salt[1]! % OFF_CURVE.length];
              return b;
            },
            (b, m) => {
              const c = own(b);
              if (c) c[m.salt[0]! % 2 ? 'hiding' : 'binding'] = pointFrom(m.salt);
              return b;
            },
            (b) => {
              const c = own(b);
              if (c) [c.hiding, c.binding] = [c.binding, c.hiding];
              return b;
            },
            (b, m) => {
              const c = [own(b), peer(b)][m.salt[0]! % 2];
              if (c) c[m.salt[1]! % 2 ? 'hiding' : 'binding'] = INFINITY[m.salt[2]! % INFINITY.length];
              return b;
            },
            (b, m) => {
              const c = peer(b);
              if (c) c.hiding = OFF_CURVE[m.salt[0]! % OFF_CURVE.length];
              return b;
            },
            (b, m) => {
              const c = peer(b);
              if (c) c.identifier = [0, 1, 2, 3, 4, 256][m.salt[0]! % 6];
              return b;
            },
            (b, m) => {
              const cs = b.signing_package?.commitments;
              if (Array.isArray(cs))
                cs.push({
                  v: 1,
                  type: 'commitments',
                  identifier: 3,
                  hiding: pointFrom(m.salt),
                  binding: pointFrom(m.salt.slice().reverse()),
                });
              return b;
            },
            (b) => {
              const cs = b.signing_package?.commitments;
              if (Array.isArray(cs))
                b.signing_package.commitments = cs.filter((x: any) => x?.identifier === 1);
              return b;
            },
            (b) => {
              const cs = b.signing_package?.commitments;
              if (Array.isArray(cs)) cs.reverse();
              return b;
            },
            (b, m) => {
              if (b.signing_package)
                b.signing_package.message = [
                  toHex(bytesFrom(m.salt, 32)),
                  toHex(bytesFrom(m.salt, 33)),
                  '',
                  o.open.message,
                ][m.salt[0]! % 4];
              return b;
            },
            (b, m) => ({
              ...b,
              attempt_id: [o.open.attempt_id, toHex(bytesFrom(m.salt, 32))][m.salt[0]! % 2],
            }),
            (b, m) => ({ ...b, session_id: [o.open.session_id, 's-none'][m.salt[0]! % 2] }),
            (b, m) => ({ ...b, key_id: [a.keyId === 'k-dkg' ? 'k-imp' : 'k-dkg', 'nope'][m.salt[0]! % 2] }),
            (b) => ({ ...b, signing_package: structuredClone(o.round2.signing_package) }),
            (b, m) => {
              const c = own(b);
              if (c)
                Object.assign(c, [{ v: 2 }, { type: 'commitment' }, { identifier: 1.5 }][m.salt[0]! % 3]);
              return b;
            },
          ];
          const consumed = new Set<Attempt>();
          for (const muts of sequence) {
            const body = await mutate(a.round2, muts, ctx, domain);
            const { r, before, after } = await fuzzOne('signRound2', body);
            if (r.status === 200) {
              // Accepted only for a live attempt and under the commitment this signer issued for it.
              const which = [a, o].find((x) => x.open.attempt_id === r.ok.attempt_id);
              assert.ok(which, 'a share is released only for a live attempt');
              assert.deepStrictEqual(
                own(body),
                which.own,
                'a share is released only under the issued commitment',
              );
              assert.equal(body.signing_package.message, which.open.message, 'and only for its message');
              assert.equal(after.live_attempts, before.live_attempts - 1, 'the attempt is consumed');
              assert.equal(after.tables.markers!.rows, before.tables.markers!.rows + 1, 'marker written');
              consumed.add(which);
              break;
            }
            assertUnchanged(before, after, `sign.round2 (${r.code})`);
            await assertStillOpen(a, `sign.round2 (${r.code})`);
          }
          for (const x of consumed) {
            const again = await send('signRound2', x.round2);
            assert.equal(again.code, 'consumed_nonce_replay', 'a consumed attempt never signs again');
            for (const id of x.open.included.slice(1))
              await clients[id - 1]!.call('signAbort', { session_id: x.open.session_id });
          }
          // Every refusal left the attempt intact: it signs, and the signature verifies.
          if (!consumed.has(a)) await signAttempt(a);
          if (consumed.has(o)) other = undefined;
          else await assertStillOpen(o, 'the other live attempt');
        }),
      ),
      fcOptions(runs(35)),
    );
    if (other) await signAttempt(other);
  });

  it('example: after refused round-2 requests (off-curve, altered own commitment, scalar-sized junk) the attempt signs', async () => {
    const a = await openAttempt(0);
    const bad = (f: (b: any) => void) => {
      const b = structuredClone(a.round2) as any;
      f(b);
      return b;
    };
    const ownC = (b: any) => b.signing_package.commitments.find((x: any) => x.identifier === 1);
    const requests = [
      bad((b) => {
        ownC(b).hiding = OFF_CURVE[0];
      }),
      bad((b) => {
        ownC(b).binding = pointFrom(new Uint8Array(32).fill(7));
      }),
      bad((b) => {
        b.signing_package.commitments[1].binding = INFINITY[2];
      }),
      bad((b) => {
        b.signing_package.message = hexN(N);
      }),
      bad((b) => {
        b.signing_package.commitments.pop();
      }),
      bad((b) => {
        b.signing_package.commitments.reverse();
      }),
    ];
    const before = await snapshot();
    const codes: string[] = [];
    for (const body of requests) {
      const r = await send('signRound2', body);
      assert.ok(r.status >= 400 && r.status < 500);
      codes.push(r.code!);
    }
    assert.deepStrictEqual(codes, [
      'invalid_encoding',
      'own_commitment_mismatch',
      'invalid_encoding',
      'message_mismatch',
      'wrong_commitment_count',
      'invalid_encoding',
    ]);
    assertUnchanged(before, await snapshot(), 'refused round 2');
    await assertStillOpen(a, 'refused round 2');
    await signAttempt(a);
    const replay = await send('signRound2', a.round2);
    assert.equal(replay.code, 'consumed_nonce_replay');
  });

  it('example: a round-3 request with boxes from the wrong senders is refused and the ceremony survives', async () => {
    const c = await ceremonyAt(2, 3);
    let settled = false;
    try {
      for (const senders of [
        [2, 4],
        [1, 3],
        [1, 2],
      ]) {
        const body = round3Body(c, 0);
        for (const [i, b] of body.boxes.entries()) b.sender = senders[i]!;
        const { r, before, after } = await fuzzOne('dkgRound3', body);
        assert.equal(r.code, 'invalid_request');
        assertUnchanged(before, after, `dkg.round3 with boxes from ${senders.join(', ')}`);
      }
      await completeCeremony(c, 3);
      settled = true;
    } finally {
      if (!settled) await abortEverywhere(c.id);
    }
  });

  it('example: a repeated dkg.round2 is answered from cache only for the very same round-1 packages', async () => {
    const c = await ceremonyAt(1, 2);
    try {
      // A peer package altered where its proof of knowledge does not reach (commitment[1]):
      // this signer cannot tell, and answers.
      const altered = structuredClone(round2Body(c));
      altered.round1[1]!.commitment[1] = altered.round1[1]!.commitment[0]!;
      assert.equal((await send('dkgRound2', altered)).status, 200);
      // The real packages are another transcript: refused, not answered from the cache.
      const before = await snapshot();
      const r = await send('dkgRound2', round2Body(c));
      assert.equal(r.code, 'ceremony_conflict');
      assertUnchanged(before, await snapshot(), 'dkg.round2 with other packages');
      // The same altered request again is a repeat.
      assert.equal((await send('dkgRound2', altered)).status, 200);
    } finally {
      await abortEverywhere(c.id);
    }
  });

  it('example: aborting one ceremony never deletes the pending key another ceremony stored', async () => {
    // Two ceremonies for one key id both pass round 1 (the key does not exist yet); the first
    // stores its pending key in round 3. Dropping the second must not take that key with it.
    const keyId = rid('k');
    const pair = clients.slice(0, 2);
    const r1 = (id: string) =>
      pair.map((_, i) => ({
        ceremony_id: id,
        key_id: keyId,
        threshold: 2,
        n: 2,
        identifier: i + 1,
        participants: participants().slice(0, 2),
      }));
    const first: Ceremony = { id: rid('c'), n: 2, keyId, round1Req: r1('') };
    first.round1Req = r1(first.id);
    const second = rid('c');
    first.round1 = await Promise.all(pair.map((cl, i) => cl.call('dkgRound1', first.round1Req[i]!)));
    await Promise.all(pair.map((cl, i) => cl.call('dkgRound1', r1(second)[i]!)));
    first.round2 = await Promise.all(pair.map((cl) => cl.call('dkgRound2', round2Body(first))));
    first.round3 = await Promise.all(pair.map((cl, i) => cl.call('dkgRound3', round3Body(first, i))));
    assert.equal(T.store.getKey(keyId)?.status, 'pending');

    const before = await snapshot();
    const r = await send('dkgAbort', { ceremony_id: second });
    assert.equal(r.ok?.aborted, true);
    const after = await snapshot();
    assert.equal(after.live_ceremonies, before.live_ceremonies - 1);
    assert.deepStrictEqual(after.tables, before.tables, "another ceremony's key was deleted");
    await clients[1]!.call('dkgAbort', { ceremony_id: second });
    await completeCeremony(first, 4);
  });

  it('ran the planned number of exchanges', (t) => {
    t.diagnostic(`fast-check seed ${SEED}; ${exchanges} fuzzed exchanges with the node under test`);
    assert.ok(exchanges >= runs(500), `only ${exchanges} exchanges`);
  });
});
