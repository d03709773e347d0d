/**
 * How tests start this repository's programs (the `floe` CLI, the relay) as child processes:
 * from the build in `dist/` when it is at least as new as every source file under `src/`,
 * otherwise from the TypeScript sources through tsx. A built program starts on ~0.2 s of CPU,
 * one through tsx on ~0.7 s, and the suite starts several hundred. A stale build is never run:
 * one source file newer than its output, or an output missing, and every program runs from
 * the sources. `npm ci` builds (the `prepare` script) and `.ci/run` builds before testing.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');

let fresh: boolean | undefined;

/** True when every `src/**.ts` has its `dist/**.js` and none is newer than it. */
export function buildIsFresh(): boolean {
  fresh ??= isFresh(SRC);
  return fresh;
}

function isFresh(dir: string): boolean {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!isFresh(path)) return false;
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
      const out = join(DIST, relative(SRC, path)).replace(/\.ts$/, '.js');
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) return false;
    }
  }
  return true;
}

/**
 * The node arguments that run `src/<entry>` (e.g. `cli/main.ts`): the built file, or the
 * source through tsx (an absolute loader URL, so any working directory works).
 */
export function programArgv(entry: string): string[] {
  if (buildIsFresh()) return [join(DIST, entry.replace(/\.ts$/, '.js'))];
  return ['--import', import.meta.resolve('tsx'), join(SRC, entry)];
}
