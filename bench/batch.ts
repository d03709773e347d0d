/**
 * Batch signing through the service: K concurrent clients POST /v1/sessions/batch
 * {key_id, items: [{message}…], wait} (B messages per request) for S seconds; the answer is
 * {items: [session objects…]}, one per message, in order. A signature counts when its item is
 * `completed` and the signature verifies (noble schnorr.verify) for its message; an item that
 * is not, a refused request or a transport error counts as errors (a refused request as B).
 *
 * The endpoint is new: when the coordinator answers 404 for it (an older build), the benchmark
 * is skipped with a note instead of failing.
 */
import { randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { BenchCluster } from './cluster.js';
import { clusterSampler, rssFigures } from './service.js';
import { latencySummary, now, round } from './stats.js';

export interface BatchResult {
  database: 'pglite' | 'postgres';
  coordinators: number;
  clients: number;
  batch_size: number;
  seconds: number;
  /** Verified signatures. */
  signatures: number;
  /** Items not completed or not verifying, plus every item of a refused request. */
  errors: number;
  error_samples: string[];
  throughput_per_s: number;
  /** Latency of one batch request (ms). */
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  rss_mb: Record<string, number>;
}

export interface BatchSkipped {
  database: 'pglite' | 'postgres';
  skipped: string;
}

type Key = { id: string; x_only_public_key: string };

interface BatchCall {
  status: number;
  ok: number;
  errors: string[];
  ms: number;
  body?: any;
}

async function signBatch(c: BenchCluster, key: Key, size: number, coordinator = 0): Promise<BatchCall> {
  const msgs = Array.from({ length: size }, () => randomBytes(32));
  const t0 = now();
  try {
    const r = await c.apiAt(coordinator, 'POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: msgs.map((m) => ({ message: m.toString('hex') })),
      wait: 60_000,
    });
    const ms = now() - t0;
    if (r.status >= 300 || !Array.isArray(r.body?.items)) {
      const why = `HTTP ${r.status} ${r.body?.code ?? ''} ${r.body?.detail ?? ''}`.trim();
      return { status: r.status, ok: 0, errors: msgs.map(() => why), ms, body: r.body };
    }
    const items = r.body.items as any[];
    const errors: string[] = [];
    let ok = 0;
    const pub = Buffer.from(key.x_only_public_key, 'hex');
    msgs.forEach((m, i) => {
      const it = items[i];
      if (!it) errors.push('item missing from the answer');
      else if (it.status !== 'completed')
        errors.push(`item ${it.status ?? '?'} ${it.error_code ?? ''}`.trim());
      else if (!schnorr.verify(Buffer.from(String(it.signature), 'hex'), m, pub))
        errors.push('signature does not verify');
      else ok++;
    });
    return { status: r.status, ok, errors, ms };
  } catch (e) {
    const why = `transport: ${e instanceof Error ? e.message : String(e)}`;
    return { status: 0, ok: 0, errors: msgs.map(() => why), ms: now() - t0 };
  }
}

/** Whether the coordinator has the batch endpoint: undefined if so, else why not (for the note). */
export async function batchUnavailable(c: BenchCluster, key: Key): Promise<string | undefined> {
  const r = await signBatch(c, key, 1);
  if (r.status === 404 || r.status === 405) {
    return `POST /v1/sessions/batch answered ${r.status} (${r.body?.detail ?? r.body?.code ?? 'no body'}): the batch API is not in this build; batch benchmark skipped`;
  }
  return undefined;
}

export async function runBatchLoad(
  c: BenchCluster,
  key: Key,
  o: { clients: number; batchSize: number; seconds: number; coordinators?: number },
): Promise<BatchResult> {
  const coordinators = Math.min(o.coordinators ?? 1, c.urls.length);
  const latencies: number[] = [];
  const errors: string[] = [];
  let signatures = 0;
  const sampler = clusterSampler(c, coordinators).start();
  const t0 = now();
  const stopAt = t0 + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.clients }, async (_, j) => {
      while (now() < stopAt) {
        const r = await signBatch(c, key, o.batchSize, j % coordinators);
        signatures += r.ok;
        errors.push(...r.errors);
        if (r.ok > 0) latencies.push(r.ms);
      }
    }),
  );
  const elapsed = (now() - t0) / 1000;
  const memory = await sampler.stop();
  const lat = latencySummary(latencies);
  return {
    database: c.database,
    coordinators,
    clients: o.clients,
    batch_size: o.batchSize,
    seconds: round(elapsed, 2),
    signatures,
    errors: errors.length,
    error_samples: [...new Set(errors)].slice(0, 5),
    throughput_per_s: round(signatures / elapsed, 1),
    p50_ms: lat.p50_ms,
    p95_ms: lat.p95_ms,
    p99_ms: lat.p99_ms,
    rss_mb: rssFigures(memory),
  };
}
