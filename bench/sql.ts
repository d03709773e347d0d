/**
 * `npm run bench:sql [-- options]`: where the coordinator's database time goes, per signature
 * and per DKG ceremony (a measurement, not a test).
 *
 * A coordinator in this process (so that its database handle can be timed) and three signer
 * processes, as the tests start them (test/helpers/cluster.ts). One client signs
 * sequentially through `POST /v1/sessions` with wait, then through `POST /v1/sessions/batch`
 * (figures per item of a batch), then runs 2-of-3 DKG ceremonies through `POST /v1/keys` with
 * wait, each after a warm-up. Every statement the coordinator runs inside a
 * transaction is timed (wall time from the call to its result; on the Postgres server that
 * includes the round trip), keyed by its text; every transaction too, so that what a transaction
 * costs beyond its statements — opening it as floe_app in its tenant, COMMIT, the queue — shows
 * as its overhead. The database's own count of the time spent in each PL/pgSQL and SQL function
 * (`pg_stat_user_functions` with `track_functions = all`: the triggers of the audit chain, the
 * status trail, the guards) says how much of a statement's time its triggers took. The
 * coordinator runs as the bench's cluster runs it (bench/cluster.ts: rate limits lifted, jobs
 * every second, counted with the rest).
 *
 * The coordinator here runs from the sources through tsx when started that way; the database's
 * time does not depend on it, the process's CPU figure does (it also includes the client's).
 *
 * Options: --database pglite|postgres|URL (pglite; postgres: FLOE_TEST_DATABASE_URL or
 *   postgres://postgres@127.0.0.1:5432/postgres, where a database of its own is created and
 *   dropped)  --signatures N (300)  --batches N (10)  --batch-size B (100)  --ceremonies N (40)
 *   --warmup N (50 signatures, 2 batches, 5 ceremonies)
 *   --top N (25 statements per table)  --json FILE (the figures as JSON)
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { COORDINATOR_DEFAULTS } from '../src/config/coordinator.js';
import { PgBackend } from '../src/coordinator/pg-backend.js';
import type { Db, TransactionOptions, Tx } from '../src/db/connection.js';
import { startCluster } from '../test/helpers/cluster.js';
import { databaseChoice } from './chaos.js';
import { BENCH_COORDINATOR_CONFIG, onServer } from './cluster.js';
import { round } from './stats.js';
import { table } from './table.js';

interface Timing {
  calls: number;
  ms: number;
}

/** Statement and transaction timings of one Db, from the moment it is wrapped. */
export class SqlTimings {
  readonly statements = new Map<string, Timing>();
  readonly transactions: Timing & { statementMs: number } = { calls: 0, ms: 0, statementMs: 0 };

  reset(): void {
    this.statements.clear();
    Object.assign(this.transactions, { calls: 0, ms: 0, statementMs: 0 });
  }

  /**
   * Times every transaction of `db` (and the statements in it) from now on. The other ways into
   * a transaction (`query`, `withAdvisoryLock`) go through `transaction`: each is counted once.
   */
  wrap(db: Db): void {
    const transaction = db.transaction.bind(db);
    const timedTx = (tx: Tx, add: (ms: number) => void): Tx => ({
      tenantId: tx.tenantId,
      query: (async (sql: string, params?: readonly unknown[]) => {
        const t0 = performance.now();
        try {
          return await tx.query(sql, params);
        } finally {
          const ms = performance.now() - t0;
          add(ms);
          const key = sql.replace(/\s+/g, ' ').trim();
          const s = this.statements.get(key) ?? { calls: 0, ms: 0 };
          s.calls++;
          s.ms += ms;
          this.statements.set(key, s);
        }
      }) as Tx['query'],
    });
    const timed = async <T>(run: (add: (ms: number) => void) => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      let inner = 0;
      try {
        return await run((ms) => {
          inner += ms;
        });
      } finally {
        this.transactions.calls++;
        this.transactions.ms += performance.now() - t0;
        this.transactions.statementMs += inner;
      }
    };
    Object.assign(db, {
      transaction: <T>(fn: (tx: Tx) => Promise<T>, opts?: TransactionOptions) =>
        timed((add) => transaction((tx) => fn(timedTx(tx, add)), opts)),
    });
  }
}

interface FunctionRow {
  funcname: string;
  calls: number;
  total_ms: number;
  self_ms: number;
}

/** The database's per-function times (track_functions must be on for the connections measured). */
async function functionTimes(db: Db): Promise<FunctionRow[]> {
  // A backend keeps its counts to itself for up to a second: this one's (PGlite's only one) are
  // flushed now, the Postgres server's other connections' by waiting that second out.
  if (db.kind === 'postgres') await new Promise((r) => setTimeout(r, 1500));
  await db.adminQuery('SELECT pg_stat_force_next_flush()');
  await db.adminQuery('SELECT pg_stat_clear_snapshot()');
  const r = await db.adminQuery<{ funcname: string; calls: string; total: number; self: number }>(
    `SELECT funcname, calls, total_time AS total, self_time AS self FROM pg_stat_user_functions`,
  );
  return r.rows.map((x) => ({
    funcname: x.funcname,
    calls: Number(x.calls),
    total_ms: Number(x.total),
    self_ms: Number(x.self),
  }));
}

