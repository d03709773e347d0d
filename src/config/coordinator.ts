/**
 * Coordinator configuration: a JSON file, overridden by environment variables.
 *
 *   data_dir           FLOE_COORDINATOR_DATA_DIR   identity key, JWT secret, embedded database (pgdata/)
 *   listen             FLOE_COORDINATOR_LISTEN     host:port, default 127.0.0.1:8080
 *   database_url       DATABASE_URL                a Postgres server; default: embedded PGlite in data_dir
 *   admin_token_file   FLOE_ADMIN_TOKEN_FILE       where the first admin token is written (mode 0600) on first
 *                                                  start; default <data_dir>/admin.token
 *   tls.cert / tls.key FLOE_COORDINATOR_TLS_CERT / _KEY
 *   session_ttl_s      default 600;  round_timeout_ms default 10000;  max_attempts default 5
 *   quarantine_after   default 3 faults
 *   rate_limit_per_s   FLOE_RATE_LIMIT_PER_S, default 50; rate_limit_burst FLOE_RATE_LIMIT_BURST, default 200
 *                      (per API token); auth_rate_limit_per_min FLOE_AUTH_RATE_LIMIT_PER_MIN, default 30 (token
 *                      exchange and refresh, per client address and per API token); token_create_limit_per_hour
 *                      FLOE_TOKEN_CREATE_LIMIT_PER_HOUR, default 100 (per tenant). Kept in the database: shared by
 *                      every coordinator of it
 *   metrics_token_file FLOE_COORDINATOR_METRICS_TOKEN_FILE  a 0600 file with a bearer token for GET /metrics
 *                      (any client presenting it); without it /metrics answers loopback clients only
 *   metrics_listen     FLOE_COORDINATOR_METRICS_LISTEN  host:port: serve /metrics (and /healthz) there; /metrics is
 *                      then no longer on the API
 *   round_timeout_ms   FLOE_ROUND_TIMEOUT_MS; resume_after_ms FLOE_RESUME_AFTER_MS (a stalled session is
 *                      resumed by any coordinator after this, default 15000); job_interval_ms FLOE_JOB_INTERVAL_MS
 *   signer_stale_after_ms  FLOE_SIGNER_STALE_AFTER_MS  a signer not seen (probe or request) for this long is
 *                      chosen only when fresher ones do not suffice, default 10000
 *   latency_bucket_ms  FLOE_LATENCY_BUCKET_MS  signers whose latencies fall in one bucket rank as equally fast
 *                      (then at random: load spreads over all members; or by identifier), default 100
 *   selection          FLOE_SELECTION  `spread` (default: equally good signers are chosen at random) or `ordered`
 *                      (the lowest identifiers: the same members sign every session while they are healthy)
 *   ceremony_ttl_s     FLOE_CEREMONY_TTL_S  a DKG ceremony not completed by then fails (and its key), default 600
 *   nostr_created_at_skew_s  how far a Nostr event's created_at may be from now, default 900
 *   publish_attempts   FLOE_PUBLISH_ATTEMPTS  tries per relay when publishing a signed Nostr event, default 5
 *   publish_retry_ms   FLOE_PUBLISH_RETRY_MS  delay before the second try, doubled for each further one,
 *                      default 4000 (5 tries span about a minute)
 *   publish_timeout_ms FLOE_PUBLISH_TIMEOUT_MS  deadline for one relay's OK (connecting included), default 10000
 *   bitcoin_network    FLOE_BITCOIN_NETWORK  mainnet | testnet | signet | regtest: the network of the addresses,
 *                      xpubs and PSBTs of this deployment, default regtest
 *   strict_thresholds  FLOE_STRICT_THRESHOLDS  refuse (threshold_unsafe) keys that break the threshold rules
 *                      (t <= 2n/3, n - t >= 2; src/domain/threshold-rules.ts) instead of warning, default false
 *   address_threshold  FLOE_ADDRESS_THRESHOLD  threshold of the keys of per-passphrase addresses, default 2
 *   address_signers    FLOE_ADDRESS_SIGNERS  identity keys (x-only hex, comma separated) of the signers of those
 *                      keys; default every active signer. Pin them: the same passphrase regenerates the same
 *                      address only over the same signers (docs/custody.md)
 *   address_create_limit_per_min  FLOE_ADDRESS_CREATE_LIMIT_PER_MIN  per-passphrase DKGs a tenant may start per
 *                      minute (database-backed, like the other limits), default 600
 *   approval_relays    FLOE_APPROVAL_RELAYS  relays (ws/wss, comma separated) for the requests to the stewards of
 *                      keys without relays of their own, and for reading their decisions (DESIGN §13); default none
 *                      (decisions then come by the API only)
 *   log_level          FLOE_LOG_LEVEL, default info
 */
