/**
 * Signer configuration: a JSON file, overridden by environment variables.
 *
 *   data_dir            FLOE_SIGNER_DATA_DIR       where signer.db lives
 *   listen              FLOE_SIGNER_LISTEN         host:port, default 127.0.0.1:7101
 *   coordinators        FLOE_SIGNER_COORDINATORS   allowlist of coordinator identity keys (x-only hex, comma separated)
 *   passphrase_file     FLOE_SIGNER_PASSPHRASE_FILE  (or the passphrase itself in FLOE_SIGNER_PASSPHRASE)
 *   tls.cert / tls.key  FLOE_SIGNER_TLS_CERT / _KEY  PEM files: serve HTTPS
 *   max_live_attempts   FLOE_SIGNER_MAX_LIVE_ATTEMPTS  default 1024
 *   attempt_ttl_s       FLOE_SIGNER_ATTEMPT_TTL_S      default 600
 *   log_level           FLOE_LOG_LEVEL                 default info
 *
 * The node's identity key is generated on first start and kept encrypted in the store.
 */
import { type Static, Type } from '@sinclair/typebox';
import { FloeError } from '../protocol/errors.js';
import { Hex, parseWith } from '../protocol/schema.js';
import { draftConfig, envList } from './file.js';

export const SignerConfigSchema = Type.Object(
  {
    data_dir: Type.String({ minLength: 1 }),
    listen: Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' }),
    coordinators: Type.Array(Hex(32), { minItems: 1, maxItems: 64 }),
    passphrase_file: Type.Optional(Type.String({ minLength: 1 })),
    tls: Type.Optional(
      Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false }),
    ),
    max_live_attempts: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    attempt_ttl_s: Type.Integer({ minimum: 1, maximum: 86_400 }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
  },
  { additionalProperties: false },
);
export type SignerConfig = Static<typeof SignerConfigSchema>;

export const SIGNER_DEFAULTS = {
  listen: '127.0.0.1:7101',
  max_live_attempts: 1024,
  attempt_ttl_s: 600,
  log_level: 'info',
};

export function loadSignerConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): SignerConfig {
  const { merged, set, abs } = draftConfig('signer', file, SIGNER_DEFAULTS);
  set('data_dir', env.FLOE_SIGNER_DATA_DIR);
  set('listen', env.FLOE_SIGNER_LISTEN);
  set('coordinators', envList(env.FLOE_SIGNER_COORDINATORS));
  set('passphrase_file', env.FLOE_SIGNER_PASSPHRASE_FILE);
  set('max_live_attempts', env.FLOE_SIGNER_MAX_LIVE_ATTEMPTS && Number(env.FLOE_SIGNER_MAX_LIVE_ATTEMPTS));
  set('attempt_ttl_s', env.FLOE_SIGNER_ATTEMPT_TTL_S && Number(env.FLOE_SIGNER_ATTEMPT_TTL_S));
  set('log_level', env.FLOE_LOG_LEVEL);
  if (env.FLOE_SIGNER_TLS_CERT || env.FLOE_SIGNER_TLS_KEY) {
    merged.tls = { cert: env.FLOE_SIGNER_TLS_CERT, key: env.FLOE_SIGNER_TLS_KEY };
  }
  if (!merged.data_dir)
    throw new FloeError('invalid_request', 'signer config: data_dir is required (or FLOE_SIGNER_DATA_DIR)');
  const coords = merged.coordinators;
  if (!Array.isArray(coords) || coords.length === 0) {
    throw new FloeError(
      'invalid_request',
      'signer config: no coordinator allowlist; set "coordinators" (x-only identity keys) or FLOE_SIGNER_COORDINATORS',
    );
  }
  const cfg = parseWith(SignerConfigSchema, merged, 'signer config');
  return {
    ...cfg,
    data_dir: abs(cfg.data_dir),
    ...(cfg.passphrase_file ? { passphrase_file: abs(cfg.passphrase_file) } : {}),
    ...(cfg.tls ? { tls: { cert: abs(cfg.tls.cert), key: abs(cfg.tls.key) } } : {}),
  };
}
