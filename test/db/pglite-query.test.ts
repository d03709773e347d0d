/**
 * Prepared statements on PGlite (src/db/pglite-query.ts): the same rows, values and errors as
 * `PGlite.query`, one prepared statement per text whose plan Postgres reuses, nothing kept of
 * a text Postgres refuses, a bounded number kept, and the service's statements prepared again
 * after admin work changed the schema. PGlite only (the Postgres server's driver is `pg`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { type Db, openDb } from '../../src/db/connection.js';
import { PgliteStatements } from '../../src/db/pglite-query.js';

async function prepared(pg: PGlite): Promise<{ statement: string; generic_plans: number }[]> {
  const r = await pg.query<{ statement: string; generic_plans: number }>(
    'SELECT statement, generic_plans::int AS generic_plans FROM pg_prepared_statements ORDER BY name',
  );
  return r.rows;
}

describe('PgliteStatements', () => {
  let pg: PGlite;
  let s: PgliteStatements;
  before(async () => {
    pg = await PGlite.create();
    s = new PgliteStatements(pg);
    await pg.exec(`
      CREATE TABLE t (
        id int PRIMARY KEY, big bigint, flag boolean, doc jsonb, tags text[], raw bytea,
        at timestamptz, note text UNIQUE
      );`);
  });
  after(async () => {
    await pg.close();
  });

  it('returns what PGlite.query returns, for every kind of value, null included', async () => {
    const insert =
      'INSERT INTO t (id, big, flag, doc, tags, raw, at, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *';
    const a = await s.query(insert, [
      1,
      9007199254740993n,
      true,
      { k: [1, 'two', null] },
      ['x', 'y,z'],
      new Uint8Array([0, 255, 7]),
      new Date(1_700_000_000_123),
      'first',
    ]);
    const b = await pg.query(insert, [2, 5, false, [1, 2], [], new Uint8Array(0), new Date(0), null]);
    assert.equal(a.rowCount, 1);
    assert.deepEqual(a.rows[0], {
      id: 1,
      big: 9007199254740993n,
      flag: true,
      doc: { k: [1, 'two', null] },
      tags: ['x', 'y,z'],
      raw: new Uint8Array([0, 255, 7]),
      at: new Date(1_700_000_000_123),
      note: 'first',
    });
    const select = 'SELECT * FROM t WHERE id = ANY($1::int[]) ORDER BY id';
    const mine = await s.query(select, [[1, 2]]);
    const theirs = await pg.query(select, [[1, 2]]);
    assert.deepEqual(mine.rows, theirs.rows);
    assert.equal(mine.rows.length, 2);
    assert.deepEqual((mine.rows[1] as Record<string, unknown>).doc, [1, 2]);
    assert.equal(b.affectedRows, 1);
    const upd = await s.query('UPDATE t SET flag = NOT flag WHERE id <= $1', [2]);
    assert.deepEqual(upd, { rows: [], rowCount: 2 });
  });

  it('prepares each text once and executes it on a cached plan', async () => {
    const sql = 'SELECT note FROM t WHERE id = $1';
    for (let i = 0; i < 12; i++)
      assert.equal((await s.query<{ note: string }>(sql, [1])).rows[0]?.note, 'first');
    const mine = (await prepared(pg)).filter((p) => p.statement === sql);
    assert.equal(mine.length, 1, 'one prepared statement for the text');
    assert.ok(mine[0]!.generic_plans > 0, `the plan is reused (generic plans: ${mine[0]!.generic_plans})`);
  });

  it('throws the database error, leaves the connection ready and keeps nothing of a refused text', async () => {
    await assert.rejects(
      s.query('INSERT INTO t (id, note) VALUES ($1, $2)', [3, 'first']),
      (e: { code?: string; constraint?: string }) => e.code === '23505' && e.constraint === 't_note_key',
    );
    await assert.rejects(s.query('SELEKT $1', [1]), (e: { code?: string }) => e.code === '42601');
    await assert.rejects(s.query('SELEKT $1', [1]), (e: { code?: string }) => e.code === '42601', 'again');
    assert.equal((await prepared(pg)).filter((p) => p.statement.startsWith('SELEKT')).length, 0);
    // In a transaction: the error aborts it, the ROLLBACK ends it, the statements still work.
    await pg.exec('BEGIN');
    await assert.rejects(
      s.query('INSERT INTO t (id) VALUES ($1)', [1]),
      (e: { code?: string }) => e.code === '23505',
    );
    await assert.rejects(s.query('SELECT $1::int', [1]), (e: { code?: string }) => e.code === '25P02');
    await pg.exec('ROLLBACK');
    assert.deepEqual((await s.query('SELECT $1::int + 1 AS n', [41])).rows, [{ n: 42 }]);
  });

  it('exec runs several statements in one go, commits and rolls back, and throws the database error', async () => {
    await s.exec(`BEGIN; SET LOCAL application_name = 'floe-exec'`);
    assert.equal(pg.isInTransaction(), true);
    assert.deepEqual((await s.query(`SELECT current_setting('application_name') AS a`)).rows, [
      { a: 'floe-exec' },
    ]);
    await s.query('INSERT INTO t (id, note) VALUES ($1, $2)', [10, 'ten']);
    await s.exec('COMMIT');
    assert.equal(pg.isInTransaction(), false);
    assert.equal((await pg.query('SELECT note FROM t WHERE id = 10')).rows.length, 1);

    await s.exec('BEGIN');
    await s.query('INSERT INTO t (id, note) VALUES ($1, $2)', [11, 'eleven']);
    await s.exec('ROLLBACK');
    assert.equal((await pg.query('SELECT note FROM t WHERE id = 11')).rows.length, 0);

    // A refused statement: PGlite's DatabaseError, the rest of the text not run, the connection ready.
    await assert.rejects(
      s.exec(`INSERT INTO t (id, note) VALUES (12, 'first'); INSERT INTO t (id) VALUES (13)`),
      (e: { code?: string; constraint?: string }) => e.code === '23505' && e.constraint === 't_note_key',
    );
    assert.equal((await pg.query('SELECT id FROM t WHERE id IN (12, 13)')).rows.length, 0);
    assert.equal(pg.isInTransaction(), false);
    // A COMMIT that fails (a deferred constraint): the transaction is gone, a ROLLBACK is harmless.
    await pg.exec(`ALTER TABLE t ADD CONSTRAINT t_big_unique UNIQUE (big) DEFERRABLE INITIALLY DEFERRED`);
    await s.exec('BEGIN');
    await s.query('INSERT INTO t (id, big) VALUES ($1, $2), ($3, $2)', [20, 77, 21]);
    await assert.rejects(s.exec('COMMIT'), (e: { code?: string }) => e.code === '23505');
    assert.equal(pg.isInTransaction(), false);
    await s.exec('ROLLBACK');
    assert.equal((await pg.query('SELECT id FROM t WHERE id IN (20, 21)')).rows.length, 0);
    assert.deepEqual((await s.query('SELECT $1::int + 1 AS n', [1])).rows, [{ n: 2 }]);
  });
});

describe('PgliteStatements, a schema changed behind their back', () => {
  it('refuses the execution rather than describe the rows with the columns kept from the Describe', async () => {
    const pg = await PGlite.create();
    try {
      const s = new PgliteStatements(pg);
      await pg.exec(`CREATE TABLE u (id int PRIMARY KEY, a text); INSERT INTO u VALUES (1, 'x');`);
      const sql = 'SELECT * FROM u WHERE id = $1';
      assert.deepEqual((await s.query(sql, [1])).rows, [{ id: 1, a: 'x' }]);
      // (the service's schema changes go through admin work, which drops the statements: above)
      await pg.exec(`ALTER TABLE u ADD COLUMN b int; UPDATE u SET b = 7;`);
      await assert.rejects(s.query(sql, [1]), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, '0A000');
        assert.match(String(e.message), /cached plan must not change result type/);
        return true;
      });
      // Once dropped, the text is prepared again and described with the new column.
      await s.deallocate();
      assert.deepEqual((await s.query(sql, [1])).rows, [{ id: 1, a: 'x', b: 7 }]);
    } finally {
      await pg.close();
    }
  });
});

describe('PgliteStatements, bounded', () => {
  it('keeps a bounded number of prepared statements', async () => {
    const pg = await PGlite.create();
    try {
      const s = new PgliteStatements(pg, 3);
      for (let i = 0; i < 7; i++) {
        assert.deepEqual((await s.query(`SELECT $1::int + ${i} AS n`, [1])).rows, [{ n: 1 + i }]);
        assert.ok((await prepared(pg)).length <= 3, `at most 3 prepared after ${i + 1} texts`);
      }
      assert.deepEqual(
        (await s.query('SELECT $1::int + 0 AS n', [5])).rows,
        [{ n: 5 }],
        'an early text again',
      );
    } finally {
      await pg.close();
    }
  });
});

describe('PgliteDb: service statements after admin work', () => {
  let db: Db;
  before(async () => {
    db = await openDb({});
    await db.adminQuery('CREATE TABLE scratch (id int PRIMARY KEY)');
    await db.adminQuery('GRANT SELECT, INSERT ON scratch TO floe_app');
    await db.adminQuery('INSERT INTO scratch VALUES (1)');
  });
  after(async () => {
    await db.close();
  });

  it('are prepared again once admin work may have changed the schema', async () => {
    const sql = 'SELECT * FROM scratch WHERE id = $1';
    assert.deepEqual((await db.transaction((tx) => tx.query(sql, [1]))).rows, [{ id: 1 }]);
    await db.adminQuery('ALTER TABLE scratch ADD COLUMN label text');
    await db.adminQuery(`UPDATE scratch SET label = 'one'`);
    // A statement prepared before the ALTER would fail here ("cached plan must not change
    // result type") or miss the new column.
    assert.deepEqual((await db.transaction((tx) => tx.query(sql, [1]))).rows, [{ id: 1, label: 'one' }]);
  });
});
