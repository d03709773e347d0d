/**
 * Which coordinator a client command talks to, and where that came from (named when it cannot
 * be reached): --url, else FLOE_URL, else the coordinator of the local cluster in the data
 * directory (cluster.json, written by `floe up`, whatever --port it was started with), else
 * the default http://127.0.0.1:8080.
 */
import { DEFAULT_URL } from '../client/api-client.js';
import { clusterLayout, DEFAULT_DATA_DIR, displayPath } from '../cluster/layout.js';
import { readClusterState } from '../cluster/state.js';

export interface CoordinatorTarget {
  url: string;
  /** Where the URL came from, as the error names it: `from --url`, `from .floe/cluster.json`, … */
  source: string;
}

export function coordinatorTarget(
  o: { url?: string | undefined },
  dataDir: string = DEFAULT_DATA_DIR,
  env: NodeJS.ProcessEnv = process.env,
): CoordinatorTarget {
  if (o.url) return { url: o.url, source: 'from --url' };
  if (env.FLOE_URL) return { url: env.FLOE_URL, source: 'from FLOE_URL' };
  const stateFile = clusterLayout(dataDir).stateFile;
  let url: string | undefined;
  try {
    url = readClusterState(stateFile)?.coordinator.url;
  } catch {
    // An unreadable cluster.json is no local cluster: the default applies.
  }
  if (url) return { url, source: `from ${displayPath(stateFile)}` };
  return { url: DEFAULT_URL, source: `the default: no --url, FLOE_URL or ${displayPath(stateFile)}` };
}
