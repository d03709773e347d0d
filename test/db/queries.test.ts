import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { appendAudit, listAudit } from '../../src/db/queries/audit.js';
import {
  expireCeremonies,
  getCeremony,
  getCeremonyForKey,
  insertCeremony,
  transitionCeremony,
} from '../../src/db/queries/ceremonies.js';
import { getKey, insertKey, listKeys, updateKey } from '../../src/db/queries/keys.js';
import {
  clearQuarantine,
  getSigner,
  getSignerByIdentity,
  insertSigner,
  listSigners,
  recordSignerFault,
  recordSignerSeen,
  updateSigner,
} from '../../src/db/queries/signers.js';
import {
  findApiTokenByHash,
  findRefreshTokenByHash,
  getApiToken,
  insertApiToken,
  insertRefreshToken,
  listApiTokens,
  revokeApiToken,
  revokeRefreshFamily,
  sha256Hex,
  touchApiToken,
  useRefreshToken,
} from '../../src/db/queries/tokens.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { DAY, hex, NOW, seedKeyTx, seedTenant, uniq } from './fixtures.js';

const floe = (code: string) => (e: unknown) => isFloeError(e) && e.code === code;
const pub33 = () => `02${hex(32)}`;

describe('query modules', () => {
  let t: TestDb;
  let db: Db;
  let tenant: string;

  before(async () => {
    t = await testDb();
    db = t.db;
    tenant = await seedTenant(db);
  });
  after(() => t.cleanup());

  it('tokens: insert, lookup by hash without a tenant, touch, revoke, list', async () => {
    const secret = `floe_${hex(8)}_${hex(20)}`;
    const row = await db.transaction(
      (tx) =>
        insertApiToken(tx, {
          id: uniq('tok'),
          tokenSha256: sha256Hex(secret),
          role: 'operator',
          label: 'ci',
          createdAt: NOW,
          expiresAt: NOW + DAY,
        }),
      { tenantId: tenant },
    );
    assert.equal(row.tenantId, tenant);
    assert.equal(row.tokenSha256, sha256Hex(secret));
    const found = await db.transaction((tx) => findApiTokenByHash(tx, sha256Hex(secret)));
    assert.deepEqual(found, row);
    await db.transaction((tx) => touchApiToken(tx, row.id, NOW + 5), { tenantId: tenant });
    await db.transaction((tx) => touchApiToken(tx, row.id, NOW + 1), { tenantId: tenant });
    assert.equal(
      (await db.transaction((tx) => getApiToken(tx, row.id), { tenantId: tenant }))?.lastUsedAt,
      NOW + 5,
    );
    assert.equal(
      await db.transaction((tx) => revokeApiToken(tx, row.id, NOW + 9), { tenantId: tenant }),
      true,
    );
    assert.equal(
      await db.transaction((tx) => revokeApiToken(tx, row.id, NOW + 10), { tenantId: tenant }),
      false,
    );
    const listed = await db.transaction((tx) => listApiTokens(tx), { tenantId: tenant });
    assert.ok(listed.some((x) => x.id === row.id && x.revokedAt === NOW + 9));
    // hashes are unique; roles are checked
    await assert.rejects(
      db.transaction(
        (tx) =>
          insertApiToken(tx, {
            id: uniq('tok'),
            tokenSha256: sha256Hex(secret),
            role: 'viewer',
            createdAt: NOW,
          }),
        { tenantId: tenant },
      ),
      (e) => (e as { code?: string }).code === '23505',
    );
    await assert.rejects(
      db.transaction(
        (tx) =>
          insertApiToken(tx, {
            id: uniq('tok'),
            tokenSha256: sha256Hex('x'),
            role: 'root' as never,
            createdAt: NOW,
          }),
        { tenantId: tenant },
      ),
      (e) => (e as { code?: string }).code === '23514',
    );
  });

  it('refresh tokens: single use, and reuse revokes the family (the revocation commits)', async () => {
    const tok = await db.transaction(
      (tx) =>
        insertApiToken(tx, {
          id: uniq('tok'),
          tokenSha256: sha256Hex(hex(16)),
          role: 'admin',
          createdAt: NOW,
        }),
      { tenantId: tenant },
    );
    const family = uniq('fam');
    const s1 = hex(32);
    const r1 = await db.transaction(
      (tx) =>
        insertRefreshToken(tx, {
          id: uniq('rt'),
          tokenId: tok.id,
          familyId: family,
          tokenSha256: sha256Hex(s1),
          createdAt: NOW,
          expiresAt: NOW + DAY,
        }),
      { tenantId: tenant },
    );
    const found = await db.transaction((tx) => findRefreshTokenByHash(tx, sha256Hex(s1)));
    assert.deepEqual(found, r1);
    // rotation
    const r2 = await db.transaction(
      async (tx) => {
        assert.equal(await useRefreshToken(tx, r1.id, NOW + 1), true);
        return insertRefreshToken(tx, {
          id: uniq('rt'),
          tokenId: tok.id,
          familyId: family,
          tokenSha256: sha256Hex(hex(32)),
          createdAt: NOW + 1,
          expiresAt: NOW + DAY,
        });
      },
      { tenantId: tenant },
    );
    // replay of r1: refused, family revoked
    const revoked = await db.transaction(
      async (tx) => {
        assert.equal(await useRefreshToken(tx, r1.id, NOW + 2), false);
        return revokeRefreshFamily(tx, family, NOW + 2);
      },
      { tenantId: tenant },
    );
    assert.equal(revoked, 2, 'both tokens of the family');
    assert.equal(
      await db.transaction((tx) => useRefreshToken(tx, r2.id, NOW + 3), { tenantId: tenant }),
      false,
    );
    // expired tokens cannot be used
    const r3 = await db.transaction(
      (tx) =>
        insertRefreshToken(tx, {
          id: uniq('rt'),
          tokenId: tok.id,
          familyId: uniq('fam'),
          tokenSha256: sha256Hex(hex(32)),
          createdAt: NOW,
          expiresAt: NOW + 10,
        }),
      { tenantId: tenant },
    );
    assert.equal(
      await db.transaction((tx) => useRefreshToken(tx, r3.id, NOW + 10), { tenantId: tenant }),
      false,
    );
  });

  it('signers: registry, unique identity, health, faults and quarantine', async () => {
    const id = uniq('sig');
    const identity = hex(32);
    const s = await db.transaction((tx) =>
      insertSigner(tx, {
        id,
        name: 'one',
        url: 'http://127.0.0.1:7101',
        identityPubkey: identity,
        createdAt: NOW,
      }),
    );
    assert.equal(s.status, 'active');
    assert.equal(s.faultCount, 0);
    await assert.rejects(
      db.transaction((tx) =>
        insertSigner(tx, { id: uniq('sig'), url: 'http://x', identityPubkey: identity, createdAt: NOW }),
      ),
      floe('conflict'),
    );
    // signers are global: visible with or without a tenant
    assert.equal((await db.transaction((tx) => getSigner(tx, id), { tenantId: tenant }))?.id, id);
    assert.equal((await db.transaction((tx) => getSignerByIdentity(tx, identity)))?.id, id);
    await db.transaction((tx) => recordSignerSeen(tx, id, NOW + 1, 12.4));
    const seen = await db.transaction((tx) => getSigner(tx, id));
    assert.equal(seen?.lastSeenAt, NOW + 1);
    assert.equal(seen?.lastLatencyMs, 12);
    assert.deepEqual(await db.transaction((tx) => recordSignerFault(tx, id, 3, NOW + 2)), {
      faultCount: 1,
      quarantined: false,
    });
    assert.deepEqual(await db.transaction((tx) => recordSignerFault(tx, id, 3, NOW + 3)), {
      faultCount: 2,
      quarantined: false,
    });
    assert.deepEqual(await db.transaction((tx) => recordSignerFault(tx, id, 3, NOW + 4)), {
      faultCount: 3,
      quarantined: true,
    });
    assert.deepEqual(await db.transaction((tx) => recordSignerFault(tx, id, 3, NOW + 5)), {
      faultCount: 4,
      quarantined: true,
    });
    assert.equal((await db.transaction((tx) => getSigner(tx, id)))?.quarantinedAt, NOW + 4, 'stamped once');
    const cleared = await db.transaction((tx) => clearQuarantine(tx, id, NOW + 6));
    assert.equal(cleared?.quarantined, false);
    assert.equal(cleared?.faultCount, 0);
    await db.transaction((tx) => updateSigner(tx, id, { quarantineOverride: true }, NOW + 7));
    for (let i = 0; i < 5; i++) await db.transaction((tx) => recordSignerFault(tx, id, 3, NOW + 8));
    assert.equal(
      (await db.transaction((tx) => getSigner(tx, id)))?.quarantined,
      false,
      'override keeps it in service',
    );
    assert.equal(await db.transaction((tx) => recordSignerFault(tx, 'nobody', 3, NOW)), null);
    await db.transaction((tx) => updateSigner(tx, id, { status: 'disabled' }, NOW + 9));
    const active = await db.transaction((tx) => listSigners(tx, { status: 'active' }));
    assert.ok(!active.some((x) => x.id === id));
    assert.ok((await db.transaction((tx) => listSigners(tx))).some((x) => x.id === id));
  });

  it('keys: pending → active with its public data, status moves checked, one active key per public key', async () => {
    const key = await db.transaction((tx) => seedKeyTx(tx), { tenantId: tenant });
    assert.equal(key.status, 'pending');
    assert.equal(key.members.length, 3);
    const gpk = pub33();
    const activate = (id: string) =>
      db.transaction(
        (tx) =>
          updateKey(
            tx,
            id,
            {
              status: 'active',
              groupPublicKey: gpk,
              xOnlyPublicKey: gpk.slice(2),
              publicKeyPackage: { v: 1 },
            },
            { at: NOW + 1, from: ['pending'] },
          ),
        { tenantId: tenant },
      );
    // activation without the public data is refused by valid_active_key
    await assert.rejects(
      db.transaction((tx) => updateKey(tx, key.id, { status: 'active' }, { at: NOW, from: ['pending'] }), {
        tenantId: tenant,
      }),
      (e) => (e as { constraint?: string }).constraint === 'valid_active_key',
    );
    const active = await activate(key.id);
    assert.equal(active?.status, 'active');
    assert.deepEqual(active?.publicKeyPackage, { v: 1 });
    assert.equal(await activate(key.id), null, 'conditional: no longer pending');
    await assert.rejects(
      db.transaction((tx) => updateKey(tx, key.id, { status: 'pending' }, { at: NOW }), { tenantId: tenant }),
      /illegal status transition/,
    );
    await assert.rejects(
      db.transaction((tx) => updateKey(tx, key.id, { groupPublicKey: pub33() }, { at: NOW }), {
        tenantId: tenant,
      }),
      /immutable/,
    );
    const twin = await db.transaction((tx) => seedKeyTx(tx), { tenantId: tenant });
    await assert.rejects(activate(twin.id), floe('key_exists'));
    await assert.rejects(
      db.transaction(
        (tx) => insertKey(tx, { id: key.id, threshold: 1, n: 1, origin: 'dealer', createdAt: NOW }),
        {
          tenantId: tenant,
        },
      ),
      floe('key_exists'),
    );
    await assert.rejects(
      db.transaction(
        (tx) => insertKey(tx, { id: uniq('k'), threshold: 3, n: 2, origin: 'dealer', createdAt: NOW }),
        {
          tenantId: tenant,
        },
      ),
      (e) => (e as { constraint?: string }).constraint === 'valid_threshold',
    );
    const disabled = await db.transaction(
      (tx) => updateKey(tx, key.id, { status: 'disabled' }, { at: NOW + 2, from: ['active'] }),
      { tenantId: tenant },
    );
    assert.equal(disabled?.status, 'disabled');
    assert.equal(
      (await db.transaction((tx) => getKey(tx, key.id), { tenantId: tenant }))?.status,
      'disabled',
    );
  });

  it('keys: keyset pagination', async () => {
    const tid = await seedTenant(db);
    await db.transaction(
      async (tx) => {
        for (let i = 0; i < 5; i++)
          await insertKey(tx, { id: `k${i}`, threshold: 1, n: 1, origin: 'dealer', createdAt: NOW + i });
      },
      { tenantId: tid },
    );
    const p1 = await db.transaction((tx) => listKeys(tx, { limit: 2 }), { tenantId: tid });
    const p2 = await db.transaction((tx) => listKeys(tx, { limit: 2, cursor: p1.nextCursor }), {
      tenantId: tid,
    });
    const p3 = await db.transaction((tx) => listKeys(tx, { limit: 2, cursor: p2.nextCursor }), {
      tenantId: tid,
    });
    assert.deepEqual(
      [...p1.items, ...p2.items, ...p3.items].map((k) => k.id),
      ['k4', 'k3', 'k2', 'k1', 'k0'],
    );
    assert.equal(p3.nextCursor, null);
  });

  it('ceremonies: rounds in order, failure from any live status, expiry fails the key', async () => {
    const c = await db.transaction(
      async (tx) => {
        const key = await seedKeyTx(tx);
        return insertCeremony(tx, {
          id: uniq('cer'),
          keyId: key.id,
          threshold: 2,
          n: 3,
          participants: key.members,
          createdAt: NOW,
          expiresAt: NOW + DAY,
        });
      },
      { tenantId: tenant },
    );
    assert.equal(c.status, 'pending');
    await db.transaction(
      async (tx) => {
        assert.equal(await transitionCeremony(tx, c.id, ['pending'], 'round2'), null, 'no skipping');
        assert.equal(
          (await transitionCeremony(tx, c.id, ['pending'], 'round1', { round1: { a: 1 } }))?.status,
          'round1',
        );
        assert.equal((await transitionCeremony(tx, c.id, ['round1'], 'round2'))?.status, 'round2');
        assert.equal((await transitionCeremony(tx, c.id, ['round2'], 'round3'))?.status, 'round3');
        assert.equal((await transitionCeremony(tx, c.id, ['round3'], 'certifying'))?.status, 'certifying');
        await tx.query('SAVEPOINT s');
        await assert.rejects(
          transitionCeremony(tx, c.id, ['certifying'], 'completed'),
          (e) => (e as { constraint?: string }).constraint === 'valid_completion',
        );
        await tx.query('ROLLBACK TO SAVEPOINT s');
        const done = await transitionCeremony(
          tx,
          c.id,
          ['certifying'],
          'completed',
          { transcriptHash: hex(32) },
          { now: NOW + 5 },
        );
        assert.equal(done?.completedAt, NOW + 5);
        assert.equal(
          await transitionCeremony(tx, c.id, ['completed'], 'failed', { errorMessage: 'x' }),
          null,
        );
        assert.equal((await getCeremonyForKey(tx, c.keyId))?.id, c.id);
      },
      { tenantId: tenant },
    );
    // expiry: a past-due ceremony fails, and its pending key with it
    const stale = await db.transaction(
      async (tx) => {
        const key = await seedKeyTx(tx);
        return insertCeremony(tx, {
          id: uniq('cer'),
          keyId: key.id,
          threshold: 2,
          n: 3,
          participants: [],
          createdAt: NOW - DAY,
          expiresAt: NOW - 1,
        });
      },
      { tenantId: tenant },
    );
    assert.ok((await db.transaction((tx) => expireCeremonies(tx))) >= 1);
    await db.transaction(
      async (tx) => {
        const after = await getCeremony(tx, stale.id);
        assert.equal(after?.status, 'failed');
        assert.equal(after?.errorCode, 'dkg_failed');
        assert.equal((await getKey(tx, stale.keyId))?.status, 'failed');
        assert.equal((await getCeremony(tx, c.id))?.status, 'completed');
      },
      { tenantId: tenant },
    );
  });

  it('audit: append with the transaction’s tenant, list newest first', async () => {
    const tid = await seedTenant(db);
    await db.transaction(
      async (tx) => {
        for (let i = 0; i < 3; i++) {
          await appendAudit(tx, {
            actor: 'tok1',
            kind: `k${i}`,
            subjectType: 'key',
            subjectId: 'kx',
            data: { i },
            at: NOW + i,
          });
        }
        await appendAudit(tx, { actor: 'tok1', kind: 'other' });
      },
      { tenantId: tid },
    );
    const all = await db.transaction((tx) => listAudit(tx), { tenantId: tid });
    assert.deepEqual(
      all.map((e) => e.kind),
      ['other', 'k2', 'k1', 'k0'],
    );
    assert.ok(all.every((e) => e.tenantId === tid));
    const forKey = await db.transaction(
      (tx) => listAudit(tx, { subjectType: 'key', subjectId: 'kx', limit: 2 }),
      {
        tenantId: tid,
      },
    );
    assert.deepEqual(
      forKey.map((e) => e.data),
      [{ i: 2 }, { i: 1 }],
    );
    const next = await db.transaction((tx) => listAudit(tx, { subjectId: 'kx', beforeId: forKey[1]!.id }), {
      tenantId: tid,
    });
    assert.deepEqual(
      next.map((e) => e.kind),
      ['k0'],
    );
    // without a tenant there is nobody to attribute the event to
    await assert.rejects(db.transaction((tx) => appendAudit(tx, { actor: 'x', kind: 'y' })));
  });
});
