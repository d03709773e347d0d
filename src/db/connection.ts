/**
 * One interface over the two database drivers: embedded PGlite (default; file-backed under the
 * data directory, or in memory for tests) and a Postgres server (`pg` pool, when a URL is
 * given).
 *
 * Every service query runs inside a transaction as the role `floe_app` (SET LOCAL ROLE), with
 * the tenant in the transaction-local setting `floe.tenant_id`. floe_app is not a superuser and
 * has no BYPASSRLS, so row-level security confines each transaction to its tenant whatever
 * SQL it runs; with no tenant, no tenant row is visible. `adminQuery`/`adminSession` run as the
 * connecting role (migrations, tests, operator tooling) and are not for request handling.
 *
 * SET LOCAL ROLE guards against query bugs, not against arbitrary SQL: Postgres checks SET ROLE
 * against the session user, so when the service connects as a superuser (the simple setup, and
 * always on PGlite) SQL run inside a transaction could RESET ROLE. For a hard boundary, connect
 * as a login role that is only a member of floe_app and migrate through `migrateUrl`.
 *
 * The service's statements are prepared statements on both drivers (src/db/pglite-query.ts,
 * src/db/pg-prepared.ts); admin work runs them unnamed.
 *
 * PGlite has a single connection: all work on it is serialized through a queue, so concurrent
 * `transaction()` calls run one after the other and never interleave statements. On both
 * drivers a transaction may not open another one (or an admin session) from inside itself: on
 * PGlite that would wait for itself forever, so it throws at once, everywhere.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { migrate } from './migrate.js';
import { isStalePrepared, PreparedNames } from './pg-prepared.js';
import { createPgliteDataDir } from './pglite-datadir.js';
import { PgliteStatements } from './pglite-query.js';

/** The role every service query runs as (created by migration 001). */
export const SERVICE_ROLE = 'floe_app';

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** Anything that can run one parameterized statement. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
}

/** A transaction running as floe_app; `tenantId` is the tenant RLS confines it to (or null). */
export interface Tx extends Queryable {
  readonly tenantId: string | null;
}

/** A dedicated connection as the connecting role; `exec` runs several statements without parameters. */
export interface AdminSession extends Queryable {
  exec(sql: string): Promise<void>;
}

