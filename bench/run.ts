/**
 * `npm run bench [-- options]`: Floe's benchmarks (not tests). Prints Markdown tables and
 * writes bench/results/latest.json plus a dated copy (YYYY-MM-DD.json; a --quick run writes
 * YYYY-MM-DD-quick.json so it never replaces a full run's file).
 *
 *   --quick               a few minutes: shorter budgets, client levels 1 and 4
 *   --only a,b            run only these: crypto, scaling, service, batch, dkg, lookup
 *   --clients 1,4,16      concurrent clients of the service benchmark (quick: 1,4)
 *   --seconds S           seconds per client level (quick: 4, full: 20)
 *   --coordinators 1,2    coordinator processes on the Postgres database for the service and
 *                         batch runs (default 1,2: every client level with one, then with two;
 *                         PGlite always has one)
 *   --batch-size B        messages per POST /v1/sessions/batch (default 100)
 *   --batch-clients K     concurrent batch clients (default 2)
 *   --runtime build|tsx   how the cluster's processes run (bench/cluster.ts): build (default) a
 *                         fresh tsc build of the sources, as deployed; tsx the sources through
 *                         the tsx loader (about 40 MB more per process)
 *   --node-options "…"    Node/V8 flags for the cluster's processes (e.g. heap sizes; on the command
 *                         line with --runtime build, in NODE_OPTIONS with tsx). The heap limits
 *                         `floe up` gives its processes (src/cluster/node-flags.ts) are added for
 *                         the options not given; `none` runs them with V8's own heap sizing
 *   --env NAME=VALUE      an environment variable of the cluster's processes (repeatable; e.g.
 *                         MALLOC_ARENA_MAX=2): they start with a clean environment otherwise
 *   --rows N              sessions inserted for the lookup benchmark (default 100000; quick: 20000)
 *   --postgres URL        Postgres server (default FLOE_BENCH_DATABASE_URL, FLOE_TEST_DATABASE_URL
 *                         or postgres://postgres@127.0.0.1:5432/postgres); skipped when unreachable
 *   --no-postgres         PGlite only
 *   --out DIR             where the results go (default bench/results)
 *   --profile DIR         CPU profiles (.cpuprofile) of the coordinator and signer processes of
 *                         the service runs, written when they stop
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type BackendName, cryptoBackend } from '../src/crypto/backend.js';
import { type BatchResult, type BatchSkipped, batchUnavailable, runBatchLoad } from './batch.js';
import {
  type BenchCluster,
  buildForBench,
  clusterNodeFlags,
  DEFAULT_POSTGRES_URL,
  parseEnvAssignments,
  postgresReachable,
  type Runtime,
  startBenchCluster,
} from './cluster.js';
import { type ConfigResult, IMPLS, measureConfig, runCryptoBench } from './crypto.js';
import { type DkgResult, type NobleDkgResult, nobleBareDkg, runDkgLoad } from './dkg.js';
import { type LookupResult, measureLookups, runLookupBench } from './lookup.js';
import { machineInfo } from './machine.js';
import { type MemoryBreakdown, readBreakdown } from './memory.js';
import { runScalingBench, type ScalingResult } from './scaling.js';
import { clusterSampler, type LoadResult, rssFigures, runSigningLoad, signOnce } from './service.js';
import { round } from './stats.js';
import { table } from './table.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ALL = ['crypto', 'scaling', 'service', 'batch', 'dkg', 'lookup'] as const;
type Part = (typeof ALL)[number];

/** Memory of one database's cluster: idle after warm-up, and each process's own breakdown at the end. */
export interface MemoryResult {
  database: 'pglite' | 'postgres';
  runtime: Runtime;
  /** VmRSS (MB) after start-up, registration, one DKG and 20 signings, before the load. */
  idle_rss_mb: Record<string, number>;
  /** Peak VmRSS (MB) over every service and batch run of this database. */
  peak_rss_mb: Record<string, number>;
  /** What each process reported of itself at the end of its runs (bench/memory-hook.mjs), MB. */
  breakdown: Record<string, MemoryBreakdown>;
}

