/**
 * The audit hash chain (migration 017) against its TypeScript twin (src/domain/audit-chain.ts):
 * the trigger's hashes verify with the pure walk, one chain per tenant survives concurrent
 * inserts, the migration chains rows written before it, and a row changed behind the
 * service's back is reported. PGlite by default; the Postgres server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { appendAudit } from '../../src/db/queries/audit.js';
import {
  type ChainedAuditRow,
  GENESIS_HASH,
  jsonbText,
  verifyAuditChain,
} from '../../src/domain/audit-chain.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { seedSession, seedTenant } from './fixtures.js';

/** The rows of a tenant as the API gives them (snake_case, id order). */
async function chainOf(db: Db, tenantId: string): Promise<ChainedAuditRow[]> {
  const r = await db.adminQuery<ChainedAuditRow>(
    `SELECT id, tenant_id, at, actor, kind, subject_type, subject_id, data, prev_hash, hash
       FROM audit_events WHERE tenant_id = $1 ORDER BY id`,
    [tenantId],
  );
  return r.rows;
}

const append = (db: Db, tenantId: string, kind: string, data: unknown = {}) =>
  db.transaction(
    (tx) => appendAudit(tx, { actor: 'test', kind, subjectType: 'thing', subjectId: kind, data }),
    {
      tenantId,
    },
  );

/** Changes a row as someone with the database's owner role could: the append-only trigger off. */
async function tamper(db: Db, sql: string, params: unknown[]): Promise<void> {
  await db.adminSession(async (s) => {
    await s.query('BEGIN');
    await s.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update');
    await s.query(sql, params);
    await s.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update');
    await s.query('COMMIT');
  });
}

