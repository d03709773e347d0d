/**
 * Proactive share refresh (ZF frost-core `keys/refresh`, the DKG form): every member deals a
 * random polynomial g_i of degree t−1 with constant term ZERO; each member's new share is its old
 * share plus Σ_i g_i(own identifier). The shared polynomial becomes f + Σ g_i: same constant term,
 * so the same group key, Taproot tweak and internal key, but shares that old shares cannot be
 * combined with (an attacker must now steal t shares between two refreshes).
 *
 * Round 1 broadcasts commitments to a_1..a_{t−1} (a_0 = 0 is implicit: the identity has no
 * encoding). No proof of knowledge is needed: nobody can move the constant term, and a member who
 * commits to points it cannot open fails its sub-shares' check in round 3 and is named.
 * Round 2 sends each other member a sub-share g_i(j) (the caller encrypts it); round 3 checks
 * every sub-share against its sender's commitments and derives the new key package. The public
 * part is computed by {@link refreshPublicKeyPackage}, which a coordinator runs on the same
 * round-1 packages, so every member's new public package can be compared with everyone else's.
 *
 * Stored keys are Taproot-tweaked (tweak.ts): their shares, verifying shares and commitments are
 * still one consistent polynomial (f' = ±f + t), so adding Σ g_i needs no tweak-specific step,
 * whatever the parity of the internal or the output key.
 *
 * Members are identifiers 1..n, as in dkg.ts.
 */
import { randomBytes } from 'node:crypto';
import { type BPoint, type CurveBackend, cryptoBackend } from './backend.js';
import { assertThreshold, validateKeyPackage } from './dealer.js';
import { CryptoError } from './errors.js';
import { polyEval } from './frost.js';
import { sha256 } from './hash.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import { type Identifier, sortedUniqueIds } from './identifier.js';
import * as S from './scalar.js';
import type {
  DkgRound2Package,
  KeyPackage,
  KeyTweak,
  PublicKeyPackage,
  RefreshRound1Package,
} from './types.js';

export type { RefreshRound1Package } from './types.js';

/** Secret refresh state of one member between rounds. Memory only. */
export interface RefreshSecretState {
  identifier: Identifier;
  threshold: number;
  n: number;
  /**
   * The refresh polynomial's coefficients, a_0 = 0 first (so `threshold` of them), until round 3
   * or {@link refreshWipe}.
   */
  coefficients: bigint[];
  /** This member's commitments to a_1..a_{t−1} (compressed points). */
  commitment: Uint8Array[];
  /** Digest of the round-1 packages round 2 accepted; round 2 again and round 3 must see the same ones. */
  round1Digest?: Uint8Array;
}

const defaultRng = (len = 32) => new Uint8Array(randomBytes(len));

function assertMember(identifier: Identifier, n: number, what: string): void {
  if (!Number.isInteger(identifier) || identifier < 1 || identifier > n) {
    throw new CryptoError('invalid_identifier', `${what} must be from 1 to n`);
  }
}

/**
 * Round 1: a random polynomial with zero constant term and degree `threshold` − 1, and the
 * commitments to its t−1 random coefficients (constant-time base multiplication).
 */
export function refreshRound1(
  identifier: Identifier,
  threshold: number,
  n: number,
  rng: (len?: number) => Uint8Array = defaultRng,
): { package: RefreshRound1Package; secret: RefreshSecretState } {
  assertThreshold(threshold, n);
  assertMember(identifier, n, 'identifier');
  const b = cryptoBackend();
  const coefficients: bigint[] = [0n];
  const commitment: Uint8Array[] = [];
  for (let k = 1; k < threshold; k++) {
    const a = S.randomScalar(rng);
    coefficients.push(a);
    const ab = S.toBytes(a);
    commitment.push(b.encode(b.mulBase(ab)));
    wipe(ab);
  }
  return {
    package: { identifier, commitment: commitment.map((c) => c.slice()) },
    secret: { identifier, threshold, n, coefficients, commitment },
  };
}

/**
 * Check one member's round-1 package on its own: t−1 commitments, each a valid point (the
 * identity has no compressed encoding, so it is refused too). Names the member on failure.
 */
export function verifyRefreshRound1Package(p: RefreshRound1Package, threshold: number): void {
  const who = `refresh round-1 package of ${p.identifier}`;
  if (!Array.isArray(p.commitment) || p.commitment.length !== threshold - 1) {
    throw new CryptoError('invalid_package', `${who}: expected ${threshold - 1} commitments`, [p.identifier]);
  }
  const b = cryptoBackend();
  try {
    for (const [i, c] of p.commitment.entries()) b.decode(c, `commitment ${i + 1}`);
  } catch {
    throw new CryptoError('invalid_package', `${who}: a commitment is not a valid point`, [p.identifier]);
  }
}

