/**
 * A local Floe cluster for benchmarks and the chaos tool: a coordinator and signer nodes, each
 * a real child process (`node --import tsx src/cli/main.ts coordinator|signer`), on loopback.
 *
 * Unlike test/helpers/cluster.ts it gives the coordinator a config file (rate limits, session
 * TTL, round timeouts), picks the database per cluster (embedded PGlite in the coordinator's
 * data dir, or a fresh database on a Postgres server, dropped at close), and can stop the
 * coordinator cleanly so that the bench can open its PGlite directory itself.
 * Restarts keep every port, as a real deployment's would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { coordinatorIdentity } from '../src/coordinator/node.js';
import { type Db, openDb } from '../src/db/connection.js';
import { FAULTS_ENV } from '../test/helpers/byzantine-signer.js';
import { createKey, registerSigners } from '../test/helpers/cluster-api.js';
import { request } from '../test/helpers/http.js';
import {
  BYZANTINE_SIGNER,
  type SignerProcess,
  type Spawned,
  signerIdentities,
  spawnFloe,
  spawnScript,
} from '../test/helpers/processes.js';

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

export type DatabaseChoice = { kind: 'pglite' } | { kind: 'postgres'; serverUrl: string };

export interface BenchClusterOptions {
  signers: number;
  database: DatabaseChoice;
  /** Byzantine faults per signer index (0-based), comma separated (test/helpers/byzantine-signer.ts). */
  faults?: Record<number, string>;
  /** Coordinator config file entries (merged over the bench defaults below). */
  coordinatorConfig?: Record<string, unknown>;
  logLevel?: string;
  /**
   * Write a CPU profile of every coordinator and signer process to DIR/coordinator and
   * DIR/signers when it exits (bench/profile-hook.mjs; stop the processes with SIGTERM).
   */
  profileDir?: string;
}

/** Defaults that keep the bench measuring the service rather than its rate limiter. */
export const BENCH_COORDINATOR_CONFIG = {
  rate_limit_per_s: 100_000,
  rate_limit_burst: 100_000,
  round_timeout_ms: 5000,
  resume_after_ms: 2000,
  job_interval_ms: 1000,
};

const PASSPHRASE = 'bench cluster passphrase';
const HERE = dirname(fileURLToPath(import.meta.url));

// Children of this process: killed when it exits, however it exits.
const children = new Set<Spawned>();
let exitHooked = false;
function track<T extends Spawned>(s: T): T {
  children.add(s);
  s.exited.then(() => children.delete(s));
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const c of children) c.proc.kill('SIGKILL');
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        for (const c of children) c.proc.kill('SIGKILL');
        process.exit(130);
      });
    }
  }
  return s;
}

export interface BenchCluster {
  dir: string;
  url: string;
  adminToken: string;
  database: 'pglite' | 'postgres';
  /** The coordinator's Postgres database (postgres only). */
  databaseUrl?: string;
  coordinatorDataDir: string;
  signerDirs: string[];
  signers: SignerProcess[];
  coordinator: Spawned | undefined;
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResult<T>>;
  registerSigners(): Promise<string[]>;
  createKey(threshold: number, signerIds?: string[]): Promise<any>;
  killSigner(i: number): Promise<void>;
  startSigner(i: number): Promise<SignerProcess>;
  killCoordinator(): Promise<void>;
  /** SIGTERM and wait: the coordinator closes its database cleanly. */
  stopCoordinator(): Promise<void>;
  startCoordinator(): Promise<void>;
  /** SIGTERM every signer (SIGKILL after 15 s) and wait: their SQLite stores close cleanly. */
  stopSigners(): Promise<void>;
  /** The coordinator's database as the connecting role. PGlite: only while the coordinator is stopped. */
  openDatabase(): Promise<Db>;
  close(): Promise<void>;
}

