/**
 * Floe's Nostr library: one module per NIP (event = NIP-01, nip19, nip04, nip42, nip44),
 * filters, relay URLs, the relay client and pool, and a local relay. NIP-04 and NIP-44 both
 * export `encrypt`/`decrypt`, so they are re-exported as namespaces.
 */
export * from './event.js';
export * from './filter.js';
export * as nip04 from './nip04.js';
export * as nip19 from './nip19.js';
export * from './nip42.js';
export * as nip44 from './nip44.js';
export * from './pool.js';
export * from './relay.js';
export * from './url.js';
