/**
 * The batch paths of the Postgres/PGlite backend (insertSessions, transitionSessions,
 * commitAttempts, completeAttempts): a fixed number of statements whatever the batch size, and
 * each item as if it were alone — its own conditional moves, null for a session that moved on
 * while the others proceed, a commitment seen before refusing the whole call with its culprits,
 * one audit row per item and per status change, the audit chain intact. PGlite by default; the
 * Postgres server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgBackend } from '../../src/coordinator/pg-backend.js';
import type {
  AttemptCommit,
  AttemptCompletion,
  NewSession,
  SessionRecord,
} from '../../src/coordinator/ports.js';
import { insertCommitments } from '../../src/db/queries/nonces.js';
import { type ChainedAuditRow, verifyAuditChain } from '../../src/domain/audit-chain.js';
import { newId } from '../../src/domain/ids.js';
import { type FloeError, isFloeError } from '../../src/protocol/errors.js';
import { commitment, DAY, intentFields, NOW, seedKeyTx, seedTenant, signature } from '../db/fixtures.js';
import { type CountingDb, countingDb } from '../helpers/counting-db.js';
import { type TestDb, testDb } from '../helpers/db.js';

const reuse = (culprits: number[]) => (e: unknown) => {
  if (!isFloeError(e) || e.code !== 'nonce_reuse_detected') return false;
  assert.deepEqual((e as FloeError).extra.culprits, culprits);
  return true;
};

describe('PgBackend batch paths', () => {
  let t: TestDb;
  let backend: PgBackend;
  let count: CountingDb;
  let tenant: string;
  let keyId: string;

  before(async () => {
    t = await testDb();
    count = countingDb(t.db);
    backend = new PgBackend(count.db);
    tenant = await seedTenant(t.db);
    keyId = (await t.db.transaction((tx) => seedKeyTx(tx), { tenantId: tenant })).id;
  });
  after(() => t.cleanup());

  const newSessions = (n: number, key = keyId): NewSession[] =>
    Array.from({ length: n }, () => ({
      sessionId: newId('session'),
      tenantId: tenant,
      keyId: key,
      ...intentFields(),
      status: 'pending' as const,
      fingerprint: '',
      threshold: 2,
      createdBy: 'test',
      idempotencyKey: null,
      createdAt: NOW,
      expiresAt: NOW + DAY,
    }));

  /** New sessions moved to nonce_collection, attempt 1, members 1 and 2. */
  async function collecting(n: number): Promise<SessionRecord[]> {
    const created = await backend.insertSessions(newSessions(n), { kind: 'session.created', data: {} });
    const started = await backend.transitionSessions(
      tenant,
      created.map((s) => ({
        sessionId: s.sessionId,
        from: ['pending'],
        expectAttempt: 0,
        to: 'nonce_collection',
        patch: { attempt: 1, participants: [1, 2] },
        event: { kind: 'session.attempt', data: { attempt: 1 } },
      })),
    );
    count.take().statements;
    return started.map((s) => s!);
  }

  const commitOf = (s: SessionRecord, cs: string[] = [commitment(), commitment()]): AttemptCommit => ({
    sessionId: s.sessionId,
    attempt: s.attempt,
    rows: cs.map((c, i) => ({ identifier: i + 1, signerId: `s${i + 1}`, commitment: c })),
    patch: { nonceCommitments: { [s.attempt]: { c: cs } }, signingStartedAt: NOW + 1 },
  });

  const completionOf = (s: SessionRecord, extra: { finalEventId?: string } = {}): AttemptCompletion => ({
    sessionId: s.sessionId,
    attempt: s.attempt,
    shares: { partialSignatures: { [s.attempt]: { 1: 'a', 2: 'b' } } },
    completion: { finalSignature: signature(), completedAt: NOW + 2, ...extra },
    event: { kind: 'session.completed', data: { attempt: s.attempt } },
  });

  const commitmentsOf = async (sessionId: string) =>
    (
      await t.db.adminQuery<{ participant: number; nonce_used: boolean; used_at: number | null }>(
        'SELECT participant, nonce_used, used_at FROM nonce_commitments WHERE session_id = $1 ORDER BY participant',
        [sessionId],
      )
    ).rows;

  const auditKinds = async (sessionId: string) =>
    (
      await t.db.adminQuery<{ kind: string; to: string | null }>(
        `SELECT kind, data->>'to' AS to FROM audit_events WHERE subject_id = $1 ORDER BY id`,
        [sessionId],
      )
    ).rows.map((r) => (r.kind === 'status_change' ? `→${r.to}` : r.kind));

  it('signs 100 sessions in a fixed number of statements; each item as if alone, the chain intact', async () => {
    const created = await backend.insertSessions(newSessions(100), {
      kind: 'session.created',
      data: { batch: true },
    });
    assert.ok(
      count.take().statements <= 2,
      'insertSessions: one INSERT for the sessions, one for their events',
    );
    assert.equal(created.length, 100);
    assert.ok(created.every((s) => s.status === 'pending' && s.tenantId === tenant && s.attempt === 0));

    const started = await backend.transitionSessions(
      tenant,
      created.map((s) => ({
        sessionId: s.sessionId,
        from: ['pending'],
        expectAttempt: 0,
        to: 'nonce_collection',
        patch: { attempt: 1, participants: [1, 2], nonceCollectionStartedAt: NOW },
        event: { kind: 'session.attempt', data: { attempt: 1 } },
      })),
    );
    assert.ok(count.take().statements <= 2, 'transitionSessions: one UPDATE, one INSERT of events');
    assert.ok(
      started.every((s, i) => s?.sessionId === created[i]!.sessionId && s.status === 'nonce_collection'),
    );

    const committed = await backend.commitAttempts(
      tenant,
      started.map((s) => commitOf(s!)),
    );
    assert.deepEqual(
      count.take(),
      { transactions: 1, statements: 2 },
      'commitAttempts: one UPDATE, one INSERT',
    );
    assert.ok(committed.every((s, i) => s?.sessionId === created[i]!.sessionId && s.status === 'signing'));
    assert.equal(committed[0]!.signingStartedAt, NOW + 1);

    const done = await backend.completeAttempts(
      tenant,
      committed.map((s, i) => completionOf(s!, i % 2 ? { finalEventId: s!.messageHash } : {})),
    );
    // Two patch shapes (with and without an event id): one more UPDATE.
    assert.ok(count.take().statements <= 4, 'completeAttempts: the two moves and the events');
    for (const [i, s] of done.entries()) {
      assert.equal(s?.status, 'completed');
      assert.equal(s.sessionId, created[i]!.sessionId);
      assert.match(s.finalSignature!, /^[0-9a-f]{128}$/);
      assert.equal(s.finalEventId, i % 2 ? s.messageHash : null);
      assert.deepEqual(s.partialSignatures, { 1: { 1: 'a', 2: 'b' } });
    }

    for (const s of [created[0]!, created[57]!, created[99]!]) {
      assert.deepEqual(
        (await commitmentsOf(s.sessionId)).map((r) => [r.participant, r.nonce_used, r.used_at !== null]),
        [
          [1, true, true],
          [2, true, true],
        ],
      );
      assert.deepEqual(await auditKinds(s.sessionId), [
        '→pending',
        'session.created',
        '→nonce_collection',
        'session.attempt',
        '→signing',
        '→aggregating',
        '→completed',
        'session.completed',
      ]);
    }
    const chain = await t.db.adminQuery<ChainedAuditRow>(
      `SELECT id, tenant_id, at, actor, kind, subject_type, subject_id, data, prev_hash, hash
         FROM audit_events WHERE tenant_id = $1 ORDER BY id`,
      [tenant],
    );
    assert.ok(chain.rows.length >= 800);
    assert.equal(verifyAuditChain(chain.rows).ok, true);
  });

  it('sessions born in their first attempt: nonce_collection, attempt 1, both events, in one statement each', async () => {
    const first = { participants: [1, 3], startedAt: NOW + 5 };
    const attempt = { kind: 'session.attempt', data: { attempt: 1, participants: [1, 3] } };
    const list = newSessions(3).map((s) => ({ ...s, firstAttempt: { ...first, event: attempt } }));
    count.take().statements;
    const rows = await backend.insertSessions(list, { kind: 'session.created', data: {} });
    assert.equal(count.take().statements, 2, 'one INSERT for the sessions, one for their events');
    const [one] = newSessions(1);
    const single = await backend.insertSession(
      { ...one!, firstAttempt: { ...first, event: attempt } },
      {
        kind: 'session.created',
        data: {},
      },
    );
    assert.ok(single.created);
    for (const s of [...rows, single.session]) {
      assert.equal(s.status, 'nonce_collection');
      assert.equal(s.attempt, 1);
      assert.deepEqual(s.participants, [1, 3]);
      assert.equal(s.nonceCollectionStartedAt, NOW + 5);
      assert.deepEqual(await auditKinds(s.sessionId), [
        '→nonce_collection',
        'session.created',
        'session.attempt',
      ]);
    }
    // Its first attempt goes on from there like any: the commitments, then signing.
    const [committed] = await backend.commitAttempts(tenant, [commitOf(rows[0]!)]);
    assert.equal(committed?.status, 'signing');
    // Only a session ready to sign starts in an attempt.
    const [waiting] = newSessions(1);
    await assert.rejects(
      backend.insertSession(
        { ...waiting!, status: 'awaiting_approval', firstAttempt: { ...first, event: attempt } },
        { kind: 'session.created', data: {} },
      ),
      RangeError,
    );
  });

  it('a session that moved on is null and untouched; the others proceed', async () => {
    const ss = await collecting(5);
    // ss[1] failed meanwhile; ss[3] is asked for at another attempt.
    await backend.transitionSession(tenant, ss[1]!.sessionId, ['nonce_collection'], 1, 'failed', {
      errorCode: 'session_failed',
      errorMessage: 'test',
    });
    const items = ss.map((s) => commitOf(s));
    items[3] = { ...items[3]!, attempt: 2 };
    const committed = await backend.commitAttempts(tenant, items);
    assert.deepEqual(
      committed.map((s) => s?.status ?? null),
      ['signing', null, 'signing', null, 'signing'],
    );
    assert.deepEqual(await commitmentsOf(ss[1]!.sessionId), []);
    assert.deepEqual(await commitmentsOf(ss[3]!.sessionId), []);
    assert.equal((await backend.getSession(tenant, ss[3]!.sessionId))?.status, 'nonce_collection');
    assert.equal((await commitmentsOf(ss[4]!.sessionId)).length, 2);

    // ss[2] is failed before round 2 ends: its completion is null, its shares never written.
    await backend.transitionSession(tenant, ss[2]!.sessionId, ['signing'], 1, 'failed', {
      errorCode: 'session_failed',
      errorMessage: 'test',
    });
    const done = await backend.completeAttempts(
      tenant,
      [ss[0]!, ss[2]!, ss[4]!].map((s) => completionOf(s)),
    );
    assert.deepEqual(
      done.map((s) => s?.status ?? null),
      ['completed', null, 'completed'],
    );
    const failed = await backend.getSession(tenant, ss[2]!.sessionId);
    assert.equal(failed?.status, 'failed');
    assert.deepEqual(failed?.partialSignatures, {});
    assert.ok(!(await auditKinds(ss[2]!.sessionId)).includes('session.completed'));

    // Moves of several kinds in one call, each conditional: ss[3] restarts, ss[1] cannot.
    const moved = await backend.transitionSessions(tenant, [
      {
        sessionId: ss[3]!.sessionId,
        from: ['nonce_collection'],
        expectAttempt: 1,
        to: 'nonce_collection',
        patch: {},
        event: { kind: 'session.attempt', data: {} },
      },
      {
        sessionId: ss[1]!.sessionId,
        from: ['nonce_collection'],
        expectAttempt: 1,
        to: 'nonce_collection',
        patch: {},
        event: { kind: 'session.attempt', data: {} },
      },
      {
        sessionId: ss[0]!.sessionId,
        from: ['signing'],
        expectAttempt: 1,
        to: 'failed',
        patch: { errorCode: 'x', errorMessage: 'x' },
      },
    ]);
    assert.equal(moved[0]?.attempt, 2, 'a new attempt: attempt + 1');
    assert.equal(moved[0]?.nonceCollectionStartedAt !== null, true);
    assert.deepEqual(
      moved.map((s) => s?.status ?? null),
      ['nonce_collection', null, null],
    );
    assert.equal((await auditKinds(ss[1]!.sessionId)).filter((k) => k === 'session.attempt').length, 1);
  });

  it('commitments already recorded for an attempt: that item is null, the others commit', async () => {
    const ss = await collecting(3);
    await t.db.transaction(
      (tx) =>
        insertCommitments(tx, ss[1]!.sessionId, 1, [
          { participant: 1, signerId: 's1', commitment: commitment() },
        ]),
      { tenantId: tenant },
    );
    const committed = await backend.commitAttempts(
      tenant,
      ss.map((s) => commitOf(s)),
    );
    assert.deepEqual(
      committed.map((s) => s?.status ?? null),
      ['signing', null, 'signing'],
    );
    assert.equal((await commitmentsOf(ss[1]!.sessionId)).length, 1, 'only what was there before');
    assert.equal((await backend.getSession(tenant, ss[1]!.sessionId))?.status, 'nonce_collection');
  });

  it('a commitment seen before, in any tenant or earlier in the batch, refuses the call with its culprits and writes nothing', async () => {
    // Stored by a session of another tenant.
    const other = await seedTenant(t.db);
    const otherBackend = new PgBackend(t.db);
    const otherKey = (await t.db.transaction((tx) => seedKeyTx(tx), { tenantId: other })).id;
    const [o] = await otherBackend.insertSessions(
      newSessions(1, otherKey).map((s) => ({ ...s, tenantId: other })),
      { kind: 'session.created', data: {} },
    );
    const [oc] = await otherBackend.transitionSessions(other, [
      { sessionId: o!.sessionId, from: ['pending'], expectAttempt: 0, to: 'nonce_collection', patch: {} },
    ]);
    const seen = commitment();
    assert.ok((await otherBackend.commitAttempts(other, [commitOf(oc!, [commitment(), seen])]))[0]);

    const ss = await collecting(4);
    const untouched = async () => {
      for (const s of ss) {
        assert.deepEqual(await commitmentsOf(s.sessionId), []);
        assert.equal((await backend.getSession(tenant, s.sessionId))?.status, 'nonce_collection');
      }
    };
    const items = ss.map((s) => commitOf(s));
    await assert.rejects(
      backend.commitAttempts(tenant, [
        items[0]!,
        items[1]!,
        commitOf(ss[2]!, [commitment(), seen]),
        items[3]!,
      ]),
      reuse([2]),
    );
    await untouched();

    // Item 3 repeats item 1's commitment of member 2, as member 1.
    const repeated = items[0]!.rows[1]!.commitment;
    await assert.rejects(
      backend.commitAttempts(tenant, [
        items[0]!,
        items[1]!,
        commitOf(ss[2]!, [repeated, commitment()]),
        items[3]!,
      ]),
      reuse([1]),
    );
    await untouched();

    // Without them, the same items commit.
    const committed = await backend.commitAttempts(tenant, items);
    assert.ok(committed.every((s) => s?.status === 'signing'));
  });

  it('the same session twice in one call moves once', async () => {
    const [a, b] = await collecting(2);
    const committed = await backend.commitAttempts(tenant, [commitOf(a!), commitOf(b!), commitOf(a!)]);
    assert.deepEqual(
      committed.map((s) => s?.status ?? null),
      ['signing', 'signing', null],
    );
    assert.equal((await commitmentsOf(a!.sessionId)).length, 2);
    const done = await backend.completeAttempts(tenant, [
      completionOf(a!),
      completionOf(a!),
      completionOf(b!),
    ]);
    assert.deepEqual(
      done.map((s) => s?.status ?? null),
      ['completed', null, 'completed'],
    );
    assert.equal((await auditKinds(a!.sessionId)).filter((k) => k === 'session.completed').length, 1);
  });

  it('insertSessions: an unknown key or an existing id refuses the batch, nothing written', async () => {
    const sessions = async () =>
      (
        await t.db.adminQuery<{ n: number }>(
          'SELECT count(*)::int AS n FROM signing_sessions WHERE tenant_id = $1',
          [tenant],
        )
      ).rows[0]!.n;
    const n0 = await sessions();
    const list = newSessions(3);
    await assert.rejects(
      backend.insertSessions(
        list.map((s, i) => (i === 1 ? { ...s, keyId: 'key_missing' } : s)),
        { kind: 'session.created', data: {} },
      ),
      (e: unknown) => isFloeError(e) && e.code === 'unknown_key',
    );
    assert.equal(await sessions(), n0);
    const [first] = await backend.insertSessions(list.slice(0, 1), { kind: 'session.created', data: {} });
    await assert.rejects(
      backend.insertSessions([list[2]!, { ...list[1]!, sessionId: first!.sessionId }], {
        kind: 'session.created',
        data: {},
      }),
      (e: unknown) => isFloeError(e) && e.code === 'conflict',
    );
    assert.equal(await sessions(), n0 + 1);
  });
});
