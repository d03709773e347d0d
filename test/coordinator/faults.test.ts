/**
 * Coordinator orchestration against real signer processes: blame and retry with another
 * subset, unreachable signers, byzantine commitments, quarantine, and a coordinator killed
 * in the middle of a session (DESIGN §7).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { fromHex } from '../../src/crypto/hex.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { libsecpVerify } from '../helpers/independent.js';
import { until } from '../helpers/until.js';

const msg = () => randomBytes(32).toString('hex');

function verifies(session: { signature: string; message: string }, key: { x_only_public_key: string }) {
  return libsecpVerify(
    fromHex(session.signature, 'sig', 64),
    fromHex(session.message, 'msg', 32),
    fromHex(key.x_only_public_key, 'key', 32),
  );
}

async function signer(c: TestCluster, id: string) {
  const r = await c.api('GET', '/v1/signers');
  return r.body.items.find((s: { id: string }) => s.id === id);
}

describe('a signer returning corrupted shares', () => {
  let c: TestCluster;
  let key: any;
  let ids: string[];
  before(async () => {
    c = await startCluster({ signers: 3, faults: { 0: 'corrupt_shares' } });
    ids = await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('is named the culprit and the session completes with another subset', async () => {
    const r = await c.sign(key.id, msg());
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed');
    assert.deepEqual(r.body.culprits, [1]);
    assert.equal(r.body.attempt, 2);
    assert.deepEqual(r.body.participants, [2, 3]);
    assert.ok(verifies(r.body, key));
    const s = await signer(c, ids[0]!);
    assert.ok(s.fault_count >= 1);
  });

  it('is quarantined after repeated faults; an admin override lets it back in', async () => {
    // A 2-of-2 key over the faulty signer and one honest one: every session needs it, is
    // blamed and fails (no other subset exists), until it is quarantined.
    const pair = await c.createKey(2, [ids[0]!, ids[1]!]);
    const cleared = await c.api('PATCH', `/v1/signers/${ids[0]}`, { clear_faults: true });
    assert.deepEqual([cleared.body.fault_count, cleared.body.quarantined], [0, false]);
    for (let i = 0; i < 3; i++) {
      const r = await c.sign(pair.id, msg());
      assert.deepEqual(
        [r.body.status, r.body.error_code, r.body.culprits],
        ['failed', 'no_quorum', [1]],
        JSON.stringify(r.body),
      );
    }
    assert.equal((await signer(c, ids[0]!)).quarantined, true);
    // Quarantined: not even tried any more.
    const q = await c.sign(pair.id, msg());
    assert.deepEqual([q.body.status, q.body.error_code, q.body.attempt], ['failed', 'no_quorum', 0]);
    // The 2-of-3 key still signs, without it, at the first attempt.
    const r = await c.sign(key.id, msg());
    assert.deepEqual([r.body.status, r.body.attempt, r.body.participants], ['completed', 1, [2, 3]]);
    assert.ok(verifies(r.body, key));
    // An admin override lets it take part again (and it is blamed again).
    const o = await c.api('PATCH', `/v1/signers/${ids[0]}`, { quarantine_override: true });
    assert.equal(o.body.quarantine_override, true);
    const back = await c.sign(pair.id, msg());
    assert.deepEqual([back.body.status, back.body.culprits], ['failed', [1]]);
    // Non-admins cannot override.
    const viewer = await c.api('POST', '/v1/tokens', { role: 'operator' });
    const denied = await c.api(
      'PATCH',
      `/v1/signers/${ids[0]}`,
      { clear_faults: true },
      {
        authorization: `Bearer ${viewer.body.token}`,
      },
    );
    assert.equal(denied.status, 403);
  });
});

describe('unreachable and byzantine signers', () => {
  let c: TestCluster;
  let ids: string[];
  before(async () => {
    // Signers 1-3 honest, 4 replays its commitments, 5 sends commitments it has no nonces for.
    c = await startCluster({ signers: 5, faults: { 3: 'replay_commitments', 4: 'wrong_commitments' } });
    ids = await c.registerSigners();
  });
  after(() => c.close());

  it('an unreachable signer is skipped and the retry completes', async () => {
    const key = await c.createKey(2, ids.slice(0, 3));
    await c.signers[0]!.kill('SIGKILL');
    const r = await c.sign(key.id, msg());
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.deepEqual(r.body.participants, [2, 3]);
    assert.ok(verifies(r.body, key));
    await c.restartSigner(0);
  });

  it('replayed commitments are refused by the database, blamed, and the session completes', async () => {
    const key = await c.createKey(2, [ids[3]!, ids[1]!, ids[2]!]);
    const first = await c.sign(key.id, msg());
    assert.equal(first.body.status, 'completed');
    // Its next open replays the commitments of the first session.
    const r = await c.sign(key.id, msg());
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.ok(r.body.attempt >= 2);
    assert.ok(!r.body.participants.includes(1));
    assert.ok(verifies(r.body, key));
    assert.ok((await signer(c, ids[3]!)).fault_count >= 1, 'replaying signer blamed');
    const db = (c.coordinator!.backend as PgBackend).db;
    const dup = await db.adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT nonce_commitment FROM nonce_commitments GROUP BY 1 HAVING count(*) > 1) d',
    );
    assert.equal(dup.rows[0]!.n, 0, 'no commitment stored twice');
    const audit = await db.adminQuery<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_events WHERE kind = 'session.nonce_reuse'",
    );
    assert.ok(audit.rows[0]!.n >= 1);
  });

  it('a signer committing to nonces it does not hold is blamed and the session completes', async () => {
    const key = await c.createKey(2, [ids[4]!, ids[1]!, ids[2]!]);
    const r = await c.sign(key.id, msg());
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.deepEqual([r.body.attempt, r.body.participants], [2, [2, 3]]);
    assert.deepEqual(r.body.culprits, [1], 'named as the culprit');
    assert.ok(verifies(r.body, key));
    assert.ok((await signer(c, ids[4]!)).fault_count >= 1);
  });
});

describe('a coordinator killed in the middle of a session', () => {
  let c: TestCluster;
  let key: any;
  before(async () => {
    c = await startCluster({ signers: 3, coordinatorProcess: true });
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('is restarted and the session completes (or fails), never stuck', async () => {
    // Freeze signer 1 so the session hangs in a round, then kill the coordinator there.
    c.signers[0]!.proc.kill('SIGSTOP');
    const created = await c.api('POST', '/v1/sessions', { key_id: key.id, message: msg() });
    assert.equal(created.status, 202);
    const id = created.body.id;
    let s = created.body;
    const inRound = () => ['nonce_collection', 'signing'].includes(s.status);
    await until(
      () => `session in a round (${s.status})`,
      async () => {
        if (!inRound()) s = (await c.api('GET', `/v1/sessions/${id}`)).body;
        return inRound();
      },
      10_000,
    );
    assert.ok(['nonce_collection', 'signing'].includes(s.status), `session in a round (${s.status})`);
    c.coordinatorProcess!.proc.kill('SIGKILL');
    await c.coordinatorProcess!.exited;
    c.signers[0]!.proc.kill('SIGCONT');
    await c.restartCoordinator();
    const done = (await c.api('GET', `/v1/sessions/${id}?wait=30000`)).body;
    assert.ok(['completed', 'failed', 'expired'].includes(done.status), `terminal, got ${done.status}`);
    if (done.status === 'completed') assert.ok(verifies(done, key));
    // And the restarted coordinator signs new sessions.
    const r = await c.sign(key.id, msg());
    assert.equal(r.body.status, 'completed');
    assert.ok(verifies(r.body, key));
  });
});

describe('a signer that deals a bad share in a DKG', () => {
  let c: TestCluster;
  let ids: string[];
  before(async () => {
    c = await startCluster({ signers: 3, faults: { 1: 'bad_dkg_share' } });
    ids = await c.registerSigners();
  });
  after(() => c.close());

  it('is proven at fault by the complaint of the member it lied to, and nobody else is blamed', async () => {
    const r = await c.api('POST', '/v1/keys', { threshold: 2, wait: 30_000 });
    assert.equal(r.body.status, 'failed', JSON.stringify(r.body));
    assert.equal(r.body.ceremony.error_code, 'dkg_failed');
    assert.deepEqual(r.body.ceremony.culprits, [2], 'member 2 sealed a share that does not verify');
    const db = (c.coordinator!.backend as PgBackend).db;
    const ev = await db.adminQuery<{ data: any }>(
      "SELECT data FROM audit_events WHERE kind = 'key.dkg_failed' AND subject_id = $1",
      [r.body.id],
    );
    const evidence = ev.rows[0]!.data.evidence;
    assert.equal(evidence.length, 1);
    assert.equal(evidence[0].verdict, 'sender_at_fault');
    assert.equal(evidence[0].culprit, 2);
    assert.equal(evidence[0].complaint.receiver, 1, 'the member it lied to complained');
    assert.ok(evidence[0].sender_round2.envelope, "the sender's own signed round-2 answer is kept");
    // Faults count only for signing; the honest members' registry entries are untouched.
    for (const id of [ids[0]!, ids[2]!]) assert.equal((await signer(c, id)).fault_count, 0);
  });
});
