/**
 * `floe up`: a whole local cluster in one command, for development and demos.
 *
 * A coordinator (embedded PGlite) and `n` signers, each a real child process of this CLI on
 * loopback, supervised (a crashed child is restarted with exponential backoff); data under
 * one directory (default ./.floe, see layout.ts). On first run it generates the identities
 * and signer passphrases, sets each signer's allowlist to the coordinator's identity,
 * registers the signers and creates a 2-of-3 demo key by DKG. Later runs reuse all of it:
 * same token, same signers (matched by identity), same demo key. A local Nostr relay (its own
 * child, default ws://127.0.0.1:7777) is the demo key's relay, and the demo key's NIP-46
 * bunker listens there: each start prints a fresh single-use bunker:// URL (./nostr.ts).
 * SIGINT / SIGTERM (`floe down` sends it: ./down.ts), and the parent process going away (e.g.
 * `kill` of the npm that ran `npm start`), stop every child (SIGTERM, then SIGKILL after a
 * timeout) and exit 0.
 *
 * The signer passphrases sit in files next to the data they protect. That is acceptable for
 * a local development cluster only; `floe init` and docs/deployment.md describe the real thing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ApiClient, ApiError, type KeyObject } from '../client/api-client.js';
import { loadOrCreateOperatorKey, OPERATOR_KEY_FILE } from '../config/operator-key.js';
import { loadOrCreateSecret, readSecretFile } from '../config/secret-file.js';
import { coordinatorIdentity } from '../coordinator/node.js';
import { openSignerStore } from '../signer/node.js';
import { type ClusterLayout, clusterLayout, displayPath } from './layout.js';
import {
  DEFAULT_RELAY_PORT,
  type DemoBunker,
  enableDemoBunker,
  nostrBannerLines,
  RELAY_CHILD,
  relayChildSpec,
} from './nostr.js';
import { floeSelfCommand } from './self.js';
import { type ClusterState, readClusterState, writeClusterState } from './state.js';
import { type ChildSpec, Supervisor, type SupervisorEvent } from './supervisor.js';
import { downCommand, isFloeUp, pidAlive } from './supervisor-pid.js';

export interface UpOptions {
  dataDir: string;
  /** Undefined: as recorded in the data dir, else the default. */
  signers?: number;
  threshold?: number;
  port?: number;
  signerPortBase?: number;
  /** The address service's port on 127.0.0.1 (default 9000, or as recorded). */
  addressPort?: number;
  /** The local Nostr relay's port on 127.0.0.1 (default 7777, or as recorded). */
  relayPort?: number;
  json?: boolean;
  /** Log level of the children (their logs go to <data>/logs/). Default warn. */
  logLevel?: string;
  stopTimeoutMs?: number;
}

export const UP_DEFAULTS = {
  signers: 3,
  threshold: 2,
  port: 8080,
  signerPortBase: 7101,
  addressPort: 9000,
  relayPort: DEFAULT_RELAY_PORT,
} as const;
/** The address service child (DESIGN §14): the address tier beside the signing API. */
const ADDRESS_SERVICE = 'address-service';
const HOST = '127.0.0.1';
/** How often `floe up` checks that its parent process is still there. */
const PARENT_CHECK_MS = 500;
/** The message the sample curl signs: SHA-256("hello from floe"). */
export const SAMPLE_MESSAGE = createHash('sha256').update('hello from floe').digest('hex');

class UpError extends Error {}

