/**
 * The words every layer shares, declared once. Each list is an `as const` array: the
 * TypeScript type is derived from it here, and the schema unions (API, messages, config)
 * and the database CHECK constraints are written from the same lists (`literalUnion` in
 * src/protocol/schema.ts; test/domain/vocabulary.test.ts compares the SQL with these lists).
 */

/** Signing session lifecycle (DESIGN §6, §7, §13); the legal moves are in ./session-state.ts. */
export const SESSION_STATUSES = [
  'awaiting_approval',
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
  'completed',
  'failed',
  'expired',
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** DKG ceremony lifecycle; the legal moves are in ./ceremony-state.ts. */
export const CEREMONY_STATUSES = [
  'pending',
  'round1',
  'round2',
  'round3',
  'certifying',
  'completed',
  'failed',
] as const;
export type CeremonyStatus = (typeof CEREMONY_STATUSES)[number];

/**
 * A key group as the coordinator sees it. `disabled`: refused for new sessions by the
 * coordinator only; `frozen`: stopped by an operator's signed instruction, which the signers
 * enforce too (the kill switch, migration 019).
 */
export const KEY_STATUSES = ['pending', 'active', 'failed', 'disabled', 'frozen'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

/** A key share as one signer holds it: stored at round 3 (`pending`), usable once certified. */
export const SHARE_STATUSES = ['pending', 'active'] as const;
export type ShareStatus = (typeof SHARE_STATUSES)[number];

/**
 * How a key came to be: `dkg` (distributed key generation, BIP-86 tweaked), `dealer` (a
 * secret split on the client and imported), `derived` (non-hardened child of another key).
 */
export const KEY_ORIGINS = ['dkg', 'dealer', 'derived'] as const;
export type KeyOrigin = (typeof KEY_ORIGINS)[number];

/** Origins a signer can hold a share of (a derived key is a tweak applied at signing time). */
export const SHARE_ORIGINS = ['dkg', 'dealer'] as const;
export type ShareOrigin = (typeof SHARE_ORIGINS)[number];

/**
 * API token roles. The first four, strongest first, each include the rights of those after it.
 * `address` stands apart (the address tier, DESIGN §14): it creates and reads Bitcoin addresses
 * and nothing else; admin and operator tokens have its rights too, it has no other role's.
 */
export const ROLES = ['admin', 'operator', 'requester', 'viewer', 'address'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_DESCRIPTION =
  'admin: tokens (and, in the system tenant, the signer registry); operator: keys; requester: sign; viewer: read; address: create and read addresses only';

/** The roles that have the rights of `address` besides itself. */
const ADDRESS_RIGHTS: readonly Role[] = ['admin', 'operator', 'address'];

/** Whether `have` includes the rights of `need`. */
export function hasRole(have: Role, need: Role): boolean {
  if (need === 'address') return ADDRESS_RIGHTS.includes(have);
  if (have === 'address') return false;
  return ROLES.indexOf(have) <= ROLES.indexOf(need);
}

/** Signer registry entries. */
export const SIGNER_STATUSES = ['active', 'disabled'] as const;
export type SignerStatus = (typeof SIGNER_STATUSES)[number];

/** What a signing session signs (DESIGN §12); the shapes are in ./intent.ts. */
export const INTENT_TYPES = ['message', 'nostr_event', 'bitcoin_psbt'] as const;
export type IntentType = (typeof INTENT_TYPES)[number];

/**
 * Publishing a signed Nostr event to relays (DESIGN §14): `pending` (tries left), `done` (every
 * relay answered, or ran out of tries); `skipped` is shown only by the API: the session ended
 * without a signature, so there was nothing to publish. The database holds pending | done.
 */
export const PUBLISH_STATUSES = ['pending', 'done', 'skipped'] as const;
export type PublishStatus = (typeof PUBLISH_STATUSES)[number];

export function isOneOf<const T extends readonly string[]>(list: T, x: unknown): x is T[number] {
  return typeof x === 'string' && (list as readonly string[]).includes(x);
}

/** The steps of a share refresh (migration 020): `committing` is the decision, then only forward. */
export const REFRESH_STATUSES = [
  'pending',
  'round1',
  'round2',
  'round3',
  'committing',
  'completed',
  'failed',
] as const;
export type RefreshStatus = (typeof REFRESH_STATUSES)[number];

/** The steps of a share repair (migration 020): `committing` is the decision, then only forward. */
export const REPAIR_STATUSES = [
  'pending',
  'helping',
  'enrolling',
  'committing',
  'completed',
  'failed',
] as const;
export type RepairStatus = (typeof REPAIR_STATUSES)[number];
