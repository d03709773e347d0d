/**
 * How the CLI talks to a person or a program: with --json one JSON document on stdout;
 * without, plain-text tables; with --quiet (where a command has it) only the result. Times
 * are ISO 8601 UTC in both (`when`). Errors are one line on stderr and exit code 1, or with
 * --json one JSON document `{"error":{"code","message","hint"}}` on stderr. A progress line
 * on stderr for anything that waits, only when stderr is a terminal.
 */
import type { Command } from 'commander';

/** Print a result: the JSON document (times as ISO 8601), or the text `render` gives. */
export function emit(json: boolean, data: unknown, render: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(isoTimes(data), null, 2)}\n` : ensureNewline(render()));
}

/**
 * `emit` for commands with --quiet: then only `quiet()` (the result: an id, a signature, a
 * token) is printed, one item per line.
 */
export function emitResult(
  o: { json?: boolean | undefined; quiet?: boolean | undefined },
  data: unknown,
  render: () => string,
  quiet: () => string | string[],
): void {
  if (o.quiet && !o.json) {
    const q = quiet();
    const text = Array.isArray(q) ? q.join('\n') : q;
    if (text) process.stdout.write(ensureNewline(text));
    return;
  }
  emit(Boolean(o.json), data, render);
}

/** Adds --quiet to a command whose result `emitResult` prints. */
export function quietOption(cmd: Command, result: string): Command {
  return cmd.option('-q, --quiet', `print only ${result}, without labels or progress`);
}

/** Whether a value is a Nostr event (its created_at is in Unix seconds and signed: left alone). */
function isNostrEvent(o: Record<string, unknown>): boolean {
  return typeof o.kind === 'number' && Array.isArray(o.tags) && 'content' in o;
}

/** Unix milliseconds after 1973: what the API's `*_at` fields hold. */
const MS_SINCE = 1e11;

/**
 * The document with every `*_at` field in Unix milliseconds (as the API gives them) as an
 * ISO 8601 UTC string, the same format the text output shows. Nostr events are left as
 * signed.
 */
export function isoTimes(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(isoTimes);
  if (data === null || typeof data !== 'object') return data;
  const o = data as Record<string, unknown>;
  if (isNostrEvent(o)) return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k] =
      k.endsWith('_at') && typeof v === 'number' && Number.isInteger(v) && v > MS_SINCE
        ? when(v)
        : isoTimes(v);
  }
  return out;
}

function ensureNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

/** Plain-text columns: a header row, then the rows, each column padded to its widest cell. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [
    headers,
    ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `label  value` lines for one object. */
export function fields(pairs: [string, string | number | boolean | null | undefined][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs
    .map(([k, v]) => `${k.padEnd(w)}  ${v === null || v === undefined ? '-' : String(v)}`)
    .join('\n');
}

/** Time as an ISO string without milliseconds, or '-'. */
export function when(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** An error as the CLI reports it. */
export interface CliError {
  code: string;
  message: string;
  hint?: string;
}

/** Whether the command line asks for JSON (`--json` before any `--`). */
export function jsonRequested(argv: readonly string[] = process.argv.slice(2)): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** The stable code, the message and the hint of an error (ApiError, FloeError, commander, other). */
export function cliError(e: unknown): CliError {
  const x = (e ?? {}) as { code?: unknown; hint?: unknown; extra?: { hint?: unknown } };
  const code =
    typeof x.code !== 'string'
      ? 'error'
      : x.code.startsWith('commander.')
        ? 'usage'
        : /^[a-z][a-z0-9_]*$/.test(x.code)
          ? x.code
          : 'error';
  const hint =
    typeof x.hint === 'string' ? x.hint : typeof x.extra?.hint === 'string' ? x.extra.hint : undefined;
  return { code, message: errorLine(e), ...(hint ? { hint: oneLine(hint) } : {}) };
}

/**
 * Report an error and exit 1: one line `floe: <message>; <hint>` on stderr, or with --json one
 * line `{"error":{"code","message","hint"}}` on stderr.
 */
export function fail(e: unknown, json: boolean = jsonRequested()): never {
  const err = cliError(e);
  process.stderr.write(
    json
      ? `${JSON.stringify({ error: err })}\n`
      : `floe: ${err.message}${err.hint && !err.message.includes(err.hint) ? `; ${err.hint}` : ''}\n`,
  );
  process.exit(1);
}

/**
 * Usage errors (a bad option value, an unknown option, a missing argument): commander's own
 * message and exit code 1; with --json the same as a JSON error on stderr. Call on the program
 * before adding commands (they inherit it).
 */
export function configureUsageErrors(program: Command): Command {
  return program
    .configureOutput({
      outputError: (str, write) => {
        if (!jsonRequested()) write(str);
      },
    })
    .exitOverride((err) => {
      if (err.exitCode !== 0 && err.code !== 'commander.help' && jsonRequested()) {
        const message = oneLine(err.message.replace(/^error: /, ''));
        const usage: CliError = { code: 'usage', message, hint: 'see --help for the usage' };
        process.stderr.write(`${JSON.stringify({ error: usage })}\n`);
      }
      process.exit(err.exitCode);
    });
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export function errorLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s+/g, ' ').trim() || 'error';
}

/** A spinner with a message on stderr while something waits; silent unless stderr is a TTY. */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private text = '';
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(text: string, enabled = true) {
    this.tty = enabled && process.stderr.isTTY === true;
    this.text = text;
    if (this.tty) {
      this.render();
      this.timer = setInterval(() => this.render(), 100);
      this.timer.unref();
    }
  }

  update(text: string): void {
    this.text = text;
  }

  private render(): void {
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`\r\x1b[2K${frames[this.frame++ % frames.length]} ${this.text} ${s}s`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }

  /** Run `fn` with the spinner showing; stops it however `fn` ends. */
  static async during<T>(text: string, enabled: boolean, fn: (p: Progress) => Promise<T>): Promise<T> {
    const p = new Progress(text, enabled);
    try {
      return await fn(p);
    } finally {
      p.stop();
    }
  }
}
