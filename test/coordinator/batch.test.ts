/**
 * The batch API (POST /v1/sessions/batch) against real signer processes: many intents of one
 * key signed with one open and one round 2 per signer, each item its own session with its own
 * status; a bad item refuses the whole request and writes nothing; items a misbehaving signer
 * spoils are finished one by one, with blame, like any session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_TENANT } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { fromHex } from '../../src/crypto/hex.js';
import { verifyEvent } from '../../src/nostr/event.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem } from '../helpers/http.js';
import { libsecpVerify } from '../helpers/independent.js';

const msg = () => randomBytes(32).toString('hex');

function verifies(s: { signature: string; message: string }, key: { x_only_public_key: string }) {
  return libsecpVerify(
    fromHex(s.signature, 'sig', 64),
    fromHex(s.message, 'msg', 32),
    fromHex(key.x_only_public_key, 'key', 32),
  );
}

/** floe_signer_requests_total for one message type and outcome, from a signer's /metrics. */
async function requests(url: string, type: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`floe_signer_requests_total\\{type="${type}",outcome="ok"\\} (\\d+)`));
  return m ? Number(m[1]) : 0;
}

async function sessionCount(c: TestCluster): Promise<number> {
  const db = (c.coordinator!.backend as PgBackend).db;
  return (await db.adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM signing_sessions')).rows[0]!.n;
}

describe('POST /v1/sessions/batch', () => {
  let c: TestCluster;
  let key: any;
  before(async () => {
    c = await startCluster({ signers: 3 });
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('signs every item with one open and one round 2 per signer; each signature verifies', async () => {
    const before = await Promise.all(c.signers.map((s) => requests(s.url, 'sign.open_batch')));
    const items = Array.from({ length: 40 }, () => ({ message: msg() }));
    const r = await c.api('POST', '/v1/sessions/batch', { key_id: key.id, items, wait: 30_000 });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
    assert.equal(r.body.items.length, 40);
    for (const [i, s] of r.body.items.entries()) {
      assert.equal(s.status, 'completed');
      assert.equal(s.message, items[i]!.message, 'in the order of the request');
      assert.equal(s.attempt, 1);
      assert.ok(verifies(s, key));
    }
    assert.equal(new Set(r.body.items.map((s: any) => s.id)).size, 40, 'one session each');
    // Each is an ordinary session.
    const one = await c.api('GET', `/v1/sessions/${r.body.items[7].id}`);
    assert.equal(one.body.signature, r.body.items[7].signature);
    // One batch request per signer taking part (2 of 3), not one per item.
    const afterCounts = await Promise.all(c.signers.map((s) => requests(s.url, 'sign.open_batch')));
    const delta = afterCounts.map((n, i) => n - before[i]!);
    assert.equal(
      delta.reduce((a, b) => a + b, 0),
      2,
      `open_batch requests per signer: ${delta}`,
    );
    assert.ok(delta.every((d) => d <= 1));
  });

  it("its items are born in the batch's attempt: no pending step, the attempt recorded with each", async () => {
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg() }, { message: msg() }],
      wait: 30_000,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
    const db = (c.coordinator!.backend as PgBackend).db;
    for (const s of r.body.items) {
      assert.equal(s.status, 'completed');
      const rows = (
        await db.adminQuery<{ kind: string; data: any }>(
          'SELECT kind, data FROM audit_events WHERE subject_id = $1 ORDER BY id',
          [s.id],
        )
      ).rows;
      const trail = rows.filter((x) => x.kind === 'status_change').map((x) => x.data.to);
      assert.deepEqual(trail, ['nonce_collection', 'signing', 'aggregating', 'completed']);
      assert.equal(rows.find((x) => x.kind === 'status_change')!.data.from, null);
      assert.deepEqual(rows.find((x) => x.kind === 'session.attempt')?.data, {
        attempt: 1,
        participants: s.participants,
        batch: true,
      });
    }
  });

  it('mixes intents: a Nostr event comes back signed under the key', async () => {
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [
        { message: msg() },
        { nostr_event: { kind: 1, content: 'batched note', tags: [['t', 'floe']] } },
      ],
      wait: 30_000,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 500));
    const [m, n] = r.body.items;
    assert.ok(verifies(m, key));
    assert.equal(n.intent_type, 'nostr_event');
    assert.equal(n.event.pubkey, key.x_only_public_key);
    assert.equal(n.final_event_id, n.event.id);
    assert.ok(verifyEvent(n.event));
  });

  it('a bad item refuses the whole request, names its index, and writes nothing', async () => {
    const n0 = await sessionCount(c);
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg() }, { nostr_event: { kind: 1, content: 'x', created_at: 1 } }],
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.code, 'event_created_at_invalid');
    assert.match(r.body.detail, /^items\[1\]: /);
    const both = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg(), nostr_event: { kind: 1, content: 'x' } }],
    });
    assert.equal(both.status, 400);
    const empty = await c.api('POST', '/v1/sessions/batch', { key_id: key.id, items: [] });
    assert.equal(empty.status, 400);
    const tooMany = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: Array.from({ length: 257 }, () => ({ message: msg() })),
    });
    assert.equal(tooMany.status, 400);
    const unknown = await c.api('POST', '/v1/sessions/batch', {
      key_id: 'key_nope',
      items: [{ message: msg() }],
    });
    assert.equal(unknown.status, 404);
    assert.equal(await sessionCount(c), n0);
  });

  it('without wait answers 202 and the sessions finish on their own', async () => {
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg() }, { message: msg() }],
    });
    assert.equal(r.status, 202);
    for (const s of r.body.items) {
      const done = await c.api('GET', `/v1/sessions/${s.id}?wait=30000`);
      assert.equal(done.body.status, 'completed');
      assert.ok(verifies(done.body, key));
    }
  });

  it('keeps the key in memory between sessions; a change another writer commits is seen before the next is written', async () => {
    const backend = c.coordinator!.backend as PgBackend;
    const read = backend.getKeyVersioned.bind(backend);
    let reads = 0;
    backend.getKeyVersioned = (tenantId, keyId) => {
      reads++;
      return read(tenantId, keyId);
    };
    const batch = () =>
      c.api('POST', '/v1/sessions/batch', { key_id: key.id, items: [{ message: msg() }], wait: 30_000 });
    try {
      assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
      const kept = reads;
      for (let i = 0; i < 3; i++) assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
      assert.equal((await batch()).body.items[0].status, 'completed');
      assert.equal(reads, kept, 'no read of the key while it is unchanged');
      // Another writer (a second coordinator on this database, an operator) disables the key.
      await backend.updateKey(DEFAULT_TENANT, key.id, { status: 'disabled' });
      const before = await sessionCount(c);
      assertProblem(await c.sign(key.id, msg()), 409, 'key_disabled', 'session');
      assertProblem(await batch(), 409, 'key_disabled', 'batch');
      assert.equal(await sessionCount(c), before, 'nothing written for the disabled key');
      assert.equal(reads, kept + 2, 'the first refusal read it again, the second was not kept');
      // Enabled behind its back: a refusal is never kept.
      await backend.updateKey(DEFAULT_TENANT, key.id, { status: 'active' });
      assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
      // A change that leaves it usable: read once more, then kept again.
      await backend.setKeyRelays(DEFAULT_TENANT, key.id, ['wss://relay.example.com'], {
        kind: 'key.relays',
        data: {},
        actor: 'test',
      });
      const now = reads;
      for (let i = 0; i < 2; i++) assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
      assert.equal(reads, now + 1);
    } finally {
      backend.getKeyVersioned = read;
    }
  });
});

