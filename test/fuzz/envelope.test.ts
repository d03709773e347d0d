/**
 * Input fuzzing (fast-check) of the envelope layer in front of every signer message, and of
 * node.info, against real signer nodes (test/helpers/fuzz-cluster.ts).
 *
 * The envelope property sends raw bodies and headers to every route: broken JSON, wrong
 * top-level types, truncations, huge or deep bodies, odd paths, methods and content types,
 * forged or garbled signatures, wrong recipient / type / time, replays. node.info gets mutated
 * bodies in valid envelopes (test/helpers/fuzz-mutate.ts).
 *
 * Every request: no 5xx; a refusal is a 4xx RFC 9457 problem with a stable code; the node still
 * answers /healthz; and nothing changes (SQLite tables and live gauges). Where the envelope
 * alone decides the outcome, it is that exact refusal; a replayed envelope is refused.
 *
 * Seeds: test/helpers/fuzz-seed.ts (FLOE_FUZZ_SEED, FLOE_FUZZ_PATH, FLOE_FUZZ_SCALE).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { type NodeIdentity, toHex } from '../../src/crypto/index.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { assertUnchanged, checkShape, FuzzCluster } from '../helpers/fuzz-cluster.js';
import { type Ctx, junkArb, materialize, mutate, mutsArb } from '../helpers/fuzz-mutate.js';
import { type FuzzLimits, fuzz, runs, testTimeout } from '../helpers/fuzz-seed.js';

const ENVELOPE: FuzzLimits = { numRuns: 150, timeLimitMs: 60_000 };
const NODE_INFO: FuzzLimits = { numRuns: 15, timeLimitMs: 30_000 };

describe('envelope and node.info fuzzing (fast-check, real SQLite stores)', () => {
  let c: FuzzCluster;
  before(async () => {
    // One held key, for a refusal to leave untouched (nothing here signs or runs a ceremony).
    c = await FuzzCluster.start({ keys: ['k-imp'] });
  });
  after(() => c?.close());

  it('envelope layer: raw bodies and headers are refused with 4xx problems and change nothing', {
    timeout: testTimeout(ENVELOPE),
  }, async (t) => {
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
      fc.record({
        k: fc.constant('sigrandom' as const),
        b: fc.uint8Array({ minLength: 64, maxLength: 64 }),
      }),
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

    const property = fc.asyncProperty(caseArb, async (k) => {
      const spec = routes.find((r) => r.path === k.route);
      const h = harmless[k.harmless]!;
      const type = k.ownType && spec ? spec.type : h.type;
      const validText = h.body;
      let body: string | Uint8Array;
      switch (k.body.k) {
        case 'valid':
          body = validText;
          break;
        case 'text':
          body = k.body.s;
          break;
        case 'bytes':
          body = k.body.b;
          break;
        case 'truncated':
          body = validText.slice(0, k.body.cut % Math.max(1, validText.length));
          break;
        case 'json':
          body = JSON.stringify(k.body.v) ?? '';
          break;
        case 'deep':
          body = `${'['.repeat(k.body.n)}${']'.repeat(k.body.n)}`;
          break;
        case 'big':
          body = JSON.stringify({ session_id: 'x'.repeat(k.body.n) });
          break;
        case 'bignum':
          body = '{"session_id":"s","attempt_id":1e400,"ceremony_id":-0}';
          break;
        case 'empty':
          body = '';
          break;
      }
      const seal = (o: {
        identity?: NodeIdentity;
        to?: string;
        type?: string;
        now?: number;
        body?: string | Uint8Array;
      }) =>
        sealEnvelope({
          identity: o.identity ?? c.coordinator,
          to: o.to ?? c.T.identityPub,
          type: o.type ?? type,
          body: o.body ?? body,
          now: o.now ?? Date.now(),
        });
      let envelope: string | undefined;
      const e = k.env;
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
          envelope = encodeEnvelope(seal({ identity: c.stranger }));
          break;
        case 'wrongto':
          envelope = encodeEnvelope(seal({ to: c.nodes[1]!.identityPub }));
          break;
        case 'wrongtype':
          envelope = encodeEnvelope(seal({ type: spec?.type === 'node.info' ? 'sign.abort' : 'node.info' }));
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
      if (k.contentType) headers['content-type'] = k.contentType;
      // Header values are bytes: non-ASCII travels as JSON \u escapes (same JSON value).
      if (envelope !== undefined && envelope !== '')
        headers[ENVELOPE_HEADER] = envelope.replace(
          /[\u007f-\uffff]/g,
          (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
        );
      const go = async () => {
        const res = await c.fetch(k.route, {
          method: k.method,
          headers,
          ...(k.method === 'GET' ? {} : { body }),
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
          `${k.method} ${k.route}`,
        );
        return { status: res.status, code, text };
      };
      const before = await c.snapshot();
      const r = await go();
      const second = e.k === 'replay' ? await go() : undefined;
      await c.healthy();
      assertUnchanged(before, await c.snapshot(), `${k.method} ${k.route}`);

      // Where the outcome is determined by the envelope alone, it is that exact refusal.
      const plain =
        spec !== undefined &&
        k.method === 'POST' &&
        k.route === spec.path &&
        (k.contentType === 'application/json' || k.contentType === 'application/json; charset=utf-8') &&
        typeof body === 'string' &&
        body.length < 400_000;
      if (r.status === 200 && !(k.route === '/healthz' && k.method === 'GET')) {
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
    });
    await fuzz(t, property, ENVELOPE);
  });

  it('node.info: mutated bodies are refused without state change, or answer who the node is', {
    timeout: testTimeout(NODE_INFO),
  }, async (t) => {
    const property = fc.asyncProperty(mutsArb, async (muts) => {
      const ctx: Ctx = { ids: c.knownIds('s-none', 'c-none'), schema: SIGNER_MESSAGES.nodeInfo.request };
      // Fields other messages carry: node.info takes none.
      const body = await mutate({}, muts, ctx, [
        (b) => ({ ...b, session_id: 's-none' }),
        (b) => ({ ...b, attempt_id: toHex(new Uint8Array(32)) }),
        (b) => ({ ...b, ceremony_id: 'c-none' }),
        (b) => ({ ...b, ceremony_id: 'x'.repeat(64) }),
      ]);
      const { r, before, after } = await c.fuzzOne('nodeInfo', body);
      if (r.status === 200) {
        assert.equal(r.ok.identity, c.T.identityPub);
        assert.equal(r.ok.live_attempts, before.live_attempts);
      }
      assertUnchanged(before, after, 'node.info');
    });
    await fuzz(t, property, NODE_INFO);
  });

  it('ran the planned number of exchanges', (t) => {
    t.diagnostic(`${c.exchanges} fuzzed exchanges with the node under test`);
    const planned = runs(ENVELOPE.numRuns) + runs(NODE_INFO.numRuns);
    assert.ok(c.exchanges >= planned, `only ${c.exchanges} exchanges`);
  });
});
