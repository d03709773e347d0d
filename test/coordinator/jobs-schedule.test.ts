/**
 * What the jobs do how often: the embedded database's autovacuum (src/db/maintenance.ts) at
 * their first tick and then at most once per `maintainEveryMs`, under the job lock like the other
 * cleanups; the sessions gauge from the live statuses at every tick and from every status once
 * per `maintainEveryMs`. A backend that records the calls the ticks make (the scheduling is what
 * is under test here; the database side: test/db/maintenance.test.ts, test/db/sessions.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/coordinator/backend.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { Jobs } from '../../src/coordinator/services/jobs.js';
import type { SignerRegistry } from '../../src/coordinator/services/registry.js';
import type { SessionService } from '../../src/coordinator/services/sessions.js';

function recordingBackend(
  calls: string[],
  lockFree: () => boolean,
  counts: (live: boolean) => Record<string, number> = () => ({}),
) {
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
    async countSessionsByStatus(o: { live?: boolean } = {}) {
      calls.push(o.live ? 'count live' : 'count all');
      return counts(Boolean(o.live));
    },
    listSigners: async () => [],
  };
  return backend as unknown as Backend;
}

/** Jobs over `backend` whose clock is `clock()`, with a minute between the slow jobs. */
function jobsWith(backend: Backend, clock: () => number, metrics = new CoordinatorMetrics()): Jobs {
  return new Jobs(jobsOptions(backend, clock, metrics));
}

function jobsOptions(backend: Backend, clock: () => number, metrics = new CoordinatorMetrics()) {
  return {
    backend,
    sessions: { isDriving: () => false, drive: () => {} } as unknown as SessionService,
    registry: { probeAll: async () => {} } as unknown as SignerRegistry,
    metrics,
    intervalMs: 1000,
    resumeAfterMs: 15_000,
    instanceId: 'test',
    retentionDays: 90,
    maintainEveryMs: 60_000,
    now: clock,
  };
}

describe('jobs: what runs how often', () => {
  it('the embedded database autovacuum runs at the first tick, then once per interval, and only under the job lock', async () => {
    const calls: string[] = [];
    let now = 1_000_000;
    let lockFree = true;
    const jobs = jobsWith(
      recordingBackend(calls, () => lockFree),
      () => now,
    );
    const maintained = () => calls.filter((c) => c === 'maintain').length;
    await jobs.tick();
    assert.equal(maintained(), 1, 'at the first tick');
    now += 59_999;
    await jobs.tick();
    assert.equal(maintained(), 1, 'not again within the interval');
    now += 1;
    await jobs.tick();
    assert.equal(maintained(), 2, 'again once the interval is up');
    now += 60_000;
    lockFree = false;
    await jobs.tick();
    assert.equal(maintained(), 2, 'not while another coordinator holds the job lock');
    lockFree = true;
    await jobs.tick();
    assert.equal(maintained(), 3);
    jobs.stop();
  });

  it('a failed maintenance is logged and the rest of the tick goes on', async () => {
    const calls: string[] = [];
    const backend = recordingBackend(calls, () => true);
    backend.maintainTables = async () => {
      calls.push('maintain');
      throw new Error('disk full');
    };
    const warnings: string[] = [];
    const jobs = new Jobs({
      ...jobsOptions(backend, () => 1_000_000),
      log: { warn: (o, m) => warnings.push(`${m}: ${(o as { err: string }).err}`) },
    });
    await jobs.tick();
    assert.deepEqual(calls, ['maintain', 'count all'], 'the gauge was still read');
    assert.deepEqual(warnings, ['table maintenance failed: disk full']);
    jobs.stop();
  });

  it('counts the live sessions at every tick and every status once per interval, into the gauge', async () => {
    const calls: string[] = [];
    let now = 1_000_000;
    let live: Record<string, number> = { pending: 0, nonce_collection: 2, signing: 1 };
    const all = { ...live, completed: 40, failed: 3, expired: 1 };
    const metrics = new CoordinatorMetrics();
    const jobs = jobsWith(
      recordingBackend(
        calls,
        () => true,
        (l) => (l ? live : all),
      ),
      () => now,
      metrics,
    );
    const gauge = async () =>
      Object.fromEntries(
        (await metrics.sessionsByStatus.get()).values.map((v) => [String(v.labels.status), v.value]),
      );
    const counted = () => calls.filter((c) => c.startsWith('count'));
    await jobs.tick();
    assert.deepEqual(counted(), ['count all'], 'every status at the first tick');
    assert.deepEqual(await gauge(), all);
    now += 1000;
    live = { pending: 0, nonce_collection: 0, signing: 3 };
    await jobs.tick();
    assert.deepEqual(counted(), ['count all', 'count live']);
    assert.deepEqual(await gauge(), { ...all, ...live }, 'the live statuses refreshed, a status at 0 too');
    now += 59_000;
    await jobs.tick();
    assert.deepEqual(
      counted(),
      ['count all', 'count live', 'count all'],
      'every status again after the interval',
    );
    jobs.stop();
  });
});
