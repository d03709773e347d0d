/**
 * Descriptors: the BIP-380 checksum against the BIP's vectors and Bitcoin Core's
 * (src/test/descriptor_tests.cpp), BIP-386 tr() scripts reproduced with Floe's derivation and
 * outputs, and Floe's watch-only descriptor of a key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import {
  addChecksum,
  checkDescriptorChecksum,
  decodeXpub,
  deriveTweak,
  descriptorChecksum,
  encodeXpub,
  MAINNET,
  rootXpub,
  TESTNET,
  taprootDescriptor,
  taprootOutput,
} from '../../src/bitcoin/index.js';
import { describeEachBackend } from '../crypto/backends.js';
import { hex, pub, randomSecret, tapLeaf, unhex } from './helpers.js';

const isReason = (reason: string) => (e: any) => e?.extra?.reason === reason;

const XPUB_A = // BIP-380's xpub; the public half of BIP-386's xprvA1RpRA33…
  'xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL';
const XPRV_A =
  'xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc';
const XPUB_B =
  'xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y';
const XPRV_B =
  'xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L';

/** Checksummed descriptors published by BIP-380 and Bitcoin Core's unit tests. */
const VALID = [
  'raw(deadbeef)#89f8spxm',
  `sh(multi(2,[00000000/111'/222]${XPRV_A},${XPRV_B}/0))#ggrsrxfy`,
  `sh(multi(2,[00000000/111'/222]${XPUB_A},${XPUB_B}/0))#tjg09x5t`,
  'tr(c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5,{pk(fff97bd5755eeea420453a14355235d382f6472f8568a18b2f057a1460297556),pk(e493dbf1c10d80f3581e4904930b1404cc6c13900ee0758474fa94abe8c4cd13)})#2rqrdjrh',
];

describeEachBackend('BIP-380 checksum', () => {
  it('computes and accepts the published checksums', () => {
    for (const d of VALID) {
      const [payload, checksum] = d.split('#') as [string, string];
      assert.equal(descriptorChecksum(payload), checksum, payload);
      assert.equal(addChecksum(payload), d);
      assert.equal(checkDescriptorChecksum(d), payload);
    }
  });

  it("refuses BIP-380's invalid checksums", () => {
    assert.equal(checkDescriptorChecksum('raw(deadbeef)'), 'raw(deadbeef)'); // no checksum: optional
    assert.throws(
      () => checkDescriptorChecksum('raw(deadbeef)', { require: true }),
      isReason('descriptor_checksum_invalid'),
    );
    for (const bad of [
      'raw(deadbeef)#', // missing checksum
      'raw(deadbeef)#89f8spxmx', // too long
      'raw(deadbeef)#89f8spx', // too short
      'raw(deedbeef)#89f8spxm', // error in payload
      'raw(deedbeef)##9f8spxm', // error in checksum
      'raw(Ü)#00000000', // invalid character in payload
    ]) {
      assert.throws(() => checkDescriptorChecksum(bad), isReason('descriptor_checksum_invalid'), bad);
    }
    assert.throws(() => descriptorChecksum('raw(Ü)'), isReason('descriptor_checksum_invalid'));
  });
});

/** `pk(KEY)` leaf script inside tr(): <32-byte x-only key> OP_CHECKSIG. */
const pkLeaf = (xOnly: Uint8Array) => Uint8Array.of(0x20, ...xOnly, 0xac);

describeEachBackend('BIP-386 tr() vectors with Floe derivation and outputs', () => {
  it('tr(KEY) and tr(KEY, pk(KEY))', () => {
    const key = unhex('a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd');
    assert.equal(
      hex(taprootOutput(key, MAINNET).script),
      '512077aab6e066f8a7419c5ab714c12c67d25007ed55a43cadcacb4d7a970a093f11',
    );
    const leaf = tapLeaf(pkLeaf(unhex('669b8afcec803a0d323e9a17f3ea8e68e8abe5a278020a929adbec52421adbd0')));
    assert.equal(
      hex(taprootOutput(key, MAINNET, leaf).script),
      '512017cf18db381d836d8923b1bdb246cfcd818da1a9f0e6e7907f187f0b2f937754',
    );
  });

  it('tr(xpub/0/*, pk(xpub/1/*)): children 0, 1, 2 derived from the xpub', () => {
    const xpub = decodeXpub(XPUB_A, MAINNET);
    const expected = [
      '512078bc707124daa551b65af74de2ec128b7525e10f374dc67b64e00ce0ab8b3e12',
      '512001f0a02a17808c20134b78faab80ef93ffba82261ccef0a2314f5d62b6438f11',
      '512021024954fcec88237a9386fce80ef2ced5f1e91b422b26c59ccfc174c8d1ad25',
    ];
    expected.forEach((script, i) => {
      const internal = deriveTweak(xpub, [0, i]).publicKey;
      const leafKey = deriveTweak(xpub, [1, i]).publicKey.subarray(1);
      const out = taprootOutput(internal, MAINNET, tapLeaf(pkLeaf(leafKey)));
      assert.equal(hex(out.script), script, `child ${i}`);
    });
  });
});

describeEachBackend("Floe's watch-only descriptor", () => {
  it('tr(<xpub>/0/*) and tr(<xpub>/1/*) with valid checksums; its children are the key’s addresses', () => {
    const root = rootXpub(pub(randomSecret()), new Uint8Array(randomBytes(32)));
    const receive = taprootDescriptor(root, MAINNET);
    const change = taprootDescriptor(root, TESTNET, 1);
    const xpub = encodeXpub(root, MAINNET);
    assert.match(receive, /^tr\(xpub[1-9A-HJ-NP-Za-km-z]+\/0\/\*\)#[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{8}$/);
    assert.equal(checkDescriptorChecksum(receive, { require: true }), `tr(${xpub}/0/*)`);
    assert.equal(checkDescriptorChecksum(change), `tr(${encodeXpub(root, TESTNET)}/1/*)`);
    // What a descriptor wallet derives from it is what Floe derives.
    const fromDescriptor = decodeXpub(receive.slice(3, receive.indexOf('/')), MAINNET);
    for (let i = 0; i < 3; i++) {
      assert.equal(
        taprootOutput(deriveTweak(fromDescriptor, [0, i]).publicKey, MAINNET).address,
        taprootOutput(deriveTweak(root, `m/0/${i}`).publicKey, MAINNET).address,
      );
    }
  });
});
