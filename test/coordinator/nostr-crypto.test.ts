/**
 * NIP-44 and NIP-04 through threshold ECDH (POST /v1/keys/:id/nip44|nip04/encrypt|decrypt)
 * against real signer processes, checked with nostr-tools on the third party's side: what a
 * third party encrypts to the key's npub decrypts through the API, and what the API encrypts
 * decrypts with the third party's own secret — for a DKG key (Taproot-tweaked) and an imported
 * nsec; with one signer killed; with a byzantine signer that is excluded, blamed and does not
 * change the answer. Refusals that need no key ask no signer and change nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as ntNip04 from 'nostr-tools/nip04';
import * as ntNip44 from 'nostr-tools/nip44';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { prepareDealerImport } from '../../src/client/dealer-import.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';

/** floe_signer_requests_total for ecdh.share (ok) on one signer, from its /metrics. */
async function ecdhRequests(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(/floe_signer_requests_total\{type="ecdh\.share",outcome="ok"\} (\d+)/);
  return m ? Number(m[1]) : 0;
}

/** Every audit event of the coordinator (all tenants, all subjects). */
async function auditCount(c: TestCluster): Promise<number> {
  const db = (c.coordinator!.backend as PgBackend).db;
  return (await db.adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows[0]!.n;
}

async function auditRows(c: TestCluster, keyId: string): Promise<{ kind: string; data: any }[]> {
  const db = (c.coordinator!.backend as PgBackend).db;
  return (
    await db.adminQuery<{ kind: string; data: any }>(
      'SELECT kind, data FROM audit_events WHERE subject_id = $1 ORDER BY id',
      [keyId],
    )
  ).rows;
}

/** A third party: a Nostr keypair of its own (nostr-tools). */
function thirdParty() {
  const sk = generateSecretKey();
  return { sk, pk: getPublicKey(sk) };
}

const TEXTS = ['hello threshold', 'ünïcödé ✓ 🔐 — 日本語', 'x'.repeat(5000)];

describe('NIP-44 / NIP-04 through threshold ECDH', () => {
  let c: TestCluster;
  let key: any;
  const crypt = (keyId: string, path: string, body: unknown) =>
    c.api('POST', `/v1/keys/${keyId}/${path}`, body);

  before(async () => {
    c = await startCluster({ signers: 3 });
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c?.close());

  /** Both directions of both schemes between `keyX` (the key's x-only pubkey) and a third party. */
  async function roundTrips(keyId: string, keyX: string) {
    const peer = thirdParty();
    const ck = ntNip44.v2.utils.getConversationKey(peer.sk, keyX);
    for (const text of TEXTS) {
      // The third party writes to the key; the key reads it.
      const dec = await crypt(keyId, 'nip44/decrypt', {
        pubkey: peer.pk,
        ciphertext: ntNip44.v2.encrypt(text, ck),
      });
      assert.equal(dec.status, 200, JSON.stringify(dec.body));
      assert.equal(dec.body.plaintext, text);
      // The key writes to the third party; the third party reads it with its own secret.
      const enc = await crypt(keyId, 'nip44/encrypt', { pubkey: peer.pk, plaintext: text });
      assert.equal(enc.status, 200, JSON.stringify(enc.body));
      assert.equal(ntNip44.v2.decrypt(enc.body.ciphertext, ck), text);

      const dec04 = await crypt(keyId, 'nip04/decrypt', {
        pubkey: peer.pk,
        ciphertext: ntNip04.encrypt(peer.sk, keyX, text),
      });
      assert.equal(dec04.status, 200, JSON.stringify(dec04.body));
      assert.equal(dec04.body.plaintext, text);
      const enc04 = await crypt(keyId, 'nip04/encrypt', { pubkey: peer.pk, plaintext: text });
      assert.equal(enc04.status, 200, JSON.stringify(enc04.body));
      assert.equal(ntNip04.decrypt(peer.sk, keyX, enc04.body.ciphertext), text);
    }
  }

  it('a DKG key (Taproot-tweaked): a third party and the API read each other, both schemes', async () => {
    assert.equal(key.tweak?.kind, 'taproot');
    await roundTrips(key.id, key.x_only_public_key);
  });

  it('an imported nsec: the same conversation as nostr-tools has with the nsec itself', async () => {
    const nsec = generateSecretKey();
    const members = key.members.map((m: any) => ({ id: m.signer_id, identity: m.identity }));
    const prepared = prepareDealerImport({
      secret: Uint8Array.from(nsec),
      threshold: 2,
      signers: members,
      keyId: `key_nsec${randomBytes(6).toString('hex')}`,
    });
    const r = await c.api('POST', '/v1/keys/import', prepared.body);
    assert.equal(r.body.status, 'active', JSON.stringify(r.body));
    assert.equal(r.body.x_only_public_key, getPublicKey(nsec));
    await roundTrips(r.body.id, r.body.x_only_public_key);
    // The API's NIP-44 payload decrypts with the conversation key of the nsec itself.
    const peer = thirdParty();
    const enc = await crypt(r.body.id, 'nip44/encrypt', { pubkey: peer.pk, plaintext: 'same key' });
    assert.equal(
      ntNip44.v2.decrypt(enc.body.ciphertext, ntNip44.v2.utils.getConversationKey(nsec, peer.pk)),
      'same key',
    );
    // Note to self (peer = the key's own pubkey) works too.
    const self = await crypt(r.body.id, 'nip44/encrypt', { pubkey: getPublicKey(nsec), plaintext: 'to me' });
    const ckSelf = ntNip44.v2.utils.getConversationKey(nsec, getPublicKey(nsec));
    assert.equal(ntNip44.v2.decrypt(self.body.ciphertext, ckSelf), 'to me');
  });

  it('the largest NIP-44 plaintext (65535 bytes) goes through; one byte more is payload_too_large', async () => {
    const peer = thirdParty();
    const ck = ntNip44.v2.utils.getConversationKey(peer.sk, key.x_only_public_key);
    const max = 'a'.repeat(65_535);
    const enc = await crypt(key.id, 'nip44/encrypt', { pubkey: peer.pk, plaintext: max });
    assert.equal(enc.status, 200);
    assert.equal(ntNip44.v2.decrypt(enc.body.ciphertext, ck), max);
    const over = await crypt(key.id, 'nip44/encrypt', { pubkey: peer.pk, plaintext: `${max}b` });
    assert.equal(over.status, 413);
    assert.equal(over.body.code, 'payload_too_large');
  });

  it('each use is audited with the key and the peer, never the plaintext or the conversation key', async () => {
    const peer = thirdParty();
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const before = (await auditRows(c, key.id)).length;
    const enc = await crypt(key.id, 'nip44/encrypt', { pubkey: peer.pk, plaintext: secret });
    assert.equal(enc.status, 200);
    const rows = (await auditRows(c, key.id)).slice(before);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.kind, 'key.ecdh');
    assert.equal(rows[0]!.data.peer, peer.pk);
    assert.equal(rows[0]!.data.purpose, 'nip44');
    assert.equal(rows[0]!.data.operation, 'nip44_encrypt');
    assert.match(rows[0]!.data.request_id, /^ecd_[0-9a-f]{32}$/);
    assert.equal(rows[0]!.data.participants.length, 2);
    const text = JSON.stringify(rows);
    const ck = Buffer.from(ntNip44.v2.utils.getConversationKey(peer.sk, key.x_only_public_key)).toString(
      'hex',
    );
    const sharedX = Buffer.from(
      secp256k1.getSharedSecret(peer.sk, Buffer.from(`02${key.x_only_public_key}`, 'hex')).subarray(1),
    ).toString('hex');
    assert.ok(!text.includes(secret), 'no plaintext');
    assert.ok(!text.includes(ck), 'no conversation key');
    assert.ok(!text.includes(sharedX), 'no shared x');
  });

  it('refusals that need no key (bad pubkey, sizes, malformed payloads) ask no signer and change nothing', async () => {
    const peer = thirdParty();
    const good = ntNip44.v2.encrypt(
      'hi',
      ntNip44.v2.utils.getConversationKey(peer.sk, key.x_only_public_key),
    );
    const offCurve = `${'00'.repeat(31)}05`;
    const cases: [string, string, unknown, number, string][] = [
      ['not hex', 'nip44/encrypt', { pubkey: 'zz'.repeat(32), plaintext: 'x' }, 400, 'invalid_pubkey'],
      [
        'upper-case hex',
        'nip44/encrypt',
        { pubkey: peer.pk.toUpperCase(), plaintext: 'x' },
        400,
        'invalid_pubkey',
      ],
      ['31 bytes', 'nip04/encrypt', { pubkey: peer.pk.slice(2), plaintext: 'x' }, 400, 'invalid_pubkey'],
      [
        'a compressed key',
        'nip44/decrypt',
        { pubkey: `02${peer.pk}`, ciphertext: good },
        400,
        'invalid_pubkey',
      ],
      ['off the curve', 'nip44/encrypt', { pubkey: offCurve, plaintext: 'x' }, 400, 'invalid_pubkey'],
      [
        'x ≥ p',
        'nip04/decrypt',
        { pubkey: 'ff'.repeat(32), ciphertext: 'AAAA?iv=AAAA' },
        400,
        'invalid_pubkey',
      ],
      ['empty NIP-44 plaintext', 'nip44/encrypt', { pubkey: peer.pk, plaintext: '' }, 400, 'invalid_request'],
      ['lone surrogate', 'nip44/encrypt', { pubkey: peer.pk, plaintext: 'a\ud800b' }, 400, 'invalid_request'],
      [
        'NIP-04 over 128 KiB',
        'nip04/encrypt',
        { pubkey: peer.pk, plaintext: 'é'.repeat(65_537) },
        413,
        'payload_too_large',
      ],
      [
        'NIP-44 not base64',
        'nip44/decrypt',
        { pubkey: peer.pk, ciphertext: '!'.repeat(200) },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-44 short',
        'nip44/decrypt',
        { pubkey: peer.pk, ciphertext: good.slice(0, 100) },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-44 version #',
        'nip44/decrypt',
        { pubkey: peer.pk, ciphertext: `#${good.slice(1)}` },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-44 version 1',
        'nip44/decrypt',
        {
          pubkey: peer.pk,
          ciphertext: Buffer.from([1, ...Buffer.from(good, 'base64').subarray(1)]).toString('base64'),
        },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-04 no iv',
        'nip04/decrypt',
        { pubkey: peer.pk, ciphertext: 'AAAAAAAAAAAAAAAAAAAAAA==' },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-04 short iv',
        'nip04/decrypt',
        { pubkey: peer.pk, ciphertext: 'AAAAAAAAAAAAAAAAAAAAAA==?iv=AAAA' },
        400,
        'invalid_encoding',
      ],
      [
        'NIP-04 half block',
        'nip04/decrypt',
        { pubkey: peer.pk, ciphertext: 'AAAAAAAA?iv=AAAAAAAAAAAAAAAAAAAAAA==' },
        400,
        'invalid_encoding',
      ],
      ['missing pubkey', 'nip44/encrypt', { plaintext: 'x' }, 400, 'invalid_request'],
      [
        'extra field',
        'nip44/encrypt',
        { pubkey: peer.pk, plaintext: 'x', secret: 1 },
        400,
        'invalid_request',
      ],
    ];
    const signersBefore = await Promise.all(c.signers.map((s) => ecdhRequests(s.url)));
    const auditBefore = await auditRows(c, key.id);
    const countBefore = await auditCount(c);
    for (const [what, path, body, status, code] of cases) {
      const r = await crypt(key.id, path, body);
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code, what);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
    }
    const unknown = await crypt('key_none', 'nip44/encrypt', { pubkey: peer.pk, plaintext: 'x' });
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'key_not_found']);
    assert.deepEqual(
      await Promise.all(c.signers.map((s) => ecdhRequests(s.url))),
      signersBefore,
      'no signer asked',
    );
    assert.deepEqual(await auditRows(c, key.id), auditBefore, 'nothing audited');
    assert.equal(await auditCount(c), countBefore, 'nothing audited anywhere');
  });

  it('a payload that does not authenticate: invalid_encoding, nothing returned and nothing audited', async () => {
    const peer = thirdParty();
    const ck = ntNip44.v2.utils.getConversationKey(peer.sk, key.x_only_public_key);
    const raw = Buffer.from(ntNip44.v2.encrypt('tampered', ck), 'base64');
    raw[40]! ^= 1;
    const auditBefore = await auditRows(c, key.id);
    const r = await crypt(key.id, 'nip44/decrypt', { pubkey: peer.pk, ciphertext: raw.toString('base64') });
    assert.deepEqual([r.status, r.body.code], [400, 'invalid_encoding']);
    assert.match(r.body.detail, /MAC/);
    // Encrypted to someone else: the MAC fails under this key's conversation key.
    const other = thirdParty();
    const elsewhere = ntNip44.v2.encrypt(
      'not for you',
      ntNip44.v2.utils.getConversationKey(peer.sk, other.pk),
    );
    const r2 = await crypt(key.id, 'nip44/decrypt', { pubkey: peer.pk, ciphertext: elsewhere });
    assert.deepEqual([r2.status, r2.body.code], [400, 'invalid_encoding']);
    assert.deepEqual(await auditRows(c, key.id), auditBefore);
  });

  it('is in the OpenAPI document, with its bodies', async () => {
    const doc = (await request(c.url, 'GET', '/openapi.json')).body;
    for (const scheme of ['nip44', 'nip04']) {
      for (const op of ['encrypt', 'decrypt']) {
        const post = doc.paths[`/v1/keys/{id}/${scheme}/${op}`]?.post;
        assert.ok(post, `${scheme}/${op}`);
        const body = post.requestBody.content['application/json'].schema;
        const want = [op === 'encrypt' ? 'plaintext' : 'ciphertext', 'pubkey'].sort();
        assert.deepEqual([...body.required].sort(), want);
        assert.equal(body.additionalProperties, false);
      }
    }
  });

  it('needs the requester role: a viewer token is refused', async () => {
    const t = await c.api('POST', '/v1/tokens', { role: 'viewer', label: 'ecdh-viewer' });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const peer = thirdParty();
    const r = await request(c.url, 'POST', `/v1/keys/${key.id}/nip44/encrypt`, {
      token: t.body.token,
      json: { pubkey: peer.pk, plaintext: 'x' },
    });
    assert.deepEqual([r.status, r.body.code], [403, 'forbidden']);
    const none = await request(c.url, 'POST', `/v1/keys/${key.id}/nip44/encrypt`, {
      json: { pubkey: peer.pk, plaintext: 'x' },
    });
    assert.equal(none.status, 401);
  });

  it('with one of three signer processes killed, both schemes still work', async () => {
    await c.signers[0]!.kill('SIGKILL');
    await roundTrips(key.id, key.x_only_public_key);
    const rows = await auditRows(c, key.id);
    assert.deepEqual(rows.at(-1)!.data.participants, [2, 3]);
  });
});

