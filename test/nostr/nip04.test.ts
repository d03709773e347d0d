/** NIP-04 (AES-256-CBC) against nostr-tools in both directions, and its strict payload form. */
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, test } from 'node:test';
import { cbc } from '@noble/ciphers/aes.js';
import { base64 } from '@scure/base';
import * as nt from 'nostr-tools/nip04';
import { decrypt, encrypt } from '../../src/nostr/nip04.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair, sharedX } from './helpers.js';

const refused = (rule?: RegExp) => (e: unknown) =>
  isFloeError(e) && (rule === undefined || rule.test(e.message));
const TEXTS = ['', 'hello', 'x'.repeat(16), 'é🦄 unicode \u2028 and "quotes"', 'y'.repeat(5000)];

describe('NIP-04 interoperability with nostr-tools', () => {
  test('nostr-tools encrypts, we decrypt with sharedX from either side', () => {
    const a = keypair();
    const b = keypair();
    for (const text of TEXTS) {
      const payload = nt.encrypt(a.sk, b.pk, text);
      assert.equal(decrypt(payload, sharedX(b.sk, a.pk)), text);
      assert.equal(decrypt(payload, sharedX(a.sk, b.pk)), text);
    }
  });

  test('we encrypt, nostr-tools decrypts', () => {
    const a = keypair();
    const b = keypair();
    for (const text of TEXTS) {
      const payload = encrypt(text, sharedX(a.sk, b.pk));
      assert.equal(nt.decrypt(b.sk, a.pk, payload), text);
    }
  });

  test('with a fixed iv the ciphertext is AES-256-CBC(key = sharedX) as noble computes it', () => {
    const key = new Uint8Array(32).fill(1);
    const iv = new Uint8Array(16).fill(2);
    const expected = base64.encode(cbc(key, iv).encrypt(new TextEncoder().encode('floe')));
    assert.equal(encrypt('floe', key, iv), `${expected}?iv=${base64.encode(iv)}`);
  });
});

describe('NIP-04 strictness', () => {
  const key = new Uint8Array(32).fill(9);
  const iv = new Uint8Array(16).fill(3);
  const good = encrypt('hello world', key, iv);
  const [ct, ivb] = good.split('?iv=') as [string, string];

  test('payload form', () => {
    assert.throws(() => decrypt(ct, key), refused(/\?iv=/));
    assert.throws(() => decrypt(`${good}?iv=${ivb}`, key), refused(/\?iv=/));
    assert.throws(
      () => decrypt(`${ct}?iv=${base64.encode(new Uint8Array(15))}`, key),
      refused(/iv must be 16 bytes/),
    );
    assert.throws(() => decrypt(`${ct}?iv=not*base64`, key), refused(/base64/));
    assert.throws(
      () => decrypt(`${base64.encode(new Uint8Array(15))}?iv=${ivb}`, key),
      refused(/whole AES blocks/),
    );
    assert.throws(() => decrypt(`?iv=${ivb}`, key), refused(/whole AES blocks/));
  });

  test('wrong key or bad padding is refused', () => {
    // deterministic: with this key the last block does not unpad
    const other = new Uint8Array(32).fill(10);
    assert.throws(() => decrypt(good, other), refused(/cannot decrypt|UTF-8/));
  });

  test('invalid UTF-8 inside is refused; lone surrogates are not encrypted', () => {
    const c = createCipheriv('aes-256-cbc', key, iv);
    const bad = Buffer.concat([c.update(Uint8Array.of(0xc3, 0x28)), c.final()]);
    assert.throws(() => decrypt(`${base64.encode(bad)}?iv=${ivb}`, key), refused(/UTF-8/));
    assert.throws(() => encrypt('a\udfff', key), refused(/surrogate/));
  });

  test('size is bounded before decoding; keys and ivs have exact lengths', () => {
    const big = encrypt('z'.repeat(2000), key);
    assert.throws(() => decrypt(big, key, { maxPlaintextBytes: 1000 }), refused(/longer/));
    assert.equal(decrypt(big, key, { maxPlaintextBytes: 2000 }), 'z'.repeat(2000));
    assert.throws(() => encrypt('x', new Uint8Array(31)), refused(/sharedX/));
    assert.throws(() => decrypt(good, new Uint8Array(33)), refused(/sharedX/));
    assert.throws(() => encrypt('x', key, new Uint8Array(8)), refused(/iv/));
  });
});
