/**
 * Where `npm test` puts the bundles of the test files (scripts/run-tests.mjs): each test file's
 * path under node_modules/.cache/floe-tests/, with `.mjs` for `.ts`. Plain JavaScript, shared by
 * that script and the helpers that name the test file a process runs (./fuzz-seed.ts) or start
 * one of the scripts below (./processes.ts).
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

/** Whether this process runs a bundle of `npm test`, made in the same run as the others. */
export function runningFromBundle() {
  return (process.argv[1] ?? '').startsWith(TEST_BUNDLES + sep);
}

/**
 * The bundle of `script` (a path under the root) when this process runs from a bundle and that
 * bundle exists; otherwise undefined (run the script through tsx).
 */
export function scriptBundle(script) {
  if (!runningFromBundle()) return undefined;
  const bundle = bundleOf(script);
  return existsSync(bundle) ? bundle : undefined;
}

/** The bundle of the test file `file` (a path under the root). */
export function bundleOf(file) {
  return join(TEST_BUNDLES, relative(ROOT, file)).replace(/\.ts$/, '.mjs');
}

/** The test file a bundle was made from; any other path as it is. */
export function sourceOf(path) {
  if (!path.startsWith(TEST_BUNDLES + sep)) return path;
  return join(ROOT, relative(TEST_BUNDLES, path)).replace(/\.mjs$/, '.ts');
}
