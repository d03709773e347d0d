/**
 * The threshold rules of a custody deployment (seed 004, "Threshold Configuration"), checked
 * when a key is created: a t-of-n key should have
 *
 *   two_thirds   t ≤ 2n/3   so that the signers it takes to sign are not almost all of them
 *                          (with more, a third of the signers going down stops signing);
 *   two_spare    n − t ≥ 2  so that signing survives two signers lost at once (one down for
 *                          maintenance and one failing).
 *
 * By default a key that breaks them is created with warnings; with strict thresholds (the
 * request's `strict_thresholds`, or the coordinator's config) it is refused with
 * `threshold_unsafe`. 2-of-3 breaks `two_spare`: fine for development, not for custody.
 */

export const THRESHOLD_RULES = ['two_thirds', 'two_spare'] as const;
export type ThresholdRule = (typeof THRESHOLD_RULES)[number];

export interface ThresholdWarning {
  rule: ThresholdRule;
  /** A sentence a person understands, with the numbers. */
  detail: string;
}

/** The rules a t-of-n key breaks (empty when it keeps them all). */
export function thresholdWarnings(t: number, n: number): ThresholdWarning[] {
  const out: ThresholdWarning[] = [];
  if (3 * t > 2 * n) {
    out.push({
      rule: 'two_thirds',
      detail: `threshold ${t} of ${n} is above 2n/3 (at most ${Math.floor((2 * n) / 3)} for ${n} signers): losing ${n - t + 1} signer${n - t + 1 === 1 ? '' : 's'} stops signing`,
    });
  }
  if (n - t < 2) {
    out.push({
      rule: 'two_spare',
      detail: `${t}-of-${n} leaves ${n - t} spare signer${n - t === 1 ? '' : 's'}: keep n − t ≥ 2 so signing survives two signers down`,
    });
  }
  return out;
}

/** A hint for a refused key: the smallest n, for this t, that keeps both rules. */
export function thresholdHint(t: number): string {
  const n = Math.max(t + 2, Math.ceil((3 * t) / 2));
  return `for a threshold of ${t}, use at least ${n} signers (e.g. ${t}-of-${n}); or create it without strict thresholds to accept the warnings`;
}
