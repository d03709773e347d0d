/**
 * The backend seam (DESIGN §10): every backend's point operations, BIP-340 and ECDH agree with
 * noble (the reference) on random inputs, refuse what they must, and the start-up choice
 * follows FLOE_CRYPTO_BACKEND and never lands on a backend that did not load.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { chooseBackend } from '../../src/crypto/backend.js';
import {
  availableBackends,
  BACKEND_NAMES,
  backendInfo,
  CryptoError,
  type CurveBackend,
  cryptoBackend,
  loadBackend,
  pointAdd,
  pointFromScalar,
  pointMulPublic,
  pointNegate,
  scalarToBytes,
  toHex,
} from '../../src/crypto/index.js';
import { ecc } from '../helpers/independent.js';
import { describeEachBackend } from './backends.js';

const { Point } = secp256k1;
const N = Point.Fn.ORDER;

const scalarArb = fc.bigInt({ min: 1n, max: N - 1n });
const smallOrBig = fc.oneof(scalarArb, fc.bigInt({ min: 1n, max: 300n }), fc.constant(N - 1n));
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const G = (k: bigint) => Point.BASE.multiply(k);
const enc = (p: InstanceType<typeof Point>) => toHex(p.toBytes(true));

/** Off-curve x values (x^3 + 7 not a square mod p) and x >= p. */
const BAD_X = [5n, 7n, 9n, 2n ** 256n - 1n, 2n ** 256n - 2n ** 32n - 977n];
const xBytes = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));

describe('backend selection', () => {
  const fake = (name: 'native' | 'wasm' | 'noble') => ({ name }) as unknown as CurveBackend;
  const loader =
    (fails: string[]) =>
    (name: 'native' | 'wasm' | 'noble'): CurveBackend | Error =>
      fails.includes(name) ? new Error(`${name} broke`) : fake(name);

  it('native by default; wasm when native does not load, saying why; noble last', () => {
    assert.equal(chooseBackend(undefined, loader([])).backend.name, 'native');
    const w = chooseBackend(undefined, loader(['native']));
    assert.equal(w.backend.name, 'wasm');
    assert.match(w.reason, /^native unavailable: native broke; using wasm$/);
    const n = chooseBackend('', loader(['native', 'wasm']));
    assert.equal(n.backend.name, 'noble');
    assert.match(n.reason, /native unavailable.*wasm unavailable.*using noble/);
  });

  it('FLOE_CRYPTO_BACKEND forces one, and refuses to start when it cannot load or is unknown', () => {
    for (const name of BACKEND_NAMES) {
      const r = chooseBackend(name, loader([]));
      assert.equal(r.backend.name, name);
      assert.match(r.reason, /forced/);
    }
    assert.throws(
      () => chooseBackend('native', loader(['native'])),
      /FLOE_CRYPTO_BACKEND=native.*cannot load.*native broke/,
    );
    assert.throws(() => chooseBackend('elliptic', loader([])), /expected one of native, wasm, noble/);
  });

  it('this machine loads all three; the active one is reported with its reason', () => {
    assert.deepEqual(availableBackends(), ['native', 'wasm', 'noble']);
    const info = backendInfo();
    assert.ok(BACKEND_NAMES.includes(info.name));
    assert.ok(info.reason.length > 0);
    assert.match(loadBackend('native').description, /libsecp256k1.*N-API.*randomized/);
    assert.match(loadBackend('wasm').description, /libsecp256k1.*WebAssembly.*randomized/);
  });
});

