/**
 * Authentication and authorization of API requests. Bearer auth: an API token
 * (`floe_<id>_<secret>`) or a 15-minute access JWT from POST /v1/auth/token; then a rate
 * limit per API token. Provides `app.authenticate` (an onRequest hook for the routes that need
 * a caller) and `app.requireRole(role)` (a preHandler per route).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Principal } from '../../domain/records.js';
import { hasRole, type Role } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import { RateLimiter, verifyAccessToken, verifyApiToken } from '../auth/tokens.js';
import type { Backend } from '../backend.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyInstance {
    authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
    requireRole: (role: Role) => preHandlerHookHandler;
  }
}

export interface AuthOptions {
  backend: Backend;
  jwtSecret: Uint8Array;
  now: () => number;
  /** Requests per second per token, and burst. */
  rateLimit: { perSecond: number; burst: number };
}

/** The caller of a request that passed `authenticate`. */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new FloeError('unauthorized', 'missing bearer token');
  return req.principal;
}

const plugin: FastifyPluginAsync<AuthOptions> = async (app, o) => {
  const limiter = new RateLimiter(o.rateLimit.perSecond, o.rateLimit.burst);
  app.decorateRequest('principal', undefined);

  app.decorate('authenticate', async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) throw new FloeError('unauthorized', 'missing bearer token');
    const bearer = h.slice(7).trim();
    if (bearer.startsWith('floe_')) {
      const t = await verifyApiToken(o.backend, bearer, o.now());
      req.principal = { tenantId: t.tenantId, role: t.role, tokenId: t.id };
    } else {
      const claims = verifyAccessToken(o.jwtSecret, bearer, o.now());
      const t = await o.backend.getToken(claims.tid, claims.sub);
      if (!t || t.revokedAt !== null) throw new FloeError('unauthorized', 'token revoked');
      req.principal = { tenantId: claims.tid, role: claims.role, tokenId: claims.sub };
    }
    const wait = limiter.take(req.principal.tokenId, o.now());
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new FloeError('rate_limited', 'too many requests for this token');
    }
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
