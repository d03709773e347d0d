/**
 * /v1/keys: DKG (POST /v1/keys), dealer import (POST /v1/keys/import), reading keys, changing
 * a key's default relays (PATCH /v1/keys/:id).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CreateKeyBody,
  IdParams,
  ImportedKeyObject,
  ImportKeyBody,
  KeyObject,
  List,
  ListQuery,
  RefreshKeyBody,
  RefreshObject,
  RefreshParams,
  RepairKeyBody,
  RepairObject,
  RepairParams,
  UpdateKeyBody,
} from '../../protocol/api.js';
import type { KeyService } from '../services/keys.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export const keyRoutes: FastifyPluginAsyncTypebox<{ keys: KeyService }> = async (app, { keys }) => {
  const operator = { preHandler: app.requireRole('operator') };
  const viewer = { preHandler: app.requireRole('viewer') };
  app.post(
    '/v1/keys',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        operationId: 'createKey',
        summary: 'Create a key by distributed key generation',
        description:
          'Run a FROST DKG among the signers (default: every active signer) for a t-of-n key; the secret exists only as shares on the signers. With `wait`, the answer comes when the ceremony ends or the wait runs out (202 while pending). Thresholds that break the safety rules are warned about, or refused with `strict_thresholds`.',
        body: CreateKeyBody,
        response: {
          201: described(KeyObject, 'The key, active'),
          202: described(KeyObject, 'The key, pending: its ceremony is still running'),
          ...problems(
            ...AUTHENTICATED,
            ...WITH_BODY,
            'threshold_unsafe',
            'approval_policy_invalid',
            'dkg_failed',
            'no_quorum',
          ),
        },
      },
    },
    async (req, reply) => {
      const k = await keys.create(principal(req), req.body);
      reply.code(k.status === 'pending' ? 202 : 201);
      return k;
    },
  );
  app.post(
    '/v1/keys/import',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        operationId: 'importKey',
        summary: 'Import a dealer-split key',
        description:
          "Import a key split by a dealer on the client (`floe key import`): each share is sealed to its signer and bound to the key id the client chose. The answer carries each member's signed import certificate, for the client to check against the identities it trusts.",
        body: ImportKeyBody,
        response: {
          201: described(ImportedKeyObject, 'The imported key with its import certificates'),
          ...problems(
            ...AUTHENTICATED,
            ...WITH_BODY,
            'conflict',
            'approval_policy_invalid',
            'import_failed',
            'invalid_package',
          ),
        },
      },
    },
    async (req, reply) => {
      reply.code(201);
      return keys.import(principal(req), req.body);
    },
  );
  app.get(
    '/v1/keys',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'listKeys',
        summary: 'List keys',
        description: "The tenant's keys, a page at a time (`next_cursor` gives the next page).",
        querystring: ListQuery,
        response: { 200: described(List(KeyObject), 'A page of keys'), ...problems(...AUTHENTICATED) },
      },
    },
    async (req) => keys.list(principal(req), req.query.limit ?? 50, req.query.cursor ?? null),
  );
  app.get(
    '/v1/keys/:id',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'getKey',
        summary: 'Read a key',
        description: 'A key: its status, public key (hex and npub), members and approval policy.',
        params: IdParams,
        response: { 200: described(KeyObject, 'The key'), ...problems(...AUTHENTICATED, 'key_not_found') },
      },
    },
    async (req) => keys.get(principal(req), req.params.id),
  );
  app.patch(
    '/v1/keys/:id',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        operationId: 'updateKey',
        summary: "Change a key's default relays",
        description:
          'Change a key: its default relays (ws/wss, at most 20, normalized and deduplicated), used by sessions that ask to publish without naming relays. [] clears them.',
        params: IdParams,
        body: UpdateKeyBody,
        response: {
          200: described(KeyObject, 'The changed key'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'key_not_found', 'relay_url_invalid'),
        },
      },
    },
    async (req) => keys.update(principal(req), req.params.id, req.body),
  );
  app.post(
    '/v1/keys/:id/refresh',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        operationId: 'refreshKey',
        summary: "Refresh a key's shares",
        description:
          'Give every member a new share of the same key (same group key, addresses and npub) and invalidate the old shares: a ceremony among all members; the old shares are wiped on each signer only after every member certified the new ones, and members switch together or not at all. With `wait`, the answer comes when the refresh completed or failed, or the wait ran out (202 while it runs; `committing` means decided: it completes as each member acknowledges).',
        params: IdParams,
        body: RefreshKeyBody,
        response: {
          200: described(RefreshObject, 'The refresh, completed or failed'),
          202: described(RefreshObject, 'The refresh, still running or committing'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'key_not_found', 'key_not_active', 'refresh_pending'),
        },
      },
    },
    async (req, reply) => {
      const r = await keys.refresh(principal(req), req.params.id, req.body ?? {});
      reply.code(r.status === 'completed' || r.status === 'failed' ? 200 : 202);
      return r;
    },
  );
  app.get(
    '/v1/keys/:id/refreshes',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'listKeyRefreshes',
        summary: "A key's share refreshes",
        description: 'The share refreshes of a key, newest first (at most 100).',
        params: IdParams,
        response: {
          200: described(List(RefreshObject), 'The refreshes'),
          ...problems(...AUTHENTICATED, 'key_not_found'),
        },
      },
    },
    async (req) => keys.listRefreshes(principal(req), req.params.id),
  );
  app.get(
    '/v1/keys/:id/refreshes/:refresh_id',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'getKeyRefresh',
        summary: 'Read a share refresh',
        description:
          'One share refresh: its status, generation, the members that committed, and why it failed.',
        params: RefreshParams,
        response: {
          200: described(RefreshObject, 'The refresh'),
          ...problems(...AUTHENTICATED, 'refresh_not_found'),
        },
      },
    },
    async (req) => keys.getRefresh(principal(req), req.params.id, req.params.refresh_id),
  );
  app.post(
    '/v1/keys/:id/repair',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        operationId: 'repairKey',
        summary: "Repair a lost member's share onto a new signer",
        description:
          "Replace a member whose share is lost (its machine died) by a registered signer that every member has on its roster: t helpers let the new signer derive the lost member's share, and nobody learns the secret or another share. Once the new signer certified its share, every member revokes the replaced identity for this key and the new signer takes its place. Refresh the key afterwards: the repaired share equals the lost one. With `wait`, the answer comes when the repair completed or failed, or the wait ran out (202 while it runs).",
        params: IdParams,
        body: RepairKeyBody,
        response: {
          200: described(RepairObject, 'The repair, completed or failed'),
          202: described(RepairObject, 'The repair, still running or committing'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'key_not_found', 'key_not_active', 'no_quorum'),
        },
      },
    },
    async (req, reply) => {
      const r = await keys.repair(principal(req), req.params.id, req.body);
      reply.code(r.status === 'completed' || r.status === 'failed' ? 200 : 202);
      return r;
    },
  );
  app.get(
    '/v1/keys/:id/repairs',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'listKeyRepairs',
        summary: "A key's share repairs",
        description: 'The share repairs of a key, newest first (at most 100).',
        params: IdParams,
        response: {
          200: described(List(RepairObject), 'The repairs'),
          ...problems(...AUTHENTICATED, 'key_not_found'),
        },
      },
    },
    async (req) => keys.listRepairs(principal(req), req.params.id),
  );
  app.get(
    '/v1/keys/:id/repairs/:repair_id',
    {
      ...viewer,
      schema: {
        tags: ['keys'],
        operationId: 'getKeyRepair',
        summary: 'Read a share repair',
        description:
          'One share repair: its status, the helpers, the members that applied it, and why it failed.',
        params: RepairParams,
        response: {
          200: described(RepairObject, 'The repair'),
          ...problems(...AUTHENTICATED, 'repair_not_found'),
        },
      },
    },
    async (req) => keys.getRepair(principal(req), req.params.id, req.params.repair_id),
  );
};
