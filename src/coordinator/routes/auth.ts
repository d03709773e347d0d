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
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

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
  const common = {
    tags: ['auth'],
    security: [],
    response: {
      200: described(TokenResponse, 'A short-lived access token (Bearer) and a single-use refresh token'),
      ...problems(...AUTHENTICATED, ...WITH_BODY),
    },
  };
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
    {
      onRequest: app.limits.authAddress,
      schema: {
        ...common,
        operationId: 'exchangeToken',
        summary: 'Exchange an API token for an access token',
        description:
          "Present an API token (floe_<id>_<secret>) and get a short-lived access token, never valid past the API token's expiry, and a refresh token. No bearer needed: the API token is the credential. Rate limited per client address and per API token.",
        body: TokenBody,
      },
    },
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
    {
      onRequest: app.limits.authAddress,
      schema: {
        ...common,
        operationId: 'refreshToken',
        summary: 'Refresh an access token',
        description:
          'Spend a refresh token (single use) for a new access token and a new refresh token. Rate limited like the exchange.',
        body: RefreshBody,
      },
    },
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
      schema: {
        tags: ['auth'],
        operationId: 'createToken',
        summary: 'Create an API token',
        description:
          'Create an API token of a role (viewer, requester, operator, address, admin) in your tenant; the token is shown once, only its hash is stored. Counts against `token_create_limit_per_hour`.',
        body: CreateTokenBody,
        response: {
          201: described(CreatedToken, 'The token (shown once) and its record'),
          ...problems(...AUTHENTICATED, ...WITH_BODY),
        },
      },
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
    {
      ...admin,
      schema: {
        tags: ['auth'],
        operationId: 'listTokens',
        summary: 'List API tokens',
        description: "The tenant's API tokens (never their secrets), revoked ones included.",
        response: { 200: described(List(TokenObject), 'The tokens'), ...problems(...AUTHENTICATED) },
      },
    },
    async (req) => ({
      items: (await backend.listTokens(principal(req).tenantId)).map(tokenObject),
      next_cursor: null,
    }),
  );
  app.delete(
    '/v1/tokens/:id',
    {
      ...admin,
      schema: {
        tags: ['auth'],
        operationId: 'revokeToken',
        summary: 'Revoke an API token',
        description:
          'Revoke an API token of your tenant: it and the access tokens made from it stop working.',
        params: IdParams,
        response: {
          204: described(Type.Null(), 'Revoked'),
          ...problems(...AUTHENTICATED, 'token_not_found'),
        },
      },
    },
    async (req, reply) => {
      const p = principal(req);
      if (!(await backend.revokeToken(p.tenantId, req.params.id, now()))) {
        throw new FloeError('token_not_found', 'no such token');
      }
      await backend.audit(p.tenantId, 'token.revoked', 'token', req.params.id, {});
      reply.code(204);
      return null;
    },
  );
};
