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
    const r = await db.adminQuery(
      `INSERT INTO signing_sessions (session_id, tenant_id, key_id, message_hash, participants, threshold, attempt,
         nonce_commitments, partial_signatures, final_signature, created_by, status, created_at, updated_at,
         nonce_collection_started_at, signing_started_at, completed_at, expires_at)
       SELECT 'ses_bench_' || lpad(g::text, 12, '0'), t.tenant_id, t.key_id,
              encode(sha256(convert_to('floe bench ' || g::text, 'UTF8')), 'hex'),
              t.participants, t.threshold, t.attempt, t.nonce_commitments, t.partial_signatures,
              t.final_signature, t.created_by, 'completed', t.created_at - g, t.updated_at - g,
              t.nonce_collection_started_at - g, t.signing_started_at - g, t.completed_at - g, t.expires_at - g
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
