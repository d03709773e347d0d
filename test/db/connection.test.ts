import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { advisoryKey, type Db, openDb } from '../../src/db/connection.js';
import { appliedMigrations, loadMigrations, migrate } from '../../src/db/migrate.js';
import { makePrivate, ownedAndPrivate, pristineDir } from '../../src/db/pglite-datadir.js';
import { getTenant } from '../../src/db/queries/tenants.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { barrier, seedTenant } from './fixtures.js';

describe('connection', () => {
  let t: TestDb;
  let db: Db;

  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  it('runs service queries as floe_app and admin queries as the connecting role', async () => {
    assert.equal(db.kind, process.env.FLOE_TEST_DATABASE_URL ? 'postgres' : 'pglite');
    const q = await db.query<{ u: string }>('SELECT current_user AS u');
    assert.equal(q.rows[0]!.u, 'floe_app');
    const tx = await db.transaction(
      (tx) =>
        tx.query<{ u: string; t: string | null }>('SELECT current_user AS u, floe_current_tenant() AS t'),
      { tenantId: 'x1' },
    );
    assert.deepEqual(tx.rows[0], { u: 'floe_app', t: 'x1' });
    const a = await db.adminQuery<{ u: string }>('SELECT current_user AS u');
    assert.notEqual(a.rows[0]!.u, 'floe_app');
    // the role and the tenant are transaction-local
    const after = await db.adminQuery<{ t: string | null }>('SELECT floe_current_tenant() AS t');
    assert.equal(after.rows[0]!.t, null);
  });

  it('sets any tenant id exactly, plain or not (quotes and backslashes are never inlined)', async () => {
    for (const tenant of ['t_1.a:b-c', "o'brien\\'); DROP TABLE tenants; --", 'ünï code', 'x'.repeat(200)]) {
      const r = await db.transaction((tx) => tx.query<{ t: string }>('SELECT floe_current_tenant() AS t'), {
        tenantId: tenant,
      });
      assert.equal(r.rows[0]!.t, tenant);
    }
    const tables = await db.adminQuery<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'tenants'",
    );
    assert.equal(tables.rows[0]!.n, 1);
  });

  it('BIGINT comes back as a number and JSONB parsed, on both drivers', async () => {
    const r = await db.query<{ b: number; j: unknown }>(
      `SELECT 1800000000000::bigint AS b, '{"a":[1]}'::jsonb AS j`,
    );
    assert.equal(r.rows[0]!.b, 1_800_000_000_000);
    assert.deepEqual(r.rows[0]!.j, { a: [1] });
  });

  it('commits on success and rolls back when fn throws', async () => {
    const id = await seedTenant(db);
    await assert.rejects(
      db.transaction(
        async (tx) => {
          await tx.query(`UPDATE tenants SET name = 'changed' WHERE id = $1`, [id]);
          throw new Error('boom');
        },
        { tenantId: id },
      ),
      /boom/,
    );
    const tn = await db.transaction((tx) => getTenant(tx, id), { tenantId: id });
    assert.equal(tn?.name, `tenant ${id}`);
    // a failed statement rolls back the whole transaction, and the next one works
    await assert.rejects(db.transaction((tx) => tx.query('SELECT 1/0')));
    assert.equal((await db.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n, 1);
  });

  it('refuses a transaction opened inside another, and a tx used after it ended', async () => {
    await assert.rejects(
      db.transaction(async () => db.transaction(async () => 1)),
      /opened inside another/,
    );
    await assert.rejects(
      db.transaction(async () => db.adminQuery('SELECT 1')),
      /opened inside another/,
    );
    let leaked: { query: Db['query'] } | undefined;
    await db.transaction(async (tx) => {
      leaked = tx;
    });
    await assert.rejects(leaked!.query('SELECT 1'), /already ended/);
    await assert.rejects(
      db.transaction(async () => 1, { tenantId: '' }),
      /non-empty/,
    );
  });

  it('concurrent transactions never interleave their statements', { timeout: 10_000 }, async () => {
    const vals = ['a', 'b', 'c', 'd', 'e'];
    // Postgres runs the five at once, each on its own connection: they all meet mid-transaction.
    // PGlite has one connection and queues them, so nobody else can arrive: each goes on alone.
    const meet = barrier(db.kind === 'postgres' ? vals.length : 1);
    let inside = 0;
    let maxInside = 0;
    const run = (v: string) =>
      db.transaction(async (tx) => {
        maxInside = Math.max(maxInside, ++inside);
        await tx.query(`SELECT set_config('floe.probe', $1, true)`, [v]);
        await meet();
        const r = await tx.query<{ v: string }>(`SELECT current_setting('floe.probe') AS v`);
        inside -= 1;
        return r.rows[0]!.v;
      });
    assert.deepEqual(await Promise.all(vals.map(run)), vals);
    assert.equal(maxInside, db.kind === 'postgres' ? vals.length : 1, 'overlapping as the driver allows');
  });

  it('withAdvisoryLock: of two concurrent holders of one key only one runs at a time', {
    timeout: 10_000,
  }, async () => {
    const key = advisoryKey('floe:test:job');
    let active = 0;
    let maxActive = 0;
    let ran = 0;
    const job = (other: () => Promise<unknown>) =>
      db.withAdvisoryLock(key, async (tx) => {
        active += 1;
        ran += 1;
        maxActive = Math.max(maxActive, active);
        await tx.query('SELECT 1');
        // Postgres: hold the lock until the other caller has tried and given up. PGlite queues
        // the other transaction behind this one, so waiting for it here would deadlock.
        if (db.kind === 'postgres' && ran === 1) await other();
        active -= 1;
        return 'done';
      });
    const a: Promise<string | undefined> = job(() => b);
    const b: Promise<string | undefined> = job(() => a);
    const results = await Promise.all([a, b]);
    assert.equal(maxActive, 1);
    if (db.kind === 'postgres') {
      assert.equal(ran, 1, 'the second caller found the lock taken');
      assert.deepEqual(results.sort(), ['done', undefined].sort());
    } else {
      // PGlite serializes transactions: both run, one after the other
      assert.ok(ran >= 1);
    }
    // the lock ends with the transaction
    assert.equal(await db.withAdvisoryLock(key, async () => 'again'), 'again');
  });

  it('withAdvisoryLock: different keys do not exclude each other', async (tc) => {
    if (db.kind !== 'postgres') return tc.skip('PGlite serializes all transactions');
    const meet = barrier(2);
    const both = await Promise.all([
      db.withAdvisoryLock(1, async () => {
        await meet();
        return 1;
      }),
      db.withAdvisoryLock(2, async () => {
        await meet();
        return 2;
      }),
    ]);
    assert.deepEqual(both, [1, 2]);
  });

  it('withSessionLock: a job spanning several transactions runs once at a time', {
    timeout: 10_000,
  }, async () => {
    const key = advisoryKey('floe:test:session-job');
    let ran = 0;
    const job = (other?: () => Promise<unknown>) =>
      db.withSessionLock(key, async () => {
        ran += 1;
        await db.query('SELECT 1');
        // Hold the lock until the other caller has tried (and found it taken).
        if (ran === 1) await other?.();
        await db.transaction((tx) => tx.query('SELECT 2'));
        return ran;
      });
    const first: ReturnType<typeof job> = job(() => second);
    const second: ReturnType<typeof job> = job(() => first);
    const [a, b] = await Promise.all([first, second]);
    assert.equal([a, b].filter((x) => x.ran).length, 1);
    assert.equal(ran, 1);
    assert.deepEqual(await job(), { ran: true, value: 2 });
  });

  it('advisoryKey is a stable signed 64-bit integer', () => {
    const k = advisoryKey('floe:expiry');
    assert.equal(k, advisoryKey('floe:expiry'));
    assert.notEqual(k, advisoryKey('floe:cleanup'));
    assert.ok(k >= -(2n ** 63n) && k < 2n ** 63n);
  });
});

