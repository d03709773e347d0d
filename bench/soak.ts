/**
 * `npm run soak -- --minutes N [--rate R] [--postgres [URL]]`: a memory soak (a tool, not a test).
 *
 * A cluster (coordinator and three signers, each a process; PGlite, or a fresh database on a
 * Postgres server with --postgres) gets a 2-of-3 DKG key. Unless --rate is given, a short ramp
 * finds the peak: closed-loop clients at 1, 2, 4, 8 and 16 for --ramp-seconds each (default 5;
 * it stops after two levels in a row that are no better), peak = the best signatures/s. Then
 * it signs open-loop at 80 % of that rate (POST /v1/sessions with wait; every signature
 * verified) for N minutes, and samples the resident memory of every process every 10 s (bench/memory.ts: VmRSS; on Postgres also the private memory of the
 * database's server backends).
 *
 * Warm-up: the first 20 % of the run, at least 60 s and at most 180 s (the first minutes after
 * the start: V8's heap, PGlite's buffers, the JIT's code and the signers' envelope replay caches,
 * which keep every nonce for two minutes, settle). The samples after the warm-up are split in
 * thirds; a process's baseline is its highest RSS in the first third, its end value its highest
 * in the last third. RSS follows the garbage collector's saw-tooth (±15–20 % over a minute or
 * two for the coordinator): single samples, or means of short windows, compare a low tooth
 * with a high one. The tops of the teeth vary too (V8 lets the heap grow further before some
 * full collections than others): the report also shows where each process's memory sat, from
 * its own reports (ProcessInside), to tell a taller tooth from memory that stays. The soak
 * fails (exit 1) when any process's end value is more than 10 % above its baseline, or when
 * any request fails. Windows shorter than a few GC cycles
 * (runs under about 5 minutes) tell little either way: the check is meant for 10 minutes or
 * more. On Postgres each server backend alive in both thirds is checked on its own private
 * memory, and the one that grew most is reported; the largest backend of each sample and the
 * sum over backends are printed, not checked: they follow the pool's connections, which come
 * and go (in one run at 35/s, 22 backends in eight minutes, about five at a time; in another,
 * "the largest backend" went 6.4 → 6.9 → 6.5 → 7.5 MB in steps, +17 %, while the coordinator
 * and the signers stayed within ±1.3 %).
 *
 * Options: --minutes N (10)  --rate R (signatures/s; skips the ramp)  --postgres [URL]
 *   --ramp-seconds S (5)  --max-in-flight K (64)  --interval S (10, seconds between samples)
 *   --runtime build|tsx (build: a fresh compile of the sources, as deployed; bench/cluster.ts)
 *   --out DIR (bench/results: soak-DATE-DATABASE.json and soak-latest.json, with every sample)
 *   --threshold P (10, percent growth allowed)  --node-options "…" (Node/V8 flags of the cluster's
 *   processes, besides the heap limits `floe up` gives them; `none`: V8's own heap sizing)
 *   --env NAME=VALUE (repeatable: an environment variable of the cluster's processes, e.g.
 *   MALLOC_ARENA_MAX=2; they start with a clean environment otherwise)
 *
 * The LAST line printed is the summary:
 *   soak: minutes=N rate=R achieved=A signatures=S errors=E max_growth=G% (process) result=ok|FAIL
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BenchCluster,
  clusterNodeFlags,
  DEFAULT_POSTGRES_URL,
  parseEnvAssignments,
  postgresReachable,
  type Runtime,
  startBenchCluster,
} from './cluster.js';
import { machineInfo } from './machine.js';
import { type MemoryBreakdown, readBreakdown, readReports, type SampleRow } from './memory.js';
import { clusterProcesses, clusterSampler, runSigningLoad, signOnce } from './service.js';
import { mean, now, round, sleep } from './stats.js';
import { table } from './table.js';

export interface SoakOptions {
  minutes: number;
  rate?: number;
  postgres?: string;
  rampSeconds: number;
  maxInFlight: number;
  intervalS: number;
  runtime: Runtime;
  thresholdPct: number;
  nodeOptions?: string;
  /** Environment variables for the cluster's processes (--env NAME=VALUE; bench/cluster.ts). */
  processEnv?: Record<string, string>;
  log: (s: string) => void;
}