/** A Postgres server answers at this URL (2 s connect timeout). */
export async function postgresReachable(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

async function onServer<T>(serverUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function startBenchCluster(o: BenchClusterOptions): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'floe-bench-'));
  const cdir = join(dir, 'coordinator');
  const { identityPub } = coordinatorIdentity(cdir);
  const signerDirs = Array.from({ length: o.signers }, (_, i) => join(dir, `signer-${i + 1}`));

  let databaseUrl: string | undefined;
  let dbName: string | undefined;
  if (o.database.kind === 'postgres') {
    dbName = `floe_bench_${randomBytes(6).toString('hex')}`;
    await onServer(o.database.serverUrl, (c) => c.query(`CREATE DATABASE ${dbName}`));
    const u = new URL(o.database.serverUrl);
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  }

  const profileEnv = (role: string): Record<string, string> =>
    o.profileDir
      ? {
          NODE_OPTIONS: `--import ${pathToFileURL(join(HERE, 'profile-hook.mjs')).href}`,
          FLOE_BENCH_PROFILE_DIR: join(resolve(o.profileDir), role),
        }
      : {};
  const configFile = join(dir, 'coordinator.json');
  writeFileSync(configFile, JSON.stringify({ ...BENCH_COORDINATOR_CONFIG, ...o.coordinatorConfig }, null, 2));
  const tokenFile = join(dir, 'admin.token');
  let listen = '127.0.0.1:0';
  const coordinatorEnv = () => ({
    FLOE_COORDINATOR_DATA_DIR: cdir,
    FLOE_COORDINATOR_LISTEN: listen,
    FLOE_ADMIN_TOKEN_FILE: tokenFile,
    FLOE_LOG_LEVEL: o.logLevel ?? 'error',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...profileEnv('coordinator'),
  });

  const signerListen: (string | undefined)[] = [];
  const peers = await signerIdentities(signerDirs, PASSPHRASE);
  const spawnSigner = async (i: number): Promise<SignerProcess> => {
    const env = {
      FLOE_SIGNER_DATA_DIR: signerDirs[i]!,
      FLOE_SIGNER_LISTEN: signerListen[i] ?? '127.0.0.1:0',
      FLOE_SIGNER_COORDINATORS: identityPub,
      FLOE_SIGNER_PASSPHRASE: PASSPHRASE,
      FLOE_SIGNER_PEERS: peers.join(','),
      FLOE_LOG_LEVEL: o.logLevel ?? 'error',
      ...profileEnv('signers'),
    };
    // A byzantine signer is the test harness's wrapper around the real one (test/helpers/byzantine-signer.ts).
    const fault = o.faults?.[i];
    const s = track(
      fault ? spawnScript(BYZANTINE_SIGNER, [], { ...env, [FAULTS_ENV]: fault }) : spawnFloe(['signer'], env),
    );
    const started = await s.waitFor('signer_started', 60_000);
    signerListen[i] = new URL(String(started.url)).host;
    return Object.assign(s, { url: String(started.url), identity: String(started.identity) });
  };

  const signers = await Promise.all(signerDirs.map((_, i) => spawnSigner(i)));
  let coordinator: Spawned | undefined;
  let url = '';
  const startCoordinator = async () => {
    const proc = track(spawnFloe(['coordinator', '-c', configFile], coordinatorEnv()));
    url = String((await proc.waitFor('coordinator_started', 120_000)).url);
    listen = new URL(url).host;
    coordinator = proc;
    cluster.coordinator = proc;
  };

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(url, method, path, { token: adminToken, ...(body === undefined ? {} : { json: body }), headers });

  let adminToken = '';
  const cluster: BenchCluster = {
    dir,
    get url() {
      return url;
    },
    get adminToken() {
      return adminToken;
    },
    database: o.database.kind,
    ...(databaseUrl ? { databaseUrl } : {}),
    coordinatorDataDir: cdir,
    signerDirs,
    signers,
    coordinator,
    api,
    registerSigners: () => registerSigners(api, signers),
    createKey: (threshold, signerIds) => createKey(api, threshold, signerIds, 60_000),
    async killSigner(i) {
      await signers[i]!.kill('SIGKILL');
    },
    async startSigner(i) {
      signers[i] = await spawnSigner(i);
      return signers[i]!;
    },
    async killCoordinator() {
      await coordinator?.kill('SIGKILL');
    },
    async stopCoordinator() {
      if (!coordinator) return;
      const c = coordinator;
      const t = setTimeout(() => c.proc.kill('SIGKILL'), 30_000);
      await c.kill('SIGTERM');
      clearTimeout(t);
    },
    startCoordinator,
    async stopSigners() {
      await Promise.all(
        signers.map(async (s) => {
          const t = setTimeout(() => s.proc.kill('SIGKILL'), 15_000);
          await s.kill('SIGTERM');
          clearTimeout(t);
        }),
      );
    },
    async openDatabase() {
      if (databaseUrl) return openDb({ url: databaseUrl, poolSize: 2 });
      if (coordinator && coordinator.proc.exitCode === null && coordinator.proc.signalCode === null) {
        throw new Error('stop the coordinator before opening its PGlite directory');
      }
      return openDb({ dataDir: cdir });
    },
    async close() {
      await coordinator?.kill('SIGKILL');
      await Promise.all(signers.map((s) => s.kill('SIGKILL')));
      if (dbName && o.database.kind === 'postgres') {
        const server = o.database.serverUrl;
        await onServer(server, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(
          () => {},
        );
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await startCoordinator();
    adminToken = readFileSync(tokenFile, 'utf8').trim();
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

/** The Postgres server the bench and chaos tool use when none is named. */
export const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
