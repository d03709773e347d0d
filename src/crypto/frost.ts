/**
 * FROST(secp256k1, SHA-256) in its Taproot form, FROST-secp256k1-SHA256-TR-v1 (RFC 9591
 * structure, BIP-340 challenge, even-Y handling), written over the backend seam. Byte for byte
 * what ZF's frost-secp256k1-tr and noble's `schnorr_FROST` compute (same rng, same output).
 *
 * This is the protocol core: identifiers are scalars (bigint), so derived and non-consecutive
 * identifiers work here; the typed API (`signing.ts`, `dealer.ts`, `dkg.ts`) numbers members
 * 1..n on top of it.
 *
 * Secrets and the backend (DESIGN §10): nonces, shares and polynomial coefficients reach points
 * only through constant-time base multiplication; the variable-time operations see binding
 * factors, challenges, Lagrange coefficients, identifiers and signature shares, all public.
 */
import type { BPoint, CurveBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { hashToScalar, sha256Parts, utf8 } from './hash.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import * as S from './scalar.js';
import { taggedHash } from './tagged.js';

export const SUITE_NAME = 'FROST-secp256k1-SHA256-TR-v1';

/**
 * A FROST(secp256k1, SHA-256) ciphersuite's hashes (RFC 9591 §6.5) and challenge. Floe signs
 * with the Taproot suite; the plain suite exists so the RFC's own appendix vectors test this code.
 */
export interface Ciphersuite {
  readonly name: string;
  /** Taproot form: BIP-340 challenge, even-Y group key and group commitment, x-only signature. */
  readonly taproot: boolean;
  /** Binding factor. */
  H1(m: Uint8Array): bigint;
  /** Nonce. */
  H3(m: Uint8Array): bigint;
  /** Message. */
  H4(m: Uint8Array): Uint8Array;
  /** Commitment list. */
  H5(m: Uint8Array): Uint8Array;
  /** DKG proof-of-knowledge challenge. */
  HDKG(m: Uint8Array): bigint;
  /** Signature challenge from the compressed R and group key (the TR suite uses their x only). */
  challenge(R: Uint8Array, P: Uint8Array, msg: Uint8Array): bigint;
}

function makeSuite(name: string, taproot: boolean): Ciphersuite {
  const dst = (s: string) => utf8(`${name}${s}`);
  const rho = dst('rho');
  const chal = dst('chal');
  const nonce = dst('nonce');
  const msgPrefix = dst('msg');
  const com = dst('com');
  const dkg = dst('dkg');
  return {
    name,
    taproot,
    H1: (m) => hashToScalar(m, rho),
    H3: (m) => hashToScalar(m, nonce),
    H4: (m) => sha256Parts(msgPrefix, m),
    H5: (m) => sha256Parts(com, m),
    HDKG: (m) => hashToScalar(m, dkg),
    challenge: taproot
      ? (R, P, m) => S.mod(S.fromBytes(taggedHash('BIP0340/challenge', R.subarray(1), P.subarray(1), m)))
      : (R, P, m) => hashToScalar(concatBytes(R, P, m), chal),
  };
}

/** FROST-secp256k1-SHA256-TR-v1, what Floe signs with. */
export const TAPROOT_SUITE = makeSuite(SUITE_NAME, true);
/** FROST-secp256k1-SHA256-v1, RFC 9591 §6.5 (tests only). */
export const PLAIN_SUITE = makeSuite('FROST-secp256k1-SHA256-v1', false);

export type { Rng } from './scalar.js';

/** 33-byte compressed encoding of the even-Y point with the same x. */
export function evenEncoding(compressed: Uint8Array): Uint8Array {
  const out = Uint8Array.from(compressed);
  out[0] = 2;
  return out;
}

/** The other-Y encoding (−P) of a compressed point. */
export function flipEncoding(compressed: Uint8Array): Uint8Array {
  const out = Uint8Array.from(compressed);
  out[0]! ^= 1;
  return out;
}

// ---------- round 1 ----------

/** RFC 9591 nonce_generate: H3(random_bytes(32) || SerializeScalar(secret)). */
export function nonceGenerate(
  secret: Uint8Array,
  rng: (len?: number) => Uint8Array,
  suite: Ciphersuite = TAPROOT_SUITE,
): bigint {
  const r = rng(32);
  if (!(r instanceof Uint8Array) || r.length !== 32)
    throw new CryptoError('invalid_encoding', 'rng: expected 32 bytes');
  const input = concatBytes(r, secret);
  const k = suite.H3(input);
  wipe(r, input);
  if (k === 0n) throw new CryptoError('invalid_scalar', 'nonce is zero');
  return k;
}

export interface RoundOneOutput {
  /** 32-byte secret nonces. */
  hiding: Uint8Array;
  binding: Uint8Array;
  /** Their 33-byte commitments. */
  hidingCommitment: Uint8Array;
  bindingCommitment: Uint8Array;
}

/** Round 1 (commit): two fresh nonces hedged with the share, and their commitments (constant-time base multiplication). */
export function roundOne(
  b: CurveBackend,
  signingShare: Uint8Array,
  rng: (len?: number) => Uint8Array,
  suite: Ciphersuite = TAPROOT_SUITE,
): RoundOneOutput {
  if (signingShare.length !== 32) throw new CryptoError('invalid_scalar', 'signing share: expected 32 bytes');
  const hiding = S.toBytes(nonceGenerate(signingShare, rng, suite));
  const binding = S.toBytes(nonceGenerate(signingShare, rng, suite));
  return {
    hiding,
    binding,
    hidingCommitment: b.encode(b.mulBase(hiding)),
    bindingCommitment: b.encode(b.mulBase(binding)),
  };
}

// ---------- signing context (binding factors, group commitment, challenge) ----------

/** One signer's round-1 commitments: identifier scalar and two compressed points. */
export interface CommitmentEntry {
  id: bigint;
  hiding: Uint8Array;
  binding: Uint8Array;
}

/** Everything round 2, share verification and aggregation derive from the signing package. */
export interface SigningContext {
  /** Identifiers, ascending. */
  ids: bigint[];
  /** The commitments, by position in `ids`. */
  entries: CommitmentEntry[];
  /** Binding factors, by position in `ids`. */
  rho: bigint[];
  /** Group commitment R (as summed, either parity) and its compressed encoding. */
  R: BPoint;
  rEncoded: Uint8Array;
  /** True when R has an even Y, or for the plain suite (which never negates). */
  rEven: boolean;
  /** Challenge c. */
  c: bigint;
  /** The group public key as the suite uses it (TR: 02 || x). */
  groupKey: Uint8Array;
  suite: Ciphersuite;
}

/**
 * Binding factors, group commitment and challenge (RFC 9591 §4.4–4.6; the TR suite binds and
 * challenges with the even-Y group key). `list` must be sorted by identifier, unique. Every
 * commitment is validated as a point (by the multi-scalar multiplication that sums R).
 */
export function signingContext(
  b: CurveBackend,
  groupPublicKey: Uint8Array,
  list: readonly CommitmentEntry[],
  msg: Uint8Array,
  suite: Ciphersuite = TAPROOT_SUITE,
): SigningContext {
  const groupKey = suite.taproot ? evenEncoding(groupPublicKey) : groupPublicKey;
  const ids: bigint[] = [];
  const encoded: Uint8Array[] = [];
  let prev = 0n;
  for (const e of list) {
    if (e.id <= prev)
      throw new CryptoError('invalid_package', 'commitments must be sorted by identifier, unique');
    prev = e.id;
    ids.push(e.id);
    encoded.push(S.toBytes(e.id), e.hiding, e.binding);
  }
  const prefix = concatBytes(groupKey, suite.H4(msg), suite.H5(concatBytes(...encoded)));
  const rho = ids.map((id) => suite.H1(concatBytes(prefix, S.toBytes(id))));
  // R = Σ D_i + Σ ρ_i·E_i (binding factors are public).
  const R = b.msmPublic(
    [...list.map((e) => e.hiding), ...list.map((e) => e.binding)],
    [...list.map(() => undefined), ...rho.map((r) => S.toBytes(r))],
    'signing package commitment',
  );
  if (!R) throw new CryptoError('invalid_package', 'group commitment is the identity');
  const rEncoded = b.encode(R);
  return {
    ids,
    entries: [...list],
    rho,
    R,
    rEncoded,
    rEven: !suite.taproot || rEncoded[0] === 2,
    c: suite.challenge(rEncoded, groupKey, msg),
    groupKey,
    suite,
  };
}

/**
 * Round 2: z_i = d_i + e_i·ρ_i + λ_i·s_i·c, with the nonces negated when R has an odd Y.
 * `share` must already be negated when the group key has an odd Y.
 */
export function signShareCore(
  ctx: SigningContext,
  id: bigint,
  share: bigint,
  hiding: bigint,
  binding: bigint,
): bigint {
  const i = ctx.ids.indexOf(id);
  if (i < 0) throw new CryptoError('invalid_package', 'own identifier is not in the signing package');
  const lambda = S.lagrange(ctx.ids, id);
  const d = ctx.rEven ? hiding : S.neg(hiding);
  const e = ctx.rEven ? binding : S.neg(binding);
  return S.add(S.add(d, S.mul(e, ctx.rho[i]!)), S.mul(S.mul(lambda, share), ctx.c));
}

/**
 * Share verification: z_i·G − (c·λ_i)·Y_i = ±(D_i + ρ_i·E_i), − when R has an odd Y.
 * `verifyingShare` must already be negated when the group key has an odd Y.
 */
export function verifyShareCore(
  b: CurveBackend,
  ctx: SigningContext,
  id: bigint,
  verifyingShare: BPoint,
  z: bigint,
): boolean {
  const i = ctx.ids.indexOf(id);
  if (i < 0) return false;
  const e = ctx.entries[i]!;
  const commShare = b.msmPublic([e.hiding, e.binding], [undefined, S.toBytes(ctx.rho[i]!)], 'commitment');
  const cl = S.mul(ctx.c, S.lagrange(ctx.ids, id));
  const lhs = b.mulBaseAddPublic(S.toBytes(z), verifyingShare, S.toBytes(S.neg(cl)));
  if (!lhs || !commShare) return lhs === commShare;
  const want = b.encode(commShare);
  if (!ctx.rEven) want[0]! ^= 1;
  return bytesEqual(b.encode(lhs), want);
}

/**
 * Aggregate: z = Σ z_i, accepted only if z·G − c·P = R, with P the group key as the suite uses
 * it. For the TR suite that is BIP-340 verification of (x(R), z) under x(P) (R taken with an
 * even Y) and the result is the 64-byte BIP-340 signature; the plain suite gives R || z.
 * Null when the shares do not add up to a valid signature.
 */
export function aggregateCore(
  b: CurveBackend,
  ctx: SigningContext,
  P: BPoint,
  shares: readonly bigint[],
): Uint8Array | null {
  let z = 0n;
  for (const s of shares) z = S.add(z, s);
  const check = b.mulBaseAddPublic(S.toBytes(z), P, S.toBytes(S.neg(ctx.c)));
  if (!check) return null;
  const want = ctx.suite.taproot ? evenEncoding(ctx.rEncoded) : ctx.rEncoded;
  if (!bytesEqual(b.encode(check), want)) return null;
  return concatBytes(ctx.suite.taproot ? ctx.rEncoded.subarray(1) : ctx.rEncoded, S.toBytes(z));
}

// ---------- polynomials and verifiable secret sharing ----------

/** f(x) = Σ a_k x^k mod n (Horner). */
export function polyEval(coefficients: readonly bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let k = coefficients.length - 1; k >= 0; k--) acc = S.add(S.mul(acc, x), coefficients[k]!);
  return acc;
}