function round1Digest(packages: readonly RefreshRound1Package[]): Uint8Array {
  const sorted = [...packages].sort((a, b) => a.identifier - b.identifier);
  return sha256(
    concatBytes(
      ...sorted.flatMap((o) => [Uint8Array.of(o.identifier, o.commitment.length), ...o.commitment]),
    ),
  );
}

/** `ids` are exactly 1..n without `except`; `what` names the list in the error. */
function checkMembers(ids: readonly number[], n: number, except: number | undefined, what: string): void {
  const sorted = sortedUniqueIds(ids, what);
  const expected = Array.from({ length: n }, (_, i) => i + 1).filter((i) => i !== except);
  if (sorted.length !== expected.length || sorted.some((id, i) => id !== expected[i])) {
    throw new CryptoError(
      'invalid_package',
      except === undefined
        ? `${what} must come from every member exactly once`
        : `${what} must come from every other member exactly once`,
    );
  }
}

function checkRound1Set(secret: RefreshSecretState, others: readonly RefreshRound1Package[]): void {
  checkMembers(
    others.map((o) => o.identifier),
    secret.n,
    secret.identifier,
    'refresh round-1 packages',
  );
  for (const o of others) verifyRefreshRound1Package(o, secret.threshold);
}

function liveCoefficients(secret: RefreshSecretState): bigint[] {
  if (secret.coefficients.length !== secret.threshold) {
    throw new CryptoError('dkg_failed', 'the refresh secret state was already used or wiped');
  }
  return secret.coefficients;
}

