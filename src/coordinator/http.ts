/**
 * The coordinator's public HTTP API (DESIGN §9): one fastify plugin per resource under
 * ./routes, validated and serialized with the contract in src/protocol/api.ts (TypeBox type
 * provider), which also generates /openapi.json and /docs. Errors are
 * application/problem+json with a stable `code`. Bearer auth and rate limits
 * (./routes/auth-plugin.ts); /metrics only for loopback, a metrics token, or on a separate
 * listener (./routes/health.ts).
 */
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import { PROBLEM_CONTENT_TYPE, problemOf, toProblem } from '../protocol/errors.js';
import { dashboardPlugin } from './dashboard/plugin.js';
import { type AjvError, RouteMethods, unroutedProblem, validationProblem } from './http-problems.js';
import type { CoordinatorMetrics } from './metrics.js';
import { addressRoutes } from './routes/addresses.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { tokenExchangeRoutes, tokenRoutes } from './routes/auth.js';
import { authPlugin, DEFAULT_RATE_LIMITS, type RateLimitSettings } from './routes/auth-plugin.js';
import { bunkerRoutes } from './routes/bunker.js';
import { healthRoutes, type MetricsAccess } from './routes/health.js';
import { keyControlRoutes } from './routes/key-controls.js';
import { keyRoutes } from './routes/keys.js';
import { nostrCryptoRoutes } from './routes/nostr-crypto.js';
import { sessionRoutes } from './routes/sessions.js';
import { signerRoutes } from './routes/signers.js';
import { tenantRoutes } from './routes/tenants.js';
import { webhookRoutes } from './routes/webhooks.js';
import type { Coordinator } from './services/index.js';

const API_DESCRIPTION = [
  'Threshold BIP-340 signing (FROST): keys exist only as shares on the signers; the coordinator runs key generation and signing sessions.',
  '',
  'Every refusal is `application/problem+json` (RFC 9457) with a stable `code`, a `detail` about this request and a `hint` saying what to do; `type` is `about:blank`, the codes are catalogued in docs/errors.md (generated from src/protocol/errors.ts). An unknown path is `not_found`, a known path with another method `method_not_allowed` (405, with `Allow`), a body that is not JSON `unsupported_media_type` (415).',
].join('\n');

const API_TAGS = [
  { name: 'keys', description: 'Threshold keys: DKG, dealer import, reading, default relays' },
  { name: 'sessions', description: 'Signing sessions: digests, Nostr events, PSBTs' },
  { name: 'approvals', description: 'Steward approvals (docs/approvals.md)' },
  { name: 'addresses', description: 'Bitcoin addresses and descriptors (docs/custody.md)' },
  { name: 'bunker', description: 'The NIP-46 remote signer of a key (docs/nostr.md)' },
  { name: 'nostr', description: 'NIP-44 and NIP-04 encryption by threshold ECDH' },
  { name: 'signers', description: 'The shared signer registry' },
  { name: 'tenants', description: 'Tenants (admins of the system tenant)' },
  { name: 'auth', description: 'Access tokens and API tokens' },
  { name: 'operations', description: 'Health and metrics' },
];

/** The parts of the generated OpenAPI document that problemResponses rewrites. */
interface OpenApiDocument {
  paths?: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>
  >;
}

