/**
 * A signer's database work per signature as its consumption markers accumulate, and the
 * memory it keeps: the store calls of one signing on the real SqliteSignerStore (in a data
 * directory, WAL, synchronous = FULL): the marker check at sign.open, the check again at
 * sign.round2, then the marker and its audit row in one transaction. No HTTP, no crypto:
 * only what the store costs and holds, block by block, to see whether it stays flat.
 *
 *   node --import tsx bench/signer-store.ts [--sessions 30000] [--block 3000]
 *
 * Session ids are random (src/domain/ids.ts), so each marker lands somewhere in the markers
 * table's primary-key index: the pages a connection has touched pile up in SQLite's page
 * cache, up to its limit (better-sqlite3 builds SQLite with 16 MB per connection), as the
 * signers' memory outside the V8 heap did in the soak (docs/performance.md).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newId } from '../src/domain/ids.js';
import { PassphraseKeySource } from '../src/signer/keys/passphrase.js';
import { SqliteSignerStore } from '../src/signer/store.js';

const { values: a } = parseArgs({
  options: {
    sessions: { type: 'string', default: '30000' },
    block: { type: 'string', default: '3000' },
  },
});
const total = Number(a.sessions);
const block = Number(a.block);

const dir = mkdtempSync(join(tmpdir(), 'floe-signer-store-'));
const store = await SqliteSignerStore.open({
  path: join(dir, 'signer.db'),
  // (the smallest cost scrypt allows here: the passphrase is not what this measures)
  keySource: new PassphraseKeySource('bench-signer-store-passphrase', { N: 2 ** 10 }),
  create: true,
});
const keyId = newId('key');
const identifier = 1;

function signOnce(): void {
  const sessionId = newId('session');
  // (a hash of the session's fields, src/protocol/attempt.ts; as random as one here)
  const attemptId = randomBytes(32).toString('hex');
  if (store.hasMarker(keyId, sessionId, attemptId)) throw new Error('a fresh session has a marker');
  if (store.hasMarker(keyId, sessionId, attemptId)) throw new Error('a fresh session has a marker');
  const at = Date.now();
  const messageDigest = randomBytes(32).toString('hex');
  const [r] = store.putMarkers([
    {
      marker: { keyId, sessionId, attemptId, identifier, messageDigest, at },
      audit: { at, kind: 'sign', keyId, sessionId, attemptId, messageDigest },
    },
  ]);
  if (r !== 'ok') throw new Error(`the marker was not written (${r})`);
}

console.log(
  `signer store: ${total} signings in blocks of ${block}; settings ${JSON.stringify(store.settings())}`,
);
const rows: { after: number; ms_per_signature: number; rss_mb: number; outside_v8_heap_mb: number }[] = [];
const mb = (bytes: number): number => Math.round(bytes / 104857.6) / 10;
for (let done = 0; done < total; done += block) {
  const t0 = performance.now();
  for (let i = 0; i < block; i++) signOnce();
  const ms = (performance.now() - t0) / block;
  const m = process.memoryUsage();
  rows.push({
    after: done + block,
    ms_per_signature: Math.round(ms * 1000) / 1000,
    rss_mb: mb(m.rss),
    // (what the V8 heap's collector does not move: SQLite's page cache is here)
    outside_v8_heap_mb: mb(m.rss - m.heapTotal),
  });
  console.log(
    `  sessions ${done + 1}–${done + block}: ${ms.toFixed(3)} ms per signature; this process's RSS ${rows.at(-1)!.rss_mb} MB, outside the V8 heap ${rows.at(-1)!.outside_v8_heap_mb} MB`,
  );
}
console.log(JSON.stringify(rows));
store.close();
rmSync(dir, { recursive: true, force: true });
