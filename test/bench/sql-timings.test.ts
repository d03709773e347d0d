/**
 * bench/sql.ts's SqlTimings: what `npm run bench:sql` reports is what the database handle ran.
 * Every transaction is counted once (a refused one too, and the advisory-lock kind the jobs
 * use), every statement under its text with the whitespace folded, the results pass through
 * unchanged, and a transaction's time covers its statements'. PGlite by default; the Postgres
 * server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SqlTimings } from '../../bench/sql.js';
import type { Db } from '../../src/db/connection.js';
import { type TestDb, testDb } from '../helpers/db.js';

describe('bench:sql timings of a database handle', () => {
  let t: TestDb;
  let db: Db;
  const timings = new SqlTimings();
  before(async () => {
    t = await testDb();
    db = t.db;
    timings.wrap(db);
  });
  after(() => t.cleanup());

  it('counts each transaction and statement, keyed by text, and passes the results through', async () => {
    timings.reset();
    const sum = await db.transaction(async (tx) => {
      const a = await tx.query<{ n: number }>('SELECT 1 AS n');
      const b = await tx.query<{ n: number }>('SELECT   $1::int\n  AS n', [41]);
      const c = await tx.query<{ n: number }>('SELECT $1::int AS n', [1]);
      return a.rows[0]!.n + b.rows[0]!.n + c.rows[0]!.n;
    });
    assert.equal(sum, 43);
    assert.deepEqual((await db.query<{ n: number }>('SELECT $1::int AS n', [7])).rows, [{ n: 7 }]);
    // A refused transaction is counted, with the statement that ran before the refusal.
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('SELECT 1 AS n');
        throw new Error('no');
      }),
      /no/,
    );
    const locked = await db.withAdvisoryLock(0x5171, (tx) => tx.query('SELECT 2 AS n'));
    assert.deepEqual(locked?.rows, [{ n: 2 }]);

    assert.equal(timings.transactions.calls, 4);
    const calls = Object.fromEntries([...timings.statements].map(([sql, x]) => [sql, x.calls]));
    assert.deepEqual(calls, {
      'SELECT 1 AS n': 2,
      'SELECT $1::int AS n': 3,
      'SELECT pg_try_advisory_xact_lock($1::bigint) AS ok': 1,
      'SELECT 2 AS n': 1,
    });
    const statementMs = [...timings.statements.values()].reduce((a, x) => a + x.ms, 0);
    assert.ok(statementMs > 0);
    assert.ok(Math.abs(timings.transactions.statementMs - statementMs) < 1e-6);
    assert.ok(timings.transactions.ms >= timings.transactions.statementMs);
  });

  it('starts again from nothing after reset', async () => {
    timings.reset();
    assert.equal(timings.statements.size, 0);
    assert.deepEqual(timings.transactions, { calls: 0, ms: 0, statementMs: 0 });
    await db.transaction((tx) => tx.query('SELECT 3 AS n'));
    assert.equal(timings.transactions.calls, 1);
    assert.equal(timings.statements.get('SELECT 3 AS n')?.calls, 1);
  });
});
