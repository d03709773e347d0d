/**
 * `wasm` backend: libsecp256k1 compiled to WebAssembly (npm `tiny-secp256k1` 2.x). Points stay
 * uncompressed (65 bytes) between operations. BIP-340 uses libsecp256k1's own Schnorr module
 * for 32-byte messages (the generic construction otherwise). tiny-secp256k1 has no ECDH and its
 * `pointMultiply` is variable time, so ECDH with a secret key goes to node:crypto (OpenSSL's
 * constant-time ladder) instead.
 *
 * A secret scalar times a point as a whole point ({@link CurveBackend.mulSecret}) has no
 * constant-time primitive here either: node:crypto's ECDH gives x(k·P) only. The two candidates
 * are ±C, C = lift_x(x(k·P)); the Y is told apart by a second constant-time ECDH with k+1:
 * x((k+1)·P) = x(k·P + P) equals x(C + P) when k·P = C and x(−C + P) when k·P = −C (the two
 * differ: C + P = ±(P − C) would need 2C or 2P to be the identity). Both candidate sums are
 * always computed and compared, with the variable-time point addition, on points that are
 * functions of the result only. Rejected alternative: splitting k = (k − r) + r over two
 * variable-time multiplications with a fresh random r. Each half alone is uniform, but the
 * same identity key is split afresh on every call, so whatever the wNAF timing leaks about the
 * halves accumulates over many calls; OpenSSL's ladder is meant to leak nothing. The price is
 * two node:crypto ECDH computations (each also computes k·G in setPrivateKey): about 3 ms, on
 * the rare path of a complaint.
 */
import { createECDH } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BPoint, CurveBackend } from './backend.js';
import { bip340Sign, bip340Verify } from './backend-bip340.js';
import { assertCompressed, assertScalarBytes, invalidPoint, selfTest } from './backend-util.js';
import { CryptoError } from './errors.js';
import { bytesEqual, wipe } from './hex.js';
import * as S from './scalar.js';

interface Tiny {
  __initializeContext(): void;
  pointCompress(p: Uint8Array, compressed?: boolean): Uint8Array;
  pointFromScalar(d: Uint8Array, compressed?: boolean): Uint8Array | null;
  pointMultiply(p: Uint8Array, tweak: Uint8Array, compressed?: boolean): Uint8Array | null;
  pointAdd(a: Uint8Array, b: Uint8Array, compressed?: boolean): Uint8Array | null;
  signSchnorr(h: Uint8Array, d: Uint8Array, e?: Uint8Array): Uint8Array;
  verifySchnorr(h: Uint8Array, q: Uint8Array, sig: Uint8Array): boolean;
}

type P65 = Uint8Array & BPoint;

