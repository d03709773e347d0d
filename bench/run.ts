/**
 * `npm run bench [-- options]`: Floe's benchmarks (not tests). Prints Markdown tables and
 * writes bench/results/latest.json plus a dated copy (YYYY-MM-DD.json; a --quick run writes
 * YYYY-MM-DD-quick.json so it never replaces a full run's file).
 *
 *   --quick               about a minute: shorter budgets, one client level
 *   --only a,b            run only these: crypto, scaling, service, dkg, lookup
 *   --clients 1,4,16      concurrent clients of the service benchmark (quick: 4)
 *   --seconds S           seconds per client level (quick: 4, full: 20)
 *   --rows N              sessions inserted for the lookup benchmark (default 100000; quick: 20000)
 *   --postgres URL        Postgres server (default FLOE_BENCH_DATABASE_URL, FLOE_TEST_DATABASE_URL
 *                         or postgres://postgres@127.0.0.1:5432/postgres); skipped when unreachable
 *   --no-postgres         PGlite only
 *   --out DIR             where the results go (default bench/results)
 *   --profile DIR         CPU profiles (.cpuprofile) of the coordinator and signer processes of
 *                         the service runs, written when they stop
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BenchCluster, DEFAULT_POSTGRES_URL, postgresReachable, startBenchCluster } from './cluster.js';
import { type ConfigResult, IMPLS, measureConfig, runCryptoBench } from './crypto.js';
import { type DkgResult, runDkgLoad } from './dkg.js';
import { type LookupResult, measureLookups, runLookupBench } from './lookup.js';
import { machineInfo } from './machine.js';
import { runScalingBench, type ScalingResult } from './scaling.js';
import { type LoadResult, runSigningLoad, signOnce } from './service.js';
import { round } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ALL = ['crypto', 'scaling', 'service', 'dkg', 'lookup'] as const;
type Part = (typeof ALL)[number];

export interface BenchResults {
  version: 1;
  date: string;
  quick: boolean;
  command: string;
  machine: ReturnType<typeof machineInfo>;
  databases: string[];
  crypto?: ConfigResult[];
  scaling?: ScalingResult;
  service?: LoadResult[];
  dkg?: DkgResult[];
  lookup?: LookupResult[];
  notes: string[];
  seconds: number;
  /** 1-minute load average when the run started and ended (other work on the machine skews results). */
  load_average: { start: number; end: number };
}