describe('PGlite on disk', () => {
  it('keeps data under <dataDir>/pgdata across restarts and does not migrate twice', async (tc) => {
    if (process.env.FLOE_TEST_DATABASE_URL) return tc.skip('PGlite only');
    const dir = mkdtempSync(join(tmpdir(), 'floe-db-'));
    try {
      const a = await openDb({ dataDir: join(dir, 'data') });
      const id = await seedTenant(a);
      const first = await appliedMigrations(a);
      await a.close();
      const b = await openDb({ dataDir: join(dir, 'data') });
      try {
        await assert.rejects(openDb({ dataDir: join(dir, 'data') }), /already open in this process/);
        assert.equal((await b.transaction((tx) => getTenant(tx, id), { tenantId: id }))?.id, id);
        assert.deepEqual(await appliedMigrations(b), first);
        assert.equal(first.length, loadMigrations().length);
      } finally {
        await b.close();
      }
      // another live process holding the directory
      writeFileSync(join(dir, 'data', 'pgdata.lock'), String(process.ppid));
      await assert.rejects(openDb({ dataDir: join(dir, 'data') }), /in use by process/);
      // a dead one's lock is taken over
      writeFileSync(join(dir, 'data', 'pgdata.lock'), '2147483646');
      await (await openDb({ dataDir: join(dir, 'data') })).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('new PGlite data directories', () => {
  it('copy the pristine initdb result PGlite keeps, never a used one, and stay independent', async (tc) => {
    if (process.env.FLOE_TEST_DATABASE_URL) return tc.skip('PGlite only');
    const pristine = pristineDir();
    assert.ok(pristine, 'PGlite found under node_modules');
    const dir = mkdtempSync(join(tmpdir(), 'floe-db-'));
    try {
      // The first one in a process of this checkout makes the cache if nothing did before (or
      // replaces one that is not owner-only).
      const a = await openDb({ dataDir: join(dir, 'a') });
      const id = await seedTenant(a);
      assert.ok(existsSync(join(pristine, 'PG_VERSION')), 'the pristine directory is kept');
      assert.ok(ownedAndPrivate(pristine), 'owner-only: what it holds becomes the next database');
      const b = await openDb({ dataDir: join(dir, 'b'), migrate: false });
      try {
        // A copy of initdb's result: no migration and no row of `a` in it.
        const tables = await b.adminQuery<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
        );
        assert.equal(tables.rows[0]!.n, 0);
        await migrate(b);
        assert.equal(await b.transaction((tx) => getTenant(tx, id), { tenantId: id }), null);
        assert.equal((await a.transaction((tx) => getTenant(tx, id), { tenantId: id }))?.id, id);
      } finally {
        await b.close();
        await a.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the kept initdb copy is used only when owner-only', () => {
  it('a file or directory open to group or others, or a link, disqualifies it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'floe-private-'));
    try {
      mkdirSync(join(dir, 'base', '1'), { recursive: true });
      writeFileSync(join(dir, 'PG_VERSION'), '17');
      writeFileSync(join(dir, 'base', '1', 'page'), 'x');
      chmodSync(join(dir, 'base', '1', 'page'), 0o666);
      assert.equal(ownedAndPrivate(dir), false, 'as PGlite writes its files (0666)');
      makePrivate(dir);
      assert.equal(ownedAndPrivate(dir), true);
      assert.equal(statSync(join(dir, 'base', '1', 'page')).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'base')).mode & 0o777, 0o700);
      chmodSync(join(dir, 'base', '1'), 0o750);
      assert.equal(ownedAndPrivate(dir), false, 'a directory others may read');
      chmodSync(join(dir, 'base', '1'), 0o700);
      symlinkSync('/etc/hostname', join(dir, 'base', 'link'));
      assert.equal(ownedAndPrivate(dir), false, 'a link');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
