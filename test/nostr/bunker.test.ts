/**
 * The NIP-46 bunker against relays running as child processes, driven by the clients people
 * use: nostr-tools `BunkerSigner` (bunker:// and nostrconnect://) and NDK `NDKNip46Signer`,
 * plus a bare client for what those never send (malformed requests, NIP-04 content).
 *
 * The backend here holds a plain user key in the test (signing with nostr-tools, ECDH with
 * noble): an independent check of what the bunker hands back. In Floe the backend runs
 * threshold signing and threshold ECDH instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import NDK, { NDKEvent, NDKNip46Signer, NDKPrivateKeySigner, NDKRelay } from '@nostr-dev-kit/ndk';
import * as ntNip04 from 'nostr-tools/nip04';
import * as ntNip44 from 'nostr-tools/nip44';
import { BunkerSigner, createNostrConnectURI, parseBunkerInput } from 'nostr-tools/nip46';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { generateSecretKey, getPublicKey, finalizeEvent as ntFinalize, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import {
  Bunker,
  type BunkerAuditEvent,
  type BunkerBackend,
  type BunkerOptions,
  MemoryBunkerStore,
  secretHash,
} from '../../src/nostr/bunker.js';
import { type NostrEvent, nowSeconds } from '../../src/nostr/event.js';
import { parsePermissions } from '../../src/nostr/nip46.js';
import type { RelayOptions, RelayStatusEvent } from '../../src/nostr/relay.js';
import { deferred, keypair, type RelayProcess, sharedX, spawnRelay, within } from './helpers.js';

useWebSocketImplementation(WebSocket);
// NDK opens relays with the global WebSocket, which Node 20 does not have
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
// NDK 3.0.3 re-arms a 30 s timer per relay forever (signature sampling ratio), which would keep
// this process alive after the tests; the sampling is irrelevant here
(NDKRelay.prototype as unknown as { updateValidationRatio(): void }).updateValidationRatio = () => {};

const WAIT = 6000;
const FAST: RelayOptions = {
  connectTimeoutMs: 2000,
  publishTimeoutMs: 4000,
  reconnect: { initialMs: 50, maxMs: 300, factor: 2, jitter: 0.2 },
};

const user = keypair();
const third = keypair();

/** The test backend: a plain key, signing and ECDH by libraries other than Floe's. */
function plainBackend(sk: Uint8Array): BunkerBackend & { calls: { sign: number; ecdh: number } } {
  const pk = getPublicKey(sk);
  const calls = { sign: 0, ecdh: 0 };
  return {
    calls,
    userPubkey: () => pk,
    async signEvent(t) {
      calls.sign++;
      return ntFinalize(
        { kind: t.kind, content: t.content, tags: t.tags, created_at: t.created_at },
        sk,
      ) as NostrEvent;
    },
    async ecdh(peer) {
      calls.ecdh++;
      return sharedX(sk, peer);
    },
  };
}

/** Audit events, and waiting (with a deadline) for one that matches. */
function auditLog() {
  const log: BunkerAuditEvent[] = [];
  const waiters: { pred: (e: BunkerAuditEvent) => boolean; resolve: (e: BunkerAuditEvent) => void }[] = [];
  return {
    log,
    push: (e: BunkerAuditEvent) => {
      log.push(e);
      for (const w of waiters.filter((w) => w.pred(e))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    },
    /** The first event from now on that matches. */
    next(pred: (e: BunkerAuditEvent) => boolean, what: string): Promise<BunkerAuditEvent> {
      const d = deferred<BunkerAuditEvent>();
      waiters.push({ pred, resolve: d.resolve });
      return within(d.promise, WAIT, what);
    },
  };
}

/** nostr-tools rejects with the error string of the answer. */
async function rejectsWith(p: Promise<unknown>, pattern: RegExp, what: string): Promise<string> {
  try {
    await within(p, WAIT, what);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    assert.match(text, pattern, what);
    return text;
  }
  assert.fail(`${what}: expected a refusal`);
}

const cleanups: (() => unknown)[] = [];
let relayA: RelayProcess;
let relayB: RelayProcess;
let relayR: RelayProcess;
let relayAuth: RelayProcess;

before(async () => {
  // assigned one by one, so that a failed start still leaves the others to be killed
  await Promise.all([
    spawnRelay(['--port', '0']).then((r) => (relayA = r)),
    spawnRelay(['--port', '0']).then((r) => (relayB = r)),
    spawnRelay(['--port', '0']).then((r) => (relayR = r)),
    spawnRelay(['--port', '0', '--auth']).then((r) => (relayAuth = r)),
  ]);
});

after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // best effort: the relays are killed below whatever happened
    }
  }
  await Promise.all([relayA?.kill(), relayB?.kill(), relayR?.kill(), relayAuth?.kill()]);
});

