/**
 * The kill switch (issue 15 item 8) on a real cluster: an operator key pinned on every signer
 * signs freeze / unfreeze instructions; the coordinator applies and forwards them, and each
 * signer verifies and enforces them on its own, so a coordinator that signs anyway is refused,
 * and the coordinator alone cannot unfreeze. Also disable / enable (item 7): coordinator only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { coordinatorIdentity } from '../../src/coordinator/node.js';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { generateIdentityKey, identityPublicKey } from '../../src/crypto/identity.js';
import { signInstruction } from '../../src/domain/operator-instruction.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem } from '../helpers/http.js';
import { libsecpVerify } from '../helpers/independent.js';
import { until } from '../helpers/until.js';

const msg = () => randomBytes(32).toString('hex');

describe('freeze and unfreeze a key by operator instruction', () => {
  const operator = generateIdentityKey();
  const operatorPub = toHex(identityPublicKey(operator));
  let c: TestCluster;
  let key: any;
  let ids: string[];
  /** Talks to a signer as the coordinator does: the coordinator's own identity and envelopes. */
  let asCoordinator: (i: number) => SignerClient;
  let t = Date.now();
  /** A signed instruction, each one stamped later than the one before. */
  const instruction = (type: 'freeze' | 'unfreeze', secret = operator) => {
    t = Math.max(Date.now(), t + 1);
    return signInstruction({ type, keyId: key.id, now: t }, secret);
  };

  before(async () => {
    c = await startCluster({ signers: 3, signerEnv: () => ({ FLOE_SIGNER_OPERATORS: operatorPub }) });
    ids = await c.registerSigners();
    key = await c.createKey(2);
    const { identity } = coordinatorIdentity(join(c.dir, 'coordinator'));
    asCoordinator = (i) =>
      new SignerClient({ url: c.signers[i]!.url, signerIdentity: c.signers[i]!.identity, identity });
  });
  after(() => c.close());

  /** sign.open sent by "the coordinator" straight to signer i: its refusal code, or 'opened'. */
  async function openDirect(i: number): Promise<string> {
    const included = [1, 2, 3];
    try {
      await asCoordinator(i).call('signOpen', {
        key_id: key.id,
        session_id: `ses_${randomBytes(16).toString('hex')}`,
        attempt: 1,
        included,
        intent: { type: 'message', message: msg() },
        message: '00'.repeat(32),
        intent_hash: '00'.repeat(32),
        attempt_id: '00'.repeat(32),
      });
      return 'opened';
    } catch (e) {
      return isFloeError(e) ? e.code : String(e);
    }
  }

  it('freeze: a running session fails key_frozen, new ones are refused, every signer refuses', async () => {
    const first = await c.sign(key.id, msg());
    assert.equal(first.body.status, 'completed');
    // Signer 1 stops answering: the next session hangs in its first attempt (ordered selection
    // asks members 1 and 2), and signer 1 cannot be told of the freeze.
    c.signers[0]!.proc.kill('SIGSTOP');
    const running = await c.api('POST', '/v1/sessions', { key_id: key.id, message: msg() });
    assert.equal(running.status, 202, JSON.stringify(running.body));
    const freeze = instruction('freeze');
    const r = await c.api('POST', `/v1/keys/${key.id}/freeze`, { instruction: freeze });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.key.status, 'frozen');
    assert.equal(r.body.sessions_failed, 1);
    const told = Object.fromEntries(r.body.signers.map((s: any) => [s.signer_id, s]));
    assert.deepEqual([told[ids[1]!].applied, told[ids[2]!].applied], [true, true]);
    assert.equal(told[ids[0]!].applied, false, 'the stopped signer could not be told');
    assert.equal(told[ids[0]!].error_code, 'signer_unreachable');

    const s = await c.api('GET', `/v1/sessions/${running.body.id}`);
    assert.deepEqual([s.body.status, s.body.error_code], ['failed', 'key_frozen']);
    assertProblem(await c.sign(key.id, msg()), 409, 'key_frozen', 'new session');
    assertProblem(
      await c.api('POST', '/v1/sessions/batch', { key_id: key.id, items: [{ message: msg() }] }),
      409,
      'key_frozen',
      'batch',
    );

    // The same signed instruction again reaches the signer that missed it (the others: no change).
    c.signers[0]!.proc.kill('SIGCONT');
    const again = await c.api('POST', `/v1/keys/${key.id}/freeze`, { instruction: freeze });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.ok(
      again.body.signers.every((x: any) => x.applied),
      JSON.stringify(again.body.signers),
    );

    // A coordinator that asks anyway: each signer refuses on its own.
    for (const i of [0, 1, 2]) assert.equal(await openDirect(i), 'key_frozen', `signer ${i + 1}`);
  });

  it('the coordinator alone cannot unfreeze: no operator signature, another key, a replay', async () => {
    // A well-formed unfreeze signed by a key the signers do not pin (the coordinator's own, say).
    const forged = instruction('unfreeze', generateIdentityKey());
    const r = await c.api('POST', `/v1/keys/${key.id}/unfreeze`, { instruction: forged });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const s of r.body.signers) {
      assert.deepEqual([s.applied, s.error_code], [false, 'operator_instruction_invalid']);
    }
    for (const i of [0, 1, 2])
      assert.equal(await openDirect(i), 'key_frozen', `signer ${i + 1} still frozen`);
    // The coordinator sends the forged unfreeze itself, straight to a signer.
    await assert.rejects(
      asCoordinator(1).call('keyFreeze', { instruction: forged }),
      (e) => isFloeError(e) && e.code === 'operator_instruction_invalid',
    );
    // A tampered signature.
    const bad = { ...instruction('unfreeze'), sig: 'ab'.repeat(64) };
    await assert.rejects(
      asCoordinator(1).call('keyFreeze', { instruction: bad }),
      (e) => isFloeError(e) && e.code === 'operator_instruction_invalid',
    );
    // Sessions still fail: the coordinator's status moved, the signers' did not.
    const s = await c.sign(key.id, msg(), 15_000);
    assert.deepEqual([s.body.status, s.body.error_code], ['failed', 'key_frozen'], JSON.stringify(s.body));
  });

  it('an old unfreeze replayed after a newer freeze is refused', async () => {
    const oldUnfreeze = instruction('unfreeze');
    const ok = await asCoordinator(2).call('keyFreeze', { instruction: oldUnfreeze });
    assert.equal(ok.frozen, false, 'a genuine unfreeze applies');
    const refreeze = instruction('freeze');
    assert.equal((await asCoordinator(2).call('keyFreeze', { instruction: refreeze })).frozen, true);
    await assert.rejects(
      asCoordinator(2).call('keyFreeze', { instruction: oldUnfreeze }),
      (e) => isFloeError(e) && e.code === 'operator_instruction_stale',
    );
    assert.equal(await openDirect(2), 'key_frozen');
    // And through the API: refused by every signer.
    const r = await c.api('POST', `/v1/keys/${key.id}/unfreeze`, { instruction: oldUnfreeze });
    assert.ok(
      r.body.signers.some((s: any) => s.error_code === 'operator_instruction_stale'),
      JSON.stringify(r.body),
    );
    // Make the key frozen on the coordinator again for the next test.
    const f = await c.api('POST', `/v1/keys/${key.id}/freeze`, { instruction: instruction('freeze') });
    assert.equal(f.body.key.status, 'frozen');
  });

  it('after a proper unfreeze, signing works again', async () => {
    const r = await c.api('POST', `/v1/keys/${key.id}/unfreeze`, { instruction: instruction('unfreeze') });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.key.status, 'active');
    assert.ok(
      r.body.signers.every((s: any) => s.applied),
      JSON.stringify(r.body.signers),
    );
    // Signer 1 was stopped a while: wait until this coordinator sees it again.
    const s = await until('a signature after the unfreeze', async () => {
      const x = await c.sign(key.id, msg());
      return x.body.status === 'completed' && x.body;
    });
    assert.ok(
      libsecpVerify(
        fromHex(s.signature, 'sig', 64),
        fromHex(s.message, 'msg', 32),
        fromHex(key.x_only_public_key, 'key', 32),
      ),
    );
  });

  it('disable / enable: the coordinator refuses new sessions, the signers are not involved', async () => {
    const d = await c.api('POST', `/v1/keys/${key.id}/disable`);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.key.status, 'disabled');
    assertProblem(await c.sign(key.id, msg()), 409, 'key_disabled', 'disabled');
    const viewer = await c.api('POST', '/v1/tokens', { role: 'operator' });
    const denied = await c.api('POST', `/v1/keys/${key.id}/enable`, undefined, {
      authorization: `Bearer ${viewer.body.token}`,
    });
    assert.equal(denied.status, 403, 'admin only');
    const e = await c.api('POST', `/v1/keys/${key.id}/enable`);
    assert.equal(e.body.key.status, 'active');
    assert.equal((await c.sign(key.id, msg())).body.status, 'completed');
  });
});