import { type Static, Type } from '@sinclair/typebox';
import { FloeError } from '../protocol/errors.js';
import { Hex, parseWith } from '../protocol/schema.js';
import { draftConfig, envList } from './file.js';

export const CoordinatorConfigSchema = Type.Object(
  {
    data_dir: Type.String({ minLength: 1 }),
    listen: Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' }),
    database_url: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    admin_token_file: Type.Optional(Type.String({ minLength: 1 })),
    tls: Type.Optional(
      Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false }),
    ),
    session_ttl_s: Type.Integer({ minimum: 10, maximum: 86_400 }),
    round_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000 }),
    max_attempts: Type.Integer({ minimum: 1, maximum: 50 }),
    quarantine_after: Type.Integer({ minimum: 1, maximum: 1000 }),
    rate_limit_per_s: Type.Integer({ minimum: 1, maximum: 100_000 }),
    rate_limit_burst: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    auth_rate_limit_per_min: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    token_create_limit_per_hour: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    metrics_token_file: Type.Optional(Type.String({ minLength: 1 })),
    metrics_listen: Type.Optional(Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' })),
    resume_after_ms: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
    job_interval_ms: Type.Integer({ minimum: 50, maximum: 600_000 }),
    signer_stale_after_ms: Type.Integer({ minimum: 100, maximum: 86_400_000 }),
    latency_bucket_ms: Type.Integer({ minimum: 1, maximum: 3_600_000 }),
    selection: Type.Union([Type.Literal('spread'), Type.Literal('ordered')]),
    ceremony_ttl_s: Type.Integer({ minimum: 1, maximum: 86_400 }),
    nostr_created_at_skew_s: Type.Integer({ minimum: 0, maximum: 10 * 365 * 86_400 }),
    approval_relays: Type.Optional(
      Type.Array(Type.String({ pattern: '^wss?://', maxLength: 2048 }), { maxItems: 20, uniqueItems: true }),
    ),
    publish_attempts: Type.Integer({ minimum: 1, maximum: 50 }),
    publish_retry_ms: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
    publish_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000 }),
    bitcoin_network: Type.Union(['mainnet', 'testnet', 'signet', 'regtest'].map((n) => Type.Literal(n))),
    strict_thresholds: Type.Boolean(),
    address_threshold: Type.Integer({ minimum: 2, maximum: 255 }),
    address_signers: Type.Optional(Type.Array(Hex(32), { minItems: 2, maxItems: 255, uniqueItems: true })),
    address_create_limit_per_min: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
  },
  { additionalProperties: false },
);
export type CoordinatorConfig = Static<typeof CoordinatorConfigSchema>;

export const COORDINATOR_DEFAULTS = {
  data_dir: './.floe/coordinator',
  listen: '127.0.0.1:8080',
  session_ttl_s: 600,
  round_timeout_ms: 10_000,
  max_attempts: 5,
  quarantine_after: 3,
  rate_limit_per_s: 50,
  rate_limit_burst: 200,
  auth_rate_limit_per_min: 30,
  token_create_limit_per_hour: 100,
  resume_after_ms: 15_000,
  job_interval_ms: 2_000,
  signer_stale_after_ms: 10_000,
  latency_bucket_ms: 100,
  selection: 'spread',
  ceremony_ttl_s: 600,
  nostr_created_at_skew_s: 900,
  publish_attempts: 5,
  publish_retry_ms: 4000,
  publish_timeout_ms: 10_000,
  bitcoin_network: 'regtest',
  strict_thresholds: false,
  address_threshold: 2,
  address_create_limit_per_min: 600,
  log_level: 'info',
};

