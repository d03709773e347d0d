/**
 * NIP-17 private direct messages: a kind-14 rumor p-tagging every receiver, gift-wrapped
 * (NIP-59) once per receiver and once for the sender, so the sender's other clients see what
 * was sent. The coordinator's own Nostr identity sends these (notices to operators), never a
 * user key: a user key exists only as shares.
 */

import { type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { FloeError } from '../protocol/errors.js';
import { type EventTemplate, type NostrEvent, nowSeconds } from './event.js';
import { createRumor, createSeal, createWrap, type NostrKey, type Rumor, unwrapEvent } from './nip59.js';
import { normalizeRelayUrl } from './url.js';

export const DIRECT_MESSAGE_KIND = 14;
export const FILE_MESSAGE_KIND = 15;
/** Replaceable list of the relays a user wants DMs delivered to (`relay` tags). */
export const DM_RELAYS_KIND = 10_050;
/** Most receivers of one message (each costs a seal and a wrap). */
export const MAX_RECIPIENTS = 64;

const HEX32 = /^[0-9a-f]{64}$/;

export interface DmRecipient {
  pubkey: string;
  /** A relay where the receiver can be reached, written in its `p` tag. */
  relayUrl?: string;
}

export interface DmOptions {
  /** Conversation title (`subject` tag). */
  subject?: string;
  /** The message this one answers (`e` tag marked `reply`). */
  replyTo?: { id: string; relayUrl?: string };
  createdAt?: number;
}

/** The kind-14 template of a message to `recipients`. */
export function directMessageTemplate(
  recipients: readonly DmRecipient[],
  content: string,
  opts: DmOptions = {},
): EventTemplate {
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > MAX_RECIPIENTS) {
    throw new FloeError('invalid_request', `recipients: expected 1 to ${MAX_RECIPIENTS} receivers`);
  }
  const tags: string[][] = [];
  for (const r of recipients) {
    if (!HEX32.test(r.pubkey))
      throw new FloeError('invalid_request', 'recipient.pubkey: expected a hex pubkey');
    tags.push(r.relayUrl ? ['p', r.pubkey, normalizeRelayUrl(r.relayUrl)] : ['p', r.pubkey]);
  }
  if (opts.replyTo) {
    if (!HEX32.test(opts.replyTo.id))
      throw new FloeError('invalid_request', 'replyTo.id: expected an event id');
    const relay = opts.replyTo.relayUrl ? normalizeRelayUrl(opts.replyTo.relayUrl) : '';
    tags.push(['e', opts.replyTo.id, relay, 'reply']);
  }
  if (opts.subject) tags.push(['subject', opts.subject]);
  return { kind: DIRECT_MESSAGE_KIND, created_at: opts.createdAt ?? nowSeconds(), tags, content };
}

export interface WrappedMessage {
  /** The message itself (same id in every wrap). */
  rumor: Rumor;
  /** One gift wrap per receiver, then the sender's own copy; publish each to its owner's DM relays. */
  wraps: { recipient: string; wrap: NostrEvent }[];
}

/**
 * Wrap a message from `sender` to `recipients`. The rumor is built once, so every receiver
 * sees the same message id; `selfCopy` (default true) adds a wrap to the sender.
 */
export function wrapDirectMessage(
  sender: NostrKey,
  recipients: readonly DmRecipient[],
  content: string,
  opts: DmOptions & { selfCopy?: boolean } = {},
): WrappedMessage {
  const template = directMessageTemplate(recipients, content, opts);
  const own = sender instanceof Uint8Array ? softwareIdentity(sender) : undefined;
  const id: NodeIdentity = own ?? (sender as NodeIdentity);
  try {
    const rumor = createRumor(template, id.publicKeyHex);
    const targets = [...new Set(recipients.map((r) => r.pubkey))];
    if (opts.selfCopy !== false && !targets.includes(id.publicKeyHex)) targets.push(id.publicKeyHex);
    const wraps = targets.map((recipient) => ({
      recipient,
      wrap: createWrap(createSeal(rumor, id, recipient), recipient),
    }));
    return { rumor, wraps };
  } finally {
    own?.dispose();
  }
}

/** Open a gift wrap and require a kind-14 or kind-15 message inside. */
export function unwrapDirectMessage(wrap: NostrEvent, recipient: NostrKey): Rumor {
  const rumor = unwrapEvent(wrap, recipient);
  if (rumor.kind !== DIRECT_MESSAGE_KIND && rumor.kind !== FILE_MESSAGE_KIND) {
    throw new FloeError(
      'invalid_request',
      `direct message: expected kind ${DIRECT_MESSAGE_KIND} or ${FILE_MESSAGE_KIND}`,
    );
  }
  return rumor;
}

/** The kind-10050 template listing the relays to receive DMs on. */
export function dmRelaysTemplate(relays: readonly string[], createdAt = nowSeconds()): EventTemplate {
  return {
    kind: DM_RELAYS_KIND,
    created_at: createdAt,
    tags: relays.map((r) => ['relay', normalizeRelayUrl(r)]),
    content: '',
  };
}

/** The DM relays a kind-10050 event names (invalid URLs are skipped). */
export function dmRelaysOf(e: { kind: number; tags: string[][] }): string[] {
  if (e.kind !== DM_RELAYS_KIND) return [];
  const out = new Set<string>();
  for (const t of e.tags) {
    if (t[0] !== 'relay' || t[1] === undefined) continue;
    try {
      out.add(normalizeRelayUrl(t[1]));
    } catch {
      // a relay list is the owner's to get wrong; one bad entry does not void the others
    }
  }
  return [...out];
}
