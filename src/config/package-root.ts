/**
 * Where this package's own files are, whichever way its code runs: from the sources (src/,
 * through tsx), from the compiled modules (dist/), or from the bundle (dist/bundle/, which
 * bin/floe.js and `floe up` run; scripts/bundle.mjs). A module that reads a file of the package
 * (the migrations, the dashboard's assets) cannot count `../` from itself, since the bundle
 * joins modules into files at other depths; it asks for the package root instead: the nearest
 * folder at or above it that holds a package.json.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root above the module at `moduleUrl` (a file: URL), or undefined if none. */
export function packageRoot(moduleUrl: string): string | undefined {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * The package's folder `src/<...fromSources>`, looked for beside the module first (`besides`,
 * relative to the module's folder: where it is when the module runs from the sources) and then
 * under the package root (the compiled modules and the bundle); a candidate counts when it holds
 * `marker` (a file or folder inside it, or '' for the folder itself). Returns the folder, or
 * undefined with the candidates looked at, for the caller's error.
 */
export function packageFolder(
  moduleUrl: string,
  besides: string,
  fromSources: string[],
  marker = '',
): { found?: string; candidates: string[] } {
  const root = packageRoot(moduleUrl);
  const candidates = [
    join(dirname(fileURLToPath(moduleUrl)), besides),
    ...(root ? [join(root, 'src', ...fromSources)] : []),
  ];
  return { found: candidates.find((d) => existsSync(join(d, marker))), candidates };
}