/** Per-operation difference of two function snapshots. */
function functionDelta(before: FunctionRow[], after: FunctionRow[], ops: number) {
  const b = new Map(before.map((x) => [x.funcname, x]));
  return after
    .map((a) => {
      const p = b.get(a.funcname);
      return {
        function: a.funcname,
        calls_per_op: round((a.calls - (p?.calls ?? 0)) / ops, 2),
        total_ms_per_op: round((a.total_ms - (p?.total_ms ?? 0)) / ops, 3),
        self_ms_per_op: round((a.self_ms - (p?.self_ms ?? 0)) / ops, 3),
      };
    })
    .filter((x) => x.calls_per_op > 0)
    .sort((x, y) => y.total_ms_per_op - x.total_ms_per_op);
}

export interface SqlProfile {
  operation: string;
  operations: number;
  /** requests made: `operations` / the units of one request (a batch's items) */
  requests: number;
  wall_ms_per_op: number;
  process_cpu_ms_per_op: number;
  transactions_per_op: number;
  transaction_ms_per_op: number;
  statement_ms_per_op: number;
  /** Transactions' time beyond their statements: opening, COMMIT, the queue. */
  transaction_overhead_ms_per_op: number;
  statements_per_op: number;
  statements: { sql: string; calls_per_op: number; ms_per_op: number; ms_per_call: number }[];
  functions: ReturnType<typeof functionDelta>;
}

async function profile(
  name: string,
  db: Db,
  timings: SqlTimings,
  calls: number,
  op: () => Promise<void>,
  /** what one call of `op` counts for: the figures are per unit (a batch's items) */
  units = 1,
): Promise<SqlProfile> {
  const fBefore = await functionTimes(db);
  timings.reset();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await op();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = calls * units;
  const tx = { ...timings.transactions };
  const statements = [...timings.statements].map(([sql, t]) => ({
    sql,
    calls_per_op: round(t.calls / n, 2),
    ms_per_op: round(t.ms / n, 3),
    ms_per_call: round(t.ms / t.calls, 3),
  }));
  statements.sort((a, b) => b.ms_per_op - a.ms_per_op);
  const fAfter = await functionTimes(db);
  return {
    operation: name,
    operations: n,
    requests: calls,
    wall_ms_per_op: round(wall / n, 2),
    process_cpu_ms_per_op: round((cpu.user + cpu.system) / 1000 / n, 2),
    transactions_per_op: round(tx.calls / n, 2),
    transaction_ms_per_op: round(tx.ms / n, 2),
    statement_ms_per_op: round(tx.statementMs / n, 2),
    transaction_overhead_ms_per_op: round((tx.ms - tx.statementMs) / n, 2),
    statements_per_op: round(
      statements.reduce((a, s) => a + s.calls_per_op, 0),
      1,
    ),
    statements,
    functions: functionDelta(fBefore, fAfter, n),
  };
}

