/**
 * Service benchmark: K concurrent clients POST /v1/sessions {key_id, message, wait} to a
 * local cluster (coordinator + signers as separate processes) for S seconds. Every returned
 * signature is verified (noble schnorr.verify against the key's x-only public key); a
 * refusal, a transport error, a session that is not completed, or a signature that does not
 * verify counts as an error. Also records where the CPU went (coordinator, signers, this
 * client process, and the Postgres server's processes) and the coordinator's own per-round
 * latencies from /metrics.
 */
import { randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { BenchCluster } from './cluster.js';
import { commandCpuSeconds, processCpuSeconds } from './machine.js';
import { latencySummary, now, round } from './stats.js';

export interface LoadResult {
  database: 'pglite' | 'postgres';
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
  /** CPU milliseconds per signature, by process role. */
  cpu_ms_per_signature: Record<string, number>;
  /** Mean coordinator round latencies (ms) from its /metrics histogram over the window. */
  coordinator_round_ms: Record<string, number>;
}

type Snapshot = Record<string, number>;

/** CPU seconds so far of every process taking part. */
export function cpuSnapshot(c: BenchCluster): Snapshot {
  const s: Snapshot = {};
  const pid = c.coordinator?.proc.pid;
  s.coordinator = pid ? (processCpuSeconds(pid) ?? 0) : 0;
  s.signers = c.signers.reduce((a, x) => a + (x.proc.pid ? (processCpuSeconds(x.proc.pid) ?? 0) : 0), 0);
  const u = process.cpuUsage();
  s.client = (u.user + u.system) / 1e6;
  if (c.database === 'postgres') s.postgres = commandCpuSeconds('postgres');
  return s;
}

/** Sum and count of each round of the coordinator's floe_round_seconds histogram. */
export async function roundMetrics(c: BenchCluster): Promise<Record<string, { sum: number; count: number }>> {
  const r = await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  const text = await r.text();
  const out: Record<string, { sum: number; count: number }> = {};
  for (const line of text.split('\n')) {
    const m = /^floe_round_seconds_(sum|count)\{round="([a-z]+)"\} ([0-9.e+-]+)$/.exec(line);
    if (!m) continue;
    const e = out[m[2]!] ?? { sum: 0, count: 0 };
    e[m[1] as 'sum' | 'count'] = Number(m[3]);
    out[m[2]!] = e;
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
): Promise<SignResult> {
  const msg = randomBytes(32);
  const t0 = now();
  try {
    const r = await c.api('POST', '/v1/sessions', {
      key_id: key.id,
      message: msg.toString('hex'),
      wait: 60_000,
    });
    const ms = now() - t0;
    if (r.status !== 201 || r.body?.status !== 'completed') {
      return {
        ok: false,
        ms,
        error: `HTTP ${r.status} ${r.body?.status ?? ''} ${r.body?.code ?? ''}`.trim(),
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
): Promise<LoadResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  const cpu0 = cpuSnapshot(c);
  const m0 = await roundMetrics(c);
  const t0 = now();
  const stopAt = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (now() < stopAt) {
        const r = await signOnce(c, key);
        if (r.ok) latencies.push(r.ms);
        else errors.push(r.error!);
      }
    }),
  );
  const elapsed = (now() - t0) / 1000;
  const cpu1 = cpuSnapshot(c);
  const m1 = await roundMetrics(c);
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
    cpu_ms_per_signature: cpu,
    coordinator_round_ms: rounds,
  };
}