/** Error responses are application/problem+json: the generator would say application/json. */
function problemResponses<T extends OpenApiDocument>(doc: T): T {
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        const media = r.content && Object.values(r.content)[0];
        if (Number(status) >= 400 && media) r.content = { [PROBLEM_CONTENT_TYPE]: media };
      }
    }
  }
  return doc;
}

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
    // verbose: errors carry the failing schema, so a refusal can say what the field expects.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, verbose: true },
    },
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
  // Bodies are JSON only: text/plain would reach the schema as a string ("body must be object").
  app.removeContentTypeParser('text/plain');
  // Every route's methods, so that a known path with another method is 405, not 404.
  const routes = new RouteMethods();
  app.addHook('onRoute', (r) => routes.add(r.method, r.url));
  app.setErrorHandler((err, req, reply) => {
    let p: ReturnType<typeof problemOf>;
    const e = err as {
      validation?: AjvError[];
      validationContext?: string;
      statusCode?: number;
      code?: string;
      message: string;
    };
    if (e.validation) p = validationProblem(e.validationContext, e.validation);
    else if (e.statusCode === 413) p = problemOf('payload_too_large', 'request body too large');
    else if (e.statusCode === 415)
      p = problemOf('unsupported_media_type', 'the request body must be application/json');
    else if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      p = problemOf('invalid_request', 'body is not valid JSON', {
        hint: 'send one complete JSON object (check quotes, commas and brackets)',
      });
    } else if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      p = problemOf('invalid_request', 'Content-Type is application/json but the body is empty', {
        hint: 'send a JSON object ({} at least), or no Content-Type when there is no body',
      });
    } else {
      p = toProblem(err);
      if (p.code === 'internal') req.log.error({ err: e.message }, 'internal error');
    }
    o.metrics.http.inc({ route: req.routeOptions.url ?? 'unknown', status: String(p.status) });
    reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
  });
  app.setNotFoundHandler((req, reply) => {
    const p = unroutedProblem(routes, req.method, req.url);
    if (Array.isArray(p.allow)) reply.header('allow', p.allow.join(', '));
    reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
  });
  return app;
}

/**
 * GET /docs and /docs/*: the Swagger UI, loaded on the first request for it rather than at
 * start (@fastify/swagger-ui with @fastify/static and the UI's assets: a few MB of memory that
 * most coordinators never use). It runs in a small Fastify instance of its own, mounted at the
 * same prefix and fed the main app's OpenAPI document; requests are passed to it with inject().
 */
function lazySwaggerUi(app: FastifyInstance): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  let docs: Promise<FastifyInstance> | undefined;
  const load = async () => {
    const { default: swaggerUi } = await import('@fastify/swagger-ui');
    const d = Fastify({ logger: false });
    // swagger-ui depends on @fastify/swagger by name and serves the document through fastify.swagger().
    await d.register(
      fp(
        async (f) => {
          f.decorate('swagger', ((o?: { yaml?: boolean }) => app.swagger(o as never)) as never);
        },
        { name: '@fastify/swagger' },
      ),
    );
    await d.register(swaggerUi, { routePrefix: '/docs' });
    // the same problem+json answers as the main app
    d.setNotFoundHandler((_req, reply) => {
      reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problemOf('not_found', 'no such endpoint'));
    });
    d.setErrorHandler((err, _req, reply) => {
      const p = toProblem(err);
      reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
    });
    await d.ready();
    return d;
  };
  return async (req, reply) => {
    docs ??= load().catch((e) => {
      docs = undefined;
      throw e;
    });
    const r = await (await docs).inject({
      method: req.method as 'GET' | 'HEAD',
      url: req.url,
      headers: req.headers,
    });
    reply.code(r.statusCode).headers(r.headers).send(r.rawPayload);
  };
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
        description: API_DESCRIPTION,
      },
      tags: API_TAGS,
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An access token from POST /v1/auth/token (API tokens are accepted too)',
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'The metrics token (metrics_token_file)',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    transformObject: (d) =>
      problemResponses(('openapiObject' in d ? d.openapiObject : {}) as OpenApiDocument) as never,
  });
  const docs = lazySwaggerUi(app as unknown as FastifyInstance);
  app.get('/docs', { schema: { hide: true } }, docs);
  app.get('/docs/*', { schema: { hide: true } }, docs);

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
    await v1.register(keyControlRoutes, { controls: c.keyControls });
    if (c.addresses) await v1.register(addressRoutes, { addresses: c.addresses });
    await v1.register(bunkerRoutes, { bunkers: c.bunkers });
    await v1.register(sessionRoutes, { sessions: c.sessions });
    await v1.register(approvalRoutes, { approvals: c.approvals });
    await v1.register(nostrCryptoRoutes, { ecdh: c.ecdh });
    await v1.register(signerRoutes, { registry: c.registry });
    await v1.register(tenantRoutes, { backend: c.backend, now, systemTenant: o.systemTenant ?? 'default' });
    await v1.register(webhookRoutes, { webhooks: c.webhooks });
    await v1.register(auditRoutes, { db: c.webhooks.db });
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(dashboardPlugin); // GET / and /dashboard/*: the operator dashboard (docs/dashboard.md)
  return app as unknown as FastifyInstance;
}
