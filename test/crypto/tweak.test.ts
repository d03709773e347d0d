import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { it } from 'node:test';
import { __TEST, schnorr_FROST } from '@noble/curves/secp256k1.js';
import {
  aggregate,
  CryptoError,
  CURVE_ORDER,
  commit,
  dealerSplit,
  fromHex,
  type KeyPackage,
  type PublicKeyPackage,
  signShare,
  taprootOutputKey,
  toHex,
  tweakKeyPackage,
  tweakPublicKeyPackage,
  validateKeyPackage,
  verifySignature,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { ecc, libsecpVerify } from '../helpers/independent.js';
import { describeEachBackend } from './backends.js';
import { toNoblePublic, toNobleSecret } from './noble-ref.js';

const h = (s: string) => fromHex(s, 'test');
const EMPTY = new Uint8Array(0);

// ---------- independent helpers (node:crypto only) ----------

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return new Uint8Array(hash.digest());
};
const TAG = sha256(new TextEncoder().encode('TapTweak'));
const tapTweak = (x: Uint8Array, root: Uint8Array) => sha256(TAG, TAG, x, root);

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
/** Base58Check decode: payload without the 4-byte double-SHA-256 checksum. */
function base58check(s: string): Uint8Array {
  let n = 0n;
  for (const ch of s) {
    const d = B58.indexOf(ch);
    if (d < 0) throw new Error(`bad base58 char ${ch}`);
    n = n * 58n + BigInt(d);
  }
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let zeros = 0;
  while (s[zeros] === '1') zeros++;
  const bytes = Uint8Array.from([...new Uint8Array(zeros), ...Buffer.from(hex, 'hex')]);
  const payload = bytes.subarray(0, -4);
  const check = sha256(sha256(payload)).subarray(0, 4);
  assert.deepEqual(bytes.subarray(-4), check, 'base58check checksum');
  return payload;
}

/** A random secret scalar (32 bytes, 0 < s < n). */
function randomSecret(): Uint8Array {
  for (;;) {
    const s = randomBytes(32);
    const v = BigInt(`0x${s.toString('hex')}`);
    if (v > 0n && v < CURVE_ORDER) return new Uint8Array(s);
  }
}

function randomSubset(n: number, t: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, t).sort((a, b) => a - b);
}

/** commit → signShare → aggregate with a random t-subset of `keys`. */
function thresholdSign(keys: KeyPackage[], pub: PublicKeyPackage, message: Uint8Array): Uint8Array {
  const signers = randomSubset(pub.n, pub.threshold).map((id) => keys.find((k) => k.identifier === id)!);
  const round1 = signers.map((k) => commit(k));
  const pkg = { message, commitments: round1.map((r) => r.commitments) };
  const shares = signers.map((k, i) => signShare(k, round1[i]!.nonces, pkg));
  return aggregate(pub, pkg, shares);
}

const xOf = (compressed: Uint8Array) => toHex(compressed.subarray(1));

// ---------- tests ----------

const BIP86 = [
  [
    'cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115',
    'a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c',
  ],
  [
    '83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145',
    'a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb',
  ],
  [
    '399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef',
    '882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc',
  ],
] as const;

const BIP86_XPRV =
  'xprvA449goEeU9okwCzzZaxiy475EQGQzBkc65su82nXEvcwzfSskb2hAt2WymrjyRL6kpbVTGL3cKtp9herYXSjjQ1j4stsXXiRF7kXkCacK3T';

