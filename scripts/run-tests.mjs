/**
 * `npm test` and `npm run test:unit`: `node scripts/run-tests.mjs [node --test flags] FILES…`
 * bundles the given test files with esbuild, then runs the bundles under `node --test`.
 *
 * Why: run through tsx, each of the suite's test processes sends every module it resolves and
 * loads to tsx's loader thread and back. A test file that starts a coordinator spent about 1 s
 * of CPU more on that than on loading the same JavaScript natively (docs/performance.md,
 * "Eighteenth session"), over a hundred test files. Bundled, each process loads its test, the
 * helpers and `src/` as a few files, with no loader hooks.
 *
 * The code is the same: esbuild only strips the types and joins the modules (tsx transforms
 * with esbuild too), and every package from node_modules stays outside the bundles, loaded as
 * before. Each module's `import.meta.url` (and `dirname`, `filename`) is its own file's, so
 * paths relative to a test (its fixtures) or to a module of `src/` resolve as they did. A module
 * of `src/` gets the URL of its compiled file in `dist/` when the build is fresh, as under
 * test/helpers/prefer-build.mjs (what `src/cluster/self.ts` starts, where the migrations are
 * found), and its own otherwise.
 *
 * The bundles live in a folder of this run under node_modules/.cache/floe-tests/
 * (test/helpers/test-bundles.mjs), made afresh at every run. Source maps beside them point into
 * the sources; Node uses them for stack traces with FLOE_TEST_SOURCE_MAPS=1
 * (`--enable-source-maps`), which is not the default because mapping every error's stack cost
 * about 1 s of CPU in a coordinator's test file. Without it a failure's location is a line of the
 * bundle, whose comments name each source file. One test file alone still runs through tsx:
 * `node --test --import tsx --import ./test/helpers/prefer-build.mjs test/x.test.ts`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { buildIsFresh, DIST, ROOT, SRC } from '../test/helpers/build-freshness.mjs';
import { bundleOf, SCRIPTS, TEST_BUNDLES } from '../test/helpers/test-bundles.mjs';

/** `node` flags of every test process (the runner passes its own to each file's process). */
const NODE_FLAGS = [
  '--liftoff-only',
  ...(process.env.FLOE_TEST_SOURCE_MAPS === '1' ? ['--enable-source-maps'] : []),
];
const RUNNER_FLAGS = ['--test', '--test-force-exit', '--test-concurrency=2'];

/** The path whose URL stands for `file` in its `import.meta` (see above). */
function metaPath(file, fresh) {
  if (fresh && file.startsWith(SRC + sep)) return join(DIST, relative(SRC, file)).replace(/\.ts$/, '.js');
  return file;
}

/** esbuild plugin: `import.meta.url`, `.dirname`, `.filename` of each of our modules as literals. */
function ownImportMeta(fresh) {
  return {
    name: 'own-import-meta',
    setup(b) {
      b.onLoad({ filter: /\.(ts|mts|js|mjs)$/ }, (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        const source = readFileSync(args.path, 'utf8');
        const loader = /\.m?ts$/.test(args.path) ? 'ts' : 'js';
        if (!source.includes('import.meta.')) return { contents: source, loader };
        const path = metaPath(args.path, fresh);
        const contents = source
          .replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(path).href))
          .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname(path)))
          .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(path));
        return { contents, loader };
      });
    },
  };
}

/** Remove the run folders whose run has ended (its process is gone). */
function removeEndedRuns() {
  if (!existsSync(TEST_BUNDLES)) return;
  for (const name of readdirSync(TEST_BUNDLES)) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0 && isRunning(pid)) continue;
    rmSync(join(TEST_BUNDLES, name), { recursive: true, force: true });
  }
}

/** src/cluster/supervisor-pid.ts `pidAlive` without its zombie check (this script runs no TypeScript). */
function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/**
 * Bundle `files` (paths of test files under the root), and the scripts the tests start as
 * child processes, into the run folder `run`; returns the test bundles' paths.
 */
export async function bundleTests(files, run) {
  removeEndedRuns();
  rmSync(run, { recursive: true, force: true });
  const entries = files.map((f) => resolve(ROOT, f));
  await build({
    entryPoints: [...entries, ...SCRIPTS.map((f) => join(ROOT, f))],
    outbase: ROOT,
    outdir: run,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: 'linked',
    plugins: [ownImportMeta(buildIsFresh())],
    logLevel: 'warning',
  });
  return entries.map((e) => bundleOf(e, run));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  // Test files are the `.ts` arguments; the rest go to `node --test` as they are, in order
  // (`--test-name-pattern=x`, `--test-reporter tap`).
  const isFile = (a) => !a.startsWith('-') && a.endsWith('.ts');
  const flags = args.filter((a) => !isFile(a));
  const files = args.filter(isFile);
  if (files.length === 0) {
    console.error('usage: node scripts/run-tests.mjs [node --test flags] FILE.test.ts…');
    process.exit(2);
  }
  const bundles = await bundleTests(files, join(TEST_BUNDLES, String(process.pid)));
  const child = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      '--import',
      pathToFileURL(join(ROOT, 'test', 'helpers', 'blocking-report.mjs')).href,
      ...RUNNER_FLAGS,
      ...flags,
      ...bundles,
    ],
    { cwd: ROOT, stdio: 'inherit' },
  );
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
