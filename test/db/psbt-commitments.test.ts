/**
 * Migration 015: a multi-digest (PSBT) attempt records one commitment per member and input, and
 * every one of them is a commitment like any other — unique across sessions, tenants and inputs,
 * each point kept for good (010) — so no nonce point is ever accepted twice, on any input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { commitmentSeen, insertCommitments, listCommitments } from '../../src/db/queries/nonces.js';
import { type FloeError, isFloeError } from '../../src/protocol/errors.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { commitment, hex, seedSession, seedTenant } from './fixtures.js';

const refused = (code: string, culprits?: number[]) => (e: unknown) => {
  if (!isFloeError(e) || e.code !== code) return false;
  if (culprits) assert.deepEqual((e as FloeError).extra.culprits, culprits);
  return true;
};

describe('nonce commitments of multi-digest attempts (migration 015)', () => {
  let t: TestDb;
  let db: Db;
  let ta: string;

  before(async () => {
    t = await testDb();
    db = t.db;
    ta = await seedTenant(db);
  });
  after(() => t.cleanup());

  /** Member p's commitments for inputs `inputs`. */
  const rowsOf = (p: number, inputs: number[], cs = inputs.map(() => commitment())) =>
    inputs.map((input, i) => ({ participant: p, signerId: `s${p}`, commitment: cs[i]!, inputIndex: input }));

  it('records one row per member and input, and lists them in order', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const rows = [...rowsOf(1, [0, 2, 5]), ...rowsOf(2, [0, 2, 5])];
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rows), { tenantId: ta });
    const listed = await db.transaction((tx) => listCommitments(tx, s.sessionId, 1), { tenantId: ta });
    assert.deepEqual(
      listed.map((r) => [r.participant, r.inputIndex]),
      [
        [1, 0],
        [1, 2],
        [1, 5],
        [2, 0],
        [2, 2],
        [2, 5],
      ],
    );
    // Every point of every input is kept for good.
    for (const r of rows)
      assert.equal(await db.transaction((tx) => commitmentSeen(tx, r.commitment), { tenantId: ta }), true);
    const pts = await db.adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM used_nonce_points');
    assert.ok(pts.rows[0]!.n >= 12);
  });

  it("one member's point on two inputs, or a point of another session's input, is refused; nothing is written", async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    const c = commitment();
    // The same hiding point on inputs 0 and 1 of member 1.
    const twice = rowsOf(1, [0, 1], [c, `${c.slice(0, 66)}03${hex(32)}`]);
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, [...twice, ...rowsOf(2, [0, 1])]), {
        tenantId: ta,
      }),
      refused('nonce_reuse_detected', [1]),
    );
    // A point recorded for input 3 of another session, reused for input 0 here.
    const other = await seedSession(db, ta, 'nonce_collection');
    const old = commitment();
    await db.transaction((tx) => insertCommitments(tx, other.sessionId, 1, rowsOf(1, [3], [old])), {
      tenantId: ta,
    });
    await assert.rejects(
      db.transaction(
        (tx) =>
          insertCommitments(tx, s.sessionId, 1, [
            ...rowsOf(1, [0]),
            ...rowsOf(2, [0], [`02${hex(32)}${old.slice(66)}`]),
          ]),
        { tenantId: ta },
      ),
      refused('nonce_reuse_detected', [2]),
    );
    const n = await db.adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM nonce_commitments WHERE session_id = $1',
      [s.sessionId],
    );
    assert.equal(n.rows[0]!.n, 0);
  });

  it('a member records an input of an attempt once; the input index is immutable', async () => {
    const s = await seedSession(db, ta, 'nonce_collection');
    await db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rowsOf(1, [0, 1])), { tenantId: ta });
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rowsOf(1, [1])), { tenantId: ta }),
      refused('session_conflict'),
    );
    await assert.rejects(
      db.transaction((tx) => insertCommitments(tx, s.sessionId, 1, rowsOf(2, [70_000])), { tenantId: ta }),
      refused('invalid_encoding'),
    );
    await assert.rejects(
      db.adminQuery('UPDATE nonce_commitments SET input_index = 9 WHERE session_id = $1', [s.sessionId]),
      /only an unused commitment may change/,
    );
  });
});
