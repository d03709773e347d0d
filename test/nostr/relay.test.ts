/**
 * The relay client (and pool) against the relay running as a child process, with nostr-tools
 * as an independent client of the same relay; reconnection across a relay restart on the
 * same port; NIP-42; deadlines against peers that never answer; bounded inbound messages.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { finalizeEvent as ntFinalize } from 'nostr-tools/pure';
import WebSocket, { WebSocketServer } from 'ws';
import { type EventTemplate, finalizeEvent, type NostrEvent, nowSeconds } from '../../src/nostr/event.js';
import { AUTH_KIND } from '../../src/nostr/nip42.js';
import { RelayPool } from '../../src/nostr/pool.js';
import {
  backoffDelay,
  RelayConnection,
  type RelayOptions,
  type RelayStatusEvent,
} from '../../src/nostr/relay.js';
import { type RunningRelay, startRelay } from '../../src/nostr/relay-server.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { deferred, keypair, type RelayProcess, spawnRelay, within } from './helpers.js';

useWebSocketImplementation(WebSocket);

const alice = keypair();
const bob = keypair();
const FAST: RelayOptions = {
  connectTimeoutMs: 2000,
  publishTimeoutMs: 4000,
  authTimeoutMs: 2000,
  reconnect: { initialMs: 50, maxMs: 250, factor: 2, jitter: 0.2 },
};

let seq = 0;
function note(content = 'note', sk = alice.sk, kind = 1, tags: string[][] = []): NostrEvent {
  // distinct created_at/content per call so ids never collide across tests
  return finalizeEvent({ kind, created_at: nowSeconds(), tags, content: `${content} #${++seq}` }, sk);
}

/** Records status changes and resolves waiters on the first matching one from now on. */
function statusWatch() {
  const log: RelayStatusEvent[] = [];
  const waiters: { status: string; resolve: () => void }[] = [];
  return {
    log,
    onStatus: (e: RelayStatusEvent) => {
      log.push(e);
      for (const w of waiters.filter((w) => w.status === e.status)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    next(status: RelayStatusEvent['status'], ms = 10_000): Promise<void> {
      const d = deferred();
      waiters.push({ status, resolve: d.resolve });
      return within(d.promise, ms, `relay status ${status}`);
    },
  };
}

/** A TCP server that accepts connections and never says a word. */
async function silentTcp(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

/** A WebSocket server under the test's control, to play a misbehaving relay. */
async function fakeRelay(onMessage: (ws: WebSocket, msg: unknown[]) => void) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (d) => onMessage(ws, JSON.parse(d.toString()) as unknown[])));
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    wss,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

describe('client and relay process', () => {
  let relay: RelayProcess;
  let client: RelayConnection;
  before(async () => {
    relay = await spawnRelay(['--port', '0']);
    client = new RelayConnection(relay.url, FAST);
  });
  after(async () => {
    client.close();
    await relay.kill('SIGTERM');
  });

  test('publish is answered OK, with the relay and the time of the answer', async () => {
    const e = note('publish');
    const t0 = Date.now();
    const r = await client.publish(e);
    assert.deepEqual({ ...r, at: 0 }, { relay: relay.url, accepted: true, message: '', at: 0 });
    assert.ok(r.at >= t0 && r.at <= Date.now());
    assert.equal(client.status, 'open');
  });

  test('a refused event comes back accepted=false with the relay message (no failure)', async () => {
    const e = note('forged');
    const r = await client.publish({ ...e, sig: note('other', bob.sk).sig });
    assert.equal(r.accepted, false);
    assert.match(r.message, /^invalid:/);
    assert.equal(r.failure, undefined);
  });

  test('REQ by id delivers the event, then EOSE', async () => {
    const e = note('fetch me');
    await client.publish(e);
    const order: string[] = [];
    const eose = deferred();
    const sub = client.subscribe([{ ids: [e.id] }], {
      onEvent: (got) => {
        assert.deepEqual(got, e);
        order.push('event');
      },
      onEose: () => {
        order.push('eose');
        eose.resolve();
      },
    });
    await within(eose.promise, 5000, 'EOSE');
    sub.close();
    assert.deepEqual(order, ['event', 'eose']);
  });

  test('nostr-tools publishes to and reads from our relay; each side sees the other', async () => {
    const pool = new SimplePool();
    try {
      const theirs = ntFinalize(
        { kind: 1, created_at: nowSeconds(), tags: [], content: 'from nostr-tools' },
        bob.sk,
      );
      assert.equal(
        await within(Promise.any(pool.publish([relay.url], theirs)), 5000, 'nostr-tools publish'),
        '',
      );
      const ours = note('for nostr-tools');
      assert.equal((await client.publish(ours)).accepted, true);
      const found = await pool.querySync([relay.url], { ids: [ours.id] }, { maxWait: 5000 });
      assert.deepEqual(
        found.map((e) => e.id),
        [ours.id],
      );
      const fetched = await new RelayPool(FAST).fetch([relay.url], [{ ids: [theirs.id] }]);
      assert.deepEqual(
        fetched.map((e) => e.id),
        [theirs.id],
      );
      // live: nostr-tools subscribed, we publish
      const later = note('live to nostr-tools');
      const live = deferred<string>();
      const eose = deferred();
      const sub = pool.subscribe(
        [relay.url],
        { authors: [alice.pk], kinds: [1], since: later.created_at },
        {
          onevent: (e) => {
            if (e.id === later.id) live.resolve(e.id);
          },
          oneose: eose.resolve,
        },
      );
      await within(eose.promise, 5000, 'nostr-tools EOSE');
      await client.publish(later);
      assert.equal(await within(live.promise, 5000, 'nostr-tools live event'), later.id);
      sub.close();
    } finally {
      pool.destroy();
    }
  });

  test('non-ws URLs are refused before anything is sent', () => {
    for (const url of ['http://127.0.0.1:1', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '']) {
      assert.throws(
        () => new RelayConnection(url),
        (e: unknown) => isFloeError(e) && e.code === 'invalid_request',
      );
    }
    assert.throws(
      () => new RelayPool().publish(note(), ['ws://ok.example', 'https://nope.example']),
      isFloeError,
    );
  });

  test('pool: per-relay results and events deduplicated across relays', async () => {
    const second: RunningRelay = await startRelay({ port: 0 });
    const dead = await silentTcp();
    const pool = new RelayPool({
      ...FAST,
      connectTimeoutMs: 300,
      publishTimeoutMs: 1500,
      eoseTimeoutMs: 3000,
    });
    try {
      const e = note('to both');
      const results = await pool.publish(e, [relay.url, second.url, dead.url]);
      assert.deepEqual(
        results.map((r) => [r.relay, r.accepted, r.failure]),
        [
          [relay.url, true, undefined],
          [second.url, true, undefined],
          [dead.url, false, 'unreachable'],
        ],
      );
      const seen: string[] = [];
      const eose = deferred();
      const sub = pool.subscribe([relay.url, second.url], [{ ids: [e.id] }], {
        onEvent: (got, from) => seen.push(`${got.id}@${from}`),
        onEose: eose.resolve,
      });
      await within(eose.promise, 5000, 'pool EOSE');
      sub.close();
      assert.equal(seen.length, 1);
      assert.ok(seen[0]!.startsWith(e.id));
    } finally {
      pool.close();
      await second.close();
      await dead.close();
    }
  });
});

describe('reconnection', () => {
  test('the subscription resumes after the relay process is killed and restarted on the same port', async () => {
    const first = await spawnRelay(['--port', '0']);
    const port = first.port;
    const watch = statusWatch();
    const client = new RelayConnection(first.url, { ...FAST, onStatus: watch.onStatus });
    let second: RelayProcess | undefined;
    try {
      const received: NostrEvent[] = [];
      const got = new Map<string, () => void>();
      let eoseCount = 0;
      const eose = deferred();
      const since = nowSeconds();
      client.subscribe([{ authors: [alice.pk], kinds: [1], since }], {
        onEvent: (e) => {
          received.push(e);
          got.get(e.id)?.();
        },
        onEose: () => {
          eoseCount++;
          eose.resolve();
        },
      });
      await within(eose.promise, 5000, 'first EOSE');
      const e1 = note('before the crash');
      const gotE1 = deferred();
      got.set(e1.id, gotE1.resolve);
      await client.publish(e1);
      await within(gotE1.promise, 5000, 'live event before the crash');

      const backoff = watch.next('backoff');
      await first.kill('SIGKILL');
      await backoff;
      // published while the relay is down: waits for the connection, within its deadline
      const e2 = note('during the outage');
      const gotE2 = deferred();
      got.set(e2.id, gotE2.resolve);
      const pending = client.publish(e2);

      const reopened = watch.next('open');
      second = await spawnRelay(['--port', String(port)]);
      assert.equal(second.url, first.url);
      await reopened;
      assert.deepEqual(await pending.then((r) => [r.accepted, r.failure]), [true, undefined]);
      await within(gotE2.promise, 5000, 'event published during the outage');

      // a third client publishes to the new process; our resumed subscription receives it
      const other = new RelayConnection(second.url, { ...FAST, reconnect: false });
      const e3 = note('after the restart');
      const gotE3 = deferred();
      got.set(e3.id, gotE3.resolve);
      assert.equal((await other.publish(e3)).accepted, true);
      other.close();
      await within(gotE3.promise, 5000, 'live event after the restart');

      assert.deepEqual(
        received.map((e) => e.id),
        [e1.id, e2.id, e3.id],
      );
      assert.equal(eoseCount, 1, 'EOSE is reported once per subscription');
      const backoffs = watch.log.filter((s) => s.status === 'backoff');
      assert.ok(backoffs.length >= 1);
      for (const b of backoffs) if (b.status === 'backoff') assert.ok(b.delayMs <= 250);
    } finally {
      client.close();
      await first.kill();
      await second?.kill('SIGTERM');
    }
  });

  test('backoff grows exponentially, is capped, and jitter only shortens it', () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, o, () => 0)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(
      backoffDelay(2, o, () => 1),
      200,
    );
    assert.equal(
      backoffDelay(20, o, () => 0.999_999),
      500,
    );
  });
});

