import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import { generateIdentityKey, softwareIdentity, xOnlyGroupKey } from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import { importOver, signOver } from '../helpers/drive.js';
import { libsecpVerify } from '../helpers/independent.js';
import { type SignerProcess, signerIdentities, spawnFloe, startSignerProcess } from '../helpers/processes.js';
import { openRequest } from '../helpers/sign-requests.js';

const coordinator = softwareIdentity(generateIdentityKey());
const coordinatorPub = coordinator.publicKeyHex;
const PASS = 'signer process passphrase';

describe('signer processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-sproc-'));
  const procs: SignerProcess[] = [];
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a consumed attempt stays consumed across kill -9 and restart (new process, same data dir)', async () => {
    // The roster (DESIGN §11): the three signers' identities, from their stores.
    const peers = await signerIdentities(
      [1, 2, 3].map((i) => join(dir, `s${i}`)),
      PASS,
    );
    for (const i of [1, 2, 3]) {
      procs.push(
        await startSignerProcess({
          dataDir: join(dir, `s${i}`),
          coordinators: [coordinatorPub],
          passphrase: PASS,
          peers,
        }),
      );
    }
    const clients = procs.map(
      (p) => new SignerClient({ url: p.url, signerIdentity: p.identity, identity: coordinator }),
    );
    const { pub } = await importOver(clients, 2, 'k1');
    const signed = await signOver(
      [
        { client: clients[0]!, id: 1 },
        { client: clients[1]!, id: 2 },
      ],
      pub,
      'k1',
    );
    assert.ok(libsecpVerify(signed.sig, signed.message, xOnlyGroupKey(pub)));

    // Open a second attempt on signer 1 (nonces live only in its memory), then kill -9.
    const live = openRequest({
      sessionId: 'live-session',
      attempt: 1,
      included: [1, 2],
      intent: signed.message,
    });
    await clients[0]!.call('signOpen', live);

    await procs[0]!.kill('SIGKILL');
    const restarted = await startSignerProcess({
      dataDir: join(dir, 's1'),
      coordinators: [coordinatorPub],
      passphrase: PASS,
      peers,
    });
    procs[0] = restarted;
    assert.equal(restarted.identity, clients[0]!.signerIdentity, 'identity survives restart');
    const c1 = new SignerClient({
      url: restarted.url,
      signerIdentity: restarted.identity,
      identity: coordinator,
    });

    const refused = (code: string) => (e: unknown) => e instanceof FloeError && e.code === code;
    await assert.rejects(c1.call('signRound2', signed.round2), refused('consumed_nonce_replay'));
    await assert.rejects(c1.call('signOpen', signed.open), refused('consumed_nonce_replay'));
    // The attempt that was live at the crash has no nonces any more: round 2 cannot sign it.
    assert.equal((await c1.call('nodeInfo', {})).live_attempts, 0);
    // A new attempt on the restarted signer works.
    const again = await signOver(
      [
        { client: c1, id: 1 },
        { client: clients[2]!, id: 3 },
      ],
      pub,
      'k1',
    );
    assert.ok(libsecpVerify(again.sig, again.message, xOnlyGroupKey(pub)));
  });

  it('a wrong passphrase stops start-up with a clear message', async () => {
    const s = spawnFloe(['signer'], {
      FLOE_SIGNER_DATA_DIR: join(dir, 's2'),
      FLOE_SIGNER_LISTEN: '127.0.0.1:0',
      FLOE_SIGNER_COORDINATORS: coordinatorPub,
      FLOE_SIGNER_PASSPHRASE: 'not the passphrase',
    });
    assert.equal(await s.exited, 1);
    assert.match(s.stderr.join(''), /wrong passphrase/);
    assert.ok(!s.stderr.join('').includes('not the passphrase'));
  });

  it('a missing allowlist stops start-up with a clear message', async () => {
    const s = spawnFloe(['signer'], {
      FLOE_SIGNER_DATA_DIR: join(dir, 's9'),
      FLOE_SIGNER_LISTEN: '127.0.0.1:0',
      FLOE_SIGNER_PASSPHRASE: PASS,
    });
    assert.equal(await s.exited, 1);
    assert.match(s.stderr.join(''), /allowlist/);
  });

  it('no passphrase source stops start-up with a clear message', async () => {
    const s = spawnFloe(['signer'], {
      FLOE_SIGNER_DATA_DIR: join(dir, 's8'),
      FLOE_SIGNER_LISTEN: '127.0.0.1:0',
      FLOE_SIGNER_COORDINATORS: coordinatorPub,
    });
    assert.equal(await s.exited, 1);
    assert.match(s.stderr.join(''), /FLOE_SIGNER_PASSPHRASE|passphrase/);
  });
});
