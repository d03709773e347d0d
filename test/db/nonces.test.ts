import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import {
  commitmentSeen,
  insertCommitments,
  listCommitments,
  markAllUsed,
  markUsed,
} from '../../src/db/queries/nonces.js';
import {
  cleanupSessions,
  getSession,
  patchSession,
  transitionSession,
} from '../../src/db/queries/sessions.js';
import { type FloeError, isFloeError } from '../../src/protocol/errors.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { commitment, hex, seedSession, seedTenant } from './fixtures.js';

const reuse = (culprits?: number[]) => (e: unknown) => {
  if (!isFloeError(e) || e.code !== 'nonce_reuse_detected') return false;
  if (culprits) assert.deepEqual((e as FloeError).extra.culprits, culprits);
  return true;
};

describe('nonce commitments', () => {
  let t: TestDb;
  let db: Db;
  let ta: string;
  let tb: string;

  before(async () => {
    t = await testDb();
    db = t.db;
    ta = await seedTenant(db);
    tb = await seedTenant(db);
  });
  after(() => t.cleanup());

  const rows = (...cs: string[]) =>
    cs.map((c, i) => ({ participant: i + 1, signerId: `s${i + 1}`, commitment: c }));

  it('records an attempt and lists it', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c1 = commitment();
    const c2 = commitment();
    const inserted = await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(c1, c2), 1234), {
      tenantId: ta,
    });
    assert.equal(inserted.length, 2);
    assert.equal(inserted[0]!.tenantId, ta);
    assert.equal(inserted[0]!.createdAt, 1234);
    assert.equal(inserted[0]!.nonceUsed, false);
    const listed = await db.transaction((tx) => listCommitments(tx, s.sessionId, 1), { tenantId: ta });
    assert.deepEqual(
      listed.map((r) => [r.participant, r.signerId, r.nonceCommitment]),
      [
        [1, 's1', c1],
        [2, 's2', c2],
      ],
    );
  });

  it('a commitment stored for session A is refused for session B of another tenant; B is untouched', async () => {
    const a = await seedSession(db, ta, 'nonce_collection');
    const b = await seedSession(db, tb, 'nonce_collection');
    const c = commitment();
    await db.transaction((tx) => insertCommitments(tx, a.sessionId, 1, rows(c)), { tenantId: ta });

    const fresh = commitment();
    await db.transaction(
      async (tx) => {
        // participant 2 reuses A's commitment
        await assert.rejects(insertCommitments(tx, b.sessionId, 1, rows(fresh, c)), reuse([2]));
        // the transaction is still usable (savepoint), and nothing of the batch was stored
        assert.deepEqual(await listCommitments(tx, b.sessionId), []);
        assert.deepEqual(await getSession(tx, b.sessionId), b);
      },
      { tenantId: tb },
    );
    // A top-level refusal rolls everything back too; B's session row is unchanged.
    await assert.rejects(
      db.transaction(
        async (tx) => {
          await patchSession(tx, b.sessionId, ['nonce_collection'], { culprits: [3] });
          await insertCommitments(tx, b.sessionId, 1, rows(c));
        },
        { tenantId: tb },
      ),
      reuse(),
    );
    assert.deepEqual(await db.transaction((tx) => getSession(tx, b.sessionId), { tenantId: tb }), b);
    const n = await db.adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM nonce_commitments WHERE session_id = $1',
      [b.sessionId],
    );
    assert.equal(n.rows[0]!.n, 0);
    // And in the same tenant, for another session, too.
    const a2 = await seedSession(db, ta, 'nonce_collection');
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, a2.sessionId, 1, rows(c)), { tenantId: ta }),
      reuse([1]),
    );
    // B can still record fresh ones.
    await db.transaction((tx) => insertCommitments(tx, b.sessionId, 1, rows(fresh)), { tenantId: tb });
  });

  it('a commitment stays refused after its session was cleaned up (used points are kept for good)', async () => {
    const a = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    await db.transaction((tx) => insertCommitments(tx, a.sessionId, 1, rows(c)), { tenantId: ta });
    await db.transaction(
      (tx) =>
        transitionSession(tx, a.sessionId, ['nonce_collection'], 'failed', {
          errorCode: 'session_failed',
          errorMessage: 'test',
        }),
      { tenantId: ta },
    );
    // Long ago: the retention cleanup deletes the session and, by cascade, its commitments.
    await db.adminQuery('UPDATE signing_sessions SET updated_at = 0 WHERE session_id = $1', [a.sessionId]);
    assert.ok((await db.transaction((tx) => cleanupSessions(tx, 90))) >= 1);
    const left = await db.adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM nonce_commitments WHERE session_id = $1',
      [a.sessionId],
    );
    assert.equal(left.rows[0]!.n, 0, 'the commitment rows are gone');
    // The same commitment, or one of its points, in a new session of any tenant: still refused.
    const b = await seedSession(db, tb, 'nonce_collection');
    assert.equal(await db.transaction((tx) => commitmentSeen(tx, c), { tenantId: tb }), true);
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, b.sessionId, 1, rows(c)), { tenantId: tb }),
      reuse([1]),
    );
    const onlyBinding = `02${hex(32)}${c.slice(66)}`;
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, b.sessionId, 1, rows(onlyBinding)), { tenantId: tb }),
      reuse([1]),
    );
    // The service role cannot read or change the table of used points.
    await assert.rejects(
      db.transaction((tx) => tx.query('DELETE FROM used_nonce_points')),
      /permission denied/,
    );
  });

  it('a reused hiding or binding point alone is refused as well', async () => {
    const a = await seedSession(db, ta, 'nonce_collection');
    const b = await seedSession(db, tb, 'nonce_collection');
    const hiding = `02${hex(32)}`;
    const binding = `03${hex(32)}`;
    await db.transaction((tx) => insertCommitments(tx, a.sessionId, 1, rows(hiding + binding)), {
      tenantId: ta,
    });
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, b.sessionId, 1, rows(`${hiding}02${hex(32)}`)), {
        tenantId: tb,
      }),
      reuse([1]),
    );
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, b.sessionId, 1, rows(`03${hex(32)}${binding}`)), {
        tenantId: tb,
      }),
      reuse([1]),
    );
    assert.equal(await db.transaction((tx) => commitmentSeen(tx, hiding + binding), { tenantId: tb }), true);
    assert.equal(await db.transaction((tx) => commitmentSeen(tx, commitment())), false);
  });

  it('refuses a point repeated within one attempt, naming both participants', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(commitment(), c, c)), {
        tenantId: ta,
      }),
      reuse([2, 3]),
    );
    const p = `02${hex(32)}`;
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(p + p)), { tenantId: ta }),
      reuse([1]),
    );
  });

  it('one row per participant per attempt, only for the current attempt in nonce_collection', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(commitment())), { tenantId: ta });
    const conflict = (e: unknown) => isFloeError(e) && e.code === 'session_conflict';
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(commitment())), { tenantId: ta }),
      conflict,
    );
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 2, rows(commitment())), { tenantId: ta }),
      conflict,
    );
    // another tenant cannot see the session at all
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(commitment())), { tenantId: tb }),
      conflict,
    );
    // after a retry, attempt 2 takes new commitments from the same participants
    await db.transaction(
      async (tx) => {
        await transitionSession(tx, s.sessionId, ['nonce_collection'], 'nonce_collection');
        await insertCommitments(tx, s.sessionId, 2, rows(commitment()));
      },
      { tenantId: ta },
    );
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows('zz')), { tenantId: ta }),
      (e) => isFloeError(e) && e.code === 'invalid_encoding',
    );
  });

  it('mark_nonce_as_used answers true once, then false', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(c)), { tenantId: ta });
    // another tenant cannot mark it (RLS)
    assert.equal(await db.transaction((tx) => markUsed(tx, c), { tenantId: tb }), false);
    assert.equal(await db.transaction((tx) => markUsed(tx, c), { tenantId: ta }), true);
    assert.equal(await db.transaction((tx) => markUsed(tx, c), { tenantId: ta }), false);
    const [row] = await db.transaction((tx) => listCommitments(tx, s.sessionId), { tenantId: ta });
    assert.equal(row!.nonceUsed, true);
    assert.ok(row!.usedAt);
    assert.equal(await db.transaction((tx) => markUsed(tx, commitment()), { tenantId: ta }), false);
  });

  it('concurrent mark_nonce_as_used: exactly one caller wins', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(c)), { tenantId: ta });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => db.transaction((tx) => markUsed(tx, c), { tenantId: ta })),
    );
    assert.equal(results.filter(Boolean).length, 1);
  });

  it('markAllUsed is true only if every commitment was unused', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const [c1, c2, c3] = [commitment(), commitment(), commitment()];
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(c1, c2, c3)), { tenantId: ta });
    assert.equal(await db.transaction((tx) => markAllUsed(tx, [c1, c2]), { tenantId: ta }), true);
    assert.equal(await db.transaction((tx) => markAllUsed(tx, [c2, c3]), { tenantId: ta }), false);
    assert.equal(
      await db.transaction((tx) => markAllUsed(tx, [c3]), { tenantId: ta }),
      false,
      'c3 was marked',
    );
  });

  it('valid_nonce_usage and the guard keep the flag honest', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows(c)), { tenantId: ta });
    await assert.rejects(
      db.transaction(
        (tx) => tx.query('UPDATE nonce_commitments SET nonce_used = true WHERE nonce_commitment = $1', [c]),
        {
          tenantId: ta,
        },
      ),
      (e) => (e as { constraint?: string }).constraint === 'valid_nonce_usage',
    );
    await db.transaction((tx) => markUsed(tx, c), { tenantId: ta });
    await assert.rejects(
      db.transaction(
        (tx) =>
          tx.query(
            'UPDATE nonce_commitments SET nonce_used = false, used_at = NULL WHERE nonce_commitment = $1',
            [c],
          ),
        { tenantId: ta },
      ),
      /only an unused commitment may change/,
    );
    await assert.rejects(
      db.transaction(
        (tx) =>
          tx.query('UPDATE nonce_commitments SET nonce_commitment = $2 WHERE nonce_commitment = $1', [
            c,
            commitment(),
          ]),
        { tenantId: ta },
      ),
      /only an unused commitment may change/,
    );
  });
});