export interface ProcessGrowth {
  process: string;
  /** Highest RSS in the first third of the samples after the warm-up (MB). */
  baseline_mb: number;
  /** Highest RSS in the last third (MB). */
  end_mb: number;
  peak_mb: number;
  /** end_mb / baseline_mb − 1, in %: what is checked. */
  growth_pct: number;
  /** The same with the means of the thirds (for information). */
  mean_growth_pct: number;
  checked: boolean;
}

/**
 * Where a process's memory sat in the first and the last third after the warm-up, from its own
 * reports (bench/memory-hook.mjs, every 2 s; MB): the lowest V8 heap in use (an upper bound on
 * what survives the collections), the highest V8 heap committed, and the highest of the rest
 * (RSS less the V8 heap and external memory: native code and libraries, malloc, and on PGlite
 * the pages of its WebAssembly memory that Postgres has touched beyond the byte length counted
 * in external memory). A growth that is a garbage collector's taller tooth shows in the second
 * column only; memory that stays shows in the first or the third.
 */
export interface ProcessInside {
  process: string;
  heap_used_min_mb: [number, number];
  heap_total_max_mb: [number, number];
  other_max_mb: [number, number];
}

export interface SoakReport {
  database: 'pglite' | 'postgres';
  runtime: Runtime;
  minutes: number;
  peak_per_s: number | null;
  rate_per_s: number;
  achieved_per_s: number;
  signatures: number;
  errors: number;
  error_samples: string[];
  /** Requests not started on time because --max-in-flight were already outstanding. */
  late: number;
  warmup_s: number;
  samples: SampleRow[];
  growth: ProcessGrowth[];
  inside: ProcessInside[];
  ok: boolean;
}

type Key = { id: string; x_only_public_key: string };

/** Closed-loop ramp: the best signatures/s over a few client levels. */
async function findPeak(
  c: BenchCluster,
  key: Key,
  seconds: number,
  log: (s: string) => void,
): Promise<number> {
  let best = 0;
  let worse = 0;
  for (const clients of [1, 2, 4, 8, 16]) {
    const r = await runSigningLoad(c, key, clients, seconds, null);
    log(
      `  ramp: ${clients} clients → ${r.throughput_per_s} signatures/s (p50 ${r.p50_ms} ms, ${r.errors} errors)`,
    );
    if (r.errors > 0) throw new Error(`ramp: ${r.errors} errors (${r.error_samples.join('; ')})`);
    if (r.throughput_per_s > best) {
      best = r.throughput_per_s;
      worse = 0;
    } else if (++worse === 2) break; // past the peak: two levels in a row no better
  }
  return best;
}

/**
 * Growth of each process after the warm-up: the highest RSS in the last third of the samples
 * over the highest in the first third. The Postgres server's backends come and go with the
 * coordinator's pool (an idle connection closes after 10 s): each backend alive in both thirds
 * is judged on its own, and the one that grew most is the checked row; the largest backend of
 * each sample, whichever it is, and the sum are shown but not checked (a new connection that
 * touched more than the ones before is not a process that grew).
 */
