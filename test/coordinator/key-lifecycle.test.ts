/**
 * Share refresh through the API against real signer processes (issue "Key lifecycle"):
 * POST /v1/keys/:id/refresh keeps the group key and signing works after it with the new
 * shares; a refresh interrupted by a signer killed mid-ceremony leaves the key usable with the
 * old shares; a member killed at the commit is left out of signing until the jobs' retried
 * commit reaches it after its restart, and then signs with the new generation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as nip44 from 'nostr-tools/nip44';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { fromHex } from '../../src/crypto/hex.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { libsecpVerify } from '../helpers/independent.js';
import { until } from '../helpers/until.js';

const msg = () => randomBytes(32).toString('hex');

function verifies(session: { signature: string; message: string }, xOnly: string) {
  return libsecpVerify(
    fromHex(session.signature, 'sig', 64),
    fromHex(session.message, 'msg', 32),
    fromHex(xOnly, 'key', 32),
  );
}

describe('share refresh (POST /v1/keys/:id/refresh)', () => {
  let c: TestCluster;
  let key: any;
  // Signer 3 dies in the first refresh's round 3, signer 2 at the second refresh's commit.
  const faults: Record<number, string> = { 1: 'die_at_refresh_commit', 2: 'die_in_refresh_round3' };
  before(async () => {
    c = await startCluster({ signers: 3, faults });
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c.close());

  it('a refresh interrupted by a kill fails and leaves the key signing with the old shares', async () => {
    const r = await c.api('POST', `/v1/keys/${key.id}/refresh`, { wait: 60_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'failed');
    assert.equal(r.body.generation, 1);
    assert.deepEqual(r.body.committed, []);
    assert.match(r.body.error_message, /member 3/);
    const k = (await c.api('GET', `/v1/keys/${key.id}`)).body;
    assert.equal(k.generation, 0, 'nothing was committed');
    assert.equal(k.public_key, key.public_key);
    const s = await c.sign(key.id, msg());
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.deepEqual(s.body.participants, [1, 2]);
    assert.ok(verifies(s.body, key.x_only_public_key), 'the old shares sign');
    const list = (await c.api('GET', `/v1/keys/${key.id}/refreshes`)).body;
    assert.deepEqual(
      list.items.map((x: { id: string }) => x.id),
      [r.body.id],
    );
  });

  it('a refresh keeps the group key; a member killed at the commit catches up and signs', async () => {
    delete faults[2];
    await c.restartSigner(2);
    const r = await c.api('POST', `/v1/keys/${key.id}/refresh`, { wait: 60_000 });
    // Decided (every member certified): members 1 and 3 switched, member 2 died at its commit.
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.status, 'committing');
    assert.deepEqual(r.body.committed, [1, 3]);
    const k = (await c.api('GET', `/v1/keys/${key.id}`)).body;
    assert.equal(k.generation, 1);
    assert.equal(k.public_key, key.public_key, 'same group key');
    assert.equal(k.x_only_public_key, key.x_only_public_key);
    assert.equal(k.npub, key.npub, 'same npub');
    assert.deepEqual(
      k.members.map((m: { generation?: number }) => m.generation ?? 0),
      [1, 0, 1],
    );
    // Signing goes on with the members on the new generation only.
    const s = await c.sign(key.id, msg());
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.deepEqual(s.body.participants, [1, 3]);
    assert.equal(s.body.attempt, 1, 'the member behind is not even asked');
    assert.ok(verifies(s.body, key.x_only_public_key), 'the new shares sign under the same key');

    // Member 2 comes back; the jobs push the commit to it and the refresh completes.
    delete faults[1];
    await c.restartSigner(1);
    const done = await until('the refresh completes', async () => {
      const x = (await c.api('GET', `/v1/keys/${key.id}/refreshes/${r.body.id}`)).body;
      return x.status === 'completed' && x;
    });
    assert.deepEqual(done.committed, [1, 2, 3]);
    // Member 1 away: members 2 and 3 sign with their new shares.
    await c.signers[0]!.kill('SIGKILL');
    const s2 = await c.sign(key.id, msg());
    assert.equal(s2.body.status, 'completed', JSON.stringify(s2.body));
    assert.deepEqual(s2.body.participants, [2, 3]);
    assert.ok(verifies(s2.body, key.x_only_public_key));
    // Threshold ECDH on the new generation too (the request names it; a signer on another one
    // refuses): NIP-44 to a third party, who reads it with its own secret.
    const peerSk = generateSecretKey();
    const enc = await c.api('POST', `/v1/keys/${key.id}/nip44/encrypt`, {
      pubkey: getPublicKey(peerSk),
      plaintext: 'after the refresh',
    });
    assert.equal(enc.status, 200, JSON.stringify(enc.body));
    const ck = nip44.v2.utils.getConversationKey(peerSk, key.x_only_public_key);
    assert.equal(nip44.v2.decrypt(enc.body.ciphertext, ck), 'after the refresh');
  });

  it('refuses a refresh of an unknown key, and reports an unknown refresh', async () => {
    const r = await c.api('POST', '/v1/keys/key_doesnotexist00/refresh', {});
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'key_not_found');
    const g = await c.api('GET', `/v1/keys/${key.id}/refreshes/refresh_nope`);
    assert.equal(g.status, 404);
    assert.equal(g.body.code, 'refresh_not_found');
  });
});

describe('share repair (POST /v1/keys/:id/repair)', () => {
  let c: TestCluster;
  let key: any;
  let ids: string[];
  before(async () => {
    // Four signers on every roster; the key is 2-of-3 over the first three, the fourth is spare.
    c = await startCluster({ signers: 4 });
    ids = await c.registerSigners();
    key = await c.createKey(2, ids.slice(0, 3));
  });
  after(() => c.close());

  it('replaces a lost member by a new signer process, which signs; then a refresh runs on the new set', async () => {
    // Member 3's machine is gone.
    await c.signers[2]!.kill('SIGKILL');
    const r = await c.api('POST', `/v1/keys/${key.id}/repair`, {
      identifier: 3,
      signer: ids[3],
      wait: 60_000,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.deepEqual(r.body.helpers, [1, 2]);
    assert.deepEqual(r.body.committed, [1, 2, 3]);
    assert.equal(r.body.signer_id, ids[3]);
    const k = (await c.api('GET', `/v1/keys/${key.id}`)).body;
    assert.equal(k.public_key, key.public_key, 'same key');
    assert.equal(k.members[2].signer_id, ids[3], 'member 3 is the new signer now');
    // Member 1 away: member 2 and the new member 3 sign.
    await c.signers[0]!.kill('SIGKILL');
    const s = await c.sign(key.id, msg());
    assert.equal(s.body.status, 'completed', JSON.stringify(s.body));
    assert.deepEqual(s.body.participants, [2, 3]);
    assert.ok(verifies(s.body, key.x_only_public_key), 'the repaired share signs');
    // The lost share is worth nothing after a refresh of the new set.
    await c.restartSigner(0);
    const f = await c.api('POST', `/v1/keys/${key.id}/refresh`, { wait: 60_000 });
    assert.equal(f.body.status, 'completed', JSON.stringify(f.body));
    const s2 = await c.sign(key.id, msg());
    assert.equal(s2.body.status, 'completed', JSON.stringify(s2.body));
    assert.ok(verifies(s2.body, key.x_only_public_key));
    const list = (await c.api('GET', `/v1/keys/${key.id}/repairs`)).body;
    assert.deepEqual(
      list.items.map((x: { id: string }) => x.id),
      [r.body.id],
    );
  });

  it('refuses a new signer that is a member already, and an unknown repair', async () => {
    const r = await c.api('POST', `/v1/keys/${key.id}/repair`, { identifier: 1, signer: ids[1] });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'invalid_request');
    const g = await c.api('GET', `/v1/keys/${key.id}/repairs/rep_nope`);
    assert.equal(g.status, 404);
    assert.equal(g.body.code, 'repair_not_found');
  });
});
