/**
 * Seeds, limits and failure reports shared by every fuzz file (test/fuzz/*.test.ts).
 *
 * - The seed: FLOE_FUZZ_SEED, or a fresh one; printed once per file as
 *   `# fuzz seed 12345 (reproduce: FLOE_FUZZ_SEED=12345)`. Every property of the file uses it.
 * - FLOE_FUZZ_PATH replays one counterexample (fast-check's `path`, printed on failure); use it
 *   with --test-name-pattern so that only the failing property runs (the line printed says how).
 * - FLOE_FUZZ_SCALE multiplies the number of runs; FLOE_FUZZ_SHRINK_MS bounds shrinking
 *   (default 10 s; 0 ends at the first failure).
 *
 * A property ends in bounded time whatever happens: one run is failed after `runTimeoutMs`
 * (fast-check's `timeout` plugin), the whole property after `timeLimitMs` (the
 * `interruptAfterTimeLimit` plugin; an interrupted property FAILS, it never passes short of its
 * runs), shrinking stops `shrinkMs` after the first failure with the smallest counterexample so
 * far, and `testTimeout()` gives node:test a last-resort limit above all of these.
 *
 * None of these can end a run that blocks the event loop. One such block is known: a failing
 * `assert.ok(x)` WITHOUT a message makes node re-parse the caller's source to print the
 * expression, and tsx serves a test file as one long line, so that takes minutes
 * (nodejs/node#52677; it was the signer fuzz hang). Give every `assert.ok` a message.
 */
import { randomInt } from 'node:crypto';
import { relative } from 'node:path';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { sourceOf } from './test-bundles.mjs';

function intFromEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The seed of every property in this run. */
export const FUZZ_SEED = intFromEnv('FLOE_FUZZ_SEED') ?? randomInt(2 ** 31);
/** A counterexample path to replay (fast-check's `path`), if given. */
export const FUZZ_PATH = process.env.FLOE_FUZZ_PATH?.trim() || undefined;
const SCALE = Number(process.env.FLOE_FUZZ_SCALE ?? 1);
const SHRINK_MS = intFromEnv('FLOE_FUZZ_SHRINK_MS') ?? 10_000;

console.log(`fuzz seed ${FUZZ_SEED} (reproduce: FLOE_FUZZ_SEED=${FUZZ_SEED})`);

/** `n` runs times FLOE_FUZZ_SCALE (at least one). */
export const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

export interface FuzzLimits {
  /** Runs at scale 1 (FLOE_FUZZ_SCALE multiplies them). */
  numRuns: number;
  /** The whole property, shrinking included; time limits grow with FLOE_FUZZ_SCALE. */
  timeLimitMs: number;
  /** One run of the predicate. Default 20 s. */
  runTimeoutMs?: number;
  /** Shrinking after the first failure. Default FLOE_FUZZ_SHRINK_MS or 10 s. */
  shrinkMs?: number;
}

const scaled = (ms: number) => Math.round(ms * Math.max(1, SCALE));

/** node:test's `timeout` for a test running one property with these limits: a backstop only. */
export function testTimeout(l: FuzzLimits, extraMs = 30_000): number {
  return scaled(l.timeLimitMs) + (l.runTimeoutMs ?? 20_000) + extraMs;
}

const isFailure = (r: unknown): boolean =>
  r !== null && typeof r === 'object' && !fc.PreconditionFailure.isFailure(r);

/**
 * Stop shrinking `ms` after the first failure: later candidates are not run, and fast-check
 * reports the smallest counterexample found so far (with its seed and path).
 */
function shrinkBudget<Ts>(ms: number): fc.Plugin<Ts> {
  return () => {
    let failedAt: number | undefined;
    const seen = (r: unknown) => {
      if (isFailure(r)) failedAt ??= performance.now();
      return r;
    };
    return {
      decorateRun: (nested) => (value) => {
        if (failedAt !== undefined && performance.now() - failedAt >= ms) {
          return new fc.PreconditionFailure(true) as never;
        }
        const out = nested(value);
        return (
          out !== null && typeof out === 'object' && 'then' in out ? out.then(seen) : seen(out)
        ) as never;
      },
    };
  };
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Check `property` with the file's seed and the given limits; on failure (or when the time
 * limit interrupts it) throw an error that names the seed, the path and the command that
 * replays it.
 */
export async function fuzz<Ts>(
  t: TestContext,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  l: FuzzLimits,
): Promise<fc.RunDetails<Ts>> {
  const timeLimitMs = scaled(l.timeLimitMs);
  const shrinkMs = l.shrinkMs ?? SHRINK_MS;
  const started = performance.now();
  const details = await fc.check<Ts>(property, {
    seed: FUZZ_SEED,
    ...(FUZZ_PATH ? { path: FUZZ_PATH } : {}),
    numRuns: runs(l.numRuns),
    includeErrorInReport: true,
    endOnFailure: shrinkMs <= 0,
    plugins: [
      // Typed Plugin<unknown> in fast-check 4.10, though generic in what they wrap.
      fc.interruptAfterTimeLimit(timeLimitMs) as fc.Plugin<Ts>,
      shrinkBudget<Ts>(shrinkMs),
      fc.timeout(l.runTimeoutMs ?? 20_000) as fc.Plugin<Ts>,
    ],
  });
  const elapsed = Math.round(performance.now() - started);
  t.diagnostic(`fuzz seed ${FUZZ_SEED}: ${details.numRuns} runs in ${elapsed} ms`);
  if (!details.failed && !details.interrupted) return details;

  // npm test runs a bundle of the file (scripts/run-tests.mjs): name the test file itself.
  const file = relative(process.cwd(), sourceOf(process.argv[1] ?? 'the test file'));
  const pattern = quote(`^${escapeRegExp(t.name)}$`);
  const path = details.counterexamplePath;
  const replay = `FLOE_FUZZ_SEED=${FUZZ_SEED}${path ? ` FLOE_FUZZ_PATH=${path}` : ''}`;
  const head = details.failed
    ? `fuzz counterexample after ${details.numRuns} runs and ${details.numShrinks} shrinks (${elapsed} ms): seed ${FUZZ_SEED}, path ${path}`
    : `fuzz property interrupted by its ${timeLimitMs} ms limit after ${details.numRuns} of ${runs(l.numRuns)} runs: seed ${FUZZ_SEED} (a hang, or a much slower machine)`;
  const how = `reproduce: ${replay} node --import tsx --test --test-name-pattern=${pattern} ${file}`;
  t.diagnostic(head);
  t.diagnostic(how);
  const report = details.failed ? `\n${await fc.asyncDefaultReportMessage(details)}` : '';
  throw new Error(`${head}\n${how}${report}`, { cause: details.errorInstance ?? undefined });
}
