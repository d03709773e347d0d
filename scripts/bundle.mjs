/**
 * The second half of `npm run build`: bundles the compiled programs (dist/cli/main.js, the
 * `floe` CLI with every server role, and dist/nostr/relay-main.js, the local relay) with the
 * JavaScript packages they use into dist/bundle/, which bin/floe.js and `floe up` run.
 *
 * Why: a process that loads fastify, ajv, pino and the rest from node_modules reads, resolves
 * and compiles several hundred small files at start; a signer spent about 1.1 s of CPU before it
 * listened, a third of it in the module loader. From the bundle it starts on about half of that
 * (docs/performance.md, "Fourteenth session"). The code is the same: esbuild only joins modules
 * (no minification, no down-levelling: target node20), and the source maps point into dist/.
 *
 * Left outside the bundle, loaded from node_modules as before: native and WebAssembly modules
 * (they find their binaries beside their own files) and packages that read their own files at
 * run time (swagger's UI and package.json, pino's worker threads).
 *
 * Layout: the entries where they are under dist/ (dist/bundle/cli/main.js,
 * dist/bundle/nostr/relay-main.js), the shared chunks one folder deep (dist/bundle/chunks/), so
 * `../cli/main.js` from any file of the bundle is the bundle's CLI: `floe up` started from the
 * bundle starts its children from it (src/cluster/self.ts). The modules that read the package's
 * own files (the migrations, the dashboard's assets) find them from the package root
 * (src/config/package-root.ts).
 */
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Loaded from node_modules at run time (see above). */
const EXTERNAL = [
  'secp256k1',
  'tiny-secp256k1',
  'better-sqlite3',
  'pkcs11js',
  '@electric-sql/pglite',
  '@electric-sql/pglite/*',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  'pino',
  'thread-stream',
];

/**
 * Bundle the compiled programs of `dist` (a tsc output of tsconfig.build.json) into
 * `<dist>/bundle`, replacing what is there; returns the number of JavaScript files written.
 */
export async function bundlePrograms(dist) {
  const outdir = join(dist, 'bundle');
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: [join(dist, 'cli', 'main.js'), join(dist, 'nostr', 'relay-main.js')],
    outbase: dist,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: 'linked',
    external: EXTERNAL,
    // The CommonJS packages inside call require() for Node's built-ins and for the externals.
    banner: {
      js: "import { createRequire as __floeCreateRequire } from 'node:module'; const require = __floeCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
    metafile: true,
  });
  return Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).length;
}

// `node scripts/bundle.mjs [dist]`: the package's own dist/ unless another is given (the bench
// bundles its private build, bench/cluster.ts).
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const dist = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'));
  const files = await bundlePrograms(dist);
  console.log(`bundle: ${files} files in ${join(dist, 'bundle')}`);
}
