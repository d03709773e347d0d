/**
 * Too few signers up (issue 15, friction 2): a session whose reachable, non-quarantined signers
 * cannot make a quorum fails at once with `no_quorum`, naming the signers that cannot sign and
 * why, and is answered 201 (terminal), not 202 after the whole wait. After the signers are back,
 * the next request signs: the marks are checked again, not trusted forever.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startCluster, type TestCluster } from '../helpers/cluster.js';

const msg = () => randomBytes(32).toString('hex');

describe('fail fast when the reachable signers cannot make a quorum', () => {
  let c: TestCluster;
  let key: any;
  let ids: string[];
  before(async () => {
    c = await startCluster({ signers: 3 });
    ids = await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('two of three signers down: refused within ~2 s with the unreachable signers named, twice', async () => {
    assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
    await c.signers[1]!.kill('SIGKILL');
    await c.signers[2]!.kill('SIGKILL');
    for (const round of ['first', 'second']) {
      const t0 = Date.now();
      const r = await c.sign(key.id, msg(), 10_000);
      const ms = Date.now() - t0;
      assert.equal(r.status, 201, `${round}: a terminal session is 201: ${JSON.stringify(r.body)}`);
      assert.deepEqual([r.body.status, r.body.error_code], ['failed', 'no_quorum'], round);
      assert.ok(ms < 2500, `${round}: failed after ${ms} ms, not at once`);
      for (const id of [ids[1]!, ids[2]!]) {
        assert.match(r.body.error_message, new RegExp(`${id} \\([^)]*\\): unreachable`), round);
      }
      assert.doesNotMatch(r.body.error_message, new RegExp(ids[0]!), 'the reachable signer is not named');
    }
  });

  it('the batch API fails each item the same way, at once, answered 201', async () => {
    const t0 = Date.now();
    const r = await c.api('POST', '/v1/sessions/batch', {
      key_id: key.id,
      items: [{ message: msg() }, { message: msg() }],
      wait: 10_000,
    });
    const ms = Date.now() - t0;
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(ms < 2500, `failed after ${ms} ms`);
    for (const s of r.body.items) {
      assert.deepEqual([s.status, s.error_code], ['failed', 'no_quorum']);
      assert.match(s.error_message, /unreachable/);
    }
  });

  it('once they are back, the next request signs (the marks are checked again)', async () => {
    await c.restartSigner(1);
    await c.restartSigner(2);
    const r = await c.sign(key.id, msg(), 10_000);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
  });
});
