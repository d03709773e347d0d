/**
 * `floe up --signers 5 --threshold 3`: a 3-of-5 demo key; the printed curl signs, and it still
 * signs with two signers killed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readClusterState } from '../../src/cluster/state.js';
import { fromHex } from '../../src/crypto/hex.js';
import { alive, fetchCurl, parseCurl, startUp, type UpProcess, until } from '../helpers/e2e-floe.js';
import { libsecpVerify } from '../helpers/independent.js';

describe('floe up: a 3-of-5 cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-e2e-3of5-'));
  let up: UpProcess | undefined;
  after(async () => {
    await up?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a 3-of-5 demo key; signs through the printed curl, and with two signers down', async () => {
    const started = await startUp(['--data-dir', join(dir, 'data'), '--signers', '5', '--threshold', '3'], {
      cwd: dir,
      signers: 5,
    });
    up = started.up;
    assert.match(up.output(), /a coordinator and 5 signers, demo key 3-of-5/);
    const state = readClusterState(join(dir, 'data', 'cluster.json'))!;
    assert.equal(state.signers.length, 5);
    assert.equal(state.demo_key!.threshold, 3);
    assert.equal(state.demo_key!.n, 5);
    const xOnly = fromHex(state.demo_key!.x_only_public_key, 'x', 32);

    const req = parseCurl(up.output(), dir);
    const res = await fetchCurl(req);
    assert.equal(res.body.status, 'completed', JSON.stringify(res.body));
    assert.equal(res.body.participants.length, 3);
    const message = fromHex(JSON.parse(req.body!).message, 'm', 32);
    assert.ok(libsecpVerify(fromHex(res.body.signature, 's', 64), message, xOnly));

    // Two signers down (kill -9): the remaining three still sign.
    const victims = [state.signers[0]!.pid!, state.signers[3]!.pid!];
    for (const pid of victims) process.kill(pid, 'SIGKILL');
    await until('victims dead', () => victims.every((p) => !alive(p)));
    const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
    const r = await fetch(`${state.coordinator.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key_id: state.demo_key!.id, message: '44'.repeat(32), wait: 30_000 }),
    });
    const s = (await r.json()) as any;
    assert.equal(s.status, 'completed', JSON.stringify(s));
    assert.ok(libsecpVerify(fromHex(s.signature, 's', 64), fromHex('44'.repeat(32), 'm', 32), xOnly));

    assert.equal(await up.stop('SIGTERM'), 0);
  });
});