export interface Target {
  what: string;
  value: number | null;
  target: string;
  met: boolean | null;
}
export interface BenchResults {
  version: 1;
  date: string;
  quick: boolean;
  command: string;
  machine: ReturnType<typeof machineInfo>;
  /** The crypto backend chosen at start-up (of this process; the cluster's processes report theirs in service_backend). */
  backend: BackendName;
  /** The crypto backend the coordinator reported on /healthz. */
  service_backend?: string;
  /** How the cluster's processes ran (bench/cluster.ts). */
  runtime: Runtime;
  /** Node/V8 flags the cluster's processes ran with (--node-options and the default heap limits); absent: none. */
  node_options?: string;
  /** Environment variables the cluster's processes ran with (--env); absent: none. */
  env?: Record<string, string>;
  databases: string[];
  crypto?: ConfigResult[];
  scaling?: ScalingResult;
  service?: LoadResult[];
  batch?: (BatchResult | BatchSkipped)[];
  dkg?: DkgResult[];
  /** noble's bare in-process DKG (bench/dkg.ts), the reference for the dkg figures. */
  dkg_noble?: NobleDkgResult[];
  lookup?: LookupResult[];
  memory?: MemoryResult[];
  /** The issue's targets, as ratios and figures of this run (not tests). */
  targets?: Target[];
  notes: string[];
  seconds: number;
  /** 1-minute load average when the run started and ended (other work on the machine skews results). */
  load_average: { start: number; end: number };
}

