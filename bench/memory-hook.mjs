// Loaded with NODE_OPTIONS=--import by the bench (bench/cluster.ts, `memoryDir`): every
// FLOE_BENCH_MEMORY_INTERVAL_MS (default 2000) this process appends one JSON line to
// FLOE_BENCH_MEMORY_DIR/<pid>.jsonl with where its memory is (MB): RSS, the V8 heap, external
// memory, array buffers, and the WebAssembly memories it created (PGlite's Postgres lives in
// one; libsecp256k1's WASM build in another). bench/memory.ts reads them. On SIGUSR2 it also
// writes a V8 heap snapshot there (<pid>-<n>.heapsnapshot, for Chrome DevTools' Memory tab).
import { appendFileSync, mkdirSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';

const dir = process.env.FLOE_BENCH_MEMORY_DIR;
if (dir) {
  mkdirSync(dir, { recursive: true });
  const memories = new Set();
  const track = (m) => {
    if (m instanceof WebAssembly.Memory) memories.add(new WeakRef(m));
  };
  const trackExports = (instance) => {
    for (const v of Object.values(instance?.exports ?? {})) track(v);
  };
  const W = WebAssembly;
  const OrigMemory = W.Memory;
  W.Memory = new Proxy(OrigMemory, {
    construct(target, args, nt) {
      const m = Reflect.construct(target, args, nt);
      track(m);
      return m;
    },
  });
  const OrigInstance = W.Instance;
  W.Instance = new Proxy(OrigInstance, {
    construct(target, args, nt) {
      const i = Reflect.construct(target, args, nt);
      trackExports(i);
      return i;
    },
  });
  const origInstantiate = W.instantiate;
  W.instantiate = async function (...args) {
    const r = await origInstantiate.apply(this, args);
    trackExports(r instanceof OrigInstance ? r : r.instance);
    return r;
  };
  const origStreaming = W.instantiateStreaming;
  if (origStreaming) {
    W.instantiateStreaming = async function (...args) {
      const r = await origStreaming.apply(this, args);
      trackExports(r.instance);
      return r;
    };
  }
  const mb = (x) => Math.round((x / 1048576) * 10) / 10;
  const write = () => {
    let wasm = 0;
    for (const ref of memories) {
      const m = ref.deref();
      if (m) wasm += m.buffer.byteLength;
      else memories.delete(ref);
    }
    const u = process.memoryUsage();
    const line = {
      pid: process.pid,
      at: new Date().toISOString(),
      rss: mb(u.rss),
      heap_total: mb(u.heapTotal),
      heap_used: mb(u.heapUsed),
      external: mb(u.external),
      array_buffers: mb(u.arrayBuffers),
      wasm_memory: mb(wasm),
      other: mb(u.rss - u.heapTotal - u.external),
    };
    try {
      appendFileSync(`${dir}/${process.pid}.jsonl`, `${JSON.stringify(line)}\n`);
    } catch {
      // the directory went away with the cluster
    }
  };
  const interval = Number(process.env.FLOE_BENCH_MEMORY_INTERVAL_MS ?? 2000);
  setInterval(write, interval).unref();
  setTimeout(write, 200).unref();
  let snapshots = 0;
  process.on('SIGUSR2', () => {
    writeHeapSnapshot(`${dir}/${process.pid}-${++snapshots}.heapsnapshot`);
    write();
  });
}
