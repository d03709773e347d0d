#!/usr/bin/env node
// Runs the bundled CLI (dist/bundle/, scripts/bundle.mjs: it starts on about half the CPU of
// the compiled modules), else the compiled CLI (npm install builds both); from a source checkout
// without a build, falls back to the TypeScript sources through tsx.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundled = join(root, 'dist', 'bundle', 'cli', 'main.js');
const built = join(root, 'dist', 'cli', 'main.js');
let mod;
if (existsSync(bundled)) {
  mod = await import(pathToFileURL(bundled).href);
} else if (existsSync(built)) {
  mod = await import(pathToFileURL(built).href);
} else {
  await import('tsx/esm');
  mod = await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
}
await mod.buildProgram().parseAsync(process.argv).catch(mod.fail);
