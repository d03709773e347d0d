/** /v1/signers: the shared signer registry (admins of the system tenant change it). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams, List, RegisterSignerBody, SignerObject, UpdateSignerBody } from '../../protocol/api.js';
import type { SignerRegistry } from '../services/registry.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export const signerRoutes: FastifyPluginAsyncTypebox<{ registry: SignerRegistry }> = async (
  app,
  { registry },
) => {
  const admin = { preHandler: app.requireRole('admin') };
  app.post(
    '/v1/signers',
    {
      ...admin,
      schema: {
        tags: ['signers'],
        operationId: 'registerSigner',
        summary: 'Register a signer',
        description:
          'Add a signer node to the shared registry (admins of the system tenant): its URL and identity key (`floe signer --print-identity`). The coordinator checks the signer answers with that identity.',
        body: RegisterSignerBody,
        response: {
          201: described(SignerObject, 'The registered signer'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'conflict', 'signer_unverified'),
        },
      },
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
      schema: {
        tags: ['signers'],
        operationId: 'listSigners',
        summary: 'List signers',
        description: 'The shared signer registry, with health (last seen, latency), faults and quarantine.',
        response: { 200: described(List(SignerObject), 'The signers'), ...problems(...AUTHENTICATED) },
      },
    },
    async () => ({ items: await registry.list(), next_cursor: null }),
  );
  app.patch(
    '/v1/signers/:id',
    {
      ...admin,
      schema: {
        tags: ['signers'],
        operationId: 'updateSigner',
        summary: 'Change a signer',
        description:
          'Disable or enable a signer, override its quarantine, or clear its fault count (admins of the system tenant).',
        params: IdParams,
        body: UpdateSignerBody,
        response: {
          200: described(SignerObject, 'The changed signer'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'signer_not_found'),
        },
      },
    },
    async (req) => registry.update(principal(req), req.params.id, req.body),
  );
};
