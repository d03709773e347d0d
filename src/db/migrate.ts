/**
 * Schema migrations: numbered plain-SQL files `NNN_name.sql`, applied in order at start-up,
 * each in its own transaction, and recorded in `schema_migrations` with a checksum.
 *
 * Every file is idempotent (IF NOT EXISTS, CREATE OR REPLACE, guarded DO blocks), so running
 * one twice is harmless; still, an applied file is never run again, and an applied file whose
 * text changed is refused (write a new migration instead).
 *
 * Concurrency: the whole run holds a session-level advisory lock, so coordinators starting
 * together against one Postgres database migrate one after the other (the second finds
 * nothing to do).
 *
 * Where the files are: `tsc` copies no .sql files, so they stay in `src/db/migrations/` and are
 * read from there, under the package root, whether this module runs from `src/db/` (tsx),
 * `dist/db/` or the bundle (the package ships `src/`; ../config/package-root.ts).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageFolder } from '../config/package-root.js';
import type { AdminSession, Db } from './connection.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** SHA-256 (hex) of the file text with line endings normalized. */
  checksum: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: number;
}

const FILE_RE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** Advisory lock key for migrations (any constant works; this one spells "floemig1"). */
export const MIGRATION_LOCK_KEY = 0x666c6f656d696731n;

const BOOTSTRAP = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  checksum    TEXT NOT NULL,
  applied_at  BIGINT NOT NULL
)`;

/** The migrations folder (see the module comment). */
export function migrationsDir(moduleUrl: string = import.meta.url): string {
  const { found, candidates } = packageFolder(moduleUrl, 'migrations', ['db', 'migrations']);
  if (!found) throw new Error(`db: migrations folder not found (looked in ${candidates.join(', ')})`);
  return found;
}

export function loadMigrations(dir: string = migrationsDir()): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = FILE_RE.exec(file);
    if (!m) continue;
    const sql = readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n');
    const version = Number(m[1]);
    if (out.some((x) => x.version === version)) throw new Error(`db: two migrations numbered ${m[1]}`);
    out.push({ version, name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return out;
}

export interface MigrateOptions {
  migrations?: Migration[];
  /** Run every file again even if recorded (they are idempotent); for tests and repairs. */
  reapply?: boolean;
}

/** Applies pending migrations; returns those it ran. */
export async function migrate(db: Db, opts: MigrateOptions = {}): Promise<Migration[]> {
  const migrations = opts.migrations ?? loadMigrations();
  return db.adminSession(async (s) => {
    const key = MIGRATION_LOCK_KEY.toString();
    await s.query('SELECT pg_advisory_lock($1::bigint)', [key]);
    try {
      return await runLocked(s, migrations, opts.reapply === true);
    } finally {
      await s.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
    }
  });
}

async function runLocked(s: AdminSession, migrations: Migration[], reapply: boolean): Promise<Migration[]> {
  await s.exec(BOOTSTRAP);
  const applied = new Map((await appliedIn(s)).map((a) => [a.version, a]));
  const ran: Migration[] = [];
  for (const m of migrations) {
    const done = applied.get(m.version);
    if (done && done.checksum !== m.checksum) {
      throw new Error(
        `db: migration ${m.version} (${m.name}) changed after it was applied; add a new migration instead`,
      );
    }
    if (done && !reapply) continue;
    await s.exec('BEGIN');
    try {
      await s.exec(m.sql);
      if (!done) {
        await s.query(
          'INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)',
          [m.version, m.name, m.checksum, Date.now()],
        );
      }
      await s.exec('COMMIT');
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => {});
      throw new Error(`db: migration ${m.version} (${m.name}) failed: ${(e as Error).message}`, { cause: e });
    }
    ran.push(m);
  }
  return ran;
}

async function appliedIn(s: AdminSession): Promise<AppliedMigration[]> {
  const r = await s.query<{ version: number; name: string; checksum: string; applied_at: number }>(
    'SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version',
  );
  return r.rows.map((x) => ({
    version: x.version,
    name: x.name,
    checksum: x.checksum,
    appliedAt: Number(x.applied_at),
  }));
}

/** The recorded migrations. */
export function appliedMigrations(db: Db): Promise<AppliedMigration[]> {
  return db.adminSession(appliedIn);
}
