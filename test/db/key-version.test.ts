/**
 * A session's insert that names the version of its key's row (src/domain/key-version.ts): written
 * while the row is that version, refused with nothing written once any change to the row
 * committed, whatever the change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { getKeyVersioned, updateKey } from '../../src/db/queries/keys.js';
import { insertSession, insertSessions } from '../../src/db/queries/sessions.js';
import { KeyChanged } from '../../src/domain/key-version.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { DAY, hex, intentFields, NOW, seedKeyTx, seedTenant } from './fixtures.js';

describe('a session insert naming its key version', () => {
  let t: TestDb;
  let db: Db;
  let tenant: string;
  const inTenant = <T>(fn: Parameters<Db['transaction']>[0]) =>
    db.transaction(fn, { tenantId: tenant }) as Promise<T>;
  const read = async (keyId: string) => (await inTenant<any>((tx) => getKeyVersioned(tx, keyId)))!;
  const newSession = (keyId: string, keyVersion: string, more: object = {}) => ({
    sessionId: `ses_${hex(12)}`,
    keyId,
    ...intentFields(),
    threshold: 2,
    createdAt: NOW,
    expiresAt: NOW + DAY,
    keyVersion,
    ...more,
  });
  const count = async (sql: string, params: unknown[]) =>
    Number((await inTenant<any>((tx) => tx.query(sql, params))).rows[0].n);
  const sessionsOf = (keyId: string) =>
    count('SELECT count(*) AS n FROM signing_sessions WHERE key_id = $1', [keyId]);
  const auditRows = () => count('SELECT count(*) AS n FROM audit_events', []);

  before(async () => {
    t = await testDb();
    db = t.db;
    tenant = await seedTenant(db);
  });
  after(() => t.cleanup());

  it('reads the key with a version that a read leaves alone and every committed change moves', async () => {
    const key = await inTenant<any>((tx) => seedKeyTx(tx));
    const first = await read(key.id);
    assert.equal(first.key.id, key.id);
    assert.equal(first.key.threshold, 2);
    assert.equal('floeRowVersion' in first.key, false, 'the version is not part of the record');
    assert.match(first.version, /^\d+$/);
    assert.equal((await read(key.id)).version, first.version);
    // A change that leaves every column the coordinator looks at as it was still moves it.
    await inTenant((tx) => updateKey(tx, key.id, { label: 'renamed' }, { at: NOW + 1 }));
    const second = await read(key.id);
    assert.notEqual(second.version, first.version);
    await inTenant((tx) => updateKey(tx, key.id, { status: 'failed' }, { at: NOW + 1 }));
    assert.notEqual((await read(key.id)).version, second.version);
    assert.equal(await inTenant((tx) => getKeyVersioned(tx, 'no-such-key')), null);
  });

  it('writes the session while the row is that version, and nothing after a change', async () => {
    const key = await inTenant<any>((tx) => seedKeyTx(tx));
    const { version } = await read(key.id);
    const ok = await inTenant<any>((tx) => insertSession(tx, newSession(key.id, version)));
    assert.equal(ok.created, true);
    assert.equal(ok.session.keyId, key.id);
    await inTenant((tx) => updateKey(tx, key.id, { status: 'failed' }, { at: NOW + 1 }));
    const audits = await auditRows();
    await assert.rejects(
      inTenant((tx) => insertSession(tx, newSession(key.id, version))),
      (e) => e instanceof KeyChanged && e.keyId === key.id,
    );
    assert.equal(await sessionsOf(key.id), 1, 'no session written');
    assert.equal(await auditRows(), audits, 'no audit row written');
    // The new version is accepted; no version at all is today's unconditional insert.
    const now = (await read(key.id)).version;
    assert.equal((await inTenant<any>((tx) => insertSession(tx, newSession(key.id, now)))).created, true);
    const { keyVersion: _, ...plain } = newSession(key.id, now);
    assert.equal((await inTenant<any>((tx) => insertSession(tx, plain))).created, true);
    assert.equal(await sessionsOf(key.id), 3);
  });

  it('an idempotent replay after the change returns the session it made; a new request does not pass', async () => {
    const key = await inTenant<any>((tx) => seedKeyTx(tx));
    const { version } = await read(key.id);
    const idem = { idempotencyKey: `idem-${hex(4)}`, idempotencyFingerprint: 'f1' };
    const a = await inTenant<any>((tx) => insertSession(tx, newSession(key.id, version, idem)));
    await inTenant((tx) => updateKey(tx, key.id, { label: 'x' }, { at: NOW + 1 }));
    const b = await inTenant<any>((tx) => insertSession(tx, newSession(key.id, version, idem)));
    assert.deepEqual([b.created, b.session.sessionId], [false, a.session.sessionId]);
    const other = { idempotencyKey: `idem-${hex(4)}`, idempotencyFingerprint: 'f1' };
    await assert.rejects(
      inTenant((tx) => insertSession(tx, newSession(key.id, version, other))),
      (e) => e instanceof KeyChanged,
    );
  });

  it('a batch is written whole while the row is that version, and not at all after a change', async () => {
    const key = await inTenant<any>((tx) => seedKeyTx(tx));
    const { version } = await read(key.id);
    const batch = () => [0, 1, 2].map(() => newSession(key.id, version));
    const rows = await inTenant<any[]>((tx) => insertSessions(tx, batch()));
    assert.equal(rows.length, 3);
    assert.ok(rows.every((r) => r.keyId === key.id));
    await inTenant((tx) => updateKey(tx, key.id, { label: 'y' }, { at: NOW + 1 }));
    const audits = await auditRows();
    await assert.rejects(
      inTenant((tx) => insertSessions(tx, batch())),
      (e) => e instanceof KeyChanged,
    );
    assert.equal(await sessionsOf(key.id), 3);
    assert.equal(await auditRows(), audits);
    // One version of one key per batch.
    const mixed = [newSession(key.id, version), newSession(key.id, `${version}0`)];
    await assert.rejects(
      inTenant((tx) => insertSessions(tx, mixed)),
      /one key version/,
    );
  });
});
