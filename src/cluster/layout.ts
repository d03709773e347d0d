/**
 * Where a local cluster (`floe up`) keeps its files, all under one data directory
 * (default ./.floe):
 *
 *   cluster.json              what was set up (ports, identities, signer ids, demo key) and
 *                             what runs now (supervisor and child pids)
 *   up.lock                   pid of the running `floe up` (one supervisor per data dir)
 *   admin.token               the first admin API token (0600), written by the coordinator
 *   coordinator/              coordinator data dir (identity key, JWT secret, pgdata/)
 *   signer-N/                 signer N data dir (signer.db: shares and identity, encrypted)
 *   signer-N/passphrase       signer N passphrase (0600): development only, see up.ts
 *   logs/<child>.log          stdout and stderr of each child process
 */
import { isAbsolute, join, relative, resolve } from 'node:path';

export const DEFAULT_DATA_DIR = '.floe';

export interface ClusterLayout {
  root: string;
  stateFile: string;
  lockFile: string;
  adminTokenFile: string;
  coordinatorDir: string;
  logsDir: string;
  signerName(i: number): string;
  signerDir(i: number): string;
  passphraseFile(i: number): string;
  logFile(name: string): string;
}

/** Paths of a local cluster rooted at `dataDir` (resolved against the working directory). */
export function clusterLayout(dataDir: string = DEFAULT_DATA_DIR): ClusterLayout {
  const root = resolve(dataDir);
  const signerName = (i: number) => `signer-${i}`;
  return {
    root,
    stateFile: join(root, 'cluster.json'),
    lockFile: join(root, 'up.lock'),
    adminTokenFile: join(root, 'admin.token'),
    coordinatorDir: join(root, 'coordinator'),
    logsDir: join(root, 'logs'),
    signerName,
    signerDir: (i) => join(root, signerName(i)),
    passphraseFile: (i) => join(root, signerName(i), 'passphrase'),
    logFile: (name) => join(root, 'logs', `${name}.log`),
  };
}

/** A path as a user in `cwd` would type it: relative when it lies below cwd, else absolute. */
export function displayPath(p: string, cwd: string = process.cwd()): string {
  const r = relative(cwd, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}
