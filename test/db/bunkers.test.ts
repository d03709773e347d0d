/**
 * Bunker storage (migration 013, src/db/queries/bunkers.ts) and the sealing of remote-signer
 * keys (src/coordinator/bunkers/seal.ts): tenant isolation, single-use secrets, the leases
 * that let exactly one coordinator run a bunker, and the rules the database enforces itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BunkerSealer } from '../../src/coordinator/bunkers/seal.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/identity.js';
import type { Db, Tx } from '../../src/db/connection.js';
import * as q from '../../src/db/queries/bunkers.js';
import { type TestDb, testDb } from '../helpers/db.js';
import { hex, NOW, seedKeyTx, seedTenant } from './fixtures.js';

const rlsRefused = (e: unknown) =>
  (e as { code?: string }).code === '42501' && /row-level security/.test((e as Error).message);
const checkRefused = (e: unknown) => (e as { code?: string }).code === '23514';

interface Seeded {
  tenant: string;
  keyId: string;
  pubkey: string;
}

/** A tenant with a key and an enabled bunker sealed under `sealKeyId`. */
async function seedBunker(db: Db, sealKeyId: string): Promise<Seeded> {
  const tenant = await seedTenant(db);
  const pubkey = hex(32);
  const keyId = await db.transaction(
    async (tx) => {
      const k = await seedKeyTx(tx);
      assert.ok(
        await q.insertBunker(tx, {
          keyId: k.id,
          remoteSignerPubkey: pubkey,
          sealKeyId,
          sealedNonce: hex(12),
          sealedSecret: hex(48),
          relays: ['ws://127.0.0.1:7777'],
          requireApproval: [],
          createdAt: NOW,
        }),
      );
      return k.id;
    },
    { tenantId: tenant },
  );
  return { tenant, keyId, pubkey };
}