describe('NIP-42 against a relay process that requires AUTH', () => {
  let relay: RelayProcess;
  before(async () => {
    relay = await spawnRelay(['--port', '0', '--auth']);
  });
  after(() => relay.kill('SIGTERM'));

  test('without an authSigner: publish refused "auth-required:", REQ CLOSED', async () => {
    const c = new RelayConnection(relay.url, FAST);
    try {
      const r = await c.publish(note('no auth'));
      assert.equal(r.accepted, false);
      assert.match(r.message, /^auth-required:/);
      const closed = deferred<string>();
      c.subscribe([{ kinds: [1] }], {
        onEvent: () => assert.fail('no events without auth'),
        onClosed: closed.resolve,
      });
      assert.match(await within(closed.promise, 5000, 'CLOSED'), /^auth-required:/);
    } finally {
      c.close();
    }
  });

  test('with an authSigner: the challenge is answered, then publish and REQ work', async () => {
    const templates: EventTemplate[] = [];
    const c = new RelayConnection(relay.url, {
      ...FAST,
      authSigner: async (t) => {
        templates.push(t);
        return finalizeEvent(t, bob.sk);
      },
    });
    try {
      const e = note('authed');
      const r = await c.publish(e);
      assert.deepEqual([r.accepted, r.message], [true, '']);
      assert.equal(c.authedAs, bob.pk);
      assert.equal(templates.length, 1);
      assert.equal(templates[0]!.kind, AUTH_KIND);
      assert.deepEqual(templates[0]!.tags[0], ['relay', relay.url]);
      assert.equal(templates[0]!.tags[1]![0], 'challenge');
      const got = deferred<NostrEvent>();
      c.subscribe([{ ids: [e.id] }], { onEvent: got.resolve });
      assert.deepEqual(await within(got.promise, 5000, 'event after auth'), e);
    } finally {
      c.close();
    }
  });

  test('an AUTH the relay refuses leaves publishes refused', async () => {
    const c = new RelayConnection(relay.url, {
      ...FAST,
      authSigner: async (t) =>
        finalizeEvent(
          {
            ...t,
            tags: [
              ['relay', relay.url],
              ['challenge', 'not-it'],
            ],
          },
          bob.sk,
        ),
    });
    try {
      const r = await c.publish(note('bad auth'));
      assert.equal(r.accepted, false);
      assert.match(r.message, /^auth-required:/);
      assert.equal(c.authedAs, undefined);
    } finally {
      c.close();
    }
  });

  test('nostr-tools authenticates to our relay and publishes (independent check)', async () => {
    const pool = new SimplePool();
    try {
      const e = ntFinalize(
        { kind: 1, created_at: nowSeconds(), tags: [], content: 'nostr-tools with auth' },
        alice.sk,
      );
      const [p] = pool.publish([relay.url], e, { onauth: async (t) => ntFinalize(t, alice.sk) });
      assert.equal(await within(p!, 5000, 'nostr-tools publish with auth'), '');
    } finally {
      pool.destroy();
    }
  });
});