describe('a signer answering threshold ECDH with bad shares', () => {
  let c: TestCluster;
  let key: any;
  let ids: string[];
  before(async () => {
    c = await startCluster({ signers: 3, faults: { 0: 'bad_ecdh_share' } });
    ids = await c.registerSigners();
    key = await c.createKey(2);
  });
  after(() => c?.close());

  it('is excluded and blamed (proven), and the answer is still right, for both of its lies', async () => {
    const peer = thirdParty();
    const ck = ntNip44.v2.utils.getConversationKey(peer.sk, key.x_only_public_key);
    const before = (await c.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === ids[0]);
    assert.equal(before.fault_count, 0);
    // Twice: first S_1 + G with S_1's proof, then S_1 with a broken proof.
    for (const text of ['first lie', 'second lie']) {
      const dec = await c.api('POST', `/v1/keys/${key.id}/nip44/decrypt`, {
        pubkey: peer.pk,
        ciphertext: ntNip44.v2.encrypt(text, ck),
      });
      assert.equal(dec.status, 200, JSON.stringify(dec.body));
      assert.equal(dec.body.plaintext, text);
    }
    const after = (await c.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === ids[0]);
    assert.ok(after.fault_count >= 1, `fault_count ${after.fault_count}`);
    const rows = await auditRows(c, key.id);
    const blame = rows.filter((r) => r.kind === 'key.ecdh_blame');
    assert.ok(blame.length >= 1);
    assert.deepEqual(blame[0]!.data.culprits, [1]);
    assert.deepEqual(blame[0]!.data.signers, [ids[0]]);
    const uses = rows.filter((r) => r.kind === 'key.ecdh');
    assert.deepEqual(uses[0]!.data.participants, [2, 3]);
    assert.deepEqual(uses[0]!.data.culprits, [1]);
    // The API's own ciphertext is right too (the third party reads it).
    const enc = await c.api('POST', `/v1/keys/${key.id}/nip04/encrypt`, { pubkey: peer.pk, plaintext: 'ok' });
    assert.equal(enc.status, 200);
    assert.equal(ntNip04.decrypt(peer.sk, key.x_only_public_key, enc.body.ciphertext), 'ok');
  });
});
