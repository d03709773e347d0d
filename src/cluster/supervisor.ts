/**
 * Supervises child processes: starts each and waits for its ready line (a JSON line on
 * stdout whose `event` is the child's ready event), restarts one that exits on its own with
 * exponential backoff, and stops them all on request (SIGTERM, then SIGKILL after a
 * timeout).
 *
 * Children get a pipe on stdin and FLOE_SUPERVISED=1; the floe CLI stops a supervised node
 * when that pipe closes, so children do not outlive a supervisor that was killed outright.
 * Their stdout and stderr go to a log file each; the last lines of stderr are kept for the
 * report when a child dies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

/** How long after a child's exit `stop` waits for the rest of its output. */
const STDIO_GRACE_MS = 1000;

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** `event` of the JSON line on stdout that says the child is ready. */
  readyEvent: string;
  /** Append stdout and stderr here. */
  logFile?: string;
}

export type SupervisorEvent =
  | { kind: 'ready'; name: string; pid: number; restarts: number; info: Record<string, unknown> }
  | {
      kind: 'exited';
      name: string;
      pid: number;
      code: number | null;
      signal: NodeJS.Signals | null;
      /** True when the supervisor stopped it. */
      expected: boolean;
      stderrTail: string[];
    }
  | { kind: 'restarting'; name: string; delayMs: number; attempt: number }
  | { kind: 'restart_failed'; name: string; error: string };

export interface SupervisorOptions {
  /** First restart delay; doubles per consecutive failure up to maxMs. Defaults 500 ms, 30 s. */
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  /** SIGTERM, then SIGKILL after this long. Default 10 s. */
  stopTimeoutMs?: number;
  /** A child that is not ready after this long is killed (and counts as a failed start). Default 60 s. */
  readyTimeoutMs?: number;
  onEvent?: (e: SupervisorEvent) => void;
}

/** A child that exited or failed before it was ready. */
export class ChildStartError extends Error {
  constructor(
    readonly child: string,
    message: string,
    readonly stderrTail: string[],
  ) {
    super(message);
  }
}

interface Managed {
  spec: ChildSpec;
  proc: ChildProcess | undefined;
  restarts: number;
  /** Consecutive failures since the child was last up for resetAfterMs. */
  failures: number;
  readyAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  stderrTail: string[];
  log: WriteStream | undefined;
}

const TAIL_LINES = 20;

export class Supervisor {
  private readonly children = new Map<string, Managed>();
  private readonly o: Required<Omit<SupervisorOptions, 'backoff' | 'onEvent'>> & {
    backoff: Required<NonNullable<SupervisorOptions['backoff']>>;
    onEvent: (e: SupervisorEvent) => void;
  };
  private stopping = false;

  constructor(o: SupervisorOptions = {}) {
    this.o = {
      stopTimeoutMs: o.stopTimeoutMs ?? 10_000,
      readyTimeoutMs: o.readyTimeoutMs ?? 60_000,
      backoff: {
        initialMs: o.backoff?.initialMs ?? 500,
        maxMs: o.backoff?.maxMs ?? 30_000,
        resetAfterMs: o.backoff?.resetAfterMs ?? 30_000,
      },
      onEvent: o.onEvent ?? (() => {}),
    };
  }

  /** Start a child and wait for its ready line; rejects (ChildStartError) if it dies or hangs first. */
  async start(spec: ChildSpec): Promise<Record<string, unknown>> {
    if (this.stopping) throw new Error('supervisor is stopping');
    if (this.children.has(spec.name)) throw new Error(`child ${spec.name} exists`);
    let log: WriteStream | undefined;
    if (spec.logFile) {
      mkdirSync(dirname(spec.logFile), { recursive: true, mode: 0o700 });
      log = createWriteStream(spec.logFile, { flags: 'a', mode: 0o600 });
    }
    const m: Managed = {
      spec,
      proc: undefined,
      restarts: 0,
      failures: 0,
      readyAt: undefined,
      timer: undefined,
      stderrTail: [],
      log,
    };
    this.children.set(spec.name, m);
    try {
      return await this.spawn(m, false);
    } catch (e) {
      this.children.delete(spec.name);
      log?.end();
      throw e;
    }
  }

  pid(name: string): number | undefined {
    return this.children.get(name)?.proc?.pid;
  }

  restarts(name: string): number {
    return this.children.get(name)?.restarts ?? 0;
  }

