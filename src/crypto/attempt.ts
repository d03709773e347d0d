import { CryptoError } from './errors.js';
import { taggedFieldsHash, u32be, utf8 } from './hash.js';
import { type Identifier, sortedUniqueIds } from './identifier.js';

export const ATTEMPT_ID_TAG = 'floe/attempt-id/v1';

export interface AttemptContext {
  sessionId: string;
  /** The 32-byte digest being signed. */
  messageDigest: Uint8Array;
  /** 1-based attempt number within the session. */
  attempt: number;
  /** Identifiers of the signers included in this attempt. */
  included: readonly Identifier[];
}

/**
 * attempt_id = SHA-256 over the domain tag and the length-prefixed fields: session id
 * (UTF-8), message digest, attempt number (u32 BE), sorted included identifiers (u16 BE each).
 */
export function attemptId(ctx: AttemptContext): Uint8Array {
  if (!ctx.sessionId || ctx.sessionId.length > 128)
    throw new CryptoError('invalid_encoding', 'session id: 1 to 128 chars');
  if (ctx.messageDigest.length !== 32)
    throw new CryptoError('invalid_encoding', 'message digest: expected 32 bytes');
  if (!Number.isInteger(ctx.attempt) || ctx.attempt < 1 || ctx.attempt > 0xffffffff) {
    throw new CryptoError('invalid_encoding', 'attempt: expected an integer from 1 to 2^32-1');
  }
  const ids = sortedUniqueIds(ctx.included, 'included identifiers');
  const idBytes = new Uint8Array(ids.length * 2);
  ids.forEach((id, i) => {
    idBytes[2 * i] = id >> 8;
    idBytes[2 * i + 1] = id & 0xff;
  });
  return taggedFieldsHash(ATTEMPT_ID_TAG, [
    utf8(ctx.sessionId),
    ctx.messageDigest,
    u32be(ctx.attempt),
    idBytes,
  ]);
}
