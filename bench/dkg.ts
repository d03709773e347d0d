/**
 * DKG ceremonies through the service: POST /v1/keys {threshold, signers, wait}, one after
 * the other, until the time budget or the count is used up. A ceremony counts when the key
 * comes back `active` with a 32-byte x-only public key; anything else is an error.
 */
import type { BenchCluster } from './cluster.js';
import { latencySummary, now, round } from './stats.js';

export interface DkgResult {
  database: 'pglite' | 'postgres';
  t: number;
  n: number;
  ceremonies: number;
  errors: number;
  error_samples: string[];
  seconds: number;
  ceremonies_per_s: number;
  p50_ms: number;
  p95_ms: number;
  mean_ms: number;
}

export async function runDkgLoad(
  c: BenchCluster,
  signerIds: string[],
  t: number,
  n: number,
  o: { seconds: number; min: number; max: number },
): Promise<DkgResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  const members = signerIds.slice(0, n);
  const t0 = now();
  while (latencies.length + errors.length < o.max) {
    if (latencies.length + errors.length >= o.min && now() - t0 > o.seconds * 1000) break;
    const s = now();
    try {
      const r = await c.api('POST', '/v1/keys', {
        threshold: t,
        signers: members,
        label: 'bench',
        wait: 120_000,
      });
      const ms = now() - s;
      if (r.body?.status === 'active' && /^[0-9a-f]{64}$/.test(String(r.body.x_only_public_key)))
        latencies.push(ms);
      else
        errors.push(
          `HTTP ${r.status} ${r.body?.status ?? ''} ${r.body?.ceremony?.error_code ?? r.body?.code ?? ''}`,
        );
    } catch (e) {
      errors.push(`transport: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const seconds = (now() - t0) / 1000;
  const lat = latencySummary(latencies);
  return {
    database: c.database,
    t,
    n,
    ceremonies: latencies.length,
    errors: errors.length,
    error_samples: [...new Set(errors)].slice(0, 5),
    seconds: round(seconds, 2),
    ceremonies_per_s: round(latencies.length / seconds, 2),
    p50_ms: lat.p50_ms,
    p95_ms: lat.p95_ms,
    mean_ms: lat.mean_ms,
  };
}