function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((x) => (x === null || x === undefined ? '—' : String(x))));
  const w = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((x, i) => x.padEnd(w[i]!)).join(' | ')} |`;
  return [line(headers), `| ${w.map((n) => '-'.repeat(n)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

export function renderTables(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [
    `Floe bench ${r.quick ? '(quick) ' : ''}${r.date} — \`${r.command}\` — ${m.cpu_model}, ${m.cores} cores, ` +
      `${m.memory_gib} GiB, node ${m.node}, commit ${m.commit ?? '?'}; load average ${r.load_average.start} → ${r.load_average.end}; ${r.seconds} s`,
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
          'clients',
          'signatures/s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'signatures',
          'errors',
          'service/crypto',
        ],
        r.service.map((s) => [
          s.database,
          s.clients,
          s.throughput_per_s,
          s.p50_ms,
          s.p95_ms,
          s.p99_ms,
          s.signatures,
          s.errors,
          s.service_to_crypto_ratio,
        ]),
      ),
    );
    out.push('\nCPU ms per signature by process, and the coordinator’s mean round latencies (ms):\n');
    out.push(
      table(
        [
          'database',
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
    const errs = r.service.flatMap((s) => s.error_samples.map((e) => `${s.database}/${s.clients}: ${e}`));
    if (errs.length) out.push(`\nErrors seen: ${errs.join('; ')}`);
  }
  if (r.dkg) {
    out.push('\n### DKG ceremonies through the service (POST /v1/keys with wait, one at a time)\n');
    out.push(
      table(
        ['database', 't-of-n', 'ceremonies/s', 'p50 ms', 'p95 ms', 'ceremonies', 'errors'],
        r.dkg.map((d) => [
          d.database,
          `${d.t}-of-${d.n}`,
          d.ceremonies_per_s,
          d.p50_ms,
          d.p95_ms,
          d.ceremonies,
          d.errors,
        ]),
      ),
    );
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
  return out.join('\n');
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
    },
  });
  const quick = values.quick!;
  const parts = new Set<Part>(
    values.only ? (values.only.split(',').map((s) => s.trim()) as Part[]) : [...ALL],
  );
  for (const p of parts) if (!ALL.includes(p)) throw new Error(`--only: unknown part ${p}`);
  const clientLevels = (values.clients ?? (quick ? '4' : '1,4,16')).split(',').map(Number);
  const seconds = Number(values.seconds ?? (quick ? 4 : 20));
  const rows = Number(values.rows ?? (quick ? 20_000 : 100_000));
  const outDir = resolve(values.out ?? join(HERE, 'results'));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const started = Date.now();
  const results: BenchResults = {
    version: 1,
    date: new Date().toISOString(),
    quick,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: machineInfo(),
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
  if (parts.has('crypto')) {
    log('crypto only…');
    results.crypto = runCryptoBench(quick, log);
    cryptoPerS = results.crypto.find((c) => c.t === 2)?.impls.floe?.signings_per_s ?? null;
  }
  if (parts.has('scaling')) {
    log('scaling with t…');
    results.scaling = runScalingBench(quick, log);
  }

  const serviceParts = ['service', 'dkg', 'lookup'].filter((p) => parts.has(p as Part));
  if (serviceParts.length) {
    if (parts.has('service') && cryptoPerS === null) {
      const c = measureConfig(2, 3, ['floe'], { budgetMs: 1500, minRuns: 5, maxRuns: 100, warmupRuns: 2 });
      cryptoPerS = c.impls.floe!.signings_per_s;
      results.notes.push(`crypto-only floe 2-of-3 for the service ratio: ${cryptoPerS} signings/s`);
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
    results.dkg = parts.has('dkg') ? [] : undefined;
    results.lookup = parts.has('lookup') ? [] : undefined;
    for (const db of databases) {
      log(`${db.kind}: starting a cluster…`);
      const signers = parts.has('dkg') ? 5 : 3;
      let c: BenchCluster | undefined;
      try {
        c = await startBenchCluster({
          signers,
          database: db,
          ...(values.profile ? { profileDir: join(values.profile, db.kind) } : {}),
        });
        const ids = await c.registerSigners();
        const key = await c.createKey(2, ids.slice(0, 3));
        // 20 sessions: warm-up, and the "empty database" the lookup benchmark starts from
        const realIds: string[] = [];
        for (let i = 0; i < 20; i++) {
          const r = await signOnce(c, key);
          if (!r.ok) throw new Error(`warm-up signing failed: ${r.error}`);
          realIds.push(r.body.id);
        }
        let empty: Awaited<ReturnType<typeof measureLookups>> | undefined;
        if (parts.has('lookup')) {
          empty = await measureLookups(c, realIds, quick ? 100 : 1000, quick ? 20 : 100, 1);
          log(`  lookup, ${realIds.length} sessions stored: p50 ${empty.p50_ms} ms`);
        }
        if (parts.has('service')) {
          for (const k of clientLevels) {
            const r = await runSigningLoad(c, key, k, seconds, cryptoPerS);
            log(
              `  service, ${k} clients: ${r.throughput_per_s} signatures/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ${r.errors} errors`,
            );
            results.service!.push(r);
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
              quick ? { seconds: 1, min: 2, max: 2 } : { seconds: 20, min: 5, max: 60 },
            );
            log(
              `  dkg ${t}-of-${n}: ${r.ceremonies_per_s} ceremonies/s, p50 ${r.p50_ms} ms, ${r.errors} errors`,
            );
            results.dkg!.push(r);
          }
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
      }
    }
  }

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

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
