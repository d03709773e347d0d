/**
 * Address service configuration (`floe address-service`, DESIGN §14): a JSON file, overridden by
 * environment variables.
 *
 *   listen              FLOE_ADDRESS_LISTEN           host:port, default 127.0.0.1:9000
 *   coordinator_url     FLOE_ADDRESS_COORDINATOR_URL  the coordinator's API (internal network),
 *                                                     default http://127.0.0.1:8080
 *   rate_limit_per_min  FLOE_ADDRESS_RATE_LIMIT_PER_MIN  requests per minute per client address,
 *                                                     counted here before anything is forwarded,
 *                                                     default 600 (the coordinator's own per-token
 *                                                     and per-tenant limits apply as well)
 *   trust_proxy         FLOE_ADDRESS_TRUST_PROXY      addresses or CIDRs of reverse proxies whose
 *                                                     X-Forwarded-For names the client (comma
 *                                                     separated); default none: the socket's peer
 *   request_timeout_ms  FLOE_ADDRESS_REQUEST_TIMEOUT_MS  deadline of one forwarded request beyond
 *                                                     the `wait` it asks for, default 15000
 *   tls.cert / tls.key  FLOE_ADDRESS_TLS_CERT / _KEY  PEM files: serve HTTPS
 *   log_level           FLOE_LOG_LEVEL                default info
 *
 * The service holds no secret: no key, no database credential, no token of its own.
 */
import { type Static, Type } from '@sinclair/typebox';
import { parseWith } from '../protocol/schema.js';
import { draftConfig, envList } from './file.js';

export const AddressServiceConfigSchema = Type.Object(
  {
    listen: Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' }),
    coordinator_url: Type.String({ pattern: '^https?://', maxLength: 500 }),
    rate_limit_per_min: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    trust_proxy: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 })),
    request_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000 }),
    tls: Type.Optional(
      Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false }),
    ),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
  },
  { additionalProperties: false },
);
export type AddressServiceConfig = Static<typeof AddressServiceConfigSchema>;

export const ADDRESS_SERVICE_DEFAULTS = {
  listen: '127.0.0.1:9000',
  coordinator_url: 'http://127.0.0.1:8080',
  rate_limit_per_min: 600,
  request_timeout_ms: 15_000,
  log_level: 'info',
};

export function loadAddressServiceConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): AddressServiceConfig {
  const { merged, set, abs } = draftConfig('address service', file, ADDRESS_SERVICE_DEFAULTS);
  set('listen', env.FLOE_ADDRESS_LISTEN);
  set('coordinator_url', env.FLOE_ADDRESS_COORDINATOR_URL);
  set(
    'rate_limit_per_min',
    env.FLOE_ADDRESS_RATE_LIMIT_PER_MIN && Number(env.FLOE_ADDRESS_RATE_LIMIT_PER_MIN),
  );
  set('trust_proxy', envList(env.FLOE_ADDRESS_TRUST_PROXY));
  set(
    'request_timeout_ms',
    env.FLOE_ADDRESS_REQUEST_TIMEOUT_MS && Number(env.FLOE_ADDRESS_REQUEST_TIMEOUT_MS),
  );
  set('log_level', env.FLOE_LOG_LEVEL);
  if (env.FLOE_ADDRESS_TLS_CERT || env.FLOE_ADDRESS_TLS_KEY) {
    merged.tls = { cert: env.FLOE_ADDRESS_TLS_CERT, key: env.FLOE_ADDRESS_TLS_KEY };
  }
  const cfg = parseWith(AddressServiceConfigSchema, merged, 'address service config');
  return {
    ...cfg,
    coordinator_url: cfg.coordinator_url.replace(/\/+$/, ''),
    ...(cfg.tls ? { tls: { cert: abs(cfg.tls.cert), key: abs(cfg.tls.key) } } : {}),
  };
}
