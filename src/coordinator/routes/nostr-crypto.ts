/**
 * /v1/keys/:id/nip44/… and /v1/keys/:id/nip04/…: encrypt to and decrypt from a Nostr pubkey
 * with a key that exists only as shares, through threshold ECDH on its signers (DESIGN §14;
 * services/ecdh.ts). Requester role, like signing: the answer is a use of the key.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CiphertextObject,
  IdParams,
  NostrDecryptBody,
  NostrEncryptBody,
  PlaintextObject,
} from '../../protocol/api.js';
import type { ErrorCode } from '../../protocol/errors.js';
import type { EcdhService } from '../services/ecdh.js';
import { principal } from './auth-plugin.js';
import { AUTHENTICATED, described, problems, WITH_BODY } from './errors.js';

/** Besides the usual ones: a bad pubkey, an unknown key, and signers that cannot give the value. */
const CRYPT_REFUSALS: readonly ErrorCode[] = [
  ...AUTHENTICATED,
  ...WITH_BODY,
  'invalid_pubkey',
  'key_not_found',
  'key_not_active',
  'ecdh_failed',
  'no_quorum',
];

export const nostrCryptoRoutes: FastifyPluginAsyncTypebox<{ ecdh: EcdhService }> = async (app, { ecdh }) => {
  const requester = { preHandler: app.requireRole('requester') };
  for (const scheme of ['nip44', 'nip04'] as const) {
    const name = scheme === 'nip44' ? 'NIP-44 v2' : 'NIP-04 (deprecated; prefer NIP-44)';
    app.post(
      `/v1/keys/:id/${scheme}/encrypt`,
      {
        ...requester,
        schema: {
          tags: ['nostr'],
          operationId: `${scheme}Encrypt`,
          summary: `Encrypt to a Nostr pubkey (${name})`,
          description: `Encrypt plaintext for \`pubkey\` from the key, ${name}: the ECDH value comes from threshold ECDH on the key's signers.`,
          params: IdParams,
          body: NostrEncryptBody,
          response: {
            200: described(CiphertextObject, 'The ciphertext'),
            ...problems(...CRYPT_REFUSALS, 'payload_too_large'),
          },
        },
      },
      async (req) => {
        const { tenantId } = principal(req);
        const { pubkey, plaintext } = req.body;
        const ciphertext =
          scheme === 'nip44'
            ? await ecdh.nip44Encrypt(tenantId, req.params.id, pubkey, plaintext)
            : await ecdh.nip04Encrypt(tenantId, req.params.id, pubkey, plaintext);
        return { ciphertext };
      },
    );
    app.post(
      `/v1/keys/:id/${scheme}/decrypt`,
      {
        ...requester,
        schema: {
          tags: ['nostr'],
          operationId: `${scheme}Decrypt`,
          summary: `Decrypt from a Nostr pubkey (${name})`,
          description: `Decrypt ${name} content between \`pubkey\` and the key (threshold ECDH on the key's signers); malformed or not authentic: invalid_encoding.`,
          params: IdParams,
          body: NostrDecryptBody,
          response: {
            200: described(PlaintextObject, 'The plaintext'),
            ...problems(...CRYPT_REFUSALS, 'invalid_encoding'),
          },
        },
      },
      async (req) => {
        const { tenantId } = principal(req);
        const { pubkey, ciphertext } = req.body;
        const plaintext =
          scheme === 'nip44'
            ? await ecdh.nip44Decrypt(tenantId, req.params.id, pubkey, ciphertext)
            : await ecdh.nip04Decrypt(tenantId, req.params.id, pubkey, ciphertext);
        return { plaintext };
      },
    );
  }
};
