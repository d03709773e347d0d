/**
 * Where `npm test` puts the bundles of the test files (scripts/run-tests.mjs): one folder per
 * run, `node_modules/.cache/floe-tests/<pid of the run>/`, holding each test file at its path
 * under the root with `.mjs` for `.ts`, so two runs in one checkout (`npm test` and
 * `npm run test:unit`) never remove each other's files. A run's folder stays after it ends (a
 * failure's location is a line of its bundle) until a later run finds its process gone.
 *
 * Plain JavaScript, shared by that script and the helpers that name the test file a process
 * runs (./fuzz-seed.ts) or start one of the scripts below (./processes.ts).
 */
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { ROOT } from './build-freshness.mjs';

export const TEST_BUNDLES = join(ROOT, 'node_modules', '.cache', 'floe-tests');

/**
 * The TypeScript programs the tests start as child processes (./processes.ts `spawnScript`),
 * bundled beside the test files in the same run: each start through tsx spent about 2 s of CPU.
 */
export const SCRIPTS = ['test/helpers/byzantine-signer-main.ts', 'test/signer/fixtures/seal-records.ts'];

/** The run folder that `path` (default: this process's main module) lies in, if any. */
export function runOf(path = process.argv[1] ?? '') {
  if (!path.startsWith(TEST_BUNDLES + sep)) return undefined;
  const [run, ...rest] = relative(TEST_BUNDLES, path).split(sep);
  return run && rest.length > 0 ? join(TEST_BUNDLES, run) : undefined;
}

/** The bundle of `file` (a path under the root) in the run folder `run`. */
export function bundleOf(file, run) {
  return join(run, relative(ROOT, file)).replace(/\.ts$/, '.mjs');
}

/** The test file a bundle was made from; any other path as it is. */
export function sourceOf(path) {
  const run = runOf(path);
  if (!run) return path;
  return join(ROOT, relative(run, path)).replace(/\.mjs$/, '.ts');
}

/**
 * The bundle of `script` (a path under the root) when this process runs from a bundle and its
 * run made that one too; otherwise undefined (run the script through tsx).
 */
export function scriptBundle(script) {
  const run = runOf();
  if (!run) return undefined;
  const bundle = bundleOf(script, run);
  return existsSync(bundle) ? bundle : undefined;
}
