/**
 * What an operator configures on a bunker, checked at the API boundary (pure): permission
 * lists (`method[:kind]`, src/nostr/nip46.ts), the approval policy (requests an operator must
 * approve first) and relay lists. Every refusal names the field and the rule, never echoes
 * more than the position of the bad entry.
 */
import type { ApprovalContext } from '../../nostr/bunker.js';
import { formatPermission, type Permission, parsePermission, permissionCovers } from '../../nostr/nip46.js';
import { normalizeRelayUrl } from '../../nostr/url.js';
import { FloeError, isFloeError } from '../../protocol/errors.js';

/**
 * What a bunker secret grants unless the operator says otherwise: what a Nostr client needs
 * to work (every kind but NIP-98 HTTP auth, and encryption both ways). A client's `connect`
 * narrows it further to what it asks for.
 */
export const DEFAULT_BUNKER_PERMISSIONS: readonly string[] = Object.freeze([
  'sign_event',
  'nip04_encrypt',
  'nip04_decrypt',
  'nip44_encrypt',
  'nip44_decrypt',
]);

/** Most relays a bunker listens on (as Bunker.setRelays allows). */
export const MAX_BUNKER_RELAYS = 16;

/** Parse an operator's list of permissions strictly; the first bad entry is named by index. */
export function parsePermissionList(items: readonly string[], field: string): Permission[] {
  const out = new Map<string, Permission>();
  items.forEach((s, i) => {
    try {
      const p = parsePermission(s.trim());
      out.set(formatPermission(p), p);
    } catch (e) {
      if (!isFloeError(e)) throw e;
      throw new FloeError('invalid_request', `${field}[${i}]: ${e.message}`, {
        hint: 'method[:kind], for example sign_event:1, sign_event, nip44_encrypt, nip04_decrypt',
      });
    }
  });
  return [...out.values()];
}

/** Normalized, distinct relay URLs (1 to 16, ws: or wss:). */
export function parseRelayList(items: readonly string[], field: string): string[] {
  if (items.length === 0 || items.length > MAX_BUNKER_RELAYS) {
    throw new FloeError('invalid_request', `${field}: expected 1 to ${MAX_BUNKER_RELAYS} relay URLs`);
  }
  return [
    ...new Set(
      items.map((u, i) => {
        try {
          return normalizeRelayUrl(u);
        } catch (e) {
          if (!isFloeError(e)) throw e;
          throw new FloeError('invalid_request', `${field}[${i}]: ${e.message}`, {
            hint: 'a ws:// or wss:// URL, for example wss://relay.example.com',
          });
        }
      }),
    ),
  ];
}

/**
 * The approval policy: a request needs an operator when any entry covers it. Stricter than a
 * grant on purpose: a bare `sign_event` here holds every kind, NIP-98 included.
 */
export function approvalPolicy(requireApproval: readonly Permission[]): (ctx: ApprovalContext) => boolean {
  const list = [...requireApproval];
  return (ctx) =>
    list.some((p) =>
      permissionCovers(
        p,
        ctx.kind === undefined ? { method: ctx.method } : { method: ctx.method, kind: ctx.kind },
        [],
      ),
    );
}