describe('batches with a misbehaving signer', () => {
  let c: TestCluster;
  let ids: string[];
  before(async () => {
    // Signer 1 corrupts its shares; signer 4 replays its commitments.
    c = await startCluster({ signers: 4, faults: { 0: 'corrupt_shares', 3: 'replay_commitments' } });
    ids = await c.registerSigners();
  });
  after(() => c.close());

  it('items with a bad share are finished one by one, the culprit named, each signature valid', async () => {
    const key = await c.createKey(2, ids.slice(0, 3));
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: Array.from({ length: 5 }, () => ({ message: msg() })),
      wait: 60_000,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 800));
    for (const s of r.body.items) {
      assert.equal(s.status, 'completed');
      assert.ok(s.attempt >= 2, 'the batch attempt failed');
      assert.ok(!s.participants.includes(1));
      assert.ok(verifies(s, key));
    }
    // Blamed on its own signed answers, in the single-session retry of at least one item.
    assert.ok(r.body.items.some((s: any) => s.culprits.includes(1)));
    const signer = (await c.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === ids[0]);
    assert.ok(signer.fault_count >= 1);
  });

  it('replayed commitments in a batch are refused by the database and blamed; the items complete', async () => {
    const key = await c.createKey(2, [ids[3]!, ids[1]!, ids[2]!]);
    const first = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg() }],
      wait: 30_000,
    });
    assert.equal(first.body.items[0].status, 'completed');
    // The replaying signer sends the commitments it sent last time for every item.
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: Array.from({ length: 3 }, () => ({ message: msg() })),
      wait: 60_000,
    });
    for (const s of r.body.items) {
      assert.equal(s.status, 'completed', JSON.stringify(s));
      assert.ok(!s.participants.includes(1));
      assert.ok(verifies(s, key));
    }
    const db = (c.coordinator!.backend as PgBackend).db;
    const dup = await db.adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT nonce_commitment FROM nonce_commitments GROUP BY 1 HAVING count(*) > 1) d',
    );
    assert.equal(dup.rows[0]!.n, 0, 'no commitment stored twice');
    const signer = (await c.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === ids[3]);
    assert.ok(signer.fault_count >= 1, 'the replaying signer is blamed');
  });
});
