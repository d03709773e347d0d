/**
 * Rate limits shared by every coordinator of one database (migration 009): a GCRA per key.
 *
 * A key may make `burst` requests at once, then one per `intervalMs` (burst = window /
 * interval). `tat`, the theoretical arrival time, is when the key's bucket is full again; a
 * request is allowed when, counting it, the bucket would not be more than `windowMs` ahead of
 * now. Deciding and recording is one INSERT … ON CONFLICT DO UPDATE: the row lock makes it
 * atomic across coordinators, and a refused request changes nothing.
 */
import type { Queryable } from '../connection.js';

export interface RateLimitHit {
  /** Whether this request is within the limit (and was counted). */
  allowed: boolean;
  /** Unix ms at which the key's bucket is full again. */
  tat: number;
}

// Both assignments read the row as it was (r.*): the decision and the new tat agree. The small
// epsilon absorbs rounding of fractional intervals (a window of 7 per 3 s).
const HIT = `
INSERT INTO rate_limits AS r (key, tat, allowed) VALUES ($1, $2::float8 + $3::float8, true)
ON CONFLICT (key) DO UPDATE SET
  allowed = greatest(r.tat, $2::float8) + $3::float8 - $2::float8 <= $4::float8 + 1e-6,
  tat = CASE WHEN greatest(r.tat, $2::float8) + $3::float8 - $2::float8 <= $4::float8 + 1e-6
             THEN greatest(r.tat, $2::float8) + $3::float8 ELSE r.tat END
RETURNING tat, allowed`;

/** One request on `key` at `now` (Unix ms). `intervalMs` ≤ `windowMs`. */
export async function hitRateLimit(
  q: Queryable,
  key: string,
  o: { now: number; intervalMs: number; windowMs: number },
): Promise<RateLimitHit> {
  if (!(o.intervalMs > 0 && o.intervalMs <= o.windowMs))
    throw new RangeError('rate limit: need 0 < interval ≤ window');
  const r = await q.query<{ tat: number | string; allowed: boolean }>(HIT, [
    key,
    o.now,
    o.intervalMs,
    o.windowMs,
  ]);
  const row = r.rows[0]!;
  return { allowed: row.allowed, tat: Number(row.tat) };
}

/** Deletes keys whose bucket is full again at `now` (they carry no information). */
export async function cleanupRateLimits(q: Queryable, now: number): Promise<number> {
  const r = await q.query('DELETE FROM rate_limits WHERE tat <= $1::float8', [now]);
  return r.rowCount;
}
