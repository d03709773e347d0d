import { CryptoError } from './errors.js';

/**
 * A participant identifier. Floe numbers the members of a key 1..n (as RFC 9591's
 * dealer and the ZF tooling do); on the wire it is that integer, and the FROST protocol
 * (`frost.ts`) uses the 32-byte scalar encoding of it.
 */
export type Identifier = number;

export const MAX_SIGNERS = 255;

export function assertIdentifier(id: unknown, what = 'identifier'): asserts id is Identifier {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_SIGNERS) {
    throw new CryptoError('invalid_identifier', `${what}: expected an integer from 1 to ${MAX_SIGNERS}`);
  }
}

/** Sorted, duplicate-free copy; throws on a duplicate or an invalid identifier. */
export function sortedUniqueIds(ids: readonly number[], what = 'identifiers'): Identifier[] {
  for (const id of ids) assertIdentifier(id, what);
  const sorted = [...ids].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1])
      throw new CryptoError('invalid_identifier', `${what}: duplicate ${sorted[i]}`);
  }
  return sorted;
}