  names(): string[] {
    return [...this.children.keys()];
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /**
   * Stop every child (in the order given, then any others): SIGTERM, SIGKILL after the
   * timeout. Pending restarts are cancelled. Idempotent.
   */
  async stop(order: string[] = []): Promise<void> {
    this.stopping = true;
    for (const m of this.children.values()) clearTimeout(m.timer);
    const names = [...new Set([...order.filter((n) => this.children.has(n)), ...this.children.keys()])];
    for (const n of order.filter((x) => this.children.has(x))) await this.stopOne(this.children.get(n)!);
    await Promise.all(names.map((n) => this.stopOne(this.children.get(n)!)));
    // Resolves once every log file holds all its child wrote (end() only starts the flush).
    await Promise.all(
      [...this.children.values()].map((m) => (m.log ? new Promise<void>((r) => m.log!.end(r)) : undefined)),
    );
  }

  /** SIGKILL every live child at once (a second Ctrl-C); no restarts after this. */
  forceKill(): void {
    this.stopping = true;
    for (const m of this.children.values()) {
      clearTimeout(m.timer);
      const p = m.proc;
      if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  }

  private async stopOne(m: Managed): Promise<void> {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    // Exited, and its stdout and stderr read to the end ('close': all of it logged) — or a
    // moment after the exit, in case a process it left behind still holds its pipes.
    const exited = new Promise<void>((r) => {
      p.once('close', () => r());
      p.once('exit', () => setTimeout(r, STDIO_GRACE_MS).unref());
    });
    p.kill('SIGTERM');
    let t: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        t = setTimeout(() => r(true), this.o.stopTimeoutMs);
      }),
    ]);
    clearTimeout(t);
    if (timedOut) {
      p.kill('SIGKILL');
      await exited;
    }
  }

  /** Spawn the child once; resolves with its ready line. */
  private spawn(m: Managed, restart: boolean): Promise<Record<string, unknown>> {
    const { spec } = m;
    const proc = spawn(spec.command, spec.args, {
      cwd: spec.cwd ?? process.cwd(),
      env: { ...spec.env, FLOE_SUPERVISED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    m.proc = proc;
    m.readyAt = undefined;
    m.stderrTail = [];
    // The pipe stays open for the child's lifetime; an EPIPE after it exits is harmless.
    proc.stdin!.on('error', () => {});

    return new Promise((resolve, reject) => {
      let ready = false;
      let settled = false;
      const fail = (msg: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(readyTimer);
        if (restart && !this.stopping)
          this.o.onEvent({ kind: 'restart_failed', name: spec.name, error: msg });
        reject(new ChildStartError(spec.name, msg, [...m.stderrTail]));
      };
      const readyTimer = setTimeout(() => {
        fail(`${spec.name} was not ready after ${this.o.readyTimeoutMs} ms`);
        proc.kill('SIGKILL');
      }, this.o.readyTimeoutMs);

      lines(proc.stdout!, (line) => {
        m.log?.write(`${line}\n`);
        if (ready || !line.startsWith('{')) return;
        let j: Record<string, unknown>;
        try {
          j = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (j.event !== spec.readyEvent) return;
        ready = true;
        m.readyAt = Date.now();
        settled = true;
        clearTimeout(readyTimer);
        this.o.onEvent({ kind: 'ready', name: spec.name, pid: proc.pid!, restarts: m.restarts, info: j });
        resolve(j);
      });
      lines(proc.stderr!, (line) => {
        m.log?.write(`${line}\n`);
        // Node's own warnings say nothing about why a child died.
        if (/^\((node:\d+|Use `node)/.test(line) || !line.trim()) return;
        m.stderrTail.push(line);
        if (m.stderrTail.length > TAIL_LINES) m.stderrTail.shift();
      });
      proc.once('error', (e) => fail(`${spec.name} could not be started: ${e.message}`));
      proc.once('exit', (code, signal) => {
        const expected = this.stopping;
        this.o.onEvent({
          kind: 'exited',
          name: spec.name,
          pid: proc.pid ?? -1,
          code,
          signal,
          expected,
          stderrTail: [...m.stderrTail],
        });
        if (!ready) {
          const last = m.stderrTail.at(-1);
          fail(
            `${spec.name} exited (${signal ?? `code ${code}`}) before it was ready${last ? `: ${last}` : ''}`,
          );
        }
        // A child that was up, or a restart that failed, is retried; a first start that
        // fails is the caller's error (start() rejects).
        if (!expected && (ready || restart)) this.scheduleRestart(m);
      });
    });
  }

  private scheduleRestart(m: Managed): void {
    if (this.stopping) return;
    const { initialMs, maxMs, resetAfterMs } = this.o.backoff;
    if (m.readyAt !== undefined && Date.now() - m.readyAt >= resetAfterMs) m.failures = 0;
    const delayMs = Math.min(maxMs, initialMs * 2 ** m.failures);
    m.failures++;
    m.restarts++;
    this.o.onEvent({ kind: 'restarting', name: m.spec.name, delayMs, attempt: m.failures });
    m.timer = setTimeout(() => {
      if (this.stopping) return;
      // A failure is reported (restart_failed) and retried from the exit handler.
      this.spawn(m, true).catch(() => {});
    }, delayMs);
  }
}

/** Calls `fn` for each complete line of a stream (and a last unterminated one at the end). */
function lines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  stream.on('end', () => {
    if (buf) fn(buf);
    buf = '';
  });
}
