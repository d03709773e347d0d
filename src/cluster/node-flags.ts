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
