/**
 * The floe client commands end to end, against a `floe up` cluster of real processes: the
 * CLI runs in the cluster's working directory, so its token defaults to ./.floe/admin.token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32 } from '@scure/base';
import { verifyEvent } from 'nostr-tools/pure';
import { loadCoordinatorConfig } from '../../src/config/coordinator.js';
import { loadSignerConfig } from '../../src/config/signer.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { freePortRange, runFloe, startUp, type UpProcess } from '../helpers/e2e-floe.js';
import { libsecpVerify } from '../helpers/independent.js';

describe('floe CLI (client commands against a local cluster)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-e2e-cli-'));
  let up: UpProcess;
  let env: Record<string, string>;
  let demoKey = '';
  after(async () => {
    await up?.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  const floe = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) =>
    runFloe(args, {
      cwd: dir,
      env: { ...env, ...o.env },
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
  const json = async (args: string[], o: { input?: string } = {}) => {
    const r = await floe([...args, '--json'], o);
    assert.equal(r.code, 0, `floe ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const oneErrorLine = (stderr: string) => {
    const lines = stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
    assert.match(lines[0]!, /^floe: /);
    return lines[0]!;
  };

  before(async () => {
    const started = await startUp([], { cwd: dir, signers: 3 });
    up = started.up;
    env = { FLOE_URL: `http://127.0.0.1:${started.port}` };
  });

  it('key list, status and session list: --json prints one parseable document; text prints tables', async () => {
    const keys = await json(['key', 'list']);
    assert.equal(keys.items.length, 1);
    demoKey = keys.items[0].id;
    assert.equal(keys.items[0].label, 'demo');

    const status = await json(['status']);
    assert.equal(status.coordinator.ok, true);
    assert.equal(status.signers.length, 3);
    assert.ok(status.signers.every((s: any) => s.reachable && s.pid > 0));
    assert.equal(status.local_cluster.running, true);
    assert.equal(status.local_cluster.demo_key_id, demoKey);

    const text = await floe(['key', 'list']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ID +LABEL +T-OF-N +STATUS/);
    assert.match(text.stdout, new RegExp(`${demoKey} +demo +2-of-3 +active +dkg +npub1`));

    assert.deepEqual((await json(['session', 'list'])).items, []);
  });

  it('sign (waits) gives a signature that verifies; session show and list find it', async () => {
    const message = toHex(sha256(new TextEncoder().encode('cli e2e')));
    const s = await json(['sign', '--key', demoKey, '--message', message]);
    assert.equal(s.status, 'completed');
    const k = await json(['key', 'show', demoKey]);
    assert.ok(
      libsecpVerify(
        fromHex(s.signature, 's', 64),
        fromHex(message, 'm', 32),
        fromHex(k.x_only_public_key, 'x', 32),
      ),
    );
    assert.equal((await json(['session', 'show', s.id])).signature, s.signature);
    assert.equal((await json(['session', 'list', '--status', 'completed'])).items[0].id, s.id);
    const text = await floe(['session', 'show', s.id]);
    assert.match(text.stdout, new RegExp(`signature +${s.signature}`));
  });

  it('sign --nostr-kind --content prints a signed Nostr event that nostr-tools verifies', async () => {
    const e = await json([
      'sign',
      '--key',
      demoKey,
      '--nostr-kind',
      '1',
      '--content',
      'hello from the floe CLI',
      '--tag',
      't=floe',
    ]);
    const k = await json(['key', 'show', demoKey]);
    assert.equal(e.pubkey, k.x_only_public_key);
    assert.equal(e.kind, 1);
    assert.equal(e.content, 'hello from the floe CLI');
    assert.deepEqual(e.tags, [['t', 'floe']]);
    assert.equal(verifyEvent(e), true);
    // Both a message and an event at once is a usage error, one line.
    const both = await floe(['sign', '--key', demoKey, '--message', '00'.repeat(32), '--nostr-kind', '1']);
    assert.notEqual(both.code, 0);
    assert.match(
      oneErrorLine(both.stderr),
      /one of --message, --text, --file or a Nostr event .*not --message and a Nostr event/,
    );
  });

  it('key import --secret-hex: the key is secret·G, and floe sign verifies against it', async () => {
    const secret = sha256(new TextEncoder().encode('floe e2e imported secret'));
    const k = await json([
      'key',
      'import',
      '--secret-hex',
      toHex(secret),
      '--threshold',
      '2',
      '--label',
      'imported',
    ]);
    assert.equal(k.status, 'active');
    assert.equal(k.origin, 'dealer');
    assert.equal(k.x_only_public_key, toHex(schnorr.getPublicKey(secret)));
    const message = '5a'.repeat(32);
    const s = await json(['sign', '--key', k.id, '--message', message]);
    assert.ok(
      schnorr.verify(fromHex(s.signature, 's', 64), fromHex(message, 'm', 32), schnorr.getPublicKey(secret)),
    );
    assert.ok(
      libsecpVerify(fromHex(s.signature, 's', 64), fromHex(message, 'm', 32), schnorr.getPublicKey(secret)),
    );
  });

  it('key import --nsec (also from stdin) gives the matching npub', async () => {
    const secret = sha256(new TextEncoder().encode('floe e2e nostr key'));
    const nsec = bech32.encode('nsec', bech32.toWords(secret));
    const npub = bech32.encode('npub', bech32.toWords(schnorr.getPublicKey(secret)));
    const k = await json(['key', 'import', '--nsec', nsec, '--threshold', '2']);
    assert.equal(k.npub, npub);
    const secret2 = sha256(new TextEncoder().encode('floe e2e nostr key 2'));
    const k2 = await json(['key', 'import', '--nsec', '-', '--threshold', '3'], {
      input: `${bech32.encode('nsec', bech32.toWords(secret2))}\n`,
    });
    assert.equal(k2.npub, bech32.encode('npub', bech32.toWords(schnorr.getPublicKey(secret2))));
    assert.equal(k2.threshold, 3);
    // The secret never shows in the output.
    const text = await floe(['key', 'show', k.id]);
    assert.ok(!text.stdout.includes(nsec) && !text.stdout.includes(toHex(secret)));
  });

  it('errors: one line on stderr and exit code 1 (bad token, bad input, forbidden role, unreachable)', async () => {
    const bad = await floe(['key', 'list', '--token', 'floe_0000000000000000_bad']);
    assert.equal(bad.code, 1);
    assert.match(oneErrorLine(bad.stderr), /unauthorized/);
    assert.equal(bad.stdout, '');

    // With --json the error is one JSON document on stderr (issue 15), nothing on stdout.
    const badJson = await floe(['key', 'list', '--json'], { env: { FLOE_TOKEN: 'nope' } });
    assert.equal(badJson.code, 1);
    assert.equal(badJson.stdout, '');
    assert.equal(badJson.stderr.trim().split('\n').length, 1);
    assert.equal(JSON.parse(badJson.stderr).error.code, 'unauthorized');

    const msg = await floe(['sign', '--key', demoKey, '--message', 'abcd']);
    assert.equal(msg.code, 1);
    assert.match(oneErrorLine(msg.stderr), /32 bytes/);

    const badSecret = await floe(['key', 'import', '--secret-hex', 'zz', '--threshold', '2']);
    assert.equal(badSecret.code, 1);
    assert.doesNotMatch(oneErrorLine(badSecret.stderr), /zz/);

    const missing = await floe(['key', 'show', 'key_doesnotexist']);
    assert.equal(missing.code, 1);
    assert.match(oneErrorLine(missing.stderr), /key_not_found/);

    const down = await floe(['key', 'list', '--url', `http://127.0.0.1:${await freePortRange(1)}`]);
    assert.equal(down.code, 1);
    assert.match(oneErrorLine(down.stderr), /cannot reach the coordinator/);
  });

  it('token create shows the new token once; a viewer token reads but cannot sign', async () => {
    const t = await json(['token', 'create', '--role', 'viewer', '--label', 'e2e']);
    assert.match(t.token, /^floe_/);
    assert.equal(t.role, 'viewer');
    const viewer = { FLOE_TOKEN: t.token };
    const list = await floe(['key', 'list', '--json'], { env: viewer });
    assert.equal(list.code, 0);
    const sign = await floe(['sign', '--key', demoKey, '--message', '00'.repeat(32)], { env: viewer });
    assert.equal(sign.code, 1);
    assert.match(oneErrorLine(sign.stderr), /forbidden/);
  });

  it('init writes 0600 configs, passphrases and identities a signer and coordinator accept', async () => {
    const out = join(dir, 'deploy');
    const r = await json([
      'init',
      '--signers',
      '3',
      '--threshold',
      '2',
      '--out',
      out,
      '--coordinator-url',
      'https://coord.example:8443',
      '--signer-hosts',
      's1.example,s2.example,s3.example:9000',
    ]);
    assert.equal(r.signers.length, 3);
    for (const f of ['coordinator.json', 'signer-1.json', 'signer-1.passphrase', 'deployment.json']) {
      assert.equal(statSync(join(out, f)).mode & 0o777, 0o600, f);
    }
    const c = loadCoordinatorConfig(join(out, 'coordinator.json'), {});
    assert.equal(c.listen, '0.0.0.0:8443');
    assert.equal(c.tls?.cert, join(out, 'tls', 'coordinator.crt'));
    const s3 = loadSignerConfig(join(out, 'signer-3.json'), {});
    assert.deepEqual(s3.coordinators, [r.coordinator.identity]);
    assert.equal(s3.listen, '0.0.0.0:9000');
    assert.equal(r.signers[2].url, 'https://s3.example:9000');
    // The identity recorded is the one in the signer's encrypted store.
    const id = await runFloe(['signer', '--config', join(out, 'signer-1.json'), '--print-identity'], {
      cwd: dir,
      env: { FLOE_SIGNER_PASSPHRASE_FILE: join(out, 'signer-1.passphrase') },
    });
    assert.equal(id.code, 0, id.stderr);
    assert.equal(id.stdout.trim(), r.signers[0].identity);
    const coordId = await runFloe(
      ['coordinator', '--config', join(out, 'coordinator.json'), '--print-identity'],
      {
        cwd: dir,
      },
    );
    assert.equal(coordId.stdout.trim(), r.coordinator.identity);
    assert.ok(
      !readFileSync(join(out, 'deployment.json'), 'utf8').includes(
        readFileSync(join(out, 'signer-1.passphrase'), 'utf8').trim(),
      ),
    );
    // Never overwrites.
    const again = await floe(['init', '--signers', '2', '--threshold', '2', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(oneErrorLine(again.stderr), /not empty/);
  });
});
