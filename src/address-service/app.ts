/**
 * The address tier (DESIGN §14, seed 004 "Tier 3"): `floe address-service`, its own process and
 * port, safe to expose to the internet. It serves the address endpoints and nothing else:
 *
 *   POST /v1/addresses {passphrase}              GET /v1/keys/:id/addresses?branch&from&count
 *   GET  /v1/keys/:id/descriptor                 POST /v1/keys/:id/addresses {passphrase}
 *   GET  /healthz
 *
 * It holds no secret: no key, no database credential, no token of its own. Each request is
 * checked here (a bearer token present, the body and query against the same schemas as the
 * coordinator's, a per-client-address rate limit) and forwarded, with the caller's token, to the
 * coordinator's internal API, which authenticates it (API tokens of role `address`, or operator
 * and admin), applies its database-backed limits and runs any DKG with the signers. Only the
 * fields of the address schemas come back. Taking this process over gives an attacker what its
 * callers' tokens allow there: addresses; never signing, whatever route it asks for.
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TSchema } from '@sinclair/typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { limiter, perMinuteLimit } from '../coordinator/auth/rate-limit.js';
import {
  CreateAddressBody,
  DerivedAddressList,
  DerivedAddressQuery,
  DerivePassphraseBody,
  DescriptorObject,
  IdParams,
  PassphraseAddressObject,
  PassphraseDerivedAddressObject,
  Problem,
} from '../protocol/api.js';
import { FloeError, PROBLEM_CONTENT_TYPE, problemOf, toProblem } from '../protocol/errors.js';

export const ADDRESS_SERVICE_VERSION = '0.1.0';

export interface AddressServiceOptions {
  /** The coordinator's API, e.g. http://10.0.0.5:8080. */
  coordinatorUrl: string;
  /** Requests per minute per client address (IPv6: per /64), in this process. */
  rateLimitPerMin: number;
  /** Deadline of a forwarded request beyond the `wait` it asks for. */
  requestTimeoutMs: number;
  trustProxy?: string[];
  logger?: FastifyServerOptions['logger'];
  https?: { key: Buffer; cert: Buffer };
}

/** Response headers of the coordinator worth passing on (its limits). */
const PASSED_HEADERS = ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'];

export async function buildAddressService(o: AddressServiceOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: 16 * 1024,
    ...(o.trustProxy?.length ? { trustProxy: o.trustProxy } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    ...(o.https ? { https: o.https } : {}),
    frameworkErrors: (_err: unknown, _req: FastifyRequest, reply: FastifyReply) => {
      const p = problemOf('invalid_request', 'malformed request URL');
      reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
    },
  } as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((err, req, reply) => {
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message: string };
    let p: ReturnType<typeof problemOf>;
    if (e.validation) p = problemOf('invalid_request', e.message);
    else if (e.statusCode === 413) p = problemOf('payload_too_large', 'request body too large');
    else if (e.statusCode === 415) p = problemOf('unsupported_media_type', 'expected application/json');
    else if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      p = problemOf('invalid_request', 'body is not valid JSON');
    } else {
      p = toProblem(err);
      if (p.code === 'internal') req.log.error({ err: e.message }, 'internal error');
    }
    reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
  });
  app.setNotFoundHandler((_req, reply) => {
    reply
      .code(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problemOf('not_found', 'no such endpoint: this is the address service (addresses only)'));
  });

  // The in-memory store of @fastify/rate-limit (this process), through the coordinator's limiter.
  await app.register(rateLimit, { global: false });
  const perClient = limiter(app as unknown as FastifyInstance, {
    name: 'address-client',
    limit: perMinuteLimit(o.rateLimitPerMin),
    key: (req) => normalizeIP(req.ip, 64),
    what: 'from this address',
  });

  app.get('/healthz', async () => ({
    status: 'ok',
    role: 'address-service',
    version: ADDRESS_SERVICE_VERSION,
  }));

  const base = o.coordinatorUrl.replace(/\/+$/, '');
  const forward = async (
    req: FastifyRequest,
    reply: FastifyReply,
    path: string,
    body: unknown,
    waitMs: number,
  ): Promise<void> => {
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || !/^Bearer +\S+/.test(auth)) {
      throw new FloeError('unauthorized', 'missing bearer token');
    }
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method: req.method,
        headers: {
          authorization: auth,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(waitMs + o.requestTimeoutMs),
      });
    } catch {
      throw new FloeError('unavailable', 'the coordinator did not answer', {
        hint: 'the address service forwards to coordinator_url; check that it runs and is reachable',
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new FloeError('unavailable', `the coordinator answered ${res.status} without JSON`);
    }
    for (const h of PASSED_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) reply.header(h, v);
    }
    reply.code(res.status);
    // Refusals pass as they are (problem documents carry no secret); answers through the
    // response schema of the route, which drops any field it does not declare.
    if (res.status >= 400) reply.type(PROBLEM_CONTENT_TYPE);
    await reply.send(json);
  };
  const responses = (ok: Record<number, TSchema>) => ({
    ...ok,
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    409: Problem,
    422: Problem,
    429: Problem,
    500: Problem,
    502: Problem,
    503: Problem,
  });
  const enc = encodeURIComponent;

  app.post(
    '/v1/addresses',
    {
      onRequest: perClient,
      schema: {
        body: CreateAddressBody,
        response: responses({
          200: PassphraseAddressObject,
          201: PassphraseAddressObject,
          202: PassphraseAddressObject,
        }),
      },
    },
    async (req, reply) =>
      forward(req, reply as FastifyReply, '/v1/addresses', req.body, req.body.wait ?? 60_000),
  );
  app.get(
    '/v1/keys/:id/addresses',
    {
      onRequest: perClient,
      schema: {
        params: IdParams,
        querystring: DerivedAddressQuery,
        response: responses({ 200: DerivedAddressList }),
      },
    },
    async (req, reply) => {
      const q = new URLSearchParams();
      for (const k of ['branch', 'from', 'count'] as const) {
        if (req.query[k] !== undefined) q.set(k, String(req.query[k]));
      }
      const qs = q.toString();
      return forward(
        req,
        reply as FastifyReply,
        `/v1/keys/${enc(req.params.id)}/addresses${qs ? `?${qs}` : ''}`,
        undefined,
        0,
      );
    },
  );
  app.get(
    '/v1/keys/:id/descriptor',
    { onRequest: perClient, schema: { params: IdParams, response: responses({ 200: DescriptorObject }) } },
    async (req, reply) =>
      forward(req, reply as FastifyReply, `/v1/keys/${enc(req.params.id)}/descriptor`, undefined, 0),
  );
  app.post(
    '/v1/keys/:id/addresses',
    {
      onRequest: perClient,
      schema: {
        params: IdParams,
        body: DerivePassphraseBody,
        response: responses({ 200: PassphraseDerivedAddressObject }),
      },
    },
    async (req, reply) =>
      forward(req, reply as FastifyReply, `/v1/keys/${enc(req.params.id)}/addresses`, req.body, 0),
  );
  return app as unknown as FastifyInstance;
}
