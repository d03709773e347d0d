/**
 * Address endpoints (DESIGN §14): what the address tier (`floe address-service`) exposes, served
 * by the coordinator, which holds the database and talks to the signers.
 *
 *   POST /v1/addresses {passphrase}              per-passphrase key and address (deterministic DKG)
 *   GET  /v1/keys/:id/addresses?branch&from&count derived receive / change addresses (no signers)
 *   GET  /v1/keys/:id/descriptor                 watch-only descriptors and the root xpub
 *   POST /v1/keys/:id/addresses {passphrase}     a passphrase mapped to a derivation of the key
 *
 * Creating needs the `address` rights (address, operator, admin tokens); reading derived
 * addresses also suits viewers. New per-passphrase DKGs count against the tenant's
 * `address_create_limit_per_min` (database-backed, shared by every coordinator).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { preHandlerHookHandler } from 'fastify';
import { hasRole } from '../../domain/vocabulary.js';
import {
  CreateAddressBody,
  DerivedAddressList,
  DerivedAddressQuery,
  DerivePassphraseBody,
  DescriptorObject,
  IdParams,
  PassphraseAddressObject,
  PassphraseDerivedAddressObject,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { AddressService } from '../services/addresses.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

/** The paths of this plugin: the only ones the address service forwards. */
export const ADDRESS_ROUTES = [
  { method: 'POST', url: '/v1/addresses' },
  { method: 'GET', url: '/v1/keys/:id/addresses' },
  { method: 'GET', url: '/v1/keys/:id/descriptor' },
  { method: 'POST', url: '/v1/keys/:id/addresses' },
] as const;

/** Address tokens, and viewers (who read keys anyway). */
const readAddresses: preHandlerHookHandler = (req, _reply, done) => {
  const r = principal(req).role;
  if (hasRole(r, 'address') || hasRole(r, 'viewer')) done();
  else done(new FloeError('forbidden', 'this needs the address or viewer role'));
};

export const addressRoutes: FastifyPluginAsyncTypebox<{ addresses: AddressService }> = async (
  app,
  { addresses },
) => {
  const create = { preHandler: app.requireRole('address') };
  app.post(
    '/v1/addresses',
    {
      ...create,
      schema: {
        tags: ['addresses'],
        operationId: 'createPassphraseAddress',
        summary: 'The address of a passphrase',
        description:
          'The Taproot address of a passphrase: its own key, made once by a deterministic DKG on the signers; the same passphrase always gives the same key and address. New keys count against `address_create_limit_per_min`.',
        body: CreateAddressBody,
        response: {
          200: described(PassphraseAddressObject, 'The stored address of this passphrase'),
          201: described(PassphraseAddressObject, 'A new key and address, made by this request'),
          202: described(PassphraseAddressObject, 'The key is still being made (status pending)'),
          ...problems(
            ...AUTHENTICATED,
            ...WITH_BODY,
            'threshold_unsafe',
            'dkg_failed',
            'no_quorum',
            'unavailable',
          ),
        },
      },
    },
    async (req, reply) => {
      const a = await addresses.createForPassphrase(principal(req), req.body, () =>
        app.limits.addressCreate(req, reply),
      );
      reply.code(a.status === 'pending' ? 202 : a.created ? 201 : 200);
      return a;
    },
  );
  app.get(
    '/v1/keys/:id/addresses',
    {
      preHandler: readAddresses,
      schema: {
        tags: ['addresses'],
        operationId: 'listDerivedAddresses',
        summary: 'Derived addresses of a key',
        description:
          'Receive (branch 0) or change (branch 1) addresses m/<branch>/<index> of a key, derived from its public key alone: no signer round trip.',
        params: IdParams,
        querystring: DerivedAddressQuery,
        response: {
          200: described(DerivedAddressList, 'The addresses'),
          ...problems(...AUTHENTICATED, 'key_not_found', 'key_not_active'),
        },
      },
    },
    async (req) => addresses.derived(principal(req), req.params.id, req.query),
  );
  app.get(
    '/v1/keys/:id/descriptor',
    {
      preHandler: readAddresses,
      schema: {
        tags: ['addresses'],
        operationId: 'getDescriptor',
        summary: "A key's watch-only descriptors",
        description:
          'The root xpub and tr() descriptors (receive, change, multipath) of a key, for Bitcoin Core importdescriptors or Sparrow.',
        params: IdParams,
        response: {
          200: described(DescriptorObject, 'The descriptors'),
          ...problems(...AUTHENTICATED, 'key_not_found', 'key_not_active'),
        },
      },
    },
    async (req) => addresses.descriptor(principal(req), req.params.id),
  );
  app.post(
    '/v1/keys/:id/addresses',
    {
      ...create,
      schema: {
        tags: ['addresses'],
        operationId: 'derivePassphraseAddress',
        summary: 'A passphrase mapped to a derivation of a key',
        description:
          "The address of a passphrase as a derivation of the key (four steps from an HMAC of the passphrase under the service's secret): the fast alternative to a DKG per passphrase.",
        params: IdParams,
        body: DerivePassphraseBody,
        response: {
          200: described(PassphraseDerivedAddressObject, 'The derived address'),
          ...problems(...AUTHENTICATED, ...WITH_BODY, 'key_not_found', 'key_not_active', 'unavailable'),
        },
      },
    },
    async (req) => addresses.deriveForPassphrase(principal(req), req.params.id, req.body.passphrase),
  );
};
