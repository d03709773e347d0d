/** What both config loaders share: a JSON file, defaults under it, environment overrides over it. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FloeError } from '../protocol/errors.js';

export interface ConfigDraft {
  /** Defaults, then the file, then whatever `set` overrides. */
  merged: Record<string, unknown>;
  /** Set a key from the environment when the variable is present and non-empty. */
  set(key: string, value: unknown): void;
  /** Resolve a path relative to the config file's folder (or the working directory). */
  abs(path: string): string;
}

export function draftConfig(
  what: string,
  file: string | undefined,
  defaults: Record<string, unknown>,
): ConfigDraft {
  let fromFile: Record<string, unknown> = {};
  let base = process.cwd();
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'not valid JSON';
      throw new FloeError('invalid_request', `${what} config ${file}: ${why}`);
    }
    base = dirname(resolve(file));
  }
  const merged: Record<string, unknown> = { ...defaults, ...fromFile };
  return {
    merged,
    set(k, v) {
      if (v !== undefined && v !== '') merged[k] = v;
    },
    abs: (p) => resolve(base, p),
  };
}

/** Comma-separated list from an environment variable. */
export const envList = (v: string | undefined) =>
  v
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