describeEachBackend('BIP-86 vectors', () => {
  it('taprootOutputKey maps each internal key to its BIP-86 output key', () => {
    for (const [internal, output] of BIP86) {
      const q = taprootOutputKey(h(`02${internal}`));
      assert.equal(q.length, 33);
      assert.equal(xOf(q), output);
      // The output only depends on x(P): the odd-Y lift gives the same output key.
      assert.equal(xOf(taprootOutputKey(h(`03${internal}`))), output);
      // An explicit empty merkle root is the same as the default.
      assert.equal(xOf(taprootOutputKey(h(`02${internal}`), EMPTY)), output);
    }
  });

  it('the BIP-86 private key, split and tweaked, signs for the output key (2-of-3 and 3-of-5)', () => {
    const payload = base58check(BIP86_XPRV);
    assert.equal(payload.length, 78);
    assert.equal(payload[45], 0, 'private key marker byte');
    const secret = payload.slice(46);
    const P = Uint8Array.from(ecc.pointFromScalar(secret, true)!);
    assert.equal(xOf(P), BIP86[0][0]);

    for (const [t, n] of [
      [2, 3],
      [3, 5],
    ] as const) {
      const deal = dealerSplit(secret, t, n);
      assert.equal(xOf(deal.public.commitments[0]!), BIP86[0][0]);
      const keys = deal.shares.map((k) => tweakKeyPackage(k, EMPTY));
      const pub = keys[0]!.public;
      for (const k of keys) {
        validateKeyPackage(k);
        assert.equal(k.public.tweak.kind, 'taproot');
        assert.equal(xOf(k.public.commitments[0]!), BIP86[0][1]);
      }
      assert.equal(toHex(xOnlyGroupKey(pub)), BIP86[0][1]);
      assert.deepEqual(tweakPublicKeyPackage(deal.public, EMPTY), pub);
      for (let round = 0; round < 2; round++) {
        const msg = new Uint8Array(randomBytes(32));
        const sig = thresholdSign(keys, pub, msg);
        assert.ok(libsecpVerify(sig, msg, h(BIP86[0][1])), `libsecp verifies ${t}-of-${n}`);
        assert.ok(verifySignature(sig, msg, h(BIP86[0][1])));
        // ...and not against the untweaked internal key.
        assert.equal(libsecpVerify(sig, msg, h(BIP86[0][0])), false);
      }
    }
  });
});

describeEachBackend('taprootOutputKey against libsecp256k1 (tiny-secp256k1)', () => {
  it('random keys and random merkle roots: same x-only output and parity', () => {
    for (let i = 0; i < 24; i++) {
      const P = Uint8Array.from(ecc.pointFromScalar(randomSecret(), true)!);
      const root = i % 4 === 0 ? EMPTY : new Uint8Array(randomBytes(32));
      const x = P.subarray(1);
      const expected = ecc.xOnlyPointAddTweak(x, tapTweak(x, root));
      assert.ok(expected);
      const q = taprootOutputKey(P, root);
      assert.equal(xOf(q), toHex(expected.xOnlyPubkey));
      assert.equal(q[0], expected.parity === 0 ? 2 : 3, 'parity');
    }
  });

  it('different merkle roots give different output keys', () => {
    const P = Uint8Array.from(ecc.pointFromScalar(randomSecret(), true)!);
    const a = taprootOutputKey(P, new Uint8Array(32));
    const b = taprootOutputKey(P, new Uint8Array(32).fill(1));
    const c = taprootOutputKey(P);
    assert.notEqual(toHex(a), toHex(b));
    assert.notEqual(toHex(a), toHex(c));
  });
});

describeEachBackend("agreement with noble's frostTweakPublic / frostTweakSecret", () => {
  it('tweaked packages and shares equal noble for both group-key parities, empty and 32-byte roots', () => {
    const seen = new Set<number>();
    let rounds = 0;
    while (seen.size < 2 || rounds < 4) {
      rounds++;
      assert.ok(rounds < 64, 'expected both parities within 64 random keys');
      const deal = dealerSplit(randomSecret(), 2, 3);
      const prefix = deal.public.commitments[0]![0]!;
      seen.add(prefix);
      for (const root of [EMPTY, new Uint8Array(randomBytes(32))]) {
        const expectedPub = __TEST.frostTweakPublic(toNoblePublic(deal.public), root);
        const ours = tweakPublicKeyPackage(deal.public, root);
        const oursEngine = toNoblePublic(ours);
        assert.deepEqual(oursEngine.signers, expectedPub.signers);
        assert.deepEqual(oursEngine.commitments.map(toHex), expectedPub.commitments.map(toHex));
        assert.deepEqual(
          Object.keys(oursEngine.verifyingShares).sort(),
          Object.keys(expectedPub.verifyingShares).sort(),
        );
        for (const [id, vs] of Object.entries(expectedPub.verifyingShares)) {
          assert.equal(toHex(oursEngine.verifyingShares[id]!), toHex(vs), `verifying share ${id}`);
        }
        for (const share of deal.shares) {
          const expected = __TEST.frostTweakSecret(toNobleSecret(share), toNoblePublic(deal.public), root);
          const tweaked = tweakKeyPackage(share, root);
          assert.equal(toHex(tweaked.signingShare), toHex(expected.signingShare));
          assert.equal(toNobleSecret(tweaked).identifier, expected.identifier);
          validateKeyPackage(tweaked);
        }
      }
    }
    assert.deepEqual([...seen].sort(), [2, 3]);
  });

  it('for odd-Y group keys the tweaked share is t - s (the share is negated first)', () => {
    let deal: ReturnType<typeof dealerSplit>;
    do deal = dealerSplit(randomSecret(), 2, 3);
    while (deal.public.commitments[0]![0] !== 3);
    const x = deal.public.commitments[0]!.subarray(1);
    const t = BigInt(`0x${toHex(tapTweak(x, EMPTY))}`);
    const n = CURVE_ORDER;
    const share = deal.shares[0]!;
    const s = BigInt(`0x${toHex(share.signingShare)}`);
    const tweaked = BigInt(`0x${toHex(tweakKeyPackage(share).signingShare)}`);
    assert.equal(tweaked, (((n - s) % n) + t) % n);
  });
});

