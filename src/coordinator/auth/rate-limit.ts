/**
 * Rate limits: `@fastify/rate-limit` (its limiter API, key normalization and header values)
 * over a store on the coordinator's own database, so that every coordinator of a deployment
 * counts against the same limits (two coordinators do not double them).
 *
 * The store is a GCRA (src/db/queries/rate-limits.ts): a limit `{max, windowMs}` allows `max`
 * requests at once, then one every `windowMs / max`: a token bucket of `max` refilled
 * continuously. So `rate_limit_per_s` / `rate_limit_burst` keep their meaning, and "30 per
 * minute" never lets 60 through across a window boundary.
 *
 * Limits are checked explicitly (`limiter(...)`) rather than by the plugin's route hooks: the
 * plugin runs at most one of its hooks per request, and a request may pass several limits
 * (the caller's token, then its tenant's token creation). Past a limit the answer is the usual
 * problem+json: 429 `rate_limited` with `Retry-After` (seconds). The limit per API token is
 * counted in the transaction that looks the token up (`request` and `answer` below; one
 * transaction per request instead of two), with the answer the plugin would give.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimitHit } from '../../db/queries/rate-limits.js';
import { FloeError } from '../../protocol/errors.js';
import type { RateLimitStore } from '../backend.js';

/** `max` requests at once, refilled continuously over `windowMs` (one every windowMs / max). */
export interface Limit {
  max: number;
  windowMs: number;
}

/** A token bucket of `burst` refilled at `perSecond`. */
export const perSecondLimit = (perSecond: number, burst: number): Limit => ({
  max: burst,
  windowMs: Math.max(1, Math.round((burst * 1000) / perSecond)),
});
export const perMinuteLimit = (n: number): Limit => ({ max: n, windowMs: 60_000 });
export const perHourLimit = (n: number): Limit => ({ max: n, windowMs: 3_600_000 });

/**
 * A hit of the GCRA at `t` as `@fastify/rate-limit`'s store answers it: `current` is how many of
 * the `max` slots are in use after this request (max + 1 when refused); `ttl` is, when allowed,
 * the time until the bucket is full again and, when refused, the time until the next request
 * may pass.
 */
export function storeAnswer(h: RateLimitHit, t: number, limit: Limit): { current: number; ttl: number } {
  const intervalMs = limit.windowMs / limit.max;
  return h.allowed
    ? {
        current: Math.min(limit.max, Math.max(1, Math.ceil((h.tat - t) / intervalMs - 1e-9))),
        ttl: Math.max(0, Math.ceil(h.tat - t)),
      }
    : { current: limit.max + 1, ttl: Math.max(1, Math.ceil(h.tat - t - (limit.windowMs - intervalMs))) };
}

/** What `@fastify/rate-limit`'s limiter makes of a store's answer (its `applyRateLimit`). */
interface LimitVerdict {
  max: number;
  remaining: number;
  ttlInSeconds: number;
  isExceeded: boolean;
}

function verdictOf(a: { current: number; ttl: number }, max: number): LimitVerdict {
  return {
    max,
    remaining: Math.max(0, max - a.current),
    ttlInSeconds: Math.ceil(a.ttl / 1000),
    isExceeded: a.current > max,
  };
}

/** A `@fastify/rate-limit` store class over the database; it answers by {@link storeAnswer}. */
export function databaseStore(db: RateLimitStore, now: () => number): FastifyRateLimitStoreCtor {
  class DatabaseStore implements FastifyRateLimitStore {
    incr(
      key: string,
      cb: (e: Error | null, r?: { current: number; ttl: number }) => void,
      timeWindow: number,
      max: number,
    ): void {
      if (!(max >= 1 && timeWindow >= 1)) {
        cb(new RangeError('rate limit: max and timeWindow must be at least 1'));
        return;
      }
      const t = now();
      db.hitRateLimit(key, { now: t, intervalMs: timeWindow / max, windowMs: timeWindow }).then(
        (h) => cb(null, storeAnswer(h, t, { max, windowMs: timeWindow })),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    }

    child(): FastifyRateLimitStore {
      return new DatabaseStore();
    }
  }
  return DatabaseStore;
}

/** A request on a limit at `now`, for a store that counts it: the key's prefix, the GCRA's interval and window. */
export interface LimitRequest {
  now: number;
  key: (k: string) => string;
  intervalMs: number;
  windowMs: number;
}

/**
 * Counts a request against a limit; throws `rate_limited` past it. Usable as a hook; `withKey`
 * counts it under a key the caller found out (instead of the limiter's key function).
 */
export interface LimitCheck {
  (req: FastifyRequest, reply: FastifyReply): Promise<void>;
  withKey(req: FastifyRequest, reply: FastifyReply, key: string): Promise<void>;
  /**
   * A request on this limit at `now`, for a store that counts it in the same transaction as
   * other work (an API token's lookup: tokens.ts `verifyApiTokenCounted`); then {@link answer}.
   */
  request(now: number): LimitRequest;
  /** The headers, or the 429, for a hit counted through {@link request}: as a check would answer it. */
  answer(reply: FastifyReply, hit: RateLimitHit, now: number): void;
}

/**
 * A limit named `name` (keys of different limits never collide), keyed per request by `key`.
 * Needs `@fastify/rate-limit` registered on `app` (for `createRateLimit`). With `headers`, the
 * X-RateLimit-Limit/-Remaining/-Reset headers describe this limit on every answer.
 */
export function limiter(
  app: FastifyInstance,
  o: {
    name: string;
    limit: Limit;
    key: (req: FastifyRequest) => string;
    /** For the error message: "too many requests <what>". */
    what: string;
    headers?: boolean;
  },
): LimitCheck {
  const explicit = new WeakMap<FastifyRequest, string>();
  const keyOf = (k: string) => `${o.name}:${k}`;
  const check = app.createRateLimit({
    max: o.limit.max,
    timeWindow: o.limit.windowMs,
    keyGenerator: (req) => keyOf(explicit.get(req) ?? o.key(req)),
  });
  const respond = (reply: FastifyReply, r: LimitVerdict) => {
    if (o.headers || r.isExceeded) {
      reply.header('x-ratelimit-limit', String(r.max));
      reply.header('x-ratelimit-remaining', String(r.isExceeded ? 0 : r.remaining));
      reply.header('x-ratelimit-reset', String(r.ttlInSeconds));
    }
    if (r.isExceeded) {
      const wait = Math.max(1, r.ttlInSeconds);
      reply.header('retry-after', String(wait));
      throw new FloeError('rate_limited', `too many requests ${o.what}; retry in ${wait} s`);
    }
  };
  const run = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = await check(req);
    if (!r.isAllowed) respond(reply, r);
  };
  return Object.assign(run, {
    withKey(req: FastifyRequest, reply: FastifyReply, key: string) {
      explicit.set(req, key);
      return run(req, reply);
    },
    request(now: number) {
      return {
        now,
        key: keyOf,
        intervalMs: o.limit.windowMs / o.limit.max,
        windowMs: o.limit.windowMs,
      };
    },
    answer(reply: FastifyReply, hit: RateLimitHit, now: number) {
      respond(reply, verdictOf(storeAnswer(hit, now, o.limit), o.limit.max));
    },
  });
}
