// Loaded with NODE_OPTIONS=--import by `npm run bench -- --profile DIR`: samples this process's
// CPU with the inspector and writes DIR/<pid>.cpuprofile when it exits (open it in Chrome
// DevTools or speedscope). FLOE_BENCH_PROFILE_DIR names the directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.FLOE_BENCH_PROFILE_DIR;
if (dir) {
  const s = new Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: 500 });
  s.post('Profiler.start');
  process.on('exit', () => {
    // same-thread inspector sessions answer synchronously, so this runs before the exit
    s.post('Profiler.stop', (err, r) => {
      if (err || !r) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${process.pid}.cpuprofile`, JSON.stringify(r.profile));
    });
  });
}
