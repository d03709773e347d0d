/** Helpers for the Nostr tests: a relay child process, deadlines, keys from nostr-tools. */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { programArgv } from '../helpers/program.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface RelayProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `src/nostr/relay-main.ts` (built or through tsx) as a child process and wait for its `relay_started` line. */
export function spawnRelay(
  args: string[] = [],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<RelayProcess> {
  const proc = spawn(
    process.execPath,
    [...programArgv('nostr/relay-main.ts'), '--host', '127.0.0.1', ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`relay did not start within ${timeoutMs} ms; stderr: ${stderr.join('')}`));
    }, timeoutMs);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}) before starting; stderr: ${stderr.join('')}`));
    });
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = JSON.parse(buf.slice(0, nl)) as { event: string; url: string };
      if (line.event !== 'relay_started') return;
      clearTimeout(timer);
      resolve({ url: line.url, port: Number(new URL(line.url).port), proc, stderr, exited, kill });
    });
  });
}

/** A promise with a deadline: rejects naming `what` if `p` has not settled in time. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A promise plus its resolver, to turn callbacks into awaitable events. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves the n-th time `emit` is called (n = 1 by default) with the value emitted then. */
export function nth<T>(n = 1): { promise: Promise<T>; emit: (v: T) => void } {
  const d = deferred<T>();
  let count = 0;
  return {
    promise: d.promise,
    emit: (v) => {
      if (++count === n) d.resolve(v);
    },
  };
}

export function keypair(): { sk: Uint8Array; pk: string } {
  const sk = generateSecretKey();
  return { sk, pk: getPublicKey(sk) };
}

/** x coordinate of sk·P (P given x-only, even Y): what threshold ECDH will hand to nip04/nip44. */
export function sharedX(sk: Uint8Array, pkHex: string): Uint8Array {
  return secp256k1.getSharedSecret(sk, Buffer.from(`02${pkHex}`, 'hex')).subarray(1, 33);
}

/** A bare WebSocket client that shows the relay's exact messages, for protocol tests. */
export interface RawClient {
  send(msg: unknown): void;
  /** The next message (from a buffer of unread ones) that satisfies `pred`. */
  next(pred?: (m: unknown[]) => boolean, timeoutMs?: number): Promise<unknown[]>;
  /** All messages up to and including the first that satisfies `pred`. */
  until(pred: (m: unknown[]) => boolean, timeoutMs?: number): Promise<unknown[][]>;
  closed: Promise<number>;
  ws: WebSocket;
  close(): void;
}

export async function rawClient(url: string): Promise<RawClient> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const inbox: unknown[][] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d) => {
    inbox.push(JSON.parse(d.toString()) as unknown[]);
    wake?.();
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const take = async (pred: (m: unknown[]) => boolean, timeoutMs: number, all: boolean) => {
    const deadline = Date.now() + timeoutMs;
    const seen: unknown[][] = [];
    for (;;) {
      while (inbox.length > 0) {
        const m = inbox.shift()!;
        seen.push(m);
        if (pred(m)) return all ? seen : [m];
        if (!all) seen.length = 0;
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for a relay message; got ${JSON.stringify(seen).slice(0, 500)}`);
      await within(
        new Promise<void>((resolve) => {
          wake = resolve;
        }),
        left,
        'relay message',
      ).catch(() => {});
      wake = undefined;
    }
  };
  return {
    ws,
    closed,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    next: async (pred = () => true, timeoutMs = 5000) => (await take(pred, timeoutMs, false))[0]!,
    until: (pred, timeoutMs = 5000) => take(pred, timeoutMs, true),
    close: () => ws.terminate(),
  };
}
