/**
 * The command line that runs this same `floe` CLI in a child process: the running Node
 * binary and the CLI entry next to this module, compiled (dist/cli/main.js) or TypeScript
 * (src/cli/main.ts, loaded through tsx), whichever this process itself runs from. So a
 * cluster started from a build runs built children, and one started from the sources (tests,
 * development) runs the same sources, never a stale build.
 */
import { fileURLToPath } from 'node:url';

export interface SelfCommand {
  command: string;
  /** Arguments before the floe subcommand. */
  args: string[];
}

export function floeSelfCommand(): SelfCommand {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = fileURLToPath(new URL('../cli/main.ts', here));
    // An absolute URL for tsx, so the child resolves it whatever its working directory.
    return { command: process.execPath, args: ['--import', import.meta.resolve('tsx'), entry] };
  }
  return { command: process.execPath, args: [fileURLToPath(new URL('../cli/main.js', here))] };
}
