import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Db, openDb } from '../../src/db/connection.js';
import { appliedMigrations, loadMigrations, migrate, migrationsDir } from '../../src/db/migrate.js';
import { expireSessions } from '../../src/db/queries/sessions.js';
import { findApiTokenByHash } from '../../src/db/queries/tokens.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { NOW, seedSession, seedTenant } from './fixtures.js';

const TENANT_TABLES = [
  'tenants',
  'api_tokens',
  'refresh_tokens',
  'keys',
  'dkg_ceremonies',
  'signing_sessions',
  'nonce_commitments',
  'audit_events',
  'bunkers',
  'bunker_clients',
  'bunker_secrets',
  'bunker_approvals',
  'passphrase_addresses',
  'session_approvals',
  'webhooks',
  'webhook_deliveries',
  'webhook_attempts',
  'webhook_cursors',
  'key_refreshes',
  'key_repairs',
];

describe('migrations', () => {
  let t: TestDb;
  let db: Db;
  const files = loadMigrations();

  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  it('are numbered .sql files read from src/db/migrations', () => {
    assert.match(migrationsDir(), /src[\\/]db[\\/]migrations[\\/]?$/);
    assert.ok(files.length >= 6);
    assert.deepEqual(
      files.map((m) => m.version),
      files.map((_, i) => i + 1),
    );
  });

  it('are all recorded once in schema_migrations', async () => {
    const applied = await appliedMigrations(db);
    assert.deepEqual(
      applied.map((a) => [a.version, a.name, a.checksum]),
      files.map((m) => [m.version, m.name, m.checksum]),
    );
    const r = await db.adminQuery<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT version)::int AS d FROM schema_migrations',
    );
    assert.deepEqual(r.rows[0], { n: files.length, d: files.length });
  });

  it('a second run applies nothing', async () => {
    assert.deepEqual(await migrate(db), []);
    assert.equal((await appliedMigrations(db)).length, files.length);
  });

  it('every file is idempotent: running them all again succeeds and changes no record', async () => {
    const before = await appliedMigrations(db);
    const ran = await migrate(db, { reapply: true });
    assert.equal(ran.length, files.length);
    assert.deepEqual(await appliedMigrations(db), before);
  });

  it('refuses an applied migration whose text changed', async () => {
    const first = files[0]!;
    await assert.rejects(
      migrate(db, { migrations: [{ ...first, sql: `${first.sql}\n-- edited`, checksum: 'x'.repeat(64) }] }),
      /changed after it was applied/,
    );
  });

  it('a failing migration is rolled back and not recorded', async () => {
    const bad = {
      version: 999,
      name: 'broken',
      sql: 'CREATE TABLE floe_half_done (a int); SELECT 1/0;',
      checksum: 'b',
    };
    await assert.rejects(migrate(db, { migrations: [...files, bad] }), /migration 999 \(broken\) failed/);
    const r = await db.adminQuery(`SELECT to_regclass('floe_half_done') AS t`);
    assert.equal(r.rows[0]!.t, null);
    assert.equal((await appliedMigrations(db)).length, files.length);
  });

  it('enables and forces row-level security on every tenant table', async () => {
    const r = await db.adminQuery<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
        WHERE relname = ANY($1::text[]) AND relkind = 'r' ORDER BY relname`,
      [TENANT_TABLES],
    );
    assert.equal(r.rows.length, TENANT_TABLES.length);
    for (const row of r.rows) {
      assert.ok(row.relrowsecurity && row.relforcerowsecurity, `${row.relname}: RLS enabled and forced`);
    }
    const p = await db.adminQuery<{ tablename: string }>(
      `SELECT tablename FROM pg_policies WHERE policyname = 'floe_tenant_isolation' ORDER BY tablename`,
    );
    assert.deepEqual(
      p.rows.map((x) => x.tablename),
      [...TENANT_TABLES].sort(),
    );
  });

  it('SECURITY DEFINER functions pin their search_path and are not executable by PUBLIC', async () => {
    const r = await db.adminQuery<{ proname: string; proconfig: string[] | null; pub: boolean }>(
      `SELECT p.proname, p.proconfig,
              has_function_privilege('public', p.oid, 'EXECUTE') AS pub
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prosecdef ORDER BY p.proname`,
    );
    const names = r.rows.map((x) => x.proname);
    for (const f of ['cleanup_old_signing_sessions', 'expire_old_signing_sessions', 'floe_lookup_token']) {
      assert.ok(names.includes(f), `${f} is SECURITY DEFINER`);
    }
    for (const row of r.rows) {
      assert.ok(
        row.proconfig?.some((c) => c.startsWith('search_path=')),
        `${row.proname} sets search_path`,
      );
      assert.equal(row.pub, false, `${row.proname} not executable by PUBLIC`);
    }
  });

  it('concurrent coordinators migrate a new database once (advisory lock)', async (tc) => {
    if (!t.url) return tc.skip('Postgres only: a PGlite data directory belongs to one process');
    const fresh = await testDb({ migrate: false });
    try {
      const a = await openDb({ url: fresh.url!, migrate: false, poolSize: 2 });
      const b = await openDb({ url: fresh.url!, migrate: false, poolSize: 2 });
      try {
        const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
        assert.equal(ra.length + rb.length, files.length);
        assert.ok(ra.length === 0 || rb.length === 0, 'one of them did all the work');
        assert.equal((await appliedMigrations(a)).length, files.length);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await fresh.cleanup();
    }
  });

  it('a non-superuser owner (CREATEROLE, owns the database) can migrate and run the cross-tenant jobs', async (tc) => {
    if (!t.url) return tc.skip('Postgres only (PGlite has one, superuser, connection)');
    const suffix = randomBytes(4).toString('hex');
    const owner = `floe_test_owner_${suffix}`;
    const dbName = `floe_test_owned_${suffix}`;
    await db.adminQuery(`CREATE ROLE ${owner} LOGIN CREATEROLE`);
    await db.adminQuery(`CREATE DATABASE ${dbName} OWNER ${owner}`);
    const u = new URL(t.url);
    u.username = owner;
    u.pathname = `/${dbName}`;
    try {
      const o = await openDb({ url: u.toString(), poolSize: 2 });
      try {
        const who = await o.adminQuery<{ su: string }>(`SELECT current_setting('is_superuser') AS su`);
        assert.equal(who.rows[0]!.su, 'off');
        const a = await seedTenant(o);
        const b = await seedTenant(o);
        await seedSession(o, a, 'signing', { expiresAt: NOW - 1 });
        await seedSession(o, b, 'pending', { expiresAt: NOW - 1 });
        // FORCE ROW LEVEL SECURITY applies to this owner; its own policy keeps the jobs working
        assert.equal(await o.transaction((tx) => expireSessions(tx)), 2);
        assert.ok((await o.transaction((tx) => findApiTokenByHash(tx, 'f'.repeat(64)))) === null);
        // and the service role still sees nothing without a tenant
        assert.equal((await o.query('SELECT * FROM signing_sessions')).rows.length, 0);
      } finally {
        await o.close();
      }
    } finally {
      await db.adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await db.adminQuery(`DROP ROLE IF EXISTS ${owner}`);
    }
  });
});
