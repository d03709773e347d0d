/**
 * Share backup on a signer (issue 16 item 3; docs/backup.md):
 *
 *   floe signer backup-keygen --out F         a new operator X25519 key (age format), 0600
 *   floe signer backup --key K (--to-recipient age1… | --passphrase-file F) --out FILE
 *   floe signer restore --in FILE (--identity-key-file F | --passphrase-file F)
 *
 * Both open the signer's own store the way `floe signer` does (openSignerStore: the config's or
 * the environment's store passphrase, or its HSM key source), on the signer machine: the share
 * never goes through the coordinator. The backup is sealed in this process (src/signer/backup.ts)
 * and written 0600; no plaintext share touches the disk, and no secret reaches the output.
 *
 * A backup may run while the signer runs: it is a second SQLite connection in WAL mode that reads
 * one committed row (and appends one audit row, waiting on the busy timeout like any writer).
 * Restore is meant for a stopped signer (a new machine): it writes the key in one transaction.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { SignerConfig } from '../config/signer.js';
import { toHex, wipe } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';
import { emit, fail, fields } from './output.js';

type StoreConfig = Pick<SignerConfig, 'data_dir' | 'passphrase_file' | 'key_source' | 'peers'>;

interface StoreOpts {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

/**
 * The signer's store settings: its config file (-c, as `floe signer -c`), else the environment
 * (FLOE_SIGNER_DATA_DIR, FLOE_SIGNER_PASSPHRASE(_FILE), FLOE_SIGNER_PEERS); --data-dir wins.
 */
async function storeConfig(o: StoreOpts): Promise<StoreConfig> {
  const env = process.env;
  if (o.config !== undefined) {
    const { loadSignerConfig } = await import('../config/signer.js');
    const cfg = loadSignerConfig(o.config, env);
    return { ...cfg, ...(o.dataDir !== undefined ? { data_dir: resolve(o.dataDir) } : {}) };
  }
  if (env.FLOE_SIGNER_PKCS11_MODULE) {
    throw new FloeError('invalid_request', 'an HSM-sealed signer store: give its config file (-c)');
  }
  const dir = o.dataDir ?? env.FLOE_SIGNER_DATA_DIR;
  if (!dir) {
    throw new FloeError(
      'invalid_request',
      'no signer data dir: give --data-dir or -c (or FLOE_SIGNER_DATA_DIR)',
    );
  }
  const { envList } = await import('../config/file.js');
  return {
    data_dir: resolve(dir),
    peers: envList(env.FLOE_SIGNER_PEERS) ?? [],
    ...(env.FLOE_SIGNER_PASSPHRASE_FILE ? { passphrase_file: resolve(env.FLOE_SIGNER_PASSPHRASE_FILE) } : {}),
  };
}

/** Write `bytes` to a new file, mode 0600 (never over an existing one), fsync'd. */
function writeNewSecretFile(path: string, bytes: Uint8Array): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FloeError(
      'invalid_request',
      code === 'EEXIST' ? `${path} exists already; choose a new file` : `${path} cannot be created (${code})`,
    );
  }
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(path);
    throw e;
  }
  closeSync(fd);
}

function hasStore(dataDir: string): boolean {
  return existsSync(join(dataDir, 'signer.db'));
}

function withStoreOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', "the signer's config file (as floe signer -c); else the environment")
    .option('--data-dir <dir>', "the signer's data dir (default: the config's, or FLOE_SIGNER_DATA_DIR)")
    .option('--json', 'print one JSON document');
}

