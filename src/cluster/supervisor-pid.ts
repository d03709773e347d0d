/**
 * The `floe up` that runs from a data directory, found by its lock file (up.lock, its pid)
 * or, failing that, cluster.json's supervisor_pid. A pid counts only while that process
 * lives and, where /proc tells, is still a `floe up` (a pid left by a crash may since belong to
 * another program, which must never receive our signals).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ClusterLayout, DEFAULT_DATA_DIR, displayPath } from './layout.js';
import { readClusterState } from './state.js';

/**
 * Whether a process runs (ours or not). A zombie (exited, not yet reaped: an orphan whose
 * new parent does not reap) has stopped.
 */
export function pidAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // "pid (comm) S ...": the state follows the last ')' (comm may contain one).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/**
 * Whether `pid` runs `floe up`: its command line has the argument `up`. True where /proc is
 * not there to ask (not Linux): then the lock file is trusted.
 */
export function isFloeUp(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT' || !existsProc();
  }
  return cmdline.split('\0').includes('up');
}

function existsProc(): boolean {
  try {
    readFileSync('/proc/self/cmdline');
    return true;
  } catch {
    return false;
  }
}

/** The pid of the `floe up` running from `L`, or undefined. */
export function runningSupervisor(L: ClusterLayout): number | undefined {
  const candidates: number[] = [];
  try {
    candidates.push(Number(readFileSync(L.lockFile, 'utf8').trim()));
  } catch {
    // no lock: not running, or an earlier version
  }
  try {
    const pid = readClusterState(L.stateFile)?.supervisor_pid;
    if (pid) candidates.push(pid);
  } catch {
    // unreadable cluster.json: the lock alone decides
  }
  return candidates.find(
    (pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) && isFloeUp(pid),
  );
}

/** The command that stops the cluster of `L`: `floe down`, with --data-dir unless the default. */
export function downCommand(L: ClusterLayout): string {
  return L.root === resolve(DEFAULT_DATA_DIR) ? 'floe down' : `floe down --data-dir ${displayPath(L.root)}`;
}
