/**
 * Attempt ids (DESIGN §4): what binds a signing attempt's nonces. Both roles compute it: the
 * coordinator to name the attempt, every signer again from the fields it was sent.
 *
 * attempt_id = SHA-256 over the tag `floe/attempt-id/v2` and the length-prefixed fields:
 * session id (UTF-8), message digest (32), intent hash (32), attempt number (u32 BE), sorted
 * included identifiers (u16 BE each). v2 adds the intent hash to v1 (src/crypto/attempt.ts).
 */
import { taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { toHex } from '../crypto/hex.js';
import { sortedUniqueIds } from '../crypto/identifier.js';
import { FloeError } from './errors.js';

export const ATTEMPT_ID_V2_TAG = 'floe/attempt-id/v2';

export interface AttemptFields {
  sessionId: string;
  /** The 32-byte digest being signed. */
  digest: Uint8Array;
  /** The 32-byte intent hash (src/domain/intent.ts). */
  intentHash: Uint8Array;
  /** 1-based attempt number within the session. */
  attempt: number;
  /** Identifiers of the signers included in this attempt. */
  included: readonly number[];
}

export function attemptId(f: AttemptFields): Uint8Array {
  if (!f.sessionId || f.sessionId.length > 128)
    throw new FloeError('invalid_request', 'session id: 1 to 128 characters');
  if (f.digest.length !== 32) throw new FloeError('invalid_request', 'digest: expected 32 bytes');
  if (f.intentHash.length !== 32) throw new FloeError('invalid_request', 'intent hash: expected 32 bytes');
  if (!Number.isInteger(f.attempt) || f.attempt < 1 || f.attempt > 0xffffffff) {
    throw new FloeError('invalid_request', 'attempt: expected an integer from 1 to 2^32-1');
  }
  const ids = sortedUniqueIds(f.included, 'included identifiers');
  const idBytes = new Uint8Array(ids.length * 2);
  ids.forEach((id, i) => {
    idBytes[2 * i] = id >> 8;
    idBytes[2 * i + 1] = id & 0xff;
  });
  return taggedFieldsHash(ATTEMPT_ID_V2_TAG, [
    utf8(f.sessionId),
    f.digest,
    f.intentHash,
    u32be(f.attempt),
    idBytes,
  ]);
}

export const attemptIdHex = (f: AttemptFields): string => toHex(attemptId(f));
