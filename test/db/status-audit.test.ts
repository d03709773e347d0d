import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { expireSessions } from '../../src/db/queries/sessions.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { DAY, NOW, seedSession, seedTenant } from './fixtures.js';

describe('status changes are audited by the database', () => {
  let t: TestDb;
  let db: Db;
  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  const trail = (tenantId: string, sessionId: string) =>
    db.transaction(
      async (tx) =>
        (
          await tx.query<{ data: { from: string | null; to: string; attempt: number } }>(
            "SELECT data FROM audit_events WHERE kind = 'status_change' AND subject_type = 'session' AND subject_id = $1 ORDER BY id",
            [sessionId],
          )
        ).rows.map((r) => `${r.data.from ?? '-'}>${r.data.to}`),
      { tenantId },
    );

  it('records every move of a session, in order, in its own tenant', async () => {
    const tenant = await seedTenant(db);
    const s = await seedSession(db, tenant, 'completed');
    assert.deepEqual(await trail(tenant, s.sessionId), [
      '->pending',
      'pending>nonce_collection',
      'nonce_collection>signing',
      'signing>aggregating',
      'aggregating>completed',
    ]);
    const other = await seedTenant(db);
    assert.deepEqual(await trail(other, s.sessionId), [], 'invisible to another tenant');
  });

  it('records expiry made by the cross-tenant job, each row of one statement from its own status', async () => {
    const tenant = await seedTenant(db);
    const s = await seedSession(db, tenant, 'signing', { expiresAt: NOW - DAY });
    const other = await seedTenant(db);
    const p = await seedSession(db, other, 'pending', { expiresAt: NOW - DAY });
    await db.transaction((tx) => expireSessions(tx));
    assert.equal((await trail(tenant, s.sessionId)).at(-1), 'signing>expired');
    assert.deepEqual(await trail(other, p.sessionId), ['->pending', 'pending>expired']);
  });

  it('records nothing for an UPDATE that leaves the status as it was', async () => {
    const tenant = await seedTenant(db);
    const s = await seedSession(db, tenant, 'aggregating');
    const before = await trail(tenant, s.sessionId);
    await db.adminQuery(
      'UPDATE signing_sessions SET culprits = $2::jsonb, updated_at = updated_at + 1 WHERE session_id = $1',
      [s.sessionId, '[3]'],
    );
    await db.adminQuery("UPDATE signing_sessions SET status = 'aggregating' WHERE session_id = $1", [
      s.sessionId,
    ]);
    assert.deepEqual(await trail(tenant, s.sessionId), before);
  });
});