/**
 * Σ_k x^k·C_k (RFC 9591 Appendix C.2), by Horner's rule over the points: x is a public
 * identifier (small for Floe's members, so each variable-time multiplication is short). Null
 * for the identity.
 */
export function vssEval(b: CurveBackend, x: bigint, commitments: readonly BPoint[]): BPoint | null {
  const xb = S.toBytes(S.mod(x));
  let acc: BPoint | null = null;
  for (let k = commitments.length - 1; k >= 0; k--) {
    if (acc) acc = b.mulPublic(acc, xb);
    acc = acc ? b.add(acc, commitments[k]!) : commitments[k]!;
  }
  return acc;
}

/** RFC 9591 vss_verify: share·G (constant time) equals Σ_k id^k·C_k. */
export function vssVerify(
  b: CurveBackend,
  id: bigint,
  share: Uint8Array,
  commitments: readonly BPoint[],
): boolean {
  let lhs: BPoint;
  try {
    lhs = b.mulBase(share);
  } catch {
    return false; // zero or out of range
  }
  const rhs = vssEval(b, id, commitments);
  return rhs !== null && b.equals(lhs, rhs);
}

/** A secret polynomial of degree t−1 with constant term `secret` (or a random one) and its commitments. */
export function secretPolynomial(
  b: CurveBackend,
  threshold: number,
  secret: bigint | undefined,
  rng: (len?: number) => Uint8Array,
): { coefficients: bigint[]; commitment: BPoint[] } {
  const coefficients: bigint[] = [secret ?? S.randomScalar(rng)];
  for (let i = 1; i < threshold; i++) coefficients.push(S.randomScalar(rng));
  const commitment = coefficients.map((a) => {
    const ab = S.toBytes(a);
    const p = b.mulBase(ab);
    wipe(ab);
    return p;
  });
  return { coefficients, commitment };
}

