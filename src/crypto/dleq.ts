/**
 * Chaum–Pedersen proof of an honest ECDH point between two identity keys (DESIGN §11:
 * complaints third parties can verify). The prover holds d with Q = d·G = lift_x(its x-only
 * key) (d normalized to the even-Y key, as BIP-340 and the boxes' x-only ECDH use it), and
 * reveals S = d·P for a peer's P = lift_x(peer x-only key) with a proof that
 * log_G(Q) = log_P(S):
 *
 *   k       = int(H_nonce(d XOR H_aux(aux) ‖ Q ‖ P ‖ S ‖ len(ctx) ‖ ctx)) mod n, aux 32 random bytes
 *   A1, A2  = k·G, k·P
 *   c       = int(H_chal(G ‖ Q ‖ P ‖ S ‖ A1 ‖ A2 ‖ len(ctx) ‖ ctx)) mod n
 *   z       = k + c·d mod n
 *   proof   = c ‖ z (64 bytes, 32-byte big-endian scalars)
 *
 * H_x are BIP-340 tagged hashes (tags `floe/dleq-ecdh/v1/{aux,nonce,challenge}`), points are
 * 33-byte compressed, len(ctx) is 4 bytes big-endian. Verification recomputes
 * A1 = z·G − c·Q and A2 = z·P − c·S and checks c. The context (ceremony, key, sender and
 * receiver, see `complaint.ts`) keeps a proof from being presented as another statement.
 *
 * Secrets reach points only through mulBase and mulSecret (constant time); verification uses
 * the public, variable-time operations. The nonce is hedged like BIP-340's: fresh OS
 * randomness, mixed with the secret and the statement, so a bad RNG does not leak d.
 *
 * {@link proveDleq} / {@link verifyDleq} are the same proof for any statement: Q = d·G with d
 * used as given (no even-Y normalisation) and any point P, both 33-byte compressed, under their
 * own tags (`floe/dleq/v1/{aux,nonce,challenge}`), so a proof of one kind never verifies as the
 * other. Threshold ECDH (`threshold-ecdh.ts`) proves each member's s_i·P with them.
 */
