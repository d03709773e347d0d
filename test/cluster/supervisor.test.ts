import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type ChildSpec,
  ChildStartError,
  Supervisor,
  type SupervisorEvent,
} from '../../src/cluster/supervisor.js';
import { until } from '../helpers/until.js';

/** A child that prints its ready line and then behaves as `body` says. */
function child(name: string, body: string, extra: Partial<ChildSpec> = {}): ChildSpec {
  return {
    name,
    command: process.execPath,
    args: ['-e', body],
    env: { PATH: process.env.PATH ?? '' },
    readyEvent: 'up',
    ...extra,
  };
}
const READY = `console.log(JSON.stringify({ event: 'up', pid: process.pid }));`;
const STAY = `${READY} setInterval(() => {}, 1000);`;

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Supervisor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-sup-'));
  const sups: Supervisor[] = [];
  const make = (o: ConstructorParameters<typeof Supervisor>[0] = {}) => {
    const s = new Supervisor(o);
    sups.push(s);
    return s;
  };
  after(async () => {
    for (const s of sups) s.forceKill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a child, waits for its ready line and logs its output', async () => {
    const sup = make();
    const log = join(dir, 'logs', 'a.log');
    const info = await sup.start(child('a', `console.error('hello on stderr'); ${STAY}`, { logFile: log }));
    assert.equal(info.event, 'up');
    assert.equal(info.pid, sup.pid('a'));
    await sup.stop();
    const text = readFileSync(log, 'utf8');
    assert.match(text, /hello on stderr/);
    assert.match(text, /"event":"up"/);
  });

  it('restarts a child that dies, with exponential backoff, and reports each step', async () => {
    const events: SupervisorEvent[] = [];
    const sup = make({ backoff: { initialMs: 50, maxMs: 1000 }, onEvent: (e) => events.push(e) });
    await sup.start(child('b', STAY));
    const first = sup.pid('b')!;
    process.kill(first, 'SIGKILL');
    await until(
      'restarted once',
      () => sup.restarts('b') === 1 && alive(sup.pid('b')) && sup.pid('b') !== first,
    );
    const second = sup.pid('b')!;
    await until('ready again', () => events.some((e) => e.kind === 'ready' && e.pid === second));
    process.kill(second, 'SIGKILL');
    await until(
      'restarted twice',
      () => sup.restarts('b') === 2 && alive(sup.pid('b')) && sup.pid('b') !== second,
    );
    const delays = events.flatMap((e) => (e.kind === 'restarting' ? [e.delayMs] : []));
    assert.deepEqual(delays, [50, 100]);
    const exits = events.filter((e) => e.kind === 'exited');
    assert.equal(exits[0]!.kind === 'exited' && exits[0]!.signal, 'SIGKILL');
    assert.ok(exits.every((e) => e.kind === 'exited' && !e.expected));
    await sup.stop();
  });

  it('keeps retrying a child that fails to come back, reporting each failure', async () => {
    const events: SupervisorEvent[] = [];
    const marker = join(dir, 'started-once');
    // Ready the first time; afterwards it exits at once (until the marker is gone).
    const body = `const fs = require('node:fs');
      if (fs.existsSync(${JSON.stringify(marker)})) { console.error('cannot start'); process.exit(3); }
      fs.writeFileSync(${JSON.stringify(marker)}, '1'); ${STAY}`;
    const sup = make({ backoff: { initialMs: 20, maxMs: 200 }, onEvent: (e) => events.push(e) });
    await sup.start(child('c', body));
    process.kill(sup.pid('c')!, 'SIGKILL');
    await until('three failed restarts', () => events.filter((e) => e.kind === 'restart_failed').length >= 3);
    const failed = events.find((e) => e.kind === 'restart_failed');
    assert.match(
      failed!.kind === 'restart_failed' ? failed!.error : '',
      /exited \(code 3\) before it was ready: cannot start/,
    );
    const delays = events.flatMap((e) => (e.kind === 'restarting' ? [e.delayMs] : []));
    assert.deepEqual(delays.slice(0, 4), [20, 40, 80, 160]);
    rmSync(marker);
    await until('back up', () => events.some((e) => e.kind === 'ready' && e.restarts > 0));
    await sup.stop();
  });

  it('a first start that fails rejects with the child stderr', async () => {
    const sup = make();
    await assert.rejects(
      sup.start(child('d', `console.error('bad config: no allowlist'); process.exit(1);`)),
      (e) =>
        e instanceof ChildStartError &&
        /exited \(code 1\) before it was ready: bad config: no allowlist/.test(e.message) &&
        e.stderrTail.includes('bad config: no allowlist'),
    );
    assert.deepEqual(sup.names(), []);
  });

  it('a child that is never ready is killed after the ready timeout', async () => {
    const sup = make({ readyTimeoutMs: 300 });
    await assert.rejects(sup.start(child('e', 'setInterval(() => {}, 1000);')), /not ready after 300 ms/);
  });

  it('stop: SIGTERM, then SIGKILL for a child that ignores it; no restart afterwards', async () => {
    const events: SupervisorEvent[] = [];
    const sup = make({ stopTimeoutMs: 300, backoff: { initialMs: 10 }, onEvent: (e) => events.push(e) });
    await sup.start(child('polite', STAY));
    await sup.start(child('stubborn', `process.on('SIGTERM', () => {}); ${STAY}`));
    const pids = [sup.pid('polite')!, sup.pid('stubborn')!];
    const t0 = Date.now();
    await sup.stop(['stubborn']);
    assert.ok(Date.now() - t0 >= 250, 'waited for the timeout before SIGKILL');
    assert.ok(pids.every((p) => !alive(p)));
    const exits = events.filter((e) => e.kind === 'exited');
    assert.deepEqual(
      exits.map((e) => e.kind === 'exited' && [e.name, e.signal, e.expected]),
      [
        ['stubborn', 'SIGKILL', true],
        ['polite', 'SIGTERM', true],
      ],
    );
    // A restart would be announced in the very exit handler that reported `exited` (seen above).
    assert.equal(events.filter((e) => e.kind === 'restarting').length, 0);
  });
});
