import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** Copies of the project's shared vector files, so a clone alone runs every vector test. */
export const VECTORS_DIR = join(here, '..', 'fixtures', 'vectors');
/** `../shared/vectors/` beside the project root, where the copies came from (absent in most clones). */
export const SHARED_VECTORS_DIR = join(here, '..', '..', '..', 'shared', 'vectors');

export function loadVector(name: string): any {
  return JSON.parse(readFileSync(join(VECTORS_DIR, name), 'utf8'));
}

export const sharedVectorsPresent = (): boolean => existsSync(SHARED_VECTORS_DIR);

/** An rng that returns the given byte strings in order (for reproducing vectors). */
export function scriptedRng(...chunks: Uint8Array[]): (len?: number) => Uint8Array {
  let i = 0;
  return (len?: number) => {
    const c = chunks[i++];
    if (!c) throw new Error('scripted rng exhausted');
    if (len !== undefined && len !== c.length)
      throw new Error(`scripted rng: asked ${len} bytes, have ${c.length}`);
    return Uint8Array.from(c);
  };
}
