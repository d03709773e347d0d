/**
 * FROST DKG (Pedersen DKG with proofs of knowledge, as frost-rs and noble implement it).
 * Round 1 broadcasts commitments and a proof of knowledge; round 2 sends each other member
 * a secret share (the caller encrypts it to the receiver); round 3 checks every received
 * share against its sender's commitments and derives the key package.
 *
 * The Taproot suite tweaks DKG output with the empty merkle root (BIP-86), like ZF's
 * frost-secp256k1-tr; the untweaked group key is recorded as the key's internal key.
 *
 * Round 1 draws its randomness from the OS CSPRNG ({@link dkgRound1}), or — for keys that must
 * regenerate after a total loss (DESIGN §14, per-passphrase addresses) — from a 32-byte secret
 * seed the caller derived (an HMAC inside the signer's HSM): {@link dkgRound1Deterministic}.
 * Same seed, same round-1 package, hence the same key when every member uses its own same seed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { type BPoint, cryptoBackend } from './backend.js';
import { assertThreshold } from './dealer.js';
import { CryptoError } from './errors.js';
import { polyEval, proveKnowledge, secretPolynomial, verifyKnowledge, vssEval, vssVerify } from './frost.js';
import { lengthPrefixed, sha256, u32be } from './hash.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import { type Identifier, sortedUniqueIds } from './identifier.js';
import * as S from './scalar.js';
import { tweakKeyPackage } from './tweak.js';
import type { DkgRound1Package, DkgRound2Package, KeyPackage } from './types.js';

/** Secret DKG state of one member between rounds. Memory only. */
export interface DkgSecretState {
  identifier: Identifier;
  threshold: number;
  n: number;
  /** Secret polynomial coefficients (a_0 first) until round 3 or {@link dkgWipe}. */
  coefficients: bigint[];
  /** This member's VSS commitment (compressed points). */
  commitment: Uint8Array[];
  /** Digest of the round-1 packages round 2 accepted; round 3 must see the same ones. */
  round1Digest?: Uint8Array;
}

const defaultRng = (len = 32) => new Uint8Array(randomBytes(len));

export function dkgRound1(
  identifier: Identifier,
  threshold: number,
  n: number,
  rng: (len?: number) => Uint8Array = defaultRng,
): { package: DkgRound1Package; secret: DkgSecretState } {
  return round1With(identifier, threshold, n, rng, () => rng);
}

/** Length of the secret seed of {@link dkgRound1Deterministic}. */
export const DKG_SEED_BYTES = 32;
const COEFFICIENTS_TAG = 'floe/dkg/deterministic/coefficients/v1';
const PROOF_NONCE_TAG = 'floe/dkg/deterministic/proof-nonce/v1';

/**
 * Round 1 with every random value drawn from `seed` (32 secret bytes, e.g. an HMAC computed in
 * the signer's HSM over the key group and a passphrase): the same seed gives the same
 * coefficients, commitment and proof, byte for byte.
 *
 * - Coefficients: a stream of HMAC-SHA256(seed, tag ‖ counter) blocks read as
 *   {@link dkgRound1} reads its rng (48 bytes per coefficient, a_0 first).
 * - Proof-of-knowledge nonce: from its own stream, keyed by the seed and bound to the whole
 *   statement it proves (identifier and φ₀). A deterministic Schnorr nonce is safe only when
 *   every change of the challenge changes the nonce; the challenge is H(id ‖ φ₀ ‖ R), so it is.
 *
 * The key is exactly as secret as the seed: whoever can compute every member's seed can compute
 * the key. Callers must bind into the seed everything that may differ between two uses (the
 * member's identifier, the group, the threshold), or two different groups would share one
 * polynomial and its shares.
 */
export function dkgRound1Deterministic(
  identifier: Identifier,
  threshold: number,
  n: number,
  seed: Uint8Array,
): { package: DkgRound1Package; secret: DkgSecretState } {
  if (!(seed instanceof Uint8Array) || seed.length !== DKG_SEED_BYTES) {
    throw new CryptoError('invalid_encoding', `DKG seed: expected ${DKG_SEED_BYTES} bytes`);
  }
  return round1With(identifier, threshold, n, seededStream(seed, COEFFICIENTS_TAG, []), (phi0) =>
    seededStream(seed, PROOF_NONCE_TAG, [u32be(identifier), phi0]),
  );
}

/**
 * An rng that returns successive bytes of HMAC-SHA256(seed, lengthPrefixed(tag, fields) ‖ u32(i))
 * for i = 0, 1, …: a deterministic stream, different for every tag and fields.
 */