export function renderTables(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [
    `Floe bench ${r.quick ? '(quick) ' : ''}${r.date} — \`${r.command}\` — ${m.cpu_model}, ${m.cores} cores, ` +
      `${m.memory_gib} GiB, node ${m.node}, commit ${m.commit ?? '?'}; load average ${r.load_average.start} → ${r.load_average.end}; ${r.seconds} s; ` +
      `crypto backend ${r.backend}${r.service_backend ? ` (service: ${r.service_backend})` : ''}; cluster runtime ${r.runtime}` +
      (r.node_options ? ` with node flags "${r.node_options}"` : ''),
    ...r.notes.map((n) => `Note: ${n}`),
    '',
  ];
  if (r.crypto) {
    out.push('### Crypto only: one complete t-of-n signing in one process (median ms)\n');
    out.push(
      table(
        ['t-of-n', 'floe', 'noble', 'cmdcode', 'floe/noble', 'floe/cmdcode', 'runs'],
        r.crypto.map((c) => [
          `${c.t}-of-${c.n}`,
          ...IMPLS.map((nm) => (c.impls[nm]?.unsupported ? `unsupported` : c.impls[nm]?.median_ms)),
          c.ratio_floe_noble,
          c.ratio_floe_cmdcode,
          c.impls.floe?.runs,
        ]),
      ),
    );
    const backends = [...new Set(r.crypto.flatMap((c) => Object.keys(c.floe_backends ?? {})))];
    if (backends.length) {
      out.push(`\nFloe on each crypto backend (median ms, and × noble's median of the same runs):\n`);
      out.push(
        table(
          ['t-of-n', ...backends, ...backends.map((b) => `${b}/noble`)],
          r.crypto.map((c) => [
            `${c.t}-of-${c.n}`,
            ...backends.map((b) => c.floe_backends?.[b as BackendName]?.median_ms),
            ...backends.map((b) => c.ratio_backend_noble?.[b as BackendName]),
          ]),
        ),
      );
    }
    const unsupported = r.crypto.flatMap((c) =>
      IMPLS.filter((nm) => c.impls[nm]?.unsupported).map(
        (nm) => `${nm} ${c.t}-of-${c.n}: ${c.impls[nm]!.unsupported}`,
      ),
    );
    if (unsupported.length) out.push(`\nUnsupported: ${unsupported.join('; ')}`);
    out.push('\nPhases (median ms: commits / shares / aggregate / verify):\n');
    out.push(
      table(
        ['t-of-n', ...IMPLS],
        r.crypto.map((c) => [
          `${c.t}-of-${c.n}`,
          ...IMPLS.map((nm) => {
            const p = c.impls[nm];
            if (!p || p.unsupported) return '—';
            const f = p.phases_ms;
            return `${round(f.commit, 1)} / ${round(f.sign, 1)} / ${round(f.aggregate, 1)} / ${round(f.verify, 1)}`;
          }),
        ]),
      ),
    );
  }
  if (r.scaling) {
    out.push('\n### Signing time against t (crypto only, Floe)\n');
    out.push(
      table(
        ['t-of-n', 'median ms', 'one share ms', 'aggregate ms', '× 2-of-3', 'runs'],
        r.scaling.points.map((p) => [
          `${p.t}-of-${p.n}`,
          p.median_ms,
          p.share_ms,
          p.aggregate_ms,
          p.relative,
          p.runs,
        ]),
      ),
    );
    out.push(
      `\nFitted growth: whole signing ∝ t^${r.scaling.exponent}; one share ∝ t^${r.scaling.share_exponent}`,
    );
  }
  if (r.service) {
    out.push(
      '\n### Service: POST /v1/sessions with wait, 2-of-3 DKG key, coordinator + signers as processes\n',
    );
    out.push(
      table(
        [
          'database',
          'coordinators',
          'clients',
          'signatures/s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'signatures',
          'errors',
          'service/floe crypto',
          'service/noble crypto',
        ],
        r.service.map((s) => [
          s.database,
          s.coordinators,
          s.clients,
          s.throughput_per_s,
          s.p50_ms,
          s.p95_ms,
          s.p99_ms,
          s.signatures,
          s.errors,
          s.service_to_crypto_ratio,
          s.service_to_noble_ratio,
        ]),
      ),
    );
    out.push('\nCPU ms per signature by process, and the coordinator’s mean round latencies (ms):\n');
    out.push(
      table(
        [
          'database',
          'coordinators',
          'clients',
          'coordinator',
          'signers (all)',
          'client',
          'postgres',
          'open',
          'sign',
          'aggregate',
        ],
        r.service.map((s) => [
          s.database,
          s.coordinators,
          s.clients,
          s.cpu_ms_per_signature.coordinator,
          s.cpu_ms_per_signature.signers,
          s.cpu_ms_per_signature.client,
          s.cpu_ms_per_signature.postgres,
          s.coordinator_round_ms.open,
          s.coordinator_round_ms.sign,
          s.coordinator_round_ms.aggregate,
        ]),
      ),
    );
    out.push('\nPeak resident memory (MB) of each process during the run:\n');
    out.push(rssTable([...r.service, ...(r.batch ?? []).filter((b): b is BatchResult => 'rss_mb' in b)]));
    const errs = r.service.flatMap((s) => s.error_samples.map((e) => `${s.database}/${s.clients}: ${e}`));
    if (errs.length) out.push(`\nErrors seen: ${errs.join('; ')}`);
  }
  if (r.batch) {
    out.push('\n### Batch: POST /v1/sessions/batch with wait, 2-of-3 DKG key\n');
    const ran = r.batch.filter((b): b is BatchResult => !('skipped' in b));
    if (ran.length) {
      out.push(
        table(
          [
            'database',
            'coordinators',
            'clients',
            'batch size',
            'signatures/s',
            'p50 ms / batch',
            'p99 ms / batch',
            'signatures',
            'errors',
          ],
          ran.map((b) => [
            b.database,
            b.coordinators,
            b.clients,
            b.batch_size,
            b.throughput_per_s,
            b.p50_ms,
            b.p99_ms,
            b.signatures,
            b.errors,
          ]),
        ),
      );
      const errs = ran.flatMap((b) => b.error_samples.map((e) => `${b.database}/${b.clients}: ${e}`));
      if (errs.length) out.push(`\nErrors seen: ${errs.join('; ')}`);
    }
    for (const b of r.batch) if ('skipped' in b) out.push(`Skipped (${b.database}): ${b.skipped}`);
  }
  if (r.dkg) {
    out.push('\n### DKG ceremonies through the service (POST /v1/keys with wait, one at a time)\n');
    out.push(
      table(
        [
          'database',
          't-of-n',
          'ceremonies/s',
          'p50 ms',
          'p95 ms',
          'ceremonies',
          'errors',
          'noble bare /s',
          'service/noble',
        ],
        r.dkg.map((d) => [
          d.database,
          `${d.t}-of-${d.n}`,
          d.ceremonies_per_s,
          d.p50_ms,
          d.p95_ms,
          d.ceremonies,
          d.errors,
          d.noble_bare_ceremonies_per_s,
          d.service_to_noble_ratio,
        ]),
      ),
    );
    if (r.dkg_noble?.length) {
      out.push(
        `\nnoble's bare DKG (round1/2/3 of all n participants in one process): ${r.dkg_noble
          .map((d) => `${d.t}-of-${d.n} ${d.median_ms} ms (${d.ceremonies_per_s}/s, ${d.ceremonies} runs)`)
          .join(', ')}`,
      );
    }
  }
  if (r.lookup) {
    out.push('\n### Session lookup: GET /v1/sessions/:id, one client\n');
    out.push(
      table(
        ['database', 'stored sessions', 'p50 ms', 'p95 ms', 'p99 ms', 'requests', 'errors'],
        r.lookup.flatMap((l) =>
          [l.empty, l.full].map((p) => [
            l.database,
            p.stored_sessions,
            p.p50_ms,
            p.p95_ms,
            p.p99_ms,
            p.requests,
            p.errors,
          ]),
        ),
      ),
    );
    out.push(
      `\nInsert of the rows (SQL, generate_series): ${r.lookup.map((l) => `${l.database} ${l.insert_seconds} s`).join(', ')}`,
    );
  }
  if (r.memory?.length) {
    out.push(`\n### Memory (cluster runtime: ${r.runtime})\n`);
    out.push(
      table(
        ['database', 'process', 'idle MB', 'peak MB', 'heap used/total', 'external', 'wasm', 'other'],
        r.memory.flatMap((m) =>
          Object.keys({ ...m.idle_rss_mb, ...m.peak_rss_mb })
            .filter((p) => !p.startsWith('postgres_backends'))
            .map((p) => {
              const b = m.breakdown[p];
              return [
                m.database,
                p,
                m.idle_rss_mb[p],
                m.peak_rss_mb[p],
                b ? `${b.heap_used} / ${b.heap_total}` : undefined,
                b?.external,
                b?.wasm_memory,
                b?.other,
              ];
            }),
        ),
      ),
    );
    out.push(
      '\n(breakdown: what the process reported of itself at the end; external includes the WebAssembly memory; other = RSS − heap − external: code, native libraries, malloc arenas, threads)',
    );
  }
  if (r.targets?.length) {
    out.push('\n### Targets (from the issue; figures of this run)\n');
    out.push(
      table(
        ['what', 'value', 'target', 'met'],
        r.targets.map((t) => [t.what, t.value, t.target, t.met === null ? '—' : t.met ? 'yes' : 'no']),
      ),
    );
  }
  return out.join('\n');
}