async function startBunker(over: Partial<BunkerOptions> = {}) {
  const audit = auditLog();
  const store = new MemoryBunkerStore();
  const backend = plainBackend(user.sk);
  const bunker = await Bunker.start({
    backend,
    signer: generateSecretKey(),
    relays: [relayA.url],
    store,
    poolOptions: FAST,
    onEvent: audit.push,
    ...over,
  });
  cleanups.push(() => bunker.close());
  return { bunker, audit, store, backend };
}

/**
 * A nostr-tools pool whose relays never schedule an idle close: after a relay dies, that
 * 20 s timer would outlive `destroy()` and hold the test process open.
 */
function ntPool(authSk?: Uint8Array): SimplePool {
  // automaticallyAuth is a pool option at run time, though SimplePool's type leaves it out
  const options = authSk ? { automaticallyAuth: () => async (t: any) => ntFinalize(t, authSk) } : {};
  const pool = new SimplePool(options as ConstructorParameters<typeof SimplePool>[0]);
  pool.idleTimeout = 0;
  return pool;
}

/** A nostr-tools client of `url` with its own pool. */
async function ntClient(url: string, opts: { sk?: Uint8Array; onauth?: (url: string) => void } = {}) {
  const sk = opts.sk ?? generateSecretKey();
  const pool = ntPool(sk);
  const bp = await parseBunkerInput(url);
  assert.ok(bp, 'nostr-tools parses the bunker URL');
  const signer = BunkerSigner.fromBunker(sk, bp, { pool, ...(opts.onauth ? { onauth: opts.onauth } : {}) });
  cleanups.push(async () => {
    await signer.close();
    pool.destroy();
  });
  return { signer, sk, pk: getPublicKey(sk), pool };
}

/** A client connected with a fresh secret granting `perms`. */
/** Every secret the tests were given, to check none reaches the audit log. */
const issued: string[] = [];

async function connected(bunker: Bunker, perms: string, opts: { onauth?: (url: string) => void } = {}) {
  const { url, secret } = await bunker.issueSecret({ permissions: parsePermissions(perms) });
  issued.push(secret);
  const c = await ntClient(url, opts);
  await within(c.signer.connect(), WAIT, 'connect');
  return c;
}

