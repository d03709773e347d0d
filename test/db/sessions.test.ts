import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { insertCommitments } from '../../src/db/queries/nonces.js';
import {
  claimStaleSessions,
  cleanupSessions,
  countSessionsByStatus,
  expireSessions,
  getSession,
  insertSession,
  listSessions,
  listStaleSessions,
  patchSession,
  transitionSession,
} from '../../src/db/queries/sessions.js';
import { canTransition, SESSION_STATUSES, type SessionStatus } from '../../src/domain/session-state.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { type TestDb, testDb } from '../helpers/db.js';
import {
  barrier,
  commitment,
  DAY,
  driveTo,
  HOUR,
  hex,
  intentFields,
  intentValues,
  NOW,
  patchFor,
  seedKeyTx,
  seedSession,
  seedSessionTx,
  seedTenant,
  signature,
} from './fixtures.js';

const code = (e: unknown) => (e as { code?: string }).code;

describe('signing sessions', () => {
  let t: TestDb;
  let db: Db;
  let tenant: string;

  before(async () => {
    t = await testDb();
    db = t.db;
    tenant = await seedTenant(db);
  });
  after(() => t.cleanup());

  it('walks the happy path, stamping timestamps and starting attempt 1', async () => {
    const s0 = await seedSession(db, tenant);
    assert.equal(s0.status, 'pending');
    assert.equal(s0.attempt, 0);
    await db.transaction(
      async (tx) => {
        const s1 = await transitionSession(
          tx,
          s0.sessionId,
          ['pending'],
          'nonce_collection',
          {},
          { now: NOW + 1 },
        );
        assert.equal(s1?.status, 'nonce_collection');
        assert.equal(s1?.attempt, 1);
        assert.equal(s1?.nonceCollectionStartedAt, NOW + 1);
        assert.equal(s1?.updatedAt, NOW + 1);
        const s2 = await transitionSession(tx, s0.sessionId, ['nonce_collection'], 'signing', {
          nonceCommitments: { '1': { '1': 'c1', '2': 'c2' } },
        });
        assert.equal(s2?.status, 'signing');
        assert.deepEqual(s2?.nonceCommitments, { '1': { '1': 'c1', '2': 'c2' } });
        assert.ok(s2?.signingStartedAt);
        const s3 = await transitionSession(tx, s0.sessionId, ['signing'], 'aggregating', {
          partialSignatures: { '1': { '1': 'z1' } },
        });
        assert.equal(s3?.status, 'aggregating');
        const sig = signature();
        const s4 = await transitionSession(tx, s0.sessionId, ['aggregating'], 'completed', {
          finalSignature: sig,
        });
        assert.equal(s4?.status, 'completed');
        assert.equal(s4?.finalSignature, sig);
        assert.ok(s4?.completedAt);
        assert.equal(s4?.attempt, 1);
      },
      { tenantId: tenant },
    );
  });

  it('allows exactly the moves of the state table, and the database refuses the others', async () => {
    for (const from of SESSION_STATUSES) {
      for (const to of SESSION_STATUSES) {
        if (from === to) continue;
        const s = await seedSession(db, tenant, from);
        const legal = canTransition(from, to);
        const moved = await db.transaction(
          (tx) => transitionSession(tx, s.sessionId, [from], to, patchFor(to)),
          {
            tenantId: tenant,
          },
        );
        const now = await db.transaction((tx) => getSession(tx, s.sessionId), { tenantId: tenant });
        if (legal) {
          assert.equal(moved?.status, to, `${from} -> ${to} is legal`);
          assert.equal(now?.status, to);
        } else {
          assert.equal(moved, null, `${from} -> ${to} must be refused`);
          assert.equal(now?.status, from, `${from} -> ${to} leaves the status unchanged`);
          assert.deepEqual(now, s);
          // Whoever writes the UPDATE, the trigger refuses an illegal move.
          await assert.rejects(
            db.transaction(
              (tx) =>
                tx.query(
                  `UPDATE signing_sessions SET status = $2, final_signature = coalesce(final_signature, $3),
                     completed_at = $4, failed_at = $4, error_message = 'x' WHERE session_id = $1`,
                  [s.sessionId, to, signature(), NOW],
                ),
              { tenantId: tenant },
            ),
            (e) => code(e) === '23514' && /illegal status transition/.test((e as Error).message),
            `raw UPDATE ${from} -> ${to}`,
          );
        }
      }
    }
  });

  it('refuses the named illegal moves: completed→signing, pending→aggregating, failed→anything', async () => {
    const done = await seedSession(db, tenant, 'completed');
    const pending = await seedSession(db, tenant, 'pending');
    const failed = await seedSession(db, tenant, 'failed');
    await db.transaction(
      async (tx) => {
        assert.equal(await transitionSession(tx, done.sessionId, ['completed'], 'signing'), null);
        assert.equal(await transitionSession(tx, pending.sessionId, ['pending'], 'aggregating'), null);
        for (const to of SESSION_STATUSES) {
          if (to === 'failed') continue;
          assert.equal(await transitionSession(tx, failed.sessionId, ['failed'], to, patchFor(to)), null);
        }
        // Listing every status as a source does not help either.
        assert.equal(await transitionSession(tx, done.sessionId, SESSION_STATUSES, 'signing'), null);
        assert.equal((await getSession(tx, done.sessionId))?.status, 'completed');
        assert.equal((await getSession(tx, failed.sessionId))?.status, 'failed');
      },
      { tenantId: tenant },
    );
  });

  it('a retry re-enters nonce_collection with the next attempt, from nonce_collection, signing or aggregating', async () => {
    for (const from of ['nonce_collection', 'signing', 'aggregating'] as SessionStatus[]) {
      const s = await seedSession(db, tenant, from);
      assert.equal(s.attempt, 1);
      const r = await db.transaction(
        (tx) =>
          transitionSession(
            tx,
            s.sessionId,
            [from],
            'nonce_collection',
            { participants: [2, 3] },
            { now: NOW + 5 },
          ),
        { tenantId: tenant },
      );
      assert.equal(r?.status, 'nonce_collection');
      assert.equal(r?.attempt, 2);
      assert.deepEqual(r?.participants, [2, 3]);
      assert.equal(r?.nonceCollectionStartedAt, NOW + 5);
    }
    // The database insists that entering nonce_collection is a new attempt, and that only it is.
    const s = await seedSession(db, tenant, 'signing');
    await assert.rejects(
      db.transaction(
        (tx) =>
          tx.query(`UPDATE signing_sessions SET status = 'nonce_collection' WHERE session_id = $1`, [
            s.sessionId,
          ]),
        { tenantId: tenant },
      ),
      /new attempt/,
    );
    await assert.rejects(
      db.transaction(
        (tx) => tx.query('UPDATE signing_sessions SET attempt = 5 WHERE session_id = $1', [s.sessionId]),
        {
          tenantId: tenant,
        },
      ),
      /not a new attempt/,
    );
  });

  it('expectAttempt fences a writer working on an older attempt', async () => {
    const s = await seedSession(db, tenant, 'signing');
    await db.transaction(
      async (tx) => {
        assert.equal(
          await transitionSession(tx, s.sessionId, ['signing'], 'aggregating', {}, { expectAttempt: 2 }),
          null,
        );
        const ok = await transitionSession(
          tx,
          s.sessionId,
          ['signing'],
          'aggregating',
          {},
          { expectAttempt: 1 },
        );
        assert.equal(ok?.status, 'aggregating');
      },
      { tenantId: tenant },
    );
  });

  it('same-status moves patch without touching the stamps; completed sessions accept final_event_id only', async () => {
    const s = await seedSession(db, tenant, 'aggregating');
    await db.transaction(
      async (tx) => {
        const p = await transitionSession(tx, s.sessionId, ['aggregating'], 'aggregating', { culprits: [3] });
        assert.deepEqual(p?.culprits, [3]);
        assert.equal(p?.attempt, 1);
        const done = await transitionSession(
          tx,
          s.sessionId,
          ['aggregating'],
          'completed',
          patchFor('completed'),
        );
        const withEvent = await patchSession(tx, s.sessionId, ['completed'], { finalEventId: hex(32) });
        assert.equal(withEvent?.completedAt, done?.completedAt);
        assert.ok(withEvent?.finalEventId);
        await assert.rejects(
          patchSession(tx, s.sessionId, ['completed'], { finalSignature: signature() }),
          /final signature is immutable/,
        );
      },
      { tenantId: tenant },
    );
    // The bitcoin guard (migration 015; called only when the column changes since 027).
    const done = await seedSession(db, tenant, 'completed');
    await assert.rejects(
      db.adminQuery(`UPDATE signing_sessions SET bitcoin = '{"inputs":[]}' WHERE session_id = $1`, [
        done.sessionId,
      ]),
      /bitcoin result of a terminal session is immutable/,
    );
  });

  it('of two concurrent transitions from the same status exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const s = await seedSession(db, tenant, 'nonce_collection');
      // On Postgres both transactions first read the session, then race their UPDATEs; on
      // PGlite transactions are serialized, and the second must still lose.
      const arrive = db.kind === 'postgres' ? barrier(2) : async () => {};
      const attemptMove = (to: SessionStatus) =>
        db.transaction(
          async (tx) => {
            const seen = await getSession(tx, s.sessionId);
            assert.equal(seen?.status, db.kind === 'postgres' ? 'nonce_collection' : seen?.status);
            await arrive();
            return transitionSession(tx, s.sessionId, ['nonce_collection'], to, patchFor(to));
          },
          { tenantId: tenant },
        );
      const results = await Promise.all([
        attemptMove('signing'),
        attemptMove(round % 2 ? 'failed' : 'signing'),
      ]);
      const winners = results.filter((r) => r !== null);
      assert.equal(winners.length, 1, `round ${round}: exactly one winner`);
      const final = await db.transaction((tx) => getSession(tx, s.sessionId), { tenantId: tenant });
      assert.equal(final?.status, winners[0]!.status);
    }
  });

  it('valid_completion and valid_failure refuse incomplete rows', async () => {
    const s = await seedSession(db, tenant, 'aggregating');
    await assert.rejects(
      db.transaction((tx) => transitionSession(tx, s.sessionId, ['aggregating'], 'completed'), {
        tenantId: tenant,
      }),
      (e) => (e as { constraint?: string }).constraint === 'valid_completion',
    );
    await assert.rejects(
      db.transaction(
        (tx) =>
          transitionSession(tx, s.sessionId, ['aggregating'], 'failed', { errorCode: 'session_failed' }),
        { tenantId: tenant },
      ),
      (e) => (e as { constraint?: string }).constraint === 'valid_failure',
    );
    // Direct INSERTs too.
    await db.transaction(
      async (tx) => {
        const key = await seedKeyTx(tx);
        const insert = (status: string, finalSignature: string | null, errorMessage: string | null) =>
          tx.query(
            `INSERT INTO signing_sessions (session_id, key_id, message_hash, intent_type, intent, intent_hash,
               threshold, status, final_signature, error_message, created_at, updated_at, expires_at)
             VALUES ($1, $2, $3, 'message', $4::jsonb, $5, 2, $6, $7, $8, 1, 1, 2)`,
            [`ses_${hex(12)}`, key.id, ...intentValues(), status, finalSignature, errorMessage],
          );
        const refused = (constraint: string) => (e: unknown) =>
          (e as { constraint?: string }).constraint === constraint;
        await tx.query('SAVEPOINT a');
        // completed_at / failed_at missing
        await assert.rejects(insert('completed', signature(), null), refused('valid_completion'));
        await tx.query('ROLLBACK TO SAVEPOINT a');
        await assert.rejects(insert('completed', null, null), refused('valid_completion'));
        await tx.query('ROLLBACK TO SAVEPOINT a');
        await assert.rejects(insert('failed', null, 'boom'), refused('valid_failure'));
        await tx.query('ROLLBACK TO SAVEPOINT a');
        await assert.rejects(insert('failed', null, null), refused('valid_failure'));
        await tx.query('ROLLBACK TO SAVEPOINT a');
      },
      { tenantId: tenant },
    );
    assert.equal(
      (await db.transaction((tx) => getSession(tx, s.sessionId), { tenantId: tenant }))?.status,
      'aggregating',
    );
  });

  it('idempotency keys return the existing session, or a conflict for another request', async () => {
    await db.transaction(
      async (tx) => {
        const key = await seedKeyTx(tx);
        const base = {
          keyId: key.id,
          ...intentFields(),
          threshold: 2,
          createdAt: NOW,
          expiresAt: NOW + DAY,
          idempotencyKey: 'idem-1',
          idempotencyFingerprint: 'f1',
        };
        const a = await insertSession(tx, { ...base, sessionId: `ses_${hex(12)}` });
        assert.equal(a.created, true);
        const b = await insertSession(tx, { ...base, sessionId: `ses_${hex(12)}` });
        assert.equal(b.created, false);
        assert.equal(b.session.sessionId, a.session.sessionId);
        await assert.rejects(
          insertSession(tx, { ...base, sessionId: `ses_${hex(12)}`, idempotencyFingerprint: 'f2' }),
          (e) => isFloeError(e) && e.code === 'idempotency_conflict',
        );
        await assert.rejects(
          insertSession(tx, {
            ...base,
            sessionId: `ses_${hex(12)}`,
            keyId: 'no-such-key',
            idempotencyKey: null,
          }),
          (e) => isFloeError(e) && e.code === 'unknown_key',
        );
      },
      { tenantId: tenant },
    );
    // The same idempotency key in another tenant is another session.
    const other = await seedTenant(db);
    const c = await seedSession(db, other, 'pending', {
      idempotencyKey: 'idem-1',
      idempotencyFingerprint: 'f9',
    });
    assert.equal(c.tenantId, other);
  });

  it('lists newest first with a keyset cursor, ties broken by session id', async () => {
    const tid = await seedTenant(db);
    const made: string[] = [];
    await db.transaction(
      async (tx) => {
        const key = await seedKeyTx(tx);
        for (let i = 0; i < 7; i++) {
          const s = await seedSessionTx(tx, { keyId: key.id, createdAt: NOW + Math.floor(i / 2) * 1000 });
          made.push(s.sessionId);
        }
        await driveTo(tx, (await getSession(tx, made[0]!))!, 'failed');
      },
      { tenantId: tid },
    );
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { sessionId: string; createdAt: number }[]; nextCursor: string | null } =
        await db.transaction((tx) => listSessions(tx, { limit: 3, cursor }), { tenantId: tid });
      pages.push(page.items.map((x) => x.sessionId));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    const all = await db.adminQuery<{ session_id: string }>(
      'SELECT session_id FROM signing_sessions WHERE tenant_id = $1 ORDER BY created_at DESC, session_id DESC',
      [tid],
    );
    assert.deepEqual(
      pages.flat(),
      all.rows.map((r) => r.session_id),
    );
    const failed = await db.transaction((tx) => listSessions(tx, { status: 'failed' }), { tenantId: tid });
    assert.deepEqual(
      failed.items.map((x) => x.sessionId),
      [made[0]],
    );
    await assert.rejects(
      db.transaction((tx) => listSessions(tx, { cursor: 'garbage' }), { tenantId: tid }),
      (e) => isFloeError(e) && e.code === 'invalid_request',
    );
  });
});

