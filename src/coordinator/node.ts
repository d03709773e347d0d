/** Assembles a coordinator process: database, identity, JWT secret, application, HTTP API, jobs. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { networkByName } from '../bitcoin/network.js';
import type { CoordinatorConfig } from '../config/coordinator.js';
import { splitListen } from '../config/listen.js';
import { loadOrCreateSecret, readSecretFile, writeSecretFile } from '../config/secret-file.js';
import { backendInfo } from '../crypto/backend.js';
import { fromHex, toHex, wipe } from '../crypto/hex.js';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { FloeError } from '../protocol/errors.js';
import { createApiToken } from './auth/tokens.js';
import type { Backend } from './backend.js';
import { loadBunkerSealer } from './bunkers/seal.js';
import { buildApi, buildMetricsApi } from './http.js';
import { CoordinatorMetrics } from './metrics.js';
import { openBackend } from './pg-backend.js';
import { Coordinator } from './services/index.js';

export const DEFAULT_TENANT = 'default';

export interface RunningCoordinator {
  app: FastifyInstance;
  coordinator: Coordinator;
  backend: Backend;
  url: string;
  /** Where /metrics is served when `metrics_listen` is set (not on the API then). */
  metricsUrl?: string;
  identityPub: string;
  /** Set when this start created the first admin token (and wrote it to admin_token_file,
   *  default `<data_dir>/admin.token`). */
  adminToken?: string;
  close(): Promise<void>;
}

/** The coordinator's identity key (signs envelopes to signers), kept in a 0600 file in the data dir. */
export function coordinatorIdentity(dataDir: string): {
  identity: NodeIdentity & { dispose(): void };
  identityPub: string;
} {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const hex = loadOrCreateSecret(join(dataDir, 'identity.key'), 'coordinator identity key', () =>
    toHex(generateIdentityKey()),
  );
  const secret = fromHex(hex, 'identity key', 32);
  const identity = softwareIdentity(secret);
  wipe(secret);
  return { identity, identityPub: identity.publicKeyHex };
}

/** Where the address secret lives in a coordinator data dir (DESIGN §14; back it up with the configs). */
export const ADDRESS_SECRET_FILE = 'address.key';

/**
 * The address secret (services/addresses.ts): 32 random bytes in a 0600 file in the data dir,
 * made on first start. The lookup ids of passphrases and what the signers' HSMs HMAC are keyed
 * by it: regenerating per-passphrase addresses after a total loss needs this file (docs/custody.md).
 */
export function loadAddressSecret(dataDir: string): Uint8Array {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return fromHex(
    loadOrCreateSecret(join(dataDir, ADDRESS_SECRET_FILE), 'address secret', () => toHex(randomBytes(32))),
    'address secret',
    32,
  );
}

/** The metrics bearer token: a file only its owner can read (like every secret file), not empty. */
export function readMetricsToken(path: string): string {
  const token = readSecretFile(path, 'metrics token file');
  if (!token) throw new FloeError('invalid_request', `metrics token file ${path} is empty`);
  return token;
}

