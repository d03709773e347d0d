/**
 * The backup / restore drill with real processes (docs/backup.md): a 2-of-3 key signs; signer 3's
 * share is backed up (while it runs, then stopped), its data dir destroyed, a fresh signer 3 gets
 * the share (and its identity) back with `floe signer restore`, and signers 1 and 3 alone sign a
 * message that verifies under the key. The backup files hold no share in the clear, are 0600, and
 * restore refuses a key already there, a store of another identity and a signer off the roster.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { openSignerStore } from '../../src/signer/node.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { runFloe } from '../helpers/e2e-floe.js';

/** The passphrase test/helpers/cluster.ts seals its signer stores with. */
const PASS = 'test cluster passphrase';

describe('share backup and restore of a lost signer', () => {
  let c: TestCluster;
  let work: string;
  before(async () => {
    c = await startCluster({ signers: 3 });
    await c.registerSigners();
    work = mkdtempSync(join(tmpdir(), 'floe-backup-e2e-'));
  });
  after(async () => {
    await c?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const floe = (args: string[], env: Record<string, string> = {}) =>
    runFloe([...args, '--json'], { cwd: work, env, timeoutMs: 120_000 });
  const errorCode = (stderr: string) => (JSON.parse(stderr.trim().split('\n').pop()!) as any).error.code;

  it('a restored signer 3 signs with signer 1 while signer 2 is down', async () => {
    const key = await c.createKey(2);
    const pub = fromHex(key.x_only_public_key, 'key', 32);
    const first = await c.sign(key.id, randomBytes(32).toString('hex'));
    assert.equal(first.body.status, 'completed', JSON.stringify(first.body));

    const dir3 = join(c.dir, 'signer-3');
    const store3 = { FLOE_SIGNER_DATA_DIR: dir3, FLOE_SIGNER_PASSPHRASE: PASS };
    const identity3 = c.signers[2]!.identity;
    const peers = c.signers.map((s) => s.identity).join(',');

    // The operator's backup key (kept off the signer).
    const keygen = await floe(['signer', 'backup-keygen', '--out', join(work, 'operator.age')]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const recipient = JSON.parse(keygen.stdout).recipient as string;

    // Backed up while signer 3 runs (a second SQLite connection, WAL).
    const sealed = join(work, 'share-3.floe-backup');
    const b1 = await floe(
      ['signer', 'backup', '--key', key.id, '--to-recipient', recipient, '--out', sealed],
      store3,
    );
    assert.equal(b1.code, 0, b1.stderr);
    assert.deepEqual(
      (({ key_id, identifier, identity, sealed_to }) => ({ key_id, identifier, identity, sealed_to }))(
        JSON.parse(b1.stdout),
      ),
      { key_id: key.id, identifier: 3, identity: identity3, sealed_to: recipient },
    );
    assert.equal(statSync(sealed).mode & 0o777, 0o600);
    // The same file name again is refused (no overwrite).
    const again = await floe(
      ['signer', 'backup', '--key', key.id, '--to-recipient', recipient, '--out', sealed],
      store3,
    );
    assert.equal(errorCode(again.stderr), 'invalid_request');

    // Signer 3 stops; a passphrase backup of the stopped store too.
    await c.signers[2]!.kill('SIGTERM');
    const passFile = join(work, 'backup.pass');
    writeFileSync(passFile, 'operator backup passphrase\n', { mode: 0o600 });
    const byPass = join(work, 'share-3.pass.floe-backup');
    const b2 = await floe(
      ['signer', 'backup', '--key', key.id, '--passphrase-file', passFile, '--out', byPass],
      store3,
    );
    assert.equal(b2.code, 0, b2.stderr);

    // Neither file holds the share (nor the identity key) in the clear, in any usual encoding.
    const opened = await openSignerStore({ data_dir: dir3 }, { FLOE_SIGNER_PASSPHRASE: PASS });
    const share = opened.store.getKey(key.id)!.keyPackage.signingShare;
    const idSecret = opened.store.getIdentity()!;
    opened.store.close();
    opened.identity.dispose();
    for (const f of [sealed, byPass]) {
      const bytes = readFileSync(f);
      const textOf = bytes.toString('latin1');
      for (const s of [share, idSecret]) {
        assert.ok(bytes.indexOf(Buffer.from(s)) < 0, 'raw bytes');
        assert.ok(!textOf.toLowerCase().includes(toHex(s)), 'hex');
        assert.ok(!textOf.includes(Buffer.from(s).toString('base64').slice(0, 40)), 'base64');
      }
    }

    // The machine is lost.
    rmSync(dir3, { recursive: true, force: true });

    // Off the roster: refused before any store is made.
    const offRoster = await floe(
      ['signer', 'restore', '--in', sealed, '--identity-key-file', join(work, 'operator.age')],
      store3,
    );
    assert.equal(errorCode(offRoster.stderr), 'not_on_roster', offRoster.stderr);
    // A wrong backup passphrase.
    const wrongPass = join(work, 'wrong.pass');
    writeFileSync(wrongPass, 'not the passphrase\n', { mode: 0o600 });
    const wrong = await floe(['signer', 'restore', '--in', byPass, '--passphrase-file', wrongPass], {
      ...store3,
      FLOE_SIGNER_PEERS: peers,
    });
    assert.equal(errorCode(wrong.stderr), 'unauthorized', wrong.stderr);
    // A store that has another identity already (a signer started once on the new machine) is
    // not taken over.
    const other = join(work, 'other-signer');
    const otherStore = await openSignerStore({ data_dir: other }, { FLOE_SIGNER_PASSPHRASE: PASS });
    otherStore.store.close();
    otherStore.identity.dispose();
    const notMember = await floe(
      ['signer', 'restore', '--in', sealed, '--identity-key-file', join(work, 'operator.age')],
      { FLOE_SIGNER_DATA_DIR: other, FLOE_SIGNER_PASSPHRASE: PASS, FLOE_SIGNER_PEERS: peers },
    );
    assert.equal(errorCode(notMember.stderr), 'not_a_member', notMember.stderr);

    // Restore on the replacement: a new store with signer 3's identity and share.
    const restored = await floe(
      ['signer', 'restore', '--in', sealed, '--identity-key-file', join(work, 'operator.age')],
      { ...store3, FLOE_SIGNER_PEERS: peers },
    );
    assert.equal(restored.code, 0, restored.stderr);
    const r = JSON.parse(restored.stdout);
    assert.deepEqual([r.key_id, r.identifier, r.identity, r.new_store], [key.id, 3, identity3, true]);
    // Twice: the key is there already.
    const twice = await floe(['signer', 'restore', '--in', byPass, '--passphrase-file', passFile], {
      ...store3,
      FLOE_SIGNER_PEERS: peers,
    });
    assert.equal(errorCode(twice.stderr), 'key_exists', twice.stderr);

    // The replacement starts with the same identity, on the same address the coordinator knows.
    const s3 = await c.restartSigner(2);
    assert.equal(s3.identity, identity3);

    // Signer 2 goes down: only 1 and 3 can sign.
    await c.signers[1]!.kill('SIGKILL');
    const message = randomBytes(32).toString('hex');
    const s = await c.sign(key.id, message, 60_000);
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.deepEqual(s.body.participants, [1, 3]);
    assert.ok(schnorr.verify(fromHex(s.body.signature, 'sig', 64), fromHex(message, 'msg', 32), pub));
  });
});
