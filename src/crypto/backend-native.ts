/**
 * `native` backend: libsecp256k1 through N-API, from the npm package `secp256k1` 5.x.
 *
 * The package's entry point silently falls back to `elliptic` (pure JS) when its binary does
 * not load; this backend never goes through it. It loads the prebuilt addon itself with
 * `node-gyp-build`, as the package's own `bindings.js` does, and refuses anything that is not
 * a native N-API class. It calls the addon's raw methods (return codes, no JS wrappers) and
 * keeps points uncompressed (65 bytes) between operations so that libsecp256k1 parses them
 * without a square root.
 *
 * The bundled libsecp256k1 (2019) has no Schnorr module: BIP-340 is built from the point
 * operations (`backend-bip340.ts`). `a·G + b·P` uses one ECDSA public-key recovery (a single
 * Strauss multi-multiplication): recovering with r = x(P), s = b·r, m = −a·r gives
 * r⁻¹(s·P − m·G) = a·G + b·P. A secret scalar times a point ({@link CurveBackend.mulSecret}) is
 * libsecp256k1's constant-time ECDH with a hash function that returns the point's x‖y.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { BPoint, CurveBackend } from './backend.js';
import { bip340Sign, bip340Verify } from './backend-bip340.js';
import { assertCompressed, assertScalarBytes, invalidPoint, selfTest } from './backend-util.js';
import { CryptoError } from './errors.js';
import { bytesEqual, wipe } from './hex.js';
import * as S from './scalar.js';

/** The raw methods of secp256k1-node's `Secp256k1Addon` (0 = success). */
interface Addon {
  contextRandomize(seed: Uint8Array | null): number;
  publicKeyCreate(out: Uint8Array, seckey: Uint8Array): number;
  publicKeyConvert(out: Uint8Array, pubkey: Uint8Array): number;
  publicKeyNegate(out: Uint8Array, pubkey: Uint8Array): number;
  publicKeyCombine(out: Uint8Array, pubkeys: Uint8Array[]): number;
  publicKeyTweakMul(out: Uint8Array, pubkey: Uint8Array, tweak: Uint8Array): number;
  ecdsaRecover(out: Uint8Array, sig: Uint8Array, recid: number, msg32: Uint8Array): number;
  ecdh(
    out: Uint8Array,
    pubkey: Uint8Array,
    seckey: Uint8Array,
    data: undefined,
    /** Called with the affine x and y of the product; returns the `out.length` output bytes. */
    hashfn: (x: Uint8Array, y: Uint8Array) => Uint8Array,
    xbuf: Uint8Array,
    ybuf: Uint8Array,
  ): number;
}

type P65 = Uint8Array & BPoint;

function loadAddon(): { addon: Addon; version: string } {
  const require = createRequire(import.meta.url);
  let dir: string;
  let version: string;
  try {
    const pkgPath = require.resolve('secp256k1/package.json');
    dir = dirname(pkgPath);
    version = String((require(pkgPath) as { version?: unknown }).version);
  } catch {
    throw new Error('package secp256k1 is not installed');
  }
  if (!/^5\./.test(version)) throw new Error(`secp256k1 ${version} found, 5.x expected`);
  let mod: { Secp256k1?: unknown };
  try {
    const gypBuild = require(require.resolve('node-gyp-build', { paths: [dir] })) as (d: string) => unknown;
    mod = gypBuild(dir) as { Secp256k1?: unknown };
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`no loadable libsecp256k1 binary in secp256k1 ${version} (${msg})`);
  }
  const Ctor = mod?.Secp256k1;
  // A real N-API class, not secp256k1's `elliptic` fallback (which this loader never reaches).
  if (typeof Ctor !== 'function' || !Function.prototype.toString.call(Ctor).includes('[native code]')) {
    throw new Error('secp256k1 binary is not a native addon (refusing the elliptic fallback)');
  }
  return { addon: new (Ctor as new () => Addon)(), version };
}

