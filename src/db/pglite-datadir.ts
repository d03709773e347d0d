/**
 * A new PGlite data directory. PGlite creates one by running initdb inside its WebAssembly
 * Postgres, which takes 5–6 s of CPU and leaves some 400–500 MB behind in the process that ran
 * it. So it runs in a short-lived child process (the memory leaves with it), and its pristine
 * result is kept once per PGlite version in `node_modules/.cache/floe/`: every later data
 * directory of that version is a copy of it (about 50 ms instead of 6 s). A fresh initdb of one
 * version is the same directory every time, so the copy is what the child would have made; it
 * holds no data of any installation (migrations run on the copy, as on a fresh one). The cache
 * lives beside the code that runs it and is written owner-only (directories 0700, files 0600;
 * PGlite itself writes its files 0666): a copy whose owner is not this process's user, or that
 * group or others could write, is not used, since what it holds becomes the new database. When
 * it cannot be written (a read-only install), every data directory is made by the child.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PGLITE = '@electric-sql/pglite';

/** Create the PGlite data directory `dataDir` (which must not hold one yet). */
export async function createPgliteDataDir(dataDir: string): Promise<void> {
  const cache = pristineDir();
  if (cache && existsSync(join(cache, 'PG_VERSION'))) {
    if (ownedAndPrivate(cache)) {
      try {
        cpSync(cache, dataDir, { recursive: true });
        return;
      } catch {
        rmSync(dataDir, { recursive: true, force: true }); // a partial copy: make it afresh
      }
    } else {
      discard(cache);
    }
  }
  await initdbInChild(dataDir);
  if (cache) keepPrivateCopy(dataDir, cache);
}

/** `node_modules/.cache/floe/pglite-<version>`, or undefined when PGlite's install is not found. */
export function pristineDir(): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(PGLITE)));
    while (basename(dir) !== 'node_modules') {
      const up = dirname(dir);
      if (up === dir) return undefined;
      dir = up;
    }
    const pkg = JSON.parse(readFileSync(join(dir, PGLITE, 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pkg.version !== 'string' || !/^[0-9A-Za-z.+-]+$/.test(pkg.version)) return undefined;
    return join(dir, '.cache', 'floe', `pglite-${pkg.version}`);
  } catch {
    return undefined;
  }
}

/**
 * Copy a data directory (here: just created, never opened) to `cache`, owner-only: to a
 * temporary name, then renamed into place, so a reader sees a whole directory or none. Another
 * process may win the race; its copy is as good. Any failure leaves `cache` as it was; returns
 * whether `cache` now holds a copy.
 */
export function keepPrivateCopy(dataDir: string, cache: string): boolean {
  const tmp = `${cache}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(dirname(cache), { recursive: true });
    cpSync(dataDir, tmp, { recursive: true });
    makePrivate(tmp);
    renameSync(tmp, cache);
  } catch {
    rmSync(tmp, { recursive: true, force: true });
  }
  return existsSync(join(cache, 'PG_VERSION'));
}

/**
 * Move a copy that is not to be trusted out of the way (a rename, so a process copying from it
 * fails loudly instead of copying half of it), then remove it. Failures leave it: it is then
 * never used, and every data directory is made by the child.
 */
function discard(cache: string): void {
  const away = `${cache}.discarded-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(cache, away);
    rmSync(away, { recursive: true, force: true });
  } catch {
    // not ours to remove
  }
}

/** Directories 0700 and files 0600, all the way down. */
export function makePrivate(path: string): void {
  const st = lstatSync(path);
  if (st.isDirectory()) {
    chmodSync(path, 0o700);
    for (const e of readdirSync(path)) makePrivate(join(path, e));
  } else if (st.isFile()) {
    chmodSync(path, 0o600);
  }
}

/** Every entry owned by this process's user, none a link, none open to group or others. */
export function ownedAndPrivate(path: string): boolean {
  const uid = process.getuid?.();
  const st = lstatSync(path);
  if (uid !== undefined && st.uid !== uid) return false;
  if (st.isSymbolicLink() || (st.mode & 0o077) !== 0) return false;
  return !st.isDirectory() || readdirSync(path).every((e) => ownedAndPrivate(join(path, e)));
}

async function initdbInChild(dataDir: string): Promise<void> {
  const url = import.meta.resolve(PGLITE);
  const script = `const { PGlite } = await import(${JSON.stringify(url)});
const pg = await PGlite.create({ dataDir: process.argv[1] });
await pg.close();`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no loaders or hooks in the child
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dataDir], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 10_000) stderr += d.toString();
  });
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  if (exitCode !== 0)
    throw new Error(`db: creating the PGlite data directory ${dataDir} failed (exit ${exitCode}): ${stderr}`);
}