describe('bunker storage', () => {
  let t: TestDb;
  let db: Db;
  let A: Seeded;
  let B: Seeded;
  const sealA = hex(8);
  const as = <T>(s: Seeded, fn: (tx: Tx) => Promise<T>) => db.transaction(fn, { tenantId: s.tenant });

  before(async () => {
    t = await testDb();
    db = t.db;
    A = await seedBunker(db, sealA);
    B = await seedBunker(db, sealA);
    for (const s of [A, B]) {
      await as(s, async (tx) => {
        await q.upsertClient(
          tx,
          s.keyId,
          {
            pubkey: hex(32),
            permissions: [{ method: 'sign_event', kind: 1 }],
            via: 'bunker',
            relays: [],
            name: null,
            url: null,
            image: null,
            connectedAt: NOW,
          },
          NOW,
        );
        await q.insertSecret(tx, s.keyId, {
          secretSha256: hex(32),
          permissions: [],
          label: null,
          createdAt: NOW,
          expiresAt: NOW + 60_000,
        });
        await q.insertApproval(tx, {
          keyId: s.keyId,
          approvalId: hex(16),
          client: hex(32),
          requestId: 'r1',
          method: 'sign_event',
          kind: 1,
          createdAt: NOW,
          expiresAt: NOW + 60_000,
        });
      });
    }
  });
  after(() => t.cleanup());

  it('row-level security: each tenant sees and writes only its own bunker rows', async () => {
    for (const table of ['bunkers', 'bunker_clients', 'bunker_secrets', 'bunker_approvals']) {
      const rows = await as(A, (tx) => tx.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${table}`));
      assert.ok(rows.rows.length >= 1, `${table}: A sees its rows`);
      assert.ok(
        rows.rows.every((r) => r.tenant_id === A.tenant),
        `${table}: only A's rows`,
      );
      const none = await db.transaction((tx) => tx.query(`SELECT 1 FROM ${table}`));
      assert.equal(none.rows.length, 0, `${table}: nothing without a tenant`);
    }
    assert.equal(await as(A, (tx) => q.getBunker(tx, B.keyId)), null);
    assert.equal(await as(A, (tx) => q.deleteClient(tx, B.keyId, hex(32))), false);
    await assert.rejects(
      as(A, (tx) =>
        tx.query(
          `INSERT INTO bunker_clients (tenant_id, key_id, pubkey, permissions, via, connected_at, updated_at)
           VALUES ($1, $2, $3, '[]', 'bunker', 1, 1)`,
          [B.tenant, B.keyId, hex(32)],
        ),
      ),
      rlsRefused,
    );
    // disabling B's bunker from A changes nothing
    assert.equal(await as(A, (tx) => q.disableBunker(tx, B.keyId, NOW)), null);
    assert.equal((await as(B, (tx) => q.getBunker(tx, B.keyId)))!.enabled, true);
  });

  it('a secret is redeemed once: of concurrent redemptions exactly one wins; expired or disabled ones never', async () => {
    const h = hex(32);
    await as(A, (tx) =>
      q.insertSecret(tx, A.keyId, {
        secretSha256: h,
        permissions: [{ method: 'ping' }],
        label: 'x',
        createdAt: NOW,
        expiresAt: Date.now() + 60_000,
      }),
    );
    const tries = await Promise.all(
      Array.from({ length: 6 }, () =>
        as(A, (tx) => q.consumeSecret(tx, A.keyId, { secretSha256: h, now: Date.now(), client: hex(32) })),
      ),
    );
    assert.equal(tries.filter((x) => x !== null).length, 1);
    assert.deepEqual(tries.find((x) => x !== null)!.permissions, [{ method: 'ping' }]);

    const expired = hex(32);
    await as(A, (tx) =>
      q.insertSecret(tx, A.keyId, {
        secretSha256: expired,
        permissions: [],
        label: null,
        createdAt: NOW - 2000,
        expiresAt: NOW - 1000,
      }),
    );
    assert.equal(
      await as(A, (tx) => q.consumeSecret(tx, A.keyId, { secretSha256: expired, now: NOW, client: hex(32) })),
      null,
    );
    // a used secret's redemption never changes, whoever asks
    await assert.rejects(
      as(A, (tx) =>
        tx.query('UPDATE bunker_secrets SET used_by = $2 WHERE secret_sha256 = $1', [h, hex(32)]),
      ),
      checkRefused,
    );
  });

  it('disabling drops unused secrets, keeps clients, and ends the lease', async () => {
    const C = await seedBunker(db, hex(8));
    const h = hex(32);
    await as(C, async (tx) => {
      await q.insertSecret(tx, C.keyId, {
        secretSha256: h,
        permissions: [],
        label: null,
        createdAt: NOW,
        expiresAt: Date.now() + 60_000,
      });
      await q.upsertClient(
        tx,
        C.keyId,
        {
          pubkey: hex(32),
          permissions: [],
          via: 'bunker',
          relays: [],
          name: 'n',
          url: null,
          image: null,
          connectedAt: NOW,
        },
        NOW,
      );
      await q.claimBunker(tx, C.keyId, {
        owner: 'crd_c',
        sealKeyId: (await q.getBunker(tx, C.keyId))!.sealKeyId,
        leaseMs: 60_000,
        now: NOW,
      });
    });
    const d = await as(C, (tx) => q.disableBunker(tx, C.keyId, NOW + 1));
    assert.equal(d!.enabled, false);
    assert.equal(d!.leaseOwner, null);
    assert.equal(
      await as(C, (tx) => q.consumeSecret(tx, C.keyId, { secretSha256: h, now: NOW, client: hex(32) })),
      null,
    );
    assert.equal((await as(C, (tx) => q.listClients(tx, C.keyId))).length, 1);
    // a client of a disabled bunker is nobody the bunker answers
    const pk = (await as(C, (tx) => q.listClients(tx, C.keyId)))[0]!.pubkey;
    assert.equal(await as(C, (tx) => q.getActiveClient(tx, C.keyId, pk)), null);
  });

  it('leases: one owner at a time; renewed by its owner, taken over once it ran out, released at close', async () => {
    const seal = hex(8);
    const X = await seedBunker(db, seal);
    const Y = await seedBunker(db, seal);
    const other = await seedBunker(db, hex(8)); // sealed under another bunker.key: never claimed here
    const lease = 10_000;
    const claim = (owner: string, now: number, skip: string[] = [], limit = 50) =>
      db.transaction((tx) =>
        q.claimBunkers(tx, { owner, sealKeyId: seal, leaseMs: lease, limit, skip, now }),
      );
    const keys = (hs: q.HeldBunker[]) => hs.map((h) => h.keyId).sort();

    assert.deepEqual(keys(await claim('crd_a', NOW, [], 1)), [X.keyId], 'the limit bounds new claims');
    assert.deepEqual(keys(await claim('crd_a', NOW + 1)), [X.keyId, Y.keyId].sort());
    assert.deepEqual(await claim('crd_b', NOW + 2), [], 'held by a: nothing for b');
    assert.deepEqual(keys(await claim('crd_a', NOW + lease - 1)), [X.keyId, Y.keyId].sort(), 'a renews');
    // a stops renewing: after the lease, b takes both over, and a's renewal gets nothing
    const later = NOW + 2 * lease;
    assert.deepEqual(keys(await claim('crd_b', later, [`${Y.tenant}/${Y.keyId}`])), [X.keyId], 'skip');
    assert.deepEqual(keys(await claim('crd_b', later + 1)), [X.keyId, Y.keyId].sort());
    assert.deepEqual(await claim('crd_a', later + 2), []);
    const held = await claim('crd_b', later + 3);
    assert.deepEqual(held.find((h) => h.keyId === X.keyId)!.relays, ['ws://127.0.0.1:7777']);
    assert.equal(
      held.some((h) => h.keyId === other.keyId),
      false,
    );
    // a disabled bunker's lease is not renewed
    await as(X, (tx) => q.disableBunker(tx, X.keyId, later + 4));
    assert.deepEqual(keys(await claim('crd_b', later + 5)), [Y.keyId]);
    // released at close: a claims at once, before the lease would have run out
    assert.equal(await db.transaction((tx) => q.releaseBunkerLeases(tx, 'crd_b')), 1);
    assert.deepEqual(keys(await claim('crd_a', later + 6)), [Y.keyId]);
    // the single-bunker claim of the API obeys the same rules
    assert.equal(
      await as(Y, (tx) =>
        q.claimBunker(tx, Y.keyId, { owner: 'crd_b', sealKeyId: seal, leaseMs: lease, now: later + 7 }),
      ),
      null,
    );
    assert.ok(
      await as(Y, (tx) =>
        q.claimBunker(tx, Y.keyId, { owner: 'crd_a', sealKeyId: seal, leaseMs: lease, now: later + 8 }),
      ),
    );
  });

  it('the remote-signer key and the approvals’ outcomes are immutable', async () => {
    await assert.rejects(
      as(A, (tx) =>
        tx.query('UPDATE bunkers SET remote_signer_pubkey = $2 WHERE key_id = $1', [A.keyId, hex(32)]),
      ),
      checkRefused,
    );
    const id = hex(16);
    await as(A, (tx) =>
      q.insertApproval(tx, {
        keyId: A.keyId,
        approvalId: id,
        client: hex(32),
        requestId: 'r2',
        method: 'nip44_decrypt',
        kind: null,
        createdAt: NOW,
        expiresAt: Date.now() + 60_000,
      }),
    );
    const ok = await as(A, (tx) =>
      q.settleApproval(tx, A.keyId, id, {
        status: 'approved',
        now: Date.now(),
        by: 'tok_x',
        unexpired: true,
      }),
    );
    assert.equal(ok!.status, 'approved');
    assert.equal(
      await as(A, (tx) =>
        q.settleApproval(tx, A.keyId, id, {
          status: 'denied',
          now: Date.now(),
          by: 'tok_y',
          unexpired: true,
        }),
      ),
      null,
      'decided once',
    );
    await assert.rejects(
      as(A, (tx) => tx.query(`UPDATE bunker_approvals SET status = 'denied' WHERE approval_id = $1`, [id])),
      checkRefused,
    );
  });
});