export interface TransactionOptions {
  /** Tenant for row-level security; omit for no tenant (only tenant-less tables are visible). */
  tenantId?: string;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * BEGIN; SET LOCAL ROLE floe_app; set the tenant; fn; COMMIT (ROLLBACK if fn throws). On the
   * Postgres server fn runs a second time, once, when the server refused a prepared statement
   * of the first run's connection as stale (src/db/pg-prepared.ts): the first run's work is
   * rolled back and the second runs on a fresh connection. So fn does database work only.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * Runs fn inside a transaction (as floe_app, no tenant) only if `pg_try_advisory_xact_lock(key)`
   * succeeds; returns undefined without running fn otherwise. The lock ends with the transaction.
   */
  withAdvisoryLock<T>(key: bigint | number, fn: (tx: Tx) => Promise<T>): Promise<T | undefined>;
  /**
   * Runs fn (which may open its own transactions) only if this process wins the session-level
   * advisory lock `key`; `{ ran: false }` otherwise. For jobs that span several transactions.
   * On Postgres the lock is held on a dedicated connection; PGlite is single-process, so there
   * it is an in-process lock.
   */
  withSessionLock<T>(
    key: bigint | number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;
  /** One statement as the connecting role (no RLS if that role is a superuser). Not for request handling. */
  adminQuery<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /** A dedicated connection as the connecting role for the duration of fn (migrations). */
  adminSession<T>(fn: (s: AdminSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  /** postgres://… selects a Postgres server; otherwise PGlite. */
  url?: string;
  /** PGlite data lives in `${dataDir}/pgdata`; in memory when undefined. Ignored with `url`. */
  dataDir?: string;
  /** Apply pending migrations at open (default true). */
  migrate?: boolean;
  /**
   * Postgres only: run the migrations through this URL (a role that owns the schema) and serve
   * through `url`. Lets the service connect as a login role that is only a member of floe_app,
   * so that not even raw SQL can leave the role (see the module comment).
   */
  migrateUrl?: string;
  /** Postgres pool size (default 10). */
  poolSize?: number;
  /** PGlite only: start from this dump (`dumpDataDir()`), e.g. a migrated template in tests. */
  pgliteLoadDataDir?: Blob | File;
  /**
   * PGlite only: Postgres settings passed at start (`-c name=value`) over PGLITE_SETTINGS;
   * memory settings, mostly. Not for durability settings (see PGLITE_SETTINGS).
   */
  pgliteSettings?: Record<string, string>;
  /** Errors of idle pooled Postgres connections (the pool drops them); ignored by default. */
  onIdleError?: (e: Error) => void;
}

/** A stable signed 64-bit advisory-lock key for a name (first 8 bytes of its SHA-256). */
export function advisoryKey(name: string): bigint {
  return createHash('sha256').update(name).digest().readBigInt64BE(0);
}

export async function openDb(opts: OpenDbOptions = {}): Promise<Db> {
  for (const u of [opts.url, opts.migrateUrl]) {
    if (u && !/^postgres(ql)?:\/\//.test(u))
      throw new Error('db: a database URL must start with postgres://');
  }
  if (opts.migrateUrl && opts.url && opts.migrate !== false) {
    const owner = openPostgres(opts.migrateUrl, { ...opts, poolSize: 1 });
    try {
      await migrate(owner);
    } finally {
      await owner.close();
    }
    return openPostgres(opts.url, opts);
  }
  const db = opts.url ? openPostgres(opts.url, opts) : await openPglite(opts);
  if (opts.migrate !== false) {
    try {
      await migrate(db);
    } catch (e) {
      await db.close().catch(() => {});
      throw e;
    }
  }
  return db;
}

// ---------------------------------------------------------------------------------------------

interface Conn {
  query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  exec(sql: string): Promise<void>;
  /** The connection is in an unknown state and must not be reused. */
  broken(): void;
  /**
   * The server's refusal of one of this connection's prepared statements as stale (another
   * process changed the schema: src/db/pg-prepared.ts), if there was one: the transaction's
   * work is lost and it can run again on a fresh connection.
   */
  staleError(): unknown;
}

/** A transaction to run again on a fresh connection; `error` is what the server said. */
class RunAgain {
  constructor(readonly error: unknown) {}
}

/** What a connection is taken for: a service transaction, or admin work. */
type ConnUse = 'service' | 'admin';

function lockParam(key: bigint | number): string {
  if (typeof key === 'number' && !Number.isSafeInteger(key))
    throw new RangeError('advisory lock key: not an integer');
  return BigInt.asIntN(64, BigInt(key)).toString();
}

/** Tenant ids that are safe to inline in SQL as they are (no quote, backslash or NUL can occur). */
const PLAIN_TENANT = /^[A-Za-z0-9_.:-]{1,128}$/;

class TxHandle implements Tx {
  private open = true;
  constructor(
    private readonly conn: Conn,
    readonly tenantId: string | null,
  ) {}
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    if (!this.open) return Promise.reject(new Error('db: transaction already ended'));
    return this.conn.query<T>(sql, params);
  }
  end(): void {
    this.open = false;
  }
}

abstract class BaseDb implements Db {
  abstract readonly kind: 'pglite' | 'postgres';
  private readonly inside = new AsyncLocalStorage<true>();
  protected closed = false;

  /**
   * Exclusive use of one connection for the duration of fn: for a service transaction, or for
   * admin work (which may change the schema).
   */
  protected abstract acquire<T>(fn: (c: Conn) => Promise<T>, use: ConnUse): Promise<T>;
  protected abstract shutdown(): Promise<void>;

  private withConn<T>(fn: (c: Conn) => Promise<T>, use: ConnUse): Promise<T> {
    if (this.closed) return Promise.reject(new Error('db: closed'));
    if (this.inside.getStore()) {
      return Promise.reject(
        new Error('db: a transaction or admin session was opened inside another; use the one you were given'),
      );
    }
    return this.acquire((c) => this.inside.run(true, () => fn(c)), use);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const tenantId = opts.tenantId ?? null;
    if (tenantId !== null && (typeof tenantId !== 'string' || tenantId.length === 0)) {
      return Promise.reject(new TypeError('db: tenantId must be a non-empty string'));
    }
    const unwrap = (e: unknown) => {
      throw e instanceof RunAgain ? e.error : e;
    };
    return this.run(fn, tenantId).catch((e) => {
      if (!(e instanceof RunAgain)) throw e;
      return this.run(fn, tenantId).catch(unwrap);
    });
  }

  private run<T>(fn: (tx: Tx) => Promise<T>, tenantId: string | null): Promise<T> {
    // One round trip opens the transaction, drops to the service role and sets the tenant (inlined
    // only when it is a plain identifier; anything else goes as a bound parameter). SET LOCAL is
    // set_config(…, true) without a query to plan and a row to send back.
    const inline = tenantId !== null && PLAIN_TENANT.test(tenantId);
    const prologue = [
      'BEGIN',
      `SET LOCAL ROLE ${SERVICE_ROLE}`,
      ...(inline ? [`SET LOCAL floe.tenant_id = '${tenantId}'`] : []),
    ].join('; ');
    return this.withConn(async (c) => {
      const tx = new TxHandle(c, tenantId);
      try {
        await c.exec(prologue);
        if (tenantId !== null && !inline)
          await c.query(`SELECT set_config('floe.tenant_id', $1, true)`, [tenantId]);
        const result = await fn(tx);
        tx.end();
        // (fn may have caught the refusal: the transaction is aborted all the same.)
        if (c.staleError() !== undefined) throw c.staleError();
        await c.exec('COMMIT');
        return result;
      } catch (e) {
        tx.end();
        try {
          await c.exec('ROLLBACK');
        } catch {
          c.broken();
        }
        const stale = c.staleError();
        throw stale === undefined ? e : new RunAgain(stale);
      }
    }, 'service');
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    return this.transaction((tx) => tx.query<T>(sql, params));
  }

  withAdvisoryLock<T>(key: bigint | number, fn: (tx: Tx) => Promise<T>): Promise<T | undefined> {
    const k = lockParam(key);
    return this.transaction(async (tx) => {
      const r = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS ok', [k]);
      if (!r.rows[0]?.ok) return undefined;
      return fn(tx);
    });
  }

  abstract withSessionLock<T>(
    key: bigint | number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;

  adminQuery<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    return this.withConn((c) => c.query<T>(sql, params), 'admin');
  }

  adminSession<T>(fn: (s: AdminSession) => Promise<T>): Promise<T> {
    return this.withConn(
      (c) => fn({ query: (sql, params) => c.query(sql, params), exec: (sql) => c.exec(sql) }),
      'admin',
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// PGlite

/** FIFO mutex: run() calls execute one at a time in call order. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
  drain(): Promise<unknown> {
    return this.tail;
  }
}

export class PgliteDb extends BaseDb {
  readonly kind = 'pglite' as const;
  private readonly queue = new Queue();
  private readonly heldLocks = new Set<string>();
  private readonly statements: PgliteStatements;

  constructor(
    private readonly pg: PGlite,
    private readonly release: () => void = () => {},
  ) {
    super();
    this.statements = new PgliteStatements(pg);
  }

  protected acquire<T>(fn: (c: Conn) => Promise<T>, use: ConnUse): Promise<T> {
    const pgl = this.pg;
    const statements = this.statements;
    if (use === 'service') {
      const conn: Conn = {
        query: (sql, params) => statements.query(sql, params),
        exec: (sql: string) => statements.exec(sql),
        broken() {},
        staleError: () => undefined,
      };
      return this.queue.run(() => fn(conn));
    }
    // Admin work may change the schema: the service's statements are prepared again afterwards.
    const conn: Conn = {
      async query<R>(sql: string, params?: readonly unknown[]) {
        const r = await pgl.query<R>(sql, params ? [...params] : undefined);
        return { rows: r.rows, rowCount: r.affectedRows || r.rows.length };
      },
      async exec(sql: string) {
        await pgl.exec(sql);
      },
      broken() {},
      staleError: () => undefined,
    };
    return this.queue.run(async () => {
      try {
        return await fn(conn);
      } finally {
        // (The map is emptied first: a failed DEALLOCATE leaves only unused names behind.)
        await statements.deallocate().catch(() => {});
      }
    });
  }

  async withSessionLock<T>(
    key: bigint | number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    // A PGlite data directory is only ever open in one process, so an in-process lock is the
    // whole story.
    const k = lockParam(key);
    if (this.heldLocks.has(k)) return { ran: false };
    this.heldLocks.add(k);
    try {
      return { ran: true, value: await fn() };
    } finally {
      this.heldLocks.delete(k);
    }
  }

  /** A tarball of the database (for templates in tests and for backups). */
  dump(): Promise<Blob | File> {
    return this.queue.run(() => this.pg.dumpDataDir('none'));
  }

  protected async shutdown(): Promise<void> {
    await this.queue.drain();
    try {
      await this.pg.close();
    } finally {
      this.release();
    }
  }
}

const openDirs = new Set<string>();

/**
 * A PGlite data directory must be open in one place only (two writers corrupt it): a lock file
 * with the owner's pid guards it across processes, a set within this one. A lock left by a dead
 * process is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lock = `${dataDir}.lock`;
  if (openDirs.has(dataDir)) throw new Error(`db: ${dataDir} is already open in this process`);
  let owner = 0;
  try {
    owner = Number.parseInt(readFileSync(lock, 'utf8'), 10);
  } catch {
    // no lock file
  }
  if (owner > 0 && owner !== process.pid && processAlive(owner)) {
    throw new Error(`db: ${dataDir} is in use by process ${owner} (remove ${lock} if that is wrong)`);
  }
  writeFileSync(lock, String(process.pid));
  openDirs.add(dataDir);
  return () => {
    openDirs.delete(dataDir);
    rmSync(lock, { force: true });
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Memory settings of the embedded Postgres. PGlite runs Postgres inside one WebAssembly memory
 * in this process, and a WebAssembly memory never shrinks: whatever Postgres touches once stays
 * resident. initdb's default of 128 MB shared buffers (zeroed at start, so resident at once) was
 * the largest part of a coordinator's memory. A coordinator's working set (recent sessions,
 * keys, signers, tokens) fits in 16 MB; pages beyond it come from the OS page cache through a
 * read() (random primary-key reads and writes over 100,000 wide rows: about 5 % slower than
 * with 128 MB). wal_buffers follows (1/32 of shared_buffers: 512 kB).
 *
 * default_statistics_target 10 (Postgres's default is 100): ANALYZE (src/db/maintenance.ts)
 * reads a sample of 300 × the target rows, whole, into memory. With 100 that is 30,000 rows of
 * signing_sessions (about 2 kB each), so the memory Postgres has touched inside PGlite, which
 * stays resident, rose by about 2 kB per session served until the table held 30,000 sessions
 * (measured: +60 MB, bench/session-store.ts; a 10-minute soak at 50 signatures/s failed on it).
 * With 10 the sample is 3,000 rows: reached within the first minute of load, about 6 MB. The
 * planner's questions here (one tenant's rows by status, a key's sessions, ranges of time) are
 * answered as well by ten histogram buckets and ten most common values as by a hundred.
 *
 * Nothing here touches durability: PGlite's own start parameters (PGlite.defaultStartParams)
 * are kept as they are.
 */
export const PGLITE_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '16MB',
  default_statistics_target: '10',
};

async function openPglite(opts: OpenDbOptions): Promise<PgliteDb> {
  let dataDir: string | undefined;
  let release = () => {};
  if (opts.dataDir !== undefined) {
    dataDir = join(opts.dataDir, 'pgdata');
    mkdirSync(opts.dataDir, { recursive: true });
    release = lockDataDir(dataDir);
  }
  try {
    if (dataDir !== undefined && !opts.pgliteLoadDataDir && !existsSync(join(dataDir, 'PG_VERSION'))) {
      await createPgliteDataDir(dataDir);
    }
    const settings = { ...PGLITE_SETTINGS, ...opts.pgliteSettings };
    const pgl = await PGlite.create({
      ...(dataDir !== undefined ? { dataDir } : {}),
      ...(opts.pgliteLoadDataDir ? { loadDataDir: opts.pgliteLoadDataDir } : {}),
      startParams: [
        ...PGlite.defaultStartParams,
        ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
    });
    return new PgliteDb(pgl, release);
  } catch (e) {
    release();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Postgres server

// BIGINT columns hold Unix milliseconds and row ids: numbers, as on PGlite (pg's default is strings).
const parseInt8 = (v: string): number | bigint => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : BigInt(v);
};

export class PostgresDb extends BaseDb {
  readonly kind = 'postgres' as const;
  /** The service's statements are prepared statements (src/db/pg-prepared.ts). */
  private readonly names = new PreparedNames();
  /** Bumped when a prepared statement went stale: older connections are dropped. */
  private generation = 0;
  private readonly born = new WeakMap<pg.PoolClient, number>();

  constructor(private readonly pool: pg.Pool) {
    super();
  }

  /** A pooled connection whose prepared statements (if any) are not from before a staleness. */
  private async connect(): Promise<pg.PoolClient> {
    for (;;) {
      const client = await this.pool.connect();
      const born = this.born.get(client);
      if (born === undefined) this.born.set(client, this.generation);
      else if (born < this.generation) {
        client.release(new Error('db: prepared statements gone stale'));
        continue;
      }
      return client;
    }
  }

  protected async acquire<T>(fn: (c: Conn) => Promise<T>, use: ConnUse): Promise<T> {
    const client = await this.connect();
    // Admin work (migrations, operator tooling) runs unnamed statements.
    const names = use === 'service' ? this.names : undefined;
    let broken = false;
    let stale: unknown;
    const conn: Conn = {
      query: async <R>(sql: string, params?: readonly unknown[]) => {
        const name = names?.nameOf(sql);
        const values = params ? [...params] : undefined;
        try {
          const r = await client.query(name ? { name, text: sql, values } : { text: sql, values });
          return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
        } catch (e) {
          if (name !== undefined && isStalePrepared(e)) {
            // The first to find it in its generation starts a new one.
            if (stale === undefined && this.born.get(client) === this.generation) this.generation++;
            stale ??= e;
            broken = true;
          }
          throw e;
        }
      },
      async exec(sql: string) {
        await client.query(sql);
      },
      broken() {
        broken = true;
      },
      staleError: () => stale,
    };
    try {
      return await fn(conn);
    } finally {
      client.release(broken ? new Error('db: connection left in an unknown state') : undefined);
    }
  }

  async withSessionLock<T>(
    key: bigint | number,
    fn: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    const k = lockParam(key);
    const client = await this.pool.connect();
    let broken = false;
    try {
      const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [k]);
      if (!r.rows[0]?.ok) return { ran: false };
      try {
        return { ran: true, value: await fn() };
      } finally {
        try {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [k]);
        } catch {
          broken = true; // dropping the connection releases the lock
        }
      }
    } finally {
      client.release(broken ? new Error('db: advisory unlock failed') : undefined);
    }
  }

  protected async shutdown(): Promise<void> {
    await this.pool.end();
  }
}

function openPostgres(url: string, opts: OpenDbOptions): PostgresDb {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    application_name: 'floe',
    types: {
      getTypeParser: ((oid: number, format?: string) =>
        oid === 20 && format !== 'binary'
          ? parseInt8
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  pool.on('error', (e) => opts.onIdleError?.(e));
  return new PostgresDb(pool);
}