/** Round 2: one sub-share g(j) for every other member j, sorted by receiver. Same input, same output. */
export function refreshRound2(
  secret: RefreshSecretState,
  others: readonly RefreshRound1Package[],
): DkgRound2Package[] {
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

/** x, x², …, x^{count} as 32-byte scalars (public: x is an identifier). */
function powers(x: bigint, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 1n;
  for (let k = 0; k < count; k++) {
    p = S.mul(p, x);
    out.push(S.toBytes(p));
  }
  return out;
}

/** Σ_{k≥1} x^k·C_k of one member's commitments (C_1 first); null for the identity. */
function zeroConstantEval(b: CurveBackend, x: bigint, commitment: readonly Uint8Array[]): BPoint | null {
  return b.msmPublic(commitment, powers(x, commitment.length), 'refresh commitment');
}

/**
 * Round 3: checks each received sub-share against its sender's commitments (naming the sender),
 * then returns this member's NEW key package: signing share s + Σ_i g_i(me), the same group key
 * and tweak, the public package of {@link refreshPublicKeyPackage}. `current` is the member's key
 * package before the refresh. Wipes the secret state.
 */
export function refreshRound3(
  secret: RefreshSecretState,
  others: readonly RefreshRound1Package[],
  received: readonly DkgRound2Package[],
  current: KeyPackage,
): KeyPackage {
  checkRound1Set(secret, others);
  const coefficients = liveCoefficients(secret);
  if (secret.round1Digest && !bytesEqual(secret.round1Digest, round1Digest(others))) {
    throw new CryptoError('invalid_package', 'round-1 packages differ from those of round 2');
  }
  if (current.identifier !== secret.identifier) {
    throw new CryptoError('invalid_package', 'the current key package belongs to another member');
  }
  if (current.public.threshold !== secret.threshold || current.public.n !== secret.n) {
    throw new CryptoError('invalid_package', 'the current key package has another threshold or n');
  }
  validateKeyPackage(current);
  const bySender = new Map(received.map((r) => [r.sender, r]));
  if (bySender.size !== received.length || received.length !== others.length) {
    throw new CryptoError(
      'invalid_package',
      'round-2 packages must come from every other member exactly once',
    );
  }
  const b = cryptoBackend();
  const me = BigInt(secret.identifier);
  let total = S.parse(current.signingShare, 'current signing share', true);
  for (const o of others) {
    const r = bySender.get(o.identifier);
    if (!r) {
      throw new CryptoError('invalid_package', `missing round-2 package from ${o.identifier}`, [
        o.identifier,
      ]);
    }
    if (r.receiver !== secret.identifier) {
      throw new CryptoError('invalid_package', `round-2 package from ${o.identifier} is for another member`, [
        o.identifier,
      ]);
    }
    let share: bigint;
    try {
      share = S.parse(r.signingShare, 'round-2 sub-share', false);
      // g_i(me)·G = Σ_{k≥1} me^k·C_{i,k} (a zero sub-share only if that sum is the identity).
      const want = zeroConstantEval(b, me, o.commitment);
      const got = share === 0n ? null : b.mulBase(r.signingShare);
      if (!(want === null ? got === null : got !== null && b.equals(got, want))) throw new Error('vss');
    } catch {
      throw new CryptoError(
        'invalid_share',
        `refresh sub-share from ${o.identifier} does not match its commitments`,
        [o.identifier],
      );
    }
    total = S.add(total, share);
  }
  total = S.add(total, polyEval(coefficients, me));
  if (total === 0n) throw new CryptoError('dkg_failed', 'refreshed signing share is zero');

  const own: RefreshRound1Package = { identifier: secret.identifier, commitment: secret.commitment };
  const pub = refreshPublicKeyPackage(current.public, [...others, own]);
  const signingShare = S.toBytes(total);
  if (!bytesEqual(b.encode(b.mulBase(signingShare)), pub.verifyingShares.get(secret.identifier)!)) {
    wipe(signingShare);
    throw new CryptoError('dkg_failed', 'refreshed signing share does not match its verifying share');
  }
  refreshWipe(secret);
  return { identifier: secret.identifier, signingShare, public: pub };
}

function copyTweak(t: KeyTweak): KeyTweak {
  return t.kind === 'none'
    ? { kind: 'none' }
    : {
        kind: 'taproot',
        internalKey: Uint8Array.from(t.internalKey),
        merkleRoot: Uint8Array.from(t.merkleRoot),
      };
}

/**
 * The public key package after a refresh, from the current one and ALL n members' round-1
 * packages (public data: a coordinator computes it too). commitments[0] (the group key) and the
 * tweak are unchanged; commitments[k] += Σ_i C_{i,k} for k ≥ 1; VS_j += Σ_i g_i(j)·G.
 * Equals the public part of every member's {@link refreshRound3} output.
 */
export function refreshPublicKeyPackage(
  current: PublicKeyPackage,
  round1: readonly RefreshRound1Package[],
): PublicKeyPackage {
  const { threshold: t, n } = current;
  assertThreshold(t, n);
  if (current.commitments.length !== t) {
    throw new CryptoError('invalid_package', `public key package: expected ${t} commitments`);
  }
  checkMembers([...current.verifyingShares.keys()], n, undefined, 'verifying shares');
  checkMembers(
    round1.map((p) => p.identifier),
    n,
    undefined,
    'refresh round-1 packages',
  );
  for (const p of round1) verifyRefreshRound1Package(p, t);
  const b = cryptoBackend();

  // Sums of the members' k-th commitments, k = 1..t−1 (each may be the identity: null).
  const sums: (BPoint | null)[] = [];
  for (let k = 1; k < t; k++) {
    sums.push(b.sum(round1.map((p) => b.decode(p.commitment[k - 1]!, `commitment ${k}`))));
  }
  const commitments = current.commitments.map((c, k) => {
    const p = b.decode(c, k === 0 ? 'group public key' : `commitment ${k}`);
    const sum = k === 0 ? null : sums[k - 1]!;
    if (!sum) return Uint8Array.from(c);
    const q = b.add(p, sum);
    if (!q) throw new CryptoError('dkg_failed', `refreshed commitment ${k} is the identity`);
    return b.encode(q);
  });
  // Σ_i g_i(j)·G = Σ_{k≥1} j^k·(Σ_i C_{i,k}); identity sums drop out.
  const terms = sums.flatMap((s, i) => (s ? [{ point: b.encode(s), k: i + 1 }] : []));
  const verifyingShares = new Map<Identifier, Uint8Array>();
  for (let j = 1; j <= n; j++) {
    const xk = powers(BigInt(j), t - 1);
    const vs = current.verifyingShares.get(j)!;
    const q = b.msmPublic(
      [vs, ...terms.map((e) => e.point)],
      [undefined, ...terms.map((e) => xk[e.k - 1])],
      `verifying share of ${j}`,
    );
    if (!q) throw new CryptoError('dkg_failed', `refreshed verifying share of ${j} is the identity`);
    verifyingShares.set(j, b.encode(q));
  }
  return { threshold: t, n, commitments, verifyingShares, tweak: copyTweak(current.tweak) };
}

/** Best-effort erasure of the refresh secret state (bigints cannot be overwritten in place). */
export function refreshWipe(secret: RefreshSecretState): void {
  secret.coefficients.fill(0n);
  secret.coefficients.length = 0;
}
