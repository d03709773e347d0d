/** /v1/sessions: signing sessions (DESIGN §7, §12). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isTerminal } from '../../domain/session-state.js';
import { EVENT_REJECTIONS } from '../../nostr/event.js';
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
import type { ErrorCode } from '../../protocol/errors.js';
import type { SessionService } from '../services/sessions.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

/** Digests arrive in either case (as the CLI takes them); everything after sees lower case. */
const lowerDigest = <T extends { message?: string | undefined }>(b: T): T =>
  b.message === undefined ? b : { ...b, message: b.message.toLowerCase() };

/** What creating a session can be refused with, besides the generic refusals. */
const CREATE_REFUSALS: readonly ErrorCode[] = [
  ...AUTHENTICATED,
  ...WITH_BODY,
  'key_not_found',
  'key_not_active',
  'intent_not_supported',
  ...EVENT_REJECTIONS,
  'psbt_invalid',
  'psbt_missing_utxo',
  'psbt_input_unsupported',
  'psbt_sighash_unsupported',
  'psbt_no_owned_inputs',
  'psbt_too_many_inputs',
  'relay_url_invalid',
  'publish_no_relays',
  'publish_not_nostr_event',
  'no_quorum',
];

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
        operationId: 'createSession',
        summary: 'Sign a digest, a Nostr event or a PSBT',
        description:
          'Start a signing session for one intent: exactly one of `message` (a 32-byte digest, hex in either case), `nostr_event` (an unsigned event: the pubkey and id are filled in) or `bitcoin_psbt` (base64). With `wait`, the answer comes when the session ends or the wait runs out. Keys with an approval policy start `awaiting_approval`. An `Idempotency-Key` header makes a retry return the first session (200).',
        body: CreateSessionBody,
        headers: IdempotencyHeaders,
        response: {
          200: described(SessionObject, 'The session this Idempotency-Key already created'),
          201: described(SessionObject, 'The session ended (completed, or failed: see error_code)'),
          202: described(
            SessionObject,
            'The session is running; GET /v1/sessions/{id} follows it (Location)',
          ),
          ...problems(...CREATE_REFUSALS, 'idempotency_conflict'),
        },
      },
    },
    async (req, reply) => {
      const { session, created } = await sessions.create(
        principal(req),
        lowerDigest(req.body),
        req.headers['idempotency-key'] as string | undefined,
      );
      // A terminal session (completed, failed, expired) is never 202: there is nothing to wait for.
      reply.code(!created ? 200 : isTerminal(session.status) ? 201 : 202);
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
        operationId: 'createSessionBatch',
        summary: 'Sign many intents of one key at once',
        description:
          'Sign many intents of one key: one session per item, signed together (one round trip per signer and round). 201 when every item is terminal (completed or failed), else 202; each item has its own status, error and culprits.',
        body: CreateBatchBody,
        response: {
          201: described(BatchObject, 'Every session ended (each has its status)'),
          202: described(BatchObject, 'Some sessions are still running'),
          ...problems(...CREATE_REFUSALS),
        },
      },
    },
    async (req, reply) => {
      const body = { ...req.body, items: req.body.items.map(lowerDigest) };
      const items = await sessions.createBatch(principal(req), body);
      reply.code(items.every((s) => isTerminal(s.status)) ? 201 : 202);
      return { items };
    },
  );
  app.get(
    '/v1/sessions',
    {
      ...viewer,
      schema: {
        tags: ['sessions'],
        operationId: 'listSessions',
        summary: 'List sessions',
        description:
          "The tenant's sessions, newest first, a page at a time (`next_cursor` gives the next page); `status` keeps one status.",
        querystring: ListQuery,
        response: {
          200: described(List(SessionObject), 'A page of sessions'),
          ...problems(...AUTHENTICATED),
        },
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
        operationId: 'getSession',
        summary: 'Read a session',
        description:
          'A session with its status, signature (when completed) and error (when failed); with `wait`, the answer comes when the session ends or the wait runs out.',
        params: IdParams,
        querystring: SessionQuery,
        response: {
          200: described(SessionObject, 'The session'),
          ...problems(...AUTHENTICATED, 'session_not_found'),
        },
      },
    },
    async (req) => sessions.get(principal(req), req.params.id, req.query.wait ?? 0),
  );
  app.post(
    '/v1/sessions/:id/cancel',
    {
      ...requester,
      schema: {
        tags: ['sessions'],
        operationId: 'cancelSession',
        summary: 'Cancel a session',
        description: 'Stop a session that has not ended; a completed, failed or cancelled session is final.',
        params: IdParams,
        response: {
          200: described(SessionObject, 'The cancelled session'),
          ...problems(...AUTHENTICATED, 'session_not_found', 'session_conflict'),
        },
      },
    },
    async (req) => sessions.cancel(principal(req), req.params.id),
  );
};
