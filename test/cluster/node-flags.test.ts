import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inheritedNodeFlags } from '../../src/cluster/node-flags.js';
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
    const flags = inheritedNodeFlags();
    assert.deepEqual(args.slice(0, flags.length), flags);
    assert.match(args.at(-1)!, /cli[/\\]main\.(ts|js)$/);
    assert.ok(!flags.includes('--import'), 'no loader among the inherited flags');
  });
});
