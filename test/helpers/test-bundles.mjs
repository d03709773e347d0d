/**
 * Where `npm test` puts the bundles of the test files (scripts/run-tests.mjs): each test file's
 * path under node_modules/.cache/floe-tests/, with `.mjs` for `.ts`. Plain JavaScript, shared by
 * that script and the helpers that name the test file a process runs (./fuzz-seed.ts).
 */
import { join, relative, sep } from 'node:path';
import { ROOT } from './build-freshness.mjs';

export const TEST_BUNDLES = join(ROOT, 'node_modules', '.cache', 'floe-tests');

/** The bundle of the test file `file` (a path under the root). */
export function bundleOf(file) {
  return join(TEST_BUNDLES, relative(ROOT, file)).replace(/\.ts$/, '.mjs');
}

/** The test file a bundle was made from; any other path as it is. */
export function sourceOf(path) {
  if (!path.startsWith(TEST_BUNDLES + sep)) return path;
  return join(ROOT, relative(TEST_BUNDLES, path)).replace(/\.mjs$/, '.ts');
}