export function loadCoordinatorConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): CoordinatorConfig {
  const { merged, set, abs } = draftConfig('coordinator', file, COORDINATOR_DEFAULTS);
  set('data_dir', env.FLOE_COORDINATOR_DATA_DIR);
  set('listen', env.FLOE_COORDINATOR_LISTEN);
  set('database_url', env.DATABASE_URL);
  set('admin_token_file', env.FLOE_ADMIN_TOKEN_FILE);
  set('log_level', env.FLOE_LOG_LEVEL);
  set('round_timeout_ms', env.FLOE_ROUND_TIMEOUT_MS && Number(env.FLOE_ROUND_TIMEOUT_MS));
  set('resume_after_ms', env.FLOE_RESUME_AFTER_MS && Number(env.FLOE_RESUME_AFTER_MS));
  set('job_interval_ms', env.FLOE_JOB_INTERVAL_MS && Number(env.FLOE_JOB_INTERVAL_MS));
  set('rate_limit_per_s', env.FLOE_RATE_LIMIT_PER_S && Number(env.FLOE_RATE_LIMIT_PER_S));
  set('rate_limit_burst', env.FLOE_RATE_LIMIT_BURST && Number(env.FLOE_RATE_LIMIT_BURST));
  set(
    'auth_rate_limit_per_min',
    env.FLOE_AUTH_RATE_LIMIT_PER_MIN && Number(env.FLOE_AUTH_RATE_LIMIT_PER_MIN),
  );
  set(
    'token_create_limit_per_hour',
    env.FLOE_TOKEN_CREATE_LIMIT_PER_HOUR && Number(env.FLOE_TOKEN_CREATE_LIMIT_PER_HOUR),
  );
  set('metrics_token_file', env.FLOE_COORDINATOR_METRICS_TOKEN_FILE);
  set('metrics_listen', env.FLOE_COORDINATOR_METRICS_LISTEN);
  set('signer_stale_after_ms', env.FLOE_SIGNER_STALE_AFTER_MS && Number(env.FLOE_SIGNER_STALE_AFTER_MS));
  set('latency_bucket_ms', env.FLOE_LATENCY_BUCKET_MS && Number(env.FLOE_LATENCY_BUCKET_MS));
  set('selection', env.FLOE_SELECTION);
  set('ceremony_ttl_s', env.FLOE_CEREMONY_TTL_S && Number(env.FLOE_CEREMONY_TTL_S));
  set('approval_relays', envList(env.FLOE_APPROVAL_RELAYS));
  set('publish_attempts', env.FLOE_PUBLISH_ATTEMPTS && Number(env.FLOE_PUBLISH_ATTEMPTS));
  set('publish_retry_ms', env.FLOE_PUBLISH_RETRY_MS && Number(env.FLOE_PUBLISH_RETRY_MS));
  set('publish_timeout_ms', env.FLOE_PUBLISH_TIMEOUT_MS && Number(env.FLOE_PUBLISH_TIMEOUT_MS));
  set('bitcoin_network', env.FLOE_BITCOIN_NETWORK);
  set(
    'strict_thresholds',
    env.FLOE_STRICT_THRESHOLDS && ['1', 'true', 'yes'].includes(env.FLOE_STRICT_THRESHOLDS.toLowerCase()),
  );
  set('address_threshold', env.FLOE_ADDRESS_THRESHOLD && Number(env.FLOE_ADDRESS_THRESHOLD));
  set('address_signers', envList(env.FLOE_ADDRESS_SIGNERS));
  set(
    'address_create_limit_per_min',
    env.FLOE_ADDRESS_CREATE_LIMIT_PER_MIN && Number(env.FLOE_ADDRESS_CREATE_LIMIT_PER_MIN),
  );
  if (env.FLOE_COORDINATOR_TLS_CERT || env.FLOE_COORDINATOR_TLS_KEY) {
    merged.tls = { cert: env.FLOE_COORDINATOR_TLS_CERT, key: env.FLOE_COORDINATOR_TLS_KEY };
  }
  const cfg = parseWith(CoordinatorConfigSchema, merged, 'coordinator config');
  if (cfg.metrics_listen !== undefined && cfg.metrics_listen === cfg.listen && !cfg.listen.endsWith(':0')) {
    throw new FloeError('invalid_request', 'coordinator config: metrics_listen must differ from listen');
  }
  return {
    ...cfg,
    data_dir: abs(cfg.data_dir),
    ...(cfg.admin_token_file ? { admin_token_file: abs(cfg.admin_token_file) } : {}),
    ...(cfg.metrics_token_file ? { metrics_token_file: abs(cfg.metrics_token_file) } : {}),
    ...(cfg.tls ? { tls: { cert: abs(cfg.tls.cert), key: abs(cfg.tls.key) } } : {}),
  };
}
