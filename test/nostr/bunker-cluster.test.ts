/**
 * The NIP-46 bunker hosted by Floe for a real key (issue 12): a coordinator with three signer
 * processes (test/helpers/cluster.ts), a 2-of-3 DKG key, a relay process (src/nostr/relay-main.ts),
 * and the clients people use: nostr-tools `BunkerSigner` (bunker:// and, through
 * POST …/bunker/connect, nostrconnect://) and NDK `NDKNip46Signer`. Signatures are FROST
 * sessions on the signers (visible in GET /v1/sessions); NIP-04/NIP-44 go through threshold
 * ECDH (EcdhService); every check of what comes back is nostr-tools' or noble's, not Floe's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import NDK, { NDKEvent, NDKNip46Signer, NDKPrivateKeySigner, NDKRelay } from '@nostr-dev-kit/ndk';
import * as ntNip04 from 'nostr-tools/nip04';
import * as ntNip44 from 'nostr-tools/nip44';
import { BunkerSigner, createNostrConnectURI, parseBunkerInput } from 'nostr-tools/nip46';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { nowSeconds } from '../../src/nostr/event.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/until.js';
import { keypair, type RelayProcess, spawnRelay, within } from './helpers.js';

useWebSocketImplementation(WebSocket);
// NDK opens relays with the global WebSocket, which Node 20 does not have
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
// NDK 3.0.3 re-arms a 30 s timer per relay forever (signature sampling), which would keep this
// process alive after the tests; the sampling is irrelevant here
(NDKRelay.prototype as unknown as { updateValidationRatio(): void }).updateValidationRatio = () => {};

/** Deadline of one bunker round trip that signs (a FROST session on a loaded machine included). */
const WAIT = 20_000;
const third = keypair();

/** nostr-tools rejects with the error string of the answer. */
async function rejectsWith(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  try {
    await within(p, WAIT, what);
  } catch (e) {
    assert.match(e instanceof Error ? e.message : String(e), pattern, what);
    return;
  }
  assert.fail(`${what}: expected a refusal`);
}