export function growthOf(
  rows: readonly SampleRow[],
  warmupS: number,
  thresholdPct: number,
): { growth: ProcessGrowth[]; ok: boolean } {
  const after = rows.filter((r) => r.at_s > warmupS);
  const growth: ProcessGrowth[] = [];
  if (after.length < 3) return { growth, ok: true };
  const third = Math.floor(after.length / 3);
  const firstEnd = after[third - 1]!.at_s;
  const lastStart = after[after.length - third]!.at_s;
  const series = new Map<string, { at: number; v: number }[]>();
  const push = (k: string, at: number, v: number | undefined) => {
    if (v === undefined) return;
    const s = series.get(k) ?? [];
    s.push({ at, v });
    series.set(k, s);
  };
  for (const r of after) {
    for (const [k, v] of Object.entries(r.rss)) push(k, r.at_s, v);
    push('postgres_backend_max', r.at_s, r.postgres_backend_max_mb);
    push('postgres_backends_private', r.at_s, r.postgres_private_mb);
    for (const [pid, v] of Object.entries(r.postgres_backends_mb ?? {}))
      push(`postgres_backend ${pid}`, r.at_s, v);
  }
  let worstBackend: ProcessGrowth | undefined;
  for (const [k, s] of series) {
    const first = s.filter((x) => x.at <= firstEnd).map((x) => x.v);
    const last = s.filter((x) => x.at >= lastStart).map((x) => x.v);
    if (first.length === 0 || last.length === 0) continue;
    const baseline = Math.max(...first);
    const end = Math.max(...last);
    const g: ProcessGrowth = {
      process: k,
      baseline_mb: round(baseline, 1),
      end_mb: round(end, 1),
      peak_mb: round(Math.max(...s.map((x) => x.v)), 1),
      growth_pct: round((end / baseline - 1) * 100, 1),
      mean_growth_pct: round((mean(last) / mean(first) - 1) * 100, 1),
      checked: !k.startsWith('postgres_'),
    };
    if (k.startsWith('postgres_backend ')) {
      if (!worstBackend || g.growth_pct > worstBackend.growth_pct) worstBackend = { ...g, checked: true };
    } else {
      growth.push(g);
    }
  }
  if (worstBackend) growth.push(worstBackend);
  const ok = growth.every((g) => !g.checked || g.growth_pct <= thresholdPct);
  return { growth, ok };
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log;
  const database = o.postgres
    ? ({ kind: 'postgres', serverUrl: o.postgres } as const)
    : ({ kind: 'pglite' } as const);
  const memoryDir = mkdtempSync(join(tmpdir(), 'floe-soak-memory-'));
  const c = await startBenchCluster({
    signers: 3,
    database,
    runtime: o.runtime,
    memoryDir,
    ...(o.nodeOptions ? { nodeOptions: o.nodeOptions } : {}),
    ...(o.processEnv ? { processEnv: o.processEnv } : {}),
  });
  try {
    const ids = await c.registerSigners();
    const key = await c.createKey(2, ids);
    for (let i = 0; i < 20; i++) {
      const r = await signOnce(c, key);
      if (!r.ok) throw new Error(`warm-up signing failed: ${r.error}`);
    }
    let peak: number | null = null;
    let rate: number;
    if (o.rate !== undefined) rate = o.rate;
    else {
      log(`finding the peak (${o.rampSeconds} s per level)…`);
      peak = await findPeak(c, key, o.rampSeconds, log);
      rate = round(peak * 0.8, 2);
    }
    const seconds = o.minutes * 60;
    const warmupS = Math.min(180, Math.max(60, seconds * 0.2));
    log(
      `soak: ${o.minutes} min at ${rate} signatures/s${peak ? ` (80 % of the peak ${peak}/s)` : ''} on ${database.kind} (${o.runtime}); warm-up ${warmupS} s; RSS every ${o.intervalS} s`,
    );

    // one line per sample, as it comes (MB)
    let labels: string[] = [];
    const sampler = clusterSampler(c, 1, o.intervalS * 1000, (row, i) => {
      if (i === 0) {
        labels = Object.keys(row.rss);
        const pgCols = c.serverUrl ? ['pg backend max', 'pg backends sum'] : [];
        log(`  ${['t (s)', ...labels, ...pgCols].join('\t')}`);
      }
      const pgVals = c.serverUrl ? [row.postgres_backend_max_mb ?? '—', row.postgres_private_mb ?? '—'] : [];
      log(`  ${[row.at_s, ...labels.map((k) => row.rss[k] ?? '—'), ...pgVals].join('\t')}`);
    });
    const samplerT0 = Date.now();
    sampler.start();

    // Open loop: start request i at t0 + i/rate, unless max-in-flight are outstanding (then it is late).
    const errors: string[] = [];
    let signatures = 0;
    let late = 0;
    let inFlight = 0;
    let started = 0;
    const pending = new Set<Promise<void>>();
    const t0 = now();
    const end = t0 + seconds * 1000;
    while (now() < end) {
      const due = Math.floor(((now() - t0) / 1000) * rate);
      while (started < due) {
        started++;
        if (inFlight >= o.maxInFlight) {
          late++;
          continue;
        }
        inFlight++;
        const p = signOnce(c, key).then((r) => {
          inFlight--;
          if (r.ok) signatures++;
          else errors.push(r.error!);
        });
        pending.add(p);
        p.finally(() => pending.delete(p));
      }
      await sleep(Math.max(1, Math.min(20, 1000 / rate / 2)));
    }
    await Promise.all(pending);
    const elapsed = (now() - t0) / 1000;
    await sampler.stop();
    const { growth, ok } = growthOf(sampler.rows, warmupS, o.thresholdPct);
    const endS = sampler.rows.at(-1)?.at_s ?? 0;
    const inside = clusterProcesses(c, 1)()
      .map((p) => insideOf(p.label, readReports(memoryDir, p.pid), samplerT0, warmupS, endS))
      .filter((x): x is ProcessInside => x !== undefined);
    const b = readBreakdown(memoryDir, c.coordinator?.proc.pid);
    if (b)
      log(
        `coordinator's own view at the end: rss ${b.rss} MB, heap ${b.heap_used}/${b.heap_total}, external ${b.external} (WebAssembly ${b.wasm_memory}), array buffers ${b.array_buffers}`,
      );
    return {
      database: database.kind,
      runtime: o.runtime,
      minutes: o.minutes,
      peak_per_s: peak,
      rate_per_s: rate,
      achieved_per_s: round(signatures / elapsed, 2),
      signatures,
      errors: errors.length,
      error_samples: [...new Set(errors)].slice(0, 5),
      late,
      warmup_s: warmupS,
      samples: sampler.rows,
      growth,
      inside,
      ok: ok && errors.length === 0,
    };
  } finally {
    await c.close();
    rmSync(memoryDir, { recursive: true, force: true });
  }
}

