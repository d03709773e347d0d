#!/usr/bin/env node
/**
 * `floe` command line: the two server roles (signer, coordinator), a local cluster (up, down),
 * a deployment generator (init) and the client commands (key, sign, session, token, status).
 * The heavy modules of each role load only when that command runs, so client commands start
 * quickly.
 */
import { Command, InvalidArgumentError } from 'commander';
import { registerAuditCommands } from './audit-commands.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerClientCommands } from './client-commands.js';
import { registerKeyControlCommands } from './key-control-commands.js';
import { integer, port } from './options.js';
import { configureUsageErrors, fail } from './output.js';
import { registerWebhookCommands } from './webhook-commands.js';

/**
 * A node started by `floe up` (FLOE_SUPERVISED=1) has a pipe from its supervisor on stdin:
 * when the pipe closes (the supervisor is gone, however it died) the node stops.
 */
function stopWhenSupervisorGoes(stop: () => void): void {
  if (process.env.FLOE_SUPERVISED !== '1') return;
  process.stdin.on('data', () => {});
  process.stdin.once('end', stop);
  process.stdin.once('close', stop);
  process.stdin.once('error', stop);
}

const positiveInt = integer({ min: 1 });

/**
 * Announce a started service (one JSON line on stdout) and close it cleanly on SIGINT,
 * SIGTERM, or when the supervising `floe up` goes away.
 */
function serveUntilStopped(node: { close(): Promise<void> }, started: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(started)}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await node.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  stopWhenSupervisorGoes(stop);
}

