/**
 * A test cluster on loopback: a coordinator (in this process, or as a child process) and
 * real signer child processes. The coordinator uses PGlite in a temp dir, or a fresh
 * database on the Postgres server when FLOE_TEST_DATABASE_URL is set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCoordinatorConfig } from '../../src/config/coordinator.js';
import {
  coordinatorIdentity,
  type RunningCoordinator,
  startCoordinator,
} from '../../src/coordinator/node.js';
import { createKey, registerSigners } from './cluster-api.js';
import { freshServerDatabase } from './db.js';
import { request } from './http.js';
import { seedMigratedPglite } from './pglite-template.js';
import {
  type SignerProcess,
  type Spawned,
  signerIdentities,
  spawnFloe,
  startSignerProcess,
  TEST_SCRYPT_N,
} from './processes.js';

export interface ApiResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestCluster {
  dir: string;
  url: string;
  adminToken: string;
  coordinatorIdentity: string;
  signers: SignerProcess[];
  /** In-process coordinator (undefined when it runs as a child process). */
  coordinator?: RunningCoordinator;
  coordinatorProcess?: Spawned;
  /** The coordinator's database on the Postgres server (unset on PGlite: it is under `dir`). */
  databaseUrl?: string;
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResult<T>>;
  /** Register every signer (in order) and return their ids. */
  registerSigners(): Promise<string[]>;
  /** DKG key over the given signer ids (default all), waiting for activation. */
  createKey(threshold: number, signerIds?: string[]): Promise<any>;
  sign(keyId: string, message: string, wait?: number): Promise<ApiResult>;
  restartSigner(i: number): Promise<SignerProcess>;
  /** Child-process coordinator only. */
  restartCoordinator(): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  signers: number;
  /** Fault flags per signer index (0-based), e.g. { 0: 'corrupt_shares' }. */
  faults?: Record<number, string>;
  /** Run the coordinator as a child process (for kill -9 tests). */
  coordinatorProcess?: boolean;
  env?: Record<string, string>;
  /** Environment of signer i (0-based), read at every (re)start: e.g. its bitcoin policy file. */
  signerEnv?: (i: number) => Record<string, string>;
}

const PASS = 'test cluster passphrase';

export async function startCluster(o: ClusterOptions): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'floe-cluster-'));
  const cdir = join(dir, 'coordinator');
  const { identityPub } = coordinatorIdentity(cdir);
  const database = await freshServerDatabase();
  if (!database) await seedMigratedPglite(cdir);
  const signerDirs = Array.from({ length: o.signers }, (_, i) => join(dir, `signer-${i + 1}`));
  // Every signer pins every other as a peer (its roster), as `floe init` writes it.
  const peers = await signerIdentities(signerDirs, PASS, { scryptN: TEST_SCRYPT_N });
  const startSigner = (i: number, listen?: string) =>
    startSignerProcess({
      dataDir: signerDirs[i]!,
      coordinators: [identityPub],
      passphrase: PASS,
      peers,
      ...(listen ? { listen } : {}),
      ...(o.faults?.[i] ? { faults: o.faults[i] } : {}),
      ...(o.signerEnv ? { env: o.signerEnv(i) } : {}),
    });
  const signers = await Promise.all(signerDirs.map((_, i) => startSigner(i)));

  const env: Record<string, string> = {
    FLOE_COORDINATOR_DATA_DIR: cdir,
    FLOE_COORDINATOR_LISTEN: '127.0.0.1:0',
    FLOE_ADMIN_TOKEN_FILE: join(dir, 'admin.token'),
    FLOE_LOG_LEVEL: 'warn',
    FLOE_ROUND_TIMEOUT_MS: '3000',
    FLOE_RESUME_AFTER_MS: '1000',
    FLOE_JOB_INTERVAL_MS: '250',
    // Tests name which signer misbehaves and expect it in the first subset: rank by faults and
    // identifier only, whatever the latency a loaded machine measures, and never as stale.
    FLOE_LATENCY_BUCKET_MS: '3600000',
    FLOE_SELECTION: 'ordered',
    FLOE_SIGNER_STALE_AFTER_MS: '86400000',
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...o.env,
  };
  let coordinator: RunningCoordinator | undefined;
  let proc: Spawned | undefined;
  let url: string;
  let adminToken: string;
  const { readFileSync } = await import('node:fs');
  if (o.coordinatorProcess) {
    proc = spawnFloe(['coordinator'], env);
    url = String((await proc.waitFor('coordinator_started', 60_000)).url);
    adminToken = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  } else {
    coordinator = await startCoordinator(loadCoordinatorConfig(undefined, env));
    url = coordinator.url;
    adminToken = coordinator.adminToken!;
  }

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(url, method, path, { token: adminToken, ...(body === undefined ? {} : { json: body }), headers });

  const cluster: TestCluster = {
    dir,
    get url() {
      return url;
    },
    adminToken,
    coordinatorIdentity: identityPub,
    signers,
    ...(coordinator ? { coordinator } : {}),
    ...(proc ? { coordinatorProcess: proc } : {}),
    ...(database ? { databaseUrl: database.url } : {}),
    api,
    registerSigners: () => registerSigners(api, signers),
    createKey: (threshold, signerIds) => createKey(api, threshold, signerIds, 30_000),
    sign(keyId, message, wait = 30_000) {
      return api('POST', '/v1/sessions', { key_id: keyId, message, wait });
    },
    async restartSigner(i) {
      const old = signers[i]!;
      await old.kill('SIGKILL');
      const listen = new URL(old.url).host;
      signers[i] = await startSigner(i, listen);
      return signers[i]!;
    },
    async restartCoordinator() {
      if (!proc) throw new Error('coordinator runs in-process');
      await proc.kill('SIGKILL');
      proc = spawnFloe(['coordinator'], { ...env, FLOE_COORDINATOR_LISTEN: new URL(url).host });
      cluster.coordinatorProcess = proc;
      url = String((await proc.waitFor('coordinator_started', 60_000)).url);
    },
    async close() {
      await coordinator?.close();
      await proc?.kill('SIGKILL');
      await Promise.all(signers.map((s) => s.kill('SIGKILL')));
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
