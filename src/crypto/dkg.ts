/**
 * FROST DKG (Pedersen DKG with proofs of knowledge, as frost-rs and noble implement it).
 * Round 1 broadcasts commitments and a proof of knowledge; round 2 sends each other member
 * a secret share (the caller encrypts it to the receiver); round 3 checks every received
 * share against its sender's commitments and derives the key package.
 *
 * The Taproot suite tweaks DKG output with the empty merkle root (BIP-86), like ZF's
 * frost-secp256k1-tr; the untweaked group key is recorded as the key's internal key.
 */

import type { DKG_Round1, DKG_Secret } from '@noble/curves/abstract/frost.js';
import { secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { assertThreshold } from './dealer.js';
import { asEngine, fromEnginePublic, SUITE_NAME, suite, toEngineId } from './engine.js';
import { CryptoError } from './errors.js';
import { Fn, Point, parsePoint } from './group.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import { fromEngineId, type Identifier, sortedUniqueIds } from './identifier.js';
import { taprootOutputKey } from './tweak.js';
import type { DkgRound1Package, DkgRound2Package, KeyPackage } from './types.js';

/** Secret DKG state of one member between rounds. Memory only. */
export interface DkgSecretState {
  identifier: Identifier;
  threshold: number;
  n: number;
  /** Engine state (holds the polynomial coefficients until round 3). */
  engine: DKG_Secret;
}

const DKG_DST = new TextEncoder().encode(`${SUITE_NAME}dkg`);

function toEngineRound1(p: DkgRound1Package): DKG_Round1 {
  return asEngine<DKG_Round1>({
    identifier: toEngineId(p.identifier),
    commitment: p.commitment,
    proofOfKnowledge: p.proofOfKnowledge,
  });
}

export function dkgRound1(
  identifier: Identifier,
  threshold: number,
  n: number,
  rng?: (len?: number) => Uint8Array,
): { package: DkgRound1Package; secret: DkgSecretState } {
  assertThreshold(threshold, n);
  if (identifier > n) throw new CryptoError('invalid_identifier', 'identifier must be from 1 to n');
  const r = suite.DKG.round1(toEngineId(identifier), { min: threshold, max: n }, undefined, rng);
  return {
    package: {
      identifier,
      commitment: r.public.commitment.map((c) => Uint8Array.from(c)),
      proofOfKnowledge: Uint8Array.from(r.public.proofOfKnowledge),
    },
    secret: { identifier, threshold, n, engine: r.secret },
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
  try {
    const points = p.commitment.map((c, i) => parsePoint(c, `commitment ${i}`));
    if (p.proofOfKnowledge.length !== 64) throw new Error('length');
    const R = parsePoint(concatBytes(Uint8Array.of(2), p.proofOfKnowledge.subarray(0, 32)), 'R');
    const zBytes = p.proofOfKnowledge.subarray(32);
    const z = Fn.fromBytes(zBytes);
    const phi = points[0]!;
    const c = secp256k1_hasher.hashToScalar(
      concatBytes(Fn.toBytes(BigInt(p.identifier)), phi.toBytes(true), R.toBytes(true)),
      { DST: DKG_DST },
    );
    const check = (z === 0n ? Point.ZERO : Point.BASE.multiplyUnsafe(z)).subtract(phi.multiplyUnsafe(c));
    if (!check.equals(R)) throw new Error('mismatch');
  } catch {
    throw new CryptoError('invalid_package', `${who}: invalid commitment or proof of knowledge`, [
      p.identifier,
    ]);
  }
}

function checkRound1Set(secret: DkgSecretState, others: readonly DkgRound1Package[]): void {
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
  for (const o of others) verifyDkgRound1Package(o, secret.threshold);
}

/** Round 2: one secret share for every other member. Call again with the same input for the same output. */
export function dkgRound2(secret: DkgSecretState, others: readonly DkgRound1Package[]): DkgRound2Package[] {
  checkRound1Set(secret, others);
  let out: Record<string, { identifier: string; signingShare: Uint8Array }>;
  try {
    out = suite.DKG.round2(secret.engine, others.map(toEngineRound1));
  } catch {
    throw new CryptoError('dkg_failed', 'round 2 refused the round-1 packages');
  }
  return Object.entries(out)
    .map(([receiver, p]) => ({
      sender: secret.identifier,
      receiver: fromEngineId(receiver),
      signingShare: Uint8Array.from(p.signingShare),
    }))
    .sort((a, b) => a.receiver - b.receiver);
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
  checkRound1Set(secret, others);
  const bySender = new Map(received.map((r) => [r.sender, r]));
  if (bySender.size !== received.length || received.length !== others.length) {
    throw new CryptoError(
      'invalid_package',
      'round-2 packages must come from every other member exactly once',
    );
  }
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
    try {
      suite.validateSecret(
        { identifier: toEngineId(secret.identifier), signingShare: r.signingShare },
        { signers: { min: secret.threshold, max: secret.n }, commitments: o.commitment, verifyingShares: {} },
      );
    } catch {
      throw new CryptoError(
        'invalid_share',
        `round-2 share from ${o.identifier} does not match its commitments`,
        [o.identifier],
      );
    }
  }
  let key: ReturnType<typeof suite.DKG.round3>;
  try {
    key = suite.DKG.round3(
      secret.engine,
      others.map(toEngineRound1),
      others.map((o) => ({
        identifier: toEngineId(o.identifier),
        signingShare: bySender.get(o.identifier)!.signingShare,
      })),
    );
  } catch {
    throw new CryptoError('dkg_failed', 'round 3 failed');
  }
  // Untweaked group key: the sum of every member's constant-term commitment.
  const own = secret.engine.commitment[0]!;
  const internal = others.reduce(
    (acc, o) => acc.add(parsePoint(o.commitment[0]!, 'commitment')),
    parsePoint(own, 'own'),
  );
  const internalKey = internal.toBytes(true);
  const pub = fromEnginePublic(key.public, { kind: 'taproot', internalKey, merkleRoot: new Uint8Array(0) });
  if (!bytesEqual(taprootOutputKey(internalKey), pub.commitments[0]!)) {
    throw new CryptoError('dkg_failed', 'group key is not the BIP-86 tweak of the internal key');
  }
  const share = Uint8Array.from(key.secret.signingShare);
  wipe(key.secret.signingShare);
  return { identifier: secret.identifier, signingShare: share, public: pub };
}

/** Best-effort erasure of the DKG secret state. */
export function dkgWipe(secret: DkgSecretState): void {
  try {
    suite.DKG.clean(secret.engine);
  } catch {
    // already cleaned
  }
}
