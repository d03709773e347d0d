/**
 * GET /v1/sessions/:id?wait on a session this coordinator is not driving (driven by another
 * coordinator, waiting for its stewards, or not yet resumed after a restart): it is read again
 * every 200 ms, and the wait leaves the event loop free. The backend here answers without I/O,
 * as PGlite does: a wait that never yields would starve every timer and socket of the process
 * (a restarted coordinator once spun for the whole wait, and never resumed the session).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/coordinator/backend.js';
import type { BatchSigning } from '../../src/coordinator/batch.js';
import { noApprovals } from '../../src/coordinator/services/approvals.js';
import { SessionService } from '../../src/coordinator/services/sessions.js';
import type { SigningOrchestrator } from '../../src/coordinator/signing.js';
import type { Principal, SessionRecord } from '../../src/domain/records.js';
import { sessionRecord } from '../helpers/session-record.js';

const NOW = Date.now();
const session = (status: SessionRecord['status']): SessionRecord =>
  sessionRecord({
    status,
    attempt: 1,
    participants: [1, 2],
    finalSignature: status === 'completed' ? '33'.repeat(64) : null,
    createdAt: NOW,
    updatedAt: NOW,
    expiresAt: NOW + 600_000,
    nonceCollectionStartedAt: NOW,
    completedAt: status === 'completed' ? NOW : null,
  });

const principal: Principal = { tenantId: 'default', role: 'admin', tokenId: 'tok_test' };

/** A SessionService over a backend that answers getSession at once (no I/O), counting reads. */
function service(read: (n: number) => SessionRecord) {
  let reads = 0;
  const backend = {
    getSession: async () => read(++reads),
  } as unknown as Backend;
  const svc = new SessionService({
    backend,
    orchestrator: {} as SigningOrchestrator,
    batch: {} as BatchSigning,
    approvals: noApprovals,
    now: Date.now,
    sessionTtlMs: 600_000,
  });
  return { svc, reads: () => reads };
}

describe('waiting for a session this process does not drive', () => {
  it('reads it every 200 ms, and timers keep running meanwhile', async () => {
    const { svc, reads } = service(() => session('nonce_collection'));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    const t0 = Date.now();
    const got = await svc.get(principal, session('nonce_collection').sessionId, 1000);
    clearInterval(timer);
    assert.equal(got.status, 'nonce_collection');
    assert.ok(Date.now() - t0 >= 950, 'it waited');
    assert.ok(reads() <= 8, `read ${reads()} times in one second`);
    assert.ok(ticks >= 10, `a 50 ms timer ran ${ticks} times during the wait`);
  });

  it('returns as soon as a read finds it final', async () => {
    const { svc, reads } = service((n) => session(n >= 3 ? 'completed' : 'signing'));
    const t0 = Date.now();
    const got = await svc.get(principal, session('signing').sessionId, 10_000);
    assert.equal(got.status, 'completed');
    assert.equal(reads(), 3);
    assert.ok(Date.now() - t0 < 2000);
  });
});
