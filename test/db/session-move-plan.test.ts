/**
 * A move finds its sessions by their id, however many sessions the table holds. The batch move
 * joins the sessions to a JSON list of items; the planner guesses that list at 100 rows and
 * used to hash it against every session of the tenant in the source status (found through the
 * status and tenant indexes), or, with statistics, against every live session: on PGlite,
 * without autovacuum, those indexes keep an entry for every row version ever written, so each
 * move read more than the one before (1.5 ms per move after 200 sessions, 2.5–3 ms after
 * 4,000). The service's statements are prepared statements (src/db/pglite-query.ts,
 * src/db/pg-prepared.ts): the same holds for the plan each move settles on after its first
 * executions (a generic plan once Postgres finds it no more expensive; the batch move's generic
 * plan reads the tenant's whole created_at index, and Postgres keeps planning it for its
 * parameters). PGlite by default; the Postgres
 * server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Queryable, Tx } from '../../src/db/connection.js';
import { insertSessions, transitionSessions } from '../../src/db/queries/sessions.js';
import { newId } from '../../src/domain/ids.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { DAY, intentFields, NOW, seedKeyTx, seedTenant } from './fixtures.js';

/** The unique indexes that find a session by its id: (session_id) and (tenant_id, session_id). */
const BY_ID = ['signing_sessions_pkey', 'signing_sessions_tenant_session_key'];

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of a plan that reads `relation` (the Update node itself writes it: not a read). */
function reads(node: PlanNode, relation: string): PlanNode[] {
  const own = node['Relation Name'] === relation && node['Node Type'] !== 'ModifyTable' ? [node] : [];
  return [...own, ...(node.Plans ?? []).flatMap((p) => reads(p, relation))];
}

/**
 * Runs statements on `tx`, and keeps the plan of each UPDATE of signing_sessions: the plan for
 * its parameters and the plan the prepared statement it ran as settles on (every service
 * statement is one). Postgres plans a prepared statement for its parameters five times and then
 * keeps a generic plan instead when that looks no more expensive: EXPLAIN EXECUTE goes through
 * the same choice, so the sixth shows what the statement goes on using.
 */
function explaining(tx: Tx, plans: PlanNode[]): Queryable {
  const explain = async (sql: string, params?: readonly unknown[]) => {
    const r = await tx.query<{ 'QUERY PLAN': unknown }>(sql, params);
    const doc = r.rows[0]!['QUERY PLAN'];
    const parsed = (typeof doc === 'string' ? JSON.parse(doc) : doc) as { Plan: PlanNode }[];
    plans.push(parsed[0]!.Plan);
  };
  return {
    async query<T>(sql: string, params?: readonly unknown[]) {
      const update = /^\s*UPDATE signing_sessions\b/.test(sql);
      if (update) await explain(`EXPLAIN (FORMAT JSON) ${sql}`, params);
      const result = await tx.query<T>(sql, params);
      if (update) {
        const r = await tx.query<{ name: string }>(
          'SELECT name FROM pg_prepared_statements WHERE statement = $1',
          [sql],
        );
        assert.equal(r.rows.length, 1, 'the move ran as a prepared statement');
        // EXECUTE takes its arguments as SQL: literals (ids, statuses, numbers, JSON text).
        const literal = (v: unknown) =>
          `'${(Array.isArray(v) ? `{${v.join(',')}}` : String(v)).replace(/'/g, "''")}'`;
        const execute = `EXPLAIN (FORMAT JSON) EXECUTE ${r.rows[0]!.name}(${(params ?? []).map(literal).join(', ')})`;
        for (let i = 0; i < 5; i++) await tx.query(execute);
        await explain(execute);
      }
      return result;
    },
  };
}

describe('session moves and the size of the sessions table', () => {
  let t: TestDb;
  let tenant: string;
  let keyId: string;

  before(async () => {
    t = await testDb();
    tenant = await seedTenant(t.db);
    keyId = (await t.db.transaction((tx) => seedKeyTx(tx), { tenantId: tenant })).id;
  });
  after(() => t.cleanup());

  it('a move reads the sessions it moves by their id, after hundreds of sessions came and went', async () => {
    // 600 sessions, each moved twice (three row versions each), in batches of 50.
    const ids: string[] = [];
    for (let b = 0; b < 12; b++) {
      const batch = Array.from({ length: 50 }, () => ({
        sessionId: newId('session'),
        keyId,
        ...intentFields(),
        threshold: 2,
        createdBy: 'test',
        createdAt: NOW,
        expiresAt: NOW + DAY,
      }));
      await t.db.transaction(
        async (tx) => {
          await insertSessions(tx, batch);
          const items = batch.map((s) => ({ sessionId: s.sessionId, patch: {} }));
          await transitionSessions(tx, items, ['pending'], 'nonce_collection');
          await transitionSessions(tx, items, ['nonce_collection'], 'signing');
        },
        { tenantId: tenant },
      );
      ids.push(...batch.map((s) => s.sessionId));
    }
    // Statistics, as autovacuum keeps them on a server and the coordinator's jobs on PGlite
    // (src/db/maintenance.ts): without any, the planner cannot tell the indexes apart.
    await t.db.adminQuery('ANALYZE signing_sessions');
    const plans: PlanNode[] = [];
    const [one, two] = [ids[7]!, ids[500]!];
    const moved = await t.db.transaction(
      async (tx) => {
        const q = explaining(tx, plans);
        const single = await transitionSessions(
          q,
          [{ sessionId: one, patch: {} }],
          ['signing'],
          'aggregating',
        );
        const pair = await transitionSessions(
          q,
          [two, ids[501]!].map((sessionId) => ({ sessionId, expectAttempt: 1, patch: {} })),
          ['signing'],
          'aggregating',
        );
        return [...single, ...pair];
      },
      { tenantId: tenant },
    );
    assert.deepEqual(
      moved.map((s) => s?.status),
      ['aggregating', 'aggregating', 'aggregating'],
      'the moves themselves still happen',
    );
    assert.equal(plans.length, 4);
    for (const plan of plans) {
      const scans = reads(plan, 'signing_sessions');
      assert.ok(scans.length > 0, 'the plan reads signing_sessions');
      for (const s of scans) {
        assert.ok(
          BY_ID.includes(s['Index Name'] ?? ''),
          `signing_sessions read by ${s['Node Type']}${s['Index Name'] ? ` on ${s['Index Name']}` : ''}, not by a session's id`,
        );
      }
    }
  });
});
