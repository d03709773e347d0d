/**
 * Signer configuration: a JSON file, overridden by environment variables.
 *
 *   data_dir            FLOE_SIGNER_DATA_DIR       where signer.db lives
 *   listen              FLOE_SIGNER_LISTEN         host:port, default 127.0.0.1:7101
 *   coordinators        FLOE_SIGNER_COORDINATORS   allowlist of coordinator identity keys (x-only hex, comma separated)
 *   peers               FLOE_SIGNER_PEERS          the roster (DESIGN §11): identity keys of the signers this node
 *                                                  may share a key with (x-only hex, comma separated); DKG and
 *                                                  import refuse any member outside it. Set by an operator on
 *                                                  the signer (floe init / floe up write it), never through the
 *                                                  coordinator.
 *   operators           FLOE_SIGNER_OPERATORS      operator keys (x-only hex, comma separated) whose signed
 *                                                  instructions (freeze / unfreeze a key: the kill switch,
 *                                                  src/signer/freeze.ts) this node applies. Set on the signer
 *                                                  (floe init / floe up pin .floe/operator.key's), never
 *                                                  through the coordinator; none: instructions are refused.
 *   passphrase_file     FLOE_SIGNER_PASSPHRASE_FILE  (or the passphrase itself in FLOE_SIGNER_PASSPHRASE)
 *   tls.cert / tls.key  FLOE_SIGNER_TLS_CERT / _KEY  PEM files: serve HTTPS
 *   max_live_attempts   FLOE_SIGNER_MAX_LIVE_ATTEMPTS  default 1024
 *   attempt_ttl_s       FLOE_SIGNER_ATTEMPT_TTL_S      default 600
 *   log_level           FLOE_LOG_LEVEL                 default info
 *   metrics_token_file  FLOE_SIGNER_METRICS_TOKEN_FILE  0600 file with a bearer token: /metrics needs it
 *                                                  (from any address); without it, loopback peers only
 *   metrics_listen      FLOE_SIGNER_METRICS_LISTEN     host:port: serve /metrics and /healthz there
 *                                                  instead (plain HTTP, bind it to a private interface)
 *   key_source          what seals the store's data key: {kind: 'passphrase'} (the default) or
 *                       {kind: 'pkcs11', module, token_label | slot, pin_file, wrap_key_label?, hmac_key_label?}
 *                       (src/signer/keys/pkcs11.ts), with
 *     .module           FLOE_SIGNER_PKCS11_MODULE      path of the PKCS#11 library (setting it selects pkcs11)
 *     .token_label      FLOE_SIGNER_PKCS11_TOKEN       the token's label
 *     .pin_file         FLOE_SIGNER_HSM_PIN_FILE       0600 file with the user PIN (or the PIN itself in
 *                                                  FLOE_SIGNER_HSM_PIN)
 *   sign_intents        FLOE_SIGNER_SIGN_INTENTS       the intent types this signer signs (comma separated;
 *                                                  default all): a custody signer lists bitcoin_psbt only,
 *                                                  so that no message intent (any digest) passes by its
 *                                                  PSBT policy
 *   bitcoin_network     FLOE_SIGNER_BITCOIN_NETWORK    mainnet | testnet | signet | regtest: the only network
 *                                                  whose PSBTs this signer signs (rule network_mismatch);
 *                                                  default the policy's network, else regtest
 *   bitcoin_policy      the PSBT policy firewall (src/bitcoin/policy.ts BitcoinPolicySchema), inline, or
 *   bitcoin_policy_file FLOE_SIGNER_BITCOIN_POLICY_FILE  a JSON file with it (read and checked at start).
 *                                                  Only here, on the signer: never set through the
 *                                                  coordinator. Without one, PSBTs of bitcoin_network are
 *                                                  signed with only the network and change rules.
 *
 * The node's identity key is generated on first start and kept encrypted in the store.
 */
import { readFileSync } from 'node:fs';
import { type Static, Type } from '@sinclair/typebox';
import { NETWORK_NAMES, type NetworkName } from '../bitcoin/network.js';
import { type BitcoinPolicy, loadPolicy } from '../bitcoin/policy.js';
import { INTENT_TYPES } from '../domain/vocabulary.js';
import { FloeError } from '../protocol/errors.js';
import { Hex, literalUnion, parseWith } from '../protocol/schema.js';
import { draftConfig, envList } from './file.js';