import { randomBytes } from 'node:crypto';
import { type BPoint, type CurveBackend, cryptoBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { u32be } from './hash.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import * as S from './scalar.js';
import { taggedHash } from './tagged.js';

export const DLEQ_ECDH_TAG = 'floe/dleq-ecdh/v1';
/** Tag of the generic proof ({@link proveDleq}). */
export const DLEQ_TAG = 'floe/dleq/v1';

interface Tags {
  aux: string;
  nonce: string;
  challenge: string;
}
const tagsOf = (base: string): Tags => ({
  aux: `${base}/aux`,
  nonce: `${base}/nonce`,
  challenge: `${base}/challenge`,
});
const ECDH_TAGS = tagsOf(DLEQ_ECDH_TAG);
const GENERIC_TAGS = tagsOf(DLEQ_TAG);

/** An ECDH point revealed with its proof. */
export interface EcdhProof {
  /** S = d·lift_x(peer) (33-byte compressed), d the prover's even-Y identity key; x(S) is the box ECDH value. */
  shared: Uint8Array;
  /** c ‖ z (64 bytes). */
  proof: Uint8Array;
}

const defaultRng = (len = 32) => new Uint8Array(randomBytes(len));

const G_ENC = Uint8Array.from(
  Buffer.from('0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798', 'hex'),
);

function ctxField(context: Uint8Array): Uint8Array[] {
  if (!(context instanceof Uint8Array)) throw new CryptoError('invalid_encoding', 'context: expected bytes');
  return [u32be(context.length), context];
}

function challenge(
  tags: Tags,
  Q: Uint8Array,
  P: Uint8Array,
  Sh: Uint8Array,
  A1: Uint8Array,
  A2: Uint8Array,
  context: Uint8Array,
): bigint {
  return S.mod(S.fromBytes(taggedHash(tags.challenge, G_ENC, Q, P, Sh, A1, A2, ...ctxField(context))));
}

function assertX(x: Uint8Array, what: string): void {
  if (!(x instanceof Uint8Array) || x.length !== 32) {
    throw new CryptoError('invalid_encoding', `${what}: expected a 32-byte x-only key`);
  }
}

/**
 * Reveal S = d·lift_x(peerXOnly) for the identity secret `secret` (its even-Y form is used,
 * whatever the parity of secret·G) with a proof bound to `context`. `rng(32)` gives the
 * auxiliary randomness (tests inject it for known answers). The proof is verified before it
 * is returned.
 */
export function proveEcdh(
  secret: Uint8Array,
  peerXOnly: Uint8Array,
  context: Uint8Array,
  rng: (len?: number) => Uint8Array = defaultRng,
): EcdhProof {
  assertX(peerXOnly, 'peer key');
  ctxField(context);
  const b = cryptoBackend();
  const d0 = S.parse(secret, 'identity key', true);
  const Qp = b.mulBase(secret);
  const d = b.hasEvenY(Qp) ? d0 : S.neg(d0);
  const Q = b.encode(Qp);
  Q[0] = 2;
  const P = b.liftX(peerXOnly, 'peer key');
  const r = proveCore(b, ECDH_TAGS, d, Q, P, context, rng);
  if (!verifyWith(b, Q.subarray(1), peerXOnly, r.shared, r.proof, context)) {
    throw new CryptoError('invalid_signature', 'DLEQ proof failed its own verification');
  }
  return r;
}

/**
 * The proof itself: S = d·P and c ‖ z for Q = d·G (Q given, 33-byte compressed, as hashed).
 * Secrets reach points through mulBase and mulSecret only.
 */
function proveCore(
  b: CurveBackend,
  tags: Tags,
  d: bigint,
  Q: Uint8Array,
  P: BPoint,
  context: Uint8Array,
  rng: (len?: number) => Uint8Array,
): EcdhProof {
  const pEnc = b.encode(P);
  const dBytes = S.toBytes(d);
  let kBytes: Uint8Array | undefined;
  let t: Uint8Array | undefined;
  try {
    const shared = b.encode(b.mulSecret(P, dBytes));
    const aux = rng(32);
    if (!(aux instanceof Uint8Array) || aux.length !== 32) {
      throw new CryptoError('invalid_encoding', 'rng: expected 32 bytes');
    }
    t = taggedHash(tags.aux, aux);
    for (let i = 0; i < 32; i++) t[i]! ^= dBytes[i]!;
    const k = S.mod(S.fromBytes(taggedHash(tags.nonce, t, Q, pEnc, shared, ...ctxField(context))));
    if (k === 0n) throw new CryptoError('invalid_scalar', 'DLEQ nonce is zero');
    kBytes = S.toBytes(k);
    const A1 = b.encode(b.mulBase(kBytes));
    const A2 = b.encode(b.mulSecret(P, kBytes));
    const c = challenge(tags, Q, pEnc, shared, A1, A2, context);
    const proof = concatBytes(S.toBytes(c), S.toBytes(S.add(k, S.mul(c, d))));
    return { shared, proof };
  } finally {
    wipe(dBytes, kBytes, t);
  }
}

/**
 * Checks that `shared` = d·lift_x(peerXOnly) for the d with d·G = lift_x(proverXOnly), by the
 * proof made under the same `context`. False (never a throw) on any malformed input. For a
 * complaint: the prover is the receiver of the box, the peer its sender.
 */
export function verifyEcdhProof(
  proverXOnly: Uint8Array,
  peerXOnly: Uint8Array,
  shared: Uint8Array,
  proof: Uint8Array,
  context: Uint8Array,
): boolean {
  return verifyWith(cryptoBackend(), proverXOnly, peerXOnly, shared, proof, context);
}

function verifyWith(
  b: CurveBackend,
  proverXOnly: Uint8Array,
  peerXOnly: Uint8Array,
  shared: Uint8Array,
  proof: Uint8Array,
  context: Uint8Array,
): boolean {
  try {
    assertX(proverXOnly, 'prover key');
    assertX(peerXOnly, 'peer key');
    const Q: BPoint = b.liftX(proverXOnly, 'prover key');
    const P: BPoint = b.liftX(peerXOnly, 'peer key');
    return verifyCore(b, ECDH_TAGS, Q, P, shared, proof, context);
  } catch {
    return false;
  }
}

/** The check shared by both kinds: A1 = z·G − c·Q, A2 = z·P − c·S, then c. False on anything malformed. */
function verifyCore(
  b: CurveBackend,
  tags: Tags,
  Q: BPoint,
  P: BPoint,
  shared: Uint8Array,
  proof: Uint8Array,
  context: Uint8Array,
): boolean {
  try {
    if (
      !(proof instanceof Uint8Array) ||
      proof.length !== 64 ||
      !(shared instanceof Uint8Array) ||
      !(context instanceof Uint8Array)
    ) {
      return false;
    }
    b.decode(shared, 'shared point');
    const cBytes = proof.subarray(0, 32);
    const c = S.parse(cBytes, 'proof c', false);
    const z = S.parse(proof.subarray(32), 'proof z', false);
    const zBytes = S.toBytes(z);
    const negC = S.toBytes(S.neg(c));
    const A1 = b.mulBaseAddPublic(zBytes, Q, negC);
    const pEnc = b.encode(P);
    const A2 = b.msmPublic([pEnc, shared], [zBytes, negC], 'DLEQ point');
    if (!A1 || !A2) return false;
    const want = challenge(tags, b.encode(Q), pEnc, shared, b.encode(A1), b.encode(A2), context);
    return bytesEqual(S.toBytes(want), cBytes);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// the generic statement: log_G(Q) = log_P(S) for any Q = d·G and any point P

/**
 * Reveal S = d·P for the secret scalar `secret` (used as it is: Q = d·G, whatever its Y) and
 * the point `point` (33-byte compressed), with a proof that log_G(Q) = log_P(S) bound to
 * `context`. Returns Q as well. The proof is verified before it is returned.
 */
export function proveDleq(
  secret: Uint8Array,
  point: Uint8Array,
  context: Uint8Array,
  rng: (len?: number) => Uint8Array = defaultRng,
): EcdhProof & { publicKey: Uint8Array } {
  ctxField(context);
  const b = cryptoBackend();
  const d = S.parse(secret, 'secret', true);
  const P = decodeCompressed(b, point, 'point');
  const Q = b.encode(b.mulBase(secret));
  const r = proveCore(b, GENERIC_TAGS, d, Q, P, context, rng);
  if (!verifyDleq(Q, point, r.shared, r.proof, context)) {
    throw new CryptoError('invalid_signature', 'DLEQ proof failed its own verification');
  }
  return { ...r, publicKey: Q };
}

/**
 * Checks that log_G(`publicKey`) = log_`point`(`shared`) by `proof` made under the same
 * `context` (all points 33-byte compressed). False (never a throw) on any malformed input.
 */
export function verifyDleq(
  publicKey: Uint8Array,
  point: Uint8Array,
  shared: Uint8Array,
  proof: Uint8Array,
  context: Uint8Array,
): boolean {
  const b = cryptoBackend();
  try {
    const Q = decodeCompressed(b, publicKey, 'public key');
    const P = decodeCompressed(b, point, 'point');
    return verifyCore(b, GENERIC_TAGS, Q, P, shared, proof, context);
  } catch {
    return false;
  }
}

function decodeCompressed(b: CurveBackend, p: Uint8Array, what: string): BPoint {
  if (!(p instanceof Uint8Array) || p.length !== 33) {
    throw new CryptoError('invalid_encoding', `${what}: expected a 33-byte compressed point`);
  }
  return b.decode(p, what);
}
