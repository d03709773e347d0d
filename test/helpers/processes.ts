/** Real child processes of the `floe` CLI for end-to-end tests (loopback only). */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inheritedNodeFlags } from '../../src/cluster/node-flags.js';
import { openSignerStore } from '../../src/signer/node.js';
import { FAULTS_ENV } from './byzantine-signer.js';
import { programArgv } from './program.js';
import { scriptBundle } from './test-bundles.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');

export interface Spawned {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** First JSON line on stdout whose `event` matches. */
  waitFor(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The byzantine signer entry (test only): `floe signer` with faults (./byzantine-signer.ts). */
export const BYZANTINE_SIGNER = join(ROOT, 'test', 'helpers', 'byzantine-signer-main.ts');

/** The `floe` CLI as a child process (built or through tsx: ./program.ts). */
export function spawnFloe(args: string[], env: Record<string, string>): Spawned {
  return spawnNode([...programArgv('cli/main.ts'), ...args], env);
}

/** Loads `src/` modules from a fresh build (./prefer-build.mjs), as a test run through tsx does. */
const PREFER_BUILD = join(ROOT, 'test', 'helpers', 'prefer-build.mjs');

/**
 * A TypeScript entry point of this repository as a child process: its bundle when this process
 * runs from one of `npm test` (./test-bundles.mjs, SCRIPTS), otherwise through tsx.
 */
export function spawnScript(script: string, args: string[], env: Record<string, string>): Spawned {
  const bundle = scriptBundle(script);
  if (bundle) return spawnNode([...inheritedNodeFlags(), bundle, ...args], env);
  return spawnNode(
    [...inheritedNodeFlags(), '--import', 'tsx', '--import', PREFER_BUILD, script, ...args],
    env,
  );
}

/** `node ARGV` with a clean environment (PATH, HOME and `env`), as a Spawned handle. */
export function spawnNode(argv: string[], env: Record<string, string>): Spawned {
  const proc = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { event: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      stdout.push(line);
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        for (const w of waiters.filter((w) => w.event === j.event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(j);
        }
      } catch {
        // not a JSON line
      }
      i = buf.indexOf('\n');
    }
  });
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    stdout,
    stderr,
    exited,
    waitFor(event, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`timed out waiting for ${event}; stderr: ${stderr.join('')}`)),
          timeoutMs,
        );
        exited.then((code) => {
          clearTimeout(t);
          reject(new Error(`process exited (${code}) before ${event}; stderr: ${stderr.join('')}`));
        });
        waiters.push({
          event,
          resolve: (v) => {
            clearTimeout(t);
            resolve(v);
          },
        });
      });
    },
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * scrypt's N for the signer stores of test clusters: 2^12 (~20 ms) instead of the production
 * 2^17 (~0.7 s and 128 MiB, paid at every signer start and restart). The stores record it; the
 * key source's own tests and the `floe init`/`floe up` end-to-end tests keep the default.
 */
export const TEST_SCRYPT_N = 1 << 12;

export interface SignerProcess extends Spawned {
  url: string;
  identity: string;
}

/**
 * Create (or open) signer stores in this process and return their identity keys, in order: what
 * an operator learns before writing each signer's roster (`peers`), as `floe init` does. A new
 * store takes scrypt's N from `scryptN` (default 2^17, the production default); every later
 * start of that signer derives its data key with the N recorded in the store.
 */
export async function signerIdentities(
  dataDirs: readonly string[],
  passphrase: string,
  opts: { scryptN?: number } = {},
): Promise<string[]> {
  return Promise.all(
    dataDirs.map(async (dir) => {
      const { store, identity } = await openSignerStore(
        { data_dir: dir },
        { FLOE_SIGNER_PASSPHRASE: passphrase },
        opts.scryptN ? { scryptN: opts.scryptN } : {},
      );
      store.close();
      const pub = identity.publicKeyHex;
      identity.dispose();
      return pub;
    }),
  );
}

export async function startSignerProcess(o: {
  dataDir: string;
  coordinators: string[];
  passphrase: string;
  /** The roster (identity keys of the signers it may share keys with). */
  peers?: readonly string[];
  listen?: string;
  faults?: string;
  /** More environment (e.g. FLOE_SIGNER_BITCOIN_POLICY_FILE: a policy only this signer holds). */
  env?: Record<string, string>;
}): Promise<SignerProcess> {
  const env = {
    FLOE_SIGNER_DATA_DIR: o.dataDir,
    FLOE_SIGNER_LISTEN: o.listen ?? '127.0.0.1:0',
    FLOE_SIGNER_COORDINATORS: o.coordinators.join(','),
    ...(o.peers?.length ? { FLOE_SIGNER_PEERS: o.peers.join(',') } : {}),
    FLOE_SIGNER_PASSPHRASE: o.passphrase,
    FLOE_LOG_LEVEL: 'warn',
    ...o.env,
  };
  const s = o.faults
    ? spawnScript(BYZANTINE_SIGNER, [], { ...env, [FAULTS_ENV]: o.faults })
    : spawnFloe(['signer'], env);
  const started = await s.waitFor('signer_started');
  return Object.assign(s, { url: String(started.url), identity: String(started.identity) });
}
