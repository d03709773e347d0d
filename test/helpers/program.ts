/**
 * How tests start this repository's programs (the `floe` CLI, the relay) as child processes:
 * from the build in `dist/` when it is at least as new as every source file under `src/`,
 * otherwise from the TypeScript sources through tsx. A built program starts on ~0.2 s of CPU,
 * one through tsx on ~0.7 s, and the suite starts several hundred. A stale build is never run:
 * one source file newer than its output, or an output missing, and every program runs from
 * the sources. `npm ci` builds (the `prepare` script) and `.ci/run` builds before testing.
 */
import { join } from 'node:path';
import { inheritedNodeFlags } from '../../src/cluster/node-flags.js';
import { buildIsFresh, DIST, SRC } from './build-freshness.mjs';

/**
 * The node arguments that run `src/<entry>` (e.g. `cli/main.ts`): this test process's own
 * Node flags (`npm test` runs with `--liftoff-only`, see package.json), then the built file,
 * or the source through tsx (an absolute loader URL, so any working directory works).
 */
export function programArgv(entry: string): string[] {
  const flags = inheritedNodeFlags();
  if (buildIsFresh()) return [...flags, join(DIST, entry.replace(/\.ts$/, '.js'))];
  return [...flags, '--import', import.meta.resolve('tsx'), join(SRC, entry)];
}