function seededStream(seed: Uint8Array, tag: string, fields: Uint8Array[]): (len?: number) => Uint8Array {
  const prefix = lengthPrefixed(tag, fields);
  let counter = 0;
  let buffered = new Uint8Array(0);
  return (len = 32) => {
    while (buffered.length < len) {
      const block = createHmac('sha256', seed).update(prefix).update(u32be(counter++)).digest();
      const next = new Uint8Array(buffered.length + block.length);
      next.set(buffered);
      next.set(block, buffered.length);
      wipe(buffered, block);
      buffered = next;
    }
    const out = buffered.slice(0, len);
    const rest = buffered.slice(len);
    wipe(buffered);
    buffered = rest;
    return out;
  };
}

/** Round 1 over an rng for the coefficients and one (given φ₀) for the proof nonce. */
function round1With(
  identifier: Identifier,
  threshold: number,
  n: number,
  coefficientRng: (len?: number) => Uint8Array,
  proofRng: (phi0: Uint8Array) => (len?: number) => Uint8Array,
): { package: DkgRound1Package; secret: DkgSecretState } {
  assertThreshold(threshold, n);
  if (!Number.isInteger(identifier) || identifier < 1 || identifier > n) {
    throw new CryptoError('invalid_identifier', 'identifier must be from 1 to n');
  }
  const b = cryptoBackend();
  const poly = secretPolynomial(b, threshold, undefined, coefficientRng);
  const commitment = poly.commitment.map((c) => b.encode(c));
  const proofOfKnowledge = proveKnowledge(
    b,
    BigInt(identifier),
    poly.coefficients[0]!,
    commitment[0]!,
    proofRng(commitment[0]!),
  );
  return {
    package: { identifier, commitment: commitment.map((c) => c.slice()), proofOfKnowledge },
    secret: { identifier, threshold, n, coefficients: poly.coefficients, commitment },
  };
}

/**
 * Check one member's round-1 package on its own: commitment length and points, and the
 * Schnorr proof of knowledge of the constant term (R = z·G − c·φ₀ with
 * c = H_dkg(id ‖ φ₀ ‖ R), R encoded x-only with even Y as the Taproot suite does).
 * Lets a coordinator or a signer name the member whose package is bad.
 */
export function verifyDkgRound1Package(p: DkgRound1Package, threshold: number): void {
  const who = `round-1 package of ${p.identifier}`;
  if (p.commitment.length !== threshold) {
    throw new CryptoError('invalid_package', `${who}: expected ${threshold} commitments`, [p.identifier]);
  }
  const b = cryptoBackend();
  let ok: boolean;
  try {
    for (const [i, c] of p.commitment.entries()) b.decode(c, `commitment ${i}`);
    ok = verifyKnowledge(b, BigInt(p.identifier), p.commitment[0]!, p.proofOfKnowledge);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new CryptoError('invalid_package', `${who}: invalid commitment or proof of knowledge`, [
      p.identifier,
    ]);
  }
}

function round1Digest(others: readonly DkgRound1Package[]): Uint8Array {
  const sorted = [...others].sort((a, b) => a.identifier - b.identifier);
  return sha256(
    concatBytes(
      ...sorted.flatMap((o) => [
        Uint8Array.of(o.identifier, o.commitment.length),
        ...o.commitment,
        o.proofOfKnowledge,
      ]),
    ),
  );
}

/**
 * The other members' round-1 packages: one from each, each with `threshold` commitments, and
 * (with `proofs`) each verified on its own. Round 3 skips the proofs of the very set its round 2
 * verified (the same bytes, by digest).
 */
function checkRound1Set(secret: DkgSecretState, others: readonly DkgRound1Package[], proofs = true): void {
  const ids = sortedUniqueIds(
    others.map((o) => o.identifier),
    'round-1 senders',
  );
  const expected = Array.from({ length: secret.n }, (_, i) => i + 1).filter((i) => i !== secret.identifier);
  if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
    throw new CryptoError(
      'invalid_package',
      'round-1 packages must come from every other member exactly once',
    );
  }
  for (const o of others) {
    if (proofs) verifyDkgRound1Package(o, secret.threshold);
    else if (o.commitment.length !== secret.threshold) {
      throw new CryptoError(
        'invalid_package',
        `round-1 package of ${o.identifier}: expected ${secret.threshold} commitments`,
        [o.identifier],
      );
    }
  }
}

function liveCoefficients(secret: DkgSecretState): bigint[] {
  if (secret.coefficients.length !== secret.threshold) {
    throw new CryptoError('dkg_failed', 'the DKG secret state was already used or wiped');
  }
  return secret.coefficients;
}

