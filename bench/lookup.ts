/**
 * Session lookup latency (GET /v1/sessions/:id, one client, one request at a time) in an
 * almost empty database and after 100,000 more completed sessions are stored. The rows are
 * inserted directly with SQL (generate_series) through Floe's Db (openDb, the same migrated
 * schema), each a copy of a real completed session of the run with its own id and message,
 * so the rows have a real session's size. PGlite keeps its data in the coordinator's
 * directory and has one connection, so the coordinator is stopped (cleanly) for the insert
 * and started again; Postgres gets the same treatment so that both are measured alike.
 * ANALYZE runs after the insert on both (PGlite has no autovacuum).
 */
import type { BenchCluster } from './cluster.js';
import { latencySummary, now, prng, round } from './stats.js';

export interface LookupPhase {
  stored_sessions: number;
  requests: number;
  errors: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  mean_ms: number;
}

export interface LookupResult {
  database: 'pglite' | 'postgres';
  empty: LookupPhase;
  full: LookupPhase;
  inserted: number;
  insert_seconds: number;
  /** full p50 / empty p50 */
  p50_ratio: number;
}

export async function measureLookups(
  c: BenchCluster,
  ids: readonly string[],
  requests: number,
  warmup: number,
  seed: number,
): Promise<Omit<LookupPhase, 'stored_sessions'>> {
  const rnd = prng(seed);
  const pick = () => ids[Math.floor(rnd() * ids.length)]!;
  for (let i = 0; i < warmup; i++) await c.api('GET', `/v1/sessions/${pick()}`);
  const ms: number[] = [];
  let errors = 0;
  for (let i = 0; i < requests; i++) {
    const id = pick();
    const t0 = now();
    const r = await c.api('GET', `/v1/sessions/${id}`);
    const dt = now() - t0;
    if (r.status === 200 && r.body?.id === id) ms.push(dt);
    else errors++;
  }
  const s = latencySummary(ms);
  return { requests, errors, p50_ms: s.p50_ms, p95_ms: s.p95_ms, p99_ms: s.p99_ms, mean_ms: s.mean_ms };
}

/**
 * Stop the coordinator, insert `count` completed sessions copied from `templateId`, ANALYZE,
 * start the coordinator again. Returns the new ids and the insert time.
 */
export async function insertSessions(
  c: BenchCluster,
  templateId: string,
  count: number,
): Promise<{ ids: string[]; seconds: number; total: number }> {
  await c.stopCoordinator();
  const db = await c.openDatabase();
  let seconds: number;
  let total: number;
  try {
    const t0 = now();
    // Every column of the template row, whatever the schema has grown to, except those that
    // must differ per row (id, digest, status, timestamps) or be unique (idempotency key).
    const cols = (
      await db.adminQuery<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns
          WHERE table_name = 'signing_sessions' AND is_generated = 'NEVER' ORDER BY ordinal_position`,
      )
    ).rows;
    const expr = (c: { column_name: string; data_type: string }): string => {
      const n = c.column_name;
      if (n === 'session_id') return `'ses_bench_' || lpad(g::text, 12, '0')`;
      if (n === 'message_hash') return `encode(sha256(convert_to('floe bench ' || g::text, 'UTF8')), 'hex')`;
      if (n === 'status') return `'completed'`;
      if (n === 'idempotency_key' || n === 'idempotency_fingerprint') return 'NULL';
      if (n.endsWith('_at') && c.data_type === 'bigint') return `t.${n} - g`;
      return `t.${n}`;
    };
    const r = await db.adminQuery(
      `INSERT INTO signing_sessions (${cols.map((c) => c.column_name).join(', ')})
       SELECT ${cols.map(expr).join(', ')}
         FROM signing_sessions t CROSS JOIN generate_series(1, $2::int) AS g
        WHERE t.session_id = $1`,
      [templateId, count],
    );
    if (r.rowCount !== count) throw new Error(`inserted ${r.rowCount} of ${count} sessions`);
    await db.adminQuery('ANALYZE signing_sessions');
    seconds = (now() - t0) / 1000;
    total = Number(
      (await db.adminQuery<{ n: string }>('SELECT count(*) AS n FROM signing_sessions')).rows[0]!.n,
    );
  } finally {
    await db.close();
  }
  await c.startCoordinator();
  const ids = Array.from({ length: count }, (_, i) => `ses_bench_${String(i + 1).padStart(12, '0')}`);
  return { ids, seconds: round(seconds, 2), total };
}

export async function runLookupBench(
  c: BenchCluster,
  realIds: readonly string[],
  empty: Omit<LookupPhase, 'stored_sessions'> & { stored_sessions: number },
  o: { rows: number; requests: number; warmup: number },
): Promise<LookupResult> {
  const ins = await insertSessions(c, realIds[0]!, o.rows);
  const all = [...ins.ids, ...realIds];
  const full = await measureLookups(c, all, o.requests, o.warmup, 2);
  return {
    database: c.database,
    empty,
    full: { stored_sessions: ins.total, ...full },
    inserted: o.rows,
    insert_seconds: ins.seconds,
    p50_ratio: round(full.p50_ms / empty.p50_ms, 2),
  };
}