/** A bare client: publishes hand-made requests and reads the raw answers. */
async function rawClient(relay: string, bunkerPk: string) {
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  const pool = ntPool();
  const inbox: { id: string; result?: string; error?: string; scheme: string }[] = [];
  let wake: (() => void) | undefined;
  const eose = deferred();
  const sub = pool.subscribe(
    [relay],
    { kinds: [24_133], '#p': [pk], authors: [bunkerPk] },
    {
      onevent(e) {
        const nip04 = e.content.includes('?iv=');
        const text = nip04
          ? ntNip04.decrypt(sk, bunkerPk, e.content)
          : ntNip44.decrypt(e.content, ntNip44.getConversationKey(sk, bunkerPk));
        inbox.push({ ...JSON.parse(text), scheme: nip04 ? 'nip04' : 'nip44' });
        wake?.();
      },
      oneose: () => eose.resolve(),
    },
  );
  await within(eose.promise, WAIT, 'raw client subscription');
  cleanups.push(() => {
    sub.close();
    pool.destroy();
  });
  const encrypt = (plaintext: string, scheme: 'nip44' | 'nip04') =>
    scheme === 'nip04'
      ? ntNip04.encrypt(sk, bunkerPk, plaintext)
      : ntNip44.encrypt(plaintext, ntNip44.getConversationKey(sk, bunkerPk));
  return {
    sk,
    pk,
    /** Publish `content` as is (already encrypted, or garbage). */
    async sendContent(content: string): Promise<void> {
      const ev = ntFinalize({ kind: 24_133, created_at: nowSeconds(), tags: [['p', bunkerPk]], content }, sk);
      await within(Promise.any(pool.publish([relay], ev)), WAIT, 'publish request');
    },
    async send(plaintext: string, scheme: 'nip44' | 'nip04' = 'nip44'): Promise<void> {
      await this.sendContent(encrypt(plaintext, scheme));
    },
    /** The next answer with this id. */
    async answer(id: string) {
      const deadline = Date.now() + WAIT;
      for (;;) {
        const i = inbox.findIndex((r) => r.id === id);
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no answer with id "${id}"`);
        await within(
          new Promise<void>((r) => {
            wake = r;
          }),
          left,
          `answer ${id}`,
        ).catch(() => {});
      }
    },
  };
}

describe('bunker relays', () => {
  test('switch_relays answers the current relays; the operator moves the bunker at run time', async () => {
    const { bunker, audit } = await startBunker();
    const c = await connected(bunker, 'sign_event:1');
    assert.equal(
      await within(c.signer.sendRequest('switch_relays', []), WAIT, 'switch_relays'),
      JSON.stringify([relayA.url]),
    );
    assert.equal(await within(c.signer.switchRelays(), WAIT, 'no change'), false);

    const changed = audit.next((e) => e.type === 'relays_changed', 'relays_changed');
    await bunker.setRelays([relayA.url, relayB.url]);
    assert.deepEqual(await changed, { type: 'relays_changed', relays: [relayA.url, relayB.url] });
    assert.equal(await within(c.signer.switchRelays(), WAIT, 'switch'), true);
    assert.deepEqual(c.signer.bp.relays, [relayA.url, relayB.url].sort()); // nostr-tools sorts them
    // the bunker leaves relay A: the client, now on both, still gets answers through B
    await bunker.setRelays([relayB.url]);
    await within(c.signer.ping(), WAIT, 'ping through relay B');
    assert.equal(await within(c.signer.switchRelays(), WAIT, 'switch to B'), true);
    assert.deepEqual(c.signer.bp.relays, [relayB.url]);
    await within(c.signer.ping(), WAIT, 'ping after switch');
  });

  test('the rate limit answers rate_limited past the bucket, per client', async () => {
    const { bunker } = await startBunker({ rateLimit: { capacity: 4, refillPerSecond: 0.01 } });
    const c = await connected(bunker, 'sign_event:1'); // connect takes one token
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => within(c.signer.ping(), WAIT, 'ping')),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    const refused = results
      .filter((r) => r.status === 'rejected')
      .map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(refused, Array(2).fill('rate_limited: too many requests from this client; retry later'));
    // another client has its own bucket
    const d = await connected(bunker, 'sign_event:1');
    await within(d.signer.ping(), WAIT, 'other client');
  });

  test('a held request is refused when nobody approves in time, or when its client is revoked', async () => {
    const { bunker, audit } = await startBunker({
      needsApproval: (ctx) => ctx.method === 'sign_event',
      authUrl: (id) => `https://floe.example/approvals/${id}`,
      approvalTimeoutMs: 300,
    });
    const c = await connected(bunker, 'sign_event', { onauth: () => {} });
    const t = { kind: 1, created_at: nowSeconds(), tags: [], content: '' };
    await rejectsWith(
      c.signer.signEvent(t),
      /^approval_rejected: the request was not approved in time$/,
      'timeout',
    );
    const held = audit.next(
      (e) => e.type === 'approval_requested' && e.client === c.pk,
      'approval_requested',
    );
    const refused = c.signer.signEvent(t);
    await held;
    assert.equal(await bunker.revoke(c.pk), true);
    await rejectsWith(refused, /^approval_rejected: the request was denied$/, 'revoked while held');
    assert.deepEqual(bunker.pendingApprovals(), []);
  });

  test('the client gets its auth_url only once the held request is recorded; unrecorded, it is refused', async () => {
    let fail = false;
    const called = deferred<string>();
    const release = deferred();
    const { bunker } = await startBunker({
      needsApproval: (ctx) => ctx.method === 'sign_event',
      authUrl: (id) => `https://floe.example/approvals/${id}`,
      approvalTimeoutMs: 10_000,
      holdRequest: async (h) => {
        if (fail) throw new Error('the database is gone');
        called.resolve(h.approvalId);
        await release.promise;
      },
    });
    const urls: string[] = [];
    const got = deferred();
    const c = await connected(bunker, 'sign_event', {
      onauth: (u) => {
        urls.push(u);
        got.resolve();
      },
    });
    const t = { kind: 1, created_at: nowSeconds(), tags: [], content: '' };
    const signed = c.signer.signEvent(t);
    signed.catch(() => {}); // awaited below
    const approvalId = await within(called.promise, WAIT, 'holdRequest');
    // the page of the auth_url would not know the request yet: no auth_url meanwhile
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(urls, []);
    release.resolve();
    await within(got.promise, WAIT, 'auth_url');
    assert.deepEqual(urls, [`https://floe.example/approvals/${approvalId}`]);
    bunker.deny(approvalId);
    await rejectsWith(signed, /^approval_rejected: the request was denied$/, 'denied');
    // a request that cannot be recorded is refused, and nothing is left held
    fail = true;
    await rejectsWith(
      c.signer.signEvent(t),
      /^internal: the request could not be held for approval; retry later$/,
      'not recorded',
    );
    assert.deepEqual(bunker.pendingApprovals(), []);
    assert.equal(urls.length, 1);
  });

  test('on a relay that requires NIP-42 AUTH, the bunker authenticates with its own key', async () => {
    const { bunker } = await startBunker({ relays: [relayAuth.url] });
    const { url } = await bunker.issueSecret({ permissions: parsePermissions('sign_event:1') });
    const c = await ntClient(url);
    // nostr-tools answers the relay's challenge on its own schedule and does not retry a
    // request refused auth-required before that: retry until its AUTH is through
    for (let attempt = 1; ; attempt++) {
      try {
        await within(c.signer.connect(), WAIT, 'connect on an AUTH relay');
        break;
      } catch (e) {
        if (attempt >= 5 || !/auth-required/.test(String((e as AggregateError).errors ?? e))) throw e;
      }
    }
    assert.equal(await within(c.signer.getPublicKey(), WAIT, 'get_public_key'), user.pk);
  });

  test('after the relay process restarts on the same port, the bunker answers again', async () => {
    const statuses: RelayStatusEvent[] = [];
    const waiters: { s: string; resolve: () => void }[] = [];
    const onStatus = (e: RelayStatusEvent) => {
      statuses.push(e);
      for (const w of waiters.filter((w) => w.s === e.status)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
    const status = (s: RelayStatusEvent['status']) => {
      const d = deferred();
      waiters.push({ s, resolve: d.resolve });
      return within(d.promise, 10_000, `relay status ${s}`);
    };
    const { bunker } = await startBunker({ relays: [relayR.url], poolOptions: { ...FAST, onStatus } });
    const c = await connected(bunker, 'sign_event:1');
    await within(c.signer.ping(), WAIT, 'ping before restart');

    const lost = status('backoff');
    await relayR.kill();
    await lost;
    const reopened = status('open');
    relayR = await spawnRelay(['--port', String(relayR.port)]);
    await reopened;

    // a fresh client (its old connection died with the relay); retried until the bunker's
    // REQ is in place on the new relay process, each try with its own deadline
    const again = await ntClient(bunkerUrlOf(bunker, relayR.url), { sk: c.sk });
    const deadline = Date.now() + 10_000;
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
});

describe('bunker', () => {
  let main: Awaited<ReturnType<typeof startBunker>>;
  const approvalKind = 30_023;

  before(async () => {
    main = await startBunker({
      limits: { maxRequestBytes: 8192 },
      needsApproval: (ctx) => ctx.kind === approvalKind,
      authUrl: (id) => `https://floe.example/approvals/${id}`,
    });
  });

  test('nostr-tools bunker:// client: connect, get_public_key is the user key, sign_event verifies', async () => {
    const c = await connected(main.bunker, 'sign_event:1');
    assert.equal(await within(c.signer.getPublicKey(), WAIT, 'get_public_key'), user.pk);
    await within(c.signer.ping(), WAIT, 'ping');
    const t = { kind: 1, created_at: nowSeconds(), tags: [['t', 'floe']], content: 'signed by a bunker' };
    const ev = await within(c.signer.signEvent(t), WAIT, 'sign_event');
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.pubkey, user.pk);
    assert.deepEqual({ kind: ev.kind, created_at: ev.created_at, tags: ev.tags, content: ev.content }, t);
    const known = (await main.bunker.clients()).find((k) => k.pubkey === c.pk);
    assert.deepEqual(known?.permissions, [{ method: 'sign_event', kind: 1 }]);
    assert.equal(known?.via, 'bunker');
  });

  test('the bunker key is not the user key, and the bunker URL names the bunker key', async () => {
    assert.notEqual(main.bunker.signerPubkey, user.pk);
    const bp = await parseBunkerInput(main.bunker.bunkerUrl());
    assert.deepEqual(bp, { pubkey: main.bunker.signerPubkey, relays: [relayA.url], secret: null });
  });

  test('a bunker secret is single use: a second client with it is refused', async () => {
    const { url } = await main.bunker.issueSecret({ permissions: parsePermissions('sign_event:1') });
    const first = await ntClient(url);
    assert.equal(
      await within(
        first.signer.sendRequest('connect', [
          main.bunker.signerPubkey,
          new URL(url).searchParams.get('secret')!,
        ]),
        WAIT,
        'connect',
      ),
      'ack',
    );
    const second = await ntClient(url);
    await rejectsWith(
      second.signer.connect(),
      /^unauthorized: connect: the secret is invalid, expired or already used$/,
      'second use',
    );
    await rejectsWith(second.signer.getPublicKey(), /^unauthorized: not connected/, 'refused client');
    // the first client, reconnecting with the secret it used, stays connected (NDK does this)
    await within(first.signer.connect(), WAIT, 'reconnect of a known client');

    // two clients racing with one fresh secret: exactly one wins
    const race = await main.bunker.issueSecret({ permissions: parsePermissions('sign_event:1') });
    const racers = await Promise.all([ntClient(race.url), ntClient(race.url), ntClient(race.url)]);
    const outcomes = await Promise.allSettled(racers.map((r) => within(r.signer.connect(), WAIT, 'race')));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  });

  test('permissions asked for in connect are narrowed to what the secret grants', async () => {
    const { url, secret } = await main.bunker.issueSecret({
      permissions: parsePermissions('sign_event,nip44_encrypt'),
    });
    issued.push(secret);
    const c = await ntClient(url);
    const asked = 'sign_event:1,sign_event:27235,nip04_encrypt,get_relays';
    await within(c.signer.sendRequest('connect', [main.bunker.signerPubkey, secret, asked]), WAIT, 'connect');
    const known = (await main.bunker.clients()).find((k) => k.pubkey === c.pk);
    assert.deepEqual(known?.permissions, [{ method: 'sign_event', kind: 1 }]);
  });

  test('an expired secret is refused; no secret at all is refused', async () => {
    const secret = 'expired-secret';
    await main.store.addSecret({
      hash: secretHash(secret),
      permissions: parsePermissions('sign_event'),
      createdAt: nowSeconds() - 100,
      expiresAt: nowSeconds() - 1,
    });
    const c = await ntClient(main.bunker.bunkerUrl(secret));
    await rejectsWith(
      c.signer.connect(),
      /^unauthorized: connect: the secret is invalid, expired or already used$/,
      'expired',
    );
    const d = await ntClient(main.bunker.bunkerUrl());
    await rejectsWith(
      d.signer.connect(),
      /^unauthorized: connect: a secret from the operator is required$/,
      'no secret',
    );
  });

  test('unlisted kinds are refused, and NIP-98 kind 27235 never under a bare sign_event', async () => {
    const signs = main.backend.calls.sign;
    const narrow = await connected(main.bunker, 'sign_event:1');
    const t = (kind: number) => ({ kind, created_at: nowSeconds(), tags: [], content: '' });
    await rejectsWith(
      narrow.signer.signEvent(t(7)),
      /^forbidden: sign_event for kind 7 is not granted to this client$/,
      'kind 7',
    );
    const wide = await connected(main.bunker, 'sign_event');
    assert.equal(
      verifyEvent(await within(wide.signer.signEvent(t(7)), WAIT, 'kind 7 under sign_event')),
      true,
    );
    await rejectsWith(
      wide.signer.signEvent(t(27_235)),
      /^forbidden: sign_event for kind 27235 is not granted to this client \(kind 27235 needs an explicit sign_event:27235\)$/,
      'NIP-98 under bare sign_event',
    );
    const nip98 = await connected(main.bunker, 'sign_event:27235');
    assert.equal(verifyEvent(await within(nip98.signer.signEvent(t(27_235)), WAIT, 'explicit 27235')), true);
    // refusals never reach the backend
    assert.equal(main.backend.calls.sign, signs + 2);
  });

  test('an expired permission is refused as expired', async () => {
    const { url } = await main.bunker.issueSecret({
      permissions: [{ method: 'sign_event', kind: 1, expiresAt: nowSeconds() - 1 }],
    });
    const c = await ntClient(url);
    await within(c.signer.connect(), WAIT, 'connect');
    await rejectsWith(
      c.signer.signEvent({ kind: 1, created_at: nowSeconds(), tags: [], content: '' }),
      /^forbidden: the permission for sign_event for kind 1 has expired$/,
      'expired permission',
    );
  });

  test('NIP-44 and NIP-04 through the bunker match nostr-tools with a third party, both ways', async () => {
    const c = await connected(main.bunker, 'nip44_encrypt,nip44_decrypt,nip04_encrypt,nip04_decrypt');
    const ck = ntNip44.getConversationKey(third.sk, user.pk);
    const ct44 = await within(c.signer.nip44Encrypt(third.pk, 'to the third party ✉'), WAIT, 'nip44_encrypt');
    assert.equal(ntNip44.decrypt(ct44, ck), 'to the third party ✉');
    const from44 = ntNip44.encrypt('from the third party', ck);
    assert.equal(
      await within(c.signer.nip44Decrypt(third.pk, from44), WAIT, 'nip44_decrypt'),
      'from the third party',
    );
    const ct04 = await within(c.signer.nip04Encrypt(third.pk, 'legacy ✉'), WAIT, 'nip04_encrypt');
    assert.equal(ntNip04.decrypt(third.sk, user.pk, ct04), 'legacy ✉');
    const from04 = ntNip04.encrypt(third.sk, user.pk, 'legacy back');
    assert.equal(await within(c.signer.nip04Decrypt(third.pk, from04), WAIT, 'nip04_decrypt'), 'legacy back');
    // a payload for someone else: a clear decryption error, not a crash
    const other = ntNip44.encrypt('not for you', ntNip44.getConversationKey(third.sk, keypair().pk));
    await rejectsWith(
      c.signer.nip44Decrypt(third.pk, other),
      /^invalid_encoding: nip44 payload: invalid MAC$/,
      'bad MAC',
    );
    await rejectsWith(
      c.signer.nip44Encrypt('nothex', 'x'),
      /^invalid_request: nip44_encrypt: the third-party pubkey/,
      'bad peer',
    );
    const calls = main.backend.calls.ecdh;
    // x = 5 has no point on secp256k1: refused before the backend is asked
    await rejectsWith(
      c.signer.nip44Encrypt(`${'0'.repeat(63)}5`, 'x'),
      /^invalid_request: nip44_encrypt: the third-party pubkey is not a point on secp256k1$/,
      'peer off the curve',
    );
    assert.equal(main.backend.calls.ecdh, calls);
  });

  test('methods not granted are refused: encryption without a permission', async () => {
    const c = await connected(main.bunker, 'sign_event:1,nip44_encrypt');
    await rejectsWith(
      c.signer.nip44Decrypt(third.pk, 'x'),
      /^forbidden: nip44_decrypt is not granted to this client$/,
      'decrypt',
    );
    await rejectsWith(
      c.signer.nip04Encrypt(third.pk, 'x'),
      /^forbidden: nip04_encrypt is not granted/,
      'nip04',
    );
  });

  test('logout ends the client; revoke ends another', async () => {
    const c = await connected(main.bunker, 'sign_event:1');
    const gone = main.audit.next((e) => e.type === 'client_removed' && e.client === c.pk, 'logout audit');
    await within(c.signer.logout(), WAIT, 'logout');
    assert.deepEqual(await gone, { type: 'client_removed', client: c.pk, reason: 'logout' });
    assert.equal(
      (await main.bunker.clients()).some((k) => k.pubkey === c.pk),
      false,
    );
    const again = await ntClient(main.bunker.bunkerUrl(), { sk: c.sk });
    await rejectsWith(again.signer.ping(), /^unauthorized: not connected/, 'after logout');

    const d = await connected(main.bunker, 'sign_event:1');
    const t = { kind: 7, created_at: nowSeconds(), tags: [], content: '+' };
    await rejectsWith(d.signer.signEvent(t), /^forbidden/, 'kind 7 before the operator grants it');
    await main.bunker.setPermissions(d.pk, parsePermissions('sign_event:1,sign_event:7'));
    assert.equal(verifyEvent(await within(d.signer.signEvent(t), WAIT, 'kind 7 once granted')), true);
    assert.equal(await main.bunker.revoke(d.pk), true);
    await rejectsWith(d.signer.getPublicKey(), /^unauthorized: not connected/, 'after revoke');
    assert.equal(await main.bunker.revoke(d.pk), false);
  });

  test('auth_url: the client gets the URL, then the real answer under the same id once approved', async () => {
    const urls: string[] = [];
    let wake: (() => void) | undefined;
    const c = await connected(main.bunker, 'sign_event', {
      onauth: (u) => {
        urls.push(u);
        wake?.();
      },
    });
    const nextUrl = async () => {
      if (urls.length === 0) await within(new Promise<void>((r) => (wake = r)), WAIT, 'auth_url');
      return urls.shift()!;
    };
    const t = { kind: approvalKind, created_at: nowSeconds(), tags: [['d', 'post']], content: 'long form' };
    const signs = main.backend.calls.sign;
    const signed = c.signer.signEvent(t);
    const url = await nextUrl();
    const approvalId = url.split('/').pop()!;
    assert.equal(url, `https://floe.example/approvals/${approvalId}`);
    const pending = main.bunker.pendingApprovals().filter((a) => a.client === c.pk);
    assert.deepEqual(
      pending.map((a) => [a.approvalId, a.method, a.kind]),
      [[approvalId, 'sign_event', approvalKind]],
    );
    assert.equal(main.backend.calls.sign, signs, 'nothing is signed before approval');
    assert.equal(main.bunker.approve(approvalId), true);
    const ev = await within(signed, WAIT, 'signed after approval');
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.kind, approvalKind);
    assert.equal(main.bunker.approve(approvalId), false, 'an approval is used once');

    const refused = c.signer.signEvent({ ...t, content: 'second' });
    const url2 = await nextUrl();
    assert.equal(main.bunker.deny(url2.split('/').pop()!), true);
    await rejectsWith(refused, /^approval_rejected: the request was denied$/, 'denied');
    // kinds the policy does not hold are answered at once
    assert.equal(verifyEvent(await within(c.signer.signEvent({ ...t, kind: 1 }), WAIT, 'kind 1')), true);
  });

  test('malformed, oversized and unknown requests get error answers and change nothing', async () => {
    const { secret } = await main.bunker.issueSecret({ permissions: parsePermissions('sign_event:1') });
    const raw = await rawClient(relayA.url, main.bunker.signerPubkey);
    const before = (await main.bunker.clients()).length;

    await raw.send('not json');
    assert.deepEqual(await raw.answer(''), {
      id: '',
      error: 'invalid_request: request: not valid JSON',
      scheme: 'nip44',
    });
    await raw.send(JSON.stringify({ id: 'm1', method: 'get_relays', params: [] }));
    assert.equal(
      (await raw.answer('m1')).error,
      'invalid_request: request.method: unknown method "get_relays"',
    );
    await raw.send(JSON.stringify({ id: 'm2', method: 'connect', params: [main.bunker.signerPubkey, 7] }));
    assert.equal(
      (await raw.answer('m2')).error,
      'invalid_request: request.params: expected an array of strings',
    );
    await raw.send(JSON.stringify({ id: 'm3', method: 'connect', params: [keypair().pk, secret] }));
    assert.equal((await raw.answer('m3')).error, 'invalid_request: connect: names another remote signer');
    await raw.send(JSON.stringify({ id: 'm4', method: 'sign_event', params: ['{}'] }));
    assert.match((await raw.answer('m4')).error!, /^unauthorized: not connected/);
    await raw.send(JSON.stringify({ id: 'm5', method: 'ping', params: ['x'.repeat(9000)] }));
    assert.equal((await raw.answer('')).error, 'payload_too_large: request: larger than 8192 bytes');
    // content for another key: cannot be read, still answered (id unknown)
    await raw.sendContent(ntNip44.encrypt('{"id":"m6"}', ntNip44.getConversationKey(raw.sk, keypair().pk)));
    assert.equal((await raw.answer('')).error, 'invalid_encoding: nip44 payload: invalid MAC');
    assert.equal((await main.bunker.clients()).length, before, 'no client was added');

    // the secret survived every refusal; a NIP-04 request gets a NIP-04 answer (NDK's fallback)
    await raw.send(
      JSON.stringify({ id: 'c1', method: 'connect', params: [main.bunker.signerPubkey, secret] }),
      'nip04',
    );
    assert.deepEqual(await raw.answer('c1'), { id: 'c1', result: 'ack', scheme: 'nip04' });
    await raw.send(JSON.stringify({ id: 'c2', method: 'get_public_key', params: [] }));
    assert.deepEqual(await raw.answer('c2'), { id: 'c2', result: user.pk, scheme: 'nip44' });
    await raw.send(
      JSON.stringify({
        id: 'c3',
        method: 'sign_event',
        params: [JSON.stringify({ kind: 1, content: 'x', tags: [] })],
      }),
      'nip04',
    );
    const bad = await raw.answer('c3');
    assert.equal(bad.scheme, 'nip04');
    assert.equal(
      bad.error,
      'event_created_at_invalid: event.created_at: expected a non-negative integer (seconds)',
    );
  });

  test('the audit log names clients, methods, kinds and codes, never secrets or contents', () => {
    const text = JSON.stringify(main.audit.log);
    for (const e of main.audit.log) assert.ok(!('content' in e) && !('plaintext' in e) && !('secret' in e));
    for (const secret of issued) assert.equal(text.includes(secret), false, 'a secret reached the audit log');
    for (const s of ['signed by a bunker', 'third party', 'legacy', 'long form']) {
      assert.equal(text.includes(s), false, `"${s}" reached the audit log`);
    }
    const kinds = new Set(main.audit.log.map((e) => e.type));
    for (const t of [
      'request',
      'answered',
      'client_connected',
      'client_removed',
      'secret_issued',
      'approval_requested',
    ]) {
      assert.ok(kinds.has(t as BunkerAuditEvent['type']), `no ${t} event`);
    }
    const refusal = main.audit.log.find((e) => e.type === 'answered' && e.code === 'forbidden');
    assert.ok(refusal && refusal.type === 'answered' && refusal.method === 'sign_event');
  });

  test('NDK NDKNip46Signer connects over bunker:// and signs', async () => {
    const { url } = await main.bunker.issueSecret({
      permissions: parsePermissions('sign_event:1,nip44_encrypt'),
    });
    // no outbox model: NDK would otherwise create relays for public servers (loopback only here)
    const ndk = new NDK({ enableOutboxModel: false, autoConnectUserRelays: false });
    const signer = NDKNip46Signer.bunker(ndk, url, NDKPrivateKeySigner.generate());
    const pools = () =>
      (ndk as unknown as { pools: { relays: Map<string, { url: string; disconnect(): void }> }[] }).pools;
    cleanups.push(() => {
      signer.stop();
      for (const p of pools()) for (const r of p.relays.values()) r.disconnect();
    });
    const u = await within(signer.blockUntilReady(), WAIT, 'NDK blockUntilReady');
    assert.equal(u.pubkey, user.pk);
    const ev = new NDKEvent(ndk, { kind: 1, content: 'from NDK', tags: [], created_at: nowSeconds() });
    await within(ev.sign(signer), WAIT, 'NDK sign');
    const raw = ev.rawEvent();
    assert.equal(verifyEvent({ ...raw, sig: ev.sig! } as any), true);
    assert.equal(raw.pubkey, user.pk);
    const ct = await within(
      signer.encrypt(ndk.getUser({ pubkey: third.pk }), 'hi ndk', 'nip44'),
      WAIT,
      'NDK nip44',
    );
    assert.equal(ntNip44.decrypt(ct, ntNip44.getConversationKey(third.sk, user.pk)), 'hi ndk');
    const urls = pools().flatMap((p) => [...p.relays.values()].map((r) => r.url));
    assert.ok(urls.length > 0 && urls.every((u) => u.startsWith('ws://127.0.0.1:')), `NDK relays: ${urls}`);
  });

  test('nostrconnect://: the bunker answers the client URI with its secret; perms are intersected', async () => {
    const sk = generateSecretKey();
    const pk = getPublicKey(sk);
    const uri = createNostrConnectURI({
      clientPubkey: pk,
      relays: [relayA.url],
      secret: 'c0ffee',
      perms: ['sign_event:1', 'sign_event:27235', 'nip44_encrypt', 'get_relays'],
      name: 'Test App',
    });
    const pool = ntPool();
    cleanups.push(() => pool.destroy());
    // hold a connection to the relay first, so the client's REQ is on the wire early
    await within(pool.ensureRelay(relayA.url), WAIT, 'client relay');
    const connecting = BunkerSigner.fromURI(sk, uri, { pool }, WAIT * 2);
    let signer: BunkerSigner | undefined;
    connecting.then((s) => (signer = s)).catch(() => {});
    let result: Awaited<ReturnType<Bunker['connectTo']>> | undefined;
    const deadline = Date.now() + WAIT * 2;
    // the connect answer is ephemeral: repeat it until the client has seen it
    while (!signer) {
      assert.ok(Date.now() < deadline, 'the client never saw the connect answer');
      result = await main.bunker.connectTo(uri, parsePermissions('sign_event,nip44_encrypt,nip04_encrypt'));
      await within(connecting, 1000, 'fromURI').catch(() => {});
    }
    const s = signer as BunkerSigner;
    cleanups.push(() => s.close());
    assert.deepEqual(result?.ignored, ['get_relays']);
    assert.deepEqual(result?.client.permissions, [
      { method: 'sign_event', kind: 1 },
      { method: 'nip44_encrypt' },
    ]);
    assert.equal(result?.client.name, 'Test App');
    assert.equal(await within(s.getPublicKey(), WAIT, 'get_public_key'), user.pk);
    const ev = await within(
      s.signEvent({ kind: 1, created_at: nowSeconds(), tags: [], content: 'via nostrconnect' }),
      WAIT,
      'sign',
    );
    assert.equal(verifyEvent(ev), true);
    await rejectsWith(
      s.signEvent({ kind: 27_235, created_at: nowSeconds(), tags: [], content: '' }),
      /^forbidden: sign_event for kind 27235/,
      'NIP-98 not granted by a wildcard allow',
    );
  });
});

function bunkerUrlOf(bunker: Bunker, relay: string): string {
  return `bunker://${bunker.signerPubkey}?relay=${encodeURIComponent(relay)}`;
}
