/**
 * cluster.json: what `floe up` set up in a data directory (ports, identities, signer ids,
 * the demo key) and what runs now (pids). Read by later starts, by `floe status` and by
 * tests. Written atomically (temporary file, then rename). Holds no secret.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export interface ClusterSignerState {
  name: string;
  port: number;
  url: string;
  identity: string;
  /** Id under which the coordinator knows this signer (set once registered). */
  id: string | null;
  pid: number | null;
  restarts: number;
}

export interface ClusterState {
  version: 1;
  created_at: number;
  coordinator: {
    port: number;
    url: string;
    identity: string;
    pid: number | null;
    restarts: number;
  };
  /** The address service (DESIGN §14); absent in data dirs of earlier versions. */
  address_service?: {
    port: number;
    url: string;
    pid: number | null;
    restarts: number;
  };
  /** The local Nostr relay (src/cluster/nostr.ts); absent in data dirs of earlier versions. */
  relay?: {
    port: number;
    url: string;
    pid: number | null;
    restarts: number;
  };
  signers: ClusterSignerState[];
  demo_key: {
    id: string;
    threshold: number;
    n: number;
    x_only_public_key: string | null;
    npub: string | null;
  } | null;
  /** The running `floe up` process, or null when stopped. */
  supervisor_pid: number | null;
  started_at: number | null;
}

export function readClusterState(file: string): ClusterState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const s = JSON.parse(text) as ClusterState;
  if (s.version !== 1) throw new Error(`${file}: unknown version ${String(s.version)}`);
  return s;
}

export function writeClusterState(file: string, s: ClusterState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