describe('a Floe bunker for a threshold key, driven by nostr-tools and NDK', () => {
  let relay: RelayProcess;
  let cluster: TestCluster;
  let key: { id: string; x_only_public_key: string };
  let bunkerPubkey = '';
  const cleanups: (() => unknown)[] = [];
  /** Every secret issued, to check none reaches the audit log or the database. */
  const secrets: string[] = [];

  const db = () => (cluster.coordinator!.backend as PgBackend).db;
  const path = (rest = '') => `/v1/keys/${key.id}/bunker${rest}`;

  before(async () => {
    // assigned one by one, so that a failed start still leaves the other to be stopped
    await Promise.all([
      spawnRelay(['--port', '0']).then((r) => (relay = r)),
      startCluster({ signers: 3 }).then((c) => (cluster = c)),
    ]);
    await cluster.registerSigners();
    key = await cluster.createKey(2);
  });

  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort: the cluster and the relay go below whatever happened
      }
    }
    await cluster?.close();
    await relay?.kill();
  });

  /** A nostr-tools pool that never schedules an idle close (it would outlive destroy()). */
  function ntPool(): SimplePool {
    const pool = new SimplePool();
    pool.idleTimeout = 0;
    return pool;
  }

  async function ntClient(url: string, o: { sk?: Uint8Array; onauth?: (url: string) => void } = {}) {
    const sk = o.sk ?? generateSecretKey();
    const pool = ntPool();
    const bp = await parseBunkerInput(url);
    assert.ok(bp, 'nostr-tools parses the bunker URL');
    const signer = BunkerSigner.fromBunker(sk, bp, { pool, ...(o.onauth ? { onauth: o.onauth } : {}) });
    cleanups.push(async () => {
      await signer.close();
      pool.destroy();
    });
    return { signer, sk, pk: getPublicKey(sk) };
  }

  async function issue(body: Record<string, unknown> = {}) {
    const r = await cluster.api('POST', path(), body);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const secret = new URL(r.body.bunker_url).searchParams.get('secret');
    assert.ok(secret);
    secrets.push(secret);
    return r.body as {
      bunker_url: string;
      remote_signer_pubkey: string;
      relays: string[];
      expires_at: number;
    };
  }

  async function connected(permissions: string[], o: { onauth?: (url: string) => void } = {}) {
    const { bunker_url } = await issue({ permissions });
    const c = await ntClient(bunker_url, o);
    await within(c.signer.connect(), WAIT, 'connect');
    return c;
  }

  const sessionsOfEvent = async (eventId: string) =>
    (await cluster.api('GET', '/v1/sessions?limit=500')).body.items.filter(
      (s: { final_event_id: string | null }) => s.final_event_id === eventId,
    );

  test('POST …/bunker issues a bunker:// URL; the bunker runs on this coordinator', async () => {
    const before = Date.now();
    const b = await issue({ relays: [relay.url], permissions: ['sign_event:1'] });
    bunkerPubkey = b.remote_signer_pubkey;
    assert.match(bunkerPubkey, /^[0-9a-f]{64}$/);
    assert.notEqual(bunkerPubkey, key.x_only_public_key, 'the transport key is not the user key');
    assert.deepEqual(b.relays, [relay.url]);
    assert.ok(
      b.expires_at >= before + 900_000 && b.expires_at <= Date.now() + 900_000,
      'expires in 15 minutes',
    );
    const bp = await parseBunkerInput(b.bunker_url);
    assert.deepEqual({ ...bp, secret: null }, { pubkey: bunkerPubkey, relays: [relay.url], secret: null });

    const state = await cluster.api('GET', path());
    assert.equal(state.status, 200);
    assert.equal(state.body.enabled, true);
    assert.equal(state.body.remote_signer_pubkey, bunkerPubkey);
    assert.equal(state.body.running?.here, true);
    assert.equal(state.body.running?.coordinator, cluster.coordinator!.coordinator.instanceId);
    assert.equal(state.body.openable_here, true);
    // the key's relays would have been the default; another POST keeps the bunker's own
    const again = await issue();
    assert.equal(again.remote_signer_pubkey, bunkerPubkey, 'one remote-signer key per key');
    assert.deepEqual(again.relays, [relay.url]);
  });

  test('nostr-tools BunkerSigner.fromBunker: get_public_key is the key; sign_event is a FROST session', async () => {
    const c = await connected(['sign_event:1']);
    assert.equal(await within(c.signer.getPublicKey(), WAIT, 'get_public_key'), key.x_only_public_key);
    await within(c.signer.ping(), WAIT, 'ping');
    const t = { kind: 1, created_at: nowSeconds(), tags: [['t', 'floe']], content: 'signed by two of three' };
    const ev = await within(c.signer.signEvent(t), WAIT, 'sign_event');
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.pubkey, key.x_only_public_key);
    assert.deepEqual({ kind: ev.kind, created_at: ev.created_at, tags: ev.tags, content: ev.content }, t);

    // an ordinary session: listed, completed, created by the bunker client, audited
    const [s] = await sessionsOfEvent(ev.id);
    assert.ok(s, 'the session is in GET /v1/sessions');
    assert.equal(s.status, 'completed');
    assert.equal(s.intent_type, 'nostr_event');
    assert.equal(s.signature, ev.sig);
    assert.equal(s.participants.length, 2);
    const row = await db().adminQuery<{ created_by: string }>(
      'SELECT created_by FROM signing_sessions WHERE session_id = $1',
      [s.id],
    );
    assert.equal(row.rows[0]!.created_by, `bunker:${c.pk}`);
    const audit = await db().adminQuery<{ data: { client: string; kind: number } }>(
      `SELECT data FROM audit_events WHERE kind = 'bunker.session' AND subject_id = $1`,
      [s.id],
    );
    assert.deepEqual(
      audit.rows.map((r) => [r.data.client, r.data.kind]),
      [[c.pk, 1]],
    );

    const clients = await cluster.api('GET', path('/clients'));
    const mine = clients.body.items.find((x: { pubkey: string }) => x.pubkey === c.pk);
    assert.deepEqual(
      { via: mine.via, permissions: mine.permissions },
      { via: 'bunker', permissions: ['sign_event:1'] },
    );
  });

  test('a bunker secret is single use: a second client with the same URL is refused', async () => {
    const { bunker_url } = await issue({ permissions: ['sign_event:1'] });
    const first = await ntClient(bunker_url);
    await within(first.signer.connect(), WAIT, 'first connect');
    const second = await ntClient(bunker_url);
    await rejectsWith(
      second.signer.connect(),
      /^unauthorized: connect: the secret is invalid, expired or already used$/,
      'second use',
    );
    await rejectsWith(second.signer.getPublicKey(), /^unauthorized: not connected/, 'refused client');
    // the secret is stored as its hash only, marked used by the first client
    const row = await db().adminQuery<{ used_by: string }>(
      'SELECT used_by FROM bunker_secrets WHERE secret_sha256 = $1',
      [createHash('sha256').update(secrets.at(-1)!).digest('hex')],
    );
    assert.deepEqual(row.rows, [{ used_by: first.pk }]);
  });

  test('refused permissions: an unlisted kind, an encryption method not granted; no session is created', async () => {
    const c = await connected(['sign_event:1']);
    const before = (await cluster.api('GET', '/v1/sessions?limit=500')).body.items.length;
    await rejectsWith(
      c.signer.signEvent({ kind: 7, created_at: nowSeconds(), tags: [], content: '+' }),
      /^forbidden: sign_event for kind 7 is not granted to this client$/,
      'kind 7',
    );
    await rejectsWith(
      c.signer.nip44Encrypt(third.pk, 'x'),
      /^forbidden: nip44_encrypt is not granted to this client$/,
      'nip44_encrypt',
    );
    assert.equal((await cluster.api('GET', '/v1/sessions?limit=500')).body.items.length, before);
  });

  test('NIP-44 and NIP-04 through threshold ECDH match nostr-tools with a third party, both ways', async () => {
    const c = await connected(['nip44_encrypt', 'nip44_decrypt', 'nip04_encrypt', 'nip04_decrypt']);
    const ck = ntNip44.getConversationKey(third.sk, key.x_only_public_key);
    const ct44 = await within(c.signer.nip44Encrypt(third.pk, 'to the third party ✉'), WAIT, 'nip44_encrypt');
    assert.equal(ntNip44.decrypt(ct44, ck), 'to the third party ✉');
    const from44 = ntNip44.encrypt('from the third party', ck);
    assert.equal(
      await within(c.signer.nip44Decrypt(third.pk, from44), WAIT, 'nip44_decrypt'),
      'from the third party',
    );
    const ct04 = await within(c.signer.nip04Encrypt(third.pk, 'legacy ✉'), WAIT, 'nip04_encrypt');
    assert.equal(ntNip04.decrypt(third.sk, key.x_only_public_key, ct04), 'legacy ✉');
    const from04 = ntNip04.encrypt(third.sk, key.x_only_public_key, 'legacy back');
    assert.equal(await within(c.signer.nip04Decrypt(third.pk, from04), WAIT, 'nip04_decrypt'), 'legacy back');
    // a payload for someone else: a clear decryption error
    const other = ntNip44.encrypt('not for you', ntNip44.getConversationKey(third.sk, keypair().pk));
    await rejectsWith(c.signer.nip44Decrypt(third.pk, other), /^invalid_encoding: .*MAC/, 'bad MAC');
  });

  test('NDK NDKNip46Signer connects over bunker://, signs, and encrypts with NIP-44', async (t) => {
    const { bunker_url } = await issue({ permissions: ['sign_event:1', 'nip44_encrypt'] });
    // no outbox model: NDK would otherwise open public relays (loopback only here)
    const ndk = new NDK({ enableOutboxModel: false, autoConnectUserRelays: false });
    const signer = NDKNip46Signer.bunker(ndk, bunker_url, NDKPrivateKeySigner.generate());
    const pools = () =>
      (ndk as unknown as { pools: { relays: Map<string, { disconnect(): void }> }[] }).pools;
    // NDK is stopped at the end of this test, not of the file: a later test kills and restarts
    // the relay, and NDK's reconnect timers, once scheduled, keep a process alive.
    const stop = () => {
      signer.stop();
      for (const p of pools()) for (const r of p.relays.values()) r.disconnect();
    };
    t.after(stop);
    const u = await within(signer.blockUntilReady(), WAIT, 'NDK blockUntilReady');
    assert.equal(u.pubkey, key.x_only_public_key);
    const ev = new NDKEvent(ndk, { kind: 1, content: 'from NDK', tags: [], created_at: nowSeconds() });
    await within(ev.sign(signer), WAIT, 'NDK sign');
    const raw = ev.rawEvent();
    assert.equal(verifyEvent({ ...raw, sig: ev.sig! } as never), true);
    assert.equal((await sessionsOfEvent(ev.id)).length, 1, 'a session of the key');
    const ct = await within(
      signer.encrypt(ndk.getUser({ pubkey: third.pk }), 'hi ndk', 'nip44'),
      WAIT,
      'NDK nip44',
    );
    assert.equal(ntNip44.decrypt(ct, ntNip44.getConversationKey(third.sk, key.x_only_public_key)), 'hi ndk');
  });

  test('nostrconnect://: POST …/bunker/connect answers the URI; BunkerSigner.fromURI connects and signs', async () => {
    const sk = generateSecretKey();
    const pk = getPublicKey(sk);
    const uri = createNostrConnectURI({
      clientPubkey: pk,
      relays: [relay.url],
      secret: 'c0ffee',
      perms: ['sign_event:1', 'nip44_encrypt', 'get_relays'],
      name: 'Test App',
    });
    const pool = ntPool();
    cleanups.push(() => pool.destroy());
    await within(pool.ensureRelay(relay.url), WAIT, 'client relay');
    const connecting = BunkerSigner.fromURI(sk, uri, { pool }, WAIT * 2);
    let signer: BunkerSigner | undefined;
    connecting.then((s) => (signer = s)).catch(() => {});
    let answer: any;
    const deadline = Date.now() + WAIT * 2;
    // the connect answer is ephemeral: repeat it until the client has seen it
    while (!signer) {
      assert.ok(Date.now() < deadline, 'the client never saw the connect answer');
      const r = await cluster.api('POST', path('/connect'), {
        uri,
        permissions: ['sign_event', 'nip44_encrypt'],
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      answer = r.body;
      await within(connecting, 1000, 'fromURI').catch(() => {});
    }
    const s = signer as BunkerSigner;
    cleanups.push(() => s.close());
    assert.deepEqual(answer.ignored_permissions, ['get_relays']);
    assert.deepEqual(
      { pubkey: answer.client.pubkey, via: answer.client.via, name: answer.client.name },
      { pubkey: pk, via: 'nostrconnect', name: 'Test App' },
    );
    assert.deepEqual(answer.client.permissions, ['sign_event:1', 'nip44_encrypt']);
    assert.equal(await within(s.getPublicKey(), WAIT, 'get_public_key'), key.x_only_public_key);
    const ev = await within(
      s.signEvent({ kind: 1, created_at: nowSeconds(), tags: [], content: 'via nostrconnect' }),
      WAIT,
      'sign',
    );
    assert.equal(verifyEvent(ev), true);
    await rejectsWith(
      s.signEvent({ kind: 7, created_at: nowSeconds(), tags: [], content: '' }),
      /^forbidden: sign_event for kind 7/,
      'only what it asked for',
    );
  });

  test('held requests: the client gets auth_url; the API lists, approves and denies them', async () => {
    const policy = await issue({ require_approval: ['sign_event:30023'] });
    assert.equal(policy.remote_signer_pubkey, bunkerPubkey);
    const urls: string[] = [];
    let wake: (() => void) | undefined;
    const c = await connected(['sign_event'], {
      onauth: (u) => {
        urls.push(u);
        wake?.();
      },
    });
    const nextUrl = async () => {
      if (urls.length === 0) await within(new Promise<void>((r) => (wake = r)), WAIT, 'auth_url');
      return urls.shift()!;
    };
    const t = { kind: 30_023, created_at: nowSeconds(), tags: [['d', 'post']], content: 'long form' };
    const signed = c.signer.signEvent(t);
    signed.catch(() => {}); // awaited below
    const url = await nextUrl();
    const approvalId = url.split('/').pop()!;
    assert.equal(url, `${cluster.url}${path(`/approvals/${approvalId}`)}`);
    // the auth_url is the API's page of the held request
    const page = await request(cluster.url, 'GET', new URL(url).pathname, { token: cluster.adminToken });
    assert.equal(page.status, 200);
    assert.deepEqual(
      [page.body.client, page.body.method, page.body.kind, page.body.status],
      [c.pk, 'sign_event', 30_023, 'pending'],
    );
    const listed = await until('the held request is listed', async () => {
      const r = await cluster.api('GET', path('/approvals'));
      return r.body.items.find((a: { id: string }) => a.id === approvalId);
    });
    assert.equal(listed.status, 'pending');
    const ok = await cluster.api('POST', path(`/approvals/${approvalId}/approve`));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.status, 'approved');
    const tokens = (await cluster.api('GET', '/v1/tokens')).body.items.map((x: { id: string }) => x.id);
    assert.ok(tokens.includes(ok.body.decided_by), 'the deciding API token is recorded');
    const ev = await within(signed, WAIT, 'signed after approval');
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.kind, 30_023);
    const twice = await cluster.api('POST', path(`/approvals/${approvalId}/deny`));
    assert.equal(twice.status, 409);
    assert.equal(twice.body.code, 'conflict');

    const refused = c.signer.signEvent({ ...t, content: 'second' });
    refused.catch(() => {}); // awaited below; the denial may come first
    const id2 = (await nextUrl()).split('/').pop()!;
    await until(
      'second held request recorded',
      async () => (await cluster.api('GET', path(`/approvals/${id2}`))).status === 200,
    );
    assert.equal((await cluster.api('POST', path(`/approvals/${id2}/deny`))).status, 200);
    await rejectsWith(refused, /^approval_rejected: the request was denied$/, 'denied');
    // kinds the policy does not hold are answered at once; then the policy is lifted
    assert.equal(verifyEvent(await within(c.signer.signEvent({ ...t, kind: 1 }), WAIT, 'kind 1')), true);
    await issue({ require_approval: [] });
    assert.equal(
      verifyEvent(await within(c.signer.signEvent({ ...t, content: 'free' }), WAIT, 'no policy')),
      true,
    );
  });

  test('logout ends the client; DELETE …/clients/:pubkey (revoke) ends another', async () => {
    const c = await connected(['sign_event:1']);
    await within(c.signer.logout(), WAIT, 'logout');
    const listed = async (pk: string) =>
      (await cluster.api('GET', path('/clients'))).body.items.some(
        (x: { pubkey: string }) => x.pubkey === pk,
      );
    assert.equal(await listed(c.pk), false);
    const again = await ntClient(`bunker://${bunkerPubkey}?relay=${encodeURIComponent(relay.url)}`, {
      sk: c.sk,
    });
    await rejectsWith(again.signer.ping(), /^unauthorized: not connected/, 'after logout');

    const d = await connected(['sign_event:1']);
    assert.equal(await listed(d.pk), true);
    const r = await cluster.api('DELETE', path(`/clients/${d.pk}`));
    assert.equal(r.status, 204);
    await rejectsWith(d.signer.getPublicKey(), /^unauthorized: not connected/, 'after revoke');
    const gone = await cluster.api('DELETE', path(`/clients/${d.pk}`));
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'bunker_client_not_found');
  });

  test('bad input is refused with a stable code and a hint, and changes nothing; roles apply', async () => {
    const snapshot = async () =>
      (
        await db().adminQuery<{ n: number; u: string }>(
          `SELECT (SELECT count(*)::int FROM bunker_secrets) AS n,
                  (SELECT string_agg(updated_at::text || relays::text, ',') FROM bunkers) AS u`,
        )
      ).rows[0];
    const before = await snapshot();
    const bad: [string, string, unknown, number, string, RegExp][] = [
      [
        'POST',
        path(),
        { relays: ['http://relay.example'] },
        400,
        'invalid_request',
        /relays\[0\]: relay url: scheme/,
      ],
      ['POST', path(), { permissions: ['sign_event:70000'] }, 400, 'invalid_request', /permissions\[0\]/],
      ['POST', path(), { permissions: ['get_relays'] }, 400, 'invalid_request', /unknown method/],
      ['POST', path(), { expires_in_s: 10 }, 400, 'invalid_request', /expires_in_s/],
      ['POST', path(), { colour: 'blue' }, 400, 'invalid_request', /./],
      ['POST', '/v1/keys/key_nope/bunker', {}, 404, 'key_not_found', /key_nope/],
      ['POST', path('/connect'), { uri: 'https://example.com' }, 400, 'invalid_request', /nostrconnect uri/],
      [
        'POST',
        path('/connect'),
        { uri: `nostrconnect://${third.pk}?relay=${encodeURIComponent(relay.url)}` },
        400,
        'invalid_request',
        /no secret/,
      ],
      ['DELETE', path(`/clients/${third.pk}`), undefined, 404, 'bunker_client_not_found', /no client/],
      ['DELETE', path('/clients/nothex'), undefined, 400, 'invalid_request', /./],
      [
        'POST',
        path(`/approvals/${'ab'.repeat(16)}/approve`),
        undefined,
        404,
        'bunker_approval_not_found',
        /no held request/,
      ],
    ];
    for (const [method, p, body, status, code, detail] of bad) {
      const r = await cluster.api(method, p, body);
      assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code, `${method} ${p}`);
      assert.match(r.body.detail, detail, `${method} ${p}`);
    }
    const hinted = await cluster.api('POST', path(), { relays: ['http://relay.example'] });
    assert.match(hinted.body.hint, /wss:\/\//);
    assert.deepEqual(await snapshot(), before, 'nothing changed');

    // a key without a bunker, and without relays anywhere
    const other = await cluster.createKey(2);
    const none = await cluster.api('GET', `/v1/keys/${other.id}/bunker`);
    assert.equal(none.status, 404);
    assert.equal(none.body.code, 'bunker_not_found');
    const noRelays = await cluster.api('POST', `/v1/keys/${other.id}/bunker`, {});
    assert.equal(noRelays.status, 400);
    assert.match(noRelays.body.hint, /PATCH \/v1\/keys/);
    assert.deepEqual(await snapshot(), before, 'nothing changed');

    // issuing a secret is an operator's act; a viewer reads
    const viewer = await cluster.api('POST', '/v1/tokens', { role: 'viewer' });
    const token = viewer.body.token as string;
    const refused = await request(cluster.url, 'POST', path(), { token, json: {} });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'forbidden');
    assert.equal((await request(cluster.url, 'GET', path(), { token })).status, 200);
    assert.equal((await request(cluster.url, 'DELETE', path(), { token })).status, 403);
    assert.deepEqual(await snapshot(), before, 'nothing changed');
  });

  test('with one of three signers killed (kill -9), the bunker still signs', async () => {
    const c = await connected(['sign_event:1']);
    await cluster.signers[0]!.kill('SIGKILL');
    try {
      const ev = await within(
        c.signer.signEvent({ kind: 1, created_at: nowSeconds(), tags: [], content: 'one signer down' }),
        WAIT,
        'sign with a signer down',
      );
      assert.equal(verifyEvent(ev), true);
      const [s] = await sessionsOfEvent(ev.id);
      assert.equal(s.participants.includes(1), false, 'signer 1 did not take part');
    } finally {
      await cluster.restartSigner(0);
    }
  });

  test('after the relay process is killed (-9) and restarted on its port, the bunker answers again', async () => {
    const c = await connected(['sign_event:1']);
    await within(c.signer.ping(), WAIT, 'ping before');
    const port = relay.port;
    await relay.kill('SIGKILL');
    relay = await spawnRelay(['--port', String(port)]);
    // a fresh client (the old one's connection died with the relay); retried, each try with
    // its own deadline, until the bunker's REQ is in place on the new relay process
    const again = await ntClient(`bunker://${bunkerPubkey}?relay=${encodeURIComponent(relay.url)}`, {
      sk: c.sk,
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await within(again.signer.ping(), 1000, 'ping after restart');
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
    const ev = await within(
      again.signer.signEvent({ kind: 1, created_at: nowSeconds(), tags: [], content: 'after restart' }),
      WAIT,
      'sign after restart',
    );
    assert.equal(verifyEvent(ev), true);
  });

  test('DELETE …/bunker disables it: no answers, unused secrets void; enabling again keeps its key and clients', async () => {
    const c = await connected(['sign_event:1']);
    const unused = await issue({ permissions: ['sign_event:1'] });
    const off = await cluster.api('DELETE', path());
    assert.equal(off.status, 200);
    assert.equal(off.body.enabled, false);
    assert.equal(off.body.running, null);
    assert.equal(cluster.coordinator!.coordinator.bunkerHost!.local('default', key.id), undefined);
    // stopped: a request gets no answer at all
    await assert.rejects(within(c.signer.ping(), 2000, 'ping while disabled'), /timed out/);

    const on = await issue();
    assert.equal(on.remote_signer_pubkey, bunkerPubkey, 'the same remote-signer key');
    const state = await cluster.api('GET', path());
    assert.equal(state.body.enabled, true);
    assert.equal(state.body.running?.here, true);
    await within(c.signer.ping(), WAIT, 'a client from before answers again');
    const late = await ntClient(unused.bunker_url);
    await rejectsWith(
      late.signer.connect(),
      /^unauthorized: connect: the secret is invalid/,
      'secret from before',
    );
  });

  test('the audit log names clients, methods and outcomes; never a secret, a plaintext or content', async () => {
    const rows = await db().adminQuery<{ kind: string; data: unknown }>(
      `SELECT kind, data FROM audit_events WHERE kind LIKE 'bunker.%' OR kind = 'key.ecdh'`,
    );
    const text = JSON.stringify(rows.rows);
    for (const s of secrets) assert.equal(text.includes(s), false, 'a secret reached the audit log');
    for (const s of [
      'signed by two of three',
      'third party',
      'legacy',
      'long form',
      'hi ndk',
      'after restart',
    ]) {
      assert.equal(text.includes(s), false, `"${s}" reached the audit log`);
    }
    const kinds = new Set(rows.rows.map((r) => r.kind));
    for (const k of [
      'bunker.created',
      'bunker.secret_issued',
      'bunker.started',
      'bunker.client_connected',
      'bunker.answered',
      'bunker.session',
      'bunker.client_removed',
      'bunker.client_revoked',
      'bunker.approval_requested',
      'bunker.approval_decided',
      'bunker.nostrconnect',
      'bunker.disabled',
    ]) {
      assert.ok(kinds.has(k), `no ${k} event`);
    }
    const refusal = rows.rows.find(
      (r) => r.kind === 'bunker.answered' && (r.data as { code?: string }).code === 'forbidden',
    );
    assert.ok(refusal, 'refusals are audited with their code');
    // secrets are stored as hashes only
    const stored = await db().adminQuery<{ s: string }>('SELECT secret_sha256 AS s FROM bunker_secrets');
    const hashes = new Set(stored.rows.map((r) => r.s));
    const kept = secrets.filter((s) => hashes.has(createHash('sha256').update(s).digest('hex')));
    assert.ok(kept.length > 0, 'the redeemed secrets are kept (as hashes)');
    for (const s of secrets) assert.equal(hashes.has(s), false, 'a secret stored in plaintext');
  });
});
