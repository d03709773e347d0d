/**
 * Share repair (the repairable threshold scheme of ZF frost-core `keys/repairable`, steps 1–3):
 * any t members ("helpers") rebuild the share of a member who lost it, without any of them
 * learning it and without the key being reconstructed.
 *
 *   1. Helper i computes λ_i·s_i, λ_i the Lagrange coefficient of i over the helpers at the lost
 *      identifier ℓ (so Σ_i λ_i·s_i = f(ℓ)), and splits it into t random deltas δ_{i→j}, one per
 *      helper j; δ_{i→j} goes to j (encrypted by the caller).
 *   2. Helper j sums what it received: σ_j = Σ_i δ_{i→j}, and sends σ_j to the lost member.
 *   3. The lost member adds the σ_j: Σ_j σ_j = Σ_i λ_i·s_i = f(ℓ), its share.
 *
 * Floe adds public verifiability so that a bad helper is named, not just a failed repair: each
 * helper also publishes D_{i→j} = δ_{i→j}·G. Anyone checks Σ_j D_{i→j} = λ_i·VS_i
 * ({@link verifyRepairCommitments}); receiver j checks each δ_{i→j} against D_{i→j}
 * ({@link repairStep2}); the lost member checks σ_j·G = Σ_i D_{i→j} ({@link repairStep3}). The D
 * reveal nothing: they are random points whose sums are the public λ_i·VS_i and σ_j·G, and the
 * σ_j·G add up to the public VS_ℓ.
 *
 * Stored keys are Taproot-tweaked (tweak.ts); their shares and verifying shares still lie on one
 * polynomial, so interpolating at ℓ gives exactly the stored (tweaked) share of ℓ.
 */
