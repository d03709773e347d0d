/**
 * Identifiers of coordinator objects: `<prefix>_<128 random bits as 32 hex characters>`,
 * one format for every kind, unguessable (a session id is a capability in the API's URLs).
 */
import { randomBytes } from 'node:crypto';

export const ID_PREFIXES = {
  key: 'key',
  session: 'ses',
  ceremony: 'cer',
  signer: 'sig',
  token: 'tok',
  /** An auth refresh token. */
  refresh: 'rfr',
  /** A share refresh of a key (key lifecycle). */
  share_refresh: 'shr',
  /** A share repair of a key (key lifecycle). */
  repair: 'rep',
  /** A coordinator process (the owner of the session leases it claims). */
  coordinator: 'crd',
} as const;
export type IdKind = keyof typeof ID_PREFIXES;

/** Pattern every id accepted from outside must match (paths, bodies, signer messages). */
export const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${randomBytes(16).toString('hex')}`;
}
