/**
 * End-to-end helpers: run the `floe` CLI (built, or from the sources through tsx) as real child
 * processes in any working directory, a `floe up` cluster on free loopback ports, and the
 * sample curl it prints, executed with fetch.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Moved to ./until.ts; re-exported so existing imports keep working. */
export { until } from './until.js';

import { programArgv } from './program.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Built, or the sources through tsx (./program.ts). */
const FLOE = programArgv('cli/main.ts');

/** The environment of a child: PATH and HOME only, plus what the test gives. */
function childEnv(env: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env };
}

export interface FloeResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run one floe command to completion. */
export function runFloe(
  args: string[],
  o: { cwd: string; env?: Record<string, string>; input?: string; timeoutMs?: number },
): Promise<FloeResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(
      process.execPath,
      [...FLOE, ...args],
      { cwd: o.cwd, env: childEnv(o.env), timeout: o.timeoutMs ?? 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
    if (o.input !== undefined) child.stdin!.end(o.input);
    else child.stdin!.end();
  });
}

/** Whether `port` on 127.0.0.1 can be bound now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => r(true)));
  });
}

/** `count` consecutive free ports at a random high base (outside the usual ephemeral range). */
export async function freePortRange(count: number): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

export interface UpProcess {
  proc: ChildProcess;
  cwd: string;
  /** Everything printed on stdout so far. */
  output(): string;
  stderr(): string;
  /** Resolves when stdout matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export function spawnUp(args: string[], o: { cwd: string; env?: Record<string, string> }): UpProcess {
  const proc = spawn(process.execPath, [...FLOE, 'up', ...args], {
    cwd: o.cwd,
    env: childEnv(o.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const watchers: (() => void)[] = [];
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...watchers]) w();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const up: UpProcess = {
    proc,
    cwd: o.cwd,
    output: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 90_000) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            done();
            resolvePromise(m);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${re}; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          const i = watchers.indexOf(check);
          if (i >= 0) watchers.splice(i, 1);
        };
        exited.then((code) => {
          if (!out.match(re)) {
            done();
            reject(new Error(`floe up exited (${code}) before ${re}; stdout:\n${out}\nstderr:\n${err}`));
          }
        });
        watchers.push(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  return up;
}

/**
 * Start `floe up` on free ports and wait for its ready block (through "Press Ctrl-C").
 * Retries with other ports if the chosen ones were taken in the meantime.
 */
export async function startUp(
  extra: string[],
  o: { cwd: string; signers: number; env?: Record<string, string> },
): Promise<{ up: UpProcess; port: number; signerPortBase: number; addressPort: number; relayPort: number }> {
  for (let attempt = 0; ; attempt++) {
    const base = await freePortRange(o.signers + 3);
    const addressPort = base + o.signers + 1;
    const relayPort = base + o.signers + 2;
    const args = [
      '--port',
      String(base),
      '--signer-port-base',
      String(base + 1),
      '--address-port',
      String(addressPort),
      '--relay-port',
      String(relayPort),
      ...extra,
    ];
    const up = spawnUp(args, o);
    try {
      await up.waitFor(/Press Ctrl-C/);
      return { up, port: base, signerPortBase: base + 1, addressPort, relayPort };
    } catch (e) {
      await up.stop('SIGKILL');
      if (attempt < 2 && /is in use/.test(up.stderr())) continue;
      throw e;
    }
  }
}

export interface CurlRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Split a shell command line into words: single and double quotes, backslash-newline continuations. */
function shellWords(s: string, substitute: (cmd: string) => string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const text = s.replace(/\\\n/g, ' ');
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") {
      const j = text.indexOf("'", i + 1);
      cur += text.slice(i + 1, j);
      inWord = true;
      i = j + 1;
    } else if (c === '"') {
      i++;
      while (text[i] !== '"') {
        if (text.startsWith('$(', i)) {
          const j = text.indexOf(')', i);
          cur += substitute(text.slice(i + 2, j));
          i = j + 1;
        } else cur += text[i++];
      }
      inWord = true;
      i++;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * The curl command in `text` (the first line starting with `curl`, with its continuations) as
 * a fetch request. Understands -X, -H, -d and `$(cat FILE)` (FILE relative to `cwd`).
 */
export function parseCurl(text: string, cwd: string): CurlRequest {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim().startsWith('curl '));
  if (start < 0) throw new Error('no curl command in the output');
  let cmd = '';
  for (let i = start; i < lines.length; i++) {
    const l = lines[i]!.trim();
    cmd += l.endsWith('\\') ? `${l}\n` : l;
    if (!l.endsWith('\\')) break;
  }
  const words = shellWords(cmd, (sub) => {
    const m = /^cat\s+(.+)$/.exec(sub.trim());
    if (!m) throw new Error(`unsupported substitution $(${sub})`);
    const file = m[1]!.replace(/^'(.*)'$/, '$1');
    return readFileSync(resolve(cwd, file), 'utf8').trim();
  });
  const req: CurlRequest = { method: 'GET', url: '', headers: {}, body: undefined };
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === '-X') req.method = words[++i]!;
    else if (w === '-H') {
      const h = words[++i]!;
      const k = h.indexOf(':');
      req.headers[h.slice(0, k).trim().toLowerCase()] = h.slice(k + 1).trim();
    } else if (w === '-d') {
      req.body = words[++i]!;
      if (req.method === 'GET') req.method = 'POST';
    } else if (w === '-s') {
      // silent
    } else if (!w.startsWith('-')) req.url = w;
    else throw new Error(`unsupported curl option ${w}`);
  }
  return req;
}

/** Run a parsed curl request with fetch; returns status and parsed JSON. */
export async function fetchCurl(req: CurlRequest): Promise<{ status: number; body: any }> {
  const r = await fetch(req.url, {
    method: req.method,
    headers: req.headers,
    ...(req.body === undefined ? {} : { body: req.body }),
  });
  return { status: r.status, body: await r.json() };
}

/** Whether a process exists. */
export function alive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
