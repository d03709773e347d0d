import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generateIdentityKey,
  identityPublicKey,
  openBox,
  sealBox,
  toHex,
  utf8,
} from '../../src/crypto/index.js';

describe('sealed box (ECDH of identity keys + HKDF + AES-256-GCM)', () => {
  const a = generateIdentityKey();
  const b = generateIdentityKey();
  const c = generateIdentityKey();
  const aad = utf8('ceremony-1|1->2');
  const secret = new Uint8Array(32).fill(9);

  it('the recipient opens what the sender sealed; the ciphertext does not contain the plaintext', () => {
    const box = sealBox(a, identityPublicKey(b), secret, aad, 'test');
    assert.ok(!box.ciphertext.includes(toHex(secret)));
    assert.deepEqual(openBox(b, box, aad, 'test', identityPublicKey(a)), secret);
  });

  it('fresh nonce per box', () => {
    const x = sealBox(a, identityPublicKey(b), secret, aad, 'test');
    const y = sealBox(a, identityPublicKey(b), secret, aad, 'test');
    assert.notEqual(x.nonce, y.nonce);
    assert.notEqual(x.ciphertext, y.ciphertext);
  });

  it('a third party, wrong AAD, wrong info, tampering or a substituted sender cannot open it', () => {
    const box = sealBox(a, identityPublicKey(b), secret, aad, 'test');
    assert.throws(() => openBox(c, box, aad, 'test'), { code: 'invalid_share' });
    assert.throws(() => openBox(b, box, utf8('other'), 'test'), { code: 'invalid_share' });
    assert.throws(() => openBox(b, box, aad, 'other'), { code: 'invalid_share' });
    const flipped = box.ciphertext.slice(0, -2) + (box.ciphertext.endsWith('0') ? '1' : '0');
    assert.throws(
      () => openBox(b, { ...box, ciphertext: flipped.padEnd(box.ciphertext.length, '0') }, aad, 'test'),
      {
        code: 'invalid_share',
      },
    );
    // Claiming another sender changes the derived key.
    assert.throws(() => openBox(b, { ...box, sender: toHex(identityPublicKey(c)) }, aad, 'test'), {
      code: 'invalid_share',
    });
    // Expected sender check.
    assert.throws(() => openBox(b, box, aad, 'test', identityPublicKey(c)), { code: 'invalid_share' });
  });

  it('works for keys of either Y parity (x-only semantics)', () => {
    for (let i = 0; i < 16; i++) {
      const s = generateIdentityKey();
      const r = generateIdentityKey();
      const box = sealBox(s, identityPublicKey(r), secret, aad, 'p');
      assert.deepEqual(openBox(r, box, aad, 'p'), secret);
    }
  });
});
