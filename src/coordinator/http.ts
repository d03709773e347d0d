/**
 * The coordinator's public HTTP API (DESIGN §9). Requests are validated by the schemas in
 * ./schemas.ts (additionalProperties: false), which also generate /openapi.json and /docs.
 * Errors are application/problem+json with a stable `code`. Bearer auth: an API token or
 * a 15-minute access JWT from POST /v1/auth/token.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { type Static, Type } from '@sinclair/typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { FloeError, PROBLEM_CONTENT_TYPE, problemOf, toProblem } from '../../protocol/errors.js';
import type { Coordinator } from '../app.js';
import {
  ACCESS_TTL_S,
  createApiToken,
  hasRole,
  issueRefresh,
  type Principal,
  RateLimiter,
  rotateRefresh,
  signAccessToken,
  verifyAccessToken,
  verifyApiToken,
} from '../auth/tokens.js';
import type { CoordinatorMetrics } from '../metrics.js';
import {
  CreateKeyBody,
  CreateSessionBody,
  IdParams,
  ImportKeyBody,
  KeyObject,
  List,
  ListQuery,
  Problem,
  RegisterSignerBody,
  Role,
  SessionObject,
  SignerObject,
  UpdateSignerBody,
} from './schemas.js';

export interface ApiOptions {
  coordinator: Coordinator;
  metrics: CoordinatorMetrics;
  jwtSecret: Uint8Array;
  now?: () => number;
  logger?: FastifyServerOptions['logger'];
  https?: { key: Buffer; cert: Buffer };
  /** Requests per second per token, and burst. Default 50/s, burst 200. */
  rateLimit?: { perSecond: number; burst: number };
  bodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const TokenBody = Type.Object({ token: Type.String({ maxLength: 200 }) }, { additionalProperties: false });
const RefreshBody = Type.Object(
  { refresh_token: Type.String({ maxLength: 200 }) },
  { additionalProperties: false },
);
const TokenResponse = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer(),
    refresh_token: Type.String(),
  },
  { additionalProperties: false },
);
const CreateTokenBody = Type.Object(
  {
    role: Role,
    label: Type.Optional(Type.String({ maxLength: 200 })),
    ttl_s: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400 })),
  },
  { additionalProperties: false },
);
const TokenObject = Type.Object(
  {
    id: Type.String(),
    role: Role,
    label: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.Integer(),
    expires_at: Type.Union([Type.Integer(), Type.Null()]),
    revoked_at: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);
const CreatedToken = Type.Object(
  { token: Type.String({ description: 'shown once' }), ...TokenObject.properties },
  { additionalProperties: false },
);
const SessionQuery = Type.Object(
  { wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })) },
  { additionalProperties: false },
);
const IdempotencyHeaders = Type.Object(
  { 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: true },
);

