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
} from '../../protocol/api.js';
import { type ErrorCode, FloeError } from '../../protocol/errors.js';
import type { BunkerService } from '../bunkers/service.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

const tags = ['bunker'];
/** Every bunker route: the key, and bunkers configured at all (503 without bunker.key). */
const BASE: readonly ErrorCode[] = [...AUTHENTICATED, 'key_not_found', 'unavailable'];
/** Routes on an existing bunker. */
const ON_BUNKER: readonly ErrorCode[] = [...BASE, 'bunker_not_found'];

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
        operationId: 'enableBunker',
        summary: "Enable the key's NIP-46 bunker and issue a bunker:// URL",
        description:
          'Enable the key’s bunker (its remote-signer key is created the first time) and issue a bunker:// URL with a single-use, expiring secret. The secret is shown only in this answer.',
        params: IdParams,
        body: EnableBunkerBody,
        response: {
          201: described(BunkerUrlObject, 'The bunker URL with its secret (shown once)'),
          ...problems(...BASE, ...WITH_BODY, 'key_not_active', 'relay_url_invalid', 'bunker_elsewhere'),
        },
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
      schema: {
        tags,
        operationId: 'getBunker',
        summary: "Read the key's bunker",
        description:
          'The bunker: its transport key, relays, whether it is enabled, where it runs, its clients count.',
        params: IdParams,
        response: { 200: described(BunkerObject, 'The bunker'), ...problems(...ON_BUNKER) },
      },
    },
    async (req) => svc().state(principal(req), req.params.id),
  );
  app.delete(
    '/v1/keys/:id/bunker',
    {
      ...operator,
      schema: {
        tags,
        operationId: 'disableBunker',
        summary: "Disable the key's bunker",
        description: 'Disable the bunker: it stops answering, unused secrets are dropped; clients are kept.',
        params: IdParams,
        response: { 200: described(BunkerObject, 'The disabled bunker'), ...problems(...ON_BUNKER) },
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
        operationId: 'connectBunkerClient',
        summary: "Accept a client's nostrconnect:// URI",
        description:
          'Accept a client’s nostrconnect:// URI: the bunker answers connect with the URI’s secret on its relays.',
        params: IdParams,
        body: BunkerConnectBody,
        response: {
          201: described(BunkerConnectedObject, 'The connected client'),
          ...problems(...ON_BUNKER, ...WITH_BODY, 'bunker_disabled', 'bunker_elsewhere', 'relay_url_invalid'),
        },
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
      schema: {
        tags,
        operationId: 'listBunkerClients',
        summary: "List the bunker's clients",
        description: 'The clients connected to the bunker, with their permissions.',
        params: IdParams,
        response: { 200: described(List(BunkerClientObject), 'The clients'), ...problems(...ON_BUNKER) },
      },
    },
    async (req) => ({ items: await svc().clients(principal(req), req.params.id), next_cursor: null }),
  );
  app.delete(
    '/v1/keys/:id/bunker/clients/:pubkey',
    {
      ...operator,
      schema: {
        tags,
        operationId: 'revokeBunkerClient',
        summary: 'Revoke a bunker client',
        description: 'Revoke a client: it is unknown from now on; its held requests are refused.',
        params: BunkerClientParams,
        response: {
          204: { type: 'null', description: 'Revoked' },
          ...problems(...ON_BUNKER, 'bunker_client_not_found'),
        },
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
        operationId: 'listBunkerApprovals',
        summary: 'List requests held for an operator',
        description: 'Requests held for an operator (the client was sent auth_url), pending and unexpired.',
        params: IdParams,
        response: {
          200: described(List(BunkerApprovalObject), 'The held requests'),
          ...problems(...ON_BUNKER),
        },
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
        operationId: 'getBunkerApproval',
        summary: 'Read a held request',
        description: 'One held request (the auth_url a client is sent points here).',
        params: BunkerApprovalParams,
        response: {
          200: described(BunkerApprovalObject, 'The held request'),
          ...problems(...ON_BUNKER, 'bunker_approval_not_found'),
        },
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
          operationId: action === 'approve' ? 'approveBunkerRequest' : 'denyBunkerRequest',
          summary: `${action === 'approve' ? 'Approve' : 'Deny'} a held request`,
          description: `${action === 'approve' ? 'Approve' : 'Deny'} a held request; the bunker answers the client.`,
          params: BunkerApprovalParams,
          response: {
            200: described(BunkerApprovalObject, `The held request, ${decision}`),
            ...problems(...ON_BUNKER, 'bunker_approval_not_found', 'bunker_disabled', 'conflict'),
          },
        },
      },
      async (req) => svc().decide(principal(req), req.params.id, req.params.approval_id, decision),
    );
  }
};
