/**
 * The command line that runs this same `floe` CLI in a child process: the running Node
 * binary, the Node flags this process was started with and the default heap limits for those it
 * does not set (./node-flags.ts), and the CLI entry next to this module, bundled
 * (dist/bundle/cli/main.js, what bin/floe.js runs: scripts/bundle.mjs keeps every file of the
 * bundle one folder below its root, so `../cli/main.js` is the bundle's entry), compiled
 * (dist/cli/main.js) or TypeScript (src/cli/main.ts, loaded through tsx), whichever this process
 * itself runs from. So a cluster started from a build runs built children, one started from the
 * sources (tests, development) runs the same sources, never a stale build, every child has the
 * default heap limits, and `node --max-old-space-size=1024 bin/floe.js up` sets another.
 */
import { fileURLToPath } from 'node:url';
import { inheritedNodeFlags, withDefaultHeapFlags } from './node-flags.js';

export interface SelfCommand {
  command: string;
  /** Arguments before the floe subcommand. */
  args: string[];
}

export function floeSelfCommand(): SelfCommand {
  return {
    command: process.execPath,
    args: [...withDefaultHeapFlags(inheritedNodeFlags()), ...selfEntryArgs('cli/main')],
  };
}

/**
 * The arguments that load `<module>` of this package (e.g. `cli/main`) in a child: the
 * compiled file, or the TypeScript source through tsx (an absolute URL for tsx, so the child
 * resolves it whatever its working directory) when this module itself runs from the sources.
 */
export function selfEntryArgs(module: string, here: string = import.meta.url): string[] {
  if (here.endsWith('.ts')) {
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL(`../${module}.ts`, here))];
  }
  return [fileURLToPath(new URL(`../${module}.js`, here))];
}
