/**
 * The coordinator's database work per signature as sessions accumulate: the four transactions
 * of one signing on the real backend (PgBackend over PGlite in this process, or the Postgres
 * server with --url): read the key; insert the session born in its first attempt; record the
 * commitments and move to signing; move to aggregating and completed. No signer and no HTTP:
 * only what the database costs, block by block, to see whether it stays flat.
 *
 *   node --import tsx bench/session-store.ts [--sessions 5000] [--block 1000] [--maintain]
 *                                            [--on-disk] [--url postgres://…]
 *
 * --maintain runs the embedded database's autovacuum (src/db/maintenance.ts) after each
 * block, as the coordinator's jobs do once a minute. --on-disk gives PGlite a data directory,
 * as a coordinator has (in memory, its files live in this process's heap). Each block also
 * reports this process's RSS, meaningful with --on-disk: what Postgres touches inside its
 * WebAssembly memory stays resident (an ANALYZE sample that grew with the table showed here
 * as about 2 kB more per session, docs/performance.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PgBackend } from '../src/coordinator/pg-backend.js';
import { openDb } from '../src/db/connection.js';
import { maintainTables } from '../src/db/maintenance.js';
import { newId } from '../src/domain/ids.js';
import {
  commitment,
  DAY,
  hex,
  intentFields,
  NOW,
  seedKeyTx,
  seedTenant,
  signature,
} from '../test/db/fixtures.js';

const { values: a } = parseArgs({
  options: {
    sessions: { type: 'string', default: '5000' },
    block: { type: 'string', default: '1000' },
    maintain: { type: 'boolean', default: false },
    url: { type: 'string' },
    'on-disk': { type: 'boolean', default: false },
  },
});
const total = Number(a.sessions);
const block = Number(a.block);

// PGlite in memory by default (its files live in this process's heap, so its RSS says little);
// --on-disk gives it a data directory of its own, as a coordinator has.
const dataDir = !a.url && a['on-disk'] ? mkdtempSync(join(tmpdir(), 'floe-session-store-')) : undefined;
const db = await openDb(a.url ? { url: a.url } : dataDir ? { dataDir } : {});
const backend = new PgBackend(db);
const tenant = await seedTenant(db);
const keyId = (await db.transaction((tx) => seedKeyTx(tx), { tenantId: tenant })).id;

async function signOnce(): Promise<void> {
  const sessionId = newId('session');
  await backend.getKey(tenant, keyId);
  await backend.insertSession(
    {
      sessionId,
      tenantId: tenant,
      keyId,
      ...intentFields(),
      status: 'pending',
      fingerprint: '',
      threshold: 2,
      createdBy: 'bench',
      idempotencyKey: null,
      createdAt: NOW,
      expiresAt: NOW + DAY,
      firstAttempt: {
        participants: [1, 2],
        startedAt: Date.now(),
        event: { kind: 'session.attempt', data: { attempt: 1, participants: [1, 2] } },
      },
    },
    { kind: 'session.created', data: {} },
  );
  const c = [commitment(), commitment()];
  const [s] = await backend.commitAttempts(tenant, [
    {
      sessionId,
      attempt: 1,
      rows: c.map((x, i) => ({ identifier: i + 1, signerId: `s${i + 1}`, commitment: x })),
      patch: {
        nonceCommitments: {
          1: Object.fromEntries(
            c.map((x, i) => [i + 1, { identifier: i + 1, hiding: x.slice(0, 66), binding: x.slice(66) }]),
          ),
        },
        signingStartedAt: Date.now(),
      },
    },
  ]);
  if (!s) throw new Error('the move to signing did not happen');
  const [done] = await backend.completeAttempts(tenant, [
    {
      sessionId,
      attempt: 1,
      shares: { partialSignatures: { 1: { 1: hex(32), 2: hex(32) } } },
      completion: { finalSignature: signature(), completedAt: Date.now() },
      event: { kind: 'session.completed', data: { attempt: 1 } },
    },
  ]);
  if (!done) throw new Error('the completion did not happen');
}

console.log(
  `session store: ${db.kind}, ${total} signings in blocks of ${block}${a.maintain ? ', maintained after each block' : ''}`,
);
const rows: {
  after: number;
  ms_per_signature: number;
  cpu_ms_per_signature: number;
  maintenance_ms?: number;
  rss_mb: number;
}[] = [];
for (let done = 0; done < total; done += block) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < block; i++) await signOnce();
  const ms = (performance.now() - t0) / block;
  // (this process's CPU: on PGlite, the database's work too; less noisy than the time on a
  // shared machine)
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000 / block;
  let maintenance_ms: number | undefined;
  if (a.maintain) {
    const m0 = performance.now();
    await maintainTables(db);
    maintenance_ms = Math.round(performance.now() - m0);
  }
  rows.push({
    after: done + block,
    ms_per_signature: Math.round(ms * 100) / 100,
    cpu_ms_per_signature: Math.round(cpu * 100) / 100,
    ...(maintenance_ms !== undefined ? { maintenance_ms } : {}),
    rss_mb: Math.round(process.memoryUsage().rss / 104857.6) / 10,
  });
  console.log(
    `  sessions ${done + 1}–${done + block}: ${ms.toFixed(2)} ms per signature (CPU ${cpu.toFixed(2)} ms)` +
      (maintenance_ms !== undefined ? ` (then maintenance ${maintenance_ms} ms)` : '') +
      `; this process's RSS ${rows.at(-1)!.rss_mb} MB`,
  );
}
console.log(JSON.stringify(rows));
await db.close();
if (dataDir) rmSync(dataDir, { recursive: true, force: true });
