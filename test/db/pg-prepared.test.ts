/**
 * Prepared statements on the Postgres server (src/db/pg-prepared.ts, src/db/connection.ts): the
 * service's statements are prepared once per connection, and a statement gone stale because
 * another process changed the schema (or deallocated behind the driver's back) costs a second
 * run of the transaction on a fresh connection, not an error. The naming and the recognition
 * of a stale refusal run everywhere; the rest on the Postgres server (FLOE_TEST_DATABASE_URL).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type Db, openDb, type Tx } from '../../src/db/connection.js';
import { isStalePrepared, PreparedNames } from '../../src/db/pg-prepared.js';
import { serverUrl, type TestDb, testDb } from '../helpers/db.js';

describe('PreparedNames', () => {
  it('gives each text one name, the same every time, up to its bound', () => {
    const n = new PreparedNames(2);
    const a = n.nameOf('SELECT 1');
    const b = n.nameOf('SELECT 2');
    assert.match(a!, /^floe_\d+$/);
    assert.notEqual(a, b);
    assert.equal(n.nameOf('SELECT 1'), a);
    assert.equal(n.nameOf('SELECT 3'), undefined, 'past the bound a text runs unnamed');
    assert.equal(n.size, 2);
  });
});

describe('isStalePrepared', () => {
  it("recognizes the server's two refusals of a stale prepared statement, and nothing else", () => {
    const err = (code: string, message: string) => Object.assign(new Error(message), { code });
    assert.equal(isStalePrepared(err('0A000', 'cached plan must not change result type')), true);
    assert.equal(isStalePrepared(err('26000', 'prepared statement "floe_12" does not exist')), true);
    assert.equal(isStalePrepared(err('0A000', 'FOR UPDATE is not allowed with GROUP BY clause')), false);
    assert.equal(isStalePrepared(err('26000', 'prepared statement "other" does not exist')), false);
    assert.equal(isStalePrepared(err('23505', 'cached plan must not change result type')), false);
    assert.equal(isStalePrepared(new Error('cached plan must not change result type')), false);
    assert.equal(isStalePrepared(undefined), false);
  });
});

describe('prepared statements on the Postgres server', {
  skip: !serverUrl() && 'Postgres server only',
}, () => {
  let t: TestDb;
  /** Another process: changes the schema behind the service's back. */
  let other: pg.Client;
  const opened: Db[] = [];
  const open = async (poolSize: number) => {
    const db = await openDb({ url: t.url!, poolSize, migrate: false });
    opened.push(db);
    return db;
  };

  before(async () => {
    t = await testDb();
    other = new pg.Client({ connectionString: t.url });
    await other.connect();
  });
  after(async () => {
    await other?.end();
    for (const db of opened) await db.close();
    await t?.cleanup();
  });

  async function table(name: string): Promise<void> {
    await other.query(`CREATE TABLE ${name} (id int PRIMARY KEY, a text);
      GRANT SELECT, INSERT ON ${name} TO floe_app;
      INSERT INTO ${name} VALUES (1, 'one');`);
  }

  /** The statements prepared on the connection a transaction runs on. */
  const prepared = (tx: Tx) =>
    tx.query<{ name: string; statement: string; plans: number }>(
      'SELECT name, statement, (generic_plans + custom_plans)::int AS plans FROM pg_prepared_statements',
    );

  it("prepares each of the service's statements once on its connection", async () => {
    await table('p_once');
    const db = await open(1);
    const text = 'SELECT a FROM p_once WHERE id = $1';
    for (let i = 0; i < 3; i++) {
      const r = await db.transaction((tx) => tx.query<{ a: string }>(text, [1]));
      assert.deepEqual(r.rows, [{ a: 'one' }]);
    }
    const mine = (await db.transaction(prepared)).rows.filter((p) => p.statement === text);
    assert.equal(mine.length, 1);
    assert.match(mine[0]!.name, /^floe_\d+$/);
    assert.equal(mine[0]!.plans, 3, 'every execution ran the prepared statement');
    // Admin work runs unnamed statements.
    await db.adminQuery('SELECT a FROM p_once WHERE id = $1 AND a IS NOT NULL', [1]);
    const all = (await db.transaction(prepared)).rows.map((p) => p.statement);
    assert.ok(!all.includes('SELECT a FROM p_once WHERE id = $1 AND a IS NOT NULL'));
  });

  it('a column added by another process: the transaction runs again on a fresh connection, once', async () => {
    await table('p_added');
    const db = await open(2);
    const text = 'SELECT * FROM p_added ORDER BY id';
    // Prepared on both connections: two transactions at once hold both.
    let arrived = 0;
    let go!: () => void;
    const together = new Promise<void>((r) => {
      go = r;
    });
    await Promise.all(
      [0, 1].map(() =>
        db.transaction(async (tx) => {
          await tx.query(text);
          if (++arrived === 2) go();
          await together;
        }),
      ),
    );
    await other.query('ALTER TABLE p_added ADD COLUMN b int');
    await other.query('UPDATE p_added SET b = 7');

    let runs = 0;
    const first = await db.transaction(async (tx) => {
      runs++;
      return (await tx.query(text)).rows;
    });
    assert.deepEqual(first, [{ id: 1, a: 'one', b: 7 }]);
    assert.equal(runs, 2, 'refused once, then run again');
    // The other connection prepared the statement before the change too: it was dropped.
    runs = 0;
    const second = await db.transaction(async (tx) => {
      runs++;
      return (await tx.query(text)).rows;
    });
    assert.deepEqual(second, first);
    assert.equal(runs, 1);
  });

  it('the first run is rolled back even when it caught the refusal; the second commits', async () => {
    await table('p_caught');
    const db = await open(1);
    const text = 'SELECT * FROM p_caught WHERE id = 1';
    await db.transaction((tx) => tx.query(text));
    await other.query('ALTER TABLE p_caught ADD COLUMN b int');

    let runs = 0;
    const outcome = await db.transaction(async (tx) => {
      runs++;
      await tx.query('INSERT INTO p_caught (id, a) VALUES ($1, $2)', [100 + runs, `run ${runs}`]);
      try {
        await tx.query(text);
        return 'read';
      } catch {
        return 'caught';
      }
    });
    assert.equal(outcome, 'read');
    assert.equal(runs, 2);
    const rows = await other.query('SELECT id, a FROM p_caught WHERE id > 100');
    assert.deepEqual(rows.rows, [{ id: 102, a: 'run 2' }]);
  });

  it("statements deallocated behind the driver's back are prepared again", async () => {
    await table('p_gone');
    const db = await open(1);
    const text = 'SELECT a FROM p_gone WHERE id = $1';
    await db.transaction((tx) => tx.query(text, [1]));
    // The pool's one connection: its prepared statements are gone, the driver still counts on them.
    await db.adminQuery('DEALLOCATE ALL');
    let runs = 0;
    const r = await db.transaction((tx) => {
      runs++;
      return tx.query<{ a: string }>(text, [1]);
    });
    assert.deepEqual(r.rows, [{ a: 'one' }]);
    assert.equal(runs, 2);
  });

  it("any other error is the transaction's error, and runs nothing again", async () => {
    await table('p_other');
    const db = await open(1);
    let runs = 0;
    await assert.rejects(
      db.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO p_other (id, a) VALUES ($1, $2)', [1, 'again']);
      }),
      (e: { code?: string }) => e.code === '23505',
    );
    assert.equal(runs, 1);
  });
});
