/**
 * The wire form of signing intents (src/domain/intent.ts) between coordinator and signers:
 * strict, so a signer refuses anything it would not resolve itself.
 */
import { type Static, Type } from '@sinclair/typebox';
import { NETWORK_NAMES } from '../../bitcoin/network.js';
import { DEFAULT_EVENT_LIMITS } from '../../nostr/event.js';
import { Hex, literalUnion, Strict } from '../schema.js';

export const NostrEventTemplateSchema = Strict(
  {
    kind: Type.Integer({ minimum: 0, maximum: 65535 }),
    // Byte limits (UTF-8) and the whole event's size are checked when the intent is resolved.
    content: Type.String({ maxLength: DEFAULT_EVENT_LIMITS.maxContentBytes }),
    tags: Type.Array(Type.Array(Type.String(), { maxItems: DEFAULT_EVENT_LIMITS.maxTagElements }), {
      maxItems: DEFAULT_EVENT_LIMITS.maxTags,
    }),
    created_at: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  },
  'an unsigned NIP-01 event without pubkey and id (both follow from the key)',
);

export const MessageIntentSchema = Strict({ type: Type.Literal('message'), message: Hex(32) });
export const NostrEventIntentSchema = Strict({
  type: Type.Literal('nostr_event'),
  event: NostrEventTemplateSchema,
});
export const PsbtIntentSchema = Strict({
  type: Type.Literal('bitcoin_psbt'),
  psbt: Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$', maxLength: 4 * 1024 * 1024 }),
  /** The coordinator's network (config bitcoin_network); a signer of another refuses (network_mismatch). */
  network: literalUnion(NETWORK_NAMES, 'Bitcoin network the PSBT is for'),
});

export const IntentSchema = Type.Union([MessageIntentSchema, NostrEventIntentSchema, PsbtIntentSchema]);
export type IntentJson = Static<typeof IntentSchema>;