/** Runs the cluster until SIGINT / SIGTERM; resolves with the process exit code. */
export async function up(o: UpOptions): Promise<number> {
  const L = clusterLayout(o.dataDir);
  const json = Boolean(o.json);
  const say = (text: string, event?: Record<string, unknown>) => {
    if (json) {
      if (event) process.stdout.write(`${JSON.stringify(event)}\n`);
    } else process.stdout.write(`${text}\n`);
  };
  const stamp = () => new Date().toTimeString().slice(0, 8);

  mkdirSync(L.root, { recursive: true, mode: 0o700 });
  acquireLock(L);

  let state: ClusterState | undefined;
  const saveState = () => {
    if (state) writeClusterState(L.stateFile, state);
  };

  const sup = new Supervisor({
    stopTimeoutMs: o.stopTimeoutMs ?? 10_000,
    readyTimeoutMs: 120_000,
    onEvent: (e) => onChildEvent(e),
  });
  let started = false;

  function onChildEvent(e: SupervisorEvent): void {
    if (e.kind === 'ready') {
      if (state) {
        const entry =
          e.name === 'coordinator'
            ? state.coordinator
            : e.name === ADDRESS_SERVICE
              ? state.address_service
              : e.name === RELAY_CHILD
                ? state.relay
                : state.signers.find((s) => s.name === e.name);
        if (entry) {
          entry.pid = e.pid;
          entry.restarts = e.restarts;
          saveState();
        }
      }
      if (e.restarts > 0) {
        say(`[${stamp()}] ${e.name} restarted (pid ${e.pid}, restart ${e.restarts})`, {
          event: 'child_restarted',
          name: e.name,
          pid: e.pid,
          restarts: e.restarts,
        });
      } else {
        say(`  ${e.name} started (pid ${e.pid})`, { event: 'child_started', name: e.name, pid: e.pid });
      }
    } else if (e.kind === 'exited') {
      if (e.expected || !started) return;
      const last = e.stderrTail.at(-1);
      say(
        `[${stamp()}] ${e.name} (pid ${e.pid}) exited unexpectedly (${e.signal ?? `code ${e.code}`})${last ? `: ${last}` : ''}`,
        { event: 'child_exited', name: e.name, pid: e.pid, code: e.code, signal: e.signal },
      );
    } else if (e.kind === 'restarting') {
      say(`[${stamp()}] restarting ${e.name} in ${(e.delayMs / 1000).toFixed(1)} s`, {
        event: 'child_restarting',
        name: e.name,
        delay_ms: e.delayMs,
      });
    } else if (e.kind === 'restart_failed') {
      say(`[${stamp()}] ${e.name} did not come back: ${e.error} (see ${displayPath(L.logFile(e.name))})`, {
        event: 'child_restart_failed',
        name: e.name,
        error: e.error,
      });
    }
  }

  // Signals: the first stops the cluster cleanly, a second one kills the children at once.
  let stopRequested: (signal: string) => void = () => {};
  const stopSignal = new Promise<string>((r) => {
    stopRequested = r;
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) stopRequested(sig);
    else {
      say(`[${stamp()}] ${sig} again: killing the children`, { event: 'force_kill' });
      sup.forceKill();
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  // Stopping must finish even when nobody reads our output any more (a closed pipe).
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});

  // The parent gone (e.g. `kill` of the npm running `npm start`: its shell dies and we are
  // re-parented) stops the cluster as SIGTERM does, so that no child outlives it.
  const parentPid = process.ppid;
  const parentWatch = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(parentWatch);
    say(`[${stamp()}] the parent process (pid ${parentPid}) is gone`, {
      event: 'parent_gone',
      pid: parentPid,
    });
    onSignal('SIGTERM');
  }, PARENT_CHECK_MS);
  parentWatch.unref();

  const shutdown = async (): Promise<void> => {
    clearInterval(parentWatch);
    say(`[${stamp()}] stopping the cluster`, { event: 'stopping' });
    await sup.stop(['coordinator']);
    if (state) {
      state.supervisor_pid = null;
      state.started_at = null;
      state.coordinator.pid = null;
      if (state.address_service) state.address_service.pid = null;
      if (state.relay) state.relay.pid = null;
      for (const s of state.signers) s.pid = null;
      saveState();
    }
    releaseLock(L);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  };

  try {
    const boot = bootstrap();
    // A signal during start-up stops it too.
    const first = await Promise.race([boot.then(() => 'ready'), stopSignal]);
    if (first !== 'ready') {
      boot.catch(() => {});
      await shutdown();
      say('stopped', { event: 'stopped' });
      return 0;
    }
    started = true;
    await stopSignal;
    await shutdown();
    say('stopped', { event: 'stopped' });
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`floe up: ${msg.replace(/\s+/g, ' ')}\n`);
    await shutdown().catch(() => {});
    return 1;
  }

  async function bootstrap(): Promise<void> {
    const prev = readClusterState(L.stateFile);
    const n = o.signers ?? prev?.signers.length ?? UP_DEFAULTS.signers;
    const t = o.threshold ?? prev?.demo_key?.threshold ?? UP_DEFAULTS.threshold;
    const port = o.port ?? prev?.coordinator.port ?? UP_DEFAULTS.port;
    const base = o.signerPortBase ?? prev?.signers[0]?.port ?? UP_DEFAULTS.signerPortBase;
    if (!Number.isInteger(n) || n < 2 || n > 64) throw new UpError('--signers must be from 2 to 64');
    if (!Number.isInteger(t) || t < 2 || t > n) throw new UpError(`--threshold must be from 2 to ${n}`);
    if (prev && n < prev.signers.length) {
      throw new UpError(
        `${displayPath(L.root)} has ${prev.signers.length} signers; --signers cannot be lower (use another --data-dir for a smaller cluster)`,
      );
    }
    const moved = prev?.signers.find((s, i) => s.id && s.port !== base + i);
    if (moved) {
      throw new UpError(
        `${moved.name} is registered at port ${moved.port}; keep --signer-port-base ${prev!.signers[0]!.port} for ${displayPath(L.root)} (or use another --data-dir)`,
      );
    }
    const addressPort = o.addressPort ?? prev?.address_service?.port ?? UP_DEFAULTS.addressPort;
    const relayPort = o.relayPort ?? prev?.relay?.port ?? UP_DEFAULTS.relayPort;
    const ports = [port, ...Array.from({ length: n }, (_, i) => base + i), addressPort, relayPort];
    if (new Set(ports).size !== ports.length || ports.some((p) => p < 1 || p > 65_535)) {
      throw new UpError(
        `the coordinator port ${port}, signer ports ${base}-${base + n - 1} address service port ${addressPort} and relay port ${relayPort} must be distinct and valid`,
      );
    }
    for (const p of ports) {
      if (!(await portFree(HOST, p))) {
        const option =
          p === port
            ? '--port'
            : p === addressPort
              ? '--address-port'
              : p === relayPort
                ? '--relay-port'
                : '--signer-port-base';
        throw new UpError(`port ${p} on ${HOST} is in use (another floe up?); choose others with ${option}`);
      }
    }

    // Identities and passphrases (first run), then the children.
    const coordinatorId = coordinatorIdentity(L.coordinatorDir).identityPub;
    const tokenExisted = existsSync(L.adminTokenFile);
    if (!tokenExisted && existsSync(join(L.coordinatorDir, 'pgdata'))) {
      throw new UpError(
        `${displayPath(L.adminTokenFile)} is missing and the coordinator only writes it on its first start; restore it, or remove ${displayPath(L.root)} to start over`,
      );
    }
    for (let i = 1; i <= n; i++) {
      mkdirSync(L.signerDir(i), { recursive: true, mode: 0o700 });
      loadOrCreateSecret(L.passphraseFile(i), 'signer passphrase', () =>
        randomBytes(32).toString('base64url'),
      );
    }
    // Every signer's roster (DESIGN §11): the identity keys of this cluster's signers, read
    // from (or created in) their stores before they start.
    const peers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const { store, identity } = await openSignerStore(
          { data_dir: L.signerDir(i + 1), passphrase_file: L.passphraseFile(i + 1) },
          {},
        );
        store.close();
        const pub = identity.publicKeyHex;
        identity.dispose();
        return pub;
      }),
    );

    // The kill switch's operator key (.floe/operator.key, 0600): every signer pins its public key.
    const operator = loadOrCreateOperatorKey(join(L.root, OPERATOR_KEY_FILE));

    say(
      `Starting a local Floe cluster in ${displayPath(L.root)}/: coordinator on ${HOST}:${port}, ${n} signers on ports ${base}-${base + n - 1}`,
      { event: 'starting', data_dir: L.root, port, signer_ports: ports.slice(1) },
    );
    const self = floeSelfCommand();
    const env = childEnv();
    const logLevel = o.logLevel ?? 'warn';
    const signerSpec = (i: number): ChildSpec => ({
      name: L.signerName(i),
      command: self.command,
      args: [...self.args, 'signer'],
      env: {
        ...env,
        FLOE_SIGNER_DATA_DIR: L.signerDir(i),
        FLOE_SIGNER_LISTEN: `${HOST}:${base + i - 1}`,
        FLOE_SIGNER_COORDINATORS: coordinatorId,
        FLOE_SIGNER_PEERS: peers.join(','),
        FLOE_SIGNER_OPERATORS: operator,
        FLOE_SIGNER_PASSPHRASE_FILE: L.passphraseFile(i),
        FLOE_LOG_LEVEL: logLevel,
      },
      readyEvent: 'signer_started',
      logFile: L.logFile(L.signerName(i)),
    });
    const coordinatorSpec: ChildSpec = {
      name: 'coordinator',
      command: self.command,
      args: [...self.args, 'coordinator'],
      env: {
        ...env,
        FLOE_COORDINATOR_DATA_DIR: L.coordinatorDir,
        FLOE_COORDINATOR_LISTEN: `${HOST}:${port}`,
        FLOE_ADMIN_TOKEN_FILE: L.adminTokenFile,
        FLOE_BITCOIN_NETWORK: 'regtest',
        FLOE_LOG_LEVEL: logLevel,
      },
      readyEvent: 'coordinator_started',
      logFile: L.logFile('coordinator'),
    };
    // The local Nostr relay (./nostr.ts), the demo key's relay: up before the coordinator, so
    // the bunker it runs finds it listening at once.
    const relayReady = await sup.start(
      relayChildSpec({ host: HOST, port: relayPort, env, logFile: L.logFile(RELAY_CHILD) }),
    );
    const relayUrl = String(relayReady.url);
    const [coordinatorReady, ...signersReady] = await Promise.all([
      sup.start(coordinatorSpec),
      ...Array.from({ length: n }, (_, i) => sup.start(signerSpec(i + 1))),
    ]);
    const url = String(coordinatorReady!.url);
    if (tokenExisted && coordinatorReady!.admin_token_created === true) {
      throw new UpError(
        `the coordinator's database is new but ${displayPath(L.adminTokenFile)} is from an earlier cluster; remove that file (or all of ${displayPath(L.root)}) and start again`,
      );
    }
    // The address tier: its own process and port, forwarding address requests to the coordinator.
    const addressReady = await sup.start({
      name: ADDRESS_SERVICE,
      command: self.command,
      args: [...self.args, 'address-service'],
      env: {
        ...env,
        FLOE_ADDRESS_LISTEN: `${HOST}:${addressPort}`,
        FLOE_ADDRESS_COORDINATOR_URL: url,
        FLOE_LOG_LEVEL: logLevel,
      },
      readyEvent: 'address_service_started',
      logFile: L.logFile(ADDRESS_SERVICE),
    });

    state = {
      version: 1,
      created_at: prev?.created_at ?? Date.now(),
      coordinator: {
        port,
        url,
        identity: coordinatorId,
        pid: sup.pid('coordinator') ?? null,
        restarts: 0,
      },
      address_service: {
        port: addressPort,
        url: String(addressReady.url),
        pid: sup.pid(ADDRESS_SERVICE) ?? null,
        restarts: 0,
      },
      relay: { port: relayPort, url: relayUrl, pid: sup.pid(RELAY_CHILD) ?? null, restarts: 0 },
      signers: signersReady.map((r, i) => {
        const old = prev?.signers[i];
        const identity = String(r.identity);
        return {
          name: L.signerName(i + 1),
          port: base + i,
          url: String(r.url),
          identity,
          id: old && old.identity === identity ? old.id : null,
          pid: sup.pid(L.signerName(i + 1)) ?? null,
          restarts: 0,
        };
      }),
      demo_key: prev?.demo_key ?? null,
      supervisor_pid: process.pid,
      started_at: Date.now(),
    };
    saveState();

    if (!existsSync(L.adminTokenFile)) {
      throw new UpError(`the coordinator did not write ${displayPath(L.adminTokenFile)}`);
    }
    const api = new ApiClient({ url, token: readSecretFile(L.adminTokenFile, 'admin token file') });

    // Register the signers the coordinator does not know yet (matched by identity).
    const known = await api.listSigners();
    for (const s of state.signers) {
      const k = known.find((x) => x.identity === s.identity);
      if (k) {
        s.id = k.id;
        if (k.url !== s.url) {
          say(`warning: ${s.name} is registered at ${k.url} but listens on ${s.url}`, {
            event: 'warning',
            message: `${s.name} registered at ${k.url}, listens on ${s.url}`,
          });
        }
        continue;
      }
      const r = await api.registerSigner({ url: s.url, identity: s.identity, name: s.name });
      s.id = r.id;
      say(`  registered ${s.name} as ${r.id}`, { event: 'signer_registered', name: s.name, id: r.id });
    }
    saveState();

    const key = await demoKey(api, t);
    state.demo_key = {
      id: key.id,
      threshold: key.threshold,
      n: key.n,
      x_only_public_key: key.x_only_public_key,
      npub: key.npub,
    };
    saveState();
    const bunker = await enableDemoBunker(api, key.id, relayUrl);
    printReady(url, key, n, bunker);
  }

  /** The demo key: the one recorded in cluster.json, or a new 2-of-3 (t-of-n) DKG key. */
  async function demoKey(api: ApiClient, t: number): Promise<KeyObject> {
    const s = state!;
    if (s.demo_key) {
      try {
        let k = await api.getKey(s.demo_key.id);
        if (k.status === 'pending') k = await api.waitForKey(k.id, 120_000);
        if (k.status === 'active') return k;
        say(`the recorded demo key ${k.id} is ${k.status}; creating a new one`, {
          event: 'warning',
          message: `demo key ${k.id} is ${k.status}`,
        });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
    }
    const ids = s.signers.map((x) => x.id!).slice(0, s.signers.length);
    say(`  creating the demo key (${t}-of-${ids.length}, distributed key generation)`, {
      event: 'demo_key_creating',
      threshold: t,
      n: ids.length,
    });
    let k = await api.createKey({ threshold: t, signers: ids, label: 'demo', wait: 60_000 });
    s.demo_key = { id: k.id, threshold: k.threshold, n: k.n, x_only_public_key: null, npub: null };
    saveState();
    if (k.status === 'pending') k = await api.waitForKey(k.id, 120_000);
    if (k.status !== 'active') {
      throw new UpError(
        `the demo key ceremony ${k.status}${k.ceremony?.error_code ? ` (${k.ceremony.error_code})` : ''}; see ${displayPath(L.logsDir)}/`,
      );
    }
    return k;
  }

  function printReady(url: string, key: KeyObject, n: number, bunker: DemoBunker): void {
    const tokenPath = displayPath(L.adminTokenFile);
    const curl = sampleCurl(url, tokenPath, key.id);
    if (json) {
      say('', {
        event: 'ready',
        api_url: url,
        docs_url: `${url}/docs`,
        address_url: state!.address_service?.url ?? null,
        relay_url: state!.relay?.url ?? null,
        bunker_url: bunker.bunker_url,
        bunker_expires_at: bunker.expires_at,
        token_file: L.adminTokenFile,
        data_dir: L.root,
        demo_key: state!.demo_key,
        signers: state!.signers.map((s) => ({ name: s.name, id: s.id, url: s.url, pid: s.pid })),
        curl,
      });
      return;
    }
    const passFiles = `${displayPath(L.root)}/signer-N/passphrase`;
    say(
      [
        '',
        `Floe local cluster is ready: a coordinator and ${n} signers, demo key ${key.threshold}-of-${key.n}.`,
        '',
        `  API          ${url}`,
        `  API docs     ${url}/docs`,
        ...(state!.address_service
          ? [
              `  Addresses    ${state!.address_service.url}  (address service: POST /v1/addresses, regtest; safe to expose)`,
            ]
          : []),
        `  admin token  ${tokenPath}  (send as "Authorization: Bearer <token>"; keep it secret)`,
        `  demo key     ${key.id}  (${key.threshold}-of-${key.n}, ${key.origin})`,
        `  x-only key   ${key.x_only_public_key}`,
        `  npub         ${key.npub}`,
        ...nostrBannerLines(state!.relay!.url, bunker),
        `  data, logs   ${displayPath(L.root)}/, ${displayPath(L.logsDir)}/`,
        '',
        `  The signer passphrase files (${passFiles}) are for this local cluster only:`,
        '  in a real deployment each passphrase lives in a secret manager, never beside the',
        '  data it protects (see `floe init` and docs/deployment.md).',
        '',
        'Sign a 32-byte message (here SHA-256 of "hello from floe") with the demo key:',
        '',
        curl
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
        '',
        'Press Ctrl-C to stop the cluster.',
      ].join('\n'),
    );
  }
}

