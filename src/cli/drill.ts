/**
 * `floe drill regenerate` (DESIGN §14, seed 004 "Recovery"): prove that a deployment's
 * per-passphrase addresses come back after a total loss from what its backups hold — the signers'
 * HSM tokens, the configs (the `floe init` bundle, with the coordinator's address.key) and the
 * passphrase list — and nothing else.
 *
 * On empty data directories and an empty database in a work directory (a new temporary one by
 * default), it starts the bundle's signers (child processes, their own configs but for data dir,
 * address and coordinator allowlist) and a coordinator (the bundle's config and address secret,
 * a fresh identity and PGlite), registers the signers, asks for the address of every passphrase
 * (a deterministic DKG each), and compares them with the recorded list. Exit code: 0 when every
 * address matches, 1 when any differs, 2 when it could not regenerate (a signer without an HSM,
 * an identity that does not match the roster, a failed DKG).
 *
 * Passphrases are never printed: a line of the report names the passphrase by its line number.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { floeSelfCommand } from '../cluster/self.js';
import { Supervisor } from '../cluster/supervisor.js';
import { loadCoordinatorConfig } from '../config/coordinator.js';
import { readSecretFile, writeSecretFile } from '../config/secret-file.js';
import { loadSignerConfig, type SignerConfig } from '../config/signer.js';
import { ADDRESS_SECRET_FILE, type RunningCoordinator, startCoordinator } from '../coordinator/node.js';
import { FloeError } from '../protocol/errors.js';

export interface DrillOptions {
  passphrases: string;
  expect?: string;
  deployment?: string;
  addressSecret?: string;
  workDir?: string;
  out?: string;
  tenant?: string;
  keepRunning?: boolean;
  json?: boolean;
  /** How many DKGs at once (default 4). */
  concurrency?: number;
}

/** One entry per non-empty line (a trailing CR dropped): the format of --passphrases, --expect, --out. */
export function readLines(path: string): { line: number; value: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((v, i) => ({ line: i + 1, value: v.endsWith('\r') ? v.slice(0, -1) : v }))
    .filter((x) => x.value !== '');
}

export interface DrillItem {
  /** Line of the passphrase in --passphrases. */
  line: number;
  expected: string | null;
  address: string | null;
  key_id: string | null;
  outcome: 'match' | 'differs' | 'regenerated' | 'failed';
  error?: string;
}

class DrillError extends Error {}

interface Bundle {
  dir: string;
  coordinatorConfig: string;
  signers: { name: string; identity: string; config: string }[];
}

function readBundle(dir: string): Bundle {
  let d: {
    coordinator?: { config?: string };
    signers?: { name?: string; identity?: string; config?: string }[];
  };
  try {
    d = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
  } catch {
    throw new DrillError(`${dir}/deployment.json: missing or not JSON (the bundle floe init writes)`);
  }
  const signers = (d.signers ?? []).map((s, i) => {
    if (typeof s.config !== 'string' || typeof s.identity !== 'string') {
      throw new DrillError(`deployment.json: signer ${i + 1} has no config or identity`);
    }
    return { name: s.name ?? `signer-${i + 1}`, identity: s.identity, config: s.config };
  });
  if (signers.length < 2) throw new DrillError('deployment.json: fewer than 2 signers');
  return { dir, coordinatorConfig: d.coordinator?.config ?? 'coordinator.json', signers };
}

