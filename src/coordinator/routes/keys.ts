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
  UpdateKeyBody,
} from '../../protocol/api.js';
import type { KeyService } from '../services/keys.js';
import { principal } from './auth-plugin.js';
import { errors } from './errors.js';

export const keyRoutes: FastifyPluginAsyncTypebox<{ keys: KeyService }> = async (app, { keys }) => {
  const operator = { preHandler: app.requireRole('operator') };
  const viewer = { preHandler: app.requireRole('viewer') };
  app.post(
    '/v1/keys',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        body: CreateKeyBody,
        response: { 201: KeyObject, 202: KeyObject, ...errors },
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
      schema: { tags: ['keys'], body: ImportKeyBody, response: { 201: ImportedKeyObject, ...errors } },
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
      schema: { tags: ['keys'], querystring: ListQuery, response: { 200: List(KeyObject), ...errors } },
    },
    async (req) => keys.list(principal(req), req.query.limit ?? 50, req.query.cursor ?? null),
  );
  app.get(
    '/v1/keys/:id',
    { ...viewer, schema: { tags: ['keys'], params: IdParams, response: { 200: KeyObject, ...errors } } },
    async (req) => keys.get(principal(req), req.params.id),
  );
  app.patch(
    '/v1/keys/:id',
    {
      ...operator,
      schema: {
        tags: ['keys'],
        description:
          'Change a key: its default relays (ws/wss, at most 20, normalized and deduplicated), used by sessions that ask to publish without naming relays. [] clears them.',
        params: IdParams,
        body: UpdateKeyBody,
        response: { 200: KeyObject, ...errors },
      },
    },
    async (req) => keys.update(principal(req), req.params.id, req.body),
  );
};