/** Loads the native backend or throws an Error saying why it cannot. */
export function loadNative(): CurveBackend {
  const { addon: ctx, version } = loadAddon();
  // Blind the constant-time base multiplication with a fresh random value (DESIGN §10).
  const seed = randomBytes(32);
  const randomized = ctx.contextRandomize(seed) === 0;
  wipe(seed);
  if (!randomized) throw new Error('libsecp256k1 context randomization failed');

  const out65 = () => new Uint8Array(65) as P65;
  const decode = (c: Uint8Array, what: string): P65 => {
    assertCompressed(c, what);
    const out = out65();
    if (ctx.publicKeyConvert(out, c) !== 0) throw invalidPoint(what);
    return out;
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
    const out = out65();
    if (ctx.publicKeyCreate(out, k) !== 0) throw new CryptoError('invalid_scalar', 'scalar out of range');
    return out;
  };
  const mulPublic = (p: BPoint, k: Uint8Array): P65 => {
    assertScalarBytes(k, 'scalar');
    const out = out65();
    const rc = ctx.publicKeyTweakMul(out, p as P65, k);
    if (rc === 2) throw new CryptoError('invalid_scalar', 'scalar out of range');
    if (rc !== 0) throw invalidPoint('point');
    return out;
  };
  const sum = (points: readonly BPoint[]): P65 | null => {
    if (points.length === 0) return null;
    if (points.length === 1) return points[0] as P65;
    const out = out65();
    const rc = ctx.publicKeyCombine(out, points as P65[]);
    if (rc === 2) return null; // the identity
    if (rc !== 0) throw invalidPoint('point');
    return out;
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
    const P = p as P65;
    const r = S.fromBytes(P.subarray(1, 33));
    if (r >= S.N) return sum([mulBase(a), mulPublic(p, b)]); // x(P) >= n: probability ~2^-128
    const sig = new Uint8Array(64);
    sig.set(P.subarray(1, 33), 0);
    sig.set(S.toBytes(S.mul(bv, r)), 32);
    const out = out65();
    const rc = ctx.ecdsaRecover(out, sig, P[64]! & 1, S.toBytes(S.neg(S.mul(av, r))));
    return rc === 0 ? out : null;
  };
  const msmPublic = (
    points: readonly Uint8Array[],
    scalars: readonly (Uint8Array | undefined)[],
    what: string,
  ): P65 | null => {
    if (points.length !== scalars.length) throw new RangeError('msm: points and scalars differ in length');
    // libsecp256k1 parses (and so validates) compressed inputs itself: no separate decoding.
    const terms: Uint8Array[] = [];
    for (const [i, p] of points.entries()) {
      assertCompressed(p, `${what} ${i}`);
      const k = scalars[i];
      if (k === undefined) {
        terms.push(p);
        continue;
      }
      if (S.parse(k, 'scalar', false) === 0n) {
        decode(p, `${what} ${i}`); // dropped, but it must still be a point
        continue;
      }
      const out = out65();
      if (ctx.publicKeyTweakMul(out, p, k) !== 0) throw invalidPoint(`${what} ${i}`);
      terms.push(out);
    }
    if (terms.length === 0) return null;
    const out = out65();
    const rc = terms.length === 1 ? ctx.publicKeyConvert(out, terms[0]!) : ctx.publicKeyCombine(out, terms);
    if (rc === 0) return out;
    if (rc === 2 && terms.length > 1) return null; // the identity
    // Name the invalid point.
    for (const [i, p] of points.entries()) if (scalars[i] === undefined) decode(p, `${what} ${i}`);
    throw invalidPoint(what);
  };
  const copyX = (x: Uint8Array) => x;
  // libsecp256k1 hands its ECDH hash function the affine x and y of d·P: returning x‖y gives
  // the whole point of a constant-time variable-base multiplication (secp256k1_ecmult_const).
  const xy = (x: Uint8Array, y: Uint8Array) => {
    const o = new Uint8Array(64);
    o.set(x, 0);
    o.set(y, 32);
    return o;
  };
  const mulSecret = (p: BPoint, k: Uint8Array): P65 => {
    assertScalarBytes(k, 'scalar');
    const raw = new Uint8Array(64);
    const xb = new Uint8Array(32);
    const yb = new Uint8Array(32);
    const rc = ctx.ecdh(raw, p as P65, k, undefined, xy, xb, yb);
    wipe(xb, yb);
    if (rc === 1) throw invalidPoint('point');
    if (rc !== 0) throw new CryptoError('invalid_scalar', 'scalar out of range');
    const out = out65();
    out[0] = 4;
    out.set(raw, 1);
    wipe(raw);
    return out;
  };
  const ops: CurveBackend = {
    name: 'native',
    description: `libsecp256k1 (npm secp256k1 ${version}, N-API), context randomized`,
    decode,
    liftX,
    encode,
    hasEvenY: (p) => ((p as P65)[64]! & 1) === 0,
    equals: (a, b) => bytesEqual(a as P65, b as P65),
    negate: (p) => {
      const out = out65();
      if (ctx.publicKeyNegate(out, p as P65) !== 0) throw invalidPoint('point');
      return out;
    },
    add: (a, b) => sum([a, b]),
    sum,
    mulBase,
    mulPublic,
    mulBaseAddPublic,
    msmPublic,
    ecdh(secret, peerX) {
      assertScalarBytes(secret, 'secret key');
      if (!(peerX instanceof Uint8Array) || peerX.length !== 32) {
        throw new CryptoError('invalid_point', 'peer key: expected a 32-byte x-only key');
      }
      const pub = new Uint8Array(33);
      pub[0] = 2;
      pub.set(peerX, 1);
      const out = new Uint8Array(32);
      const xb = new Uint8Array(32);
      const yb = new Uint8Array(32);
      const rc = ctx.ecdh(out, pub, secret, undefined, copyX, xb, yb);
      wipe(xb, yb);
      if (rc === 1) throw invalidPoint('peer key');
      if (rc !== 0) throw new CryptoError('invalid_scalar', 'secret key: scalar out of range');
      return out;
    },
    mulSecret,
    schnorrSign: (msg, secret, aux, publicKey) => bip340Sign(ops, msg, secret, aux, publicKey),
    schnorrVerify: (sig, msg, pub) => bip340Verify(ops, sig, msg, pub),
  };
  selfTest(ops);
  return ops;
}
