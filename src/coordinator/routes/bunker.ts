/**
 * /v1/keys/:id/bunker: the key's NIP-46 remote signer (DESIGN §14; docs/nostr.md). Issuing a
 * secret, accepting a nostrconnect URI, revoking clients, deciding held requests and disabling
 * are operator acts; reading is for viewers. A secret appears only in the 201 answer of
 * POST …/bunker. Without bunkers configured (no `bunker.key`), every route answers 503.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  BunkerApprovalObject,
  BunkerApprovalParams,
  BunkerClientObject,
  BunkerClientParams,
  BunkerConnectBody,
  BunkerConnectedObject,
  BunkerObject,
  BunkerUrlObject,
  EnableBunkerBody,
  IdParams,
  List,
  Problem,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { BunkerService } from '../bunkers/service.js';
import { principal } from './auth-plugin.js';
import { errors } from './errors.js';

const tags = ['bunker'];
const responses = { ...errors, 503: Problem };

export const bunkerRoutes: FastifyPluginAsyncTypebox<{ bunkers: BunkerService | undefined }> = async (
  app,
  o,
) => {
  const operator = { preHandler: app.requireRole('operator') };
  const viewer = { preHandler: app.requireRole('viewer') };
  const svc = (): BunkerService => {
    if (!o.bunkers) throw new FloeError('unavailable', 'bunkers are not configured on this coordinator');
    return o.bunkers;
  };

  app.post(
    '/v1/keys/:id/bunker',
    {
      ...operator,
      schema: {
        tags,
        description:
          'Enable the key’s bunker (its remote-signer key is created the first time) and issue a bunker:// URL with a single-use, expiring secret. The secret is shown only in this answer.',
        params: IdParams,
        body: EnableBunkerBody,
        response: { 201: BunkerUrlObject, ...responses },
      },
    },
    async (req, reply) => {
      const r = await svc().enable(principal(req), req.params.id, req.body);
      reply.code(201);
      return r;
    },
  );
  app.get(
    '/v1/keys/:id/bunker',
    {
      ...viewer,
      schema: { tags, params: IdParams, response: { 200: BunkerObject, ...responses } },
    },
    async (req) => svc().state(principal(req), req.params.id),
  );
  app.delete(
    '/v1/keys/:id/bunker',
    {
      ...operator,
      schema: {
        tags,
        description: 'Disable the bunker: it stops answering, unused secrets are dropped; clients are kept.',
        params: IdParams,
        response: { 200: BunkerObject, ...responses },
      },
    },
    async (req) => svc().disable(principal(req), req.params.id),
  );
  app.post(
    '/v1/keys/:id/bunker/connect',
    {
      ...operator,
      schema: {
        tags,
        description:
          'Accept a client’s nostrconnect:// URI: the bunker answers connect with the URI’s secret on its relays.',
        params: IdParams,
        body: BunkerConnectBody,
        response: { 201: BunkerConnectedObject, ...responses },
      },
    },
    async (req, reply) => {
      const r = await svc().connect(principal(req), req.params.id, req.body);
      reply.code(201);
      return r;
    },
  );
  app.get(
    '/v1/keys/:id/bunker/clients',
    {
      ...viewer,
      schema: { tags, params: IdParams, response: { 200: List(BunkerClientObject), ...responses } },
    },
    async (req) => ({ items: await svc().clients(principal(req), req.params.id), next_cursor: null }),
  );
  app.delete(
    '/v1/keys/:id/bunker/clients/:pubkey',
    {
      ...operator,
      schema: {
        tags,
        description: 'Revoke a client: it is unknown from now on; its held requests are refused.',
        params: BunkerClientParams,
        response: { 204: { type: 'null' }, ...responses },
      },
    },
    async (req, reply) => {
      await svc().revoke(principal(req), req.params.id, req.params.pubkey);
      reply.code(204);
    },
  );
  app.get(
    '/v1/keys/:id/bunker/approvals',
    {
      ...viewer,
      schema: {
        tags,
        description: 'Requests held for an operator (the client was sent auth_url), pending and unexpired.',
        params: IdParams,
        response: { 200: List(BunkerApprovalObject), ...responses },
      },
    },
    async (req) => ({ items: await svc().approvals(principal(req), req.params.id), next_cursor: null }),
  );
  app.get(
    '/v1/keys/:id/bunker/approvals/:approval_id',
    {
      ...viewer,
      schema: {
        tags,
        description: 'One held request (the auth_url a client is sent points here).',
        params: BunkerApprovalParams,
        response: { 200: BunkerApprovalObject, ...responses },
      },
    },
    async (req) => svc().approval(principal(req), req.params.id, req.params.approval_id),
  );
  for (const [action, decision] of [
    ['approve', 'approved'],
    ['deny', 'denied'],
  ] as const) {
    app.post(
      `/v1/keys/:id/bunker/approvals/:approval_id/${action}`,
      {
        ...operator,
        schema: {
          tags,
          description: `${action === 'approve' ? 'Approve' : 'Deny'} a held request; the bunker answers the client.`,
          params: BunkerApprovalParams,
          response: { 200: BunkerApprovalObject, ...responses },
        },
      },
      async (req) => svc().decide(principal(req), req.params.id, req.params.approval_id, decision),
    );
  }
};