function print(p: SqlProfile, top: number): void {
  const many = p.requests === p.operations ? '' : ` (${p.requests} requests of ${p.operations / p.requests})`;
  console.log(`\n### ${p.operation}: ${p.operations}${many} in sequence, one client\n`);
  console.log(
    table(
      [
        'wall ms',
        'process CPU ms',
        'transactions',
        'in transactions ms',
        'statements',
        'statements ms',
        'transaction overhead ms',
      ],
      [
        [
          p.wall_ms_per_op,
          p.process_cpu_ms_per_op,
          p.transactions_per_op,
          p.transaction_ms_per_op,
          p.statements_per_op,
          p.statement_ms_per_op,
          p.transaction_overhead_ms_per_op,
        ],
      ],
    ),
  );
  console.log(`\nStatements (per ${p.operation}; the ${top} that took longest):\n`);
  console.log(
    table(
      ['calls', 'ms', 'ms per call', 'statement'],
      p.statements
        .slice(0, top)
        .map((s) => [
          s.calls_per_op,
          s.ms_per_op,
          s.ms_per_call,
          s.sql.length > 110 ? `${s.sql.slice(0, 107)}…` : s.sql,
        ]),
    ),
  );
  console.log(`\nDatabase functions and triggers (per ${p.operation}; total includes what they call):\n`);
  console.log(
    table(
      ['function', 'calls', 'total ms', 'self ms'],
      p.functions.slice(0, top).map((f) => [f.function, f.calls_per_op, f.total_ms_per_op, f.self_ms_per_op]),
    ),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      database: { type: 'string', default: 'pglite' },
      signatures: { type: 'string', default: '300' },
      batches: { type: 'string', default: '10' },
      'batch-size': { type: 'string', default: '100' },
      ceremonies: { type: 'string', default: '40' },
      warmup: { type: 'string' },
      top: { type: 'string', default: '25' },
      json: { type: 'string' },
    },
  });
  const count = (v: string | undefined, name: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`--${name}: a whole number, not ${v}`);
    return x;
  };
  const signatures = count(values.signatures, 'signatures');
  const ceremonies = count(values.ceremonies, 'ceremonies');
  const batches = count(values.batches, 'batches');
  const batchSize = count(values['batch-size'], 'batch-size');
  const top = count(values.top, 'top');
  const warmup = values.warmup === undefined ? undefined : count(values.warmup, 'warmup');

  // Postgres: a database of its own, whose connections track function times from their start
  // (track_functions is a superuser setting: set on the database, not by the service's role).
  let server: { admin: string; url: string; name: string } | undefined;
  const choice = databaseChoice(values.database);
  if (choice.kind === 'postgres') {
    const name = `floe_sqlprof_${randomBytes(5).toString('hex')}`;
    await onServer(choice.serverUrl, async (c) => {
      await c.query(`CREATE DATABASE ${name}`);
      await c.query(`ALTER DATABASE ${name} SET track_functions = 'all'`);
    });
    const url = new URL(choice.serverUrl);
    url.pathname = `/${name}`;
    server = { admin: choice.serverUrl, url: url.toString(), name };
  }
  const c = await startCluster({
    signers: 3,
    // As the bench's own cluster runs it (bench/cluster.ts): the coordinator's defaults but for
    // the rate limits, lifted, and shorter timeouts and job interval; the test cluster's
    // shortcuts (ordered selection, …) undone.
    env: {
      FLOE_ROUND_TIMEOUT_MS: String(BENCH_COORDINATOR_CONFIG.round_timeout_ms),
      FLOE_RESUME_AFTER_MS: String(BENCH_COORDINATOR_CONFIG.resume_after_ms),
      FLOE_JOB_INTERVAL_MS: String(BENCH_COORDINATOR_CONFIG.job_interval_ms),
      FLOE_RATE_LIMIT_PER_S: String(BENCH_COORDINATOR_CONFIG.rate_limit_per_s),
      FLOE_RATE_LIMIT_BURST: String(BENCH_COORDINATOR_CONFIG.rate_limit_burst),
      FLOE_LATENCY_BUCKET_MS: String(COORDINATOR_DEFAULTS.latency_bucket_ms),
      FLOE_SELECTION: COORDINATOR_DEFAULTS.selection,
      FLOE_SIGNER_STALE_AFTER_MS: String(COORDINATOR_DEFAULTS.signer_stale_after_ms),
      ...(server ? { DATABASE_URL: server.url } : {}),
    },
  });
  try {
    const backend = c.coordinator!.backend;
    if (!(backend instanceof PgBackend)) throw new Error('bench:sql: the coordinator has no SQL backend');
    const db = backend.db;
    if (db.kind === 'pglite') await db.adminQuery(`SET track_functions = 'all'`); // its one connection
    const timings = new SqlTimings();
    timings.wrap(db);
    const ids = await c.registerSigners();
    const key = await c.createKey(2, ids);
    const sign = async () => {
      const r = await c.sign(key.key_id ?? key.id, randomBytes(32).toString('hex'));
      if (r.status >= 300 || r.body.status !== 'completed') {
        throw new Error(`signing: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    };
    const batch = async () => {
      const items = Array.from({ length: batchSize }, () => ({ message: randomBytes(32).toString('hex') }));
      const r = await c.api('POST', '/v1/sessions/batch', {
        key_id: key.key_id ?? key.id,
        items,
        wait: 60_000,
      });
      const done = Array.isArray(r.body?.items)
        ? r.body.items.filter((s: any) => s.status === 'completed')
        : [];
      if (r.status >= 300 || done.length !== batchSize) {
        throw new Error(`batch: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    };
    const dkg = async () => {
      await c.createKey(2, ids);
    };
    const results: SqlProfile[] = [];
    console.log(
      `bench:sql — ${db.kind}${server ? ` (${server.name})` : ''}, coordinator in this process, 3 signer processes, node ${process.version}`,
    );
    if (signatures > 0) {
      for (let i = 0; i < (warmup ?? 50); i++) await sign();
      results.push(await profile('signature', db, timings, signatures, sign));
      print(results.at(-1)!, top);
    }
    if (batches > 0 && batchSize > 0) {
      for (let i = 0; i < (warmup === undefined ? 2 : Math.ceil(warmup / batchSize)); i++) await batch();
      results.push(await profile('batch item', db, timings, batches, batch, batchSize));
      print(results.at(-1)!, top);
    }
    if (ceremonies > 0) {
      for (let i = 0; i < (warmup ?? 5); i++) await dkg();
      results.push(await profile('2-of-3 DKG', db, timings, ceremonies, dkg));
      print(results.at(-1)!, top);
    }
    if (values.json) {
      writeFileSync(
        values.json,
        `${JSON.stringify({ database: db.kind, at: new Date().toISOString(), results }, null, 2)}\n`,
      );
    }
  } finally {
    await c.close();
    if (server)
      await onServer(server.admin, (x) => x.query(`DROP DATABASE IF EXISTS ${server!.name} WITH (FORCE)`));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