function renderGrowth(r: SoakReport, thresholdPct: number): string {
  const rows = r.growth.map((g) => [
    g.process,
    g.baseline_mb,
    g.end_mb,
    g.peak_mb,
    `${g.growth_pct} %`,
    `${g.mean_growth_pct} %`,
    g.checked ? (g.growth_pct <= thresholdPct ? 'ok' : 'FAIL') : 'not checked',
  ]);
  const headers = [
    'process',
    'first third, max MB',
    'last third, max MB',
    'peak MB (after warm-up)',
    'growth',
    'growth of the means',
    '',
  ];
  return table(headers, rows);
}

/** The thirds of a process's own reports after the warm-up (see ProcessInside); t0 is the sampler's start (epoch ms). */
export function insideOf(
  label: string,
  reports: readonly MemoryBreakdown[],
  t0: number,
  warmupS: number,
  endS: number,
): ProcessInside | undefined {
  const after = reports
    .map((r) => ({ r, at: (Date.parse(r.at) - t0) / 1000 }))
    .filter((x) => x.at > warmupS && x.at <= endS);
  const third = (endS - warmupS) / 3;
  const first = after.filter((x) => x.at <= warmupS + third).map((x) => x.r);
  const last = after.filter((x) => x.at > endS - third).map((x) => x.r);
  if (!first.length || !last.length) return undefined;
  const pair = (f: (xs: number[]) => number, k: keyof MemoryBreakdown): [number, number] => [
    round(f(first.map((x) => Number(x[k]))), 1),
    round(f(last.map((x) => Number(x[k]))), 1),
  ];
  const min = (xs: number[]) => Math.min(...xs);
  const max = (xs: number[]) => Math.max(...xs);
  return {
    process: label,
    heap_used_min_mb: pair(min, 'heap_used'),
    heap_total_max_mb: pair(max, 'heap_total'),
    other_max_mb: pair(max, 'other'),
  };
}