export async function startCoordinator(
  cfg: CoordinatorConfig,
  opts: { logger?: unknown; jobIntervalMs?: number; resumeAfterMs?: number } = {},
): Promise<RunningCoordinator> {
  // Read before anything is opened: a bad file stops the start at once.
  const metricsToken = cfg.metrics_token_file ? readMetricsToken(cfg.metrics_token_file) : undefined;
  const { identity, identityPub } = coordinatorIdentity(cfg.data_dir);
  const jwtSecret = fromHex(
    loadOrCreateSecret(join(cfg.data_dir, 'jwt.key'), 'JWT secret', () => toHex(randomBytes(32))),
    'jwt secret',
    32,
  );
  const bunkerSealer = loadBunkerSealer(cfg.data_dir);
  const addressSecret = loadAddressSecret(cfg.data_dir);
  const backend = await openBackend(cfg.database_url ? { url: cfg.database_url } : { dataDir: cfg.data_dir });
  const metrics = new CoordinatorMetrics();
  const api = { logger: (opts.logger as never) ?? { level: cfg.log_level } };
  let app: FastifyInstance | undefined;
  const coordinator = new Coordinator({
    backend,
    identity,
    metrics,
    sessionTtlMs: cfg.session_ttl_s * 1000,
    roundTimeoutMs: cfg.round_timeout_ms,
    maxAttempts: cfg.max_attempts,
    quarantineAfter: cfg.quarantine_after,
    signerStaleAfterMs: cfg.signer_stale_after_ms,
    latencyBucketMs: cfg.latency_bucket_ms,
    selection: cfg.selection,
    jobIntervalMs: opts.jobIntervalMs ?? cfg.job_interval_ms,
    resumeAfterMs: opts.resumeAfterMs ?? cfg.resume_after_ms,
    ceremonyTtlMs: cfg.ceremony_ttl_s * 1000,
    nostrCreatedAtSkewS: cfg.nostr_created_at_skew_s,
    ...(cfg.approval_relays ? { approvalRelays: cfg.approval_relays } : {}),
    strictThresholds: cfg.strict_thresholds,
    bitcoinNetwork: networkByName(cfg.bitcoin_network).name,
    addresses: {
      secret: addressSecret,
      network: networkByName(cfg.bitcoin_network),
      threshold: cfg.address_threshold,
      ...(cfg.address_signers ? { signers: cfg.address_signers } : {}),
    },
    bunkers: { db: backend.db, sealer: bunkerSealer },
    webhookSealKey: jwtSecret,
    publish: {
      maxAttempts: cfg.publish_attempts,
      retryMs: cfg.publish_retry_ms,
      timeoutMs: cfg.publish_timeout_ms,
    },
    log: {
      info: (o, m) => app?.log.info(o, m),
      warn: (o, m) => app?.log.warn(o, m),
    },
  });

  // First start: a tenant and an admin token, written once to admin_token_file (0600).
  let adminToken: string | undefined;
  // Without admin_token_file the token goes next to the identity key, never to a log.
  const adminTokenFile = cfg.admin_token_file ?? join(cfg.data_dir, 'admin.token');
  let adminTokenStale = false;
  await backend.ensureTenant(DEFAULT_TENANT, 'default', Date.now());
  if ((await backend.listTokens(DEFAULT_TENANT)).length === 0) {
    const t = await createApiToken(backend, {
      tenantId: DEFAULT_TENANT,
      role: 'admin',
      label: 'bootstrap admin',
      now: Date.now(),
    });
    adminToken = t.token;
    if (!existsSync(adminTokenFile)) writeSecretFile(adminTokenFile, t.token);
    else adminTokenStale = true;
  }

  app = await buildApi({
    coordinator,
    metrics,
    jwtSecret,
    logger: api.logger,
    rateLimit: {
      perSecond: cfg.rate_limit_per_s,
      burst: cfg.rate_limit_burst,
      authPerMinute: cfg.auth_rate_limit_per_min,
      tokenCreatePerHour: cfg.token_create_limit_per_hour,
      addressCreatePerMinute: cfg.address_create_limit_per_min,
    },
    // With metrics_listen, /metrics lives on its own listener and not on the API.
    metricsAccess: cfg.metrics_listen ? false : metricsToken !== undefined ? { token: metricsToken } : {},
    ...(cfg.tls ? { https: { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) } } : {}),
  });
  let metricsApp: FastifyInstance | undefined;
  let metricsUrl: string | undefined;
  const listenUrl = async (a: FastifyInstance, listen: string, scheme: string) => {
    const { host, port } = splitListen(listen);
    await a.listen({ host, port });
    const addr = a.server.address();
    return `${scheme}://${host}:${typeof addr === 'object' && addr ? addr.port : port}`;
  };
  if (cfg.metrics_listen) {
    metricsApp = await buildMetricsApi({
      coordinator,
      metrics,
      logger: api.logger,
      ...(metricsToken !== undefined ? { token: metricsToken } : {}),
    });
    metricsUrl = await listenUrl(metricsApp, cfg.metrics_listen, 'http');
  }
  let url: string;
  try {
    url = await listenUrl(app, cfg.listen, cfg.tls ? 'https' : 'http');
  } catch (e) {
    await metricsApp?.close();
    throw e;
  }
  coordinator.bunkerHost?.setApiUrl(url);
  coordinator.start();
  const crypto = backendInfo();
  // Anything but the native backend is worth a warning: it is slower (DESIGN §10).
  app.log[crypto.name === 'native' ? 'info' : 'warn'](
    { crypto_backend: crypto.name, detail: crypto.description },
    `crypto backend ${crypto.name}: ${crypto.reason}`,
  );
  if (metricsUrl) app.log.info({ metrics_url: metricsUrl }, 'metrics are served on their own listener');
  if (adminTokenStale) {
    app.log.warn(
      { admin_token_file: adminTokenFile },
      'the database is new but the admin token file already exists (from an earlier database?); the new admin token was not written: remove the file and the database to start afresh',
    );
  }
  return {
    app,
    coordinator,
    backend,
    url,
    ...(metricsUrl ? { metricsUrl } : {}),
    identityPub,
    ...(adminToken ? { adminToken } : {}),
    async close() {
      await metricsApp?.close();
      await app!.close();
      await coordinator.close();
      await backend.close();
      identity.dispose();
      bunkerSealer.dispose();
    },
  };
}
