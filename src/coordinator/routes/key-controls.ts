/**
 * Key controls (issue 15 items 7, 8; services/key-controls.ts), admin only:
 * POST /v1/keys/:id/disable | enable (the coordinator alone) and
 * POST /v1/keys/:id/freeze | unfreeze (the kill switch: an operator's signed instruction,
 * forwarded to and enforced by every member signer).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IdParams, KeyControlObject, KeyInstructionBody } from '../../protocol/api.js';
import type { KeyControlService } from '../services/key-controls.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export const keyControlRoutes: FastifyPluginAsyncTypebox<{ controls: KeyControlService }> = async (
  app,
  { controls },
) => {
  const admin = { preHandler: app.requireRole('admin') };
  const plain = (operationId: string, summary: string, description: string) => ({
    ...admin,
    schema: {
      tags: ['keys'],
      operationId,
      summary,
      description,
      params: IdParams,
      response: {
        200: described(KeyControlObject, 'The key after the change'),
        ...problems(...AUTHENTICATED, 'key_not_found', 'key_frozen', 'key_not_active'),
      },
    },
  });
  const signed = (operationId: string, summary: string, description: string) => ({
    ...admin,
    schema: {
      tags: ['keys'],
      operationId,
      summary,
      description,
      params: IdParams,
      body: KeyInstructionBody,
      response: {
        200: described(KeyControlObject, 'The key, and which member signers applied the instruction'),
        ...problems(
          ...AUTHENTICATED,
          ...WITH_BODY,
          'key_not_found',
          'key_not_active',
          'operator_instruction_invalid',
          'operator_instruction_stale',
        ),
      },
    },
  });
  app.post(
    '/v1/keys/:id/disable',
    plain(
      'disableKey',
      'Disable a key',
      'New sessions with the key are refused (key_disabled) by this coordinator; its signers are not told. Undo with /enable.',
    ),
    async (req) => controls.disable(principal(req), req.params.id),
  );
  app.post(
    '/v1/keys/:id/enable',
    plain(
      'enableKey',
      'Enable a disabled key',
      'The key signs again. A frozen key is unfrozen by an operator instead.',
    ),
    async (req) => controls.enable(principal(req), req.params.id),
  );
  app.post(
    '/v1/keys/:id/freeze',
    signed(
      'freezeKey',
      'Freeze a key (kill switch)',
      "Stops all signing with the key at once: running sessions fail key_frozen, new ones are refused, and the operator's signed instruction is forwarded to every member signer, which then refuses the key itself. `signers` says which signers applied it and why others could not. Sign the instruction with `floe key freeze`.",
    ),
    async (req) => controls.freeze(principal(req), req.params.id, req.body.instruction),
  );
  app.post(
    '/v1/keys/:id/unfreeze',
    signed(
      'unfreezeKey',
      'Unfreeze a key',
      "Forwards the operator's signed unfreeze to every member signer (each verifies it against the operator keys it pins and refuses one older than its freeze) and makes the key active here. Sign it with `floe key unfreeze`.",
    ),
    async (req) => controls.unfreeze(principal(req), req.params.id, req.body.instruction),
  );
};
