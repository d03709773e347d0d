/**
 * The embedded database's autovacuum (src/db/maintenance.ts): autovacuum's thresholds, and on
 * PGlite the tables that are due vacuumed or analyzed, once; on a Postgres server nothing (its
 * own autovacuum does it). PGlite by default; the Postgres server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTOVACUUM, dueWork, maintainTables } from '../../src/db/maintenance.js';
import { transitionSession } from '../../src/db/queries/sessions.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { seedSession, seedTenant } from './fixtures.js';

describe('dueWork: autovacuum thresholds', () => {
  const t = (live: number, dead: number, mods: number) => ({
    table: 'public.t',
    live,
    dead,
    modifiedSinceAnalyze: mods,
  });

  it('vacuums past 50 + 20 % dead rows, analyzes past 50 + 10 % changed rows, else nothing', () => {
    assert.deepEqual(AUTOVACUUM, {
      vacuumThreshold: 50,
      vacuumScale: 0.2,
      analyzeThreshold: 50,
      analyzeScale: 0.1,
    });
    assert.equal(dueWork(t(1000, 250, 0)), null, 'exactly at the vacuum line');
    assert.equal(dueWork(t(1000, 251, 0)), 'vacuum');
    assert.equal(dueWork(t(1000, 0, 150)), null, 'exactly at the analyze line');
    assert.equal(dueWork(t(1000, 0, 151)), 'analyze');
    assert.equal(dueWork(t(1000, 251, 151)), 'vacuum', 'a vacuum analyzes too');
    assert.equal(dueWork(t(0, 51, 0)), 'vacuum');
    assert.equal(dueWork(t(0, 0, 50)), null);
  });
});

describe('maintainTables', () => {
  let t: TestDb;
  let tenant: string;

  before(async () => {
    t = await testDb();
    tenant = await seedTenant(t.db);
  });
  after(() => t.cleanup());

  // The counters as they stand: a backend sends its own at most once a second, so they are
  // flushed first (the write just before the maintenance would otherwise arrive later).
  const stats = async (table: string) => {
    await t.db.adminQuery('SELECT pg_stat_force_next_flush()');
    return (
      await t.db.adminQuery<{ dead: number | string; analyzed: boolean; vacuumed: boolean }>(
        `SELECT n_dead_tup AS dead, last_analyze IS NOT NULL AS analyzed, last_vacuum IS NOT NULL AS vacuumed
           FROM pg_stat_user_tables WHERE relname = $1`,
        [table],
      )
    ).rows[0]!;
  };

  it('on PGlite vacuums the tables with dead rows and analyzes the changed ones, then rests', async () => {
    // 300 sessions, each written twice (a dead row each); their keys and audit rows only inserted.
    for (let i = 0; i < 300; i++) {
      const s = await seedSession(t.db, tenant);
      await t.db.transaction((tx) => transitionSession(tx, s.sessionId, ['pending'], 'nonce_collection'), {
        tenantId: tenant,
      });
    }
    const first = await maintainTables(t.db);
    if (t.db.kind !== 'pglite') {
      assert.deepEqual(first, { vacuumed: [], analyzed: [] }, 'a server has its own autovacuum');
      return;
    }
    assert.ok(first.vacuumed.includes('public.signing_sessions'), JSON.stringify(first));
    assert.ok(first.analyzed.includes('public.audit_events'), JSON.stringify(first));
    assert.ok(first.analyzed.includes('public.keys'), JSON.stringify(first));
    const s = await stats('signing_sessions');
    assert.equal(Number(s.dead), 0, 'the dead row versions are gone');
    assert.ok(s.vacuumed && s.analyzed);
    const a = await stats('audit_events');
    assert.ok(a.analyzed && !a.vacuumed, 'an insert-only table is analyzed, not vacuumed');
    assert.deepEqual(
      await maintainTables(t.db),
      { vacuumed: [], analyzed: [] },
      'nothing is due right after',
    );
  });

  it('on PGlite ANALYZE samples 3,000 rows at most (default_statistics_target 10): its sample stays resident', async (ctx) => {
    if (t.db.kind !== 'pglite') {
      ctx.skip('a server analyzes in its own short-lived workers');
      return;
    }
    await t.db.adminQuery(
      'CREATE TABLE analyze_sample AS SELECT g AS n, md5(g::text) AS s FROM generate_series(1, 5000) g',
    );
    await t.db.adminQuery('ANALYZE analyze_sample');
    const r = await t.db.adminQuery<{ attname: string; bounds: number }>(
      `SELECT attname, cardinality(histogram_bounds::text::text[])::int AS bounds
         FROM pg_stats WHERE tablename = 'analyze_sample' ORDER BY attname`,
    );
    // 300 × the target rows are sampled; the histogram has target + 1 bounds (101 with Postgres's default).
    assert.deepEqual(
      r.rows.map((x) => [x.attname, x.bounds]),
      [
        ['n', 11],
        ['s', 11],
      ],
    );
    await t.db.adminQuery('DROP TABLE analyze_sample');
  });

  it('ANALYZE of the audit log gathers no statistics for its data and hash columns (migration 021)', async () => {
    await seedSession(t.db, tenant);
    await t.db.adminQuery('ANALYZE audit_events');
    const r = await t.db.adminQuery<{ attname: string }>(
      `SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'audit_events' ORDER BY attname`,
    );
    const columns = r.rows.map((x) => x.attname);
    for (const c of ['tenant_id', 'id', 'kind', 'subject_id'])
      assert.ok(columns.includes(c), `${c} has statistics`);
    for (const c of ['data', 'hash', 'prev_hash']) assert.ok(!columns.includes(c), `${c} has none`);
  });
});
