/**
 * The deterministic DKG (DESIGN §14, per-passphrase addresses) at the level of src/crypto/dkg.ts:
 * a member's round 1 drawn from a secret seed is the same every time, the key of members with
 * the same seeds is byte-identical, and any changed seed gives an unrelated key. Signatures are
 * checked with libsecp256k1 (tiny-secp256k1), not with the code under test.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  aggregate,
  commit,
  DKG_SEED_BYTES,
  dkgRound1,
  dkgRound1Deterministic,
  dkgRound2,
  dkgRound3,
  encodeKeyPackage,
  groupPublicKey,
  signShare,
  toHex,
  verifyDkgRound1Package,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import type { KeyPackage } from '../../src/crypto/types.js';
import { libsecpVerify } from '../helpers/independent.js';

const seed = (label: string) => new Uint8Array(createHash('sha256').update(label).digest());

/** A whole DKG among members 1..n, member i drawing its round 1 from seeds[i-1]. */
function dkgWithSeeds(t: number, seeds: Uint8Array[]): KeyPackage[] {
  const n = seeds.length;
  const r1 = seeds.map((s, i) => dkgRound1Deterministic(i + 1, t, n, s));
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

const encoded = (keys: KeyPackage[]) => keys.map((k) => JSON.stringify(encodeKeyPackage(k)));

function signWith(keys: KeyPackage[], message: Uint8Array): Uint8Array {
  const round1 = keys.map((k) => commit(k));
  const pkg = { message, commitments: round1.map((r) => r.commitments) };
  const shares = keys.map((k, i) => signShare(k, round1[i]!.nonces, pkg));
  return aggregate(keys[0]!.public, pkg, shares);
}

describe('deterministic DKG round 1 (src/crypto/dkg.ts)', () => {
  it('the same seed gives the same round-1 package and coefficients, and the proof verifies', () => {
    const a = dkgRound1Deterministic(2, 3, 5, seed('member 2'));
    const b = dkgRound1Deterministic(2, 3, 5, seed('member 2'));
    assert.deepEqual(a.package, b.package);
    assert.deepEqual(a.secret.coefficients, b.secret.coefficients);
    assert.equal(a.package.commitment.length, 3);
    verifyDkgRound1Package(a.package, 3);
  });

  it('a different seed gives unrelated coefficients and commitments', () => {
    const a = dkgRound1Deterministic(1, 2, 3, seed('x'));
    const b = dkgRound1Deterministic(1, 2, 3, seed('y'));
    for (let i = 0; i < 2; i++) assert.notDeepEqual(a.package.commitment[i], b.package.commitment[i]);
    assert.notEqual(a.secret.coefficients[0], b.secret.coefficients[0]);
  });

  it('the proof nonce is bound to the statement: another identifier with one seed gives another R', () => {
    // Same seed (and so the same polynomial) under two identifiers: the challenges differ, and so
    // must the nonces, or the two proofs would reveal a_0.
    const s = seed('one seed');
    const a = dkgRound1Deterministic(1, 2, 3, s);
    const b = dkgRound1Deterministic(2, 2, 3, s);
    assert.deepEqual(a.package.commitment, b.package.commitment);
    assert.notDeepEqual(
      a.package.proofOfKnowledge.subarray(0, 32),
      b.package.proofOfKnowledge.subarray(0, 32),
    );
  });

  it('refuses a seed that is not 32 bytes', () => {
    assert.throws(() => dkgRound1Deterministic(1, 2, 3, new Uint8Array(31)), /32 bytes/);
    assert.equal(DKG_SEED_BYTES, 32);
  });

  it('the random path is unchanged: the same rng gives the same package as before (one rng for both draws)', () => {
    // dkgRound1 reads its rng for the coefficients, then for the proof nonce, as noble does
    // (the ZF vectors in vectors.test.ts pin the bytes); two runs over one recorded stream agree.
    const stream = new Uint8Array(randomBytes(48 * 4));
    const rng = () => {
      let o = 0;
      return (len = 32) => {
        const out = stream.slice(o, o + len);
        o += len;
        return out;
      };
    };
    assert.deepEqual(dkgRound1(1, 3, 3, rng()).package, dkgRound1(1, 3, 3, rng()).package);
    // and fresh OS randomness differs every time
    assert.notDeepEqual(dkgRound1(1, 2, 3).package.commitment, dkgRound1(1, 2, 3).package.commitment);
  });
});

describe('deterministic DKG (whole ceremony over src/crypto/dkg.ts)', () => {
  const seeds = ['a', 'b', 'c'].map((x) => seed(`passphrase-1/member-${x}`));

  it('same seeds: byte-identical key packages and group key, on every run', () => {
    const first = dkgWithSeeds(2, seeds);
    const second = dkgWithSeeds(
      2,
      seeds.map((s) => Uint8Array.from(s)),
    );
    assert.deepEqual(encoded(first), encoded(second));
    assert.deepEqual(groupPublicKey(first[0]!.public), groupPublicKey(second[0]!.public));
    assert.equal(first[0]!.public.tweak.kind, 'taproot', 'BIP-86 tweaked like every DKG key');
  });

  it('the key signs: BIP-340 signature valid under libsecp256k1', () => {
    const keys = dkgWithSeeds(2, seeds);
    const msg = new Uint8Array(randomBytes(32));
    const sig = signWith([keys[0]!, keys[2]!], msg);
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(keys[0]!.public)));
  });

  it("one member's different seed (another passphrase, another HSM) gives an unrelated key", () => {
    const base = dkgWithSeeds(2, seeds);
    const other = dkgWithSeeds(2, [seeds[0]!, seed('another'), seeds[2]!]);
    assert.notEqual(toHex(groupPublicKey(base[0]!.public)), toHex(groupPublicKey(other[0]!.public)));
    assert.notDeepEqual(base[0]!.signingShare, other[0]!.signingShare);
  });

  it('a larger group (3-of-5) is as deterministic', () => {
    const five = Array.from({ length: 5 }, (_, i) => seed(`p/${i}`));
    assert.deepEqual(encoded(dkgWithSeeds(3, five)), encoded(dkgWithSeeds(3, five)));
  });
});
