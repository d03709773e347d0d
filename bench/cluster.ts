/**
 * A local Floe cluster for benchmarks and the chaos tool: a coordinator and signer nodes, each
 * a real child process (`node --import tsx src/cli/main.ts coordinator|signer`), on loopback.
 *
 * Unlike test/helpers/cluster.ts it gives the coordinator a config file (rate limits, session
 * TTL, round timeouts), picks the database per cluster (embedded PGlite in the coordinator's
 * data dir, or a fresh database on a Postgres server, dropped at close), and can stop the
 * coordinator cleanly so that the bench can open its PGlite directory itself.
 * Restarts keep every port, as a real deployment's would.
 *
 * On Postgres it can run several coordinators on the one database (`coordinators`): the extra
 * ones get their own data directory holding copies of the first one's identity key and JWT
 * secret (the signers' allowlist holds one coordinator identity), as a deployment behind a load
 * balancer would.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { withDefaultHeapFlags } from '../src/cluster/node-flags.js';
import { coordinatorIdentity } from '../src/coordinator/node.js';
import { type Db, openDb } from '../src/db/connection.js';
import { FAULTS_ENV } from '../test/helpers/byzantine-signer.js';
import { createKey, registerSigners } from '../test/helpers/cluster-api.js';
import { request } from '../test/helpers/http.js';
import {
  BYZANTINE_SIGNER,
  ROOT,
  type SignerProcess,
  type Spawned,
  signerIdentities,
  spawnFloe,
  spawnNode,
  spawnScript,
} from '../test/helpers/processes.js';

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

export type DatabaseChoice = { kind: 'pglite' } | { kind: 'postgres'; serverUrl: string };

/**
 * How the coordinator and signer processes run:
 *   tsx    `node --import tsx src/cli/main.ts` (the sources, through the tsx loader: a loader
 *          thread and transpiled-source caches add some 40 MB to every process);
 *   build  `node <build>/bundle/cli/main.js`, a fresh `tsc -p tsconfig.build.json` of the current
 *          sources, bundled (buildForBench), as a deployment runs the package (bin/floe.js).
 */
export type Runtime = 'tsx' | 'build';

export interface BenchClusterOptions {
  signers: number;
  /** Default tsx. */
  runtime?: Runtime;
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
  /**
   * Every coordinator and signer process appends its own memory breakdown (V8 heap, external,
   * WebAssembly memory) to DIR/<pid>.jsonl (bench/memory-hook.mjs; bench/memory.ts reads it).
   */
  memoryDir?: string;
  /** Coordinator processes on the one database (default 1; more than one needs Postgres). */
  coordinators?: number;
  /**
   * Node/V8 flags for the coordinator and signer processes (e.g. heap sizes): on the command line
   * with the build runtime (any V8 flag), in NODE_OPTIONS with tsx (only the flags Node allows there).
   * The heap limits `floe up` gives its processes are added unless set here ({@link clusterNodeFlags}).
   */
  nodeOptions?: string;
  /**
   * Environment variables for the coordinator and signer processes besides the bench's own (which
   * win): settings of the runtime below Node, such as glibc's MALLOC_ARENA_MAX. Test helpers start
   * processes with a clean environment, so nothing of the caller's shell reaches them otherwise.
   */
  processEnv?: Record<string, string>;
  /**
   * scrypt's N for the new signer stores (default the production 2^17). Chaos, which restarts
   * signers all the time and measures no start-up, uses a smaller one.
   */
  scryptN?: number;
}

let built: { dir: string; main: string; errors: string } | undefined;

/**
 * Compile and bundle the current sources once per bench process: tsconfig.build.json into a
 * temporary directory (removed when this process exits) that also holds a package.json of type
 * module and a link to this repository's node_modules, so that the compiled modules resolve their
 * dependencies as the sources do; then scripts/bundle.mjs over it, as `npm run build` does. Type
 * errors in a work tree that is being edited do not stop the emit; they are returned in `errors`.
 */
