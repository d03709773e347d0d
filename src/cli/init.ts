/**
 * `floe init`: the files for a real deployment, one bundle per host.
 *
 *   coordinator.json, coordinator/identity.key        → the coordinator host
 *   signer-N.json, signer-N/signer.db                 → signer host N
 *   signer-N.passphrase                               → a secret manager (not the host's disk)
 *   deployment.json                                   → anywhere: public identities and URLs
 *
 * A signer's identity key is generated inside its store, encrypted under its passphrase, so
 * init creates each store (with a fresh random passphrase) to learn the identity it must
 * register. Paths inside the configs are relative to the config file, so a bundle can be
 * copied as it is. Every file is written 0600 and every directory 0700.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { displayPath } from '../cluster/layout.js';
import { loadOrCreateOperatorKey, OPERATOR_KEY_FILE } from '../config/operator-key.js';
import { writeSecretFile } from '../config/secret-file.js';
import { coordinatorIdentity } from '../coordinator/node.js';
import { openSignerStore } from '../signer/node.js';
import { emit } from './output.js';

export interface InitOptions {
  signers: number;
  threshold: number;
  out: string;
  coordinatorUrl: string;
  /** host or host:port per signer; given means separate hosts with TLS. */
  signerHosts?: string[];
  json?: boolean;
  /**
   * Seal each signer's store under a PKCS#11 token instead of a passphrase: signer N uses the
   * token labelled `<tokenLabel>-N` (default floe-signer-N), initialised if absent (SoftHSM:
   * in the token directory of SOFTHSM2_CONF) and given its keys (src/signer/keys/provision.ts).
   * The user PIN comes from `pinFile` (every token) or is generated per signer.
   */
  hsm?: { module: string; tokenLabel?: string; pinFile?: string };
}

const SIGNER_PORT = 7101;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

interface SignerPlan {
  name: string;
  url: string;
  listen: string;
  identity: string;
  config: string;
  data_dir: string;
  passphrase_file: string | null;
  tls: { cert: string; key: string } | null;
  /** The PKCS#11 key source written to the signer config (with --hsm). */
  key_source?: { kind: 'pkcs11'; module: string; token_label: string; pin_file: string };
}

