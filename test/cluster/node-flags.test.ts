import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { clusterNodeFlags, parseEnvAssignments } from '../../bench/cluster.js';
import {
  DEFAULT_HEAP_FLAGS,
  inheritedNodeFlags,
  withDefaultHeapFlags,
} from '../../src/cluster/node-flags.js';
import { floeSelfCommand } from '../../src/cluster/self.js';

describe('the Node flags a supervised child inherits', () => {
  it('keeps heap and compiler flags, in order, with their values', () => {
    assert.deepEqual(
      inheritedNodeFlags([
        '--max-old-space-size=256',
        '--liftoff-only',
        '--stack-size',
        '2000',
        '--enable-source-maps',
      ]),
      ['--max-old-space-size=256', '--liftoff-only', '--stack-size', '2000', '--enable-source-maps'],
    );
  });

  it('drops module loaders, the inspector, the test runner and eval, with their separate values', () => {
    assert.deepEqual(
      inheritedNodeFlags([
        '--import',
        'tsx',
        '--liftoff-only',
        '--require=./hook.cjs',
        '-r',
        'dotenv/config',
        '--experimental-loader',
        './loader.mjs',
        '--inspect-brk=9229',
        '--inspect',
        '--test',
        '--test-reporter',
        'tap',
        '--test-concurrency=2',
        '--max-semi-space-size=4',
        '--watch',
        '--watch-path',
        './src',
        '--watch-preserve-output',
        '-e',
        'process.exit(1)',
      ]),
      ['--liftoff-only', '--max-semi-space-size=4'],
    );
  });

  it('nothing when the process was started without flags', () => {
    assert.deepEqual(inheritedNodeFlags([]), []);
  });

  it('the floe child command line carries this process’s flags before its entry', () => {
    const { command, args } = floeSelfCommand();
    assert.equal(command, process.execPath);
    const flags = withDefaultHeapFlags(inheritedNodeFlags());
    assert.deepEqual(args.slice(0, flags.length), flags);
    for (const d of DEFAULT_HEAP_FLAGS) {
      const name = d.split('=')[0]!;
      const set = [...inheritedNodeFlags(), ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((f) =>
        f.startsWith(name),
      );
      assert.ok(set || args.includes(d), `${d} on the child's command line`);
    }
    assert.match(args.at(-1)!, /cli[/\\]main\.(ts|js)$/);
    assert.ok(!flags.includes('--import'), 'no loader among the inherited flags');
  });

  it('each default heap limit is added unless the operator set that option', () => {
    assert.deepEqual(withDefaultHeapFlags([], ''), ['--max-semi-space-size=8', '--max-old-space-size=256']);
    assert.deepEqual(withDefaultHeapFlags(['--max-old-space-size=1024'], ''), [
      '--max-old-space-size=1024',
      '--max-semi-space-size=8',
    ]);
    // V8 takes underscores too, and a value as the next argument
    assert.deepEqual(withDefaultHeapFlags(['--max_old_space_size=1024', '--max-semi-space-size', '2'], ''), [
      '--max_old_space_size=1024',
      '--max-semi-space-size',
      '2',
    ]);
    // NODE_OPTIONS reaches the child too, and the command line would override it
    assert.deepEqual(
      withDefaultHeapFlags(['--enable-source-maps'], ' --max-semi-space-size=16  --no-warnings'),
      ['--enable-source-maps', '--max-old-space-size=256'],
    );
  });

  it('the bench runs its cluster with the same defaults, or none when told', () => {
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = '';
    try {
      assert.deepEqual(clusterNodeFlags(undefined), [...DEFAULT_HEAP_FLAGS]);
      assert.deepEqual(clusterNodeFlags('--max-old-space-size=512  --liftoff-only'), [
        '--max-old-space-size=512',
        '--liftoff-only',
        '--max-semi-space-size=8',
      ]);
      assert.deepEqual(clusterNodeFlags(' none '), []);
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });

  it("the bench's --env gives its processes NAME=VALUE, and refuses what the bench sets itself", () => {
    assert.deepEqual(parseEnvAssignments(['MALLOC_ARENA_MAX=2', 'GLIBC_TUNABLES=a=b:c=d', 'EMPTY=']), {
      MALLOC_ARENA_MAX: '2',
      GLIBC_TUNABLES: 'a=b:c=d',
      EMPTY: '',
    });
    assert.deepEqual(parseEnvAssignments([]), {});
    for (const bad of ['MALLOC_ARENA_MAX', '=2', '2X=1', 'A B=1'])
      assert.throws(() => parseEnvAssignments([bad]), /expected NAME=VALUE/, bad);
    for (const own of ['FLOE_LOG_LEVEL=debug', 'NODE_OPTIONS=--inspect', 'DATABASE_URL=postgres://x'])
      assert.throws(() => parseEnvAssignments([own]), /set by the bench itself/, own);
  });

  it('a child started with the defaults has the limited heap', () => {
    const limitMb = (flags: string[]) => {
      const r = spawnSync(
        process.execPath,
        [...flags, '-e', 'console.log(require("node:v8").getHeapStatistics().heap_size_limit)'],
        { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
      );
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout.trim()) / 2 ** 20;
    };
    const limited = limitMb(withDefaultHeapFlags([], ''));
    const raised = limitMb(withDefaultHeapFlags(['--max-old-space-size=1024'], ''));
    // old space plus the young generation's share (V8: 3 × the semi-space)
    assert.ok(limited >= 256 && limited <= 256 + 3 * 8 + 1, `heap limit ${limited} MB`);
    assert.ok(raised >= 1024 && raised <= 1024 + 3 * 8 + 1, `heap limit ${raised} MB`);
  });
});