/** The sample request, as a shell command reading the token from its file. */
export function sampleCurl(url: string, tokenPath: string, keyId: string): string {
  const body = JSON.stringify({ key_id: keyId, message: SAMPLE_MESSAGE, wait: 10_000 });
  return [
    `curl -s -X POST ${url}/v1/sessions \\`,
    `  -H "Authorization: Bearer $(cat ${shellQuote(tokenPath)})" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d '${body}'`,
  ].join('\n');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The children's environment: ours, minus any Floe settings or DATABASE_URL of the caller's shell. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('FLOE_') || k === 'DATABASE_URL') continue;
    env[k] = v;
  }
  return env;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** One `floe up` per data directory. A lock left by a dead process is taken over. */
function acquireLock(L: ClusterLayout): void {
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(L.lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(L.lockFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) && isFloeUp(pid)) {
        throw new UpError(
          `a local cluster is already running from ${displayPath(L.root)} (floe up, pid ${pid}); stop it first with ${downCommand(L)}`,
        );
      }
      rmSync(L.lockFile, { force: true });
    }
  }
  throw new UpError(`cannot take the lock ${displayPath(L.lockFile)}`);
}

function releaseLock(L: ClusterLayout): void {
  try {
    if (Number(readFileSync(L.lockFile, 'utf8').trim()) === process.pid) rmSync(L.lockFile, { force: true });
  } catch {
    // already gone
  }
}
