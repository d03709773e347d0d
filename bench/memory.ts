/**
 * Resident memory of the bench cluster's processes, from /proc (Linux; elsewhere every figure
 * is null):
 *
 *   - the coordinator(s) and each signer: VmRSS of the process (all its threads);
 *   - the Postgres server's backends serving the cluster's database (found through
 *     pg_stat_activity): their private memory (RssAnon). A backend's VmRSS also counts the
 *     shared buffers it touched, which every backend shares, so summing VmRSS would count
 *     them once per backend; RssAnon is what each backend holds for itself.
 *
 * A MemorySampler samples them every `intervalMs` during a run and keeps the peak and the last
 * value per process. With the memory hook (./memory-hook.mjs, FLOE_BENCH_MEMORY_DIR) a process
 * also writes its own breakdown (V8 heap, external, array buffers, WebAssembly memory), read
 * by readBreakdown().
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { round } from './stats.js';

const MB = 1024 * 1024;

/** Fields of /proc/PID/status in MB (VmRSS, VmHWM, RssAnon, RssFile, RssShmem), or undefined. */
export function procStatusMb(pid: number): Record<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1]!] = round((Number(m[2]) * 1024) / MB, 1);
  }
  return out.VmRSS === undefined ? undefined : out;
}

/** VmRSS of a process in MB, or undefined when it is gone (or not Linux). */
export function rssMb(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : procStatusMb(pid)?.VmRSS;
}

/** Backend pids of the Postgres server connected to `database` (not counting this query's own). */
export async function postgresBackendPids(c: pg.Client, database: string): Promise<number[]> {
  try {
    const r = await c.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    return r.rows.map((x) => Number(x.pid));
  } catch {
    return [];
  }
}

/** Processes to sample: a label and a pid (re-evaluated on every sample: processes restart). */
export type ProcessList = () => { label: string; pid: number | undefined }[];

export interface PostgresTarget {
  serverUrl: string;
  database: string;
}

export interface MemorySummary {
  /** Peak VmRSS (MB) of each process over the window. */
  peak: Record<string, number>;
  /** VmRSS (MB) of each process at the last sample. */
  last: Record<string, number>;
  /** Postgres backends of the database: count, summed and largest private memory (MB) at the peak sample. */
  postgres?: { backends: number; private_mb: number; max_backend_private_mb: number };
  samples: number;
}

export interface SampleRow {
  at_s: number;
  rss: Record<string, number>;
  /** Summed private memory of the database's server backends (MB). */
  postgres_private_mb?: number;
  /** The largest of them (MB). */
  postgres_backend_max_mb?: number;
  /** Each backend's private memory (MB) by pid: the pool opens and closes connections. */
  postgres_backends_mb?: Record<string, number>;
}

/** Samples the given processes every `intervalMs` (and once at start and at stop). */
export class MemorySampler {
  readonly rows: SampleRow[] = [];
  private readonly peak: Record<string, number> = {};
  private last: Record<string, number> = {};
  private pgPeak: MemorySummary['postgres'];
  private timer: NodeJS.Timeout | undefined;
  private pgClient: Promise<pg.Client | undefined> | undefined;
  private pending: Promise<void> = Promise.resolve();
  private readonly t0 = Date.now();

  constructor(
    private readonly processes: ProcessList,
    private readonly postgres?: PostgresTarget,
    private readonly intervalMs = 1000,
    private readonly onSample?: (row: SampleRow, index: number) => void,
  ) {}

  start(): this {
    this.pending = this.sample().then(() => {});
    this.timer = setInterval(() => {
      this.pending = this.pending.then(() => this.sample()).then(() => {});
    }, this.intervalMs);
    this.timer.unref();
    return this;
  }

  async sample(): Promise<SampleRow> {
    const rss: Record<string, number> = {};
    for (const { label, pid } of this.processes()) {
      const v = rssMb(pid);
      if (v === undefined) continue;
      rss[label] = v;
      this.peak[label] = Math.max(this.peak[label] ?? 0, v);
    }
    this.last = rss;
    const row: SampleRow = { at_s: round((Date.now() - this.t0) / 1000, 1), rss };
    if (this.postgres) {
      const target = this.postgres;
      this.pgClient ??= (async () => {
        // on the server's maintenance database, so that it is not counted among the backends
        const c = new pg.Client({ connectionString: target.serverUrl, connectionTimeoutMillis: 2000 });
        try {
          await c.connect();
          return c;
        } catch {
          return undefined;
        }
      })();
      const client = await this.pgClient;
      const pids = client ? await postgresBackendPids(client, target.database) : [];
      const priv = pids.map((p) => procStatusMb(p)?.RssAnon ?? 0);
      const total = round(
        priv.reduce((a, b) => a + b, 0),
        1,
      );
      row.postgres_private_mb = total;
      row.postgres_backend_max_mb = round(Math.max(0, ...priv), 1);
      row.postgres_backends_mb = Object.fromEntries(pids.map((p, i) => [String(p), round(priv[i]!, 1)]));
      if (!this.pgPeak || total > this.pgPeak.private_mb) {
        this.pgPeak = {
          backends: pids.length,
          private_mb: total,
          max_backend_private_mb: round(Math.max(0, ...priv), 1),
        };
      }
    }
    this.rows.push(row);
    this.onSample?.(row, this.rows.length - 1);
    return row;
  }

  async stop(): Promise<MemorySummary> {
    if (this.timer) clearInterval(this.timer);
    await this.pending;
    // a last sample, unless the timer just took one
    const last = this.rows[this.rows.length - 1];
    if (!last || (Date.now() - this.t0) / 1000 - last.at_s > this.intervalMs / 2000) await this.sample();
    const c = await this.pgClient;
    this.pgClient = undefined;
    await c?.end().catch(() => {});
    return {
      peak: { ...this.peak },
      last: { ...this.last },
      ...(this.pgPeak ? { postgres: this.pgPeak } : {}),
      samples: this.rows.length,
    };
  }
}

/** One process's own view of its memory (written by ./memory-hook.mjs), in MB. */
export interface MemoryBreakdown {
  pid: number;
  at: string;
  rss: number;
  heap_total: number;
  heap_used: number;
  external: number;
  array_buffers: number;
  /** Bytes of the WebAssembly memories the process created (PGlite's Postgres, libsecp256k1 WASM), MB. */
  wasm_memory: number;
  /** RSS not accounted for by the V8 heap and external memory: code, native libraries, malloc arenas, threads. */
  other: number;
}

/** The latest breakdown each process wrote to DIR (./memory-hook.mjs), by pid. */
export function readBreakdown(dir: string, pid: number | undefined): MemoryBreakdown | undefined {
  return readReports(dir, pid).at(-1);
}

/** Every breakdown a process wrote to DIR (./memory-hook.mjs), oldest first; none if it wrote none. */
export function readReports(dir: string, pid: number | undefined): MemoryBreakdown[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(join(dir, `${pid}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as MemoryBreakdown);
  } catch {
    return [];
  }
}

/** Every process that wrote to DIR. */
export function breakdownPids(dir: string): number[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => Number(f.slice(0, -6)));
  } catch {
    return [];
  }
}