export const SignerConfigSchema = Type.Object(
  {
    data_dir: Type.String({ minLength: 1 }),
    listen: Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' }),
    coordinators: Type.Array(Hex(32), { minItems: 1, maxItems: 64 }),
    peers: Type.Array(Hex(32), { maxItems: 255, uniqueItems: true }),
    operators: Type.Optional(Type.Array(Hex(32), { maxItems: 16, uniqueItems: true })),
    passphrase_file: Type.Optional(Type.String({ minLength: 1 })),
    tls: Type.Optional(
      Type.Object({ cert: Type.String(), key: Type.String() }, { additionalProperties: false }),
    ),
    max_live_attempts: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    attempt_ttl_s: Type.Integer({ minimum: 1, maximum: 86_400 }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    ),
    metrics_token_file: Type.Optional(Type.String({ minLength: 1 })),
    metrics_listen: Type.Optional(Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' })),
    key_source: Type.Optional(
      Type.Union([
        Type.Object({ kind: Type.Literal('passphrase') }, { additionalProperties: false }),
        Type.Object(
          {
            kind: Type.Literal('pkcs11'),
            module: Type.String({ minLength: 1 }),
            token_label: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
            slot: Type.Optional(Type.Integer({ minimum: 0 })),
            pin_file: Type.Optional(Type.String({ minLength: 1 })),
            wrap_key_label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
            hmac_key_label: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    sign_intents: Type.Optional(Type.Array(literalUnion(INTENT_TYPES), { minItems: 1, uniqueItems: true })),
    bitcoin_network: Type.Optional(literalUnion(NETWORK_NAMES)),
    // Checked by loadPolicy (its own code and messages), not here.
    bitcoin_policy: Type.Optional(Type.Unknown()),
    bitcoin_policy_file: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type SignerConfig = Static<typeof SignerConfigSchema>;

/**
 * The signer's PSBT policy (issue 14): `bitcoin_policy` (or the file's, already read into it by
 * loadSignerConfig) validated by loadPolicy, or, without one, the bare policy of
 * `bitcoin_network` (default regtest): the network and change rules only. A network that differs
 * from the policy's is refused (`policy_config_invalid`).
 */
export function signerBitcoinPolicy(
  cfg: Pick<SignerConfig, 'bitcoin_network' | 'bitcoin_policy' | 'bitcoin_policy_file'>,
): BitcoinPolicy {
  let policy: BitcoinPolicy;
  if (cfg.bitcoin_policy !== undefined) policy = loadPolicy(cfg.bitcoin_policy);
  else if (cfg.bitcoin_policy_file !== undefined)
    policy = loadPolicy(readPolicyFile(cfg.bitcoin_policy_file));
  else policy = loadPolicy({ network: cfg.bitcoin_network ?? 'regtest' });
  if (cfg.bitcoin_network !== undefined && cfg.bitcoin_network !== policy.network) {
    throw new FloeError(
      'policy_config_invalid',
      `signer config: bitcoin_network is ${cfg.bitcoin_network} but the bitcoin policy is for ${policy.network}`,
      { reason: 'policy_config_invalid' },
    );
  }
  return policy;
}

function readPolicyFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'not valid JSON';
    throw new FloeError('policy_config_invalid', `signer config: bitcoin_policy_file ${file}: ${why}`, {
      reason: 'policy_config_invalid',
    });
  }
}
export type SignerKeySourceConfig = NonNullable<SignerConfig['key_source']>;

/** The environment's PKCS#11 settings over the file's `key_source` (any of them selects pkcs11). */
function keySourceFromEnv(fromFile: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  const over: Record<string, string> = {};
  if (env.FLOE_SIGNER_PKCS11_MODULE) over.module = env.FLOE_SIGNER_PKCS11_MODULE;
  if (env.FLOE_SIGNER_PKCS11_TOKEN) over.token_label = env.FLOE_SIGNER_PKCS11_TOKEN;
  if (env.FLOE_SIGNER_HSM_PIN_FILE) over.pin_file = env.FLOE_SIGNER_HSM_PIN_FILE;
  if (Object.keys(over).length === 0) return fromFile;
  const base = typeof fromFile === 'object' && fromFile !== null ? (fromFile as Record<string, unknown>) : {};
  if (base.kind !== undefined && base.kind !== 'pkcs11') {
    throw new FloeError(
      'invalid_request',
      'signer config: FLOE_SIGNER_PKCS11_* / FLOE_SIGNER_HSM_PIN_FILE set, but key_source.kind is not pkcs11',
    );
  }
  // A token label from the environment replaces a slot from the file.
  const { slot, ...rest } = base;
  return {
    ...rest,
    ...(over.token_label === undefined && slot !== undefined ? { slot } : {}),
    ...over,
    kind: 'pkcs11',
  };
}

/** Paths in a key source: the PIN file relative to the config; the module too when it is a path (has a slash). */
function keySourcePaths(ks: SignerKeySourceConfig, abs: (p: string) => string): SignerKeySourceConfig {
  if (ks.kind !== 'pkcs11') return ks;
  if ((ks.token_label === undefined) === (ks.slot === undefined)) {
    throw new FloeError(
      'invalid_request',
      'signer config: key_source needs exactly one of token_label and slot',
    );
  }
  return {
    ...ks,
    module: ks.module.includes('/') ? abs(ks.module) : ks.module,
    ...(ks.pin_file ? { pin_file: abs(ks.pin_file) } : {}),
  };
}

export const SIGNER_DEFAULTS = {
  listen: '127.0.0.1:7101',
  max_live_attempts: 1024,
  attempt_ttl_s: 600,
  log_level: 'info',
  // No roster: this signer takes part in no DKG and accepts no import until an operator pins one.
  peers: [] as string[],
};

export function loadSignerConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): SignerConfig {
  const { merged, set, abs } = draftConfig('signer', file, SIGNER_DEFAULTS);
  set('data_dir', env.FLOE_SIGNER_DATA_DIR);
  set('listen', env.FLOE_SIGNER_LISTEN);
  set('coordinators', envList(env.FLOE_SIGNER_COORDINATORS));
  set('peers', envList(env.FLOE_SIGNER_PEERS));
  set('operators', envList(env.FLOE_SIGNER_OPERATORS));
  set('passphrase_file', env.FLOE_SIGNER_PASSPHRASE_FILE);
  set('max_live_attempts', env.FLOE_SIGNER_MAX_LIVE_ATTEMPTS && Number(env.FLOE_SIGNER_MAX_LIVE_ATTEMPTS));
  set('attempt_ttl_s', env.FLOE_SIGNER_ATTEMPT_TTL_S && Number(env.FLOE_SIGNER_ATTEMPT_TTL_S));
  set('log_level', env.FLOE_LOG_LEVEL);
  set('metrics_token_file', env.FLOE_SIGNER_METRICS_TOKEN_FILE);
  set('metrics_listen', env.FLOE_SIGNER_METRICS_LISTEN);
  set('key_source', keySourceFromEnv(merged.key_source, env));
  set('sign_intents', envList(env.FLOE_SIGNER_SIGN_INTENTS));
  set('bitcoin_network', env.FLOE_SIGNER_BITCOIN_NETWORK);
  if (env.FLOE_SIGNER_BITCOIN_POLICY_FILE) {
    // The environment's file replaces whatever policy the config file has.
    delete merged.bitcoin_policy;
    set('bitcoin_policy_file', env.FLOE_SIGNER_BITCOIN_POLICY_FILE);
  }
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
  if (cfg.metrics_listen !== undefined && cfg.metrics_listen === cfg.listen && !cfg.listen.endsWith(':0')) {
    throw new FloeError('invalid_request', 'signer config: metrics_listen must differ from listen');
  }
  if (cfg.bitcoin_policy !== undefined && cfg.bitcoin_policy_file !== undefined) {
    throw new FloeError(
      'invalid_request',
      'signer config: give bitcoin_policy or bitcoin_policy_file, not both',
    );
  }
  // Read and checked now: a signer with a bad policy does not start.
  const policyFile = cfg.bitcoin_policy_file === undefined ? undefined : abs(cfg.bitcoin_policy_file);
  const bitcoin = signerBitcoinPolicy({ ...cfg, ...(policyFile ? { bitcoin_policy_file: policyFile } : {}) });
  const bitcoinNetwork: NetworkName = bitcoin.network;
  return {
    ...cfg,
    bitcoin_network: bitcoinNetwork,
    ...(policyFile ? { bitcoin_policy_file: policyFile } : {}),
    data_dir: abs(cfg.data_dir),
    ...(cfg.passphrase_file ? { passphrase_file: abs(cfg.passphrase_file) } : {}),
    ...(cfg.metrics_token_file ? { metrics_token_file: abs(cfg.metrics_token_file) } : {}),
    ...(cfg.tls ? { tls: { cert: abs(cfg.tls.cert), key: abs(cfg.tls.key) } } : {}),
    ...(cfg.key_source ? { key_source: keySourcePaths(cfg.key_source, abs) } : {}),
  };
}