const errors = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 429: Problem };

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  const now = o.now ?? Date.now;
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 256 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    ...(o.https ? { https: o.https } : {}),
    // Errors the router raises before any route runs answer in the same problem+json shape.
    frameworkErrors: (err: { code?: string }, _req: FastifyRequest, reply: FastifyReply) => {
      const p =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? problemOf('uri_too_long', 'a path parameter is too long')
          : problemOf('invalid_request', 'malformed request URL');
      reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
    },
  } as FastifyServerOptions);
  const limiter = new RateLimiter(o.rateLimit?.perSecond ?? 50, o.rateLimit?.burst ?? 200);
  const c = o.coordinator;

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Floe coordinator API',
        version: '0.1.0',
        description: 'Threshold BIP-340 signing (FROST)',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((err, req, reply) => {
    let p: ReturnType<typeof problemOf>;
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message: string };
    if (e.validation) p = problemOf('invalid_request', e.message);
    else if (e.statusCode === 413) p = problemOf('payload_too_large', 'request body too large');
    else if (e.statusCode === 415) p = problemOf('unsupported_media_type', 'expected application/json');
    else if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      p = problemOf('invalid_request', 'body is not valid JSON');
    } else {
      p = toProblem(err);
      if (p.code === 'internal') req.log.error({ err: e.message }, 'internal error');
    }
    o.metrics.http.inc({ route: req.routeOptions.url ?? 'unknown', status: String(p.status) });
    reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
  });
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problemOf('not_found', 'no such endpoint'));
  });
  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode < 400)
      o.metrics.http.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });

  /** Bearer auth for /v1 routes (except the token exchange itself), then the rate limit. */
  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) throw new FloeError('unauthorized', 'missing bearer token');
    const bearer = h.slice(7).trim();
    if (bearer.startsWith('floe_')) {
      const t = await verifyApiToken(c.backend, bearer, now());
      req.principal = { tenantId: t.tenantId, role: t.role, tokenId: t.id };
    } else {
      const claims = verifyAccessToken(o.jwtSecret, bearer, now());
      const t = await c.backend.getToken(claims.tid, claims.sub);
      if (!t || t.revokedAt !== null) throw new FloeError('unauthorized', 'token revoked');
      req.principal = { tenantId: claims.tid, role: claims.role, tokenId: claims.sub };
    }
    const wait = limiter.take(req.principal.tokenId, now());
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new FloeError('rate_limited', 'too many requests for this token');
    }
  };
  const p = (req: FastifyRequest) => req.principal!;

  // ---- health, metrics
  app.get('/healthz', { schema: { hide: true } }, async () => {
    await c.backend.countSessionsByStatus();
    return { status: 'ok', role: 'coordinator', identity: c.identityPub, database: c.backend.kind };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(o.metrics.registry.contentType);
    return o.metrics.registry.metrics();
  });

  // ---- auth
  app.post<{ Body: Static<typeof TokenBody> }>(
    '/v1/auth/token',
    {
      schema: { tags: ['auth'], security: [], body: TokenBody, response: { 200: TokenResponse, ...errors } },
    },
    async (req) => {
      const t = await verifyApiToken(c.backend, req.body.token, now());
      const principal = { tenantId: t.tenantId, role: t.role, tokenId: t.id };
      return {
        access_token: signAccessToken(o.jwtSecret, principal, now()),
        token_type: 'Bearer' as const,
        expires_in: ACCESS_TTL_S,
        refresh_token: await issueRefresh(c.backend, { tenantId: t.tenantId, tokenId: t.id, now: now() }),
      };
    },
  );
  app.post<{ Body: Static<typeof RefreshBody> }>(
    '/v1/auth/refresh',
    {
      schema: {
        tags: ['auth'],
        security: [],
        body: RefreshBody,
        response: { 200: TokenResponse, ...errors },
      },
    },
    async (req) => {
      const r = await rotateRefresh(c.backend, req.body.refresh_token, now());
      return {
        access_token: signAccessToken(o.jwtSecret, r.principal, now()),
        token_type: 'Bearer' as const,
        expires_in: ACCESS_TTL_S,
        refresh_token: r.refresh,
      };
    },
  );

  // ---- everything below needs a bearer token, checked on arrival: before the body is read
  // and validated, so an anonymous caller gets 401 and learns nothing from validation errors.
  await app.register(async (v1) => {
    v1.addHook('onRequest', authenticate);

    v1.post<{ Body: Static<typeof CreateTokenBody> }>(
      '/v1/tokens',
      { schema: { tags: ['auth'], body: CreateTokenBody, response: { 201: CreatedToken, ...errors } } },
      async (req, reply) => {
        if (!hasRole(p(req).role, 'admin')) throw new FloeError('forbidden', 'this needs the admin role');
        const { record, token } = await createApiToken(c.backend, {
          tenantId: p(req).tenantId,
          role: req.body.role as Principal['role'],
          label: req.body.label ?? null,
          ...(req.body.ttl_s ? { ttlMs: req.body.ttl_s * 1000 } : {}),
          now: now(),
        });
        await c.backend.audit(p(req).tenantId, 'token.created', 'token', record.id, { role: record.role });
        reply.code(201);
        return { token, ...tokenObject(record) };
      },
    );
    v1.get(
      '/v1/tokens',
      { schema: { tags: ['auth'], response: { 200: List(TokenObject), ...errors } } },
      async (req) => {
        if (!hasRole(p(req).role, 'admin')) throw new FloeError('forbidden', 'this needs the admin role');
        return { items: (await c.backend.listTokens(p(req).tenantId)).map(tokenObject), next_cursor: null };
      },
    );
    v1.delete<{ Params: Static<typeof IdParams> }>(
      '/v1/tokens/:id',
      { schema: { tags: ['auth'], params: IdParams, response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        if (!hasRole(p(req).role, 'admin')) throw new FloeError('forbidden', 'this needs the admin role');
        if (!(await c.backend.revokeToken(p(req).tenantId, req.params.id, now()))) {
          throw new FloeError('not_found', 'no such token');
        }
        await c.backend.audit(p(req).tenantId, 'token.revoked', 'token', req.params.id, {});
        reply.code(204);
        return null;
      },
    );

    // ---- keys
    v1.post<{ Body: Static<typeof CreateKeyBody> }>(
      '/v1/keys',
      {
        schema: {
          tags: ['keys'],
          body: CreateKeyBody,
          response: { 201: KeyObject, 202: KeyObject, ...errors },
        },
      },
      async (req, reply) => {
        const k = await c.createKey(p(req), req.body);
        reply.code(k.status === 'pending' ? 202 : 201);
        return k;
      },
    );
    v1.post<{ Body: Static<typeof ImportKeyBody> }>(
      '/v1/keys/import',
      { schema: { tags: ['keys'], body: ImportKeyBody, response: { 201: KeyObject, ...errors } } },
      async (req, reply) => {
        reply.code(201);
        return c.importKey(p(req), req.body);
      },
    );
    v1.get<{ Querystring: Static<typeof ListQuery> }>(
      '/v1/keys',
      { schema: { tags: ['keys'], querystring: ListQuery, response: { 200: List(KeyObject), ...errors } } },
      async (req) => c.listKeys(p(req), req.query.limit ?? 50, req.query.cursor ?? null),
    );
    v1.get<{ Params: Static<typeof IdParams> }>(
      '/v1/keys/:id',
      { schema: { tags: ['keys'], params: IdParams, response: { 200: KeyObject, ...errors } } },
      async (req) => c.getKey(p(req), req.params.id),
    );

    // ---- sessions
    v1.post<{ Body: Static<typeof CreateSessionBody>; Headers: Static<typeof IdempotencyHeaders> }>(
      '/v1/sessions',
      {
        schema: {
          tags: ['sessions'],
          body: CreateSessionBody,
          headers: IdempotencyHeaders,
          response: { 200: SessionObject, 201: SessionObject, 202: SessionObject, ...errors },
        },
      },
      async (req, reply) => {
        const { session, created } = await c.createSession(p(req), req.body, req.headers['idempotency-key']);
        reply.code(!created ? 200 : session.status === 'completed' ? 201 : 202);
        if (created) reply.header('location', `/v1/sessions/${session.id}`);
        return session;
      },
    );
    v1.get<{ Querystring: Static<typeof ListQuery> }>(
      '/v1/sessions',
      {
        schema: {
          tags: ['sessions'],
          querystring: ListQuery,
          response: { 200: List(SessionObject), ...errors },
        },
      },
      async (req) =>
        c.listSessions(p(req), req.query.limit ?? 50, req.query.cursor ?? null, req.query.status ?? null),
    );
    v1.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof SessionQuery> }>(
      '/v1/sessions/:id',
      {
        schema: {
          tags: ['sessions'],
          params: IdParams,
          querystring: SessionQuery,
          response: { 200: SessionObject, ...errors },
        },
      },
      async (req) => c.getSession(p(req), req.params.id, req.query.wait ?? 0),
    );
    v1.post<{ Params: Static<typeof IdParams> }>(
      '/v1/sessions/:id/cancel',
      { schema: { tags: ['sessions'], params: IdParams, response: { 200: SessionObject, ...errors } } },
      async (req) => c.cancelSession(p(req), req.params.id),
    );

    // ---- signers
    v1.post<{ Body: Static<typeof RegisterSignerBody> }>(
      '/v1/signers',
      { schema: { tags: ['signers'], body: RegisterSignerBody, response: { 201: SignerObject, ...errors } } },
      async (req, reply) => {
        reply.code(201);
        return c.registerSigner(p(req), req.body);
      },
    );
    v1.get(
      '/v1/signers',
      { schema: { tags: ['signers'], response: { 200: List(SignerObject), ...errors } } },
      async (req) => ({
        items: await c.listSigners(p(req)),
        next_cursor: null,
      }),
    );
    v1.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof UpdateSignerBody> }>(
      '/v1/signers/:id',
      {
        schema: {
          tags: ['signers'],
          params: IdParams,
          body: UpdateSignerBody,
          response: { 200: SignerObject, ...errors },
        },
      },
      async (req) => c.updateSigner(p(req), req.params.id, req.body),
    );
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

function tokenObject(t: {
  id: string;
  role: Principal['role'];
  label: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}) {
  return {
    id: t.id,
    role: t.role,
    label: t.label,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
    revoked_at: t.revokedAt,
  };
}
