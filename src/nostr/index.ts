/**
 * Floe's Nostr library: one module per NIP (event = NIP-01, nip19, nip04, nip17, nip42, nip44,
 * nip46, nip59), filters, relay URLs, the relay client and pool, a local relay, and the NIP-46
 * bunker runtime. Modules whose names would collide (`encrypt`, `wrapEvent`, …) are
 * re-exported as namespaces.
 */
export * from './bunker.js';
export * from './event.js';
export * from './filter.js';
export * as nip04 from './nip04.js';
export * as nip17 from './nip17.js';
export * as nip19 from './nip19.js';
export * from './nip42.js';
export * as nip44 from './nip44.js';
export * as nip46 from './nip46.js';
export * as nip59 from './nip59.js';
export * from './pool.js';
export * from './relay.js';
export * from './url.js';