export function buildProgram(): Command {
  // Before any command is added: the commands inherit it.
  const program = configureUsageErrors(new Command());
  program
    .name('floe')
    .description('Floe: threshold Schnorr (FROST, BIP-340) signing service')
    .version('0.1.0');

  program
    .command('up')
    .description(
      'run a local cluster: a coordinator and signers as child processes, data in ./.floe; stop it with Ctrl-C or floe down',
    )
    .option('--signers <n>', 'number of signers (default 3, or as recorded in the data dir)', positiveInt)
    .option('--threshold <t>', 'threshold of the demo key (default 2)', positiveInt)
    .option('--port <port>', 'coordinator port on 127.0.0.1 (default 8080)', port)
    .option(
      '--signer-port-base <port>',
      'first signer port; signer N listens on base+N-1 (default 7101)',
      port,
    )
    .option('--address-port <port>', 'address service port on 127.0.0.1 (default 9000)', port)
    .option(
      '--relay-port <port>',
      "local Nostr relay port on 127.0.0.1, where the demo key's bunker listens (default 7777)",
      port,
    )
    .option('--data-dir <dir>', 'where the cluster keeps its data', '.floe')
    .option('--log-level <level>', "children's log level (logs in <data-dir>/logs/)", 'warn')
    .option('--json', 'print events as JSON lines (one per event) instead of text')
    .action(
      async (o: {
        signers?: number;
        threshold?: number;
        port?: number;
        signerPortBase?: number;
        addressPort?: number;
        relayPort?: number;
        dataDir: string;
        logLevel: string;
        json?: boolean;
      }) => {
        try {
          const { up } = await import('../cluster/up.js');
          const code = await up({
            dataDir: o.dataDir,
            ...(o.signers !== undefined ? { signers: o.signers } : {}),
            ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
            ...(o.port !== undefined ? { port: o.port } : {}),
            ...(o.signerPortBase !== undefined ? { signerPortBase: o.signerPortBase } : {}),
            ...(o.addressPort !== undefined ? { addressPort: o.addressPort } : {}),
            ...(o.relayPort !== undefined ? { relayPort: o.relayPort } : {}),
            logLevel: o.logLevel,
            json: Boolean(o.json),
          });
          process.exit(code);
        } catch (e) {
          fail(e);
        }
      },
    );

  program
    .command('down')
    .description('stop the local cluster that floe up runs from the data dir (and all its children)')
    .option('--data-dir <dir>', 'data directory of the cluster', '.floe')
    .option('--timeout <s>', 'seconds to wait for it to stop', integer({ min: 1 }), 60)
    .option('--json', 'print one JSON document')
    .action(async (o: { dataDir: string; timeout: number; json?: boolean }) => {
      try {
        const { down } = await import('../cluster/down.js');
        process.exit(await down({ dataDir: o.dataDir, timeoutMs: o.timeout * 1000, json: Boolean(o.json) }));
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('init')
    .description('write configs, identities and passphrases for a real deployment (coordinator + signers)')
    .requiredOption('--signers <n>', 'number of signers', positiveInt)
    .requiredOption('--threshold <t>', 'threshold of the keys you will create', positiveInt)
    .requiredOption('--out <dir>', 'directory to write (must not exist or be empty)')
    .option(
      '--coordinator-url <url>',
      'URL clients and signers know the coordinator by',
      'http://127.0.0.1:8080',
    )
    .option('--signer-hosts <hosts>', 'comma-separated host[:port] of each signer (implies HTTPS on 7101)')
    .option(
      '--hsm',
      'seal each signer store under a PKCS#11 token (needs --pkcs11-lib) instead of a passphrase',
    )
    .option('--pkcs11-lib <path>', 'with --hsm: the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so)')
    .option('--token-label <label>', 'with --hsm: signer N uses the token <label>-N (default floe-signer-N)')
    .option(
      '--pin-file <file>',
      "with --hsm: 0600 file with the tokens' user PIN (default: a new PIN per signer)",
    )
    .option('--json', 'print one JSON document')
    .action(
      async (o: {
        signers: number;
        threshold: number;
        out: string;
        coordinatorUrl: string;
        signerHosts?: string;
        hsm?: boolean;
        pkcs11Lib?: string;
        tokenLabel?: string;
        pinFile?: string;
        json?: boolean;
      }) => {
        try {
          if (Boolean(o.hsm) !== (o.pkcs11Lib !== undefined)) {
            throw new InvalidArgumentError('--hsm and --pkcs11-lib go together');
          }
          if (!o.hsm && (o.tokenLabel !== undefined || o.pinFile !== undefined)) {
            throw new InvalidArgumentError('--token-label and --pin-file need --hsm');
          }
          const { init } = await import('./init.js');
          await init({
            signers: o.signers,
            threshold: o.threshold,
            out: o.out,
            coordinatorUrl: o.coordinatorUrl,
            ...(o.signerHosts !== undefined
              ? {
                  signerHosts: o.signerHosts
                    .split(',')
                    .map((h) => h.trim())
                    .filter(Boolean),
                }
              : {}),
            ...(o.hsm
              ? {
                  hsm: {
                    module: o.pkcs11Lib!,
                    ...(o.tokenLabel !== undefined ? { tokenLabel: o.tokenLabel } : {}),
                    ...(o.pinFile !== undefined ? { pinFile: o.pinFile } : {}),
                  },
                }
              : {}),
            json: Boolean(o.json),
          });
        } catch (e) {
          fail(e);
        }
      },
    );

  program
    .command('signer')
    .description('run a signer node')
    .option('-c, --config <file>', 'signer config file (JSON); environment variables override it')
    .option('--print-identity', 'print this node identity public key and exit')
    .option('--json', 'with --print-identity: print {"identity": ...}')
    .action(async (o: { config?: string; printIdentity?: boolean; json?: boolean }) => {
      try {
        const { loadSignerConfig } = await import('../config/signer.js');
        const { openSignerStore, startSigner } = await import('../signer/node.js');
        const cfg = loadSignerConfig(o.config, process.env);
        if (o.printIdentity) {
          const { store, identityPub } = await openSignerStore(cfg, process.env);
          store.close();
          process.stdout.write(
            o.json ? `${JSON.stringify({ identity: identityPub })}\n` : `${identityPub}\n`,
          );
          return;
        }
        const node = await startSigner(cfg, process.env);
        serveUntilStopped(node, { event: 'signer_started', url: node.url, identity: node.identityPub });
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('coordinator')
    .description('run a coordinator (HTTP API; PGlite in the data dir unless DATABASE_URL is set)')
    .option('-c, --config <file>', 'coordinator config file (JSON); environment variables override it')
    .option('--print-identity', 'print the coordinator identity public key (for signer allowlists) and exit')
    .option('--json', 'with --print-identity: print {"identity": ...}')
    .action(async (o: { config?: string; printIdentity?: boolean; json?: boolean }) => {
      try {
        const { loadCoordinatorConfig } = await import('../config/coordinator.js');
        const { coordinatorIdentity, startCoordinator } = await import('../coordinator/node.js');
        const cfg = loadCoordinatorConfig(o.config, process.env);
        if (o.printIdentity) {
          const id = coordinatorIdentity(cfg.data_dir).identityPub;
          process.stdout.write(o.json ? `${JSON.stringify({ identity: id })}\n` : `${id}\n`);
          return;
        }
        const node = await startCoordinator(cfg);
        serveUntilStopped(node, {
          event: 'coordinator_started',
          url: node.url,
          identity: node.identityPub,
          database: node.backend.kind,
          admin_token_created: Boolean(node.adminToken),
        });
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('address-service')
    .description(
      'run the address tier: address endpoints only, forwarded to the coordinator (safe to expose; default 127.0.0.1:9000)',
    )
    .option('-c, --config <file>', 'address service config file (JSON); environment variables override it')
    .action(async (o: { config?: string }) => {
      try {
        const { loadAddressServiceConfig } = await import('../config/address-service.js');
        const { startAddressService } = await import('../address-service/node.js');
        const node = await startAddressService(loadAddressServiceConfig(o.config, process.env));
        serveUntilStopped(node, {
          event: 'address_service_started',
          url: node.url,
          coordinator_url: node.coordinatorUrl,
        });
      } catch (e) {
        fail(e);
      }
    });

  const drill = program.command('drill').description('recovery drills (docs/custody.md)');
  drill
    .command('regenerate')
    .description(
      'regenerate every per-passphrase address from the HSM tokens, the configs and the passphrase list, on empty data dirs and an empty database; compare with a recorded list',
    )
    .requiredOption('--passphrases <file>', 'one passphrase per line (empty lines ignored)')
    .option('--expect <file>', 'the recorded addresses: one per line, in the order of the passphrases')
    .option(
      '--deployment <dir>',
      'the deployment bundle of floe init (coordinator.json, signer-N.json, deployment.json)',
    )
    .option(
      '--address-secret <file>',
      "the coordinator's address.key (default: in the bundle's coordinator data dir)",
    )
    .option(
      '--work-dir <dir>',
      'where the empty data dirs and database go (default: a new temporary dir, removed after)',
    )
    .option('--out <file>', 'write the regenerated addresses there (one per line)')
    .option('--tenant <id>', 'the tenant the addresses belong to', 'default')
    .option(
      '--keep-running',
      'leave the regenerated cluster running (until Ctrl-C) and print its URL and token',
    )
    .option('--json', 'print one JSON document (and JSON lines for --keep-running)')
    .action(
      async (o: {
        passphrases: string;
        expect?: string;
        deployment?: string;
        addressSecret?: string;
        workDir?: string;
        out?: string;
        tenant: string;
        keepRunning?: boolean;
        json?: boolean;
      }) => {
        try {
          const { drillRegenerate } = await import('./drill.js');
          process.exit(await drillRegenerate(o));
        } catch (e) {
          fail(e);
        }
      },
    );

  registerClientCommands(program);
  registerKeyControlCommands(program);
  registerAuditCommands(program);
  registerWebhookCommands(program);
  registerBackupCommands(program);
  return program;
}

/** How bin/floe.js reports an error thrown outside an action: one line (or JSON), no stack trace. */
export { fail };

const isMain = process.argv[1] !== undefined && /cli[\\/]main\.[tj]s$/.test(process.argv[1]);
if (isMain) {
  buildProgram().parseAsync(process.argv).catch(fail);
}