describeEachBackend('script-path tweak and misuse', () => {
  it('threshold signing with a script-path merkle root verifies with libsecp256k1', () => {
    const root = new Uint8Array(randomBytes(32));
    const deal = dealerSplit(randomSecret(), 3, 5);
    const keys = deal.shares.map((k) => tweakKeyPackage(k, root));
    const pub = keys[0]!.public;
    assert.equal(pub.tweak.kind, 'taproot');
    if (pub.tweak.kind === 'taproot') {
      assert.equal(toHex(pub.tweak.merkleRoot), toHex(root));
      assert.equal(toHex(pub.tweak.internalKey), toHex(deal.public.commitments[0]!));
    }
    const internalX = deal.public.commitments[0]!.subarray(1);
    const expected = ecc.xOnlyPointAddTweak(internalX, tapTweak(internalX, root))!;
    assert.equal(toHex(xOnlyGroupKey(pub)), toHex(expected.xOnlyPubkey));
    // The key-path-only (BIP-86) output key is a different key.
    assert.notEqual(toHex(xOnlyGroupKey(pub)), xOf(taprootOutputKey(deal.public.commitments[0]!)));
    for (let i = 0; i < 3; i++) {
      const msg = new Uint8Array(randomBytes(32));
      const sig = thresholdSign(keys, pub, msg);
      assert.ok(libsecpVerify(sig, msg, expected.xOnlyPubkey));
    }
  });

  it('tweaking an already tweaked package throws invalid_package', () => {
    const deal = dealerSplit(randomSecret(), 2, 3);
    const once = tweakKeyPackage(deal.shares[0]!);
    assert.throws(
      () => tweakKeyPackage(once),
      (e: unknown) => e instanceof CryptoError && e.code === 'invalid_package',
    );
    assert.throws(
      () => tweakPublicKeyPackage(once.public, new Uint8Array(32)),
      (e: unknown) => e instanceof CryptoError && e.code === 'invalid_package',
    );
  });

  it('a merkle root that is neither empty nor 32 bytes is rejected', () => {
    const deal = dealerSplit(randomSecret(), 2, 3);
    for (const len of [31, 33, 1]) {
      const bad = new Uint8Array(len);
      for (const f of [
        () => taprootOutputKey(deal.public.commitments[0]!, bad),
        () => tweakPublicKeyPackage(deal.public, bad),
        () => tweakKeyPackage(deal.shares[0]!, bad),
      ]) {
        assert.throws(f, (e: unknown) => e instanceof CryptoError && e.code === 'invalid_encoding');
      }
    }
  });

  it("Floe's tweaked dealer key signs like noble's own tweak would (engine signature verifies)", () => {
    // Sign with the engine directly using noble's tweaked package, and check Floe's tweaked
    // package names the same x-only key.
    const deal = dealerSplit(randomSecret(), 2, 3);
    const root = new Uint8Array(randomBytes(32));
    const epub = __TEST.frostTweakPublic(toNoblePublic(deal.public), root);
    const esecrets = deal.shares
      .slice(0, 2)
      .map((k) => __TEST.frostTweakSecret(toNobleSecret(k), toNoblePublic(deal.public), root));
    const msg = new Uint8Array(randomBytes(32));
    const r1 = esecrets.map((s) => schnorr_FROST.commit(s));
    const list = r1.map((r) => r.commitments);
    const sigShares: Record<string, Uint8Array> = {};
    esecrets.forEach((s, i) => {
      sigShares[s.identifier] = schnorr_FROST.signShare(s, epub, r1[i]!.nonces, list, msg);
    });
    const sig = schnorr_FROST.aggregate(epub, list, msg, sigShares);
    const ours = tweakPublicKeyPackage(deal.public, root);
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(ours)));
  });
});
