/**
 * What `npm test` runs (scripts/run-tests.mjs): bundles of the test files. Each module in them
 * must still see its own file in `import.meta`, as it does through tsx, or a test's fixtures
 * and the package's own files (migrations, the programs a cluster starts) would be looked for
 * beside the bundle. These hold in both forms: a bundle under `npm test`, the sources under tsx.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { selfEntryArgs } from '../../src/cluster/self.js';
import { migrationsDir } from '../../src/db/migrate.js';
import { buildIsFresh, ROOT } from '../helpers/build-freshness.mjs';
import { BYZANTINE_SIGNER, ROOT as PROCESSES_ROOT } from '../helpers/processes.js';
import { bundleOf, runOf, SCRIPTS, scriptBundle, sourceOf, TEST_BUNDLES } from '../helpers/test-bundles.mjs';

const THIS_FILE = join(ROOT, 'test', 'cluster', 'test-bundles.test.ts');

describe('test files run as bundles', () => {
  it("a test module's import.meta names its own source file", () => {
    assert.equal(import.meta.url, pathToFileURL(THIS_FILE).href);
    assert.equal(fileURLToPath(import.meta.url), THIS_FILE);
    assert.ok(existsSync(new URL('../fixtures/formats', import.meta.url)), 'fixtures beside the tests');
  });

  it("a helper's import.meta names the helper, so the root it derives is the package's", () => {
    assert.equal(PROCESSES_ROOT, ROOT);
    assert.ok(existsSync(join(ROOT, 'package.json')));
  });

  it('a module of src/ sees its compiled file when the build is fresh, its source otherwise', () => {
    const args = selfEntryArgs('cli/main');
    if (buildIsFresh()) assert.deepEqual(args, [join(ROOT, 'dist', 'cli', 'main.js')]);
    else assert.deepEqual(args.slice(-1), [join(ROOT, 'src', 'cli', 'main.ts')]);
    assert.equal(dirname(dirname(migrationsDir())), join(ROOT, 'src'));
  });

  it('a bundle and its test file name each other, in any run folder', () => {
    const run = join(TEST_BUNDLES, '4242');
    const bundle = bundleOf(THIS_FILE, run);
    assert.equal(bundle, join(run, 'test', 'cluster', 'test-bundles.test.mjs'));
    assert.equal(runOf(bundle), run);
    assert.equal(sourceOf(bundle), THIS_FILE);
    assert.equal(sourceOf(THIS_FILE), THIS_FILE, 'any other path as it is');
    assert.equal(runOf(THIS_FILE), undefined);
    assert.equal(runOf(join(TEST_BUNDLES, '4242')), undefined, 'a run folder itself is no bundle');
  });

  it('the scripts the tests start run from bundles of the same run, under npm test only', () => {
    const run = runOf();
    if (run) assert.equal(process.argv[1], bundleOf(THIS_FILE, run));
    else assert.equal(fileURLToPath(pathToFileURL(process.argv[1] ?? '')), THIS_FILE);
    for (const script of [BYZANTINE_SIGNER, ...SCRIPTS.map((s) => join(ROOT, s))]) {
      assert.ok(existsSync(script), script);
      const bundle = scriptBundle(script);
      if (run) assert.equal(bundle, bundleOf(script, run));
      else assert.equal(bundle, undefined);
    }
    assert.equal(scriptBundle(join(ROOT, 'test', 'helpers', 'no-such-script.ts')), undefined);
  });
});