export function buildForBench(): { main: string; errors: string } {
  if (built) return built;
  const root = mkdtempSync(join(tmpdir(), 'floe-bench-build-'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module", "private": true }\n');
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'dist');
  let errors = '';
  try {
    execFileSync(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        dir,
        '--sourceMap',
        'false',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (e) {
    errors = String((e as { stdout?: Buffer }).stdout ?? e).slice(0, 2000);
  }
  if (!existsSync(join(dir, 'cli', 'main.js'))) throw new Error(`bench build failed: ${errors}`);
  // The migrations and the dashboard's static files are read from the package root's src/ by
  // the bundle (src/db/migrate.ts, src/coordinator/dashboard/plugin.ts).
  for (const files of [
    ['db', 'migrations'],
    ['coordinator', 'dashboard', 'assets'],
  ]) {
    cpSync(join(ROOT, 'src', ...files), join(root, 'src', ...files), { recursive: true });
  }
  // Bundled as `npm run build` bundles dist/ (scripts/bundle.mjs): bin/floe.js and `floe up` run it.
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const main = join(dir, 'bundle', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error('bench build failed: the bundle was not written');
  built = { dir, main, errors };
  return built;
}

/**
 * The Node/V8 flags of the cluster's processes: `nodeOptions` (split at spaces) and, after them,
 * the default heap limits that `floe up` gives its children (src/cluster/node-flags.ts) for the
 * options they do not set, so the bench measures the processes as `floe up` runs them; `none`
 * for none at all (V8's own heap sizing).
 */
export function clusterNodeFlags(nodeOptions?: string): string[] {
  if (nodeOptions?.trim() === 'none') return [];
  return withDefaultHeapFlags(nodeOptions?.split(/\s+/).filter(Boolean) ?? []);
}

/**
 * `NAME=VALUE` assignments (the bench's and the soak's `--env`) as an environment. Floe's own
 * settings and NODE_OPTIONS are refused: the bench sets those itself (--node-options for Node's).
 */
export function parseEnvAssignments(assignments: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const a of assignments) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(a);
    if (!m) throw new Error(`--env ${a}: expected NAME=VALUE`);
    const name = m[1]!;
    if (name.startsWith('FLOE_') || name === 'NODE_OPTIONS' || name === 'DATABASE_URL')
      throw new Error(`--env ${name}: set by the bench itself (Node's flags: --node-options)`);
    env[name] = m[2]!;
  }
  return env;
}

/** `node [FLAGS] <build>/cli/main.js ARGS` with the same handle as test/helpers/processes.ts's spawnScript. */
function spawnBuilt(args: string[], env: Record<string, string>, nodeFlags: string[] = []): Spawned {
  return spawnNode([...nodeFlags, buildForBench().main, ...args], env);
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
  runtime: Runtime;
  /** The coordinator's Postgres database (postgres only). */
  databaseUrl?: string;
  coordinatorDataDir: string;
  signerDirs: string[];
  signers: SignerProcess[];
  coordinator: Spawned | undefined;
  /** Every coordinator's base URL: the first is `url`. */
  readonly urls: string[];
  /** Every coordinator process (the first is `coordinator`). */
  readonly coordinators: (Spawned | undefined)[];
  /** The Postgres server the database lives on (postgres only). */
  serverUrl?: string;
  /** The database's name on it (postgres only). */
  databaseName?: string;
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResult<T>>;
  /** The same request to coordinator `i` (0 is the first). */
  apiAt<T = any>(
    i: number,
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
  /** SIGKILL coordinator `i` (0 is the first). */
  killCoordinatorAt(i: number): Promise<void>;
  /** Start coordinator `i` again: the first on its port, the others on a new one (see `urls`). */
  startCoordinatorAt(i: number): Promise<void>;
  /** One more coordinator on the same database and identity (Postgres only); returns its index. */
  addCoordinator(): Promise<number>;
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

/** One admin connection to the Postgres server for the duration of fn. */
export async function onServer<T>(serverUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
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
  const runtime = o.runtime ?? 'tsx';
  if (runtime === 'build') buildForBench();
  const nodeFlags = clusterNodeFlags(o.nodeOptions);
  const floe = (args: string[], env: Record<string, string>) =>
    runtime === 'build' ? spawnBuilt(args, env, nodeFlags) : spawnFloe(args, env);
  const coordinatorCount = o.coordinators ?? 1;
  if (coordinatorCount > 1 && o.database.kind !== 'postgres')
    throw new Error('several coordinators need a Postgres database (PGlite is one process)');
  if (o.database.kind === 'postgres') {
    dbName = `floe_bench_${randomBytes(6).toString('hex')}`;
    await onServer(o.database.serverUrl, (c) => c.query(`CREATE DATABASE ${dbName}`));
    const u = new URL(o.database.serverUrl);
    u.pathname = `/${dbName}`;
    databaseUrl = u.toString();
  }

  const profileEnv = (role: string): Record<string, string> => {
    const hooks: string[] = nodeFlags.length && runtime === 'tsx' ? [nodeFlags.join(' ')] : [];
    const env: Record<string, string> = {};
    if (o.profileDir) {
      hooks.push(`--import ${pathToFileURL(join(HERE, 'profile-hook.mjs')).href}`);
      env.FLOE_BENCH_PROFILE_DIR = join(resolve(o.profileDir), role);
    }
    if (o.memoryDir) {
      hooks.push(`--import ${pathToFileURL(join(HERE, 'memory-hook.mjs')).href}`);
      env.FLOE_BENCH_MEMORY_DIR = resolve(o.memoryDir);
    }
    return hooks.length ? { NODE_OPTIONS: hooks.join(' '), ...env } : {};
  };
  const configFile = join(dir, 'coordinator.json');
  writeFileSync(configFile, JSON.stringify({ ...BENCH_COORDINATOR_CONFIG, ...o.coordinatorConfig }, null, 2));
  const tokenFile = join(dir, 'admin.token');
  let listen = '127.0.0.1:0';
  const coordinatorEnv = () => ({
    ...o.processEnv,
    FLOE_COORDINATOR_DATA_DIR: cdir,
    FLOE_COORDINATOR_LISTEN: listen,
    FLOE_ADMIN_TOKEN_FILE: tokenFile,
    FLOE_LOG_LEVEL: o.logLevel ?? 'error',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...profileEnv('coordinator'),
  });

  const signerListen: (string | undefined)[] = [];
  const peers = await signerIdentities(signerDirs, PASSPHRASE, o.scryptN ? { scryptN: o.scryptN } : {});
  const spawnSigner = async (i: number): Promise<SignerProcess> => {
    const env = {
      ...o.processEnv,
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
      fault ? spawnScript(BYZANTINE_SIGNER, [], { ...env, [FAULTS_ENV]: fault }) : floe(['signer'], env),
    );
    const started = await s.waitFor('signer_started', 60_000);
    signerListen[i] = new URL(String(started.url)).host;
    return Object.assign(s, { url: String(started.url), identity: String(started.identity) });
  };

  const signers = await Promise.all(signerDirs.map((_, i) => spawnSigner(i)));
  let coordinator: Spawned | undefined;
  let url = '';
  const startCoordinator = async () => {
    const proc = track(floe(['coordinator', '-c', configFile], coordinatorEnv()));
    url = String((await proc.waitFor('coordinator_started', 120_000)).url);
    listen = new URL(url).host;
    coordinator = proc;
    cluster.coordinator = proc;
  };

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(url, method, path, { token: adminToken, ...(body === undefined ? {} : { json: body }), headers });

  // Coordinators 2…N: same database, same identity key and JWT secret, their own data dir and port.
  const extra: { proc: Spawned; url: string }[] = [];
  const startExtraCoordinator = async (k: number) => {
    const xdir = join(dir, `coordinator-${k + 2}`);
    mkdirSync(xdir, { recursive: true, mode: 0o700 });
    for (const f of ['identity.key', 'jwt.key']) copyFileSync(join(cdir, f), join(xdir, f));
    const proc = track(
      floe(['coordinator', '-c', configFile], {
        ...coordinatorEnv(),
        FLOE_COORDINATOR_DATA_DIR: xdir,
        FLOE_COORDINATOR_LISTEN: '127.0.0.1:0',
        FLOE_ADMIN_TOKEN_FILE: join(xdir, 'admin.token'),
      }),
    );
    const u = String((await proc.waitFor('coordinator_started', 120_000)).url);
    extra[k] = { proc, url: u };
  };
  const apiAt = (
    i: number,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const base = i === 0 ? url : extra[i - 1]?.url;
    if (!base) return Promise.reject(new Error(`no coordinator ${i}`));
    return request(base, method, path, {
      token: adminToken,
      ...(body === undefined ? {} : { json: body }),
      headers,
    });
  };

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
    runtime,
    ...(databaseUrl ? { databaseUrl } : {}),
    coordinatorDataDir: cdir,
    signerDirs,
    signers,
    coordinator,
    get urls() {
      return [url, ...extra.map((x) => x.url)];
    },
    get coordinators() {
      return [coordinator, ...extra.map((x) => x.proc)];
    },
    ...(o.database.kind === 'postgres' ? { serverUrl: o.database.serverUrl, databaseName: dbName! } : {}),
    api,
    apiAt,
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
    async killCoordinatorAt(i) {
      if (i === 0) await coordinator?.kill('SIGKILL');
      else await extra[i - 1]?.proc.kill('SIGKILL');
    },
    async startCoordinatorAt(i) {
      if (i === 0) await startCoordinator();
      else if (i - 1 < extra.length) await startExtraCoordinator(i - 1);
      else throw new Error(`no coordinator ${i}`);
    },
    async addCoordinator() {
      if (o.database.kind !== 'postgres') throw new Error('several coordinators need a Postgres database');
      await startExtraCoordinator(extra.length);
      return extra.length;
    },
    async stopCoordinator() {
      for (const c of [coordinator, ...extra.map((x) => x.proc)]) {
        if (!c) continue;
        const t = setTimeout(() => c.proc.kill('SIGKILL'), 30_000);
        await c.kill('SIGTERM');
        clearTimeout(t);
      }
    },
    async startCoordinator() {
      await startCoordinator();
      for (let k = 0; k < extra.length; k++) {
        const p = extra[k]!.proc.proc;
        if (p.exitCode !== null || p.signalCode !== null) await startExtraCoordinator(k);
      }
    },
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
      await Promise.all(extra.map((x) => x.proc.kill('SIGKILL')));
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
    for (let k = 0; k < coordinatorCount - 1; k++) await startExtraCoordinator(k);
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

/** The Postgres server the bench and chaos tool use when none is named. */
export const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
