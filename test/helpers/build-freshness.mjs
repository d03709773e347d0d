/**
 * Whether the build in `dist/` may stand in for the sources: every `src/**.ts` has its
 * `dist/**.js` and none is newer than its output. Plain JavaScript, because ./prefer-build.mjs
 * reads it before tsx can load anything; ./program.ts uses it too (types in the .d.mts beside).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SRC = join(ROOT, 'src');
export const DIST = join(ROOT, 'dist');
/** The bundle of the programs (scripts/bundle.mjs, the second half of `npm run build`). */
export const BUNDLE = join(DIST, 'bundle');

let fresh;
let bundleFresh;
/** The newest modification time among `src/**.ts`, found by the walk of isFresh. */
let newestSource = 0;

/**
 * True when every `src/**.ts` has its `dist/**.js` and none is newer than it (checked once per
 * process); never with FLOE_TEST_FROM_SOURCES=1, which runs everything from the sources.
 */
export function buildIsFresh() {
  fresh ??= process.env.FLOE_TEST_FROM_SOURCES !== '1' && existsSync(DIST) && isFresh(SRC);
  return fresh;
}

/**
 * True when the build is fresh and the bundle's entry `entry` (e.g. `cli/main.js`) is at least
 * as new as every source file: `tsc` alone (without the bundle step) leaves it older.
 */
export function bundleIsFresh(entry) {
  if (!buildIsFresh()) return false;
  bundleFresh ??= new Map();
  if (!bundleFresh.has(entry)) {
    const out = join(BUNDLE, entry);
    bundleFresh.set(entry, existsSync(out) && statSync(out).mtimeMs >= newestSource);
  }
  return bundleFresh.get(entry);
}

function isFresh(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!isFresh(path)) return false;
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
      const out = join(DIST, relative(SRC, path)).replace(/\.ts$/, '.js');
      const sourceTime = statSync(path).mtimeMs;
      if (sourceTime > newestSource) newestSource = sourceTime;
      if (!existsSync(out) || statSync(out).mtimeMs < sourceTime) return false;
    }
  }
  return true;
}
