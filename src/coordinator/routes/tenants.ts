/**
 * /v1/tenants: admins of the system tenant create and list tenants (one per application, as
 * the threat model advises). A new tenant comes with its first admin token, shown once; from
 * then on it is isolated from every other tenant by row-level security.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../../domain/records.js';
import { CreatedTenant, CreateTenantBody, List, TenantObject } from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import { prepareApiToken } from '../auth/tokens.js';
import type { Backend, TenantRecord } from '../backend.js';
import { tokenObject } from './auth.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

export function tenantObject(t: TenantRecord): TenantObject {
  return { id: t.id, name: t.name, created_at: t.createdAt };
}

export const tenantRoutes: FastifyPluginAsyncTypebox<{
  backend: Backend;
  now: () => number;
  /** The tenant whose admins manage tenants (and the signer registry). */
  systemTenant: string;
}> = async (app, { backend, now, systemTenant }) => {
  const systemAdmin = (p: Principal) => {
    if (p.tenantId !== systemTenant)
      throw new FloeError('forbidden', 'tenants are managed by admins of the system tenant');
  };
  const onlySystem = async (req: FastifyRequest) => systemAdmin(principal(req));

  app.post(
    '/v1/tenants',
    {
      // A tenant comes with an admin token: it counts against the caller's token creation.
      preHandler: [app.requireRole('admin'), onlySystem, app.limits.tokenCreate],
      schema: {
        tags: ['tenants'],
        operationId: 'createTenant',
        summary: 'Create a tenant',
        description:
          'Create a tenant (admins of the system tenant), isolated from every other by row-level security, with its first admin token (shown once).',
        body: CreateTenantBody,
        response: {
          201: described(CreatedTenant, 'The tenant and its first admin token'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'conflict'),
        },
      },
    },
    async (req, reply) => {
      const p = principal(req);
      const at = now();
      const tenant: TenantRecord = { id: req.body.id, name: req.body.name ?? req.body.id, createdAt: at };
      const first = prepareApiToken({ tenantId: tenant.id, role: 'admin', label: 'first admin', now: at });
      if (!(await backend.createTenant(tenant, { ...first.record, hash: first.hash }))) {
        throw new FloeError('conflict', `a tenant ${tenant.id} exists`);
      }
      await backend.audit(p.tenantId, 'tenant.created', 'tenant', tenant.id, {
        name: tenant.name,
        by_token: p.tokenId,
      });
      await backend.audit(tenant.id, 'token.created', 'token', first.record.id, {
        role: 'admin',
        by_tenant: p.tenantId,
        by_token: p.tokenId,
      });
      reply.code(201);
      return { ...tenantObject(tenant), admin_token: { token: first.token, ...tokenObject(first.record) } };
    },
  );

  app.get(
    '/v1/tenants',
    {
      preHandler: [app.requireRole('admin'), onlySystem],
      schema: {
        tags: ['tenants'],
        operationId: 'listTenants',
        summary: 'List tenants',
        description: 'Every tenant (admins of the system tenant).',
        response: { 200: described(List(TenantObject), 'The tenants'), ...problems(...AUTHENTICATED) },
      },
    },
    async () => ({ items: (await backend.listTenants()).map(tenantObject), next_cursor: null }),
  );
};
