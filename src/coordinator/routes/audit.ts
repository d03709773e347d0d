/**
 * GET /v1/audit: the tenant's audit log as its hash chain (migration 017), in id order, page by
 * page (`after` = the last id seen). `floe audit verify` walks it with src/domain/audit-chain.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Db } from '../../db/connection.js';
import { listAuditChain } from '../../db/queries/audit.js';
import { AuditPage, AuditQuery } from '../../protocol/api.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems } from './errors.js';

export const auditRoutes: FastifyPluginAsyncTypebox<{ db: Db }> = async (app, { db }) => {
  app.get(
    '/v1/audit',
    {
      preHandler: app.requireRole('admin'),
      schema: {
        tags: ['audit'],
        operationId: 'listAudit',
        summary: "Page through the tenant's audit log",
        description:
          'Audit events in id order after `after`, each with `prev_hash` and `hash`: a hash chain per tenant that `floe audit verify` checks (docs/webhooks.md, "The audit chain").',
        querystring: AuditQuery,
        response: { 200: described(AuditPage, 'A page of the audit chain'), ...problems(...AUTHENTICATED) },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const rows = await db.transaction(
        (tx) => listAuditChain(tx, { afterId: req.query.after ?? 0, limit }),
        {
          tenantId: principal(req).tenantId,
        },
      );
      return {
        items: rows.map((r) => ({
          id: r.id,
          tenant_id: r.tenantId,
          at: r.at,
          actor: r.actor,
          kind: r.kind,
          subject_type: r.subjectType,
          subject_id: r.subjectId,
          data: r.data,
          prev_hash: r.prevHash,
          hash: r.hash,
        })),
        next_after: rows.length === limit ? rows.at(-1)!.id : null,
      };
    },
  );
};
