import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `../shared/vectors/` beside the project root. */
export const VECTORS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'shared',
  'vectors',
);
export function loadVector(name: string): any {
  return JSON.parse(readFileSync(join(VECTORS_DIR, name), 'utf8'));
}

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
