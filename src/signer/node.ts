/** Assembles a signer node from its configuration: store, identity, engine, ceremonies, HTTP server. */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { splitListen } from '../config/listen.js';
import type { SignerConfig } from '../config/signer.js';
import { backendInfo } from '../crypto/backend.js';
import { wipe } from '../crypto/hex.js';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { CeremonyParticipant } from './ceremony.js';
import { SigningEngine } from './engine.js';
import { PASSPHRASE_ENV, PassphraseKeySource, readPassphrase, readSecretFile } from './keys/passphrase.js';
import { SignerMetrics } from './metrics.js';
import { allowAll } from './policy.js';
import { type Rng, systemClock } from './ports.js';
import {
  buildMetricsServer,
  buildSignerServer,
  type MetricsAccess,
  type SignerHandlers,
  signerHandlers,
} from './server.js';
import { SqliteSignerStore } from './store.js';

export interface RunningSigner {
  app: FastifyInstance;
  identityPub: string;
  url: string;
  /** The separate metrics listener (`metrics_listen`), if configured. */
  metricsApp?: FastifyInstance;
  metricsUrl?: string;
  store: SqliteSignerStore;
  close(): Promise<void>;
}

export interface StartSignerOptions {
  scryptN?: number;
  logger?: unknown;
  rng?: Rng;
  /**
   * Wrap the handler table before the server dispatches to it (a seam: metrics, tracing, or a
   * test harness's byzantine signer). Production passes nothing.
   */
  wrapHandlers?: (handlers: SignerHandlers) => SignerHandlers;
}

/** Open the store and this node's identity (generated and sealed in the store on first start). */
export async function openSignerStore(
  cfg: Pick<SignerConfig, 'data_dir' | 'passphrase_file'>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { scryptN?: number } = {},
): Promise<{ store: SqliteSignerStore; identity: NodeIdentity & { dispose(): void }; identityPub: string }> {
  mkdirSync(cfg.data_dir, { recursive: true, mode: 0o700 });
  const passphrase = await readPassphrase(env, cfg.passphrase_file);
  const keySource = new PassphraseKeySource(passphrase, opts.scryptN ? { N: opts.scryptN } : {});
  let store: SqliteSignerStore;
  try {
    store = await SqliteSignerStore.open({ path: join(cfg.data_dir, 'signer.db'), keySource, create: true });
  } finally {
    keySource.dispose();
  }
  let secret = store.getIdentity();
  if (!secret) {
    secret = generateIdentityKey();
    store.setIdentity(secret);
  }
  const identity = softwareIdentity(secret);
  wipe(secret);
  return { store, identity, identityPub: identity.publicKeyHex };
}

export async function startSigner(
  cfg: SignerConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
  opts: StartSignerOptions = {},
): Promise<RunningSigner> {
  // Read before the (slow) store opens, so a bad token file stops the start at once.
  const metricsToken =
    cfg.metrics_token_file === undefined
      ? undefined
      : await readSecretFile(cfg.metrics_token_file, 'metrics token file');
  const metricsAccess: MetricsAccess = metricsToken === undefined ? {} : { token: metricsToken };
  const { store, identity, identityPub } = await openSignerStore(cfg, env, opts);
  const metrics = new SignerMetrics();
  const engine = new SigningEngine({
    store,
    clock: systemClock,
    policy: allowAll,
    maxLiveAttempts: cfg.max_live_attempts,
    attemptTtlMs: cfg.attempt_ttl_s * 1000,
    ...(opts.rng ? { rng: opts.rng } : {}),
  });
  const ceremonies = new CeremonyParticipant({ store, clock: systemClock, identity, roster: cfg.peers });
  const handlers = signerHandlers({ engine, ceremonies, store, identity });
  const app = await buildSignerServer({
    handlers: opts.wrapHandlers ? opts.wrapHandlers(handlers) : handlers,
    engine,
    ceremonies,
    store,
    identity,
    allowlist: new Set(cfg.coordinators),
    clock: systemClock,
    metrics,
    logger: (opts.logger as never) ?? { level: cfg.log_level },
    ...(cfg.tls ? { https: { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) } } : {}),
    // With a metrics listener /metrics is served there, and not on the main port.
    metricsAccess: cfg.metrics_listen === undefined ? metricsAccess : false,
  });
  if (env[PASSPHRASE_ENV] !== undefined) {
    // Named, never shown: the value is the key to every share in this store.
    app.log.warn(
      { variable: PASSPHRASE_ENV },
      `the store passphrase comes from the environment variable ${PASSPHRASE_ENV}, which this user's other processes can read (/proc/PID/environ) and child processes inherit; prefer a 0600 file (passphrase_file, FLOE_SIGNER_PASSPHRASE_FILE)`,
    );
  }
  let metricsApp: FastifyInstance | undefined;
  let metricsUrl: string | undefined;
  const { host, port } = splitListen(cfg.listen);
  try {
    await app.listen({ host, port });
    if (cfg.metrics_listen !== undefined) {
      metricsApp = await buildMetricsServer({
        engine,
        ceremonies,
        store,
        identity,
        metrics,
        access: { ...metricsAccess, open: true },
        logger: (opts.logger as never) ?? { level: cfg.log_level },
      });
      const m = splitListen(cfg.metrics_listen);
      await metricsApp.listen({ host: m.host, port: m.port });
      const maddr = metricsApp.server.address();
      metricsUrl = `http://${m.host}:${typeof maddr === 'object' && maddr ? maddr.port : m.port}`;
      app.log.info({ metrics_url: metricsUrl }, 'metrics and health on a separate listener');
    }
  } catch (e) {
    await metricsApp?.close();
    await app.close();
    store.close();
    identity.dispose();
    throw e;
  }
  const crypto = backendInfo();
  // Anything but the native backend is worth a warning: it is slower (DESIGN §10).
  app.log[crypto.name === 'native' ? 'info' : 'warn'](
    { crypto_backend: crypto.name, detail: crypto.description },
    `crypto backend ${crypto.name}: ${crypto.reason}`,
  );
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const url = `${cfg.tls ? 'https' : 'http'}://${host}:${actualPort}`;
  return {
    app,
    identityPub,
    url,
    ...(metricsApp ? { metricsApp } : {}),
    ...(metricsUrl ? { metricsUrl } : {}),
    store,
    async close() {
      await metricsApp?.close();
      await app.close();
      store.close();
      identity.dispose();
    },
  };
}
