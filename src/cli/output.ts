/**
 * How the CLI talks to a person or a program: with --json one JSON document on stdout;
 * without, plain-text tables. Errors are one line on stderr and exit code 1. A progress line
 * on stderr for anything that waits, only when stderr is a terminal.
 */

/** Print a result: the JSON document, or the text `render` gives. */
export function emit(json: boolean, data: unknown, render: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : ensureNewline(render()));
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

/** One line: `floe: <message>` on stderr, exit code 1. */
export function fail(e: unknown): never {
  process.stderr.write(`floe: ${errorLine(e)}\n`);
  process.exit(1);
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
