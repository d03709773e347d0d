/**
 * Bunkers with two coordinators on one database (migration 013's leases): exactly one runs a
 * given bunker; configuration and operator decisions taken through the other reach it; when
 * the one running it stops, the other takes over and the same client keeps signing.
 *
 * Coordinator A is the test cluster's (its API, default lease 15 s, tick 2 s); coordinator B
 * is a second `Coordinator` in this process over the same database, with the same identity
 * (the signers allowlist it) and the same `bunker.key`, as a second replica would be.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { loadBunkerSealer } from '../../src/coordinator/bunkers/seal.js';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { coordinatorIdentity } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { Coordinator } from '../../src/coordinator/services/index.js';
import type { Principal } from '../../src/domain/records.js';
import { nowSeconds } from '../../src/nostr/event.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/until.js';
import { type RelayProcess, spawnRelay, within } from './helpers.js';

useWebSocketImplementation(WebSocket);

const WAIT = 20_000;
const TENANT = 'default';
const admin: Principal = { tenantId: TENANT, role: 'admin', tokenId: 'tok_replica_b_test' };

describe('a bunker and two coordinators on one database', () => {
  let relay: RelayProcess;
  let cluster: TestCluster;
  let B: Coordinator;
  let keyA: { id: string; x_only_public_key: string };
  let keyB: { id: string; x_only_public_key: string };
  const cleanups: (() => unknown)[] = [];
  const A = () => cluster.coordinator!.coordinator;

  before(async () => {
    await Promise.all([
      spawnRelay(['--port', '0']).then((r) => (relay = r)),
      startCluster({ signers: 3 }).then((c) => (cluster = c)),
    ]);
    await cluster.registerSigners();
    keyA = await cluster.createKey(2);
    keyB = await cluster.createKey(2);
    const dir = join(cluster.dir, 'coordinator');
    const backend = cluster.coordinator!.backend as PgBackend;
    B = new Coordinator({
      backend,
      identity: coordinatorIdentity(dir).identity,
      metrics: new CoordinatorMetrics(),
      roundTimeoutMs: 3000,
      selection: 'ordered',
      bunkers: { db: backend.db, sealer: loadBunkerSealer(dir), tickMs: 250, leaseMs: 3000 },
    });
    B.start();
  });

  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
    await B?.close();
    await cluster?.close();
    await relay?.kill();
  });

  async function client(url: string, o: { onauth?: (u: string) => void } = {}) {
    const sk = generateSecretKey();
    const pool = new SimplePool();
    pool.idleTimeout = 0;
    const bp = await parseBunkerInput(url);
    assert.ok(bp);
    const signer = BunkerSigner.fromBunker(sk, bp, { pool, ...(o.onauth ? { onauth: o.onauth } : {}) });
    cleanups.push(async () => {
      await signer.close();
      pool.destroy();
    });
    await within(signer.connect(), WAIT, 'connect');
    return { signer, pk: getPublicKey(sk) };
  }

  const sign = async (s: BunkerSigner, content: string, kind = 1) => {
    const ev = await within(
      s.signEvent({ kind, created_at: nowSeconds(), tags: [], content }),
      WAIT,
      content,
    );
    assert.equal(verifyEvent(ev), true);
    return ev;
  };

  test('enabled through A, it runs on A; B, ticking, never starts it', async () => {
    const r = await cluster.api('POST', `/v1/keys/${keyA.id}/bunker`, {
      relays: [relay.url],
      permissions: ['sign_event:1'],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(A().bunkerHost!.local(TENANT, keyA.id));
    for (let i = 0; i < 3; i++) await B.bunkerHost!.tick();
    assert.equal(B.bunkerHost!.local(TENANT, keyA.id), undefined);
    const state = await cluster.api('GET', `/v1/keys/${keyA.id}/bunker`);
    assert.equal(state.body.running.coordinator, A().instanceId);
    const c = await client(r.body.bunker_url);
    assert.equal(await within(c.signer.getPublicKey(), WAIT, 'get_public_key'), keyA.x_only_public_key);
    await sign(c.signer, 'through A');
  });

  test('enabled through B, it runs on B; A leaves it alone, and its API changes and decisions reach B', async () => {
    const issued = await B.bunkers!.enable(admin, keyB.id, {
      relays: [relay.url],
      permissions: ['sign_event'],
    });
    assert.ok(B.bunkerHost!.local(TENANT, keyB.id));
    await A().bunkerHost!.tick();
    assert.equal(A().bunkerHost!.local(TENANT, keyB.id), undefined, 'A does not run what B holds');
    const state = await cluster.api('GET', `/v1/keys/${keyB.id}/bunker`);
    assert.deepEqual(
      [state.body.running.coordinator, state.body.running.here],
      [B.instanceId, false],
      'A shows where it runs',
    );
    // the nostrconnect flow needs the coordinator that runs it
    const elsewhere = await cluster.api('POST', `/v1/keys/${keyB.id}/bunker/connect`, {
      uri: `nostrconnect://${getPublicKey(generateSecretKey())}?relay=${encodeURIComponent(relay.url)}&secret=x`,
    });
    assert.equal(elsewhere.status, 409);
    assert.equal(elsewhere.body.code, 'bunker_elsewhere');

    const urls: string[] = [];
    let wake: (() => void) | undefined;
    const c = await client(issued.bunker_url, {
      onauth: (u) => {
        urls.push(u);
        wake?.();
      },
    });
    await sign(c.signer, 'through B');
    // a policy set through A's API: B applies it on its next tick
    const policy = await cluster.api('POST', `/v1/keys/${keyB.id}/bunker`, {
      require_approval: ['sign_event:7'],
    });
    assert.equal(policy.status, 201);
    // a barrier, not a sleep: a tick that starts after the change has applied it
    await B.bunkerHost!.tick();
    await B.bunkerHost!.tick();
    const held = c.signer.signEvent({ kind: 7, created_at: nowSeconds(), tags: [], content: '+' });
    held.catch(() => {});
    if (urls.length === 0) await within(new Promise<void>((r) => (wake = r)), WAIT, 'auth_url');
    const approvalId = urls[0]!.split('/').pop()!;
    await until(
      'the held request is recorded',
      async () =>
        (await cluster.api('GET', `/v1/keys/${keyB.id}/bunker/approvals/${approvalId}`)).status === 200,
    );
    const ok = await cluster.api('POST', `/v1/keys/${keyB.id}/bunker/approvals/${approvalId}/approve`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const ev = await within(held, WAIT, 'approved through A, answered by B');
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.kind, 7);
    wake = undefined;
  });

  test('when B stops, A takes over within a tick, and B’s client keeps signing', async () => {
    const issued = await B.bunkers!.enable(admin, keyB.id, {
      require_approval: [],
      permissions: ['sign_event:1'],
    });
    const c = await client(issued.bunker_url);
    await sign(c.signer, 'before the handover');
    await B.close();
    await until('A runs the bunker B ran', () => A().bunkerHost!.local(TENANT, keyB.id), 10_000);
    const state = await cluster.api('GET', `/v1/keys/${keyB.id}/bunker`);
    assert.deepEqual([state.body.running.coordinator, state.body.running.here], [A().instanceId, true]);
    // same remote-signer key, same clients: the client does not notice
    await sign(c.signer, 'after the handover');
    // and A still runs only one of each
    assert.ok(A().bunkerHost!.local(TENANT, keyA.id));
  });
});
