/** /v1/sessions: signing sessions (DESIGN §7, §12). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  BatchObject,
  CreateBatchBody,
  CreateSessionBody,
  IdempotencyHeaders,
  IdParams,
  List,
  ListQuery,
  SessionObject,
  SessionQuery,
} from '../../protocol/api.js';
import type { SessionService } from '../services/sessions.js';
import { principal } from './auth-plugin.js';
import { errors } from './errors.js';

export const sessionRoutes: FastifyPluginAsyncTypebox<{ sessions: SessionService }> = async (
  app,
  { sessions },
) => {
  const requester = { preHandler: app.requireRole('requester') };
  const viewer = { preHandler: app.requireRole('viewer') };
  app.post(
    '/v1/sessions',
    {
      ...requester,
      schema: {
        tags: ['sessions'],
        body: CreateSessionBody,
        headers: IdempotencyHeaders,
        response: { 200: SessionObject, 201: SessionObject, 202: SessionObject, ...errors },
      },
    },
    async (req, reply) => {
      const { session, created } = await sessions.create(
        principal(req),
        req.body,
        req.headers['idempotency-key'] as string | undefined,
      );
      reply.code(!created ? 200 : session.status === 'completed' ? 201 : 202);
      if (created) reply.header('location', `/v1/sessions/${session.id}`);
      return session;
    },
  );
  app.post(
    '/v1/sessions/batch',
    {
      ...requester,
      schema: {
        tags: ['sessions'],
        description:
          'Sign many intents of one key: one session per item, signed together (one round trip per signer and round). 201 when every item is completed, else 202; each item has its own status, error and culprits.',
        body: CreateBatchBody,
        response: { 201: BatchObject, 202: BatchObject, ...errors },
      },
    },
    async (req, reply) => {
      const items = await sessions.createBatch(principal(req), req.body);
      reply.code(items.every((s) => s.status === 'completed') ? 201 : 202);
      return { items };
    },
  );
  app.get(
    '/v1/sessions',
    {
      ...viewer,
      schema: {
        tags: ['sessions'],
        querystring: ListQuery,
        response: { 200: List(SessionObject), ...errors },
      },
    },
    async (req) =>
      sessions.list(
        principal(req),
        req.query.limit ?? 50,
        req.query.cursor ?? null,
        req.query.status ?? null,
      ),
  );
  app.get(
    '/v1/sessions/:id',
    {
      ...viewer,
      schema: {
        tags: ['sessions'],
        params: IdParams,
        querystring: SessionQuery,
        response: { 200: SessionObject, ...errors },
      },
    },
    async (req) => sessions.get(principal(req), req.params.id, req.query.wait ?? 0),
  );
  app.post(
    '/v1/sessions/:id/cancel',
    {
      ...requester,
      schema: { tags: ['sessions'], params: IdParams, response: { 200: SessionObject, ...errors } },
    },
    async (req) => sessions.cancel(principal(req), req.params.id),
  );
};
