/**
 * A database for one test file (or test): PGlite in memory by default; when
 * FLOE_TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/test), a fresh
 * database `floe_test_<random>` on that server, dropped again by cleanup().
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Db, openDb, PgliteDb } from '../../src/db/connection.js';

export const serverUrl = (): string | undefined => process.env.FLOE_TEST_DATABASE_URL || undefined;

export interface TestDb {
  db: Db;
  /** The server database's URL (Postgres only). */
  url?: string;
  cleanup(): Promise<void>;
}

// PGlite: the first database of a process is a new data directory in a temporary directory,
// migrated from scratch (which the migration tests need anyway): a copy of the pristine initdb
// result PGlite keeps (src/db/pglite-datadir.ts), so about 2 s instead of 6. Later ones start
// in memory from a dump of it.
let template: Promise<Blob | File> | undefined;

export async function testDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const url = serverUrl();
  if (url) return serverDb(url, opts);
  if (template && opts.migrate !== false) {
    const db = await openDb({ pgliteLoadDataDir: await template });
    return { db, cleanup: () => db.close() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'floe-testdb-'));
  let db: Db;
  try {
    db = await openDb({ dataDir: dir, migrate: opts.migrate ?? true });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  if (!template && opts.migrate !== false && db instanceof PgliteDb) {
    template = db.dump();
    await template;
  }
  return {
    db,
    async cleanup() {
      try {
        await db.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const u = new URL(url);
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function serverDb(url: string, opts: { migrate?: boolean }): Promise<TestDb> {
  const name = `floe_test_${randomBytes(6).toString('hex')}`;
  await admin(url, (c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(url);
  u.pathname = `/${name}`;
  const dbUrl = u.toString();
  let db: Db;
  try {
    db = await openDb({ url: dbUrl, poolSize: 5, migrate: opts.migrate ?? true });
  } catch (e) {
    await admin(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    throw e;
  }
  return {
    db,
    url: dbUrl,
    async cleanup() {
      await db.close();
      await admin(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * A fresh empty database on the test server for a whole coordinator (which migrates it
 * itself), or undefined when no server is configured (the coordinator then uses PGlite).
 */
export async function freshServerDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const url = serverUrl();
  if (!url) return undefined;
  const name = `floe_test_${randomBytes(6).toString('hex')}`;
  await admin(url, (c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: () => admin(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
}
