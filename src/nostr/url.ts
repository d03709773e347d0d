/**
 * Relay URLs: only `ws:` and `wss:` are accepted (a relay client must never be pointed at
 * `http:`, `file:` or anything else), and a normal form is used to compare them (NIP-42 relay
 * tags, pool keys).
 */
import { FloeError } from '../protocol/errors.js';

/** Longest relay URL accepted. */
export const MAX_RELAY_URL_LENGTH = 2048;

/**
 * Parse and normalize a relay URL: lower-case scheme and host, default port dropped, no
 * trailing slash, no fragment, no credentials. Throws `invalid_request` naming the rule.
 */
export function normalizeRelayUrl(raw: string): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RELAY_URL_LENGTH) {
    throw new FloeError(
      'invalid_request',
      `relay url: expected a string of 1 to ${MAX_RELAY_URL_LENGTH} characters`,
    );
  }
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new FloeError('invalid_request', 'relay url: not a valid URL');
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new FloeError('invalid_request', 'relay url: scheme must be ws or wss');
  }
  if (u.username || u.password)
    throw new FloeError('invalid_request', 'relay url: credentials are not allowed');
  u.hash = '';
  const path = u.pathname.replace(/\/+/g, '/').replace(/\/$/, '');
  return `${u.protocol}//${u.host}${path}${u.search}`;
}

/** Whether two relay URLs name the same relay (after normalization); false if either is invalid. */
export function sameRelay(a: string, b: string): boolean {
  try {
    return normalizeRelayUrl(a) === normalizeRelayUrl(b);
  } catch {
    return false;
  }
}
