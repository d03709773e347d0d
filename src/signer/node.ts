/** Assembles a signer node from its configuration: store, identity, engine, ceremonies, HTTP server. */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { splitListen } from '../config/listen.js';
import { type SignerConfig, signerBitcoinPolicy } from '../config/signer.js';
import { backendInfo } from '../crypto/backend.js';
import { wipe } from '../crypto/hex.js';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { FloeError } from '../protocol/errors.js';
import { BitcoinSigningPolicy } from './bitcoin-policy.js';
import { CeremonyParticipant } from './ceremony.js';
import { EcdhResponder } from './ecdh.js';
import { SigningEngine } from './engine.js';
import { KeyFreezes } from './freeze.js';
import { type DeterministicSecret, deriveIdentityKey, StandInCapture } from './keys/deterministic.js';
import type { KeySource } from './keys/key-source.js';
import { PASSPHRASE_ENV, PassphraseKeySource, readPassphrase, readSecretFile } from './keys/passphrase.js';
import { HSM_PIN_ENV, Pkcs11KeySource, readHsmPin } from './keys/pkcs11.js';
import { SignerMetrics } from './metrics.js';
import { allowAll } from './policy.js';
import { type Rng, systemClock } from './ports.js';
import { RefreshParticipant } from './refresh.js';
import { RepairParticipant } from './repair.js';
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
  /** HMAC for the deterministic DKG: the HSM's key, or the store's stand-in (keys/deterministic.ts). */
  deterministic: DeterministicSecret;
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

/**
 * The configured key source: the passphrase (default) or a PKCS#11 token (`key_source`), and
 * the deterministic secret that goes with it once the store is open (the token's HMAC key, or
 * the stand-in kept in the store). A PIN or passphrase meant for the other kind is refused.
 */
async function signerKeySource(
  cfg: Pick<SignerConfig, 'passphrase_file' | 'key_source'>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { scryptN?: number },
): Promise<{ keySource: KeySource; deterministic(): DeterministicSecret }> {
  const ks = cfg.key_source;
  if (ks?.kind === 'pkcs11') {
    if (env[PASSPHRASE_ENV] !== undefined || cfg.passphrase_file !== undefined) {
      throw new FloeError(
        'invalid_request',
        `this signer's store is sealed by an HSM (key_source pkcs11) and takes no passphrase; unset ${PASSPHRASE_ENV} / passphrase_file`,
      );
    }
    const src = new Pkcs11KeySource({
      module: ks.module,
      ...(ks.token_label !== undefined ? { tokenLabel: ks.token_label } : { slot: ks.slot! }),
      pin: await readHsmPin(env, ks.pin_file),
      ...(ks.wrap_key_label ? { wrapKeyLabel: ks.wrap_key_label } : {}),
      ...(ks.hmac_key_label ? { hmacKeyLabel: ks.hmac_key_label } : {}),
    });
    try {
      // Both keys, present and non-extractable, before anything is created or opened.
      src.checkKeys();
    } catch (e) {
      src.dispose();
      throw e;
    }
    return { keySource: src, deterministic: () => src };
  }
  if (env[HSM_PIN_ENV] !== undefined) {
    throw new FloeError('invalid_request', `${HSM_PIN_ENV} is set but no HSM is configured (key_source)`);
  }
  const passphrase = await readPassphrase(env, cfg.passphrase_file);
  const capture = new StandInCapture(
    new PassphraseKeySource(passphrase, opts.scryptN ? { N: opts.scryptN } : {}),
  );
  return { keySource: capture, deterministic: () => capture.take() };
}

/**
 * Open the store and this node's identity (generated and sealed in the store on first start).
 * With `keepDeterministic` the deterministic secret is returned too (the caller disposes it);
 * otherwise the key source is disposed once the store is open.
 */
export async function openSignerStore(
  cfg: Pick<SignerConfig, 'data_dir' | 'passphrase_file' | 'key_source'>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { scryptN?: number; keepDeterministic?: boolean } = {},
): Promise<{
  store: SqliteSignerStore;
  identity: NodeIdentity & { dispose(): void };
  identityPub: string;
  deterministic?: DeterministicSecret;
}> {
  mkdirSync(cfg.data_dir, { recursive: true, mode: 0o700 });
  const keys = await signerKeySource(cfg, env, opts);
  let store: SqliteSignerStore;
  let deterministic: DeterministicSecret | undefined;
  try {
    store = await SqliteSignerStore.open({
      path: join(cfg.data_dir, 'signer.db'),
      keySource: keys.keySource,
      create: true,
    });
    if (keys.keySource instanceof Pkcs11KeySource) await identityFromHsm(store, keys.keySource);
    if (opts.keepDeterministic) deterministic = keys.deterministic();
  } finally {
    // An HSM source that is kept as the deterministic secret keeps its session.
    if ((deterministic as unknown) !== keys.keySource) await keys.keySource.dispose();
  }
  let secret = store.getIdentity();
  if (!secret) {
    secret = generateIdentityKey();
    store.setIdentity(secret);
  }
  const identity = softwareIdentity(secret);
  wipe(secret);
  return { store, identity, identityPub: identity.publicKeyHex, ...(deterministic ? { deterministic } : {}) };
}