describe('session expiry and cleanup jobs', () => {
  let t: TestDb;
  let db: Db;

  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  it('expire_old_signing_sessions expires only past-due live sessions, in every tenant', async () => {
    const a = await seedTenant(db);
    const b = await seedTenant(db);
    const past = { expiresAt: NOW - HOUR };
    const due = [
      await seedSession(db, a, 'pending', past),
      await seedSession(db, a, 'signing', past),
      await seedSession(db, b, 'aggregating', past),
      await seedSession(db, b, 'nonce_collection', past),
    ];
    const keep = [
      await seedSession(db, a, 'pending', { expiresAt: Date.now() + HOUR }),
      await seedSession(db, a, 'completed', past),
      await seedSession(db, b, 'failed', past),
    ];
    // Run as the service with no tenant: the function is the narrow cross-tenant path.
    assert.equal(await db.transaction((tx) => expireSessions(tx)), due.length);
    assert.equal(await db.transaction((tx) => expireSessions(tx)), 0);
    for (const s of due) {
      const r = await db.transaction((tx) => getSession(tx, s.sessionId), { tenantId: s.tenantId });
      assert.equal(r?.status, 'expired');
      assert.equal(r?.errorCode, 'session_expired');
      assert.ok(r?.errorMessage);
      assert.ok((r?.updatedAt ?? 0) >= s.updatedAt);
    }
    for (const s of keep) {
      const r = await db.transaction((tx) => getSession(tx, s.sessionId), { tenantId: s.tenantId });
      assert.deepEqual(r, s);
    }
  });

  it('cleanup_old_signing_sessions finds old terminal sessions through their index, not by reading them all', async () => {
    // It runs at every tick of the jobs over a table that keeps 90 days of sessions (migration
    // 023): recent terminal sessions must not be read at all, only those past the retention.
    const a = await seedTenant(db);
    for (let i = 0; i < 3; i++) await seedSession(db, a, 'completed');
    const stats = await db.adminSession(async (s) => {
      const read = async () =>
        (
          await s.query<{ scans: number | string; read: number | string }>(
            `SELECT idx_scan AS scans, idx_tup_read AS read FROM pg_stat_user_indexes
              WHERE indexrelname = 'signing_sessions_terminal_updated_idx'`,
          )
        ).rows.map((r) => ({ scans: Number(r.scans), read: Number(r.read) }));
      await s.query('SELECT pg_stat_force_next_flush()');
      const before = await read();
      const deleted = await s.query<{ n: number }>('SELECT cleanup_old_signing_sessions(90) AS n');
      await s.query('SELECT pg_stat_force_next_flush()');
      return { before, after: await read(), deleted: deleted.rows[0]!.n };
    });
    assert.equal(stats.deleted, 0);
    assert.equal(stats.before.length, 1, 'the index exists');
    assert.equal(stats.after[0]!.scans, stats.before[0]!.scans + 1, 'the cleanup went through it');
    assert.equal(stats.after[0]!.read, stats.before[0]!.read, 'and read no entry of a recent session');
  });

  it('cleanup_old_signing_sessions deletes only old terminal sessions, and their commitments', async () => {
    const a = await seedTenant(db);
    const old = NOW - 100 * DAY;
    const REST: Record<string, SessionStatus[]> = {
      nonce_collection: [],
      completed: ['signing', 'aggregating', 'completed'],
      failed: ['failed'],
      expired: ['expired'],
    };
    /** A session that collected commitments (attempt 1), then went on to `status`, last updated at `updatedAt`. */
    const mk = async (status: SessionStatus, updatedAt: number, commitments = 1) => {
      const s0 = await seedSession(db, a, 'nonce_collection');
      await db.transaction(
        async (tx) => {
          await insertCommitments(
            tx,
            s0.sessionId,
            1,
            Array.from({ length: commitments }, (_, i) => ({
              participant: i + 1,
              signerId: `s${i + 1}`,
              commitment: commitment(),
            })),
          );
          let s = s0;
          for (const to of REST[status]!)
            s = (await transitionSession(tx, s.sessionId, [s.status], to, patchFor(to)))!;
          assert.equal(s.status, status);
        },
        { tenantId: a },
      );
      await db.adminQuery('UPDATE signing_sessions SET updated_at = $2 WHERE session_id = $1', [
        s0.sessionId,
        updatedAt,
      ]);
      return s0;
    };
    const oldDone = await mk('completed', old, 2);
    const oldFailed = await mk('failed', old);
    const oldExpired = await mk('expired', old);
    const recentDone = await mk('completed', NOW - DAY);
    const oldLive = await mk('nonce_collection', old);

    const count = async (sid: string) =>
      (
        await db.adminQuery<{ n: number }>(
          'SELECT count(*)::int AS n FROM nonce_commitments WHERE session_id = $1',
          [sid],
        )
      ).rows[0]!.n;
    assert.equal(await count(oldDone.sessionId), 2);

    assert.equal(await db.transaction((tx) => cleanupSessions(tx, 90)), 3);
    const left = await db.adminQuery<{ session_id: string }>(
      'SELECT session_id FROM signing_sessions WHERE tenant_id = $1',
      [a],
    );
    const ids = new Set(left.rows.map((r) => r.session_id));
    for (const s of [oldDone, oldFailed, oldExpired])
      assert.ok(!ids.has(s.sessionId), 'old terminal deleted');
    for (const s of [recentDone, oldLive]) assert.ok(ids.has(s.sessionId), 'recent or live kept');
    assert.equal(await count(oldDone.sessionId), 0, 'commitments cascade');
    assert.equal(await count(oldLive.sessionId), 1, 'a live session keeps its commitments');
    await assert.rejects(
      db.transaction((tx) => cleanupSessions(tx, -1)),
      /retention_days/,
    );
  });

  it('lists stale live sessions and counts by status across tenants', async () => {
    const a = await seedTenant(db);
    const s = await seedSession(db, a, 'signing');
    const stale = await db.transaction((tx) => listStaleSessions(tx, 60_000, 1000, Date.now() + HOUR));
    assert.ok(stale.some((x) => x.sessionId === s.sessionId && x.tenantId === a));
    const fresh = await db.transaction((tx) => listStaleSessions(tx, 60_000, 1000, s.updatedAt));
    assert.ok(!fresh.some((x) => x.sessionId === s.sessionId));
    const counts = await db.transaction((tx) => countSessionsByStatus(tx));
    assert.ok((counts.signing ?? 0) >= 1);
    assert.deepEqual(Object.keys(counts).sort(), [...SESSION_STATUSES].sort(), 'every status, 0 for none');
    // The live ones alone (through their index), the same figures.
    const live = await db.transaction((tx) => countSessionsByStatus(tx, { live: true }));
    const liveStatuses = SESSION_STATUSES.filter((x) => !['completed', 'failed', 'expired'].includes(x));
    assert.deepEqual(Object.keys(live).sort(), [...liveStatuses].sort());
    for (const x of liveStatuses) assert.equal(live[x], counts[x], x);
    const done = await seedSession(db, a, 'completed');
    const after = await db.transaction((tx) => countSessionsByStatus(tx, { live: true }));
    assert.deepEqual(after, live, 'a completed session is not counted among the live ones');
    assert.equal(
      (await db.transaction((tx) => countSessionsByStatus(tx))).completed,
      counts.completed! + 1,
      done.sessionId,
    );
  });

  it('a stale session is claimed by one coordinator, and not again while its lease runs', async () => {
    const a = await seedTenant(db);
    const mine = await Promise.all([1, 2, 3, 4].map(() => seedSession(db, a, 'nonce_collection')));
    const ids = new Set(mine.map((s) => s.sessionId));
    const later = Date.now() + HOUR;
    const claim = (owner: string, now: number) =>
      db.transaction((tx) =>
        claimStaleSessions(tx, { owner, staleMs: 60_000, leaseMs: 30_000, limit: 1000, now }),
      );
    // Two coordinators claim at the same moment: every session goes to exactly one of them.
    const [x, y] = await Promise.all([claim('crd_x', later), claim('crd_y', later)]);
    const got = [...x, ...y].filter((c) => ids.has(c.sessionId));
    assert.equal(got.length, 4, 'all claimed');
    assert.equal(new Set(got.map((c) => c.sessionId)).size, 4, 'none twice');
    // While the lease runs nobody claims them again; after it ran out (and still nobody moved
    // them) another coordinator does.
    assert.ok(!(await claim('crd_z', later + 29_000)).some((c) => ids.has(c.sessionId)));
    const z = (await claim('crd_z', later + 31_000)).filter((c) => ids.has(c.sessionId));
    assert.equal(z.length, 4);
    const owners = await db.adminQuery<{ lease_owner: string }>(
      'SELECT lease_owner FROM signing_sessions WHERE session_id = ANY($1::text[])',
      [[...ids]],
    );
    assert.ok(owners.rows.every((r) => r.lease_owner === 'crd_z'));
    // A session its owner keeps moving is not stale, whatever its lease says.
    assert.ok(!(await claim('crd_w', mine[0]!.updatedAt + 1000)).some((c) => ids.has(c.sessionId)));
  });

  it('the session id must look unguessable', async () => {
    const a = await seedTenant(db);
    await assert.rejects(
      db.transaction(
        async (tx) => {
          const key = await seedKeyTx(tx);
          await insertSession(tx, {
            sessionId: 'short',
            keyId: key.id,
            ...intentFields(),
            threshold: 2,
            createdAt: NOW,
            expiresAt: NOW + DAY,
          });
        },
        { tenantId: a },
      ),
      (e) => code(e) === '23514',
    );
  });
});
