/**
 * `noble` backend: `@noble/curves` (pure JS), the reference every other backend is tested
 * against. Its `multiply` is the constant-time path, `multiplyUnsafe` the variable-time one.
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import type { BPoint, CurveBackend } from './backend.js';
import { assertCompressed, assertScalarBytes, invalidPoint, selfTest } from './backend-util.js';
import { CryptoError } from './errors.js';
import * as S from './scalar.js';

const Point = secp256k1.Point;
type NP = InstanceType<typeof Point>;
type BP = NP & BPoint;

/** noble's interleaved-wNAF multi-scalar multiplication (variable time, public scalars). */
const msm = mulAddUnsafe as unknown as (c: typeof Point, points: NP[], scalars: bigint[]) => NP;

const asPoint = (p: NP): BP | null => (p.is0() ? null : (p as BP));

function scalar(k: Uint8Array, nonZero: boolean): bigint {
  assertScalarBytes(k, 'scalar');
  return S.parse(k, 'scalar', nonZero);
}

/** Loads the noble backend (always available). */
export function loadNoble(): CurveBackend {
  const decode = (c: Uint8Array, what: string): BP => {
    assertCompressed(c, what);
    try {
      const p = Point.fromBytes(c);
      p.assertValidity();
      return p as BP;
    } catch {
      throw invalidPoint(what);
    }
  };
  const ops: CurveBackend = {
    name: 'noble',
    description: '@noble/curves (pure JavaScript, reference)',
    decode,
    liftX(x, what) {
      if (!(x instanceof Uint8Array) || x.length !== 32) {
        throw new CryptoError('invalid_point', `${what}: expected a 32-byte x-only key`);
      }
      const c = new Uint8Array(33);
      c[0] = 2;
      c.set(x, 1);
      return decode(c, what);
    },
    encode: (p) => (p as BP).toBytes(true),
    hasEvenY: (p) => (p as BP).toAffine().y % 2n === 0n,
    equals: (a, b) => (a as BP).equals(b as BP),
    negate: (p) => (p as BP).negate() as BP,
    add: (a, b) => asPoint((a as BP).add(b as BP)),
    sum(points) {
      let acc: NP = Point.ZERO;
      for (const p of points) acc = acc.add(p as BP);
      return asPoint(acc);
    },
    mulBase: (k) => Point.BASE.multiply(scalar(k, true)) as BP,
    mulPublic: (p, k) => (p as BP).multiplyUnsafe(scalar(k, true)) as BP,
    mulSecret: (p, k) => (p as BP).multiply(scalar(k, true)) as BP,
    mulBaseAddPublic(a, p, b) {
      const av = scalar(a, false);
      const bv = scalar(b, false);
      const aG = av === 0n ? Point.ZERO : Point.BASE.multiplyUnsafe(av);
      const bP = bv === 0n ? Point.ZERO : (p as BP).multiplyUnsafe(bv);
      return asPoint(aG.add(bP));
    },
    msmPublic(points, scalars, what) {
      if (points.length !== scalars.length) throw new RangeError('msm: points and scalars differ in length');
      const ps = points.map((p, i) => decode(p, `${what} ${i}`));
      const ks = scalars.map((k) => (k === undefined ? 1n : scalar(k, false)));
      return asPoint(msm(Point, ps, ks));
    },
    ecdh(secret, peerX) {
      scalar(secret, true);
      if (!(peerX instanceof Uint8Array) || peerX.length !== 32) {
        throw new CryptoError('invalid_point', 'peer key: expected a 32-byte x-only key');
      }
      const pub = new Uint8Array(33);
      pub[0] = 2;
      pub.set(peerX, 1);
      let shared: Uint8Array;
      try {
        shared = secp256k1.getSharedSecret(secret, pub, true);
      } catch {
        throw invalidPoint('peer key');
      }
      const x = shared.slice(1);
      shared.fill(0);
      return x;
    },
    schnorrSign(msg, secret, aux) {
      scalar(secret, true);
      if (aux.length !== 32) throw new CryptoError('invalid_encoding', 'aux randomness: expected 32 bytes');
      return schnorr.sign(msg, secret, aux);
    },
    schnorrVerify(sig, msg, pub) {
      try {
        return sig.length === 64 && pub.length === 32 && schnorr.verify(sig, msg, pub);
      } catch {
        return false;
      }
    },
  };
  selfTest(ops);
  return ops;
}
