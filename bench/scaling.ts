/**
 * How signing cost grows with the threshold t (crypto only, Floe's layer, one process).
 * n is about 1.4·t (2-of-3 … 18-of-24); the signing cost depends on t (the signers taking
 * part), not on n. Each of the t signers computes the binding factors and the group
 * commitment over all t commitments, so a single share costs O(t) point operations and a
 * whole signing O(t²); the fitted exponent k (time ≈ c·t^k) says how close to that it is.
 */
import { measureConfig } from './crypto.js';
import { logLogSlope, round } from './stats.js';

export const SCALING_POINTS: readonly (readonly [number, number])[] = [
  [2, 3],
  [3, 5],
  [5, 7],
  [7, 10],
  [10, 15],
  [18, 24],
];

export interface ScalingPoint {
  t: number;
  n: number;
  runs: number;
  median_ms: number;
  /** Median time of one signer's share (the sign phase divided by t). */
  share_ms: number;
  aggregate_ms: number;
  /** median / median at t = 2 */
  relative: number;
}

export interface ScalingResult {
  impl: 'floe';
  points: ScalingPoint[];
  /** k in time ≈ c·t^k, least squares over the points. */
  exponent: number;
  share_exponent: number;
}

export function runScalingBench(quick: boolean, log: (s: string) => void): ScalingResult {
  const points: ScalingPoint[] = [];
  for (const [t, n] of SCALING_POINTS) {
    const r = measureConfig(t, n, ['floe'], {
      budgetMs: quick ? 700 : 6000,
      minRuns: quick ? 3 : 10,
      maxRuns: quick ? 60 : 400,
      warmupRuns: quick ? 1 : 3,
    }).impls.floe!;
    points.push({
      t,
      n,
      runs: r.runs,
      median_ms: r.median_ms,
      share_ms: round(r.phases_ms.sign / t, 3),
      aggregate_ms: r.phases_ms.aggregate,
      relative: 0,
    });
    log(`  scaling ${t}-of-${n}: ${r.median_ms} ms (share ${round(r.phases_ms.sign / t, 2)} ms)`);
  }
  for (const p of points) p.relative = round(p.median_ms / points[0]!.median_ms, 2);
  return {
    impl: 'floe',
    points,
    exponent: round(
      logLogSlope(
        points.map((p) => p.t),
        points.map((p) => p.median_ms),
      ),
      2,
    ),
    share_exponent: round(
      logLogSlope(
        points.map((p) => p.t),
        points.map((p) => p.share_ms),
      ),
      2,
    ),
  };
}
