/**
 * What a signer signs and whom it answers (issue "Trust anchors and provable blame", items
 * 1 and 6g): a request whose envelope does not verify gets an unsigned refusal (nothing this
 * node signs is bound to a request it cannot attribute), an authenticated request's refusal
 * is signed; /metrics answers loopback peers, or a bearer token, or lives on its own listener.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSignerConfig, type SignerConfig } from '../../src/config/signer.js';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../../src/crypto/index.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { FloeError } from '../../src/protocol/errors.js';
import { acceptResponse, prepareRequest } from '../../src/protocol/exchange.js';
import { type MessageSpec, SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { type RunningSigner, startSigner } from '../../src/signer/node.js';
import { isLoopback } from '../../src/signer/server.js';
import { openRequest } from '../helpers/sign-requests.js';

const coordinator = softwareIdentity(generateIdentityKey());
const stranger = softwareIdentity(generateIdentityKey());
const PASS = 'server auth test passphrase';
const TOKEN = 'metrics-token-0123456789abcdef';

describe('signer: signed answers only to authenticated requests; /metrics access', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-sauth-'));
  const running: RunningSigner[] = [];
  let n = 0;

  async function start(over: Partial<SignerConfig> = {}): Promise<RunningSigner> {
    const cfg = {
      data_dir: join(dir, `s${++n}`),
      listen: '127.0.0.1:0',
      coordinators: [coordinator.publicKeyHex],
      peers: [],
      max_live_attempts: 16,
      attempt_ttl_s: 60,
      log_level: 'silent',
      ...over,
    } as SignerConfig;
    const s = await startSigner(cfg, { FLOE_SIGNER_PASSPHRASE: PASS }, { scryptN: 1 << 12, logger: false });
    running.push(s);
    return s;
  }

  function tokenFile(name: string, content: string, mode: number): string {
    const p = join(dir, name);
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
    return p;
  }

  after(async () => {
    await Promise.all(running.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  describe('signed refusals (item 1)', () => {
    let node: RunningSigner;
    before(async () => {
      node = await start();
    });

    async function post(
      path: string,
      body: string,
      envelope: string | undefined,
      contentType = 'application/json',
    ) {
      const res = await fetch(`${node.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          ...(envelope === undefined ? {} : { [ENVELOPE_HEADER]: envelope }),
        },
        body,
      });
      const text = await res.text();
      return {
        status: res.status,
        code: (JSON.parse(text) as { code?: string }).code,
        envelope: res.headers.get(ENVELOPE_HEADER) ?? undefined,
        contentType: res.headers.get('content-type') ?? '',
        text,
      };
    }

    it('a request whose envelope does not verify gets an unsigned problem, whatever sender and nonce it claims', async () => {
      const body = JSON.stringify({ session_id: 'probe' });
      const seal = (
        o: Partial<{ identity: NodeIdentity; to: string; now: number; type: string; body: string }> = {},
      ) =>
        sealEnvelope({
          identity: o.identity ?? coordinator,
          to: o.to ?? node.identityPub,
          type: o.type ?? 'sign.abort',
          body: o.body ?? body,
          now: o.now ?? Date.now(),
        });
      const captured = seal();
      const first = await post('/v1/sign/abort', body, encodeEnvelope(captured));
      assert.equal(first.status, 200);
      assert.ok(first.envelope, 'the accepted request is answered signed');

      const forgedSig = seal();
      const otherSig = seal({ body: 'something else' }).sig;
      const cases: [string, string | undefined, string, string?][] = [
        ['replayed', encodeEnvelope(captured), 'envelope_replay'],
        ['forged signature', encodeEnvelope({ ...forgedSig, sig: otherSig }), 'envelope_bad_signature'],
        // Claims to be the allowlisted coordinator, signed by a stranger.
        [
          'impersonated sender',
          encodeEnvelope({ ...seal({ identity: stranger }), from: coordinator.publicKeyHex }),
          'envelope_bad_signature',
        ],
        ['unknown sender', encodeEnvelope(seal({ identity: stranger })), 'envelope_unknown_sender'],
        ['wrong recipient', encodeEnvelope(seal({ to: stranger.publicKeyHex })), 'envelope_wrong_recipient'],
        ['stale', encodeEnvelope(seal({ now: Date.now() - 120_000 })), 'envelope_stale'],
        ['future', encodeEnvelope(seal({ now: Date.now() + 120_000 })), 'envelope_future'],
        [
          'body swapped',
          encodeEnvelope(seal({ body: JSON.stringify({ session_id: 'x' }) })),
          'envelope_body_mismatch',
        ],
        ['wrong type', encodeEnvelope(seal({ type: 'sign.open' })), 'envelope_wrong_type'],
        ['malformed', '{"v":1}', 'envelope_malformed'],
        ['missing', undefined, 'envelope_malformed'],
        ['not JSON content', encodeEnvelope(seal()), 'unsupported_media_type', 'text/plain'],
      ];
      for (const [what, env, code, ct] of cases) {
        const r = await post('/v1/sign/abort', body, env, ct);
        assert.equal(r.code, code, what);
        assert.match(r.contentType, /^application\/problem\+json/, what);
        assert.equal(r.envelope, undefined, `${what}: the refusal must not be signed`);
      }
    });

    it('a refusal of an authenticated request is signed and bound to it', async () => {
      const spec = SIGNER_MESSAGES.signOpen as MessageSpec;
      // The handler refuses: no such key.
      const body = openRequest({
        keyId: 'no-such-key',
        sessionId: 's1',
        attempt: 1,
        included: [1, 2],
        intent: new Uint8Array(32),
      });
      const req = prepareRequest(spec, body as never, {
        identity: coordinator,
        to: node.identityPub,
        now: Date.now(),
      });
      const res = await fetch(`${node.url}${req.path}`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      const text = await res.text();
      const envelope = res.headers.get(ENVELOPE_HEADER) ?? undefined;
      assert.equal(res.status, 404);
      assert.ok(envelope, 'signed');
      assert.throws(
        () =>
          acceptResponse(
            spec,
            { status: res.status, envelope, text },
            {
              self: coordinator.publicKeyHex,
              peer: node.identityPub,
              re: req.nonce,
              now: Date.now(),
            },
          ),
        (e: unknown) => e instanceof FloeError && e.code === 'unknown_key',
      );

      // A body the schema refuses, in a valid envelope: signed too.
      const abort = SIGNER_MESSAGES.signAbort as MessageSpec;
      const text2 = JSON.stringify({ session_id: 7 });
      const env2 = sealEnvelope({
        identity: coordinator,
        to: node.identityPub,
        type: abort.type,
        body: text2,
        now: Date.now(),
      });
      const r2 = await post(abort.path, text2, encodeEnvelope(env2));
      assert.equal(r2.code, 'invalid_request');
      assert.ok(r2.envelope, 'signed');
      assert.throws(
        () =>
          acceptResponse(
            abort,
            { status: r2.status, envelope: r2.envelope, text: r2.text },
            {
              self: coordinator.publicKeyHex,
              peer: node.identityPub,
              re: env2.nonce,
              now: Date.now(),
            },
          ),
        (e: unknown) => e instanceof FloeError && e.code === 'invalid_request',
      );
    });
  });

  describe('/metrics access (item 6g)', () => {
    const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

    it('recognises loopback peers only by the socket address', () => {
      for (const a of ['127.0.0.1', '127.255.3.4', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.9'])
        assert.ok(isLoopback(a), a);
      for (const a of [
        undefined,
        '',
        '10.0.0.1',
        '::ffff:10.0.0.1',
        '128.0.0.1',
        '::',
        '0.0.0.0',
        '1127.0.0.1',
        'fe80::1',
      ])
        assert.equal(isLoopback(a), false, String(a));
    });

    it('without a token: loopback peers only (403 problem for others)', async () => {
      const s = await start();
      const r = await get(`${s.url}/metrics`);
      assert.equal(r.status, 200);
      assert.match(await r.text(), /floe_signer_live_attempts/);
      for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
        const ok = await s.app.inject({ method: 'GET', url: '/metrics', remoteAddress });
        assert.equal(ok.statusCode, 200, remoteAddress);
      }
      for (const remoteAddress of ['10.1.2.3', '192.168.0.7', '::ffff:10.0.0.1', '2001:db8::1']) {
        const no = await s.app.inject({
          method: 'GET',
          url: '/metrics',
          remoteAddress,
          headers: { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '127.0.0.1' },
        });
        assert.equal(no.statusCode, 403, remoteAddress);
        assert.match(String(no.headers['content-type']), /^application\/problem\+json/);
        assert.equal(JSON.parse(no.body).code, 'forbidden');
        assert.ok(!no.body.includes('floe_signer'), 'no metrics in the refusal');
      }
      // Health stays public.
      assert.equal(
        (await s.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.1.2.3' })).statusCode,
        200,
      );
    });

    it('with metrics_token_file: the bearer token from any address, and nothing else (401 problem)', async () => {
      const s = await start({ metrics_token_file: tokenFile('token-a', `${TOKEN}\n`, 0o600) });
      const refused = async (
        p: Promise<{ status: number; contentType: string; body: string; auth: string | null }>,
      ) => {
        const r = await p;
        assert.equal(r.status, 401);
        assert.match(r.contentType, /^application\/problem\+json/);
        assert.equal(JSON.parse(r.body).code, 'unauthorized');
        assert.match(String(r.auth), /^Bearer/);
        assert.ok(!r.body.includes(TOKEN));
      };
      const viaFetch = async (h: Record<string, string>) => {
        const r = await get(`${s.url}/metrics`, h);
        return {
          status: r.status,
          contentType: r.headers.get('content-type') ?? '',
          body: await r.text(),
          auth: r.headers.get('www-authenticate'),
        };
      };
      // Loopback is not enough any more.
      await refused(viaFetch({}));
      await refused(viaFetch({ authorization: 'Bearer wrong' }));
      await refused(viaFetch({ authorization: `Bearer ${TOKEN}x` }));
      await refused(viaFetch({ authorization: `Bearer ${TOKEN.slice(0, -1)}` }));
      await refused(viaFetch({ authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }));
      await refused(viaFetch({ authorization: TOKEN }));
      const ok = await viaFetch({ authorization: `Bearer ${TOKEN}` });
      assert.equal(ok.status, 200);
      assert.match(ok.body, /floe_signer_requests_total|floe_signer_live_attempts/);
      // From another address, with the token.
      const remote = await s.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '10.9.8.7',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(remote.statusCode, 200);
      const remoteNo = await s.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.9.8.7' });
      assert.equal(remoteNo.statusCode, 401);
    });

    it('a token file readable by group or others stops the start, naming the file and not the token', async () => {
      const p = tokenFile('token-b', TOKEN, 0o644);
      await assert.rejects(start({ metrics_token_file: p }), (e: unknown) => {
        assert.ok(e instanceof FloeError && e.code === 'invalid_request');
        assert.match(e.message, /metrics token file .*token-b.*group or others/);
        assert.ok(!e.message.includes(TOKEN));
        return true;
      });
      await assert.rejects(start({ metrics_token_file: tokenFile('token-c', '\n', 0o600) }), (e: unknown) => {
        assert.ok(e instanceof FloeError && e.code === 'invalid_request');
        return true;
      });
    });

    it('with metrics_listen: /metrics and /healthz there, unauthenticated; /metrics not on the main port', async () => {
      const s = await start({ metrics_listen: '127.0.0.1:0' });
      assert.ok(s.metricsUrl && s.metricsUrl !== s.url);
      const main = await get(`${s.url}/metrics`);
      assert.equal(main.status, 404);
      assert.equal(JSON.parse(await main.text()).code, 'not_found');
      assert.equal((await get(`${s.url}/healthz`)).status, 200, 'the main port keeps /healthz');
      const m = await get(`${s.metricsUrl}/metrics`);
      assert.equal(m.status, 200);
      assert.match(await m.text(), /floe_signer_live_attempts/);
      const h = (await (await get(`${s.metricsUrl}/healthz`)).json()) as { status: string; identity: string };
      assert.deepEqual([h.status, h.identity], ['ok', s.identityPub]);
      // The operator chose who reaches this listener: any peer address is answered.
      const remote = await s.metricsApp!.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '10.1.1.1',
      });
      assert.equal(remote.statusCode, 200);
      // Nothing else is served there.
      assert.equal((await get(`${s.metricsUrl}/v1/info`)).status, 404);
    });

    it('with metrics_listen and a token: the token is required on the metrics listener', async () => {
      const s = await start({
        metrics_listen: '127.0.0.1:0',
        metrics_token_file: tokenFile('token-d', TOKEN, 0o600),
      });
      assert.equal((await get(`${s.metricsUrl}/metrics`)).status, 401);
      assert.equal((await get(`${s.metricsUrl}/metrics`, { authorization: `Bearer ${TOKEN}` })).status, 200);
      assert.equal((await get(`${s.url}/metrics`, { authorization: `Bearer ${TOKEN}` })).status, 404);
    });

    it('configuration: metrics_token_file / FLOE_SIGNER_METRICS_TOKEN_FILE and metrics_listen / FLOE_SIGNER_METRICS_LISTEN', () => {
      const base = { FLOE_SIGNER_DATA_DIR: dir, FLOE_SIGNER_COORDINATORS: coordinator.publicKeyHex };
      const cfg = loadSignerConfig(undefined, {
        ...base,
        FLOE_SIGNER_METRICS_TOKEN_FILE: 'rel/token',
        FLOE_SIGNER_METRICS_LISTEN: '10.0.0.5:9101',
      });
      assert.equal(cfg.metrics_token_file, join(process.cwd(), 'rel/token'));
      assert.equal(cfg.metrics_listen, '10.0.0.5:9101');
      const plain = loadSignerConfig(undefined, base);
      assert.equal(plain.metrics_token_file, undefined);
      assert.equal(plain.metrics_listen, undefined);
      const cfgFile = join(dir, 'signer.json');
      writeFileSync(
        cfgFile,
        JSON.stringify({ metrics_token_file: 'secrets/metrics.token', metrics_listen: '127.0.0.1:9101' }),
      );
      const fromFile = loadSignerConfig(cfgFile, base);
      assert.equal(fromFile.metrics_token_file, join(dir, 'secrets/metrics.token'));
      for (const bad of ['nohost', 'host:port', ':9101']) {
        assert.throws(
          () => loadSignerConfig(undefined, { ...base, FLOE_SIGNER_METRICS_LISTEN: bad }),
          (e: unknown) => e instanceof FloeError && e.code === 'invalid_request',
          bad,
        );
      }
      assert.throws(
        () =>
          loadSignerConfig(undefined, {
            ...base,
            FLOE_SIGNER_LISTEN: '127.0.0.1:7101',
            FLOE_SIGNER_METRICS_LISTEN: '127.0.0.1:7101',
          }),
        (e: unknown) => e instanceof FloeError && /metrics_listen/.test(e.message),
      );
    });
  });
});
