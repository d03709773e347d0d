/**
 * Publishing signed Nostr events (DESIGN §14) against real signer processes and real relay
 * processes: the event is on the relay afterwards (fetched by id, verified by nostr-tools),
 * every relay's answer is recorded (accepted, refused, and a relay that was down and is tried
 * again once it is up), key default relays, bad relays refused with nothing written, batches,
 * and a coordinator killed mid-publish whose successor finishes the job.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyEvent as nostrToolsVerify } from 'nostr-tools/pure';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { fetchFrom, freePort } from '../helpers/relays.js';
import { until } from '../helpers/until.js';
import { type RelayProcess, spawnRelay } from '../nostr/helpers.js';

async function count(c: TestCluster, table: string, where = 'true'): Promise<number> {
  const db = (c.coordinator!.backend as PgBackend).db;
  return (await db.adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`))
    .rows[0]!.n;
}

const note = (content: string) => ({ kind: 1, content, tags: [['t', 'floe']] });

describe('publishing signed Nostr events', () => {
  let c: TestCluster;
  let key: any;
  let good: RelayProcess;
  let refusing: RelayProcess;
  const relays: RelayProcess[] = [];
  before(async () => {
    [c, good, refusing] = await Promise.all([
      startCluster({
        signers: 3,
        // Retries quick enough for a test, with tries to spare while a relay process starts.
        env: { FLOE_PUBLISH_RETRY_MS: '300', FLOE_PUBLISH_ATTEMPTS: '8', FLOE_PUBLISH_TIMEOUT_MS: '3000' },
      }),
      spawnRelay(['--port', '0']),
      // NIP-42 auth required: refuses EVENT from our unauthenticated publisher with an OK false.
      spawnRelay(['--port', '0', '--auth']),
    ]);
    relays.push(good, refusing);
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(async () => {
    await c?.close();
    await Promise.all(relays.map((r) => r.kill()));
  });

  it('publishes to each relay and records every answer: accepted, refused, and a down relay retried once up', async () => {
    const downPort = await freePort();
    const down = `ws://127.0.0.1:${downPort}`;
    const r = await c.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: note('published by a threshold key'),
      // Written unnormalized and twice: stored normalized, once.
      publish: { relays: [`${good.url}/`, refusing.url, down, good.url.replace('ws://', 'WS://')] },
      wait: 30_000,
    });
    // `wait` answers once signed, not once the relays answered (one of them cannot yet).
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed');
    assert.deepEqual(r.body.publish.relays, [good.url, refusing.url, down]);
    assert.equal(r.body.publish.status, 'pending');
    const id = r.body.event.id;
    assert.equal(r.body.final_event_id, id);

    // The down relay was tried and failed: recorded as not accepted, with a reason.
    const failed = await until('a failed try of the down relay is recorded', async () => {
      const s = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
      const d = s.publish.results.find((x: any) => x.relay === down);
      return d && d.attempts >= 1 ? s : undefined;
    });
    const d0 = failed.publish.results.find((x: any) => x.relay === down);
    assert.equal(d0.accepted, false);
    assert.ok(d0.message.length > 0);
    assert.equal(failed.publish.status, 'pending');
    assert.ok(failed.publish.next_attempt_at > 0);

    // Now it comes up, on the port it was asked for; a later round gets its OK.
    const late = await spawnRelay(['--port', String(downPort)]);
    relays.push(late);
    const done = await until(
      'publishing is done',
      async () => {
        const s = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
        return s.publish.status === 'done' ? s : undefined;
      },
      60_000,
    );
    const byRelay = Object.fromEntries(done.publish.results.map((x: any) => [x.relay, x]));
    assert.deepEqual(Object.keys(byRelay), [good.url, refusing.url, down], 'one result per relay, in order');
    assert.equal(byRelay[good.url].accepted, true);
    assert.equal(byRelay[good.url].attempts, 1);
    assert.equal(byRelay[refusing.url].accepted, false);
    assert.match(byRelay[refusing.url].message, /^auth-required:/);
    assert.equal(byRelay[refusing.url].attempts, 1, 'a refusal is an answer: not tried again');
    assert.equal(byRelay[down].accepted, true);
    assert.ok(byRelay[down].attempts >= 2, `tried ${byRelay[down].attempts} times`);
    for (const x of done.publish.results) assert.ok(x.at >= r.body.completed_at);
    assert.equal(done.publish.next_attempt_at, null);

    // Both relays that accepted serve the event, and it verifies for an independent library.
    for (const url of [good.url, late.url]) {
      const e = await fetchFrom(url, id);
      assert.ok(e, `event on ${url}`);
      assert.deepEqual(e, done.event);
      assert.ok(nostrToolsVerify({ ...e }), 'nostr-tools verifies the event');
      assert.equal(e.pubkey, key.x_only_public_key);
    }
    assert.equal(await fetchFrom(refusing.url, id).catch(() => undefined), undefined);
    assert.equal(
      await count(c, 'audit_events', `kind = 'session.published' AND subject_id = '${r.body.id}'`),
      1,
    );
  });

  it("uses the key's default relays for publish: {}; PATCH normalizes, deduplicates and audits", async () => {
    const none = await c.api('POST', '/v1/sessions', { key_id: key.id, nostr_event: note('x'), publish: {} });
    assert.equal(none.status, 400);
    assert.equal(none.body.code, 'publish_no_relays');
    assert.match(none.body.hint, /PATCH \/v1\/keys\//);

    const set = await c.api('PATCH', `/v1/keys/${key.id}`, { relays: [`${good.url}/`, good.url] });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.relays, [good.url]);
    assert.deepEqual((await c.api('GET', `/v1/keys/${key.id}`)).body.relays, [good.url]);
    assert.equal(
      await count(c, 'audit_events', `kind = 'key.relays_updated' AND subject_id = '${key.id}'`),
      1,
    );

    const r = await c.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: note('to the default relays'),
      publish: {},
      wait: 30_000,
    });
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.publish.relays, [good.url]);
    const s = await until('published', async () => {
      const x = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
      return x.publish.status === 'done' ? x : undefined;
    });
    assert.equal(s.publish.results[0].accepted, true);
    assert.ok(await fetchFrom(good.url, r.body.event.id));

    // Named relays win over the defaults; sessions without publish have no publish member.
    const plain = await c.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: note('quiet'),
      wait: 30_000,
    });
    assert.equal(plain.status, 201);
    assert.equal(plain.body.publish, undefined);

    const cleared = await c.api('PATCH', `/v1/keys/${key.id}`, { relays: [] });
    assert.deepEqual(cleared.body.relays, []);
  });

  it('refuses bad relays and misplaced publish with a stable code, writing nothing', async () => {
    const sessions = await count(c, 'signing_sessions');
    const cases: [unknown, number, string][] = [
      [{ nostr_event: note('x'), publish: { relays: ['http://127.0.0.1:1'] } }, 400, 'relay_url_invalid'],
      [{ nostr_event: note('x'), publish: { relays: [good.url, 'not a url'] } }, 400, 'relay_url_invalid'],
      [
        { nostr_event: note('x'), publish: { relays: ['wss://user:pw@relay.example'] } },
        400,
        'relay_url_invalid',
      ],
      [{ nostr_event: note('x'), publish: { relays: [] } }, 400, 'publish_no_relays'],
      [
        {
          nostr_event: note('x'),
          publish: { relays: Array.from({ length: 21 }, (_, i) => `wss://r${i}.example`) },
        },
        400,
        'invalid_request',
      ],
      [{ nostr_event: note('x'), publish: { relays: [good.url], extra: 1 } }, 400, 'invalid_request'],
      [{ message: 'ab'.repeat(32), publish: { relays: [good.url] } }, 400, 'publish_not_nostr_event'],
    ];
    for (const [body, status, code] of cases) {
      const r = await c.api('POST', '/v1/sessions', { key_id: key.id, ...(body as object) });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, code, JSON.stringify(r.body));
      if (code === 'relay_url_invalid') assert.match(r.body.hint, /ws:\/\/ or wss:\/\//);
    }
    // A batch with one bad item writes none.
    const b = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [
        { nostr_event: note('fine'), publish: { relays: [good.url] } },
        { nostr_event: note('bad'), publish: { relays: ['ftp://x'] } },
      ],
    });
    assert.equal(b.status, 400);
    assert.equal(b.body.code, 'relay_url_invalid');
    assert.equal(b.body.item, 1);
    assert.equal(await count(c, 'signing_sessions'), sessions, 'no session written');

    const before = (await c.api('GET', `/v1/keys/${key.id}`)).body.relays;
    for (const [body, code] of [
      [{ relays: ['https://relay.example'] }, 'relay_url_invalid'],
      [{ relays: Array.from({ length: 21 }, (_, i) => `wss://r${i}.example`) }, 'invalid_request'],
      [{}, 'invalid_request'],
      [{ relays: [good.url], label: 'x' }, 'invalid_request'],
    ] as const) {
      const r = await c.api('PATCH', `/v1/keys/${key.id}`, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, code);
    }
    assert.deepEqual((await c.api('GET', `/v1/keys/${key.id}`)).body.relays, before, 'key unchanged');
    const missing = await c.api('PATCH', '/v1/keys/key_nope', { relays: [good.url] });
    assert.equal(missing.status, 404);
  });

  it('publishes the Nostr items of a batch that ask for it', async () => {
    const b = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [
        { nostr_event: note('batched, published'), publish: { relays: [good.url] } },
        { nostr_event: note('batched, kept') },
        { message: 'cd'.repeat(32) },
      ],
      wait: 30_000,
    });
    assert.equal(b.status, 201, JSON.stringify(b.body).slice(0, 500));
    const [pub, kept] = b.body.items;
    assert.deepEqual(pub.publish.relays, [good.url]);
    assert.equal(kept.publish, undefined);
    await until('batch item published', async () => {
      const s = (await c.api('GET', `/v1/sessions/${pub.id}`)).body;
      return s.publish.status === 'done' && s.publish.results[0].accepted;
    });
    assert.ok(await fetchFrom(good.url, pub.event.id));
    assert.equal(await fetchFrom(good.url, kept.event.id), undefined);
  });
});

describe('publishing across a coordinator restart', () => {
  let c: TestCluster;
  const relays: RelayProcess[] = [];
  after(async () => {
    await c?.close();
    await Promise.all(relays.map((r) => r.kill()));
  });

  it('a coordinator killed mid-publish leaves the rest to the next one', async () => {
    let good: RelayProcess;
    [c, good] = await Promise.all([
      startCluster({
        signers: 3,
        coordinatorProcess: true,
        env: { FLOE_PUBLISH_RETRY_MS: '200', FLOE_PUBLISH_ATTEMPTS: '10', FLOE_PUBLISH_TIMEOUT_MS: '2000' },
      }),
      spawnRelay(['--port', '0']),
    ]);
    relays.push(good);
    await c.registerSigners();
    const key = await c.createKey(2);
    const downPort = await freePort();
    const down = `ws://127.0.0.1:${downPort}`;
    const r = await c.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: note('survives a restart'),
      publish: { relays: [good.url, down] },
      wait: 30_000,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await until('the first round is recorded', async () => {
      const s = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
      return s.publish.results.length === 2;
    });
    // Killed while the down relay is still owed its event; only then does that relay come up,
    // so whatever reaches it comes from the next coordinator.
    await c.coordinatorProcess!.kill('SIGKILL');
    const late = await spawnRelay(['--port', String(downPort)]);
    relays.push(late);
    await c.restartCoordinator();
    const done = await until(
      'the restarted coordinator finished publishing',
      async () => {
        const s = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
        return s.publish.status === 'done' ? s : undefined;
      },
      60_000,
    );
    assert.deepEqual(
      done.publish.results.map((x: any) => [x.relay, x.accepted]),
      [
        [good.url, true],
        [down, true],
      ],
    );
    const e = await fetchFrom(late.url, r.body.event.id);
    assert.ok(e && nostrToolsVerify({ ...e }));
  });
});