export async function init(o: InitOptions): Promise<void> {
  const n = o.signers;
  if (n < 2 || n > 255) throw new Error('--signers must be from 2 to 255');
  if (o.threshold < 2 || o.threshold > n) throw new Error(`--threshold must be from 2 to ${n}`);
  if (o.signerHosts && o.signerHosts.length !== n) {
    throw new Error(`--signer-hosts lists ${o.signerHosts.length} hosts for ${n} signers`);
  }
  let curl: URL;
  try {
    curl = new URL(o.coordinatorUrl);
  } catch {
    throw new Error('--coordinator-url is not a URL');
  }
  if (curl.protocol !== 'http:' && curl.protocol !== 'https:')
    throw new Error('--coordinator-url must be http(s)');
  const out = resolve(o.out);
  if (existsSync(out) && readdirSync(out).length > 0) {
    throw new Error(`${o.out} exists and is not empty; init never overwrites a deployment`);
  }
  mkdirSync(out, { recursive: true, mode: 0o700 });

  // Coordinator: identity key in its data dir; TLS when its URL is https.
  const coordinatorTls = curl.protocol === 'https:';
  const coordinatorPort = Number(curl.port || (coordinatorTls ? 443 : 80));
  const coordinatorListen = `${LOOPBACK.has(curl.hostname) ? '127.0.0.1' : '0.0.0.0'}:${coordinatorPort}`;
  const coordinatorId = coordinatorIdentity(join(out, 'coordinator')).identityPub;
  const coordinatorConfig = {
    data_dir: 'coordinator',
    listen: coordinatorListen,
    admin_token_file: 'admin.token',
    ...(coordinatorTls ? { tls: { cert: 'tls/coordinator.crt', key: 'tls/coordinator.key' } } : {}),
    log_level: 'info',
  };
  writeSecretFile(join(out, 'coordinator.json'), JSON.stringify(coordinatorConfig, null, 2));

  // Signers: a store each (identity inside, encrypted), a passphrase file, a config.
  const signers: SignerPlan[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `signer-${i}`;
    const hostArg = o.signerHosts?.[i - 1];
    let url: string;
    let listen: string;
    let tls: SignerPlan['tls'] = null;
    if (hostArg) {
      const { host, port } = splitHost(hostArg, SIGNER_PORT);
      url = `https://${host}:${port}`;
      listen = `0.0.0.0:${port}`;
      tls = { cert: `tls/${name}.crt`, key: `tls/${name}.key` };
    } else {
      url = `http://127.0.0.1:${SIGNER_PORT + i - 1}`;
      listen = `127.0.0.1:${SIGNER_PORT + i - 1}`;
    }
    if (o.hsm) {
      const keySource = await provisionSignerToken(o.hsm, out, name, i);
      const { store, identityPub } = await openSignerStore(
        {
          data_dir: join(out, name),
          key_source: { ...keySource, pin_file: resolve(out, keySource.pin_file) },
        },
        {},
      );
      store.close();
      signers.push({
        name,
        url,
        listen,
        identity: identityPub,
        config: `${name}.json`,
        data_dir: name,
        passphrase_file: null,
        tls,
        key_source: keySource,
      });
      continue;
    }
    const passphraseFile = `${name}.passphrase`;
    writeSecretFile(join(out, passphraseFile), randomBytes(32).toString('base64url'));
    const { store, identityPub } = await openSignerStore(
      { data_dir: join(out, name), passphrase_file: join(out, passphraseFile) },
      {},
    );
    store.close();
    signers.push({
      name,
      url,
      listen,
      identity: identityPub,
      config: `${name}.json`,
      data_dir: name,
      passphrase_file: passphraseFile,
      tls,
    });
  }

  // Each signer's config: its coordinator allowlist and its roster (DESIGN §11), the identity
  // keys of every signer of this deployment. No passphrase_file here: the passphrase comes
  // from a secret manager at start-up (FLOE_SIGNER_PASSPHRASE_FILE or FLOE_SIGNER_PASSPHRASE),
  // never from the bundle.
  const peers = signers.map((s) => s.identity);
  // The kill switch's operator key: kept by the operator (off the servers), pinned by every signer.
  const operator = loadOrCreateOperatorKey(join(out, OPERATOR_KEY_FILE));
  for (const s of signers) {
    const config = {
      data_dir: s.data_dir,
      listen: s.listen,
      coordinators: [coordinatorId],
      peers,
      operators: [operator],
      ...(s.tls ? { tls: s.tls } : {}),
      ...(s.key_source ? { key_source: s.key_source } : {}),
      log_level: 'info',
    };
    writeSecretFile(join(out, s.config), JSON.stringify(config, null, 2));
  }

  const deployment = {
    version: 1,
    threshold: o.threshold,
    coordinator: {
      url: curl.toString().replace(/\/$/, ''),
      identity: coordinatorId,
      config: 'coordinator.json',
      listen: coordinatorListen,
      tls: coordinatorTls ? coordinatorConfig.tls : null,
    },
    signers,
  };
  writeSecretFile(join(out, 'deployment.json'), JSON.stringify(deployment, null, 2));

  emit(Boolean(o.json), { out, ...deployment }, () =>
    o.hsm
      ? `${hsmInstructions(out, signers)}\n\n${instructions(out, deployment, Boolean(o.signerHosts))}`
      : instructions(out, deployment, Boolean(o.signerHosts)),
  );
}

/**
 * `floe init --hsm`, one signer: its token (initialised if absent, with a fresh SO PIN written
 * to signer-N.so-pin) and keys; the user PIN from --pin-file or fresh in signer-N.pin. Returns
 * the config's key_source (pin_file relative to the bundle unless --pin-file gave one).
 */
async function provisionSignerToken(
  hsm: NonNullable<InitOptions['hsm']>,
  out: string,
  name: string,
  i: number,
): Promise<NonNullable<SignerPlan['key_source']>> {
  const { provisionToken } = await import('../signer/keys/provision.js');
  const { readSecretFile } = await import('../signer/keys/passphrase.js');
  const tokenLabel = `${hsm.tokenLabel ?? 'floe-signer'}-${i}`;
  let pinFile: string;
  let userPin: string;
  if (hsm.pinFile) {
    pinFile = resolve(hsm.pinFile);
    userPin = await readSecretFile(pinFile, 'HSM PIN file');
  } else {
    pinFile = `${name}.pin`;
    userPin = randomBytes(16).toString('base64url');
    writeSecretFile(join(out, pinFile), userPin);
  }
  // Written before the token can be made, so it is never lost; removed if the token existed.
  const soPin = randomBytes(16).toString('base64url');
  const soPinFile = join(out, `${name}.so-pin`);
  writeSecretFile(soPinFile, soPin);
  const r = await provisionToken({ module: hsm.module, tokenLabel, soPin, userPin });
  if (!r.tokenInitialized) rmSync(soPinFile);
  return { kind: 'pkcs11', module: resolve(hsm.module), token_label: tokenLabel, pin_file: pinFile };
}

function hsmInstructions(out: string, signers: SignerPlan[]): string {
  const dir = displayPath(out);
  return [
    'HSM (PKCS#11). Each signer store is sealed under a non-extractable AES key in its token, and',
    'its deterministic secret is a non-extractable HMAC key there (docs/deployment.md, "HSM (PKCS#11)"):',
    ...signers.map(
      (s) => `  ${s.name}: token "${s.key_source?.token_label}", user PIN in ${s.key_source?.pin_file}`,
    ),
    `  ${dir}/signer-N.so-pin (for tokens init created): the Security Officer PIN; move it to your secret`,
    "  manager. Back up each token with the HSM's own mechanism (SoftHSM: its token directory); without",
    '  the token the store does not open. SoftHSM: start the signers with the same SOFTHSM2_CONF.',
  ].join('\n');
}

