/**
 * The jobs do the embedded database's autovacuum (src/db/maintenance.ts) at their first tick
 * and then at most once per `maintainEveryMs`, under the job lock like the other cleanups. A
 * backend that records the calls the ticks make (the scheduling is what is under test here; the
 * vacuuming itself: test/db/maintenance.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/coordinator/backend.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { Jobs } from '../../src/coordinator/services/jobs.js';
import type { SignerRegistry } from '../../src/coordinator/services/registry.js';
import type { SessionService } from '../../src/coordinator/services/sessions.js';

function recordingBackend(calls: string[], lockFree: () => boolean) {
  const backend = {
    async withJobLock(_key: number, fn: () => Promise<void>) {
      if (!lockFree()) return false;
      await fn();
      return true;
    },
    expireSessions: async () => 0,
    expireCeremonies: async () => 0,
    cleanupSessions: async () => 0,
    cleanupRateLimits: async () => 0,
    async maintainTables() {
      calls.push('maintain');
      return { vacuumed: [], analyzed: [] };
    },
    claimStaleSessions: async () => [],
    countSessionsByStatus: async () => ({}),
    listSigners: async () => [],
  };
  return backend as unknown as Backend;
}

describe('jobs: the embedded database autovacuum', () => {
  it('runs at the first tick, then once per interval, and only under the job lock', async () => {
    const calls: string[] = [];
    let now = 1_000_000;
    let lockFree = true;
    const jobs = new Jobs({
      backend: recordingBackend(calls, () => lockFree),
      sessions: { isDriving: () => false, drive: () => {} } as unknown as SessionService,
      registry: { probeAll: async () => {} } as unknown as SignerRegistry,
      metrics: new CoordinatorMetrics(),
      intervalMs: 1000,
      resumeAfterMs: 15_000,
      instanceId: 'test',
      retentionDays: 90,
      maintainEveryMs: 60_000,
      now: () => now,
    });
    await jobs.tick();
    assert.deepEqual(calls, ['maintain'], 'at the first tick');
    now += 59_999;
    await jobs.tick();
    assert.equal(calls.length, 1, 'not again within the interval');
    now += 1;
    await jobs.tick();
    assert.equal(calls.length, 2, 'again once the interval is up');
    now += 60_000;
    lockFree = false;
    await jobs.tick();
    assert.equal(calls.length, 2, 'not while another coordinator holds the job lock');
    lockFree = true;
    await jobs.tick();
    assert.equal(calls.length, 3);
    jobs.stop();
  });
});
