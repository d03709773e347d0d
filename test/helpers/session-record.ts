/**
 * A SessionRecord for tests that drive the coordinator's services without a database: a
 * message session, pending in attempt 0, every optional column empty; `o` sets what the test is
 * about.
 */
import type { SessionRecord } from '../../src/domain/records.js';

export function sessionRecord(o: Partial<SessionRecord> = {}): SessionRecord {
  const message = o.messageHash ?? '11'.repeat(32);
  return {
    sessionId: 'ses_0123456789abcdef0123456789abcdef',
    tenantId: 'default',
    keyId: 'key_0123456789abcdef0123456789abcdef',
    messageHash: message,
    intentType: 'message',
    intent: { type: 'message', message },
    intentHash: '22'.repeat(32),
    status: 'pending',
    attempt: 0,
    threshold: 2,
    participants: [],
    nonceCommitments: {},
    partialSignatures: {},
    finalSignature: null,
    finalEventId: null,
    createdBy: null,
    idempotencyKey: null,
    errorCode: null,
    errorMessage: null,
    culprits: [],
    createdAt: 0,
    updatedAt: 0,
    expiresAt: 0,
    nonceCollectionStartedAt: null,
    signingStartedAt: null,
    completedAt: null,
    failedAt: null,
    ...o,
  };
}