describeEachBackend('backend point operations against noble', (name) => {
  const b = () => cryptoBackend();

  it('mulBase, encode/decode, parity, negate, add, sum', () => {
    fc.assert(
      fc.property(scalarArb, scalarArb, (x, y) => {
        const B = b();
        const P = B.mulBase(scalarToBytes(x));
        const Q = B.mulBase(scalarToBytes(y));
        assert.equal(toHex(B.encode(P)), enc(G(x)));
        assert.equal(B.hasEvenY(P), G(x).toAffine().y % 2n === 0n);
        assert.ok(B.equals(B.decode(B.encode(P), 'p'), P));
        assert.equal(toHex(B.encode(B.negate(P))), enc(G(x).negate()));
        const sum = x + y === N ? null : enc(G(x).add(G(y)));
        const got = B.add(P, Q);
        assert.equal(got && toHex(B.encode(got)), sum);
        assert.equal(B.add(P, B.negate(P)), null);
        assert.equal(toHex(B.encode(B.add(P, P)!)), enc(G(x).double()));
        const s3 = B.sum([P, Q, P]);
        const e3 = G(x).add(G(y)).add(G(x));
        assert.equal(s3 && toHex(B.encode(s3)), e3.is0() ? null : enc(e3));
        assert.equal(B.sum([]), null);
      }),
      { numRuns: name === 'noble' ? 20 : 60 },
    );
  });

  it('mulPublic and mulBaseAddPublic (including zero scalars and the identity)', () => {
    fc.assert(
      fc.property(scalarArb, smallOrBig, smallOrBig, (x, k, a) => {
        const B = b();
        const P = B.mulBase(scalarToBytes(x));
        assert.equal(toHex(B.encode(B.mulPublic(P, scalarToBytes(k)))), enc(G(x).multiply(k)));
        const expected = G(a).add(G(x).multiply(k));
        const r = B.mulBaseAddPublic(scalarToBytes(a), P, scalarToBytes(k));
        assert.equal(r && toHex(B.encode(r)), expected.is0() ? null : enc(expected));
        assert.equal(
          toHex(B.encode(B.mulBaseAddPublic(scalarToBytes(0n), P, scalarToBytes(k))!)),
          enc(G(x).multiply(k)),
        );
        assert.equal(toHex(B.encode(B.mulBaseAddPublic(scalarToBytes(a), P, scalarToBytes(0n))!)), enc(G(a)));
        assert.equal(B.mulBaseAddPublic(scalarToBytes(0n), P, scalarToBytes(0n)), null);
        // a·G − (a/x)·(x·G)... simplest identity: x·G + (n−1)·(x·G) = 0
        assert.equal(B.mulBaseAddPublic(scalarToBytes(x), P, scalarToBytes(N - 1n)), null);
      }),
      { numRuns: name === 'noble' ? 10 : 40 },
    );
  });

  it('msmPublic: Σ k_i·P_i over compressed points (1 when undefined, zero drops), validating every point', () => {
    const term = fc.tuple(scalarArb, fc.oneof(fc.constant(undefined), fc.constant(0n), smallOrBig));
    fc.assert(
      fc.property(fc.array(term, { minLength: 1, maxLength: 8 }), (terms) => {
        const B = b();
        const points = terms.map(([x]) => G(x).toBytes(true));
        const scalars = terms.map(([, k]) => (k === undefined ? undefined : scalarToBytes(k)));
        let expected = Point.ZERO;
        for (const [x, k] of terms) if (k !== 0n) expected = expected.add(G(x).multiply(k ?? 1n));
        const got = B.msmPublic(points, scalars, 'p');
        assert.equal(got && toHex(B.encode(got)), expected.is0() ? null : enc(expected));
      }),
      { numRuns: name === 'noble' ? 10 : 40 },
    );
    const B = b();
    const P = G(7n).toBytes(true);
    assert.equal(B.msmPublic([P, pointNegate(P)], [undefined, undefined], 'p'), null);
    assert.equal(B.msmPublic([], [], 'p'), null);
    const bad = Uint8Array.of(2, ...xBytes(5n));
    for (const k of [undefined, scalarToBytes(0n), scalarToBytes(3n)]) {
      assert.throws(() => B.msmPublic([P, bad], [undefined, k], 'commitment'), {
        code: 'invalid_point',
        message: /commitment 1/,
      });
      assert.throws(() => B.msmPublic([bad, P], [k, undefined], 'commitment'), {
        code: 'invalid_point',
        message: /commitment 0/,
      });
    }
  });

  it('liftX gives the even-Y point; invalid encodings and zero/out-of-range scalars are refused', () => {
    const B = b();
    for (let i = 0; i < 8; i++) {
      const P = G(BigInt(i * 7919 + 3));
      const x = P.toBytes(true).subarray(1);
      const lifted = B.liftX(x, 'x');
      assert.ok(B.hasEvenY(lifted));
      assert.equal(toHex(B.encode(lifted)), `02${toHex(x)}`);
    }
    for (const x of BAD_X) {
      assert.throws(() => B.liftX(xBytes(x), 'x'), { code: 'invalid_point' });
      assert.throws(() => B.decode(Uint8Array.of(2, ...xBytes(x)), 'p'), { code: 'invalid_point' });
    }
    const g = Point.BASE.toBytes(true);
    assert.throws(() => B.decode(Uint8Array.of(4, ...g.subarray(1)), 'p'), { code: 'invalid_point' });
    assert.throws(() => B.decode(Point.BASE.toBytes(false), 'p'), { code: 'invalid_point' });
    assert.throws(() => B.decode(new Uint8Array(33), 'p'), { code: 'invalid_point' });
    assert.throws(() => B.decode(g.subarray(0, 32), 'p'), { code: 'invalid_point' });
    for (const bad of [0n, N, 2n ** 256n - 1n]) {
      const k = xBytes(bad);
      assert.throws(() => B.mulBase(k), { code: 'invalid_scalar' });
      assert.throws(() => B.mulPublic(B.decode(g, 'g'), k), { code: 'invalid_scalar' });
      assert.throws(() => B.ecdh(k, g.subarray(1)), CryptoError);
    }
    assert.throws(() => B.mulBase(new Uint8Array(31)), { code: 'invalid_scalar' });
  });

  it('error messages name the field, never the value', () => {
    const B = b();
    const x = xBytes(5n);
    try {
      B.decode(Uint8Array.of(2, ...x), 'commitments[3]');
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(e instanceof CryptoError);
      assert.match(e.message, /commitments\[3\]/);
      assert.ok(!e.message.includes(toHex(x)));
    }
  });

  it('ECDH is x(d·lift_x(peer)), as noble computes it, whatever the parities', () => {
    fc.assert(
      fc.property(scalarArb, scalarArb, (d, e) => {
        const B = b();
        const peer = G(e).toBytes(true).subarray(1);
        const expected = secp256k1.getSharedSecret(scalarToBytes(d), Uint8Array.of(2, ...peer)).subarray(1);
        assert.equal(toHex(B.ecdh(scalarToBytes(d), peer)), toHex(expected));
        // Symmetric under x-only keys: d·lift(x(eG)) and e·lift(x(dG)) share their x.
        const mine = G(d).toBytes(true).subarray(1);
        assert.equal(toHex(B.ecdh(scalarToBytes(e), mine)), toHex(expected));
      }),
      { numRuns: name === 'noble' ? 10 : 30 },
    );
    assert.throws(() => b().ecdh(scalarToBytes(3n), xBytes(5n)), { code: 'invalid_point' });
  });

  it('BIP-340 signatures equal noble’s for the same aux randomness; verification agrees with noble and libsecp256k1', () => {
    fc.assert(
      fc.property(
        scalarArb,
        bytes32,
        bytes32,
        fc.uint8Array({ maxLength: 80 }),
        fc.nat(63),
        (d, aux, m32, mAny, flip) => {
          const B = b();
          const sk = scalarToBytes(d);
          for (const msg of [m32, mAny]) {
            const sig = B.schnorrSign(msg, sk, aux);
            assert.equal(toHex(sig), toHex(schnorr.sign(msg, sk, aux)));
            // With the caller's copy of the public key: the same signature.
            const point = G(d).toBytes(true);
            assert.equal(toHex(B.schnorrSign(msg, sk, aux, point)), toHex(sig));
            // With a wrong one (the other parity): a throw where the backend uses it, and never
            // a signature that is not under the secret's own key.
            const wrong = Uint8Array.of(point[0]! ^ 1, ...point.subarray(1));
            if (name === 'native') {
              assert.throws(() => B.schnorrSign(msg, sk, aux, wrong), { code: 'invalid_signature' });
            } else {
              try {
                assert.equal(toHex(B.schnorrSign(msg, sk, aux, wrong)), toHex(sig));
              } catch (e) {
                assert.equal((e as { code?: string }).code, 'invalid_signature');
              }
            }
            const pub = schnorr.getPublicKey(sk);
            assert.ok(B.schnorrVerify(sig, msg, pub));
            if (msg.length === 32) assert.ok(ecc.verifySchnorr(msg, pub, sig));
            const bad = Uint8Array.from(sig);
            bad[flip]! ^= 1;
            assert.equal(B.schnorrVerify(bad, msg, pub), schnorr.verify(bad, msg, pub));
            assert.equal(B.schnorrVerify(sig, Uint8Array.of(...msg, 0), pub), false);
          }
        },
      ),
      { numRuns: name === 'noble' ? 8 : 30 },
    );
  });

  it('BIP-340 verification refuses malformed input without throwing', () => {
    const B = b();
    const sk = scalarToBytes(12345n);
    const msg = new Uint8Array(32).fill(7);
    const pub = schnorr.getPublicKey(sk);
    const sig = B.schnorrSign(msg, sk, new Uint8Array(32));
    const withS = (s: bigint) => Uint8Array.of(...sig.subarray(0, 32), ...xBytes(s));
    const withR = (r: bigint) => Uint8Array.of(...xBytes(r), ...sig.subarray(32));
    for (const [label, s, m, p] of [
      ['s = n', withS(N), msg, pub],
      ['s = 2^256 - 1', withS(2n ** 256n - 1n), msg, pub],
      ['r = p', withR(2n ** 256n - 2n ** 32n - 977n), msg, pub],
      ['r off the curve', withR(5n), msg, pub],
      ['key off the curve', sig, msg, xBytes(5n)],
      ['key >= p', sig, msg, xBytes(2n ** 256n - 1n)],
      ['short signature', sig.subarray(0, 63), msg, pub],
      ['short key', sig, msg, pub.subarray(0, 31)],
    ] as const) {
      assert.equal(B.schnorrVerify(s, m, p), false, label);
    }
    assert.throws(() => B.schnorrSign(msg, sk, new Uint8Array(31)));
    assert.throws(() => B.schnorrSign(msg, new Uint8Array(32), new Uint8Array(32)), {
      code: 'invalid_scalar',
    });
  });

  it('group.ts helpers for callers outside src/crypto', () => {
    const a = pointFromScalar(scalarToBytes(11n));
    const c = pointFromScalar(scalarToBytes(13n));
    assert.equal(toHex(a), enc(G(11n)));
    assert.equal(toHex(pointAdd(a, c)), enc(G(24n)));
    assert.equal(toHex(pointMulPublic(a, 3n)), enc(G(33n)));
    assert.equal(toHex(pointMulPublic(a, scalarToBytes(3n))), enc(G(33n)));
    assert.equal(toHex(pointNegate(a)), enc(G(11n).negate()));
    assert.throws(() => pointAdd(a, pointNegate(a)), { code: 'invalid_point' });
  });
});
