/**
 * A test run through tsx loads this after it (`node --test --import tsx --import
 * ./test/helpers/prefer-build.mjs test/x.test.ts`; so do the TypeScript scripts the tests start,
 * ./processes.ts): when the build in `dist/` is fresh (./build-freshness.mjs; `npm ci` and
 * `.ci/run` build first), an import that lands in `src/` (`../../src/x.js` from a test, a helper
 * or a bench module) loads the compiled `dist/x.js` instead of the source through tsx: the same
 * code, compiled by the tsc that builds the package, without tsx's transform work in each
 * process (about 1.5 s of CPU for one that loads the coordinator and the signer). `npm test`
 * runs bundles of the test files instead, with no loader hooks, whose `src/` modules see the
 * same `dist/` paths (scripts/run-tests.mjs).
 * The tests and their helpers still run through tsx. A stale or missing build changes nothing:
 * every module loads from `src/`; so does FLOE_TEST_FROM_SOURCES=1 (programs started by
 * the tests too: ./program.ts).
 *
 * Every import of `src/` is redirected, never some, so one process never holds two copies of a
 * module (an error class from `dist/` is the one the tests compare against).
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { buildIsFresh, DIST, SRC } from './build-freshness.mjs';

if (buildIsFresh()) {
  register('./prefer-build-hooks.mjs', import.meta.url, {
    data: { src: pathToFileURL(`${SRC}/`).href, dist: pathToFileURL(`${DIST}/`).href },
  });
}