describe('sealing of remote-signer keys (bunker.key)', () => {
  const master = randomBytes(32);
  const sealer = new BunkerSealer(master);
  const secret = generateIdentityKey();
  const id = softwareIdentity(secret);
  const ctx = { tenantId: 't1', keyId: 'key_1', remoteSignerPubkey: id.publicKeyHex };

  it('opens what it sealed, only for the row it was sealed for', () => {
    const s = sealer.seal(secret, ctx);
    assert.equal(s.sealKeyId, sealer.keyId);
    assert.match(s.ciphertext, /^[0-9a-f]{96}$/);
    assert.equal(s.ciphertext.includes(Buffer.from(secret).toString('hex')), false);
    assert.deepEqual(sealer.open(s, ctx), secret);
    // a fresh nonce each time
    assert.notEqual(sealer.seal(secret, ctx).ciphertext, s.ciphertext);
    for (const other of [
      { ...ctx, keyId: 'key_2' },
      { ...ctx, tenantId: 't2' },
    ]) {
      assert.throws(() => sealer.open(s, other), /does not open/);
    }
    const flipped = {
      ...s,
      ciphertext: `${s.ciphertext.slice(0, 10)}${s.ciphertext[10] === '0' ? '1' : '0'}${s.ciphertext.slice(11)}`,
    };
    assert.throws(() => sealer.open(flipped, ctx), /does not open/);
  });

  it('another bunker.key is refused by name (fingerprints, never the key)', () => {
    const s = sealer.seal(secret, ctx);
    const other = new BunkerSealer(randomBytes(32));
    assert.notEqual(other.keyId, sealer.keyId);
    assert.equal(new BunkerSealer(master).keyId, sealer.keyId, 'the fingerprint is stable');
    assert.throws(
      () => other.open(s, ctx),
      (e: Error) =>
        e.message ===
          `bunker of key key_1: sealed under bunker.key ${sealer.keyId}, this coordinator has ${other.keyId}` &&
        !e.message.includes(master.toString('hex')),
    );
  });
});
