/**
 * /v1/webhooks: a tenant's admins register URLs for events (docs/webhooks.md). The signing
 * secret is in the answers of POST /v1/webhooks and of rotate-secret only, never in a listing.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  CreateWebhookBody,
  IdParams,
  WebhookDeliveryObject,
  WebhookObject,
  WebhookWithSecret,
} from '../../protocol/api.js';
import { Strict } from '../../protocol/schema.js';
import type { WebhookService } from '../services/webhooks.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export const webhookRoutes: FastifyPluginAsyncTypebox<{ webhooks: WebhookService }> = async (
  app,
  { webhooks },
) => {
  const admin = app.requireRole('admin');
  const tags = ['webhooks'];

  app.post(
    '/v1/webhooks',
    {
      preHandler: admin,
      schema: {
        tags,
        operationId: 'createWebhook',
        summary: 'Register a webhook',
        description:
          'Deliveries of the chosen events (session.completed, session.failed, approval.pending, key.active, signer.quarantined) go to `url` as signed POSTs (`Floe-Signature: t=…,v1=…`, HMAC-SHA256 of "t.body"; docs/webhooks.md). The signing secret is in this answer only: keep it.',
        body: CreateWebhookBody,
        response: {
          201: described(WebhookWithSecret, 'The webhook and its signing secret (shown once)'),
          ...problems(...AUTHENTICATED, ...WITH_BODY),
        },
      },
    },
    async (req, reply) => {
      const out = await webhooks.create(principal(req).tenantId, req.body);
      reply.code(201);
      return out;
    },
  );

  app.get(
    '/v1/webhooks',
    {
      preHandler: admin,
      schema: {
        tags,
        operationId: 'listWebhooks',
        summary: "List the tenant's webhooks",
        description: 'Every webhook of your tenant, without secrets.',
        response: {
          200: described(Strict({ items: Type.Array(WebhookObject) }), 'The webhooks'),
          ...problems(...AUTHENTICATED),
        },
      },
    },
    async (req) => ({ items: await webhooks.list(principal(req).tenantId) }),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      preHandler: admin,
      schema: {
        tags,
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook',
        description: 'No more deliveries; its delivery log goes with it.',
        params: IdParams,
        response: {
          204: described(Type.Null(), 'Deleted'),
          ...problems(...AUTHENTICATED, 'webhook_not_found'),
        },
      },
    },
    async (req, reply) => {
      await webhooks.remove(principal(req).tenantId, req.params.id);
      reply.code(204);
      return null;
    },
  );

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    {
      preHandler: admin,
      schema: {
        tags,
        operationId: 'rotateWebhookSecret',
        summary: "Rotate a webhook's signing secret",
        description:
          'A new secret, in this answer only; deliveries carry a signature with the old one too until its grace period (24 h) ends.',
        params: IdParams,
        response: {
          200: described(WebhookWithSecret, 'The webhook and its new signing secret (shown once)'),
          ...problems(...AUTHENTICATED, 'webhook_not_found'),
        },
      },
    },
    async (req) => webhooks.rotate(principal(req).tenantId, req.params.id),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      preHandler: admin,
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: "A webhook's delivery log",
        description: 'Deliveries newest first: event, attempts, last status code or error, next try.',
        params: IdParams,
        querystring: Strict({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }),
        response: {
          200: described(Strict({ items: Type.Array(WebhookDeliveryObject) }), 'The deliveries'),
          ...problems(...AUTHENTICATED, 'webhook_not_found'),
        },
      },
    },
    async (req) => ({
      items: await webhooks.deliveries(principal(req).tenantId, req.params.id, req.query.limit),
    }),
  );
};
