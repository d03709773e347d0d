/**
 * The coordinator's public HTTP API (DESIGN §9): one fastify plugin per resource under
 * ./routes, validated and serialized with the contract in src/protocol/api.ts (TypeBox type
 * provider), which also generates /openapi.json and /docs. Errors are
 * application/problem+json with a stable `code`. Bearer auth and rate limits
 * (./routes/auth-plugin.ts); /metrics only for loopback, a metrics token, or on a separate
 * listener (./routes/health.ts).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { PROBLEM_CONTENT_TYPE, problemOf, toProblem } from '../protocol/errors.js';
import type { CoordinatorMetrics } from './metrics.js';
import { tokenExchangeRoutes, tokenRoutes } from './routes/auth.js';
import { authPlugin, DEFAULT_RATE_LIMITS, type RateLimitSettings } from './routes/auth-plugin.js';
import { healthRoutes, type MetricsAccess } from './routes/health.js';
import { keyRoutes } from './routes/keys.js';
import { sessionRoutes } from './routes/sessions.js';
import { signerRoutes } from './routes/signers.js';
import { tenantRoutes } from './routes/tenants.js';
import type { Coordinator } from './services/index.js';

export interface ApiOptions {
  coordinator: Coordinator;
  metrics: CoordinatorMetrics;
  jwtSecret: Uint8Array;
  now?: () => number;
  logger?: FastifyServerOptions['logger'];
  https?: { key: Buffer; cert: Buffer };
  /**
   * Rate limits, shared by every coordinator of the database: requests per second per API
   * token and burst (default 50/s, burst 200); auth routes per minute per client address and
   * per API token (default 30); API tokens (and tenants) a tenant creates per hour (default 100).
   */
  rateLimit?: Partial<RateLimitSettings>;
  /**
   * Who may read GET /metrics on the API (routes/health.ts): default loopback clients only;
   * `{ token }`: whoever presents that bearer token; false: not served here (metrics_listen).
   */
  metricsAccess?: MetricsAccess | false;
  /** The tenant whose admins manage tenants and the signer registry. Default `default`. */
  systemTenant?: string;
  bodyLimit?: number;
}

/** Fastify with the coordinator's error shape: problem+json with a stable code, everywhere. */
function baseApp(o: {
  metrics: CoordinatorMetrics;
  logger?: FastifyServerOptions['logger'];
  https?: { key: Buffer; cert: Buffer };
  bodyLimit?: number;
}) {
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
  } as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>();
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
  return app;
}

/**
 * GET /metrics and /healthz alone, for `metrics_listen`: a separate address that only the
 * monitoring network reaches. /metrics is open to anyone who can connect there, unless a
 * metrics token is given.
 */
export async function buildMetricsApi(o: {
  coordinator: Coordinator;
  metrics: CoordinatorMetrics;
  token?: string;
  logger?: FastifyServerOptions['logger'];
}): Promise<FastifyInstance> {
  const app = baseApp({ metrics: o.metrics, ...(o.logger ? { logger: o.logger } : {}) });
  await app.register(healthRoutes, {
    coordinator: o.coordinator,
    metrics: o.metrics,
    metricsAccess: o.token !== undefined ? { token: o.token } : { open: true },
  });
  return app as unknown as FastifyInstance;
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  const now = o.now ?? Date.now;
  const app = baseApp(o);
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

  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode < 400)
      o.metrics.http.inc({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });

  const deps = { backend: c.backend, jwtSecret: o.jwtSecret, now };
  await app.register(authPlugin, { ...deps, rateLimit: { ...DEFAULT_RATE_LIMITS, ...o.rateLimit } });
  await app.register(healthRoutes, {
    coordinator: c,
    metrics: o.metrics,
    metricsAccess: o.metricsAccess ?? {},
  });
  await app.register(tokenExchangeRoutes, deps);
  // Everything else needs a bearer token, checked on arrival: before the body is read and
  // validated, so an anonymous caller gets 401 and learns nothing from validation errors.
  await app.register(async (v1) => {
    v1.addHook('onRequest', app.authenticate);
    await v1.register(tokenRoutes, deps);
    await v1.register(keyRoutes, { keys: c.keys });
    await v1.register(sessionRoutes, { sessions: c.sessions });
    await v1.register(signerRoutes, { registry: c.registry });
    await v1.register(tenantRoutes, { backend: c.backend, now, systemTenant: o.systemTenant ?? 'default' });
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app as unknown as FastifyInstance;
}
