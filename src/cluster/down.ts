/**
 * `floe down`: stop the local cluster a `floe up` runs from a data directory, from any
 * terminal. It sends that `floe up` SIGTERM (what Ctrl-C does: every child is stopped, the
 * state is saved, the lock released), waits for it and its children to exit, and reports.
 * Nothing running is not an error: the cluster is down either way.
 */
import { clusterLayout, displayPath } from './layout.js';
import { readClusterState } from './state.js';
import { pidAlive, runningSupervisor } from './supervisor-pid.js';

export interface DownOptions {
  dataDir: string;
  /** How long to wait for `floe up` and its children to exit. Default 60 s. */
  timeoutMs?: number;
  json?: boolean;
}

export interface DownReport {
  data_dir: string;
  /** Whether a running `floe up` was found (and stopped). */
  was_running: boolean;
  supervisor_pid: number | null;
  /** The children it ran (coordinator, signers, address service, relay). */
  child_pids: number[];
  stopped: boolean;
}

/** `floe up` or a child still runs after the timeout. */
export class DownTimeout extends Error {
  readonly code = 'down_timeout';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'DownTimeout';
  }
}

/** Stops the cluster; resolves with the exit code 0, or throws DownTimeout. */
export async function down(o: DownOptions): Promise<number> {
  const L = clusterLayout(o.dataDir);
  const where = displayPath(L.root);
  const pid = runningSupervisor(L);
  const report: DownReport = {
    data_dir: L.root,
    was_running: pid !== undefined,
    supervisor_pid: pid ?? null,
    child_pids: [],
    stopped: pid === undefined,
  };
  const print = (text: string) =>
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${text}\n`);
  if (pid === undefined) {
    print(`no local cluster is running from ${where}`);
    return 0;
  }
  report.child_pids = childPids(L.stateFile);

  process.kill(pid, 'SIGTERM');
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const gone = () => !pidAlive(pid) && report.child_pids.every((p) => !pidAlive(p));
  while (!gone() && Date.now() < deadline) await sleep(100);

  report.stopped = gone();
  if (!report.stopped) {
    const left = [pid, ...report.child_pids].filter(pidAlive);
    throw new DownTimeout(
      `the local cluster in ${where} did not stop within ${Math.round(timeoutMs / 1000)} s (still running: pid ${left.join(', ')})`,
      `\`kill -KILL ${left.join(' ')}\` stops them at once`,
    );
  }
  print(
    `stopped the local cluster in ${where} (floe up pid ${pid} and its ${report.child_pids.length} child processes)`,
  );
  return 0;
}

/** The child pids cluster.json records (read before the stop: `floe up` clears them). */
function childPids(stateFile: string): number[] {
  let s: ReturnType<typeof readClusterState>;
  try {
    s = readClusterState(stateFile);
  } catch {
    return [];
  }
  if (!s) return [];
  return [s.coordinator.pid, s.address_service?.pid, s.relay?.pid, ...s.signers.map((x) => x.pid)].filter(
    (p): p is number => typeof p === 'number' && p > 0 && pidAlive(p),
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
