import assert from 'node:assert/strict';
import { it } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import {
  deriveBoxKey,
  generateIdentityKey,
  identityPublicKey,
  openBox,
  sealBox,
  signDigest,
  softwareIdentity,
  toHex,
  useBackend,
  utf8,
  verifyDigest,
} from '../../src/crypto/index.js';
import { ecc } from '../helpers/independent.js';
import { ALL_BACKENDS, describeEachBackend } from './backends.js';

describeEachBackend('identity keys (NodeIdentity)', () => {
  it('publicKey is the x-only key noble derives; signatures verify with noble and libsecp256k1', () => {
    for (let i = 0; i < 8; i++) {
      const secret = generateIdentityKey();
      const id = softwareIdentity(secret);
      assert.equal(id.publicKeyHex, toHex(schnorr.getPublicKey(secret)));
      assert.equal(toHex(identityPublicKey(secret)), id.publicKeyHex);
      const digest = new Uint8Array(32).fill(i);
      for (const sig of [id.sign(digest), signDigest(secret, digest)]) {
        assert.ok(verifyDigest(sig, digest, id.publicKey));
        assert.ok(schnorr.verify(sig, digest, id.publicKey));
        assert.ok(ecc.verifySchnorr(digest, id.publicKey, sig));
        assert.equal(verifyDigest(sig, new Uint8Array(32).fill(i + 1), id.publicKey), false);
      }
      // Fresh auxiliary randomness: two signatures of one digest differ.
      assert.notEqual(toHex(id.sign(digest)), toHex(id.sign(digest)));
    }
  });

  it('refuses digests that are not 32 bytes and secrets out of range, without echoing them', () => {
    const id = softwareIdentity(generateIdentityKey());
    assert.throws(() => id.sign(new Uint8Array(31)), { code: 'invalid_encoding' });
    const zero = new Uint8Array(32);
    assert.throws(() => softwareIdentity(zero), { code: 'invalid_scalar' });
    const big = new Uint8Array(32).fill(0xff);
    try {
      softwareIdentity(big);
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(!(e as Error).message.includes('ff'.repeat(8)));
    }
    assert.equal(verifyDigest(new Uint8Array(64), new Uint8Array(32), id.publicKey), false);
  });
});

describeEachBackend('sealed box (ECDH of identity keys + HKDF + AES-256-GCM)', () => {
  const a = softwareIdentity(generateIdentityKey());
  const b = softwareIdentity(generateIdentityKey());
  const c = softwareIdentity(generateIdentityKey());
  const aad = utf8('ceremony-1|1->2');
  const secret = new Uint8Array(32).fill(9);

  it('the recipient opens what the sender sealed; the ciphertext does not contain the plaintext', () => {
    const box = sealBox(a, b.publicKey, secret, aad, 'test');
    assert.equal(box.sender, a.publicKeyHex);
    assert.ok(!box.ciphertext.includes(toHex(secret)));
    assert.deepEqual(openBox(b, box, aad, 'test', a.publicKey), secret);
  });

  it('fresh nonce per box', () => {
    const x = sealBox(a, b.publicKey, secret, aad, 'test');
    const y = sealBox(a, b.publicKey, secret, aad, 'test');
    assert.notEqual(x.nonce, y.nonce);
    assert.notEqual(x.ciphertext, y.ciphertext);
  });

  it('a third party, wrong AAD, wrong info, tampering or a substituted sender cannot open it', () => {
    const box = sealBox(a, b.publicKey, secret, aad, 'test');
    assert.throws(() => openBox(c, box, aad, 'test'), { code: 'invalid_share' });
    assert.throws(() => openBox(b, box, utf8('other'), 'test'), { code: 'invalid_share' });
    assert.throws(() => openBox(b, box, aad, 'other'), { code: 'invalid_share' });
    // One bit of the last byte flipped (always a change, whatever the byte was).
    const last = Number.parseInt(box.ciphertext.slice(-2), 16) ^ 0x01;
    const flipped = box.ciphertext.slice(0, -2) + last.toString(16).padStart(2, '0');
    assert.notEqual(flipped, box.ciphertext);
    assert.throws(() => openBox(b, { ...box, ciphertext: flipped }, aad, 'test'), {
      code: 'invalid_share',
    });
    // Claiming another sender changes the derived key.
    assert.throws(() => openBox(b, { ...box, sender: c.publicKeyHex }, aad, 'test'), {
      code: 'invalid_share',
    });
    // Expected sender check.
    assert.throws(() => openBox(b, box, aad, 'test', c.publicKey), { code: 'invalid_share' });
  });

  it('works for keys of either Y parity (x-only semantics)', () => {
    for (let i = 0; i < 16; i++) {
      const s = softwareIdentity(generateIdentityKey());
      const r = softwareIdentity(generateIdentityKey());
      const box = sealBox(s, r.publicKey, secret, aad, 'p');
      assert.deepEqual(openBox(r, box, aad, 'p'), secret);
    }
  });

  it('both sides derive the same key; ECDH is x(d·lift_x(peer)) as noble computes it', () => {
    for (let i = 0; i < 8; i++) {
      const ds = generateIdentityKey();
      const dr = generateIdentityKey();
      const s = softwareIdentity(ds);
      const r = softwareIdentity(dr);
      assert.deepEqual(deriveBoxKey(s, r.publicKey, 'seal', 'k'), deriveBoxKey(r, s.publicKey, 'open', 'k'));
      const expected = secp256k1.getSharedSecret(ds, Uint8Array.of(2, ...r.publicKey)).subarray(1);
      assert.equal(toHex(s.ecdh(r.publicKey)), toHex(expected));
      assert.equal(toHex(r.ecdh(s.publicKey)), toHex(expected));
    }
  });

  it('a disposed identity refuses to sign or agree keys; its copy of the secret is wiped', () => {
    const raw = generateIdentityKey();
    const id = softwareIdentity(raw);
    id.dispose();
    assert.ok(
      raw.some((x) => x !== 0),
      'the caller keeps its own buffer',
    );
    assert.throws(() => id.sign(new Uint8Array(32)));
    assert.throws(() => id.ecdh(b.publicKey));
  });

  it('a peer key that is not on the curve is refused', () => {
    // x = 5: 5^3 + 7 = 132 is not a square mod p.
    const bad = new Uint8Array(32);
    bad[31] = 5;
    assert.throws(() => a.ecdh(bad), { code: 'invalid_point' });
    assert.throws(() => sealBox(a, bad, secret, aad, 'x'), { code: 'invalid_point' });
    assert.throws(() => sealBox(a, new Uint8Array(31), secret, aad, 'x'), { code: 'invalid_encoding' });
  });
});

describeEachBackend('sealed boxes across backends', (name) => {
  it(`a box sealed on ${name} opens on every backend`, () => {
    const s = softwareIdentity(generateIdentityKey());
    const r = softwareIdentity(generateIdentityKey());
    const box = sealBox(s, r.publicKey, utf8('payload'), utf8('aad'), 'info');
    for (const other of ALL_BACKENDS) {
      const prev = useBackend(other);
      try {
        assert.deepEqual(openBox(r, box, utf8('aad'), 'info', s.publicKey), utf8('payload'), other);
      } finally {
        useBackend(prev);
      }
    }
  });
});