describe('deadlines and bounds', () => {
  test('a peer that accepts TCP and says nothing: connect rejects, publish resolves unreachable in time', async () => {
    const dead = await silentTcp();
    // reconnecting: the publish waits for its own deadline
    const retrying = new RelayConnection(dead.url, {
      connectTimeoutMs: 300,
      publishTimeoutMs: 800,
      reconnect: { initialMs: 50, maxMs: 100 },
    });
    // not reconnecting: the publish ends with the failed connection attempt
    const c = new RelayConnection(dead.url, {
      connectTimeoutMs: 300,
      publishTimeoutMs: 5000,
      reconnect: false,
    });
    try {
      let t0 = Date.now();
      const r = await within(retrying.publish(note('into the void')), 3000, 'publish deadline');
      let elapsed = Date.now() - t0;
      assert.deepEqual([r.accepted, r.failure], [false, 'unreachable']);
      assert.match(r.message, /not connected within 800 ms: no connection within 300 ms/);
      assert.ok(elapsed >= 750 && elapsed < 2500, `elapsed ${elapsed}`);
      t0 = Date.now();
      const r2 = await within(c.publish(note('into the void')), 3000, 'connect deadline');
      elapsed = Date.now() - t0;
      assert.deepEqual(
        [r2.accepted, r2.failure, r2.message],
        [false, 'unreachable', 'could not connect: no connection within 300 ms'],
      );
      assert.ok(elapsed >= 250 && elapsed < 2500, `elapsed ${elapsed}`);
      await assert.rejects(
        within(c.connect(), 3000, 'connect deadline'),
        (e: unknown) => isFloeError(e) && /no connection within 300 ms/.test(e.message),
      );
      const pool = new RelayPool({ connectTimeoutMs: 300, eoseTimeoutMs: 600, reconnect: false });
      assert.deepEqual(await within(pool.fetch([dead.url], [{ kinds: [1] }]), 3000, 'fetch deadline'), []);
      pool.close();
    } finally {
      retrying.close();
      c.close();
      await dead.close();
    }
  });

  test('without reconnecting, a connection lost before OK ends the publish and the subscriptions', async () => {
    const fake = await fakeRelay((ws, m) => {
      if (m[0] === 'EVENT') ws.terminate();
    });
    const c = new RelayConnection(fake.url, { reconnect: false });
    try {
      await c.connect();
      const closed = deferred<string>();
      c.subscribe([{ kinds: [1] }], { onEvent: () => {}, onClosed: closed.resolve });
      const r = await within(c.publish(note('dropped')), 3000, 'publish after drop');
      assert.deepEqual([r.accepted, r.failure], [false, 'disconnected']);
      assert.equal(await within(closed.promise, 3000, 'subscription closed'), 'connection lost');
      assert.equal(c.status, 'idle');
    } finally {
      c.close();
      await fake.close();
    }
  });

  test('a relay that never sends OK: publish resolves with failure timeout', async () => {
    const fake = await fakeRelay(() => {});
    const c = new RelayConnection(fake.url, { publishTimeoutMs: 400, reconnect: false });
    try {
      const r = await within(c.publish(note('no OK')), 3000, 'publish deadline');
      assert.deepEqual([r.accepted, r.failure], [false, 'timeout']);
      assert.equal(c.status, 'open');
    } finally {
      c.close();
      await fake.close();
    }
  });

  test('forged, malformed and unrequested events from a relay are dropped', async () => {
    const good = note('genuine');
    const forged = { ...note('forged'), sig: good.sig };
    const unrequested = note('other kind', alice.sk, 7);
    const fake = await fakeRelay((ws, m) => {
      if (m[0] !== 'REQ') return;
      for (const e of [forged, { ...good, kind: 'x' }, unrequested, 'junk', good, good]) {
        ws.send(JSON.stringify(['EVENT', m[1], e]));
      }
      ws.send(JSON.stringify(['EVENT', 'unknown-sub', good]));
      ws.send(JSON.stringify(['EOSE', m[1]]));
    });
    const c = new RelayConnection(fake.url, { reconnect: false });
    try {
      const got: NostrEvent[] = [];
      const eose = deferred();
      c.subscribe([{ kinds: [1] }], { onEvent: (e) => got.push(e), onEose: eose.resolve });
      await within(eose.promise, 5000, 'EOSE');
      assert.deepEqual(got, [good]);
    } finally {
      c.close();
      await fake.close();
    }
  });

  test('an inbound message above maxMessageBytes drops the connection, not the process', async () => {
    const big = note('x'.repeat(4000));
    const fake = await fakeRelay((ws, m) => {
      if (m[0] === 'REQ') ws.send(JSON.stringify(['EVENT', m[1], big]));
    });
    const watch = statusWatch();
    const c = new RelayConnection(fake.url, {
      maxMessageBytes: 2000,
      reconnect: { initialMs: 5000 },
      onStatus: watch.onStatus,
    });
    try {
      const backoff = watch.next('backoff');
      c.subscribe([{ kinds: [1] }], { onEvent: () => assert.fail('oversized event delivered') });
      await backoff;
    } finally {
      c.close();
      await fake.close();
    }
  });
});

describe('relay-main process', () => {
  test('stops on SIGTERM, and when stdin closes under FLOE_SUPERVISED=1', async () => {
    const a = await spawnRelay(['--port', '0']);
    assert.equal(await within(a.kill('SIGTERM'), 5000, 'exit on SIGTERM'), 0);
    const b = await spawnRelay(['--port', '0'], { FLOE_SUPERVISED: '1' });
    b.proc.stdin!.end();
    assert.equal(await within(b.exited, 5000, 'exit when stdin closes'), 0);
  });
});