/**
 * With an HSM, a store without an identity gets the one its token's HMAC key gives
 * ({@link deriveIdentityKey}), not a random one: a signer rebuilt on an empty data dir from its
 * HSM comes back with the identity its peers pin in their rosters (DESIGN §11, §14), so the
 * configs of a deployment survive a total loss. A store that has an identity keeps it.
 */
async function identityFromHsm(store: SqliteSignerStore, hsm: DeterministicSecret): Promise<void> {
  const existing = store.getIdentity();
  if (existing) {
    wipe(existing);
    return;
  }
  try {
    const k = await deriveIdentityKey(hsm);
    store.setIdentity(k);
    wipe(k);
  } catch (e) {
    store.close();
    throw e;
  }
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
  // The PSBT policy firewall (issue 14): this signer's own, from its own config, checked before
  // anything opens.
  const btcPolicy = signerBitcoinPolicy(cfg);
  const opened = await openSignerStore(cfg, env, { scryptN: opts.scryptN, keepDeterministic: true });
  const { store, identity, identityPub } = opened;
  const deterministic = opened.deterministic!;
  const metrics = new SignerMetrics();
  const bitcoinPolicy = new BitcoinSigningPolicy({
    policy: btcPolicy,
    clock: systemClock,
    ...(cfg.sign_intents ? { intents: cfg.sign_intents } : {}),
  });
  const engine = new SigningEngine({
    store,
    clock: systemClock,
    policy: bitcoinPolicy,
    maxLiveAttempts: cfg.max_live_attempts,
    attemptTtlMs: cfg.attempt_ttl_s * 1000,
    ...(opts.rng ? { rng: opts.rng } : {}),
  });
  const ceremonies = new CeremonyParticipant({
    store,
    clock: systemClock,
    identity,
    roster: cfg.peers,
    deterministic,
  });
  const refresh = new RefreshParticipant({ store, clock: systemClock, identity, roster: cfg.peers });
  const repair = new RepairParticipant({ store, clock: systemClock, identity, roster: cfg.peers });
  const ecdh = new EcdhResponder({ store, clock: systemClock, policy: allowAll });
  const freezes = new KeyFreezes({
    store,
    operators: cfg.operators ?? [],
    clock: systemClock,
    dropKey: (keyId) => engine.dropKey(keyId),
  });
  const handlers = signerHandlers({ engine, ceremonies, refresh, repair, store, identity, ecdh, freezes });
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
  if (env[HSM_PIN_ENV] !== undefined) {
    // Named, never shown.
    app.log.warn(
      { variable: HSM_PIN_ENV },
      `the HSM PIN comes from the environment variable ${HSM_PIN_ENV}, which this user's other processes can read (/proc/PID/environ) and child processes inherit; prefer a 0600 file (key_source.pin_file, FLOE_SIGNER_HSM_PIN_FILE)`,
    );
  }
  app.log.info(
    {
      bitcoin_network: btcPolicy.network,
      bitcoin_policy: cfg.bitcoin_policy_file ?? (cfg.bitcoin_policy !== undefined ? 'inline' : 'none'),
    },
    cfg.bitcoin_policy_file || cfg.bitcoin_policy !== undefined
      ? `PSBTs of ${btcPolicy.network} are signed under this signer's bitcoin policy`
      : `no bitcoin policy: PSBTs of ${btcPolicy.network} are signed with the network and change rules only`,
  );
  app.log.info(
    { deterministic_secret: deterministic.origin },
    deterministic.origin === 'hsm'
      ? `deterministic secret: ${deterministic.description}`
      : 'no HSM configured: the deterministic secret is a stand-in kept in this signer store; what is derived from it cannot be regenerated from HSM backups (back up the store)',
  );
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
    deterministic.dispose();
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
    deterministic,
    async close() {
      await metricsApp?.close();
      await app.close();
      store.close();
      identity.dispose();
      deterministic.dispose();
    },
  };
}
