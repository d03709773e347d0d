/**
 * How tests start this repository's programs (the `floe` CLI, the relay) as child processes:
 * as users run them, from the bundle (dist/bundle/, scripts/bundle.mjs) when the build is at
 * least as new as every source file under `src/`; from the compiled modules in `dist/` when
 * only `tsc` ran since; otherwise from the TypeScript sources through tsx. A signer started from
 * the bundle spends about 0.5 s of CPU before it listens, from `dist/` about 1.1 s, through tsx
 * more, and the suite starts several hundred processes. A stale build is never run: one source
 * file newer than its output, or an output missing, and every program runs from the sources.
 * `npm ci` builds (the `prepare` script) and `.ci/run` builds before testing.
 */
import { join } from 'node:path';
import { inheritedNodeFlags } from '../../src/cluster/node-flags.js';
import { BUNDLE, buildIsFresh, bundleIsFresh, DIST, SRC } from './build-freshness.mjs';

/**
 * The node arguments that run `src/<entry>` (e.g. `cli/main.ts`): this test process's own
 * Node flags (`npm test` runs with `--liftoff-only`, see package.json), then the bundled or
 * built file, or the source through tsx (an absolute loader URL, so any working directory works).
 */
export function programArgv(entry: string): string[] {
  const flags = inheritedNodeFlags();
  const built = entry.replace(/\.ts$/, '.js');
  if (bundleIsFresh(built)) return [...flags, join(BUNDLE, built)];
  if (buildIsFresh()) return [...flags, join(DIST, built)];
  return [...flags, '--import', import.meta.resolve('tsx'), join(SRC, entry)];
}
