/**
 * Two ways the coordinator could leave work behind: a DKG ceremony whose coordinator died
 * (the expiry job must fail it and its key), and an attempt abandoned after a lost race (the
 * signers' nonces must be aborted at once, not left until their TTL).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/until.js';

/** The live-attempt gauge of a signer (nonces held in memory). */
async function liveAttempts(signerUrl: string): Promise<number> {
  const text = await (await fetch(`${signerUrl}/metrics`)).text();
  const m = /^floe_signer_live_attempts (\d+)$/m.exec(text);
  assert.ok(m, 'the gauge is exported');
  return Number(m[1]);
}

describe('a coordinator killed in the middle of a DKG ceremony', () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster({ signers: 3, coordinatorProcess: true, env: { FLOE_CEREMONY_TTL_S: '3' } });
    await c.registerSigners();
  });
  after(() => c.close());

  it('leaves a ceremony that the expiry job fails, with its key', async () => {
    // Freeze signer 3 so that round 1 cannot finish, then kill the coordinator there.
    c.signers[2]!.proc.kill('SIGSTOP');
    const created = await c.api('POST', '/v1/keys', { threshold: 2, label: 'orphan' });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.id;
    await until('the ceremony is in round 1', async () => {
      const k = (await c.api('GET', `/v1/keys/${id}`)).body;
      return k.ceremony?.status === 'round1';
    });
    c.coordinatorProcess!.proc.kill('SIGKILL');
    await c.coordinatorProcess!.exited;
    c.signers[2]!.proc.kill('SIGCONT');
    await c.restartCoordinator();
    // Nobody drives the ceremony any more; the job fails it once its 3 s are up.
    const k = await until(
      'the key fails',
      async () => {
        const x = (await c.api('GET', `/v1/keys/${id}`)).body;
        return x.status === 'failed' && x;
      },
      20_000,
      250,
    );
    assert.equal(k.ceremony.status, 'failed');
    assert.equal(k.ceremony.error_code, 'dkg_failed');
    assert.equal(k.public_key, null);
    // The cluster still makes keys.
    const ok = await c.createKey(2);
    assert.equal(ok.status, 'active');
  });
});

describe('an attempt abandoned after a lost race', () => {
  let c: TestCluster;
  let key: any;
  before(async () => {
    c = await startCluster({ signers: 2 });
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('is aborted on its signers at once, not left until the nonces expire', async () => {
    // Signer 2 is frozen, so the attempt waits in round 1 with signer 1's nonces live.
    c.signers[1]!.proc.kill('SIGSTOP');
    const created = await c.api('POST', '/v1/sessions', { key_id: key.id, message: 'ab'.repeat(32) });
    assert.equal(created.status, 202);
    await until('signer 1 holds the nonces', async () => (await liveAttempts(c.signers[0]!.url)) === 1);
    // Meanwhile the session is moved on elsewhere (here: cancelled), so the attempt loses its race.
    const cancelled = await c.api('POST', `/v1/sessions/${created.body.id}/cancel`);
    assert.equal(cancelled.body.status, 'failed');
    c.signers[1]!.proc.kill('SIGCONT');
    // The signers' TTL is 600 s: only an abort frees them within seconds.
    await until('signer 1 wiped the nonces', async () => (await liveAttempts(c.signers[0]!.url)) === 0, 8000);
    await until('signer 2 wiped the nonces', async () => (await liveAttempts(c.signers[1]!.url)) === 0, 8000);
    // And the key signs the next session normally.
    const r = await c.sign(key.id, 'cd'.repeat(32));
    assert.equal(r.body.status, 'completed');
  });
});
