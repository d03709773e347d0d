/** Assembles a signer node from its configuration: store, identity, engine, ceremonies, HTTP server. */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { SignerConfig } from '../config/signer.js';
import { splitListen } from '../config/signer.js';
import { toHex } from '../crypto/hex.js';
import { generateIdentityKey, identityPublicKey } from '../crypto/identity.js';
import { CeremonyParticipant } from './ceremony.js';
import { FAULT_NAMES, SigningEngine } from './engine.js';
import { PassphraseKeySource, readPassphrase } from './keystore.js';
import { SignerMetrics } from './metrics.js';
import { allowAll } from './policy.js';
import { type Rng, systemClock } from './ports.js';
import { buildSignerServer } from './server.js';
import { SqliteSignerStore } from './store.js';

export interface RunningSigner {
  app: FastifyInstance;
  identityPub: string;
  url: string;
  store: SqliteSignerStore;
  close(): Promise<void>;
}

export async function openSignerStore(
  cfg: Pick<SignerConfig, 'data_dir' | 'passphrase_file'>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { scryptN?: number } = {},
): Promise<{ store: SqliteSignerStore; identity: Uint8Array; identityPub: string }> {
  mkdirSync(cfg.data_dir, { recursive: true, mode: 0o700 });
  const passphrase = await readPassphrase(env, cfg.passphrase_file);
  const keySource = new PassphraseKeySource(passphrase, opts.scryptN ? { N: opts.scryptN } : {});
  let store: SqliteSignerStore;
  try {
    store = await SqliteSignerStore.open({ path: join(cfg.data_dir, 'signer.db'), keySource, create: true });
  } finally {
    keySource.dispose();
  }
  let identity = store.getIdentity();
  if (!identity) {
    identity = generateIdentityKey();
    store.setIdentity(identity);
  }
  return { store, identity, identityPub: toHex(identityPublicKey(identity)) };
}

export async function startSigner(
  cfg: SignerConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
  opts: { scryptN?: number; logger?: unknown; rng?: Rng } = {},
): Promise<RunningSigner> {
  const { store, identity, identityPub } = await openSignerStore(cfg, env, opts);
  const metrics = new SignerMetrics();
  const engine = new SigningEngine({
    store,
    clock: systemClock,
    policy: allowAll,
    maxLiveAttempts: cfg.max_live_attempts,
    attemptTtlMs: cfg.attempt_ttl_s * 1000,
    faults: Object.fromEntries(
      (cfg.faults ?? []).map((f) => [FAULT_NAMES[f as keyof typeof FAULT_NAMES], true]),
    ),
    ...(opts.rng ? { rng: opts.rng } : {}),
  });
  const ceremonies = new CeremonyParticipant({ store, clock: systemClock, identity, identityPub });
  const app = await buildSignerServer({
    engine,
    ceremonies,
    store,
    identity,
    identityPub,
    allowlist: new Set(cfg.coordinators),
    clock: systemClock,
    metrics,
    logger: (opts.logger as never) ?? { level: cfg.log_level },
    ...(cfg.tls ? { https: { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) } } : {}),
  });
  const { host, port } = splitListen(cfg.listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const url = `${cfg.tls ? 'https' : 'http'}://${host}:${actualPort}`;
  return {
    app,
    identityPub,
    url,
    store,
    async close() {
      await app.close();
      store.close();
    },
  };
}
