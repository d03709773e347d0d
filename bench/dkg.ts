/**
 * DKG ceremonies through the service: POST /v1/keys {threshold, signers, wait}, one after
 * the other, until the time budget or the count is used up. A ceremony counts when the key
 * comes back `active` with a 32-byte x-only public key; anything else is an error.
 *
 * Next to it, the bare arithmetic: noble's schnorr_FROST.DKG round1/round2/round3 for all n
 * participants of one t-of-n ceremony in this one process (no network, no storage, no
 * encryption of round-2 shares, no certificates), ceremonies per second (nobleBareDkg).
 */
import { schnorr_FROST } from '@noble/curves/secp256k1.js';
import type { BenchCluster } from './cluster.js';
import { latencySummary, median, now, round } from './stats.js';

export interface NobleDkgResult {
  t: number;
  n: number;
  ceremonies: number;
  median_ms: number;
  ceremonies_per_s: number;
}

/** One complete t-of-n DKG of noble in one process (all n participants); returns the group key. */
function nobleCeremony(t: number, n: number): Uint8Array {
  const F = schnorr_FROST;
  const ids = Array.from({ length: n }, (_, i) => F.Identifier.fromNumber(i + 1));
  const r1 = ids.map((id) => F.DKG.round1(id, { min: t, max: n }));
  const others = (i: number) => r1.filter((_, j) => j !== i).map((r) => r.public);
  const r2 = ids.map((_, i) => F.DKG.round2(r1[i]!.secret, others(i)));
  const keys = ids.map((id, i) =>
    F.DKG.round3(
      r1[i]!.secret,
      others(i),
      ids.flatMap((_, j) => (j === i ? [] : [r2[j]![id]!])),
    ),
  );
  return keys[0]!.public.commitments[0]!;
}

/** noble's bare DKG ceremonies per second for t-of-n (median of the runs within the budget). */
export function nobleBareDkg(t: number, n: number, o: { budgetMs: number; minRuns: number }): NobleDkgResult {
  nobleCeremony(t, n); // warm-up
  const ms: number[] = [];
  const start = now();
  while (ms.length < o.minRuns || now() - start < o.budgetMs) {
    const t0 = now();
    nobleCeremony(t, n);
    ms.push(now() - t0);
  }
  const med = median(ms);
  return { t, n, ceremonies: ms.length, median_ms: round(med, 2), ceremonies_per_s: round(1000 / med, 2) };
}

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
  /** noble's bare in-process DKG ceremonies/s for the same t-of-n, same run (nobleBareDkg). */
  noble_bare_ceremonies_per_s?: number;
  /** ceremonies_per_s / noble_bare_ceremonies_per_s */
  service_to_noble_ratio?: number;
}

function ceremony(c: BenchCluster, members: string[], t: number) {
  return c.api('POST', '/v1/keys', { threshold: t, signers: members, label: 'bench', wait: 120_000 });
}

export async function runDkgLoad(
  c: BenchCluster,
  signerIds: string[],
  t: number,
  n: number,
  o: { seconds: number; min: number; max: number; warmup?: number },
): Promise<DkgResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  const members = signerIds.slice(0, n);
  // Uncounted ceremonies first: the first of each t-of-n runs code no signing has run (JIT).
  // (a failure here shows again in the counted ceremonies)
  for (let i = 0; i < (o.warmup ?? 0); i++) await ceremony(c, members, t).catch(() => undefined);
  const t0 = now();
  while (latencies.length + errors.length < o.max) {
    if (latencies.length + errors.length >= o.min && now() - t0 > o.seconds * 1000) break;
    const s = now();
    try {
      const r = await ceremony(c, members, t);
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