/** Round 2: one secret share for every other member. Call again with the same input for the same output. */
export function dkgRound2(secret: DkgSecretState, others: readonly DkgRound1Package[]): DkgRound2Package[] {
  checkRound1Set(secret, others);
  const coefficients = liveCoefficients(secret);
  const digest = round1Digest(others);
  if (secret.round1Digest && !bytesEqual(secret.round1Digest, digest)) {
    throw new CryptoError('invalid_package', 'round-1 packages differ from those of an earlier round 2');
  }
  secret.round1Digest = digest;
  return [...others]
    .sort((a, b) => a.identifier - b.identifier)
    .map((o) => ({
      sender: secret.identifier,
      receiver: o.identifier,
      signingShare: S.toBytes(polyEval(coefficients, BigInt(o.identifier))),
    }));
}

/**
 * Round 3: checks each received share against its sender's commitments (naming the sender
 * on failure), then derives this member's key package (Taproot-tweaked, BIP-86).
 */
export function dkgRound3(
  secret: DkgSecretState,
  others: readonly DkgRound1Package[],
  received: readonly DkgRound2Package[],
): KeyPackage {
  const sameAsRound2 =
    secret.round1Digest !== undefined && bytesEqual(secret.round1Digest, round1Digest(others));
  checkRound1Set(secret, others, !sameAsRound2);
  const coefficients = liveCoefficients(secret);
  if (secret.round1Digest && !sameAsRound2) {
    throw new CryptoError('invalid_package', 'round-1 packages differ from those of round 2');
  }
  const bySender = new Map(received.map((r) => [r.sender, r]));
  if (bySender.size !== received.length || received.length !== others.length) {
    throw new CryptoError(
      'invalid_package',
      'round-2 packages must come from every other member exactly once',
    );
  }
  const b = cryptoBackend();
  const me = BigInt(secret.identifier);
  const decoded = new Map<number, BPoint[]>();
  let total = 0n;
  for (const o of others) {
    const r = bySender.get(o.identifier);
    if (!r)
      throw new CryptoError('invalid_package', `missing round-2 package from ${o.identifier}`, [
        o.identifier,
      ]);
    if (r.receiver !== secret.identifier) {
      throw new CryptoError('invalid_package', `round-2 package from ${o.identifier} is for another member`, [
        o.identifier,
      ]);
    }
    const commitment = o.commitment.map((c, i) => b.decode(c, `commitment ${i}`));
    decoded.set(o.identifier, commitment);
    let share: bigint;
    try {
      share = S.parse(r.signingShare, 'round-2 share', true);
      if (!vssVerify(b, me, r.signingShare, commitment)) throw new Error('vss');
    } catch {
      throw new CryptoError(
        'invalid_share',
        `round-2 share from ${o.identifier} does not match its commitments`,
        [o.identifier],
      );
    }
    total = S.add(total, share);
  }
  const ownCommitment = secret.commitment.map((c, i) => b.decode(c, `own commitment ${i}`));
  decoded.set(secret.identifier, ownCommitment);
  const ownShare = S.toBytes(polyEval(coefficients, me));
  if (!vssVerify(b, me, ownShare, ownCommitment)) {
    wipe(ownShare);
    throw new CryptoError('dkg_failed', 'own share does not match own commitments');
  }
  total = S.add(total, S.fromBytes(ownShare));
  wipe(ownShare);

  // Group commitments: coefficient-wise sums of every member's commitments.
  const merged: BPoint[] = [];
  for (let k = 0; k < secret.threshold; k++) {
    const sum = b.sum([...decoded.values()].map((c) => c[k]!));
    if (!sum) throw new CryptoError('dkg_failed', 'a group commitment is the identity');
    merged.push(sum);
  }
  const verifyingShares = new Map<number, Uint8Array>();
  for (let j = 1; j <= secret.n; j++) {
    const y = vssEval(b, BigInt(j), merged);
    if (!y) throw new CryptoError('dkg_failed', `verifying share of ${j} is the identity`);
    verifyingShares.set(j, b.encode(y));
  }
  if (total === 0n) throw new CryptoError('dkg_failed', 'signing share is zero');
  const signingShare = S.toBytes(total);
  if (!bytesEqual(b.encode(b.mulBase(signingShare)), verifyingShares.get(secret.identifier)!)) {
    wipe(signingShare);
    throw new CryptoError('dkg_failed', 'signing share does not match its verifying share');
  }
  const untweaked: KeyPackage = {
    identifier: secret.identifier,
    signingShare,
    public: {
      threshold: secret.threshold,
      n: secret.n,
      commitments: merged.map((p) => b.encode(p)),
      verifyingShares,
      tweak: { kind: 'none' },
    },
  };
  const key = tweakKeyPackage(untweaked, new Uint8Array(0));
  wipe(signingShare);
  dkgWipe(secret);
  return key;
}

/** Best-effort erasure of the DKG secret state (bigints cannot be overwritten in place). */
export function dkgWipe(secret: DkgSecretState): void {
  secret.coefficients.fill(0n);
  secret.coefficients.length = 0;
}
