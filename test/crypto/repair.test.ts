/**
 * Share repair (src/crypto/repair.ts): any t helpers rebuild a lost member's share byte for byte,
 * on DKG keys and dealer keys (tweaked and untweaked, both parities), on every backend; a helper
 * that cheats is named. Signatures are checked with noble and libsecp256k1.
 */
import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { it } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { withBackend } from '../../src/crypto/backend.js';
import { dealerSplit, validateKeyPackage } from '../../src/crypto/dealer.js';
import { dkgRound1, dkgRound2, dkgRound3 } from '../../src/crypto/dkg.js';
import { encodeKeyPackage, encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { toHex } from '../../src/crypto/hex.js';
import { refreshRound1, refreshRound2, refreshRound3 } from '../../src/crypto/refresh.js';
import {
  type RepairDeltas,
  repairStep1,
  repairStep2,
  repairStep3,
  verifyRepairCommitments,
} from '../../src/crypto/repair.js';
import * as S from '../../src/crypto/scalar.js';
import { aggregate, commit, signShare, xOnlyGroupKey } from '../../src/crypto/signing.js';
import { tweakKeyPackage } from '../../src/crypto/tweak.js';
import type { KeyPackage, PublicKeyPackage } from '../../src/crypto/types.js';
import { libsecpVerify } from '../helpers/independent.js';
import { ALL_BACKENDS, describeEachBackend } from './backends.js';

// ---------- helpers ----------

const sha = (...parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** A deterministic byte stream: SHA-256(label ‖ counter) blocks. */
function seededRng(label: string): (len?: number) => Uint8Array {
  let counter = 0;
  return (len = 32) => {
    const out = new Uint8Array(len);
    for (let o = 0; o < len; o += 32)
      out.set(sha(label, String(counter++)).subarray(0, Math.min(32, len - o)), o);
    return out;
  };
}

const pubJson = (p: PublicKeyPackage) => JSON.stringify(encodePublicKeyPackage(p));

function runDkg(t: number, n: number, label: string): KeyPackage[] {
  const r1 = Array.from({ length: n }, (_, i) => dkgRound1(i + 1, t, n, seededRng(`${label}/${i + 1}`)));
  const others = (i: number) => r1.filter((_, j) => j !== i).map((r) => r.package);
  const r2 = r1.map((r, i) => dkgRound2(r.secret, others(i)));
  return r1.map((r, i) =>
    dkgRound3(
      r.secret,
      others(i),
      r2.flat().filter((p) => p.receiver === i + 1),
    ),
  );
}

function runRefresh(keys: readonly KeyPackage[], label: string): KeyPackage[] {
  const { threshold: t, n } = keys[0]!.public;
  const r1 = keys.map((k) => refreshRound1(k.identifier, t, n, seededRng(`${label}/${k.identifier}`)));
  const others = (id: number) => r1.filter((r) => r.package.identifier !== id).map((r) => r.package);
  const r2 = r1.flatMap((r) => refreshRound2(r.secret, others(r.package.identifier)));
  return r1.map((r, i) =>
    refreshRound3(
      r.secret,
      others(r.package.identifier),
      r2.filter((p) => p.receiver === r.package.identifier),
      keys[i]!,
    ),
  );
}

interface RepairRun {
  step1: RepairDeltas[];
  sigmas: { helper: number; sigma: Uint8Array }[];
  commitments: Map<number, Map<number, Uint8Array>>;
}

/** Steps 1 and 2 of a repair of `lost` by `helpers`, every helper honest. */
function repairUpToStep2(
  keys: readonly KeyPackage[],
  lost: number,
  helpers: number[],
  label: string,
): RepairRun {
  const pub = keys[0]!.public;
  const step1 = helpers.map((h) => repairStep1(helpers, keys[h - 1]!, lost, seededRng(`${label}/${h}`)));
  for (const d of step1) verifyRepairCommitments(helpers, d.helper, lost, pub, d.commitments);
  const sigmas = helpers.map((j) => ({
    helper: j,
    sigma: repairStep2(
      j,
      step1.map((d) => ({ helper: d.helper, delta: d.deltas.get(j)!, commitment: d.commitments.get(j)! })),
    ),
  }));
  return { step1, sigmas, commitments: new Map(step1.map((d) => [d.helper, d.commitments])) };
}

function signWith(signers: readonly KeyPackage[], pub: PublicKeyPackage, message: Uint8Array): Uint8Array {
  const round1 = signers.map((k) => commit(k));
  const pkg = { message, commitments: round1.map((r) => r.commitments) };
  const shares = signers.map((k, i) => signShare(k, round1[i]!.nonces, pkg));
  return aggregate(pub, pkg, shares);
}

function shuffled(ids: number[]): number[] {
  const out = [...ids];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function subsets(ids: readonly number[], t: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, acc: number[]) => {
    if (acc.length === t) return void out.push([...acc]);
    for (let i = start; i < ids.length; i++) rec(i + 1, [...acc, ids[i]!]);
  };
  rec(0, []);
  return out;
}

const isCode = (code: string, culprits?: number[]) => (e: unknown) => {
  assert.ok(e instanceof CryptoError, `expected a CryptoError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (culprits) assert.deepEqual(e.culprits, culprits, e.message);
  return true;
};

/** A dealer secret whose public key has the wanted Y parity (checked with noble). */
function secretWithParity(odd: boolean, label: string): Uint8Array {
  for (let i = 0; ; i++) {
    const s = sha('secret', label, String(i));
    if ((secp256k1.getPublicKey(s, true)[0] === 3) === odd) return s;
  }
}

function keySources(): { name: string; keys: KeyPackage[] }[] {
  const out = [
    { name: 'DKG 2-of-3', keys: runDkg(2, 3, 'dkg/2/3') },
    { name: 'DKG 4-of-6', keys: runDkg(4, 6, 'dkg/4/6') },
    { name: 'DKG 5-of-7', keys: runDkg(5, 7, 'dkg/5/7') },
  ];
  for (const odd of [false, true]) {
    const deal = dealerSplit(secretWithParity(odd, `p${odd}`), 3, 5, seededRng(`poly/${odd}`));
    out.push({ name: `dealer untweaked, P ${odd ? 'odd' : 'even'}`, keys: deal.shares });
    out.push({
      name: `dealer tweaked, P ${odd ? 'odd' : 'even'}`,
      keys: deal.shares.map((k) => tweakKeyPackage(k)),
    });
  }
  return out;
}

const MSG = sha('floe repair test message');

// ---------- tests ----------

it('lagrangeAt interpolates at any x, and is lagrange at 0', () => {
  const xs = [2n, 3n, 5n, 9n];
  const f = [S.mod(123456789n), S.mod(-42n), 7n, S.N - 5n]; // degree 3
  const evalAt = (x: bigint) => f.reduceRight((acc, c) => S.add(S.mul(acc, x), c), 0n);
  for (const x of [0n, 1n, 4n, 7n, 200n]) {
    const sum = xs.reduce((acc, xi) => S.add(acc, S.mul(S.lagrangeAt(xs, xi, x), evalAt(xi))), 0n);
    assert.equal(sum, evalAt(x), `at ${x}`);
  }
  for (const xi of xs) assert.equal(S.lagrangeAt(xs, xi, 0n), S.lagrange(xs, xi));
  assert.equal(S.lagrangeAt(xs, 3n, 3n), 1n);
  assert.equal(S.lagrangeAt(xs, 3n, 5n), 0n);
  assert.throws(() => S.lagrangeAt(xs, 4n, 1n), isCode('invalid_identifier'));
  assert.throws(() => S.lagrangeAt([1n, 2n, 2n], 2n, 0n), isCode('invalid_identifier'));
});

describeEachBackend('share repair', () => {
  it('any t helpers rebuild a lost share byte for byte (every lost member, every helper set, 3-of-5)', () => {
    const keys = runDkg(3, 5, 'all');
    for (let lost = 1; lost <= 5; lost++) {
      const rest = [1, 2, 3, 4, 5].filter((i) => i !== lost);
      for (const helpers of subsets(rest, 3)) {
        const run = repairUpToStep2(keys, lost, helpers, `all/${lost}/${helpers}`);
        const key = repairStep3(
          lost,
          shuffled(run.sigmas.map((s) => s.helper)).map((h) => run.sigmas.find((s) => s.helper === h)!),
          keys[0]!.public,
          run.commitments,
        );
        assert.deepEqual(key.signingShare, keys[lost - 1]!.signingShare, `lost ${lost}, helpers ${helpers}`);
        assert.equal(key.identifier, lost);
        assert.equal(pubJson(key.public), pubJson(keys[0]!.public));
        // Without the commitments the result is the same.
        assert.deepEqual(repairStep3(lost, run.sigmas, keys[0]!.public).signingShare, key.signingShare);
      }
    }
  });

  it('on every kind of stored key, the repaired share validates and signs with the others', () => {
    for (const { name, keys } of keySources()) {
      const { threshold: t, n } = keys[0]!.public;
      const lost = 1 + randomInt(n);
      const helpers = shuffled(Array.from({ length: n }, (_, i) => i + 1).filter((i) => i !== lost)).slice(
        0,
        t,
      );
      const run = repairUpToStep2(keys, lost, helpers, `kinds/${name}`);
      const key = repairStep3(lost, run.sigmas, keys[0]!.public, run.commitments);
      assert.equal(toHex(key.signingShare), toHex(keys[lost - 1]!.signingShare), name);
      validateKeyPackage(key);
      const others = shuffled(Array.from({ length: n }, (_, i) => i + 1).filter((i) => i !== lost)).slice(
        0,
        t - 1,
      );
      const signers = [...others, lost]
        .sort((a, b) => a - b)
        .map((id) => (id === lost ? key : keys[id - 1]!));
      const sig = signWith(signers, keys[0]!.public, MSG);
      const xonly = xOnlyGroupKey(keys[0]!.public);
      assert.ok(schnorr.verify(sig, MSG, xonly) && libsecpVerify(sig, MSG, xonly), name);
    }
  });

  it('after a refresh, repair rebuilds the refreshed share; helpers holding stale shares are named', () => {
    const old = runDkg(3, 4, 'after');
    const fresh = runRefresh(old, 'after/refresh');
    const run = repairUpToStep2(fresh, 2, [1, 3, 4], 'after/repair');
    const key = repairStep3(2, run.sigmas, fresh[0]!.public, run.commitments);
    assert.deepEqual(key.signingShare, fresh[1]!.signingShare);
    assert.notDeepEqual(key.signingShare, old[1]!.signingShare);
    // Helper 3 still uses its pre-refresh share.
    const stale = repairStep1([1, 3, 4], old[2]!, 2, seededRng('stale'));
    assert.throws(
      () => verifyRepairCommitments([1, 3, 4], 3, 2, fresh[0]!.public, stale.commitments),
      isCode('invalid_share', [3]),
    );
  });

  it('a helper whose delta does not match its commitment is named in step 2', () => {
    const keys = runDkg(3, 5, 'delta');
    const helpers = [1, 3, 5];
    const step1 = helpers.map((h) => repairStep1(helpers, keys[h - 1]!, 2, seededRng(`delta/${h}`)));
    const to3 = step1.map((d) => ({
      helper: d.helper,
      delta: d.deltas.get(3)!,
      commitment: d.commitments.get(3)!,
    }));
    repairStep2(3, to3);
    const bump = (b: Uint8Array) => S.toBytes(S.add(S.fromBytes(b), 1n));
    const bad = to3.map((r) => (r.helper === 5 ? { ...r, delta: bump(r.delta) } : r));
    assert.throws(() => repairStep2(3, bad), isCode('invalid_share', [5]));
    const junk = to3.map((r) => (r.helper === 1 ? { ...r, delta: new Uint8Array(32).fill(0xff) } : r));
    assert.throws(() => repairStep2(3, junk), isCode('invalid_share', [1]));
    const wrongCommitment = to3.map((r) =>
      r.helper === 3 ? { ...r, commitment: Uint8Array.of(2, ...new Uint8Array(32)) } : r,
    );
    assert.throws(() => repairStep2(3, wrongCommitment), isCode('invalid_share', [3]));
    // Own delta missing, or a sender twice.
    assert.throws(
      () =>
        repairStep2(
          3,
          to3.filter((r) => r.helper !== 3),
        ),
      isCode('invalid_package'),
    );
    assert.throws(() => repairStep2(3, [...to3, to3[0]!]), isCode('invalid_identifier'));
  });

  it('a helper splitting the wrong value is named by its commitments, before and in step 3', () => {
    const keys = runDkg(3, 5, 'liar');
    const pub = keys[0]!.public;
    const helpers = [2, 4, 5];
    const lost = 1;
    // Helper 4 runs step 1 honestly but on a wrong share: deltas and commitments agree with each other.
    const wrong = { ...keys[3]!, signingShare: S.toBytes(S.add(S.fromBytes(keys[3]!.signingShare), 1n)) };
    const step1 = helpers.map((h) =>
      repairStep1(helpers, h === 4 ? wrong : keys[h - 1]!, lost, seededRng(`liar/${h}`)),
    );
    for (const d of step1) {
      if (d.helper === 4) {
        assert.throws(
          () => verifyRepairCommitments(helpers, 4, lost, pub, d.commitments),
          isCode('invalid_share', [4]),
        );
      } else verifyRepairCommitments(helpers, d.helper, lost, pub, d.commitments);
    }
    // Every delta matches its commitment, so step 2 passes…
    const sigmas = helpers.map((j) => ({
      helper: j,
      sigma: repairStep2(
        j,
        step1.map((d) => ({ helper: d.helper, delta: d.deltas.get(j)!, commitment: d.commitments.get(j)! })),
      ),
    }));
    const commitments = new Map(
      step1.map((d) => [d.helper, d.commitments as ReadonlyMap<number, Uint8Array>]),
    );
    // …and step 3 names helper 4 with the commitments, or refuses the share without them.
    assert.throws(() => repairStep3(lost, sigmas, pub, commitments), isCode('invalid_share', [4]));
    assert.throws(() => repairStep3(lost, sigmas, pub), isCode('invalid_share', []));
    // Commitments that are missing, extra or not points name their helper.
    const c2 = step1[0]!.commitments;
    const missing = new Map([...c2].slice(1));
    assert.throws(
      () => verifyRepairCommitments(helpers, 2, lost, pub, missing),
      isCode('invalid_share', [2]),
    );
    const extra = new Map([...c2, [3, c2.get(2)!]]);
    assert.throws(() => verifyRepairCommitments(helpers, 2, lost, pub, extra), isCode('invalid_share', [2]));
    const notPoint = new Map([...c2].map(([k, v]) => [k, k === 5 ? new Uint8Array(33) : v] as const));
    assert.throws(
      () => verifyRepairCommitments(helpers, 2, lost, pub, notPoint),
      isCode('invalid_share', [2]),
    );
    const honest = repairUpToStep2(keys, lost, helpers, 'liar/honest');
    repairStep3(lost, honest.sigmas, pub, honest.commitments);
    const withoutFive = new Map([...honest.commitments].filter(([h]) => h !== 5));
    assert.throws(() => repairStep3(lost, honest.sigmas, pub, withoutFive), isCode('invalid_share', [5]));
  });

  it('a helper sending a wrong sigma is named in step 3', () => {
    const keys = runDkg(4, 6, 'sigma');
    const pub = keys[0]!.public;
    const helpers = [1, 2, 4, 6];
    const run = repairUpToStep2(keys, 5, helpers, 'sigma');
    repairStep3(5, run.sigmas, pub, run.commitments);
    const bump = run.sigmas.map((s) =>
      s.helper === 4 ? { ...s, sigma: S.toBytes(S.add(S.fromBytes(s.sigma), 1n)) } : s,
    );
    assert.throws(() => repairStep3(5, bump, pub, run.commitments), isCode('invalid_share', [4]));
    assert.throws(() => repairStep3(5, bump, pub), isCode('invalid_share', []));
    // Two helpers swapping sigmas keep the sum: named with the commitments, accepted without.
    const [a, b] = [run.sigmas[0]!, run.sigmas[1]!];
    const swapped = [{ ...a, sigma: b.sigma }, { ...b, sigma: a.sigma }, ...run.sigmas.slice(2)];
    assert.throws(() => repairStep3(5, swapped, pub, run.commitments), isCode('invalid_share', [1, 2]));
    assert.deepEqual(repairStep3(5, swapped, pub).signingShare, keys[4]!.signingShare);
    const junk = run.sigmas.map((s) => (s.helper === 6 ? { ...s, sigma: new Uint8Array(31) } : s));
    assert.throws(() => repairStep3(5, junk, pub), isCode('invalid_share', [6]));
  });

  it('refuses a wrong helper set: count, duplicates, the lost member among them, out of range', () => {
    const keys = runDkg(3, 5, 'sets');
    const pub = keys[0]!.public;
    const ok = repairStep1([1, 2, 3], keys[0]!, 4);
    const cases: [string, number[], number, string][] = [
      ['too few', [1, 2], 4, 'invalid_package'],
      ['too many', [1, 2, 3, 5], 4, 'invalid_package'],
      ['duplicate', [1, 2, 2], 4, 'invalid_identifier'],
      ['lost among helpers', [1, 2, 4], 4, 'invalid_package'],
      ['helper out of range', [1, 2, 6], 4, 'invalid_identifier'],
      ['helper zero', [0, 1, 2], 4, 'invalid_identifier'],
      ['lost zero', [1, 2, 3], 0, 'invalid_identifier'],
      ['lost above n', [1, 2, 3], 6, 'invalid_identifier'],
      ['helper not among helpers', [2, 3, 5], 4, 'invalid_package'],
    ];
    for (const [what, helpers, lost, code] of cases) {
      assert.throws(() => repairStep1(helpers, keys[0]!, lost), isCode(code), `step 1: ${what}`);
      assert.throws(
        () => verifyRepairCommitments(helpers, 1, lost, pub, ok.commitments),
        isCode(code),
        `verify: ${what}`,
      );
      if (what !== 'helper not among helpers') {
        const sigmas = helpers.map((h) => ({ helper: h, sigma: S.toBytes(1n) }));
        assert.throws(() => repairStep3(lost, sigmas, pub), isCode(code), `step 3: ${what}`);
      }
    }
  });
});

it('repair outputs are byte-identical on every backend for a deterministic rng', () => {
  const run = () => {
    const out: string[] = [];
    for (const keys of [
      runDkg(3, 5, 'xb/dkg'),
      dealerSplit(sha('xb'), 4, 6, seededRng('xb/poly')).shares.map((k) => tweakKeyPackage(k)),
    ]) {
      const { n, threshold: t } = keys[0]!.public;
      const helpers = Array.from({ length: t }, (_, i) => n - i).sort((a, b) => a - b);
      const r = repairUpToStep2(keys, 1, helpers, `xb/${n}`);
      out.push(
        ...r.step1.flatMap((d) => [...d.deltas.values(), ...d.commitments.values()].map(toHex)),
        ...r.sigmas.map((s) => toHex(s.sigma)),
        JSON.stringify(encodeKeyPackage(repairStep3(1, r.sigmas, keys[0]!.public, r.commitments))),
      );
    }
    return out;
  };
  const results = ALL_BACKENDS.map((name) => withBackend(name, run));
  for (const [i, r] of results.entries())
    assert.deepEqual(r, results[0], `${ALL_BACKENDS[i]} vs ${ALL_BACKENDS[0]}`);
  assert.ok(results[0]!.length > 20);
});