export async function drillRegenerate(o: DrillOptions): Promise<number> {
  const say = (text: string) => {
    if (!o.json) process.stdout.write(`${text}\n`);
  };
  const event = (e: Record<string, unknown>) => {
    if (o.json) process.stdout.write(`${JSON.stringify(e)}\n`);
  };
  if (!o.deployment) throw new FloeError('invalid_request', 'drill regenerate needs --deployment <dir>');
  const passphrases = readLines(o.passphrases);
  if (passphrases.length === 0) throw new FloeError('invalid_request', `${o.passphrases}: no passphrase`);
  const expected = o.expect ? readLines(o.expect) : undefined;
  if (expected && expected.length !== passphrases.length) {
    throw new FloeError(
      'invalid_request',
      `${o.expect} has ${expected.length} addresses for ${passphrases.length} passphrases (one per line, same order)`,
    );
  }

  const bundle = readBundle(resolve(o.deployment));
  const workDir = o.workDir ? resolve(o.workDir) : mkdtempSync(join(tmpdir(), 'floe-drill-'));
  const ownWorkDir = !o.workDir;
  let sup: Supervisor | undefined;
  let coordinator: RunningCoordinator | undefined;
  const stop = async () => {
    await sup?.stop().catch(() => {});
    await coordinator?.close().catch(() => {});
    if (ownWorkDir) rmSync(workDir, { recursive: true, force: true });
  };
  try {
    try {
      if (readdirSync(workDir).length > 0) {
        throw new DrillError(`--work-dir ${workDir} is not empty: the drill starts from empty data dirs`);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }

    // The signers: each must be sealed by an HSM, or nothing of its deterministic secret survives.
    const signerCfgs: SignerConfig[] = bundle.signers.map((s) =>
      loadSignerConfig(join(bundle.dir, s.config), {}),
    );
    for (const [i, c] of signerCfgs.entries()) {
      if (c.key_source?.kind !== 'pkcs11') {
        throw new DrillError(
          `${bundle.signers[i]!.name} has no HSM (key_source): its deterministic secret lived only in its store, so its addresses cannot be regenerated from backups`,
        );
      }
    }

    // The coordinator: the bundle's config, a fresh identity and database, the backed-up address secret.
    const ccfg = loadCoordinatorConfig(join(bundle.dir, bundle.coordinatorConfig), {});
    const secretPath = o.addressSecret ? resolve(o.addressSecret) : join(ccfg.data_dir, ADDRESS_SECRET_FILE);
    let secret: string;
    try {
      secret = readSecretFile(secretPath, 'address secret');
    } catch (e) {
      if (e instanceof FloeError) throw e;
      throw new DrillError(
        `no address secret at ${secretPath}: restore the coordinator's ${ADDRESS_SECRET_FILE} from its backup (or pass --address-secret)`,
      );
    }
    const cdir = join(workDir, 'coordinator');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(cdir, { recursive: true, mode: 0o700 });
    writeSecretFile(join(cdir, ADDRESS_SECRET_FILE), secret);
    const { database_url: _db, metrics_listen: _ml, metrics_token_file: _mt, tls: _tls, ...rest } = ccfg;
    coordinator = await startCoordinator(
      {
        ...rest,
        data_dir: cdir,
        listen: '127.0.0.1:0',
        admin_token_file: join(workDir, 'admin.token'),
        // A drill regenerates as fast as the signers allow.
        address_create_limit_per_min: 1_000_000,
        rate_limit_per_s: 100_000,
        rate_limit_burst: 1_000_000,
        log_level: 'warn',
      },
      { logger: false },
    );
    const api = apiOf(coordinator.url, coordinator.adminToken!);
    say(`drill: empty data dirs and database in ${workDir}`);
    event({ event: 'drill_started', work_dir: workDir, coordinator_url: coordinator.url });

    // The signers on empty data dirs: their configs, but for data dir, address and allowlist.
    sup = new Supervisor({ stopTimeoutMs: 10_000, readyTimeoutMs: 120_000 });
    const self = floeSelfCommand();
    const started = await Promise.all(
      bundle.signers.map(async (s, i) => {
        const c = signerCfgs[i]!;
        const { tls: _t, metrics_listen: _m, metrics_token_file: _k, ...keep } = c;
        const file = join(workDir, `${s.name}.json`);
        writeFileSync(
          file,
          JSON.stringify(
            {
              ...keep,
              data_dir: join(workDir, s.name),
              listen: '127.0.0.1:0',
              coordinators: [coordinator!.identityPub],
              log_level: 'warn',
            },
            null,
            2,
          ),
          { mode: 0o600 },
        );
        const env: NodeJS.ProcessEnv = {};
        for (const [k, v] of Object.entries(process.env)) {
          // The PKCS#11 / PIN settings of this shell reach the children (SOFTHSM2_CONF, a PIN in
          // the environment); nothing else of Floe's.
          if (k.startsWith('FLOE_') && k !== 'FLOE_SIGNER_HSM_PIN' && k !== 'FLOE_CRYPTO_BACKEND') continue;
          if (k === 'DATABASE_URL') continue;
          env[k] = v;
        }
        return sup!.start({
          name: s.name,
          command: self.command,
          args: [...self.args, 'signer', '--config', file],
          env,
          readyEvent: 'signer_started',
          logFile: join(workDir, 'logs', `${s.name}.log`),
        });
      }),
    );
    for (const [i, r] of started.entries()) {
      const s = bundle.signers[i]!;
      if (r.identity !== s.identity) {
        throw new DrillError(
          `${s.name} came back with identity ${String(r.identity).slice(0, 16)}…, the roster pins ${s.identity.slice(0, 16)}…: its identity is not derived from its HSM (a store made before identities came from the token?), so the key groups cannot be the same`,
        );
      }
      await api('POST', '/v1/signers', { url: String(r.url), identity: s.identity, name: s.name });
    }
    say(
      `drill: ${started.length} signers up from their HSM tokens; regenerating ${passphrases.length} addresses`,
    );

    let token = coordinator.adminToken!;
    const tenant = o.tenant ?? 'default';
    if (tenant !== 'default') {
      const t = await api('POST', '/v1/tenants', { id: tenant });
      token = String((t.admin_token as { token: string }).token);
    }
    const tenantApi = apiOf(coordinator.url, token);

    // Regenerate.
    const items: DrillItem[] = new Array(passphrases.length);
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= passphrases.length) return;
        const p = passphrases[i]!;
        const want = expected?.[i]?.value ?? null;
        try {
          const r = await tenantApi('POST', '/v1/addresses', { passphrase: p.value, wait: 120_000 });
          const address = typeof r.address === 'string' ? r.address : null;
          if (!address) throw new Error(`key ${String(r.key_id)} is ${String(r.status)}`);
          items[i] = {
            line: p.line,
            expected: want,
            address,
            key_id: String(r.key_id),
            outcome: want === null ? 'regenerated' : want === address ? 'match' : 'differs',
          };
        } catch (e) {
          items[i] = {
            line: p.line,
            expected: want,
            address: null,
            key_id: null,
            outcome: 'failed',
            error: e instanceof Error ? e.message : String(e),
          };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
    const seconds = (performance.now() - t0) / 1000;

    const count = (k: DrillItem['outcome']) => items.filter((x) => x.outcome === k).length;
    const failed = count('failed');
    const differs = count('differs');
    if (o.out) writeFileSync(o.out, `${items.map((x) => x.address ?? '').join('\n')}\n`, { mode: 0o600 });
    for (const x of items) {
      if (x.outcome === 'differs') say(`  line ${x.line}: expected ${x.expected}, regenerated ${x.address}`);
      if (x.outcome === 'failed') say(`  line ${x.line}: not regenerated: ${x.error}`);
    }
    const summary = {
      event: 'drill_done',
      addresses: items.length,
      match: count('match'),
      differs,
      failed,
      regenerated: count('regenerated'),
      seconds: Number(seconds.toFixed(2)),
      per_second: Number((items.length / seconds).toFixed(2)),
      items,
    };
    event(summary);
    say(
      `drill: ${items.length} addresses in ${seconds.toFixed(1)} s: ${summary.match} match, ${differs} differ, ${failed} failed${expected ? '' : ' (no --expect: nothing compared)'}`,
    );
    const code = failed > 0 ? 2 : differs > 0 ? 1 : 0;

    if (o.keepRunning) {
      say(
        `drill: the regenerated cluster runs at ${coordinator.url} (admin token in ${join(workDir, 'admin.token')}); Ctrl-C stops it`,
      );
      event({
        event: 'drill_ready',
        api_url: coordinator.url,
        admin_token_file: join(workDir, 'admin.token'),
        work_dir: workDir,
      });
      await new Promise<void>((r) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => r());
      });
    }
    return code;
  } catch (e) {
    if (e instanceof DrillError) {
      process.stderr.write(`floe drill: ${e.message}\n`);
      event({ event: 'drill_failed', error: e.message });
      return 2;
    }
    throw e;
  } finally {
    await stop();
  }
}

/** A minimal JSON client for the drill's own coordinator. */
function apiOf(url: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status >= 400) {
      throw new Error(`${method} ${path}: ${res.status} ${json.code ?? ''} ${json.detail ?? ''}`.trim());
    }
    return json;
  };
}
