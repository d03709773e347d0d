/**
 * The regeneration drill (DESIGN §14, seed 004 "Recovery"): a deployment made by
 * `floe init --hsm` (SoftHSM2 tokens) creates per-passphrase addresses; then every signer's data
 * and the database are destroyed; `floe drill regenerate`, with only the HSM tokens, the bundle's
 * configs (and the coordinator's address.key in it) and the passphrase list, regenerates the same
 * addresses on empty data dirs and an empty database, and exits non-zero on any difference.
 * After the drill, the regenerated cluster signs a PSBT spending from one of them — when this
 * build supports `bitcoin_psbt` sessions (the test says so when it does not).
 *
 * Needs SoftHSM2: skipped with the reason when it is absent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { runFloe } from '../helpers/e2e-floe.js';
import { request } from '../helpers/http.js';
import { type Spawned, spawnFloe } from '../helpers/processes.js';
import { hsmEnv, makeSoftHsm, type SoftHsm, softhsmSkipReason } from '../helpers/softhsm.js';

bitcoin.initEccLib(ecc);

const skip = softhsmSkipReason();
if (skip) console.warn(`# drill tests skipped — ${skip}`);

const N = 3;

describe('floe drill regenerate (SoftHSM2 tokens, real processes)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-drill-'));
  const bundle = join(dir, 'bundle');
  const procs: Spawned[] = [];
  let hsm: SoftHsm;
  let env: Record<string, string>;
  const passphrases = Array.from(
    { length: 4 },
    (_, i) => `drill user ${i} ${randomBytes(6).toString('hex')}`,
  );
  const recorded: { address: string; key_id: string }[] = [];

  before(async () => {
    hsm = makeSoftHsm(dir);
    env = { ...hsmEnv(hsm), FLOE_LOG_LEVEL: 'warn' };
    const init = await runFloe(
      [
        'init',
        '--signers',
        String(N),
        '--threshold',
        '2',
        '--out',
        bundle,
        '--hsm',
        '--pkcs11-lib',
        hsm.module,
        '--json',
      ],
      { cwd: dir, env, timeoutMs: 120_000 },
    );
    assert.equal(init.code, 0, init.stderr);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the deployment makes per-passphrase addresses', async () => {
    const deployment = JSON.parse(readFileSync(join(bundle, 'deployment.json'), 'utf8'));
    const signers = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const p = spawnFloe(['signer', '--config', join(bundle, `signer-${i + 1}.json`)], {
          ...env,
          FLOE_SIGNER_LISTEN: '127.0.0.1:0',
        });
        procs.push(p);
        return p.waitFor('signer_started', 60_000);
      }),
    );
    const coordinator = spawnFloe(['coordinator', '--config', join(bundle, 'coordinator.json')], {
      ...env,
      FLOE_COORDINATOR_LISTEN: '127.0.0.1:0',
    });
    procs.push(coordinator);
    const url = String((await coordinator.waitFor('coordinator_started', 60_000)).url);
    const token = readFileSync(join(bundle, 'admin.token'), 'utf8').trim();
    for (const [i, s] of signers.entries()) {
      assert.equal(s.identity, deployment.signers[i].identity, 'the identity init pinned');
      const r = await request(url, 'POST', '/v1/signers', {
        token,
        json: { url: s.url, identity: s.identity, name: `signer-${i + 1}` },
      });
      assert.equal(r.status, 201, r.text);
    }
    for (const passphrase of passphrases) {
      const r = await request(url, 'POST', '/v1/addresses', { token, json: { passphrase } });
      assert.equal(r.status, 201, r.text);
      recorded.push({ address: r.body.address, key_id: r.body.key_id });
    }
    assert.equal(new Set(recorded.map((x) => x.address)).size, passphrases.length);
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGTERM')));
  });

  it('every signer data dir and the database destroyed: the drill regenerates the same addresses', async () => {
    for (let i = 1; i <= N; i++) rmSync(join(bundle, `signer-${i}`), { recursive: true, force: true });
    rmSync(join(bundle, 'coordinator', 'pgdata'), { recursive: true, force: true });
    rmSync(join(bundle, 'admin.token'), { force: true });
    writeFileSync(join(dir, 'passphrases.txt'), `${passphrases.join('\n')}\n`);
    writeFileSync(join(dir, 'expected.txt'), `${recorded.map((x) => x.address).join('\n')}\n`);

    const r = await runFloe(
      [
        'drill',
        'regenerate',
        '--deployment',
        bundle,
        '--passphrases',
        join(dir, 'passphrases.txt'),
        '--expect',
        join(dir, 'expected.txt'),
        '--out',
        join(dir, 'regenerated.txt'),
        '--json',
      ],
      { cwd: dir, env, timeoutMs: 300_000 },
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const done = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'drill_done');
    assert.equal(done.match, passphrases.length);
    assert.equal(done.differs, 0);
    assert.equal(done.failed, 0);
    assert.deepEqual(
      readFileSync(join(dir, 'regenerated.txt'), 'utf8').trim().split('\n'),
      recorded.map((x) => x.address),
    );
    for (const p of passphrases) assert.ok(!(r.stdout + r.stderr).includes(p), 'no passphrase printed');
  });

  it('exits non-zero when an address differs from the record, naming the line', async () => {
    const tampered = recorded.map((x) => x.address);
    tampered[2] = recorded[0]!.address;
    writeFileSync(join(dir, 'tampered.txt'), `${tampered.join('\n')}\n`);
    const r = await runFloe(
      [
        'drill',
        'regenerate',
        '--deployment',
        bundle,
        '--passphrases',
        join(dir, 'passphrases.txt'),
        '--expect',
        join(dir, 'tampered.txt'),
      ],
      { cwd: dir, env, timeoutMs: 300_000 },
    );
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /line 3: expected \S+, regenerated \S+/);
    assert.match(r.stdout, /3 match, 1 differ/);
  });

  it('refuses a deployment whose signers have no HSM: nothing of theirs can be regenerated', async () => {
    const plain = join(dir, 'plain');
    const init = await runFloe(['init', '--signers', '2', '--threshold', '2', '--out', plain, '--json'], {
      cwd: dir,
      env,
    });
    assert.equal(init.code, 0, init.stderr);
    const r = await runFloe(
      ['drill', 'regenerate', '--deployment', plain, '--passphrases', join(dir, 'passphrases.txt')],
      { cwd: dir, env, timeoutMs: 120_000 },
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /signer-1 has no HSM/);
  });

  it('after the drill, the regenerated cluster signs a PSBT spending from a regenerated address', async () => {
    const drill = spawnFloe(
      [
        'drill',
        'regenerate',
        '--deployment',
        bundle,
        '--passphrases',
        join(dir, 'passphrases.txt'),
        '--expect',
        join(dir, 'expected.txt'),
        '--keep-running',
        '--json',
      ],
      env,
    );
    procs.push(drill);
    const ready = await drill.waitFor('drill_ready', 300_000);
    const url = String(ready.api_url);
    const token = readFileSync(String(ready.admin_token_file), 'utf8').trim();
    // The regenerated key of the first passphrase, found by asking again (no new DKG).
    const a = await request(url, 'POST', '/v1/addresses', { token, json: { passphrase: passphrases[0] } });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.address, recorded[0]!.address);

    const NET = bitcoin.networks.regtest;
    const script = bitcoin.address.toOutputScript(a.body.address, NET);
    const psbt = new bitcoin.Psbt({ network: NET });
    psbt.addInput({
      hash: randomBytes(32),
      index: 0,
      witnessUtxo: { script, value: 100_000n },
      tapInternalKey: Buffer.from(a.body.internal_key, 'hex').subarray(1),
    });
    const external = bitcoin.payments.p2wpkh({ hash: randomBytes(20), network: NET });
    psbt.addOutput({ address: external.address!, value: 90_000n });
    const s = await request(url, 'POST', '/v1/sessions', {
      token,
      json: { key_id: a.body.key_id, bitcoin_psbt: psbt.toBase64(), wait: 60_000 },
    });
    assert.ok(s.status === 201 || s.status === 200, s.text);
    assert.equal(s.body.status, 'completed', s.text);
    const signed = bitcoin.Psbt.fromBase64(s.body.psbt, { network: NET });
    assert.ok(
      signed.validateSignaturesOfInput(0, (pubkey, msghash, signature) =>
        ecc.verifySchnorr(msghash, pubkey, signature),
      ),
    );
    signed.finalizeAllInputs();
    assert.equal(signed.extractTransaction().ins[0]!.witness[0]!.length, 64);
    await drill.kill('SIGTERM');
  });
});