function splitHost(h: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m) throw new Error(`--signer-hosts: ${h} is not host or host:port`);
  return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
}

function instructions(
  out: string,
  d: {
    threshold: number;
    coordinator: { url: string; identity: string; tls: unknown };
    signers: SignerPlan[];
  },
  separateHosts: boolean,
): string {
  const dir = displayPath(out);
  const c = d.coordinator;
  const lines = [
    `Wrote a ${d.signers.length}-signer deployment to ${dir}/ (keys will be ${d.threshold}-of-${d.signers.length}).`,
    '',
    `Coordinator identity (every signer's allowlist): ${c.identity}`,
    '',
    'Signers:',
    ...d.signers.map((s) => `  ${s.name}  ${s.url}  identity ${s.identity}`),
    '',
    ...(d.signers.some((s) => s.key_source)
      ? ['1. Passphrases: none; the signer stores are sealed by their HSM tokens (above).', '']
      : [
          '1. Passphrases. Move each signer-N.passphrase into your secret manager NOW and delete it',
          `   from ${dir}/. Each unlocks its signer's data dir (share and identity, encrypted);`,
          '   keep it away from that data and its backups. At start-up the secret manager hands it',
          '   to the signer as a 0600 file (FLOE_SIGNER_PASSPHRASE_FILE, e.g. a systemd credential)',
          '   or in FLOE_SIGNER_PASSPHRASE. Lose a passphrase and that signer is lost (docs/deployment.md).',
          '',
        ]),
    '2. Copy to each host (paths in the configs are relative to the config file):',
    `   coordinator host: ${dir}/coordinator.json and ${dir}/coordinator/ (identity key)`,
    ...d.signers.map((s) => `   ${s.name} host: ${dir}/${s.config} and ${dir}/${s.data_dir}/`),
    '',
  ];
  if (separateHosts || c.tls) {
    lines.push(
      '3. TLS. Install a certificate and key (PEM) for each host where its config points:',
      ...(c.tls
        ? ['   coordinator: tls/coordinator.crt, tls/coordinator.key (next to coordinator.json)']
        : []),
      ...d.signers
        .filter((s) => s.tls)
        .map(
          (s) => `   ${s.name}: ${s.tls!.cert}, ${s.tls!.key} (next to ${s.config}); the name in ${s.url}`,
        ),
      '   If a private CA issued them, start the coordinator with NODE_EXTRA_CA_CERTS=/path/to/ca.pem',
      '   so it trusts the signers. Allow each signer port only from the coordinator hosts.',
      '',
    );
  } else {
    lines.push(
      '3. TLS. These configs use plain HTTP on loopback (all on one host). For separate hosts',
      '   rerun with --signer-hosts h1,h2,... (HTTPS) and an https:// --coordinator-url.',
      '',
    );
  }
  lines.push(
    '4. Start each signer on its host, then the coordinator:',
    ...d.signers.map((s) =>
      s.key_source
        ? `   ${s.name}:     floe signer --config ${s.config}   (the HSM PIN file is in its config)`
        : `   ${s.name}:     FLOE_SIGNER_PASSPHRASE_FILE=/run/secrets/floe-${s.name} floe signer --config ${s.config}`,
    ),
    '   coordinator:  DATABASE_URL=postgres://floe:...@db/floe floe coordinator --config coordinator.json',
    '                 (without DATABASE_URL: embedded PGlite in coordinator/pgdata)',
    '   Its first start writes the admin API token to admin.token (mode 0600) next to the config.',
    '',
    '5. Register the signers with the coordinator (once, with the admin token):',
    ...d.signers.map(
      (s) =>
        `   curl -s -X POST ${c.url}/v1/signers -H "Authorization: Bearer $(cat admin.token)" -H 'Content-Type: application/json' -d '${JSON.stringify({ url: s.url, identity: s.identity, name: s.name })}'`,
    ),
    '',
    '6. Create a key and sign:',
    `   FLOE_URL=${c.url} FLOE_TOKEN=$(cat admin.token) floe key create --threshold ${d.threshold} --label main`,
    `   FLOE_URL=${c.url} FLOE_TOKEN=$(cat admin.token) floe sign --key <key id> --message <32-byte hex>`,
    '',
    `${dir}/deployment.json lists these identities and URLs (no secrets). It is also the roster`,
    '   every signer config pins (`peers`), and what `floe key import --roster` seals shares to:',
    '   keep a copy where you run the client; never take the signer list from the coordinator.',
  );
  return lines.join('\n');
}
