/**
 * A database for one test file (or test): PGlite in memory by default; when
 * FLOE_TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/test), a fresh
 * database `floe_test_<random>` on that server, dropped again by cleanup().
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type Db, openDb, PgliteDb } from '../../src/db/connection.js';

export const serverUrl = (): string | undefined => process.env.FLOE_TEST_DATABASE_URL || undefined;

export interface TestDb {
  db: Db;
  /** The server database's URL (Postgres only). */
  url?: string;
  cleanup(): Promise<void>;
}

// PGlite: the first database of a process is created and migrated from scratch (which the
// migration tests need anyway); later ones start from a dump of it, about three times faster.
let template: Promise<Blob | File> | undefined;

export async function testDb(opts: { migrate?: boolean } = {}): Promise<TestDb> {
  const url = serverUrl();
  if (url) return serverDb(url, opts);
  let db: Db;
  if (template && opts.migrate !== false) {
    db = await openDb({ pgliteLoadDataDir: await template });
  } else {
    db = await openDb({ migrate: opts.migrate ?? true });
    if (!template && opts.migrate !== false && db instanceof PgliteDb) {
      template = db.dump();
      await template;
    }
  }
  return { db, cleanup: () => db.close() };
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