// ---------- DKG proof of knowledge ----------

/**
 * Proof of knowledge of a0 for member `id` (Taproot form): k with an even k·G, R = k·G,
 * c = HDKG(id || φ0 || R), proof = x(R) || k + a0·c.
 */
export function proveKnowledge(
  b: CurveBackend,
  id: bigint,
  a0: bigint,
  phi0: Uint8Array,
  rng: (len?: number) => Uint8Array,
): Uint8Array {
  let k = S.randomScalar(rng);
  const kb = S.toBytes(k);
  let R = b.mulBase(kb);
  wipe(kb);
  if (!b.hasEvenY(R)) {
    k = S.neg(k);
    R = b.negate(R);
  }
  const rEnc = b.encode(R);
  const c = TAPROOT_SUITE.HDKG(concatBytes(S.toBytes(id), phi0, rEnc));
  return concatBytes(rEnc.subarray(1), S.toBytes(S.add(k, S.mul(a0, c))));
}

/** Checks a proof of knowledge: R = z·G − c·φ0 with R = lift_x(proof[0..32]). */
export function verifyKnowledge(b: CurveBackend, id: bigint, phi0: Uint8Array, proof: Uint8Array): boolean {
  try {
    if (proof.length !== 64) return false;
    const R = b.liftX(proof.subarray(0, 32), 'proof R');
    const z = S.parse(proof.subarray(32), 'proof z', false);
    const phi = b.decode(phi0, 'commitment 0');
    const c = TAPROOT_SUITE.HDKG(concatBytes(S.toBytes(id), phi0, b.encode(R)));
    const check = b.mulBaseAddPublic(S.toBytes(z), phi, S.toBytes(S.neg(c)));
    return check !== null && b.equals(check, R);
  } catch {
    return false;
  }
}
