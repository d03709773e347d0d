/**
 * The Node and V8 flags a supervised child inherits from the process that starts it, as
 * `child_process.fork` passes `process.execArgv`: heap limits (`--max-old-space-size=256`),
 * compiler settings (`--liftoff-only`), `--enable-source-maps`. Left out: what loads modules
 * (`--import`, `--require`, `--loader`; the child's own entry arguments say how it is loaded),
 * the inspector (a child would compete for the parent's debugging port), the test runner's
 * and watch mode's flags (the parent restarts on changes, not each child), and what evaluates
 * code (`--eval`, `--print`).
 */

/** Flags followed by a separate value (`--import tsx`), when not written `--flag=value`. */
const WITH_VALUE = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--eval',
  '-e',
  '--print',
  '-p',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-name-pattern',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--watch-path',
]);

const DROPPED =
  /^(--import|--require|-r|--loader|--experimental-loader|--eval|-e|--print|-p|--inspect|--debug|--test|--watch)(?=$|[-=])/;

export function inheritedNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (!DROPPED.test(a)) {
      kept.push(a);
      continue;
    }
    if (WITH_VALUE.has(a)) i++;
  }
  return kept;
}

/**
 * V8 heap limits for every process `floe up` starts (and the bench's cluster, which runs its
 * processes the same way), each unless the operator set that option already, on the command
 * line (inherited, above) or in NODE_OPTIONS. Measured in docs/performance.md ("Eleventh
 * session"): with V8's defaults a coordinator on PGlite peaked at 314–335 MB, one on Postgres at
 * 208–219 MB and a signer at 120–122 MB, for live heaps of 20–55 MB; V8 sizes its heap to the
 * machine, not to the live set. With these, 255–285, 124–127 and 101–104 MB.
 *   --max-semi-space-size=8   young generation of 2 × 8 MB instead of up to 2 × 16 MB (4 MB
 *                             saved another 10 MB per process and cost about a tenth of the
 *                             throughput: scavenges twice as often)
 *   --max-old-space-size=256  old generation at most 256 MB, about 5 × the live heap measured:
 *                             V8 collects harder as it nears that, and aborts the process
 *                             (out of memory) beyond it
 * docs/deployment.md gives the same flags for processes started by a service manager.
 */
export const DEFAULT_HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--max-old-space-size=256'];

/** `--max_old_space_size=512` → `--max-old-space-size` (V8 takes either spelling). */
function optionName(flag: string): string {
  const eq = flag.indexOf('=');
  return (eq < 0 ? flag : flag.slice(0, eq)).replace(/_/g, '-');
}

/** `flags` and, after them, each of {@link DEFAULT_HEAP_FLAGS} that neither they nor `nodeOptions` set. */
export function withDefaultHeapFlags(
  flags: readonly string[],
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = new Set([...flags, ...nodeOptions.split(/\s+/)].filter(Boolean).map(optionName));
  return [...flags, ...DEFAULT_HEAP_FLAGS.filter((d) => !given.has(optionName(d)))];
}