import { randomBytes } from 'node:crypto';
import { cryptoBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { bytesEqual, wipe } from './hex.js';
import { type Identifier, sortedUniqueIds } from './identifier.js';
import * as S from './scalar.js';
import type { KeyPackage, PublicKeyPackage, RepairDeltas } from './types.js';

export type { RepairDeltas } from './types.js';

const defaultRng = (len = 32) => new Uint8Array(randomBytes(len));

/**
 * Check a repair's helper set: exactly `threshold` distinct members of 1..n, not containing the
 * lost member (itself a member of 1..n). Returns the helpers sorted.
 */
function checkHelpers(
  helpers: readonly Identifier[],
  lost: Identifier,
  threshold: number,
  n: number,
): Identifier[] {
  if (!Number.isInteger(lost) || lost < 1 || lost > n) {
    throw new CryptoError('invalid_identifier', 'the lost identifier must be from 1 to n');
  }
  const sorted = sortedUniqueIds(helpers, 'repair helpers');
  if (sorted.length !== threshold) {
    throw new CryptoError('invalid_package', `a repair needs exactly ${threshold} helpers`);
  }
  if (sorted.some((h) => h > n)) {
    throw new CryptoError('invalid_identifier', 'repair helpers must be from 1 to n');
  }
  if (sorted.includes(lost)) {
    throw new CryptoError('invalid_package', 'the lost member cannot be one of its helpers');
  }
  return sorted;
}

/** λ_helper over `helpers` at `lost`: Σ_i λ_i·f(i) = f(lost). Public. */
function repairLagrange(helpers: readonly Identifier[], helper: Identifier, lost: Identifier): bigint {
  return S.lagrangeAt(
    helpers.map((h) => BigInt(h)),
    BigInt(helper),
    BigInt(lost),
  );
}

/**
 * Step 1, run by each helper: λ_helper·share split into t random non-zero deltas (one per helper,
 * itself included, t−1 drawn from `rng`, the last one the remainder), with their public images.
 * `helpers` are exactly t distinct identifiers including `helper.identifier`, without `lost`.
 */
export function repairStep1(
  helpers: readonly Identifier[],
  helper: KeyPackage,
  lost: Identifier,
  rng: (len?: number) => Uint8Array = defaultRng,
): RepairDeltas {
  const { threshold, n } = helper.public;
  const ids = checkHelpers(helpers, lost, threshold, n);
  if (!ids.includes(helper.identifier)) {
    throw new CryptoError('invalid_package', 'the helper must be one of the helpers');
  }
  const share = S.parse(helper.signingShare, 'signing share', true);
  const part = S.mul(repairLagrange(ids, helper.identifier, lost), share);
  let values: bigint[];
  let last: bigint;
  do {
    values = ids.slice(1).map(() => S.randomScalar(rng));
    last = values.reduce((acc, v) => S.sub(acc, v), part);
  } while (last === 0n); // a zero delta has no public image (probability ≈ 2⁻²⁵⁶)
  values.unshift(last);
  const b = cryptoBackend();
  const deltas = new Map<Identifier, Uint8Array>();
  const commitments = new Map<Identifier, Uint8Array>();
  ids.forEach((j, i) => {
    const delta = S.toBytes(values[i]!);
    deltas.set(j, delta);
    commitments.set(j, b.encode(b.mulBase(delta)));
  });
  values.fill(0n);
  return { helper: helper.identifier, deltas, commitments };
}

/**
 * Public check of one helper's step-1 commitments: one per helper, each a valid point, summing to
 * λ_helper(lost)·VS_helper. Anyone can run it (helpers before step 2, the lost member, the
 * coordinator); invalid_share naming the helper otherwise.
 */
export function verifyRepairCommitments(
  helpers: readonly Identifier[],
  helper: Identifier,
  lost: Identifier,
  pub: PublicKeyPackage,
  commitments: ReadonlyMap<Identifier, Uint8Array>,
): void {
  const ids = checkHelpers(helpers, lost, pub.threshold, pub.n);
  if (!ids.includes(helper))
    throw new CryptoError('invalid_package', 'the helper must be one of the helpers');
  const vs = pub.verifyingShares.get(helper);
  if (!vs) throw new CryptoError('invalid_package', `no verifying share for identifier ${helper}`);
  const bad = () =>
    new CryptoError('invalid_share', `repair commitments of helper ${helper} do not add up to its share`, [
      helper,
    ]);
  if (commitments.size !== ids.length || ids.some((j) => !commitments.has(j))) throw bad();
  const b = cryptoBackend();
  let sum: ReturnType<typeof b.sum>;
  try {
    sum = b.sum(ids.map((j) => b.decode(commitments.get(j)!, `repair commitment for ${j}`)));
  } catch {
    throw bad();
  }
  // λ is public and non-zero (lost is not a helper), so the variable-time product is fine.
  const want = b.mulPublic(
    b.decode(vs, `verifying share of ${helper}`),
    S.toBytes(repairLagrange(ids, helper, lost)),
  );
  if (!sum || !b.equals(sum, want)) throw bad();
}

/**
 * Step 2, run by each helper `receiver`: checks every received delta against its public image
 * (naming the helper that sent a bad one) and returns σ = Σ deltas (32 bytes, secret: sent only
 * encrypted, to the lost member). `received` must hold one delta from every helper, the
 * receiver's own included; the caller checks the commitments with {@link verifyRepairCommitments}.
 */
export function repairStep2(
  receiver: Identifier,
  received: readonly { helper: Identifier; delta: Uint8Array; commitment: Uint8Array }[],
): Uint8Array {
  const ids = sortedUniqueIds(
    received.map((r) => r.helper),
    'repair delta senders',
  );
  if (!ids.includes(receiver)) {
    throw new CryptoError('invalid_package', 'the receiver’s own delta is missing');
  }
  const b = cryptoBackend();
  let sigma = 0n;
  for (const r of received) {
    let ok: boolean;
    try {
      S.parse(r.delta, 'repair delta', true);
      ok = bytesEqual(b.encode(b.mulBase(r.delta)), r.commitment);
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new CryptoError(
        'invalid_share',
        `repair delta from helper ${r.helper} does not match its commitment`,
        [r.helper],
      );
    }
    sigma = S.add(sigma, S.fromBytes(r.delta));
  }
  return S.toBytes(sigma);
}

/**
 * Step 3, run by the lost member: its share is Σ σ_j over the t helpers. With `deltaCommitments`
 * (every helper's step-1 commitments, by helper then receiver) each helper's commitments are
 * checked ({@link verifyRepairCommitments}, culprit that helper) and each σ_j·G must equal
 * Σ_i D_{i→j} (culprit j). The share must match the lost member's verifying share in `pub`.
 */
export function repairStep3(
  lost: Identifier,
  sigmas: readonly { helper: Identifier; sigma: Uint8Array }[],
  pub: PublicKeyPackage,
  deltaCommitments?: ReadonlyMap<Identifier, ReadonlyMap<Identifier, Uint8Array>>,
): KeyPackage {
  const ids = checkHelpers(
    sigmas.map((s) => s.helper),
    lost,
    pub.threshold,
    pub.n,
  );
  const vsLost = pub.verifyingShares.get(lost);
  if (!vsLost) throw new CryptoError('invalid_package', `no verifying share for identifier ${lost}`);
  const b = cryptoBackend();
  if (deltaCommitments) {
    // Every helper whose commitments fail is named, not only the first.
    const bad = ids.filter((i) => {
      const c = deltaCommitments.get(i);
      if (!c) return true;
      try {
        verifyRepairCommitments(ids, i, lost, pub, c);
        return false;
      } catch (e) {
        if (e instanceof CryptoError && e.code === 'invalid_share') return true;
        throw e;
      }
    });
    if (bad.length) {
      throw new CryptoError(
        'invalid_share',
        `repair commitments of helpers ${bad.join(', ')} are invalid`,
        bad,
      );
    }
  }
  let total = 0n;
  const badSigmas: Identifier[] = [];
  for (const s of [...sigmas].sort((x, y) => x.helper - y.helper)) {
    let sigma: bigint;
    try {
      sigma = S.parse(s.sigma, 'repair sigma', false);
    } catch {
      badSigmas.push(s.helper);
      continue;
    }
    if (deltaCommitments) {
      // Every commitment was decoded above; a zero σ matches only an identity sum.
      const want = b.sum(
        ids.map((i) => b.decode(deltaCommitments.get(i)!.get(s.helper)!, 'repair commitment')),
      );
      const got = sigma === 0n ? null : b.mulBase(s.sigma);
      if (want === null ? got !== null : got === null || !b.equals(got, want)) {
        badSigmas.push(s.helper);
        continue;
      }
    }
    total = S.add(total, sigma);
  }
  if (badSigmas.length) {
    throw new CryptoError(
      'invalid_share',
      `repair sigmas from helpers ${badSigmas.join(', ')} are not scalars or do not match the commitments`,
      badSigmas,
    );
  }
  const signingShare = S.toBytes(total);
  let ok: boolean;
  try {
    ok = total !== 0n && bytesEqual(b.encode(b.mulBase(signingShare)), vsLost);
  } catch {
    ok = false;
  }
  if (!ok) {
    wipe(signingShare);
    throw new CryptoError(
      'invalid_share',
      `the repaired share does not match the verifying share of ${lost}`,
    );
  }
  return { identifier: lost, signingShare, public: pub };
}
