/**
 * Real signer processes (issue "Trust anchors and provable blame", 6a and 6h): a request
 * captured before a crash is not accepted again by the restarted process; the passphrase
 * from the environment is warned about (by name, never by value), a passphrase file is not.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/index.js';
import { ENVELOPE_HEADER } from '../../src/protocol/envelope.js';
import { acceptResponse, type PreparedRequest, prepareRequest } from '../../src/protocol/exchange.js';
import { type MessageSpec, SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { type SignerProcess, type Spawned, spawnFloe, startSignerProcess } from '../helpers/processes.js';
import { until } from '../helpers/until.js';

const coordinator = softwareIdentity(generateIdentityKey());
const PASS = 'restart test passphrase, not to be logged';
const spec = SIGNER_MESSAGES.signAbort as MessageSpec;

async function deliver(url: string, req: PreparedRequest) {
  const res = await fetch(`${url}${req.path}`, { method: 'POST', headers: req.headers, body: req.body });
  const text = await res.text();
  return {
    status: res.status,
    code: res.status === 200 ? undefined : (JSON.parse(text) as { code: string }).code,
    envelope: res.headers.get(ENVELOPE_HEADER) ?? undefined,
    text,
  };
}

describe('signer processes: restart and passphrase source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-restart-'));
  const procs: Spawned[] = [];
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a request captured before kill -9 is refused by the restarted process (same data dir and port); a fresh one is accepted', async () => {
    const dataDir = join(dir, 'replay');
    const first: SignerProcess = await startSignerProcess({
      dataDir,
      coordinators: [coordinator.publicKeyHex],
      passphrase: PASS,
    });
    procs.push(first);
    const port = new URL(first.url).port;
    const captured = prepareRequest(spec, { session_id: 'captured' } as never, {
      identity: coordinator,
      to: first.identity,
      now: Date.now(),
    });
    const ok = await deliver(first.url, captured);
    assert.equal(ok.status, 200);
    acceptResponse(
      spec,
      { status: ok.status, envelope: ok.envelope, text: ok.text },
      {
        self: coordinator.publicKeyHex,
        peer: first.identity,
        re: captured.nonce,
        now: Date.now(),
      },
    );
    // The same process remembers it.
    const again = await deliver(first.url, captured);
    assert.deepEqual([again.status, again.code, again.envelope], [409, 'envelope_replay', undefined]);

    await first.kill('SIGKILL');
    const second = await startSignerProcess({
      dataDir,
      coordinators: [coordinator.publicKeyHex],
      passphrase: PASS,
      listen: `127.0.0.1:${port}`,
    });
    procs.push(second);
    assert.equal(second.url, first.url);
    assert.equal(second.identity, first.identity);
    // Still well inside the ±60 s window, but stamped before this process started.
    assert.ok(Date.now() - JSON.parse(captured.headers[ENVELOPE_HEADER]!).ts < 50_000);
    const replayed = await deliver(second.url, captured);
    assert.equal(replayed.status, 401);
    assert.equal(replayed.code, 'envelope_stale');
    assert.equal(replayed.envelope, undefined, 'refused unsigned: the request is not authenticated');

    const fresh = prepareRequest(spec, { session_id: 'fresh' } as never, {
      identity: coordinator,
      to: second.identity,
      now: Date.now(),
    });
    const accepted = await deliver(second.url, fresh);
    assert.equal(accepted.status, 200);
    assert.deepEqual(
      acceptResponse(
        spec,
        { status: accepted.status, envelope: accepted.envelope, text: accepted.text },
        {
          self: coordinator.publicKeyHex,
          peer: second.identity,
          re: fresh.nonce,
          now: Date.now(),
        },
      ),
      { session_id: 'fresh', aborted: 0 },
    );
  });

  /** The start-up log is complete once the crypto backend line (logged last) is out. */
  const startupLogged = (p: Spawned) =>
    until(`start-up log; stdout: ${p.stdout.join('\n')}`, () =>
      p.stdout.some((l) => l.includes('crypto backend')),
    );

  const warning = (p: Spawned) =>
    p.stdout
      .map((l) => {
        try {
          return JSON.parse(l) as { level?: number; msg?: string; variable?: string };
        } catch {
          return {};
        }
      })
      .filter((j) => j.level === 40 && /FLOE_SIGNER_PASSPHRASE\b/.test(j.msg ?? ''));

  it('warns once, naming FLOE_SIGNER_PASSPHRASE and not its value, when the passphrase comes from the environment', async () => {
    const p = spawnFloe(['signer'], {
      FLOE_SIGNER_DATA_DIR: join(dir, 'env'),
      FLOE_SIGNER_LISTEN: '127.0.0.1:0',
      FLOE_SIGNER_COORDINATORS: coordinator.publicKeyHex,
      FLOE_SIGNER_PASSPHRASE: PASS,
      FLOE_LOG_LEVEL: 'info',
    });
    procs.push(p);
    await p.waitFor('signer_started');
    await startupLogged(p);
    const w = warning(p);
    assert.equal(w.length, 1, `one warning; stdout: ${p.stdout.join('\n')}`);
    assert.equal(w[0]!.variable, 'FLOE_SIGNER_PASSPHRASE');
    const all = p.stdout.join('\n') + p.stderr.join('');
    assert.ok(!all.includes(PASS), 'the passphrase is never logged');
  });

  it('does not warn when the passphrase comes from a file', async () => {
    const file = join(dir, 'pass');
    writeFileSync(file, `${PASS}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    const p = spawnFloe(['signer'], {
      FLOE_SIGNER_DATA_DIR: join(dir, 'file'),
      FLOE_SIGNER_LISTEN: '127.0.0.1:0',
      FLOE_SIGNER_COORDINATORS: coordinator.publicKeyHex,
      FLOE_SIGNER_PASSPHRASE_FILE: file,
      FLOE_LOG_LEVEL: 'info',
    });
    procs.push(p);
    await p.waitFor('signer_started');
    await startupLogged(p);
    assert.deepEqual(warning(p), []);
    assert.ok(!p.stdout.join('\n').includes('FLOE_SIGNER_PASSPHRASE'));
    assert.ok(!(p.stdout.join('\n') + p.stderr.join('')).includes(PASS));
  });
});
