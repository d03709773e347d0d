/**
 * Service benchmark: K concurrent clients POST /v1/sessions {key_id, message, wait} to a
 * local cluster (coordinator + signers as separate processes) for S seconds. Every returned
 * signature is verified (noble schnorr.verify against the key's x-only public key); a
 * refusal, a transport error, a session that is not completed, or a signature that does not
 * verify counts as an error. Also records where the CPU went (coordinator, signers, this
 * client process, and the Postgres server's processes), the coordinator's own per-round
 * latencies from /metrics, and the resident memory of every process (sampled every second;
 * bench/memory.ts).
 *
 * With several coordinators on one Postgres database (bench/cluster.ts `coordinators`), the
 * clients are split across them round-robin.
 */
import { randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { BenchCluster } from './cluster.js';
import { commandCpuSeconds, processCpuSeconds } from './machine.js';
import { MemorySampler, type MemorySummary, type SampleRow } from './memory.js';
import { latencySummary, now, round } from './stats.js';

export interface LoadResult {
  database: 'pglite' | 'postgres';
  /** Coordinator processes serving the clients (on one database). */
  coordinators: number;
  clients: number;
  seconds: number;
  signatures: number;
  errors: number;
  /** Up to five distinct error descriptions. */
  error_samples: string[];
  throughput_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  mean_ms: number;
  /** Service throughput / crypto-only floe 2-of-3 signings per second (same run). */
  service_to_crypto_ratio: number | null;
  /** Service throughput / crypto-only noble 2-of-3 signings per second (same run). */
  service_to_noble_ratio: number | null;
  /**
   * Peak resident memory (MB) of each process during the run: coordinator (coordinator_2, …),
   * signer_1 … signer_N, and on Postgres the summed private memory of the database's server
   * backends (postgres_backends_private; count in postgres_backends).
   */
  rss_mb: Record<string, number>;
  /** CPU milliseconds per signature, by process role. */
  cpu_ms_per_signature: Record<string, number>;
  /** Mean coordinator round latencies (ms) from its /metrics histogram over the window. */
  coordinator_round_ms: Record<string, number>;
}

type Snapshot = Record<string, number>;

/** CPU seconds so far of every process taking part (the coordinators summed). */
export function cpuSnapshot(c: BenchCluster, coordinators = 1): Snapshot {
  const s: Snapshot = {};
  s.coordinator = c.coordinators
    .slice(0, coordinators)
    .reduce((a, x) => a + (x?.proc.pid ? (processCpuSeconds(x.proc.pid) ?? 0) : 0), 0);
  s.signers = c.signers.reduce((a, x) => a + (x.proc.pid ? (processCpuSeconds(x.proc.pid) ?? 0) : 0), 0);
  const u = process.cpuUsage();
  s.client = (u.user + u.system) / 1e6;
  if (c.database === 'postgres') s.postgres = commandCpuSeconds('postgres');
  return s;
}

/** Sum and count of each round of the coordinators' floe_round_seconds histograms (summed). */
export async function roundMetrics(
  c: BenchCluster,
  coordinators = 1,
): Promise<Record<string, { sum: number; count: number }>> {
  const out: Record<string, { sum: number; count: number }> = {};
  for (const url of c.urls.slice(0, coordinators)) {
    const r = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    const text = await r.text();
    for (const line of text.split('\n')) {
      const m = /^floe_round_seconds_(sum|count)\{round="([a-z]+)"\} ([0-9.e+-]+)$/.exec(line);
      if (!m) continue;
      const e = out[m[2]!] ?? { sum: 0, count: 0 };
      e[m[1] as 'sum' | 'count'] += Number(m[3]);
      out[m[2]!] = e;
    }
  }
  return out;
}

/** The processes of a cluster, labelled for the memory figures (coordinator, coordinator_2, signer_1, …). */
export function clusterProcesses(c: BenchCluster, coordinators = c.coordinators.length) {
  return () => [
    ...c.coordinators
      .slice(0, coordinators)
      .map((x, i) => ({ label: i === 0 ? 'coordinator' : `coordinator_${i + 1}`, pid: x?.proc.pid })),
    ...c.signers.map((x, i) => ({ label: `signer_${i + 1}`, pid: x.proc.pid })),
  ];
}

/** A memory sampler over the cluster's processes and, on Postgres, its database's backends. */
export function clusterSampler(
  c: BenchCluster,
  coordinators?: number,
  intervalMs = 1000,
  onSample?: (row: SampleRow, index: number) => void,
): MemorySampler {
  return new MemorySampler(
    clusterProcesses(c, coordinators),
    c.serverUrl && c.databaseName ? { serverUrl: c.serverUrl, database: c.databaseName } : undefined,
    intervalMs,
    onSample,
  );
}

/** The flat `rss_mb` record of a memory summary (peaks). */
export function rssFigures(m: MemorySummary): Record<string, number> {
  const out: Record<string, number> = { ...m.peak };
  if (m.postgres) {
    out.postgres_backends = m.postgres.backends;
    out.postgres_backends_private = m.postgres.private_mb;
  }
  return out;
}

export interface SignResult {
  ok: boolean;
  ms: number;
  error?: string;
  body?: any;
}

/** One signing request with wait; verifies the signature. */
export async function signOnce(
  c: BenchCluster,
  key: { id: string; x_only_public_key: string },
  coordinator = 0,
): Promise<SignResult> {
  const msg = randomBytes(32);
  const t0 = now();
  try {
    const r = await c.apiAt(coordinator, 'POST', '/v1/sessions', {
      key_id: key.id,
      message: msg.toString('hex'),
      wait: 60_000,
    });
    const ms = now() - t0;
    if (r.status !== 201 || r.body?.status !== 'completed') {
      return {
        ok: false,
        ms,
        error: `HTTP ${r.status} ${r.body?.status ?? ''} ${r.body?.code ?? r.body?.error_code ?? ''}`.trim(),
      };
    }
    const sig = Buffer.from(String(r.body.signature), 'hex');
    if (!schnorr.verify(sig, msg, Buffer.from(key.x_only_public_key, 'hex'))) {
      return { ok: false, ms, error: 'signature does not verify' };
    }
    return { ok: true, ms, body: r.body };
  } catch (e) {
    return { ok: false, ms: now() - t0, error: `transport: ${e instanceof Error ? e.message : String(e)}` };
  }
}

export async function runSigningLoad(
  c: BenchCluster,
  key: { id: string; x_only_public_key: string },
  clients: number,
  seconds: number,
  cryptoSignaturesPerS: number | null,
  o: { coordinators?: number; nobleSignaturesPerS?: number | null } = {},
): Promise<LoadResult> {
  const coordinators = Math.min(o.coordinators ?? 1, c.urls.length);
  const latencies: number[] = [];
  const errors: string[] = [];
  const cpu0 = cpuSnapshot(c, coordinators);
  const m0 = await roundMetrics(c, coordinators);
  const sampler = clusterSampler(c, coordinators).start();
  const t0 = now();
  const stopAt = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, j) => {
      while (now() < stopAt) {
        const r = await signOnce(c, key, j % coordinators);
        if (r.ok) latencies.push(r.ms);
        else errors.push(r.error!);
      }
    }),
  );
  const elapsed = (now() - t0) / 1000;
  const memory = await sampler.stop();
  const cpu1 = cpuSnapshot(c, coordinators);
  const m1 = await roundMetrics(c, coordinators);
  const n = latencies.length;
  const throughput = n / elapsed;
  const cpu: Record<string, number> = {};
  for (const k of Object.keys(cpu1)) cpu[k] = n ? round(((cpu1[k]! - cpu0[k]!) * 1000) / n, 2) : Number.NaN;
  const rounds: Record<string, number> = {};
  for (const [k, v] of Object.entries(m1)) {
    const dc = v.count - (m0[k]?.count ?? 0);
    if (dc > 0) rounds[k] = round(((v.sum - (m0[k]?.sum ?? 0)) / dc) * 1000, 2);
  }
  const lat = latencySummary(latencies);
  return {
    database: c.database,
    coordinators,
    clients,
    seconds: round(elapsed, 2),
    signatures: n,
    errors: errors.length,
    error_samples: [...new Set(errors)].slice(0, 5),
    throughput_per_s: round(throughput, 2),
    p50_ms: lat.p50_ms,
    p95_ms: lat.p95_ms,
    p99_ms: lat.p99_ms,
    mean_ms: lat.mean_ms,
    service_to_crypto_ratio: cryptoSignaturesPerS ? round(throughput / cryptoSignaturesPerS, 3) : null,
    service_to_noble_ratio: o.nobleSignaturesPerS ? round(throughput / o.nobleSignaturesPerS, 3) : null,
    rss_mb: rssFigures(memory),
    cpu_ms_per_signature: cpu,
    coordinator_round_ms: rounds,
  };
}
