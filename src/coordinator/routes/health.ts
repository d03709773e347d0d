/**
 * Operational endpoints: liveness (with the database), unauthenticated; and Prometheus
 * metrics, which are not public (they show per-tenant activity and the signers' faults):
 *
 * - by default /metrics answers loopback clients only (127.0.0.0/8, ::1);
 * - with a metrics token (`metrics_token_file`), it answers any client that presents it as
 *   `Authorization: Bearer <token>` (compared in constant time), and nobody else (401);
 * - with `metrics_listen`, it is served on that separate address (with /healthz, see
 *   ../http.ts buildMetricsApi), where the network decides who may scrape, and not on the API.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { backendInfo } from '../../crypto/backend.js';
import { CoordinatorHealth } from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { Coordinator } from '../services/index.js';
import { described, problems } from './errors.js';

/** Who may read /metrics: `token` set: whoever presents it; `open`: anyone; else loopback only. */
export interface MetricsAccess {
  token?: string;
  open?: boolean;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (::ffff:127.0.0.1). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  if (isIPv4(address)) return LOOPBACK.check(address, 'ipv4');
  return isIPv6(address) && LOOPBACK.check(address, 'ipv6');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Throws unless the request may read the metrics. */
export function checkMetricsAccess(access: MetricsAccess, req: FastifyRequest): void {
  if (access.token !== undefined) {
    const h = req.headers.authorization;
    const given = h?.startsWith('Bearer ') ? h.slice(7).trim() : '';
    // Hashes first: equal lengths for timingSafeEqual, and nothing learned from the length.
    if (!given || !timingSafeEqual(digest(given), digest(access.token))) {
      throw new FloeError('unauthorized', 'metrics need the metrics bearer token');
    }
    return;
  }
  if (access.open) return;
  if (!isLoopback(req.socket.remoteAddress)) {
    throw new FloeError(
      'forbidden',
      'metrics are served to loopback clients only (configure metrics_token_file or metrics_listen)',
    );
  }
}

/** GET /metrics behind `access`. */
export const metricsRoutes: FastifyPluginAsyncTypebox<{
  metrics: CoordinatorMetrics;
  access: MetricsAccess;
}> = async (app, { metrics, access }) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition (floe_* series: HTTP answers, sessions, signer latency and faults, quarantine). Not public: by default loopback clients only; with a metrics token (metrics_token_file), whoever sends it as `Authorization: Bearer <token>`; with metrics_listen, only on that separate address.',
        security: [{}, { metricsToken: [] }],
        produces: ['text/plain'],
        response: {
          200: described(Type.String(), 'The metrics, Prometheus text format 0.0.4'),
          ...problems('unauthorized', 'forbidden', 'internal'),
        },
      },
      onRequest: async (req, reply) => {
        try {
          checkMetricsAccess(access, req);
        } catch (e) {
          if (access.token !== undefined) reply.header('www-authenticate', 'Bearer realm="metrics"');
          throw e;
        }
      },
    },
    async (_req, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
};

/** GET /healthz, and GET /metrics unless `metrics` is false (served elsewhere). */
export const healthRoutes: FastifyPluginAsyncTypebox<{
  coordinator: Coordinator;
  metrics: CoordinatorMetrics;
  metricsAccess: MetricsAccess | false;
}> = async (app, { coordinator: c, metrics, metricsAccess }) => {
  const healthz = {
    tags: ['operations'],
    operationId: 'getHealth',
    summary: 'Liveness, with the database',
    description:
      'Answers 200 when the coordinator runs and its database answers; shows its identity key (what signers allowlist), database kind and crypto backend. No token needed.',
    security: [],
    response: { 200: described(CoordinatorHealth, 'The coordinator is up'), ...problems('internal') },
  };
  app.get('/healthz', { schema: healthz }, async () => {
    await c.backend.countSessionsByStatus();
    return {
      status: 'ok',
      role: 'coordinator' as const,
      identity: c.identityPub,
      database: c.backend.kind,
      crypto_backend: backendInfo().name,
    };
  });
  if (metricsAccess !== false) await app.register(metricsRoutes, { metrics, access: metricsAccess });
};