function rssTable(runs: (LoadResult | BatchResult)[]): string {
  const rank = (p: string) => (p.startsWith('coordinator') ? 0 : p.startsWith('signer') ? 1 : 2);
  const procs = [...new Set(runs.flatMap((x) => Object.keys(x.rss_mb)))]
    .filter((p) => p !== 'postgres_backends')
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
  return table(
    ['database', 'run', 'coordinators', 'clients', ...procs],
    runs.map((x) => [
      x.database,
      'batch_size' in x ? `batch ${x.batch_size}` : 'single',
      x.coordinators,
      x.clients,
      ...procs.map((p) => x.rss_mb[p]),
    ]),
  );
}

/** The issue's targets over this run's figures. */
export function computeTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const add = (
    what: string,
    value: number | null | undefined,
    target: string,
    ok: (v: number) => boolean,
  ) => {
    const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
    t.push({ what, value: v, target, met: v === null ? null : ok(v) });
  };
  for (const [tt, n] of [
    [2, 3],
    [18, 24],
  ] as const) {
    const c = r.crypto?.find((x) => x.t === tt && x.n === n);
    if (!c) continue;
    add(`crypto ${tt}-of-${n}: floe-native / noble`, c.ratio_backend_noble?.native, '≤ 0.1', (v) => v <= 0.1);
    add(`crypto ${tt}-of-${n}: floe-wasm / noble`, c.ratio_backend_noble?.wasm, '≤ 0.3', (v) => v <= 0.3);
  }
  for (const db of r.databases) {
    const runs = (r.service ?? []).filter((s) => s.database === db);
    if (!runs.length) continue;
    const best = runs.reduce((a, b) => (b.throughput_per_s > a.throughput_per_s ? b : a));
    add(
      `service ${db}: best signatures/s / noble crypto-only 2-of-3 signings/s (${best.coordinators} coord., ${best.clients} clients)`,
      best.service_to_noble_ratio,
      '≥ 2',
      (v) => v >= 2,
    );
    const one = runs.find((s) => s.clients === 1 && s.coordinators === 1);
    add(`service ${db}: p50 ms, one client`, one?.p50_ms, '≤ 10', (v) => v <= 10);
    const batch = (r.batch ?? []).filter((b): b is BatchResult => b.database === db && !('skipped' in b));
    if (batch.length || (r.batch ?? []).some((b) => b.database === db)) {
      add(
        `batch ${db}: signatures/s`,
        batch.length ? Math.max(...batch.map((b) => b.throughput_per_s)) : null,
        '≥ 1000',
        (v) => v >= 1000,
      );
    }
    const dkg = r.dkg?.find((d) => d.database === db && d.t === 2 && d.n === 3);
    if (dkg)
      add(
        `dkg ${db} 2-of-3: service / noble bare ceremonies/s`,
        dkg.service_to_noble_ratio,
        '≥ 1',
        (v) => v >= 1,
      );
    const mem = r.memory?.find((m) => m.database === db);
    if (mem) {
      const coord = Math.max(
        ...Object.entries(mem.peak_rss_mb)
          .filter(([k]) => k.startsWith('coordinator'))
          .map(([, v]) => v),
      );
      const limit = db === 'pglite' ? 300 : 150;
      add(`RSS ${db}: coordinator peak MB (${r.runtime})`, coord, `≤ ${limit}`, (v) => v <= limit);
      const signers = Object.entries(mem.peak_rss_mb)
        .filter(([k]) => k.startsWith('signer'))
        .map(([, v]) => v);
      if (signers.length)
        add(
          `RSS ${db}: largest signer peak MB (${r.runtime})`,
          Math.max(...signers),
          '≤ 120',
          (v) => v <= 120,
        );
    }
  }
  return t;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      clients: { type: 'string' },
      seconds: { type: 'string' },
      rows: { type: 'string' },
      postgres: { type: 'string' },
      'no-postgres': { type: 'boolean', default: false },
      out: { type: 'string' },
      profile: { type: 'string' },
      coordinators: { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-clients': { type: 'string' },
      runtime: { type: 'string' },
      'node-options': { type: 'string' },
      env: { type: 'string', multiple: true },
    },
  });
  const processEnv = parseEnvAssignments(values.env ?? []);
  const quick = values.quick!;
  const parts = new Set<Part>(
    values.only ? (values.only.split(',').map((s) => s.trim()) as Part[]) : [...ALL],
  );
  for (const p of parts) if (!ALL.includes(p)) throw new Error(`--only: unknown part ${p}`);
  const clientLevels = (values.clients ?? (quick ? '1,4' : '1,4,16')).split(',').map(Number);
  const seconds = Number(values.seconds ?? (quick ? 4 : 20));
  const rows = Number(values.rows ?? (quick ? 20_000 : 100_000));
  const coordinatorLevels = (values.coordinators ?? '1,2').split(',').map(Number);
  const batchSize = Number(values['batch-size'] ?? 100);
  const batchClients = Number(values['batch-clients'] ?? 2);
  const runtime = (values.runtime ?? 'build') as Runtime;
  if (runtime !== 'build' && runtime !== 'tsx') throw new Error('--runtime: build or tsx');
  const outDir = resolve(values.out ?? join(HERE, 'results'));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const started = Date.now();
  const results: BenchResults = {
    version: 1,
    date: new Date().toISOString(),
    quick,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: machineInfo(),
    backend: cryptoBackend().name,
    runtime,
    ...(clusterNodeFlags(values['node-options']).length
      ? { node_options: clusterNodeFlags(values['node-options']).join(' ') }
      : {}),
    ...(Object.keys(processEnv).length ? { env: processEnv } : {}),
    databases: [],
    notes: [],
    seconds: 0,
    load_average: { start: round(loadavg()[0]!, 2), end: 0 },
  };
  log(
    `floe bench (${quick ? 'quick' : 'full'}) on ${results.machine.cpu_model}, ${results.machine.cores} cores, node ${results.machine.node}`,
  );

  if (results.load_average.start > 1.5) {
    const n = `the machine was busy when the run started (load average ${results.load_average.start} on ${results.machine.cores} cores): figures are skewed`;
    results.notes.push(n);
    log(`warning: ${n}`);
  }

  let cryptoPerS: number | null = null;
  let noblePerS: number | null = null;
  if (parts.has('crypto')) {
    log('crypto only…');
    results.crypto = runCryptoBench(quick, log);
    const c23 = results.crypto.find((c) => c.t === 2);
    cryptoPerS = c23?.impls.floe?.signings_per_s ?? null;
    noblePerS = c23?.impls.noble?.signings_per_s ?? null;
  }
  if (parts.has('scaling')) {
    log('scaling with t…');
    results.scaling = runScalingBench(quick, log);
  }

  const serviceParts = ['service', 'batch', 'dkg', 'lookup'].filter((p) => parts.has(p as Part));
  if (serviceParts.length) {
    if (runtime === 'build') {
      log('building the sources for the cluster (tsc -p tsconfig.build.json, then scripts/bundle.mjs)…');
      const b = buildForBench();
      if (b.errors) {
        results.notes.push(
          `the work tree had type errors when the bench built it (the build was emitted anyway): ${b.errors.split('\n')[0]}`,
        );
      }
    }
    if (parts.has('service') && (cryptoPerS === null || noblePerS === null)) {
      const c = measureConfig(2, 3, ['floe', 'noble'], {
        budgetMs: 1500,
        minRuns: 5,
        maxRuns: 100,
        warmupRuns: 2,
      });
      cryptoPerS = c.impls.floe!.signings_per_s;
      noblePerS = c.impls.noble!.signings_per_s;
      results.notes.push(
        `crypto-only 2-of-3 for the service ratios: floe (${c.backend}) ${cryptoPerS}, noble ${noblePerS} signings/s`,
      );
    }
    if (parts.has('dkg')) {
      const budget = quick ? { budgetMs: 1500, minRuns: 5 } : { budgetMs: 8000, minRuns: 20 };
      results.dkg_noble = [nobleBareDkg(2, 3, budget), nobleBareDkg(3, 5, budget)];
      log(
        `  noble bare DKG: ${results.dkg_noble.map((d) => `${d.t}-of-${d.n} ${d.ceremonies_per_s}/s`).join(', ')}`,
      );
    }
    const databases: ({ kind: 'pglite' } | { kind: 'postgres'; serverUrl: string })[] = [{ kind: 'pglite' }];
    if (!values['no-postgres']) {
      const pgUrl =
        values.postgres ??
        process.env.FLOE_BENCH_DATABASE_URL ??
        process.env.FLOE_TEST_DATABASE_URL ??
        DEFAULT_POSTGRES_URL;
      const server = new URL(pgUrl);
      server.pathname = '/postgres';
      if (await postgresReachable(server.toString()))
        databases.push({ kind: 'postgres', serverUrl: server.toString() });
      else results.notes.push(`Postgres at ${server.host} not reachable: PGlite only`);
    }
    results.databases = databases.map((d) => d.kind);
    results.service = parts.has('service') ? [] : undefined;
    results.batch = parts.has('batch') ? [] : undefined;
    results.dkg = parts.has('dkg') ? [] : undefined;
    results.lookup = parts.has('lookup') ? [] : undefined;
    results.memory = [];
    for (const db of databases) {
      log(`${db.kind}: starting a cluster…`);
      const signers = parts.has('dkg') ? 5 : 3;
      const memoryDir = mkdtempSync(join(tmpdir(), 'floe-bench-memory-'));
      let c: BenchCluster | undefined;
      try {
        c = await startBenchCluster({
          signers,
          database: db,
          runtime,
          memoryDir,
          ...(values['node-options'] ? { nodeOptions: values['node-options'] } : {}),
          ...(Object.keys(processEnv).length ? { processEnv } : {}),
          ...(values.profile ? { profileDir: join(values.profile, db.kind) } : {}),
        });
        const cluster = c;
        const ids = await c.registerSigners();
        const key = await c.createKey(2, ids.slice(0, 3));
        const health = await c.api('GET', '/healthz');
        if (typeof health.body?.crypto_backend === 'string')
          results.service_backend = health.body.crypto_backend;
        // 20 sessions: warm-up, and the "empty database" the lookup benchmark starts from
        const realIds: string[] = [];
        for (let i = 0; i < 20; i++) {
          const r = await signOnce(c, key);
          if (!r.ok) throw new Error(`warm-up signing failed: ${r.error}`);
          realIds.push(r.body.id);
        }
        const idle = clusterSampler(c);
        await idle.sample();
        const memory: MemoryResult = {
          database: db.kind,
          runtime,
          idle_rss_mb: rssFigures(await idle.stop()),
          peak_rss_mb: {},
          breakdown: {},
        };
        results.memory.push(memory);
        const notePeak = (rss: Record<string, number>) => {
          for (const [k, v] of Object.entries(rss))
            memory.peak_rss_mb[k] = Math.max(memory.peak_rss_mb[k] ?? 0, v);
        };
        let empty: Awaited<ReturnType<typeof measureLookups>> | undefined;
        if (parts.has('lookup')) {
          empty = await measureLookups(c, realIds, quick ? 100 : 1000, quick ? 20 : 100, 1);
          log(`  lookup, ${realIds.length} sessions stored: p50 ${empty.p50_ms} ms`);
        }
        // PGlite is one process: one coordinator. Postgres: each level of --coordinators.
        const levels = db.kind === 'postgres' ? coordinatorLevels : [1];
        let batchMissing: string | undefined;
        if (parts.has('batch')) {
          batchMissing = await batchUnavailable(c, key);
          if (batchMissing) {
            results.batch!.push({ database: db.kind, skipped: batchMissing });
            log(`  batch: ${batchMissing}`);
          }
        }
        for (const k of levels) {
          while (cluster.urls.length < k) await cluster.addCoordinator();
          if (parts.has('service')) {
            for (const n of clientLevels) {
              const r = await runSigningLoad(c, key, n, seconds, cryptoPerS, {
                coordinators: k,
                nobleSignaturesPerS: noblePerS,
              });
              notePeak(r.rss_mb);
              log(
                `  service, ${k} coordinator(s), ${n} clients: ${r.throughput_per_s} signatures/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ${r.errors} errors; RSS ${fmtRss(r.rss_mb)}`,
              );
              results.service!.push(r);
            }
          }
          if (parts.has('batch') && !batchMissing) {
            const r = await runBatchLoad(c, key, {
              clients: batchClients,
              batchSize,
              seconds: Math.max(seconds, 4),
              coordinators: k,
            });
            notePeak(r.rss_mb);
            log(
              `  batch, ${k} coordinator(s), ${batchClients} clients × ${batchSize}: ${r.throughput_per_s} signatures/s, p50 ${r.p50_ms} ms per batch, ${r.errors} errors; RSS ${fmtRss(r.rss_mb)}`,
            );
            results.batch!.push(r);
          }
        }
        if (parts.has('dkg')) {
          for (const [t, n] of [
            [2, 3],
            [3, 5],
          ] as const) {
            const r = await runDkgLoad(
              c,
              ids,
              t,
              n,
              quick
                ? { seconds: 2, min: 5, max: 40, warmup: 1 }
                : { seconds: 20, min: 5, max: 60, warmup: 1 },
            );
            const noble = results.dkg_noble?.find((d) => d.t === t && d.n === n);
            if (noble) {
              r.noble_bare_ceremonies_per_s = noble.ceremonies_per_s;
              r.service_to_noble_ratio = round(r.ceremonies_per_s / noble.ceremonies_per_s, 3);
            }
            log(
              `  dkg ${t}-of-${n}: ${r.ceremonies_per_s} ceremonies/s (noble bare ${noble?.ceremonies_per_s}/s), p50 ${r.p50_ms} ms, ${r.errors} errors`,
            );
            results.dkg!.push(r);
          }
        }
        // what each process says of its own memory, after the load
        await new Promise((r) => setTimeout(r, 2500));
        const labels = [
          ...c.coordinators.map(
            (x, i) => [i === 0 ? 'coordinator' : `coordinator_${i + 1}`, x?.proc.pid] as const,
          ),
          ...c.signers.map((x, i) => [`signer_${i + 1}`, x.proc.pid] as const),
        ];
        for (const [label, pid] of labels) {
          const b = readBreakdown(memoryDir, pid);
          if (b) memory.breakdown[label] = b;
        }
        if (parts.has('lookup') && empty) {
          log(`  inserting ${rows} sessions…`);
          const r = await runLookupBench(
            c,
            realIds,
            { stored_sessions: realIds.length, ...empty },
            { rows, requests: quick ? 100 : 1000, warmup: quick ? 20 : 100 },
          );
          log(
            `  lookup, ${r.full.stored_sessions} sessions stored: p50 ${r.full.p50_ms} ms (insert ${r.insert_seconds} s)`,
          );
          results.lookup!.push(r);
        }
      } finally {
        if (values.profile) {
          await c?.stopCoordinator();
          await c?.stopSigners();
        }
        await c?.close();
        rmSync(memoryDir, { recursive: true, force: true });
      }
    }
  }

  results.targets = computeTargets(results);
  results.seconds = Math.round((Date.now() - started) / 1000);
  results.load_average.end = round(loadavg()[0]!, 2);
  process.stdout.write(`${renderTables(results)}\n`);
  mkdirSync(outDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 1)}\n`;
  const day = results.date.slice(0, 10);
  writeFileSync(join(outDir, 'latest.json'), json);
  writeFileSync(join(outDir, `${day}${quick ? '-quick' : ''}.json`), json);
  log(`wrote ${join(outDir, 'latest.json')} and ${day}${quick ? '-quick' : ''}.json (${results.seconds} s)`);
  return 0;
}

function fmtRss(rss: Record<string, number>): string {
  return Object.entries(rss)
    .filter(([k]) => k !== 'postgres_backends')
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

// Only when run as the program (renderTables and computeTargets can be imported).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