function renderInside(r: SoakReport): string {
  const arrow = (x: [number, number]) => `${x[0]} → ${x[1]}`;
  const rows = r.inside.map((x) => [
    x.process,
    arrow(x.heap_used_min_mb),
    arrow(x.heap_total_max_mb),
    arrow(x.other_max_mb),
  ]);
  const headers = [
    'process',
    'V8 heap in use, lowest',
    'V8 heap committed, highest',
    'rest (RSS − V8 heap − external), highest',
  ];
  return table(headers, rows);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string' },
      postgres: { type: 'string' },
      'ramp-seconds': { type: 'string', default: '5' },
      'max-in-flight': { type: 'string', default: '64' },
      interval: { type: 'string', default: '10' },
      runtime: { type: 'string', default: 'build' },
      threshold: { type: 'string', default: '10' },
      'node-options': { type: 'string' },
      env: { type: 'string', multiple: true },
      out: { type: 'string' },
    },
    // `--postgres` alone means the default server
    args: process.argv
      .slice(2)
      .flatMap((a, i, all) =>
        a === '--postgres' && (all[i + 1] === undefined || all[i + 1]!.startsWith('--'))
          ? ['--postgres', process.env.FLOE_BENCH_DATABASE_URL ?? DEFAULT_POSTGRES_URL]
          : [a],
      ),
  });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  let postgres: string | undefined;
  if (values.postgres) {
    const u = new URL(values.postgres);
    u.pathname = '/postgres';
    postgres = u.toString();
    if (!(await postgresReachable(postgres))) throw new Error(`Postgres at ${u.host} is not reachable`);
  }
  const runtime = values.runtime as Runtime;
  if (runtime !== 'build' && runtime !== 'tsx') throw new Error('--runtime: build or tsx');
  const thresholdPct = Number(values.threshold);
  const processEnv = parseEnvAssignments(values.env ?? []);
  const r = await runSoak({
    minutes: Number(values.minutes),
    ...(values.rate ? { rate: Number(values.rate) } : {}),
    ...(postgres ? { postgres } : {}),
    rampSeconds: Number(values['ramp-seconds']),
    maxInFlight: Number(values['max-in-flight']),
    intervalS: Number(values.interval),
    runtime,
    thresholdPct,
    ...(values['node-options'] ? { nodeOptions: values['node-options'] } : {}),
    ...(Object.keys(processEnv).length ? { processEnv } : {}),
    log,
  });
  process.stdout.write(`\nRSS growth after the warm-up (${r.warmup_s} s), ${r.database}, ${r.runtime}:\n\n`);
  process.stdout.write(`${renderGrowth(r, thresholdPct)}\n\n`);
  if (r.inside.length)
    process.stdout.write(
      `Inside each process, first third → last third after the warm-up (its own reports, MB):\n\n${renderInside(r)}\n\n`,
    );
  const outDir = resolve(values.out ?? join(dirname(fileURLToPath(import.meta.url)), 'results'));
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `soak-${new Date().toISOString().slice(0, 10)}-${r.database}.json`);
  const json = `${JSON.stringify({ date: new Date().toISOString(), command: `npm run soak -- ${process.argv.slice(2).join(' ')}`, machine: machineInfo(), node_options: clusterNodeFlags(values['node-options']).join(' ') || 'none', ...(Object.keys(processEnv).length ? { env: processEnv } : {}), threshold_pct: thresholdPct, ...r }, null, 1)}\n`;
  writeFileSync(file, json);
  writeFileSync(join(outDir, 'soak-latest.json'), json);
  process.stderr.write(`wrote ${file} and soak-latest.json\n`);
  if (r.errors) process.stdout.write(`Errors: ${r.error_samples.join('; ')}\n`);
  if (r.late) process.stdout.write(`Late: ${r.late} requests not started on time (max in flight reached)\n`);
  const worst = r.growth.filter((g) => g.checked).sort((a, b) => b.growth_pct - a.growth_pct)[0];
  process.stdout.write(
    `soak: minutes=${r.minutes} rate=${r.rate_per_s} achieved=${r.achieved_per_s} signatures=${r.signatures} errors=${r.errors} ` +
      `max_growth=${worst ? `${worst.growth_pct}% (${worst.process})` : 'n/a'} result=${r.ok ? 'ok' : 'FAIL'}\n`,
  );
  return r.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`soak failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
