/** Unauthenticated operational endpoints: liveness (with the database) and Prometheus metrics. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { backendInfo } from '../../crypto/backend.js';
import { CoordinatorHealth } from '../../protocol/api.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { Coordinator } from '../services/index.js';

export const healthRoutes: FastifyPluginAsyncTypebox<{
  coordinator: Coordinator;
  metrics: CoordinatorMetrics;
}> = async (app, { coordinator: c, metrics }) => {
  app.get('/healthz', { schema: { hide: true, response: { 200: CoordinatorHealth } } }, async () => {
    await c.backend.countSessionsByStatus();
    return {
      status: 'ok',
      role: 'coordinator' as const,
      identity: c.identityPub,
      database: c.backend.kind,
      crypto_backend: backendInfo().name,
    };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
