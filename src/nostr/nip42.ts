/**
 * NIP-42 relay authentication: the kind-22242 event a client signs in answer to
 * `["AUTH", <challenge>]`, and the relay-side check of that event.
 */
import { type EventTemplate, type NostrEvent, nowSeconds, tagValue } from './event.js';
import { sameRelay } from './url.js';

export const AUTH_KIND = 22_242;

/** How far an AUTH event's `created_at` may be from the relay's clock (NIP-42 suggests ~10 min). */
export const AUTH_MAX_SKEW_SECONDS = 600;

/** The template a client signs to authenticate to `relayUrl` with `challenge`. */
export function authTemplate(relayUrl: string, challenge: string, createdAt = nowSeconds()): EventTemplate {
  return {
    kind: AUTH_KIND,
    created_at: createdAt,
    tags: [
      ['relay', relayUrl],
      ['challenge', challenge],
    ],
    content: '',
  };
}

export type AuthRefusal = 'auth_kind' | 'auth_challenge' | 'auth_relay' | 'auth_stale';

/**
 * Check an AUTH event whose id and signature were already verified: the right kind, the
 * challenge this connection was given, this relay's URL, and a fresh timestamp.
 */
export function checkAuthEvent(
  e: NostrEvent,
  expected: { challenge: string; relayUrls: readonly string[]; now?: number; maxSkewSeconds?: number },
): { ok: true; pubkey: string } | { ok: false; reason: AuthRefusal; detail: string } {
  if (e.kind !== AUTH_KIND)
    return { ok: false, reason: 'auth_kind', detail: `auth event must be kind ${AUTH_KIND}` };
  if (tagValue(e, 'challenge') !== expected.challenge) {
    return {
      ok: false,
      reason: 'auth_challenge',
      detail: "auth event does not carry this connection's challenge",
    };
  }
  const relay = tagValue(e, 'relay');
  if (relay === undefined || !expected.relayUrls.some((u) => sameRelay(u, relay))) {
    return { ok: false, reason: 'auth_relay', detail: 'auth event names another relay' };
  }
  const now = expected.now ?? nowSeconds();
  if (Math.abs(e.created_at - now) > (expected.maxSkewSeconds ?? AUTH_MAX_SKEW_SECONDS)) {
    return { ok: false, reason: 'auth_stale', detail: 'auth event created_at is too far from now' };
  }
  return { ok: true, pubkey: e.pubkey };
}
