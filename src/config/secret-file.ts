/**
 * Small secret files a process owns (the coordinator's identity key and JWT secret; the
 * local cluster's admin token): created with mode 0600, and refused at start if group or
 * others can read them, as ssh does with private keys.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { FloeError } from '../protocol/errors.js';

export function readSecretFile(path: string, what: string): string {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FloeError('invalid_request', `${what} ${path} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new FloeError(
        'invalid_request',
        `${what} ${path} is accessible by group or others; chmod 600 it`,
      );
    }
  } finally {
    closeSync(fd);
  }
  return readFileSync(path, 'utf8').trim();
}

/** Writes a new secret file with mode 0600; refuses to overwrite. */
export function writeSecretFile(path: string, content: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${content}\n`);
  } finally {
    closeSync(fd);
  }
}

/** Read the file, or create it with `make()` on first use. */
export function loadOrCreateSecret(path: string, what: string, make: () => string): string {
  if (existsSync(path)) return readSecretFile(path, what);
  const v = make();
  writeSecretFile(path, v);
  return v;
}