describe('audit hash chain (017)', () => {
  let t: TestDb;
  let db: Db;
  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  it('the trigger hashes what the pure encoding hashes, for awkward data too', async () => {
    const tenant = await seedTenant(db);
    const awkward = [
      {},
      { b: 1, a: 2, aa: [1, 2, { z: null, y: true }], é: 'ünïcödé ✓ 𝄞' },
      { quote: 'say "hi"\\ \n\t\r\b\f \u0001 \u001f \u007f', '': false },
      { n: [0, -0, 1.5, -2.25, 1e-7, 1.5e-9, 1e21, 123456789012345, 0.1] },
      ['x', { k: 'v' }],
      'just a string',
    ];
    for (const [i, d] of awkward.entries()) await append(db, tenant, `awkward.${i}`, d);
    const rows = await chainOf(db, tenant);
    assert.equal(rows.length, awkward.length);
    // The TypeScript encoding of data is the database's text, byte for byte.
    const texts = await db.adminQuery<{ t: string; data: unknown }>(
      'SELECT data::text AS t, data FROM audit_events WHERE tenant_id = $1 ORDER BY id',
      [tenant],
    );
    for (const r of texts.rows) assert.equal(jsonbText(r.data), r.t);
    const v = verifyAuditChain(rows);
    assert.deepEqual(v, { ok: true, checked: rows.length, lastHash: rows.at(-1)!.hash });
    assert.equal(rows[0]!.prev_hash, GENESIS_HASH);
  });

  it('chains status changes written by the database itself, one chain per tenant', async () => {
    const a = await seedTenant(db);
    const b = await seedTenant(db);
    await seedSession(db, a, 'completed');
    await append(db, b, 'b.first');
    await seedSession(db, b, 'failed');
    for (const tenant of [a, b]) {
      const rows = await chainOf(db, tenant);
      assert.ok(rows.some((r) => r.kind === 'status_change'));
      assert.equal(verifyAuditChain(rows).ok, true, `tenant ${tenant}`);
      assert.equal(rows[0]!.prev_hash, GENESIS_HASH, 'each tenant starts its own chain');
    }
  });

  it('concurrent inserts of one tenant keep one chain in id order', async () => {
    const tenant = await seedTenant(db);
    const other = await seedTenant(db);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => append(db, i % 4 === 0 ? other : tenant, `c.${i}`, { i })),
    );
    for (const x of [tenant, other]) {
      const rows = await chainOf(db, x);
      assert.equal(new Set(rows.map((r) => r.prev_hash)).size, rows.length, 'no fork: each link used once');
      assert.equal(verifyAuditChain(rows).ok, true);
    }
  });

  it('a row changed in the database is reported at that row; a re-hashed one at the next', async () => {
    const tenant = await seedTenant(db);
    for (let i = 0; i < 5; i++) await append(db, tenant, `t.${i}`, { amount: i });
    const rows = await chainOf(db, tenant);
    const victim = rows[3]!;
    await tamper(db, `UPDATE audit_events SET data = '{"amount": 1000}' WHERE id = $1`, [victim.id]);
    const v1 = verifyAuditChain(await chainOf(db, tenant));
    assert.equal(v1.ok, false);
    if (!v1.ok) {
      assert.equal(v1.break.id, victim.id);
      assert.equal(v1.break.field, 'hash');
      assert.equal(v1.break.found, victim.hash);
      assert.notEqual(v1.break.expected, victim.hash);
      assert.equal(v1.checked, 3);
    }
    // The tamperer also recomputes the row's hash: the next row's link gives it away.
    await tamper(
      db,
      `UPDATE audit_events SET hash = floe_audit_row_hash(prev_hash, id, tenant_id, at, actor, kind,
              subject_type, subject_id, data) WHERE id = $1`,
      [victim.id],
    );
    const v2 = verifyAuditChain(await chainOf(db, tenant));
    assert.equal(v2.ok, false);
    if (!v2.ok) {
      assert.equal(v2.break.id, rows[4]!.id);
      assert.equal(v2.break.field, 'prev_hash');
      assert.equal(v2.break.found, victim.hash);
    }
    // A removed row breaks the link of the one after it.
    const t2 = await seedTenant(db);
    for (let i = 0; i < 3; i++) await append(db, t2, `d.${i}`);
    const r2 = await chainOf(db, t2);
    await db.adminSession(async (s) => {
      await s.query('BEGIN');
      await s.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update');
      await s.query('DELETE FROM audit_events WHERE id = $1', [r2[1]!.id]);
      await s.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update');
      await s.query('COMMIT');
    });
    const v3 = verifyAuditChain(await chainOf(db, t2));
    assert.equal(v3.ok ? 0 : v3.break.id, r2[2]!.id);
  });

  it('the service role cannot set its own hashes or ids', async () => {
    const tenant = await seedTenant(db);
    await db.transaction(
      (tx) =>
        tx.query(
          `INSERT INTO audit_events (id, tenant_id, at, actor, kind, prev_hash, hash)
           VALUES (1, floe_current_tenant(), 1, 'x', 'forged', $1, $1)`,
          ['f'.repeat(64)],
        ),
      { tenantId: tenant },
    );
    const rows = await chainOf(db, tenant);
    const forged = rows.find((r) => r.kind === 'forged')!;
    assert.notEqual(forged.hash, 'f'.repeat(64));
    assert.notEqual(forged.id, 1);
    assert.equal(verifyAuditChain(rows).ok, true);
  });

  it('the row hash is inlined into the trigger: no function call of its own per row (024)', async () => {
    const tenant = await seedTenant(db);
    const calls = await db.adminSession(async (s) => {
      // Function statistics of this connection only (track_functions is a superuser setting).
      await s.query(`SET track_functions = 'all'`);
      const read = async () => {
        await s.query('SELECT pg_stat_force_next_flush()'); // this one's counts, at its end
        await s.query('SELECT pg_stat_clear_snapshot()');
        const r = await s.query<{ funcname: string; calls: string }>(
          `SELECT funcname, calls FROM pg_stat_user_functions
            WHERE funcname IN ('floe_audit_chain', 'floe_audit_row_hash')`,
        );
        return Object.fromEntries(r.rows.map((x) => [x.funcname, Number(x.calls)]));
      };
      const before = await read();
      for (let i = 0; i < 3; i++) {
        await s.query(
          `INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
           VALUES ($1, $2, 'test', 'inline', 'thing', 'x', '{"n": 1}')`,
          [tenant, 1_700_000_000_000 + i],
        );
      }
      const after = await read();
      const delta = (f: string) => (after[f] ?? 0) - (before[f] ?? 0);
      return { chain: delta('floe_audit_chain'), rowHash: delta('floe_audit_row_hash') };
    });
    // The trigger ran once a row (so the counting works), and the hash was computed inside it.
    assert.equal(calls.chain, 3);
    assert.equal(calls.rowHash, 0);
    assert.equal(verifyAuditChain(await chainOf(db, tenant)).ok, true);
  });
});

describe('migration 017 chains the rows written before it', () => {
  let t: TestDb;
  after(() => t?.cleanup());

  it('rows of several tenants, then the migration: each tenant has a valid chain', async () => {
    t = await testDb({ migrate: false });
    const all = loadMigrations();
    await migrate(t.db, { migrations: all.filter((m) => m.version < 17) });
    const a = await seedTenant(t.db);
    const b = await seedTenant(t.db);
    for (let i = 0; i < 4; i++) {
      await t.db.transaction(
        (tx) =>
          tx.query(
            `INSERT INTO audit_events (tenant_id, at, actor, kind, data) VALUES (floe_current_tenant(), $1, 'old', 'old', $2::jsonb)`,
            [i, JSON.stringify({ i, s: 'ä' })],
          ),
        { tenantId: i % 2 ? a : b },
      );
    }
    await migrate(t.db, { migrations: all });
    for (const x of [a, b]) {
      const rows = await chainOf(t.db, x);
      assert.equal(rows.length, 2);
      assert.equal(verifyAuditChain(rows).ok, true);
    }
    await append(t.db, a, 'new');
    assert.deepEqual(
      verifyAuditChain(await chainOf(t.db, a)).ok,
      true,
      'new rows continue the migrated chain',
    );
    // Idempotent like every migration: applying it again changes nothing.
    const before = await chainOf(t.db, a);
    await migrate(t.db, { migrations: all, reapply: true });
    assert.deepEqual(await chainOf(t.db, a), before);
  });
});
