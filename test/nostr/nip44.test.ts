/**
 * NIP-44 v2 against the published vectors (test/fixtures/nostr/nip44.vectors.json, from
 * nostr-tools' repository) and against nostr-tools in both directions. The ECDH step is done
 * here with noble, as threshold ECDH will do it elsewhere: the module only sees sharedX.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { v2 as nt } from 'nostr-tools/nip44';
import {
  calcPaddedLen,
  conversationKey,
  decrypt,
  encrypt,
  MAX_PLAINTEXT_BYTES_U16,
  messageKeys,
} from '../../src/nostr/nip44.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair, sharedX } from './helpers.js';

interface Vectors {
  v2: {
    valid: {
      get_conversation_key: { sec1: string; pub2: string; conversation_key: string }[];
      get_message_keys: {
        conversation_key: string;
        keys: { nonce: string; chacha_key: string; chacha_nonce: string; hmac_key: string }[];
      };
      calc_padded_len: [number, number][];
      encrypt_decrypt: {
        sec1: string;
        sec2: string;
        conversation_key: string;
        nonce: string;
        plaintext: string;
        payload: string;
      }[];
      encrypt_decrypt_long_msg: {
        conversation_key: string;
        nonce: string;
        letter: string;
        repeat: number;
        payload_checksum_sha256: string;
      }[];
    };
    invalid: {
      encrypt_msg_lengths: number[];
      decrypt_msg_lengths: number[];
      get_conversation_key: { sec1: string; pub2: string; note: string }[];
      decrypt: {
        conversation_key: string;
        nonce: string;
        plaintext: string;
        payload: string;
        note: string;
      }[];
    };
  };
}

const V = (
  JSON.parse(
    readFileSync(new URL('../fixtures/nostr/nip44.vectors.json', import.meta.url), 'utf8'),
  ) as Vectors
).v2;
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const refused = (rule?: RegExp) => (e: unknown) =>
  isFloeError(e) && (rule === undefined || rule.test(e.message));

describe('NIP-44 v2 valid vectors', () => {
  test('get_conversation_key: conversationKey(sharedX) for every (sec1, pub2)', () => {
    assert.equal(V.valid.get_conversation_key.length, 35);
    for (const v of V.valid.get_conversation_key) {
      assert.equal(toHex(conversationKey(sharedX(hex(v.sec1), v.pub2))), v.conversation_key);
    }
  });

  test('get_message_keys', () => {
    const ck = hex(V.valid.get_message_keys.conversation_key);
    for (const k of V.valid.get_message_keys.keys) {
      const m = messageKeys(ck, hex(k.nonce));
      assert.equal(toHex(m.chachaKey), k.chacha_key);
      assert.equal(toHex(m.chachaNonce), k.chacha_nonce);
      assert.equal(toHex(m.hmacKey), k.hmac_key);
    }
  });

  test('calc_padded_len', () => {
    for (const [len, padded] of V.valid.calc_padded_len)
      assert.equal(calcPaddedLen(len), padded, `len ${len}`);
  });

  test('encrypt_decrypt: conversation key from ECDH, exact payload, and back', () => {
    for (const v of V.valid.encrypt_decrypt) {
      const pub2 = toHex(schnorr.getPublicKey(hex(v.sec2)));
      const ck = conversationKey(sharedX(hex(v.sec1), pub2));
      assert.equal(toHex(ck), v.conversation_key);
      // the other side derives the same key
      const pub1 = toHex(schnorr.getPublicKey(hex(v.sec1)));
      assert.equal(toHex(conversationKey(sharedX(hex(v.sec2), pub1))), v.conversation_key);
      assert.equal(encrypt(v.plaintext, ck, hex(v.nonce)), v.payload);
      assert.equal(decrypt(v.payload, ck), v.plaintext);
    }
  });

  test('encrypt_decrypt_long_msg: beyond 65535 bytes only when the caller allows it, then as nostr-tools', () => {
    for (const v of V.valid.encrypt_decrypt_long_msg) {
      const ck = hex(v.conversation_key);
      const plaintext = v.letter.repeat(v.repeat);
      const size = Buffer.byteLength(plaintext);
      const opts = { maxPlaintextBytes: size };
      if (size > MAX_PLAINTEXT_BYTES_U16) {
        assert.throws(
          () => encrypt(plaintext, ck, hex(v.nonce)),
          refused(/plaintext: must be 1 to 65535 bytes/),
        );
      }
      const payload = encrypt(plaintext, ck, hex(v.nonce), opts);
      // the vector publishes no checksum (empty), so nostr-tools is the reference here
      if (v.payload_checksum_sha256)
        assert.equal(toHex(sha256(new TextEncoder().encode(payload))), v.payload_checksum_sha256);
      assert.equal(payload, nt.encrypt(plaintext, ck, hex(v.nonce)));
      assert.equal(decrypt(payload, ck), plaintext);
      assert.equal(nt.decrypt(payload, ck), plaintext);
    }
  });
});

describe('NIP-44 v2 invalid vectors', () => {
  test('encrypt_msg_lengths are refused (default limit 65535 bytes)', () => {
    const ck = hex(V.valid.get_message_keys.conversation_key);
    for (const n of V.invalid.encrypt_msg_lengths) {
      assert.throws(() => encrypt('a'.repeat(n), ck), refused(/plaintext/), `length ${n}`);
    }
    // and the extended form has a ceiling too
    assert.throws(
      () => encrypt('a'.repeat(10_000_000), ck, undefined, { maxPlaintextBytes: 1024 * 1024 }),
      refused(),
    );
  });

  test('decrypt_msg_lengths are refused', () => {
    const ck = hex(V.valid.get_message_keys.conversation_key);
    for (const n of V.invalid.decrypt_msg_lengths) {
      assert.throws(() => decrypt('A'.repeat(n), ck), refused(/invalid length/), `length ${n}`);
    }
  });

  test('get_conversation_key: no sharedX exists for these keys, and conversationKey takes only 32 bytes', () => {
    for (const v of V.invalid.get_conversation_key) {
      // noble refuses the scalar or the point, so these inputs can never reach conversationKey
      assert.throws(() => sharedX(hex(v.sec1), v.pub2), Error, v.note);
    }
    assert.throws(() => conversationKey(new Uint8Array(31)), refused(/sharedX/));
    assert.throws(() => conversationKey(new Uint8Array(33)), refused(/sharedX/));
  });

  test('decrypt: every invalid payload is refused with its rule', () => {
    for (const v of V.invalid.decrypt) {
      const rule = new RegExp(v.note.replace(/ \d+$/, ''));
      assert.throws(() => decrypt(v.payload, hex(v.conversation_key)), refused(rule), v.note);
    }
  });
});

describe('interoperability with nostr-tools', () => {
  const sizes = [1, 31, 32, 33, 100, 1000, 65_535];
  test('nostr-tools encrypts, we decrypt; we encrypt, nostr-tools decrypts', () => {
    const a = keypair();
    const b = keypair();
    const ntKey = nt.utils.getConversationKey(a.sk, b.pk);
    const ours = conversationKey(sharedX(b.sk, a.pk));
    assert.deepEqual(ours, ntKey);
    for (const n of sizes) {
      // n code points, multi-byte ones too, within the 65535-byte limit
      const text = n === 65_535 ? 'x'.repeat(n) : Array.from('é🦄x'.repeat(n)).slice(0, n).join('');
      assert.equal(decrypt(nt.encrypt(text, ntKey), ours), text);
      assert.equal(nt.decrypt(encrypt(text, ours), ntKey), text);
    }
  });

  test('large messages with the extended prefix (current NIP-44 text) both ways', () => {
    const ck = conversationKey(sharedX(keypair().sk, keypair().pk));
    const text = 'z'.repeat(70_000);
    assert.equal(decrypt(nt.encrypt(text, ck), ck), text);
    assert.equal(nt.decrypt(encrypt(text, ck, undefined, { maxPlaintextBytes: 70_000 }), ck), text);
    // the decrypt bound is enforced
    assert.throws(
      () => decrypt(nt.encrypt(text, ck), ck, { maxPlaintextBytes: 65_535 }),
      refused(/invalid length/),
    );
    assert.throws(
      () => decrypt(nt.encrypt(text, ck), ck, { maxPlaintextBytes: 69_999 }),
      refused(/invalid padding/),
    );
  });
});

describe('strictness beyond the vectors', () => {
  const ck = conversationKey(sharedX(keypair().sk, keypair().pk));

  /** A correctly authenticated payload around arbitrary padded bytes. */
  function seal(padded: Uint8Array, nonce = new Uint8Array(32).fill(7)): string {
    const k = messageKeys(ck, nonce);
    const ct = chacha20(k.chachaKey, k.chachaNonce, padded);
    const mac = hmac(sha256, k.hmacKey, Uint8Array.from([...nonce, ...ct]));
    return base64.encode(Uint8Array.from([2, ...nonce, ...ct, ...mac]));
  }

  test('an authenticated payload with bad padding is still refused', () => {
    const good = new Uint8Array(2 + 32);
    good[1] = 5;
    good.set(new TextEncoder().encode('hello'), 2);
    assert.equal(decrypt(seal(good), ck), 'hello');
    // extended prefix for a short message: a second encoding of the same length
    const ext = new Uint8Array(6 + 32);
    ext[5] = 5;
    ext.set(new TextEncoder().encode('hello'), 6);
    assert.throws(() => decrypt(seal(ext), ck), refused(/invalid padding/));
    // declared length longer than the padded block
    const long = good.slice();
    long[1] = 40;
    assert.throws(() => decrypt(seal(long), ck), refused(/invalid padding/));
    // zero length
    const zero = good.slice();
    zero[1] = 0;
    assert.throws(() => decrypt(seal(zero), ck), refused(/invalid padding/));
  });

  test('invalid UTF-8 inside is refused; lone surrogates are not encrypted', () => {
    const bad = new Uint8Array(2 + 32);
    bad[1] = 2;
    bad.set([0xc3, 0x28], 2);
    assert.throws(() => decrypt(seal(bad), ck), refused(/UTF-8/));
    assert.throws(() => encrypt('a\ud800', ck), refused(/surrogate/));
  });

  test('a flipped bit anywhere fails the MAC; nonces are fresh by default', () => {
    const p = encrypt('secret message', ck);
    assert.notEqual(encrypt('secret message', ck), p);
    const raw = base64.decode(p);
    for (const i of [1, 40, raw.length - 1]) {
      const t = raw.slice();
      t[i]! ^= 1;
      assert.throws(() => decrypt(base64.encode(t), ck), refused(/invalid MAC/));
    }
  });

  test('error messages never contain the plaintext', () => {
    const secret = 'do-not-leak-this';
    const p = encrypt(secret, ck);
    const other = conversationKey(sharedX(keypair().sk, keypair().pk));
    assert.throws(
      () => decrypt(p, other),
      (e: unknown) => refused()(e) && !(e as Error).message.includes(secret),
    );
  });
});
