/**
 * SoftHSM2 for the PKCS#11 tests: where its library is, whether pkcs11js loads, a private
 * token directory per test file (SOFTHSM2_CONF), and signer processes sealed under a token.
 *
 * When SoftHSM2 or pkcs11js is missing, {@link softhsmSkipReason} says why, and the tests skip
 * with that reason (visible in the report) instead of passing.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPkcs11js } from '../../src/signer/keys/pkcs11.js';
import { type SignerProcess, spawnFloe } from './processes.js';

/** Where distributions put libsofthsm2.so; FLOE_TEST_SOFTHSM_MODULE overrides (and is then the only candidate). */
export const SOFTHSM_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

function candidates(): string[] {
  const forced = process.env.FLOE_TEST_SOFTHSM_MODULE;
  return forced ? [forced] : SOFTHSM_CANDIDATES;
}

/** The SoftHSM2 library path, if installed. */
export function softhsmModule(): string | undefined {
  return candidates().find((p) => existsSync(p));
}

/** Why the SoftHSM tests cannot run here, or undefined when they can. */
export function softhsmSkipReason(): string | undefined {
  if (!softhsmModule()) {
    return `SoftHSM2 not installed: no libsofthsm2.so at ${candidates().join(', ')} (apt-get install softhsm2; .ci/run installs it when apt is available)`;
  }
  try {
    loadPkcs11js();
  } catch (e) {
    return `pkcs11js not available: ${(e as Error).message}`;
  }
  return undefined;
}

export interface SoftHsm {
  module: string;
  /** The SOFTHSM2_CONF file. */
  conf: string;
  tokendir: string;
}

/**
 * A SoftHSM2 configuration with its own token directory under `dir`. SoftHSM reads
 * SOFTHSM2_CONF at C_Initialize: set it in this process (`inProcess`) before the first use,
 * and pass {@link hsmEnv} to children.
 */
export function makeSoftHsm(dir: string, opts: { inProcess?: boolean } = {}): SoftHsm {
  const module = softhsmModule();
  if (!module) throw new Error('SoftHSM2 is not installed');
  const tokendir = join(dir, 'softhsm-tokens');
  mkdirSync(tokendir, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokendir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  if (opts.inProcess) process.env.SOFTHSM2_CONF = conf;
  return { module, conf, tokendir };
}

export function hsmEnv(h: SoftHsm): Record<string, string> {
  return { SOFTHSM2_CONF: h.conf };
}

/** The directory SoftHSM keeps the token labelled `label` in (file backend), if any. */
export function tokenDir(h: SoftHsm, label: string): string | undefined {
  const want = Buffer.from(label.padEnd(32, ' '));
  for (const d of readdirSync(h.tokendir)) {
    const obj = join(h.tokendir, d, 'token.object');
    if (existsSync(obj) && readFileSync(obj).includes(want)) return join(h.tokendir, d);
  }
  return undefined;
}

/** A 0600 secret file. */
export function secretFile(path: string, content: string): string {
  writeFileSync(path, `${content}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** `floe signer` whose store is sealed under a SoftHSM token (configured through the environment). */
export async function startHsmSignerProcess(o: {
  hsm: SoftHsm;
  dataDir: string;
  coordinators: string[];
  peers?: readonly string[];
  tokenLabel: string;
  pinFile: string;
  listen?: string;
  logLevel?: string;
}): Promise<SignerProcess> {
  const s = spawnFloe(['signer'], hsmSignerEnv(o));
  const started = await s.waitFor('signer_started');
  return Object.assign(s, { url: String(started.url), identity: String(started.identity) });
}

export function hsmSignerEnv(o: {
  hsm: SoftHsm;
  dataDir: string;
  coordinators: string[];
  peers?: readonly string[];
  tokenLabel: string;
  pinFile: string;
  listen?: string;
  logLevel?: string;
}): Record<string, string> {
  return {
    ...hsmEnv(o.hsm),
    FLOE_SIGNER_DATA_DIR: o.dataDir,
    FLOE_SIGNER_LISTEN: o.listen ?? '127.0.0.1:0',
    FLOE_SIGNER_COORDINATORS: o.coordinators.join(','),
    ...(o.peers?.length ? { FLOE_SIGNER_PEERS: o.peers.join(',') } : {}),
    FLOE_SIGNER_PKCS11_MODULE: o.hsm.module,
    FLOE_SIGNER_PKCS11_TOKEN: o.tokenLabel,
    FLOE_SIGNER_HSM_PIN_FILE: o.pinFile,
    FLOE_LOG_LEVEL: o.logLevel ?? 'warn',
  };
}
