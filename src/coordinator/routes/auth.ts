/** Token exchange (no bearer needed: the API token is the credential) and API token management. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ApiTokenRecord } from '../../domain/records.js';
import {
  CreatedToken,
  CreateTokenBody,
  IdParams,
  List,
  RefreshBody,
  TokenBody,
  TokenObject,
  TokenResponse,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import {
  accessTokenTimes,
  createApiToken,
  issueRefresh,
  type Principal,
  refreshTokenOwner,
  rotateRefresh,
  signAccessToken,
  verifyApiToken,
} from '../auth/tokens.js';
import type { Backend } from '../backend.js';
import { principal } from './auth-plugin.js';
import { errors } from './errors.js';

export function tokenObject(t: ApiTokenRecord): TokenObject {
  return {
    id: t.id,
    role: t.role,
    label: t.label,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
    revoked_at: t.revokedAt,
  };
}

interface Deps {
  backend: Backend;
  jwtSecret: Uint8Array;
  now: () => number;
}

/**
 * POST /v1/auth/token and /v1/auth/refresh: short-lived access tokens, never valid past their
 * API token's expiry. Rate limited per client address (before the body is read) and per API
 * token (once the token presented is known to be valid, so that nobody can use up another's
 * limit by presenting its id).
 */
export const tokenExchangeRoutes: FastifyPluginAsyncTypebox<Deps> = async (
  app,
  { backend, jwtSecret, now },
) => {
  const common = { tags: ['auth'], security: [], response: { 200: TokenResponse, ...errors } };
  const access = async (p: Principal, notAfterMs: number | null, at: number) => {
    const { iat, exp } = accessTokenTimes(at, notAfterMs);
    return {
      access_token: await signAccessToken(jwtSecret, p, at, { notAfterMs }),
      token_type: 'Bearer' as const,
      expires_in: exp - iat,
    };
  };
  app.post(
    '/v1/auth/token',
    { onRequest: app.limits.authAddress, schema: { ...common, body: TokenBody } },
    async (req, reply) => {
      const t = await verifyApiToken(backend, req.body.token, now());
      await app.limits.authToken.withKey(req, reply, t.id);
      const at = now();
      const p = { tenantId: t.tenantId, role: t.role, tokenId: t.id };
      return {
        ...(await access(p, t.expiresAt, at)),
        refresh_token: await issueRefresh(backend, { tenantId: t.tenantId, tokenId: t.id, now: at }),
      };
    },
  );
  app.post(
    '/v1/auth/refresh',
    { onRequest: app.limits.authAddress, schema: { ...common, body: RefreshBody } },
    async (req, reply) => {
      // Counted against its API token before it is spent: a refused refresh keeps it usable.
      const owner = await refreshTokenOwner(backend, req.body.refresh_token);
      if (owner) await app.limits.authToken.withKey(req, reply, owner);
      const at = now();
      const r = await rotateRefresh(backend, req.body.refresh_token, at);
      return { ...(await access(r.principal, r.notAfterMs, at)), refresh_token: r.refresh };
    },
  );
};

/** /v1/tokens: a tenant's admins create (at most `token_create_limit_per_hour`), list and revoke API tokens. */
export const tokenRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { backend, now }) => {
  const admin = { preHandler: app.requireRole('admin') };
  app.post(
    '/v1/tokens',
    {
      preHandler: [app.requireRole('admin'), app.limits.tokenCreate],
      schema: { tags: ['auth'], body: CreateTokenBody, response: { 201: CreatedToken, ...errors } },
    },
    async (req, reply) => {
      const p = principal(req);
      const { record, token } = await createApiToken(backend, {
        tenantId: p.tenantId,
        role: req.body.role,
        label: req.body.label ?? null,
        ...(req.body.ttl_s ? { ttlMs: req.body.ttl_s * 1000 } : {}),
        now: now(),
      });
      await backend.audit(p.tenantId, 'token.created', 'token', record.id, { role: record.role });
      reply.code(201);
      return { token, ...tokenObject(record) };
    },
  );
  app.get(
    '/v1/tokens',
    { ...admin, schema: { tags: ['auth'], response: { 200: List(TokenObject), ...errors } } },
    async (req) => ({
      items: (await backend.listTokens(principal(req).tenantId)).map(tokenObject),
      next_cursor: null,
    }),
  );
  app.delete(
    '/v1/tokens/:id',
    { ...admin, schema: { tags: ['auth'], params: IdParams, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const p = principal(req);
      if (!(await backend.revokeToken(p.tenantId, req.params.id, now()))) {
        throw new FloeError('not_found', 'no such token');
      }
      await backend.audit(p.tenantId, 'token.revoked', 'token', req.params.id, {});
      reply.code(204);
      return null;
    },
  );
};