/** Loads the wasm backend or throws an Error saying why it cannot. */
export function loadWasm(): CurveBackend {
  const require = createRequire(import.meta.url);
  let tiny: Tiny;
  let version: string;
  try {
    // (the package's exports map hides package.json: read it beside the resolved entry point)
    const main = require.resolve('tiny-secp256k1');
    const pkg = join(
      main.slice(0, main.lastIndexOf('tiny-secp256k1') + 'tiny-secp256k1'.length),
      'package.json',
    );
    version = String((JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version);
  } catch {
    version = '?';
  }
  try {
    tiny = require('tiny-secp256k1') as Tiny;
  } catch (e) {
    throw new Error(`tiny-secp256k1 does not load (${e instanceof Error ? e.message.split('\n')[0] : e})`);
  }
  // Creates the library's context and randomizes it with 32 bytes from the OS CSPRNG.
  tiny.__initializeContext();

  const decode = (c: Uint8Array, what: string): P65 => {
    assertCompressed(c, what);
    try {
      return tiny.pointCompress(c, false) as P65;
    } catch {
      throw invalidPoint(what);
    }
  };
  const encode = (p: BPoint): Uint8Array => {
    const q = p as P65;
    const out = new Uint8Array(33);
    out[0] = 2 | (q[64]! & 1);
    out.set(q.subarray(1, 33), 1);
    return out;
  };
  const mulBase = (k: Uint8Array): P65 => {
    assertScalarBytes(k, 'scalar');
    let p: Uint8Array | null = null;
    try {
      p = tiny.pointFromScalar(k, false);
    } catch {
      // out of range
    }
    if (!p) throw new CryptoError('invalid_scalar', 'scalar out of range');
    return p as P65;
  };
  const mulPublic = (p: BPoint, k: Uint8Array): P65 => {
    assertScalarBytes(k, 'scalar');
    let q: Uint8Array | null = null;
    try {
      q = tiny.pointMultiply(p as P65, k, false);
    } catch {
      // out of range
    }
    if (!q) throw new CryptoError('invalid_scalar', 'scalar out of range');
    return q as P65;
  };
  const add = (a: BPoint, b: BPoint): P65 | null => tiny.pointAdd(a as P65, b as P65, false) as P65 | null;
  const sum = (points: readonly BPoint[]): P65 | null => {
    let acc: P65 | null = null;
    for (const p of points) acc = acc === null ? (p as P65) : add(acc, p);
    // (an intermediate identity restarts the sum from the next point)
    return acc;
  };
  const liftX = (x: Uint8Array, what: string): P65 => {
    if (!(x instanceof Uint8Array) || x.length !== 32) {
      throw new CryptoError('invalid_point', `${what}: expected a 32-byte x-only key`);
    }
    const c = new Uint8Array(33);
    c[0] = 2;
    c.set(x, 1);
    return decode(c, what);
  };
  const mulBaseAddPublic = (a: Uint8Array, p: BPoint, b: Uint8Array): P65 | null => {
    const av = S.parse(a, 'scalar', false);
    const bv = S.parse(b, 'scalar', false);
    if (bv === 0n) return av === 0n ? null : mulBase(a);
    if (av === 0n) return mulPublic(p, b);
    return add(mulBase(a), mulPublic(p, b));
  };
  const msmPublic = (
    points: readonly Uint8Array[],
    scalars: readonly (Uint8Array | undefined)[],
    what: string,
  ): P65 | null => {
    if (points.length !== scalars.length) throw new RangeError('msm: points and scalars differ in length');
    // (Measured: decoding first and multiplying uncompressed points is faster here than handing
    // tiny-secp256k1 the compressed encodings.)
    const terms: P65[] = [];
    for (const [i, p] of points.entries()) {
      const P = decode(p, `${what} ${i}`);
      const k = scalars[i];
      if (k === undefined) terms.push(P);
      else if (S.parse(k, 'scalar', false) !== 0n) terms.push(mulPublic(P, k));
    }
    return sum(terms);
  };
  // −P has the same x and the other Y: decompress with the other parity.
  const negate = (p: BPoint): P65 => {
    const c = encode(p);
    c[0]! ^= 1;
    return decode(c, 'point');
  };
  /** x(k·P) by node:crypto (OpenSSL's constant-time ladder); null for the identity. */
  const opensslX = (k: Uint8Array, p: P65): Uint8Array | null => {
    const e = createECDH('secp256k1');
    e.setPrivateKey(k);
    try {
      return new Uint8Array(e.computeSecret(p));
    } catch {
      return null;
    }
  };
  const mulSecret = (p: BPoint, k: Uint8Array): P65 => {
    assertScalarBytes(k, 'scalar');
    const kv = S.parse(k, 'scalar', true);
    const P = p as P65;
    if (kv === S.N - 1n) return negate(P); // (k+1)·P would be the identity (probability 2^-256)
    const k1 = S.toBytes(kv + 1n);
    const x0 = opensslX(k, P);
    const x1 = opensslX(k1, P);
    wipe(k1);
    if (!x0 || !x1) throw invalidPoint('point'); // unreachable: 0 < k, k+1 < n and P is a point
    const C = liftX(x0, 'k·P');
    const negC = negate(C);
    const plus = add(C, P);
    const minus = add(negC, P);
    const isC = plus !== null && bytesEqual(plus.subarray(1, 33), x1);
    const isNegC = minus !== null && bytesEqual(minus.subarray(1, 33), x1);
    if (isC === isNegC) throw new CryptoError('invalid_point', 'k·P: inconsistent Y (node:crypto)');
    return isC ? C : negC;
  };
  const ops: CurveBackend = {
    name: 'wasm',
    description: `libsecp256k1 (npm tiny-secp256k1 ${version}, WebAssembly), context randomized; ECDH and secret·point: node:crypto`,
    decode,
    liftX,
    encode,
    hasEvenY: (p) => ((p as P65)[64]! & 1) === 0,
    equals: (a, b) => bytesEqual(a as P65, b as P65),
    negate,
    add,
    sum,
    mulBase,
    mulPublic,
    mulBaseAddPublic,
    msmPublic,
    mulSecret,
    ecdh(secret, peerX) {
      assertScalarBytes(secret, 'secret key');
      S.parse(secret, 'secret key', true);
      if (!(peerX instanceof Uint8Array) || peerX.length !== 32) {
        throw new CryptoError('invalid_point', 'peer key: expected a 32-byte x-only key');
      }
      const pub = Buffer.alloc(33);
      pub[0] = 2;
      pub.set(peerX, 1);
      const e = createECDH('secp256k1');
      e.setPrivateKey(secret);
      try {
        return new Uint8Array(e.computeSecret(pub));
      } catch {
        throw invalidPoint('peer key');
      }
    },
    schnorrSign(msg, secret, aux, publicKey) {
      if (msg.length !== 32) return bip340Sign(ops, msg, secret, aux, publicKey);
      S.parse(secret, 'secret key', true);
      if (aux.length !== 32) throw new CryptoError('invalid_encoding', 'aux randomness: expected 32 bytes');
      return tiny.signSchnorr(msg, secret, aux);
    },
    schnorrVerify(sig, msg, pub) {
      if (msg.length !== 32) return bip340Verify(ops, sig, msg, pub);
      try {
        return sig.length === 64 && pub.length === 32 && tiny.verifySchnorr(msg, pub, sig);
      } catch {
        return false; // x not on the curve, r or s out of range
      }
    },
  };
  selfTest(ops); // (also finds a node:crypto without secp256k1 ECDH now, not at the first box)
  return ops;
}
