/**
 * Steward approvals (DESIGN §13, issue 13): what waits for the stewards, their signed
 * decisions, and changes of a key's approval policy.
 *
 *   GET  /v1/approvals?status=pending[&steward=npub]   sessions waiting for their stewards
 *   POST /v1/sessions/:id/approvals {event}            a steward's signed kind-30078 decision
 *   PUT  /v1/keys/:id/approval-policy                  a new policy, with the current stewards' quorum
 *
 * A decision's authority is its signature, checked against the key's policy, not the bearer
 * token: any token that may read sessions may hand one in (the CLI's `floe approve` does).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  ApprovalsQuery,
  IdParams,
  KeyObject,
  List,
  PendingApprovalObject,
  SessionObject,
  SubmitApprovalBody,
  UpdateApprovalPolicyBody,
} from '../../protocol/api.js';
import type { StewardApprovals } from '../services/approvals.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export const approvalRoutes: FastifyPluginAsyncTypebox<{ approvals: StewardApprovals }> = async (
  app,
  { approvals },
) => {
  const viewer = { preHandler: app.requireRole('viewer') };
  const operator = { preHandler: app.requireRole('operator') };
  app.get(
    '/v1/approvals',
    {
      ...viewer,
      schema: {
        tags: ['approvals'],
        description:
          'Sessions waiting for their stewards (status=pending, the default); with steward, only those this steward has not decided yet.',
        operationId: 'listApprovals',
        summary: 'List sessions waiting for their stewards',
        querystring: ApprovalsQuery,
        response: {
          200: described(List(PendingApprovalObject), 'A page of sessions awaiting approval'),
          ...problems(...AUTHENTICATED),
        },
      },
    },
    async (req) => approvals.list(principal(req), req.query),
  );
  app.post(
    '/v1/sessions/:id/approvals',
    {
      ...viewer,
      schema: {
        tags: ['approvals'],
        description:
          "A steward's decision: a kind-30078 event it signed, tagged d=floe-approval:<id>, session, intent (the session's intent_hash) and decision (approve | reject). Refused with approval_invalid (and its reason) or approval_duplicate, changing nothing.",
        operationId: 'submitApproval',
        summary: "Hand in a steward's decision",
        params: IdParams,
        body: SubmitApprovalBody,
        response: {
          200: described(SessionObject, 'The session, with the decision counted'),
          ...problems(
            ...AUTHENTICATED,
            ...WITH_BODY,
            'session_not_found',
            'session_conflict',
            'session_expired',
            'approval_invalid',
            'approval_duplicate',
          ),
        },
      },
    },
    async (req) => approvals.submit(principal(req), req.params.id, req.body.event),
  );
  app.put(
    '/v1/keys/:id/approval-policy',
    {
      ...operator,
      schema: {
        tags: ['approvals', 'keys'],
        description:
          "Change a key's approval policy (null removes it). With a policy in place, a quorum of its current stewards must approve the change (decisions tagged d=floe-policy:<id>, key, from, policy, decision); without approvals the refusal (approval_missing) names the hashes and tags to sign. Every member of the key checks and applies it.",
        operationId: 'updateApprovalPolicy',
        summary: "Change a key's approval policy",
        params: IdParams,
        body: UpdateApprovalPolicyBody,
        response: {
          200: described(KeyObject, 'The key with its new policy'),
          ...problems(
            ...AUTHENTICATED,
            ...WITH_BODY,
            'key_not_found',
            'key_not_active',
            'approval_policy_invalid',
            'approval_missing',
            'approval_invalid',
            'approval_policy_conflict',
            'signer_unreachable',
            'no_quorum',
          ),
        },
      },
    },
    async (req) => approvals.changePolicy(principal(req), req.params.id, req.body),
  );
};
