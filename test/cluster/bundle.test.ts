/**
 * The bundle (dist/bundle/, scripts/bundle.mjs) and the modules that find the package's files
 * whichever form they run from: sources, compiled modules, or bundle chunks at other depths.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { selfEntryArgs } from '../../src/cluster/self.js';
import { packageRoot } from '../../src/config/package-root.js';
import { assetDirectory } from '../../src/coordinator/dashboard/plugin.js';
import { migrationsDir } from '../../src/db/migrate.js';
import { BUNDLE, bundleIsFresh, ROOT } from '../helpers/build-freshness.mjs';
import { programArgv } from '../helpers/program.js';

const url = (...parts: string[]) => pathToFileURL(join(ROOT, ...parts)).href;
const chunk = url('dist', 'bundle', 'chunks', 'chunk-ABCDEF.js');

describe('the package root, from every form the code runs in', () => {
  it('is the folder of the nearest package.json above the module', () => {
    for (const u of [
      url('src', 'db', 'migrate.ts'),
      url('dist', 'db', 'migrate.js'),
      chunk,
      url('dist', 'bundle', 'cli', 'main.js'),
    ]) {
      assert.equal(packageRoot(u), ROOT, u);
    }
    assert.equal(packageRoot('file:///nowhere/at/all.js'), undefined);
  });

  it('a cluster starts its children in the form it runs from itself', () => {
    assert.deepEqual(selfEntryArgs('cli/main', chunk), [join(ROOT, 'dist', 'bundle', 'cli', 'main.js')]);
    assert.deepEqual(selfEntryArgs('cli/main', url('dist', 'bundle', 'nostr', 'relay-main.js')), [
      join(ROOT, 'dist', 'bundle', 'cli', 'main.js'),
    ]);
    assert.deepEqual(selfEntryArgs('nostr/relay-main', chunk), [
      join(ROOT, 'dist', 'bundle', 'nostr', 'relay-main.js'),
    ]);
    assert.deepEqual(selfEntryArgs('cli/main', url('dist', 'cluster', 'self.js')), [
      join(ROOT, 'dist', 'cli', 'main.js'),
    ]);
    const fromSources = selfEntryArgs('cli/main', url('src', 'cluster', 'self.ts'));
    assert.equal(fromSources[0], '--import');
    assert.equal(fromSources.at(-1), join(ROOT, 'src', 'cli', 'main.ts'));
  });

  it('the migrations and the dashboard are found from a bundle chunk', () => {
    assert.equal(migrationsDir(chunk), join(ROOT, 'src', 'db', 'migrations'));
    assert.equal(assetDirectory(chunk), join(ROOT, 'src', 'coordinator', 'dashboard', 'assets'));
    assert.throws(() => migrationsDir('file:///nowhere/migrate.js'), /migrations folder not found/);
  });
});

const skip = bundleIsFresh('cli/main.js') ? false : 'no fresh bundle (run `npm run build`)';

describe('the bundle', { skip }, () => {
  it('is what the tests start, as users run it', () => {
    assert.equal(programArgv('cli/main.ts').at(-1), join(BUNDLE, 'cli', 'main.js'));
    assert.equal(programArgv('nostr/relay-main.ts').at(-1), join(BUNDLE, 'nostr', 'relay-main.js'));
  });

  it('answers like the compiled CLI, run directly and through bin/floe.js', () => {
    const run = (...entry: string[]) =>
      spawnSync(process.execPath, [join(ROOT, ...entry), 'key', '--help'], { encoding: 'utf8' });
    const fromBundle = run('dist', 'bundle', 'cli', 'main.js');
    assert.equal(fromBundle.status, 0, fromBundle.stderr);
    assert.match(fromBundle.stdout, /Usage: floe key/);
    assert.equal(fromBundle.stdout, run('dist', 'cli', 'main.js').stdout);
    assert.equal(fromBundle.stdout, run('bin', 'floe.js').stdout);
  });

  it('keeps every file one folder below its root, so `../cli/main.js` from any of them is its CLI', () => {
    const js = readdirSync(BUNDLE, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    assert.ok(js.length > 2, js.join(', '));
    for (const f of js) assert.equal(f.split(sep).length, 2, f);
    for (const f of js) {
      assert.equal(
        selfEntryArgs('cli/main', pathToFileURL(join(BUNDLE, f)).href)[0],
        join(BUNDLE, 'cli', 'main.js'),
      );
    }
  });

  it('leaves native and WebAssembly modules and self-reading packages to node_modules', () => {
    const files = readdirSync(join(BUNDLE, 'chunks'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(BUNDLE, 'chunks', f));
    const text = [join(BUNDLE, 'cli', 'main.js'), ...files].map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const pkg of [
      'better-sqlite3',
      'secp256k1',
      'tiny-secp256k1',
      'pkcs11js',
      '@electric-sql/pglite',
      '@fastify/swagger-ui',
      'pino',
    ]) {
      assert.ok(!text.includes(`// node_modules/${pkg}/`), `${pkg} is not bundled`);
    }
    // and the JavaScript packages are: fastify is why a process from dist/ starts slowly
    assert.ok(text.includes('// node_modules/fastify/'), 'fastify is bundled');
  });
});
