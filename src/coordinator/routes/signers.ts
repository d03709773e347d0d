/** /v1/signers: the shared signer registry (admins of the system tenant change it). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams, List, RegisterSignerBody, SignerObject, UpdateSignerBody } from '../../protocol/api.js';
import type { SignerRegistry } from '../services/registry.js';
import { principal } from './auth-plugin.js';
import { errors } from './errors.js';

export const signerRoutes: FastifyPluginAsyncTypebox<{ registry: SignerRegistry }> = async (
  app,
  { registry },
) => {
  const admin = { preHandler: app.requireRole('admin') };
  app.post(
    '/v1/signers',
    {
      ...admin,
      schema: { tags: ['signers'], body: RegisterSignerBody, response: { 201: SignerObject, ...errors } },
    },
    async (req, reply) => {
      reply.code(201);
      return registry.register(principal(req), req.body);
    },
  );
  app.get(
    '/v1/signers',
    {
      preHandler: app.requireRole('viewer'),
      schema: { tags: ['signers'], response: { 200: List(SignerObject), ...errors } },
    },
    async () => ({ items: await registry.list(), next_cursor: null }),
  );
  app.patch(
    '/v1/signers/:id',
    {
      ...admin,
      schema: {
        tags: ['signers'],
        params: IdParams,
        body: UpdateSignerBody,
        response: { 200: SignerObject, ...errors },
      },
    },
    async (req) => registry.update(principal(req), req.params.id, req.body),
  );
};
