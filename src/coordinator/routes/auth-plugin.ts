/**
 * Authentication, authorization and rate limits of API requests. Bearer auth: an API token
 * (`floe_<id>_<secret>`) or an access JWT from POST /v1/auth/token (valid while its API token
 * is neither revoked nor expired); then a rate limit per API token. Provides
 * `app.authenticate` (an onRequest hook for the routes that need a caller),
 * `app.requireRole(role)` (a preHandler per route) and `app.limits` (the other rate limits,
 * for the routes that apply them). Limits are kept in the database, shared by every
 * coordinator (../auth/rate-limit.ts).
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Principal } from '../../domain/records.js';
import { hasRole, type Role } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import {
  databaseStore,
  type LimitCheck,
  limiter,
  perHourLimit,
  perMinuteLimit,
  perSecondLimit,
} from '../auth/rate-limit.js';
import { apiTokenRefusal, verifyAccessToken, verifyApiTokenCounted } from '../auth/tokens.js';
import type { Backend } from '../backend.js';

export interface Limits {
  /** Auth routes (token exchange, refresh), per client address. */
  authAddress: LimitCheck;
  /** Auth routes, per API token presented (`withKey` its id, once the token is known to be valid). */
  authToken: LimitCheck;
  /** Creating API tokens (and tenants, which come with one), per tenant of the caller. */
  tokenCreate: LimitCheck;
  /** Per-passphrase address DKGs (DESIGN §14), per tenant of the caller. */
  addressCreate: LimitCheck;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyInstance {
    authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
    requireRole: (role: Role) => preHandlerHookHandler;
    limits: Limits;
  }
}

export interface RateLimitSettings {
  /** Requests per second per API token, and burst. */
  perSecond: number;
  burst: number;
  /** Requests per minute per client address (and per API token) on the auth routes. */
  authPerMinute: number;
  /** API tokens a tenant may create per hour. */
  tokenCreatePerHour: number;
  /** Per-passphrase address DKGs a tenant may start per minute (default 600). */
  addressCreatePerMinute?: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  perSecond: 50,
  burst: 200,
  authPerMinute: 30,
  tokenCreatePerHour: 100,
  addressCreatePerMinute: 600,
};

export interface AuthOptions {
  backend: Backend;
  jwtSecret: Uint8Array;
  now: () => number;
  rateLimit: RateLimitSettings;
}

/** The caller of a request that passed `authenticate`. */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new FloeError('unauthorized', 'missing bearer token');
  return req.principal;
}

/** The client's address, IPv6 reduced to its /64 (one host usually holds a whole /64). */
const clientAddress = (req: FastifyRequest) => normalizeIP(req.ip, 64);

const plugin: FastifyPluginAsync<AuthOptions> = async (app, o) => {
  await app.register(rateLimit, { global: false, store: databaseStore(o.backend, o.now) });
  const rl = o.rateLimit;
  const perToken = limiter(app, {
    name: 'token',
    limit: perSecondLimit(rl.perSecond, rl.burst),
    key: (req) => principal(req).tokenId,
    what: 'for this token',
    headers: true,
  });
  app.decorate('limits', {
    authAddress: limiter(app, {
      name: 'auth-address',
      limit: perMinuteLimit(rl.authPerMinute),
      key: clientAddress,
      what: 'to the auth routes from this address',
    }),
    authToken: limiter(app, {
      name: 'auth-token',
      limit: perMinuteLimit(rl.authPerMinute),
      key: () => {
        throw new Error('auth-token limit: use withKey(token id)');
      },
      what: 'to the auth routes for this token',
    }),
    tokenCreate: limiter(app, {
      name: 'token-create',
      limit: perHourLimit(rl.tokenCreatePerHour),
      key: (req) => principal(req).tenantId,
      what: 'creating tokens in this tenant',
    }),
    addressCreate: limiter(app, {
      name: 'address-create',
      limit: perMinuteLimit(rl.addressCreatePerMinute ?? 600),
      key: (req) => principal(req).tenantId,
      what: 'creating address keys in this tenant',
    }),
  });
  app.decorateRequest('principal', undefined);

  app.decorate('authenticate', async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) throw new FloeError('unauthorized', 'missing bearer token');
    const bearer = h.slice(7).trim();
    const now = o.now();
    if (bearer.startsWith('floe_')) {
      // The lookup and the count in one transaction (most requests come with an API token).
      const { token: t, hit } = await verifyApiTokenCounted(o.backend, bearer, perToken.request(now));
      req.principal = { tenantId: t.tenantId, role: t.role, tokenId: t.id };
      perToken.answer(reply, hit, now);
      return;
    }
    const claims = await verifyAccessToken(o.jwtSecret, bearer, now);
    // An access token lives only as long as its API token: revoked or expired, it dies too.
    const t = await o.backend.getToken(claims.tid, claims.sub);
    if (!t) throw new FloeError('unauthorized', 'token revoked');
    const refused = apiTokenRefusal(t, now);
    if (refused) throw refused;
    req.principal = { tenantId: claims.tid, role: claims.role, tokenId: claims.sub };
    await perToken(req, reply);
  });

  app.decorate('requireRole', (role: Role): preHandlerHookHandler => {
    return (req, _reply, done) => {
      if (!hasRole(principal(req).role, role))
        done(new FloeError('forbidden', `this needs the ${role} role`));
      else done();
    };
  });
};

export const authPlugin = fp(plugin, { name: 'floe-auth' });