export function registerBackupCommands(program: Command): void {
  const signer = program.commands.find((c) => c.name() === 'signer') ?? program.command('signer');

  signer
    .command('backup-keygen')
    .description(
      'make an operator key for share backups: an X25519 identity (age format) in a new 0600 file; prints its recipient (age1…)',
    )
    .requiredOption('--out <file>', 'the identity file to create (keep it offline; never on the signer)')
    .option('--json', 'print one JSON document')
    .action(async function (this: Command) {
      const o = this.optsWithGlobals() as { out: string; json?: boolean };
      try {
        const { generateBackupIdentity } = await import('../signer/backup.js');
        const { identityFile, recipient } = generateBackupIdentity();
        writeNewSecretFile(o.out, new TextEncoder().encode(identityFile));
        emit(Boolean(o.json), { recipient, identity_file: resolve(o.out) }, () =>
          fields([
            ['recipient', recipient],
            ['identity file', resolve(o.out)],
          ]),
        );
      } catch (e) {
        fail(e, Boolean(o.json));
      }
    });

  withStoreOptions(
    signer
      .command('backup')
      .description(
        "export one key's share from this signer's store, sealed to an operator key (X25519 recipient) or a passphrase (scrypt), as a new 0600 file; also carries this signer's identity key (docs/backup.md)",
      )
      .requiredOption('--key <id>', 'the key to back up (an active share on this signer)')
      .option(
        '--to-recipient <age1…>',
        'seal to this X25519 recipient (floe signer backup-keygen, or age-keygen)',
      )
      .option(
        '--passphrase-file <file>',
        'seal under the passphrase in this 0600 file (not the store passphrase; scrypt N=2^17)',
      )
      .requiredOption('--out <file>', 'the backup file to create (refused if it exists)'),
  ).action(async function (this: Command) {
    const o = this.optsWithGlobals() as StoreOpts & {
      key: string;
      toRecipient?: string;
      passphraseFile?: string;
      out: string;
    };
    try {
      if ((o.toRecipient === undefined) === (o.passphraseFile === undefined)) {
        throw new FloeError('invalid_request', 'give exactly one of --to-recipient and --passphrase-file');
      }
      const { parseRecipient, sealShareBackup } = await import('../signer/backup.js');
      const { readSecretFile } = await import('../signer/keys/passphrase.js');
      const { openSignerStore } = await import('../signer/node.js');
      if (o.toRecipient !== undefined) parseRecipient(o.toRecipient);
      const to =
        o.toRecipient !== undefined
          ? { recipient: o.toRecipient }
          : { passphrase: await readSecretFile(o.passphraseFile!, 'backup passphrase file') };
      if (existsSync(o.out))
        throw new FloeError('invalid_request', `${o.out} exists already; choose a new file`);
      const cfg = await storeConfig(o);
      if (!hasStore(cfg.data_dir)) {
        throw new FloeError('invalid_request', `no signer store in ${cfg.data_dir}`);
      }
      const { store, identity, identityPub } = await openSignerStore(cfg, process.env);
      identity.dispose();
      let file: Uint8Array;
      let identifier: number;
      try {
        const identitySecret = store.getIdentity();
        if (!identitySecret) throw new FloeError('internal', 'this signer store has no identity key');
        let share: Uint8Array | undefined;
        try {
          const { key, freeze } = store.exportKey(o.key, Date.now());
          share = key.keyPackage.signingShare;
          identifier = key.identifier;
          file = await sealShareBackup(
            {
              keyId: key.keyId,
              identifier: key.identifier,
              origin: key.origin,
              createdAt: key.createdAt,
              ...(key.transcriptHash ? { transcriptHash: key.transcriptHash } : {}),
              ...(key.approvalPolicy ? { approvalPolicy: key.approvalPolicy } : {}),
              ...(freeze ? { freeze } : {}),
              keyPackage: key.keyPackage,
              identitySecret,
              ...(key.generation ? { generation: key.generation } : {}),
            },
            to,
          );
        } finally {
          wipe(identitySecret, share);
        }
      } finally {
        store.close();
      }
      writeNewSecretFile(o.out, file);
      const out = {
        key_id: o.key,
        identifier,
        identity: identityPub,
        sealed_to: o.toRecipient ?? 'passphrase',
        file: resolve(o.out),
      };
      emit(Boolean(o.json), out, () =>
        fields([
          ['key', out.key_id],
          ['member', out.identifier],
          ['signer identity', out.identity],
          ['sealed to', out.sealed_to],
          ['file', out.file],
        ]),
      );
    } catch (e) {
      fail(e, Boolean(o.json));
    }
  });

  withStoreOptions(
    signer
      .command('restore')
      .description(
        "import a share backup into this signer's store (a new data dir takes the backup's signer identity); refused if the key is there, if this signer is another member, or if the identity is not on the roster (peers)",
      )
      .requiredOption('--in <file>', 'the backup file (floe signer backup)')
      .option('--identity-key-file <file>', "the operator's X25519 identity file (AGE-SECRET-KEY-1…), 0600")
      .option('--passphrase-file <file>', 'the backup passphrase, in a 0600 file'),
  ).action(async function (this: Command) {
    const o = this.optsWithGlobals() as StoreOpts & {
      in: string;
      identityKeyFile?: string;
      passphraseFile?: string;
    };
    try {
      if ((o.identityKeyFile === undefined) === (o.passphraseFile === undefined)) {
        throw new FloeError(
          'invalid_request',
          'give exactly one of --identity-key-file and --passphrase-file',
        );
      }
      const { BACKUP_MAX_BYTES, openShareBackup, parseIdentityFile, wipeShareBackup } = await import(
        '../signer/backup.js'
      );
      const { readSecretFile } = await import('../signer/keys/passphrase.js');
      const { openSignerStore } = await import('../signer/node.js');
      const { identityPublicKey } = await import('../crypto/identity.js');
      let size: number;
      try {
        size = statSync(o.in).size;
      } catch (e) {
        throw new FloeError(
          'invalid_request',
          `${o.in} cannot be read (${(e as NodeJS.ErrnoException).code})`,
        );
      }
      if (size > BACKUP_MAX_BYTES)
        throw new FloeError('payload_too_large', `${o.in} is not a share backup (too large)`);
      const fileBytes = new Uint8Array(readFileSync(o.in));
      let withKey: { identity: Uint8Array } | { passphrase: string };
      if (o.identityKeyFile !== undefined) {
        withKey = {
          identity: parseIdentityFile(await readSecretFile(o.identityKeyFile, 'identity key file')),
        };
      } else {
        withKey = { passphrase: await readSecretFile(o.passphraseFile!, 'backup passphrase file') };
      }
      let b: Awaited<ReturnType<typeof openShareBackup>>;
      try {
        b = await openShareBackup(fileBytes, withKey);
      } finally {
        if ('identity' in withKey) wipe(withKey.identity);
      }
      try {
        const member = toHex(identityPublicKey(b.identitySecret));
        const cfg = await storeConfig(o);
        // The roster (DESIGN §11) is set by an operator on this signer: a member outside it is
        // refused as in DKG and import.
        if (!cfg.peers.includes(member)) {
          throw new FloeError(
            'not_on_roster',
            `the backup's signer identity ${member} is not on this signer's roster (peers)`,
            {
              hint: 'restore on the replacement of that signer, with the roster of the deployment (peers / FLOE_SIGNER_PEERS)',
            },
          );
        }
        const fresh = !hasStore(cfg.data_dir);
        const { store, identity, identityPub } = await openSignerStore(cfg, process.env);
        identity.dispose();
        try {
          if (identityPub !== member) {
            // A store made just now by this restore, with a passphrase, takes the member's identity;
            // an HSM-derived identity or an existing store's is never replaced.
            if (!fresh || cfg.key_source?.kind === 'pkcs11') {
              throw new FloeError(
                'not_a_member',
                `this signer's identity is ${identityPub}, but the backup belongs to member ${b.identifier} with identity ${member}`,
                { hint: "restore into an empty data dir, or on that member's own signer store" },
              );
            }
            store.setIdentity(b.identitySecret);
          }
          store.restoreKey(
            {
              keyId: b.keyId,
              identifier: b.identifier,
              status: 'active',
              origin: b.origin,
              keyPackage: b.keyPackage,
              createdAt: b.createdAt,
              ...(b.transcriptHash ? { transcriptHash: b.transcriptHash } : {}),
              ...(b.approvalPolicy ? { approvalPolicy: b.approvalPolicy } : {}),
              ...(b.generation ? { generation: b.generation } : {}),
            },
            b.freeze,
            Date.now(),
          );
        } finally {
          store.close();
        }
        const out = {
          key_id: b.keyId,
          identifier: b.identifier,
          identity: member,
          data_dir: cfg.data_dir,
          new_store: fresh,
          frozen: b.freeze?.frozen ?? false,
        };
        emit(Boolean(o.json), out, () =>
          fields([
            ['key', out.key_id],
            ['member', out.identifier],
            ['signer identity', out.identity],
            ['data dir', `${out.data_dir}${fresh ? ' (new store)' : ''}`],
            ['frozen', out.frozen],
          ]),
        );
      } finally {
        wipeShareBackup(b);
      }
    } catch (e) {
      fail(e, Boolean(o.json));
    }
  });
}
