/**
 * The relay's NIP-01 behaviour, seen on the wire by a bare WebSocket client: OK answers,
 * stored-event queries and EOSE, live delivery, replaceable/ephemeral/addressable kinds,
 * filters, CLOSE, refusals, NIP-42 required mode and the NIP-11 document. In-process for
 * speed; the client tests run it as a child process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { finalizeEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '../../src/nostr/event.js';
import { authTemplate } from '../../src/nostr/nip42.js';
import { MemoryEventStore, type RunningRelay, startRelay } from '../../src/nostr/relay-server.js';
import { keypair, type RawClient, rawClient } from './helpers.js';

const T0 = 1_700_000_000;
const alice = keypair();
const bob = keypair();

function ev(
  sk: Uint8Array,
  kind: number,
  created_at: number,
  tags: string[][] = [],
  content = '',
): NostrEvent {
  // a plain object: nostr-tools marks its events with a symbol that deepEqual would compare
  return JSON.parse(JSON.stringify(finalizeEvent({ kind, created_at, tags, content }, sk))) as NostrEvent;
}

const isOk = (id: string) => (m: unknown[]) => m[0] === 'OK' && m[1] === id;
const isEose = (sub: string) => (m: unknown[]) => m[0] === 'EOSE' && m[1] === sub;

async function publish(c: RawClient, e: NostrEvent): Promise<unknown[]> {
  c.send(['EVENT', e]);
  return c.next(isOk(e.id));
}

async function query(c: RawClient, sub: string, ...filters: object[]): Promise<NostrEvent[]> {
  c.send(['REQ', sub, ...filters]);
  const msgs = await c.until(isEose(sub));
  return msgs.filter((m) => m[0] === 'EVENT' && m[1] === sub).map((m) => m[2] as NostrEvent);
}

describe('relay server (open)', () => {
  let relay: RunningRelay;
  let c: RawClient;
  before(async () => {
    relay = await startRelay({ port: 0, maxMessageBytes: 64 * 1024 });
    c = await rawClient(relay.url);
  });
  after(async () => {
    c.close();
    await relay.close();
  });

  test('listens on loopback with a ws URL', () => {
    assert.match(relay.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  });

  test('EVENT is answered OK true, a duplicate OK true "duplicate:", and REQ by id returns it then EOSE', async () => {
    const e = ev(alice.sk, 1, T0, [], 'hello');
    assert.deepEqual(await publish(c, e), ['OK', e.id, true, '']);
    const dup = await publish(c, e);
    assert.equal(dup[2], true);
    assert.match(String(dup[3]), /^duplicate:/);
    assert.deepEqual(await query(c, 'by-id', { ids: [e.id] }), [e]);
  });

  test('invalid events are refused with OK false "invalid:"', async () => {
    const e = ev(alice.sk, 1, T0 + 1, [], 'x');
    const badSig = { ...e, sig: ev(bob.sk, 1, T0 + 1, [], 'x').sig };
    c.send(['EVENT', badSig]);
    const r1 = await c.next(isOk(e.id));
    assert.equal(r1[2], false);
    assert.match(String(r1[3]), /^invalid: .*signature/);
    const badId = { ...e, content: 'changed' };
    c.send(['EVENT', badId]);
    const r2 = await c.next(isOk(e.id));
    assert.equal(r2[2], false);
    assert.match(String(r2[3]), /^invalid: .*hash/);
    c.send(['EVENT', { ...e, kind: 70_000 }]);
    const r3 = await c.next(isOk(e.id));
    assert.match(String(r3[3]), /^invalid: event\.kind/);
    assert.deepEqual(await query(c, 'none', { ids: [e.id] }), []);
    // AUTH events do not belong in EVENT
    const auth = finalizeEvent(authTemplate(relay.url, 'x'), alice.sk);
    c.send(['EVENT', auth]);
    assert.equal((await c.next(isOk(auth.id)))[2], false);
  });

  test('garbage gets a NOTICE, and the connection stays usable', async () => {
    c.send('not json');
    assert.match(String((await c.next((m) => m[0] === 'NOTICE'))[1]), /^invalid:/);
    c.send({ not: 'an array' });
    assert.equal((await c.next((m) => m[0] === 'NOTICE'))[0], 'NOTICE');
    c.send(['COUNT', 'x', {}]);
    assert.match(String((await c.next((m) => m[0] === 'NOTICE'))[1]), /^unsupported:/);
    c.send(['EVENT', 'not an event']);
    assert.match(String((await c.next((m) => m[0] === 'NOTICE'))[1]), /^invalid:/);
    assert.deepEqual(await query(c, 'still-ok', { ids: ['0'.repeat(64)] }), []);
  });

  test('filters: authors, kinds, #e/#p/#d/#t, since/until, limit with newest first', async () => {
    const target = ev(bob.sk, 1, T0 + 10, [], 'target');
    const events = [
      target,
      ev(
        alice.sk,
        1,
        T0 + 11,
        [
          ['e', target.id],
          ['p', bob.pk],
        ],
        'reply',
      ),
      ev(
        alice.sk,
        7,
        T0 + 12,
        [
          ['e', target.id],
          ['t', 'floe'],
        ],
        '+',
      ),
      ev(alice.sk, 30_078, T0 + 13, [['d', 'floe-approval:s1']], 'approve'),
      ev(
        bob.sk,
        1,
        T0 + 14,
        [
          ['t', 'floe'],
          ['t', 'nostr'],
        ],
        'tagged',
      ),
    ];
    for (const e of events) assert.equal((await publish(c, e))[2], true);
    const ids = (es: NostrEvent[]) => es.map((e) => e.id);
    const scope = { since: T0 + 10, until: T0 + 14 };
    assert.deepEqual(ids(await query(c, 'f1', { ...scope, authors: [bob.pk] })), [events[4]!.id, target.id]);
    assert.deepEqual(ids(await query(c, 'f2', { ...scope, kinds: [7] })), [events[2]!.id]);
    assert.deepEqual(ids(await query(c, 'f3', { ...scope, '#e': [target.id] })), [
      events[2]!.id,
      events[1]!.id,
    ]);
    assert.deepEqual(ids(await query(c, 'f4', { '#p': [bob.pk] })), [events[1]!.id]);
    assert.deepEqual(ids(await query(c, 'f5', { '#d': ['floe-approval:s1'] })), [events[3]!.id]);
    assert.deepEqual(ids(await query(c, 'f6', { '#t': ['nostr', 'x'] })), [events[4]!.id]);
    assert.deepEqual(ids(await query(c, 'f7', { ...scope, '#t': ['floe'], kinds: [1] })), [events[4]!.id]);
    assert.deepEqual(ids(await query(c, 'f8', { since: T0 + 12, until: T0 + 13 })), [
      events[3]!.id,
      events[2]!.id,
    ]);
    assert.deepEqual(ids(await query(c, 'f9', { ...scope, limit: 2 })), [events[4]!.id, events[3]!.id]);
    // several filters are a union without duplicates
    assert.deepEqual(
      ids(await query(c, 'f10', { ids: [target.id] }, { ...scope, authors: [bob.pk] })).sort(),
      [events[4]!.id, target.id].sort(),
    );
  });

  test('bad filters and subscription ids are refused with CLOSED "invalid:" / NOTICE', async () => {
    c.send(['REQ', 'bad1', { kinds: ['1'] }]);
    assert.match(
      String((await c.next((m) => m[0] === 'CLOSED' && m[1] === 'bad1'))[2]),
      /^invalid: filter\.kinds/,
    );
    c.send(['REQ', 'bad2', { search: 'x' }]);
    assert.match(String((await c.next((m) => m[0] === 'CLOSED' && m[1] === 'bad2'))[2]), /^invalid:/);
    c.send(['REQ', 'bad3']);
    assert.match(
      String((await c.next((m) => m[0] === 'CLOSED' && m[1] === 'bad3'))[2]),
      /at least one filter/,
    );
    c.send(['REQ', 'x'.repeat(65), {}]);
    assert.match(String((await c.next((m) => m[0] === 'NOTICE'))[1]), /subscription id/);
  });

  test('live delivery, CLOSE stops it; ephemeral kinds are forwarded, never stored', async () => {
    const sub = await rawClient(relay.url);
    try {
      sub.send(['REQ', 'live', { kinds: [1, 20_001], authors: [alice.pk], since: T0 + 100 }]);
      await sub.next(isEose('live'));
      const e = ev(alice.sk, 1, T0 + 100, [], 'live one');
      await publish(c, e);
      assert.deepEqual(await sub.next((m) => m[0] === 'EVENT'), ['EVENT', 'live', e]);
      const eph = ev(alice.sk, 20_001, T0 + 101, [], 'ephemeral');
      assert.deepEqual(await publish(c, eph), ['OK', eph.id, true, '']);
      assert.deepEqual(await sub.next((m) => m[0] === 'EVENT'), ['EVENT', 'live', eph]);
      assert.deepEqual(await query(c, 'eph', { ids: [eph.id] }), []);
      sub.send(['CLOSE', 'live']);
      // a REQ after the CLOSE is answered only after the CLOSE was processed (one connection, in order)
      await query(sub, 'barrier', { ids: ['0'.repeat(64)] });
      const after = ev(alice.sk, 1, T0 + 102, [], 'after close');
      await publish(c, after);
      // the relay broadcast `after` before its OK; a later REQ's EOSE on this connection
      // therefore comes after anything the relay would have sent for 'live'
      sub.send(['REQ', 'barrier2', { ids: ['0'.repeat(64)] }]);
      const tail = await sub.until(isEose('barrier2'));
      assert.equal(tail.filter((m) => m[1] === 'live').length, 0);
    } finally {
      sub.close();
    }
  });

  test('replaceable kinds keep the newest per (pubkey, kind); ties keep the lowest id', async () => {
    const k = 10_002;
    const v1 = ev(alice.sk, k, T0 + 200, [['r', 'wss://one']]);
    const v2 = ev(alice.sk, k, T0 + 201, [['r', 'wss://two']]);
    await publish(c, v1);
    await publish(c, v2);
    const older = ev(alice.sk, k, T0 + 199, [['r', 'wss://old']]);
    const r = await publish(c, older);
    assert.equal(r[2], true);
    assert.match(String(r[3]), /^duplicate:/);
    assert.deepEqual(await query(c, 'r1', { kinds: [k], authors: [alice.pk] }), [v2]);
    // bob's list is separate
    const b1 = ev(bob.sk, k, T0 + 100);
    await publish(c, b1);
    assert.deepEqual(await query(c, 'r2', { kinds: [k], authors: [bob.pk] }), [b1]);
    // same created_at: lowest id wins, whichever order they arrive in
    const x = ev(alice.sk, 0, T0 + 300, [], '{"name":"x"}');
    const y = ev(alice.sk, 0, T0 + 300, [], '{"name":"y"}');
    const [lo, hi] = x.id < y.id ? [x, y] : [y, x];
    await publish(c, hi);
    await publish(c, lo);
    assert.deepEqual(await query(c, 'r3', { kinds: [0], authors: [alice.pk] }), [lo]);
    // kind 3 too
    const c1 = ev(alice.sk, 3, T0 + 1, [['p', bob.pk]]);
    const c2 = ev(alice.sk, 3, T0 + 2, []);
    await publish(c, c1);
    await publish(c, c2);
    assert.deepEqual(await query(c, 'r4', { kinds: [3], authors: [alice.pk] }), [c2]);
  });

  test('addressable kinds keep the newest per (pubkey, kind, d tag)', async () => {
    const k = 30_078;
    const a1 = ev(alice.sk, k, T0 + 400, [['d', 'floe-approval:s2']], 'v1');
    const a2 = ev(alice.sk, k, T0 + 401, [['d', 'floe-approval:s2']], 'v2');
    const other = ev(alice.sk, k, T0 + 400, [['d', 'floe-approval:s3']], 'other');
    const noD = ev(alice.sk, k, T0 + 400, [], 'no d');
    const emptyD = ev(alice.sk, k, T0 + 402, [['d', '']], 'empty d replaces no d');
    for (const e of [a1, a2, other, noD, emptyD]) await publish(c, e);
    const got = await query(c, 'a1', { kinds: [k], authors: [alice.pk], since: T0 + 400 });
    assert.deepEqual(got.map((e) => e.content).sort(), ['empty d replaces no d', 'other', 'v2']);
  });

  test('messages above maxMessageBytes close the connection (1009)', async () => {
    const big = await rawClient(relay.url);
    big.send(['EVENT', { content: 'x'.repeat(70 * 1024) }]);
    assert.equal(await big.closed, 1009);
  });

  test('NIP-11 information document', async () => {
    const res = await fetch(relay.url.replace('ws:', 'http:'), {
      headers: { accept: 'application/nostr+json' },
    });
    assert.equal(res.headers.get('content-type'), 'application/nostr+json');
    const info = (await res.json()) as { supported_nips: number[]; limitation: { auth_required: boolean } };
    assert.deepEqual(info.supported_nips, [1, 11]);
    assert.equal(info.limitation.auth_required, false);
  });
});

describe('relay server (NIP-42 required)', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await startRelay({ port: 0, auth: true });
  });
  after(() => relay.close());

  test('challenge on connect; EVENT and REQ refused "auth-required:" until a valid AUTH', async () => {
    const c = await rawClient(relay.url);
    try {
      const [, challenge] = (await c.next((m) => m[0] === 'AUTH')) as [string, string];
      assert.match(challenge, /^[0-9a-f]{32}$/);
      const e = ev(alice.sk, 1, T0, [], 'needs auth');
      const r = await publish(c, e);
      assert.equal(r[2], false);
      assert.match(String(r[3]), /^auth-required:/);
      c.send(['REQ', 's', {}]);
      assert.match(String((await c.next((m) => m[0] === 'CLOSED'))[2]), /^auth-required:/);

      // wrong challenge, wrong relay, stale: refused
      for (const tmpl of [
        authTemplate(relay.url, 'wrong'),
        authTemplate('ws://elsewhere.example:1', challenge),
        authTemplate(relay.url, challenge, T0),
      ]) {
        const bad = finalizeEvent(tmpl, bob.sk);
        c.send(['AUTH', bad]);
        const ok = await c.next(isOk(bad.id));
        assert.equal(ok[2], false);
      }
      assert.equal((await publish(c, e))[2], false);

      // nostr-tools writes the relay URL with a trailing slash: the same relay
      const good = finalizeEvent(authTemplate(`${relay.url}/`, challenge), bob.sk);
      c.send(['AUTH', good]);
      assert.deepEqual(await c.next(isOk(good.id)), ['OK', good.id, true, '']);
      assert.deepEqual(await publish(c, e), ['OK', e.id, true, '']);
      assert.deepEqual(await query(c, 's2', { ids: [e.id] }), [e]);
    } finally {
      c.close();
    }
  });

  test('a challenge belongs to its connection', async () => {
    const c1 = await rawClient(relay.url);
    const c2 = await rawClient(relay.url);
    try {
      const [, ch1] = (await c1.next((m) => m[0] === 'AUTH')) as [string, string];
      const [, ch2] = (await c2.next((m) => m[0] === 'AUTH')) as [string, string];
      assert.notEqual(ch1, ch2);
      const stolen = finalizeEvent(authTemplate(relay.url, ch1), alice.sk);
      c2.send(['AUTH', stolen]);
      assert.equal((await c2.next(isOk(stolen.id)))[2], false);
    } finally {
      c1.close();
      c2.close();
    }
  });
});

test('memory store evicts the oldest stored events beyond its cap', () => {
  const store = new MemoryEventStore(3);
  const es = [1, 2, 3, 4].map((i) => ev(alice.sk, 1, T0 + i, [], String(i)));
  for (const e of es) assert.equal(store.add(e), 'stored');
  assert.equal(store.size, 3);
  assert.deepEqual(
    store.query({}, 10).map((e) => e.content),
    ['4', '3', '2'],
  );
  assert.deepEqual(store.query({ limit: 0 }, 10), []);
});
