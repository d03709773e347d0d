/**
 * The test files `npm test` runs, in the order it starts them: the slowest first (the suites
 * that took 13 s or more of a two-core run), then the rest alphabetically. The runner starts
 * files in the order given, two at a time (--test-concurrency=2); a long file started late
 * leaves one core idle while it finishes, so the long ones go first and the many short ones
 * fill in behind them. On a slow two-core machine the suite took 601 s in this order against
 * 654 s alphabetically (docs/performance.md, "Thirteenth session"). A file missing from the
 * list only starts later; one listed that no longer exists is left out.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const SLOWEST = [
  'test/chaos/chaos.test.ts',
  'test/e2e/drill.test.ts',
  'test/e2e/cli-friction.test.ts',
  'test/e2e/up.test.ts',
  'test/e2e/cli.test.ts',
  'test/e2e/backup.test.ts',
  'test/fuzz/api.test.ts',
  'test/e2e/dashboard.test.ts',
  'test/e2e/up-3of5.test.ts',
  'test/nostr/bunker-cluster.test.ts',
  'test/coordinator/psbt.test.ts',
  'test/coordinator/publish.test.ts',
  'test/e2e/address-service.test.ts',
  'test/bench/sql-timings.test.ts',
  'test/coordinator/webhooks.test.ts',
  'test/signer/process.test.ts',
  'test/cli/nostr-post.test.ts',
  'test/coordinator/faults.test.ts',
];

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

const all = testFiles(join(ROOT, 'test'))
  .map((f) => relative(ROOT, f))
  .sort();
const present = new Set(all);
const first = SLOWEST.filter((f) => present.has(f));
const rest = all.filter((f) => !first.includes(f));
process.stdout.write(`${[...first, ...rest].join('\n')}\n`);
