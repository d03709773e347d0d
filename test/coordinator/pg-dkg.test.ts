/**
 * The DKG paths of the Postgres/PGlite backend: a ceremony's start (key, ceremony, audit event)
 * and its end (key active, ceremony completed, audit event) each in one transaction, all or
 * nothing; a ceremony's move is one conditional update. PGlite by default; the Postgres server
 * with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PgBackend } from '../../src/coordinator/pg-backend.js';
import type { CeremonyRecord, KeyRecord } from '../../src/coordinator/ports.js';
import { dealerSplit } from '../../src/crypto/dealer.js';
import { encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { toHex } from '../../src/crypto/hex.js';
import { groupPublicKey, xOnlyGroupKey } from '../../src/crypto/signing.js';
import { newId } from '../../src/domain/ids.js';
import { hex, NOW, seedTenant } from '../db/fixtures.js';
import { type CountingDb, countingDb } from '../helpers/counting-db.js';
import { type TestDb, testDb } from '../helpers/db.js';

describe('PgBackend DKG paths', () => {
  let t: TestDb;
  let backend: PgBackend;
  let count: CountingDb;
  let tenant: string;

  before(async () => {
    t = await testDb();
    count = countingDb(t.db);
    backend = new PgBackend(count.db);
    tenant = await seedTenant(t.db);
  });
  after(() => t.cleanup());

  const pendingKey = (): KeyRecord => ({
    id: newId('key'),
    tenantId: tenant,
    label: null,
    threshold: 2,
    n: 3,
    groupPublicKey: null,
    xOnlyPublicKey: null,
    publicKeyPackage: null,
    members: [1, 2, 3].map((i) => ({ identifier: i, signer_id: `s${i}`, identity: hex(32) })),
    origin: 'dkg',
    tweak: null,
    status: 'pending',
    createdAt: NOW,
    updatedAt: NOW,
  });
  const ceremonyOf = (k: KeyRecord, id = newId('ceremony')): CeremonyRecord => ({
    id,
    tenantId: tenant,
    keyId: k.id,
    status: 'pending',
    threshold: k.threshold,
    n: k.n,
    participants: k.members,
    transcriptHash: null,
    errorCode: null,
    errorMessage: null,
    culprits: [],
    createdAt: NOW,
    updatedAt: NOW,
    expiresAt: NOW + 600_000,
  });
  /** What a completed DKG sets on its key: a real public key package. */
  const activation = () => {
    const { public: pub } = dealerSplit(randomBytes(32), 2, 3);
    const pkg = encodePublicKeyPackage(pub);
    return {
      status: 'active' as const,
      groupPublicKey: toHex(groupPublicKey(pub)),
      xOnlyPublicKey: toHex(xOnlyGroupKey(pub)),
      publicKeyPackage: pkg,
      tweak: pkg.tweak,
    };
  };
  const auditKinds = async (subjectId: string) =>
    (
      await t.db.transaction(
        (q) =>
          q.query<{ kind: string; data: any }>(
            'SELECT kind, data FROM audit_events WHERE subject_id = $1 ORDER BY id',
            [subjectId],
          ),
        { tenantId: tenant },
      )
    ).rows;

  it("insertDkg writes the key, its ceremony and the start's audit event in one transaction", async () => {
    const k = pendingKey();
    const c = ceremonyOf(k);
    count.take();
    await backend.insertDkg(k, c, { kind: 'key.dkg_started', data: { ceremony: c.id, threshold: 2, n: 3 } });
    assert.equal(count.take().transactions, 1);
    assert.equal((await backend.getKey(tenant, k.id))?.status, 'pending');
    assert.equal((await backend.getCeremony(tenant, c.id))?.keyId, k.id);
    const started = (await auditKinds(k.id)).filter((a) => a.kind === 'key.dkg_started');
    assert.deepEqual(
      started.map((a) => a.data),
      [{ ceremony: c.id, threshold: 2, n: 3 }],
    );
  });

  it('insertDkg is all or nothing: a ceremony that cannot be written leaves no key behind', async () => {
    const first = pendingKey();
    const c = ceremonyOf(first);
    await backend.insertDkg(first, c, { kind: 'key.dkg_started', data: {} });
    const second = pendingKey();
    // The same ceremony id again: the ceremony insert fails, after the key's.
    await assert.rejects(
      backend.insertDkg(second, ceremonyOf(second, c.id), { kind: 'key.dkg_started', data: {} }),
    );
    assert.equal(await backend.getKey(tenant, second.id), undefined);
    assert.deepEqual(await auditKinds(second.id), []);
  });

  it('completeDkg activates the key, completes the ceremony and records it in one transaction', async () => {
    const k = pendingKey();
    const c = ceremonyOf(k);
    await backend.insertDkg(k, c, { kind: 'key.dkg_started', data: {} });
    for (const status of ['round1', 'round2', 'round3', 'certifying'] as const) {
      await backend.updateCeremony(tenant, c.id, { status });
    }
    const transcript = hex(32);
    const activated = activation();
    count.take();
    await backend.completeDkg(
      tenant,
      k.id,
      activated,
      { id: c.id, transcriptHash: transcript },
      { kind: 'key.activated', data: { ceremony: c.id, transcript_hash: transcript } },
    );
    assert.equal(count.take().transactions, 1);
    const key = await backend.getKey(tenant, k.id);
    assert.equal(key?.status, 'active');
    assert.equal(key?.xOnlyPublicKey, activated.xOnlyPublicKey);
    const done = await backend.getCeremony(tenant, c.id);
    assert.equal(done?.status, 'completed');
    assert.equal(done?.transcriptHash, transcript);
    const activatedEvents = (await auditKinds(k.id)).filter((a) => a.kind === 'key.activated');
    assert.deepEqual(
      activatedEvents.map((a) => a.data),
      [{ ceremony: c.id, transcript_hash: transcript }],
    );
  });

  it('completeDkg leaves a ceremony that already failed as it is', async () => {
    const k = pendingKey();
    const c = ceremonyOf(k);
    await backend.insertDkg(k, c, { kind: 'key.dkg_started', data: {} });
    await backend.updateCeremony(tenant, c.id, {
      status: 'failed',
      errorCode: 'ceremony_expired',
      errorMessage: 'expired',
    });
    await backend.completeDkg(
      tenant,
      k.id,
      activation(),
      { id: c.id, transcriptHash: hex(32) },
      {
        kind: 'key.activated',
        data: {},
      },
    );
    const after = await backend.getCeremony(tenant, c.id);
    assert.equal(after?.status, 'failed');
    assert.equal(after?.transcriptHash, null);
  });

  it('a ceremony move is one conditional update; a patch without a status keeps the status', async () => {
    const k = pendingKey();
    const c = ceremonyOf(k);
    await backend.insertDkg(k, c, { kind: 'key.dkg_started', data: {} });
    count.take();
    await backend.updateCeremony(tenant, c.id, { status: 'round1' });
    assert.deepEqual(count.take(), { transactions: 1, statements: 1 });
    assert.equal((await backend.getCeremony(tenant, c.id))?.status, 'round1');
    // An illegal move (round1 → certifying) changes nothing.
    await backend.updateCeremony(tenant, c.id, { status: 'certifying' });
    assert.equal((await backend.getCeremony(tenant, c.id))?.status, 'round1');
    await backend.updateCeremony(tenant, c.id, { culprits: [2] });
    const kept = await backend.getCeremony(tenant, c.id);
    assert.equal(kept?.status, 'round1');
    assert.deepEqual(kept?.culprits, [2]);
    // A ceremony that does not exist: nothing happens, nothing fails.
    await backend.updateCeremony(tenant, newId('ceremony'), { status: 'round2' });
  });
});
