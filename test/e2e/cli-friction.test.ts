/**
 * The CLI as a newcomer meets it (issue 15, friction 1, 3, 4 and 7), with real processes: a
 * `floe up` on non-default ports, and client commands run from its directory WITHOUT --url
 * or FLOE_URL; bad option values; `floe down`; a `floe up` whose parent is killed; token
 * list / revoke, sign --text / --file, --quiet, session list --status, ISO times.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readClusterState } from '../../src/cluster/state.js';
import { fromHex } from '../../src/crypto/hex.js';
import { freePortRange, runFloe, startUp, type UpProcess, until } from '../helpers/e2e-floe.js';
import { libsecpVerify } from '../helpers/independent.js';
import { programArgv } from '../helpers/program.js';

/** Whether a process runs: exists and is not a zombie (an orphan's new parent may not reap it). */
function running(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** The pids of `floe up` and of every child it recorded. */
function clusterPids(stateFile: string): number[] {
  const s = readClusterState(stateFile)!;
  return [
    s.supervisor_pid,
    s.coordinator.pid,
    s.address_service?.pid,
    s.relay?.pid,
    ...s.signers.map((x) => x.pid),
  ].filter((p): p is number => typeof p === 'number' && p > 0);
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
/** A stack trace line, as Node prints an uncaught error. */
const STACK = /\n\s+at .+[:(]/;

describe('CLI friction: the cluster it belongs to, usage errors, floe down, everyday commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-e2e-friction-'));
  const stateFile = join(dir, '.floe', 'cluster.json');
  let up: UpProcess;
  let port = 0;
  let keyId = '';
  let xOnly = '';
  /** Every pid this test saw run, killed at the end should any survive a failed test. */
  const seen = new Set<number>();
  const wrappers: ChildProcess[] = [];
  after(async () => {
    await up?.stop('SIGKILL');
    for (const w of wrappers) w.kill('SIGKILL');
    for (const p of seen) if (running(p)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  // No FLOE_URL, no --url: the CLI must find the cluster on its own.
  const floe = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) =>
    runFloe(args, {
      cwd: dir,
      ...(o.env ? { env: o.env } : {}),
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
  const json = async (args: string[]) => {
    const r = await floe([...args, '--json']);
    assert.equal(r.code, 0, `floe ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    // Two signers keep it light; a port other than 8080 is the point.
    const started = await startUp(['--signers', '2'], { cwd: dir, signers: 2 });
    up = started.up;
    port = started.port;
    assert.notEqual(port, 8080);
    for (const p of clusterPids(stateFile)) seen.add(p);
    const s = readClusterState(stateFile)!;
    keyId = s.demo_key!.id;
    xOnly = s.demo_key!.x_only_public_key!;
  });

  it('1. key create and status use the coordinator of ./.floe/cluster.json (floe up --port N)', async () => {
    const k = await json(['key', 'create', '--threshold', '2', '--label', 'friction']);
    assert.equal(k.status, 'active');
    const status = await json(['status']);
    assert.equal(status.coordinator.ok, true, JSON.stringify(status.coordinator));
    assert.equal(status.coordinator.url, `http://127.0.0.1:${port}`);
    assert.equal(status.local_cluster.running, true);

    // An unreachable coordinator: the error names the URL, where it came from, and the way out.
    const closed = await freePortRange(1);
    const viaOption = await floe(['key', 'list', '--url', `http://127.0.0.1:${closed}`]);
    assert.equal(viaOption.code, 1);
    assert.match(
      viaOption.stderr,
      new RegExp(
        `^floe: cannot reach the coordinator at http://127\\.0\\.0\\.1:${closed} \\(from --url\\).*--url or FLOE_URL\\n$`,
      ),
    );
    const viaEnv = await floe(['key', 'list', '--json'], { env: { FLOE_URL: `http://127.0.0.1:${closed}` } });
    assert.equal(viaEnv.code, 1);
    const e = JSON.parse(viaEnv.stderr).error;
    assert.equal(e.code, 'unreachable');
    assert.match(e.message, /\(from FLOE_URL\)/);
    assert.match(e.hint, /--url or FLOE_URL/);
  });

  it('3. a bad number in any numeric option is a usage error (exit 1, no stack trace); JSON on stderr with --json', async () => {
    const cases: [string[], RegExp][] = [
      [['key', 'create', '--threshold', 'two'], /option '-t, --threshold <t>' argument 'two' is invalid/],
      [
        ['sign', '--key', keyId, '--text', 'x', '--timeout', 'abc'],
        /option '--timeout <s>' argument 'abc' is invalid/,
      ],
      [['key', 'list', '--limit', 'abc'], /option '--limit <n>' argument 'abc' is invalid/],
      [['session', 'list', '--limit', '1.5'], /option '--limit <n>' argument '1\.5' is invalid/],
      [
        ['token', 'create', '--role', 'viewer', '--ttl', '1e3'],
        /option '--ttl <s>' argument '1e3' is invalid/,
      ],
      [['up', '--port', '70000'], /option '--port <port>' argument '70000' is invalid/],
      [['down', '--timeout', 'soon'], /option '--timeout <s>' argument 'soon' is invalid/],
    ];
    for (const [args, re] of cases) {
      const r = await floe(args);
      assert.equal(r.code, 1, `floe ${args.join(' ')}`);
      assert.match(r.stderr, /^error: /, `commander's usage error for ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, STACK);
      assert.equal(r.stdout, '');

      const j = await floe([...args, '--json']);
      assert.equal(j.code, 1);
      const err = JSON.parse(j.stderr).error;
      assert.equal(err.code, 'usage');
      assert.match(err.message, re);
      assert.equal(typeof err.hint, 'string');
    }
    // A refusal of the API is JSON on stderr too, with its stable code.
    const r = await floe(['key', 'show', 'key_nope', '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(JSON.parse(r.stderr).error.code, /^[a-z_]+$/);
  });

  it('7. token list and token revoke; --quiet prints only the token; a revoked token stops working', async () => {
    const created = await floe(['token', 'create', '--role', 'viewer', '--label', 'friction', '--quiet']);
    assert.equal(created.code, 0, created.stderr);
    const lines = created.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `only the token: ${created.stdout}`);
    const secret = lines[0]!;
    assert.equal((await floe(['key', 'list', '--token', secret])).code, 0);

    const listed = await json(['token', 'list']);
    const mine = listed.items.find((t: any) => t.label === 'friction');
    assert.ok(mine, JSON.stringify(listed));
    assert.equal(mine.role, 'viewer');
    assert.equal(mine.revoked_at, null);
    assert.match(mine.created_at, ISO);
    assert.ok(!JSON.stringify(listed).includes(secret), 'never the secret');
    const text = await floe(['token', 'list']);
    assert.match(text.stdout, /^ID +ROLE +LABEL +CREATED +EXPIRES +REVOKED/);
    assert.match(text.stdout, new RegExp(`${mine.id} +viewer +friction +${mine.created_at} +- +-`));
    assert.ok((await floe(['token', 'list', '--quiet'])).stdout.split('\n').includes(mine.id));

    const revoked = await floe(['token', 'revoke', mine.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked token ${mine.id}`));
    const refused = await floe(['key', 'list', '--token', secret]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /unauthorized|HTTP 401/);
    const after = (await json(['token', 'list'])).items.find((t: any) => t.id === mine.id);
    assert.match(after.revoked_at, ISO);
  });

  it('7. sign --text / --file sign the SHA-256 of the bytes and say so; --quiet prints only the signature', async () => {
    const text = 'pay 1 BTC to Alice';
    const digest = createHash('sha256').update(text).digest('hex');
    const quiet = await floe(['sign', '--key', keyId, '--text', text, '--quiet']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /^[0-9a-f]{128}\n$/);
    assert.equal(quiet.stderr, '');
    assert.ok(
      libsecpVerify(fromHex(quiet.stdout.trim(), 's', 64), fromHex(digest, 'm', 32), fromHex(xOnly, 'x', 32)),
    );

    const said = await floe(['sign', '--key', keyId, '--text', text]);
    assert.equal(said.code, 0, said.stderr);
    assert.match(said.stderr, new RegExp(`SHA-256 of the --text \\(18 bytes\\): ${digest}`));
    assert.match(said.stdout, new RegExp(`message +${digest}`));
    assert.match(said.stdout, /hashed +message = SHA-256/);

    const file = join(dir, 'doc.bin');
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    writeFileSync(file, bytes);
    const s = await json(['sign', '--key', keyId, '--file', file]);
    assert.equal(s.message, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(s.hashed, { algorithm: 'sha256', input: file, bytes: 6 });
    const fromStdin = await floe(['sign', '--key', keyId, '--file', '-', '--quiet'], { input: text });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.ok(
      libsecpVerify(
        fromHex(fromStdin.stdout.trim(), 's', 64),
        fromHex(digest, 'm', 32),
        fromHex(xOnly, 'x', 32),
      ),
    );
  });

  it('7. session list --status refuses an unknown status and lists the valid ones', async () => {
    const r = await floe(['session', 'list', '--status', 'done']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /argument 'done' is invalid\. Allowed choices are awaiting_approval, pending, .*completed, failed, expired/,
    );
    assert.doesNotMatch(r.stderr, STACK);
    const ok = await json(['session', 'list', '--status', 'completed']);
    assert.ok(ok.items.length >= 1);
  });

  it('7. times are ISO 8601 UTC, the same in JSON and text', async () => {
    const k = await json(['key', 'show', keyId]);
    assert.match(k.created_at, ISO);
    const text = await floe(['key', 'show', keyId]);
    assert.match(text.stdout, new RegExp(`created_at +${k.created_at}\\n`));
    const s = (await json(['session', 'list', '--limit', '1'])).items[0];
    for (const f of ['created_at', 'updated_at', 'expires_at', 'completed_at']) assert.match(s[f], ISO, f);
    const shown = await floe(['session', 'show', s.id]);
    assert.match(shown.stdout, new RegExp(`completed_at +${s.completed_at}\\n`));
  });

  it('7. no process of the cluster prints a deprecation warning at start', () => {
    const logs = join(dir, '.floe', 'logs');
    const files = readdirSync(logs);
    assert.ok(
      files.some((f) => f.startsWith('signer')),
      `signer logs exist: ${files.join(', ')}`,
    );
    for (const f of files) {
      const text = readFileSync(join(logs, f), 'utf8');
      assert.doesNotMatch(text, /Deprecation|FSTDEP/, `${f}: ${text.slice(0, 500)}`);
    }
  });

  it('8. the kill switch: floe key freeze signs with .floe/operator.key, every signer applies it; unfreeze restores', async () => {
    const keyFile = join(dir, '.floe', 'operator.key');
    assert.equal(statSync(keyFile).mode & 0o077, 0, 'operator.key is 0600');
    const frozen = await json(['key', 'freeze', keyId]);
    assert.equal(frozen.key.status, 'frozen');
    assert.equal(frozen.signers.length, 2);
    assert.ok(
      frozen.signers.every((s: { applied: boolean }) => s.applied),
      `every signer pins the operator key and applied it: ${JSON.stringify(frozen.signers)}`,
    );
    const refused = await floe(['sign', '--key', keyId, '--text', 'while frozen', '--json']);
    assert.equal(refused.code, 1);
    assert.equal(JSON.parse(refused.stderr).error.code, 'key_frozen');
    const thawed = await json(['key', 'unfreeze', keyId]);
    assert.equal(thawed.key.status, 'active');
    assert.ok(thawed.signers.every((s: { applied: boolean }) => s.applied));
    const signed = await json(['sign', '--key', keyId, '--text', 'after the thaw']);
    assert.equal(signed.status, 'completed');
  });

  it('4. a second floe up names floe down; floe down stops the cluster and every child', async () => {
    const second = await floe(['up', '--signers', '2']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /already running .*; stop it first with floe down\n$/);

    const pids = clusterPids(stateFile);
    assert.equal(pids.length, 6, 'floe up, coordinator, address service, relay, 2 signers');
    assert.ok(pids.every(running));
    const r = await json(['down']);
    assert.equal(r.stopped, true);
    assert.equal(r.was_running, true);
    assert.equal(r.supervisor_pid, up.proc.pid);
    assert.equal(await up.exited, 0, 'floe up exits 0, as on Ctrl-C');
    for (const p of pids) assert.equal(running(p), false, `pid ${p} still runs`);
    assert.equal(readClusterState(stateFile)!.supervisor_pid, null);

    const again = await floe(['down']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no local cluster is running from \.floe/);
    // The client now says where the URL came from.
    const down = await floe(['key', 'list']);
    assert.match(
      down.stderr,
      /cannot reach the coordinator at http:\/\/127\.0\.0\.1:\d+ \(from \.floe\/cluster\.json\)/,
    );
  });

  it('4. floe up whose parent is killed (kill of the npm running it) stops, and no child outlives it', async () => {
    // A parent between us and floe up, as npm (and its shell) are for `npm start`.
    const floeArgs = [...programArgv('cli/main.ts'), 'up'];
    const wrapper = spawn(
      process.execPath,
      [
        '-e',
        "require('node:child_process').spawn(process.execPath, JSON.parse(process.env.FLOE_ARGS), { stdio: 'inherit' }); setInterval(() => {}, 1000);",
      ],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          FLOE_ARGS: JSON.stringify(floeArgs),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    wrappers.push(wrapper);
    let out = '';
    wrapper.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    wrapper.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await until(
      () => `floe up ready under the wrapper; output:\n${out}`,
      () => {
        if (/^floe( up)?: /m.test(out) || wrapper.exitCode !== null)
          throw new Error(`floe up failed:\n${out}`);
        return /Press Ctrl-C/.test(out);
      },
      90_000,
    );
    const pids = clusterPids(stateFile);
    for (const p of pids) seen.add(p);
    assert.equal(pids.length, 6);
    assert.ok(pids.every(running));

    wrapper.kill('SIGKILL');
    await until(
      () =>
        `every process of the cluster gone; still running: ${pids.filter(running).join(', ')}; output:\n${out}`,
      () => pids.every((p) => !running(p)),
      30_000,
    );
    assert.match(out, /the parent process \(pid \d+\) is gone/);
    assert.equal(readClusterState(stateFile)!.supervisor_pid, null);
  });
});
