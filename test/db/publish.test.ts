/**
 * Migration 012 (publishing signed Nostr events) at the database: only one coordinator holds
 * a session's publishing round at a time (conditional claims, SKIP LOCKED), only the holder may
 * record, the relays asked for never change, results only on completed sessions, and row-level
 * security keeps one tenant's claims out of another's sessions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/hex.js';
import type { Db, Tx } from '../../src/db/connection.js';
import { setKeyRelays } from '../../src/db/queries/keys.js';
import {
  claimDuePublishes,
  claimPublish,
  getSession,
  insertSession,
  recordPublish,
  type SessionRow,
} from '../../src/db/queries/sessions.js';
import { newId } from '../../src/domain/ids.js';
import { type Intent, resolveIntent } from '../../src/domain/intent.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { barrier, DAY, driveTo, hex, NOW, seedKeyTx, seedTenant } from './fixtures.js';

const RELAYS = ['wss://a.example', 'wss://b.example'];

function nostrIntent() {
  const intent: Intent = {
    type: 'nostr_event',
    event: { kind: 1, content: hex(8), tags: [], created_at: Math.floor(NOW / 1000) },
  };
  const r = resolveIntent(intent, { xOnlyKey: new Uint8Array(32).fill(7) });
  return {
    messageHash: toHex(r.digest),
    intentType: 'nostr_event' as const,
    intent,
    intentHash: toHex(r.intentHash),
  };
}

describe('publishing (migration 012)', () => {
  let t: TestDb;
  let db: Db;
  let tenant: string;
  before(async () => {
    t = await testDb();
    db = t.db;
    tenant = await seedTenant(db);
  });
  after(() => t.cleanup());

  const tx = <T>(fn: (q: Tx) => Promise<T>, tenantId = tenant) => db.transaction(fn, { tenantId });

  async function session(o: { completed?: boolean; relays?: string[] | null } = {}): Promise<SessionRow> {
    return tx<SessionRow>(async (q) => {
      const key = await seedKeyTx(q);
      const { session } = await insertSession(q, {
        sessionId: newId('session'),
        keyId: key.id,
        ...nostrIntent(),
        threshold: 2,
        createdAt: NOW,
        expiresAt: NOW + DAY,
        publishRelays: o.relays === undefined ? RELAYS : o.relays,
      });
      return o.completed === false ? session : driveTo(q, session, 'completed');
    });
  }

  it('a new session asking to publish starts pending, with its relays and no results', async () => {
    const s = await session({ completed: false });
    assert.deepEqual(s.publishRelays, RELAYS);
    assert.equal(s.publishStatus, 'pending');
    assert.deepEqual(s.publishResults, []);
    const quiet = await session({ relays: null });
    assert.equal(quiet.publishRelays, null);
    assert.equal(quiet.publishStatus, null);
  });

  it('refuses publishing relays on a session that is not a Nostr event', async () => {
    await assert.rejects(
      tx(async (q) => {
        const key = await seedKeyTx(q);
        const message = hex(32);
        const intent = { type: 'message' as const, message };
        await insertSession(q, {
          sessionId: newId('session'),
          keyId: key.id,
          messageHash: message,
          intentType: 'message',
          intent,
          intentHash: toHex(resolveIntent(intent, { xOnlyKey: new Uint8Array(32) }).intentHash),
          threshold: 2,
          createdAt: NOW,
          expiresAt: NOW + DAY,
          publishRelays: RELAYS,
        });
      }),
      /valid_publish/,
    );
  });

  it('a round is claimed by one owner at a time, and only that owner records it', async () => {
    const pending = await session({ completed: false });
    const notYet = await tx(async (q) =>
      claimPublish(q, pending.sessionId, { owner: 'a', leaseMs: 60_000, now: NOW }),
    );
    assert.equal(notYet, null, 'nothing to publish before the session completed');

    const s = await session();
    const claim = (owner: string) =>
      tx<SessionRow | null>((q) => claimPublish(q, s.sessionId, { owner, leaseMs: 60_000, now: NOW }));
    const a = await claim('coordinator-a');
    assert.equal(a?.publishLeaseOwner, 'coordinator-a');
    assert.equal(await claim('coordinator-b'), null, 'leased: not claimed again');

    const results = [{ relay: RELAYS[0], accepted: true, message: '', at: NOW, attempts: 1 }];
    const record = (owner: string, status: 'pending' | 'done', nextAt: number | null) =>
      tx<SessionRow | null>((q) =>
        recordPublish(q, s.sessionId, { owner, results, status, nextAt, now: NOW }),
      );
    assert.equal(await record('coordinator-b', 'done', null), null, 'not the owner: nothing written');
    assert.deepEqual((await tx((q) => getSession(q, s.sessionId)))!.publishResults, []);
    const rec = await record('coordinator-a', 'pending', NOW + 5000);
    assert.deepEqual(rec?.publishResults, results);
    assert.equal(rec?.publishLeaseUntil, null, 'the lease is released');
    // Not due yet; then due, and claimed by whoever asks first.
    assert.equal(await claim('coordinator-b'), null);
    const later = await tx<SessionRow | null>((q) =>
      claimPublish(q, s.sessionId, { owner: 'coordinator-b', leaseMs: 60_000, now: NOW + 5000 }),
    );
    assert.equal(later?.publishLeaseOwner, 'coordinator-b');
    assert.equal(
      await record('coordinator-a', 'done', null),
      null,
      'a lease taken over fences the old owner',
    );
    assert.equal((await record('coordinator-b', 'done', null))?.publishStatus, 'done');
    const none = await tx<SessionRow | null>((q) =>
      claimPublish(q, s.sessionId, { owner: 'coordinator-c', leaseMs: 60_000, now: NOW + 10 * DAY }),
    );
    assert.equal(none, null, 'done: never claimed again');
  });

  it('two coordinators claiming due rounds at once never get the same session', async () => {
    const made = await Promise.all(Array.from({ length: 6 }, () => session()));
    const ids = new Set(made.map((s) => s.sessionId));
    const arrive = barrier(2);
    const claimAs = async (owner: string) => {
      await arrive();
      return db.transaction((q) => claimDuePublishes(q, { owner, leaseMs: 60_000, limit: 100, now: NOW }));
    };
    const [a, b] = await Promise.all([claimAs('coordinator-a'), claimAs('coordinator-b')]);
    const mine = (l: { sessionId: string }[]) => l.map((x) => x.sessionId).filter((id) => ids.has(id));
    const both = [...mine(a), ...mine(b)];
    assert.equal(new Set(both).size, both.length, 'no session claimed twice');
    assert.deepEqual(new Set(both), ids, 'every due session claimed once');
    const again = await db.transaction((q) =>
      claimDuePublishes(q, { owner: 'coordinator-c', leaseMs: 60_000, limit: 100, now: NOW }),
    );
    assert.deepEqual(mine(again), [], 'leased sessions are not claimed again');
  });

  it('the relays asked for never change, and results wait for a completed session', async () => {
    const s = await session();
    await assert.rejects(
      db.adminQuery(
        `UPDATE signing_sessions SET publish_relays = '["wss://evil.example"]' WHERE session_id = $1`,
        [s.sessionId],
      ),
      /immutable/,
    );
    const p = await session({ completed: false });
    await assert.rejects(
      db.adminQuery(`UPDATE signing_sessions SET publish_results = '[{"relay":"x"}]' WHERE session_id = $1`, [
        p.sessionId,
      ]),
      /before the session completed/,
    );
  });

  it("another tenant can neither claim nor read a tenant's publishing", async () => {
    const s = await session();
    const other = await seedTenant(db);
    const claimed = await tx(
      async (q) => claimPublish(q, s.sessionId, { owner: 'x', leaseMs: 60_000, now: NOW }),
      other,
    );
    assert.equal(claimed, null);
  });

  it('keys keep at most 20 default relays, as a JSON array', async () => {
    const key = await tx<{ id: string }>((q) => seedKeyTx(q));
    const set = await tx((q) => setKeyRelays(q, key.id, RELAYS, NOW));
    assert.deepEqual(set?.relays, RELAYS);
    await assert.rejects(
      tx((q) =>
        setKeyRelays(
          q,
          key.id,
          Array.from({ length: 21 }, (_, i) => `wss://r${i}.example`),
          NOW,
        ),
      ),
      /valid_relays/,
    );
  });
});
