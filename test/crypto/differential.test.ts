/**
 * Differential tests against noble's `schnorr_FROST` (the reference, DESIGN §10): fed the same
 * rng, every backend must produce the same dealer polynomial, DKG packages, nonces,
 * commitments, signature shares and signatures, byte for byte — for group keys of either Y
 * parity, Taproot-tweaked packages, any subset of members, derived (non-consecutive)
 * identifiers, and thresholds up to 18.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { FrostPublic, FrostSecret } from '@noble/curves/abstract/frost.js';
import { __TEST, schnorr, schnorr_FROST } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import {
  aggregateCore,
  evenEncoding,
  flipEncoding,
  roundOne,
  signingContext,
  signShareCore,
  verifyShareCore,
} from '../../src/crypto/frost.js';
import {
  aggregate,
  commit,
  cryptoBackend,
  dealerSplit,
  dkgRound1,
  dkgRound2,
  dkgRound3,
  type KeyPackage,
  type PublicKeyPackage,
  signShare,
  toHex,
  tweakKeyPackage,
  validateKeyPackage,
  verifyShare,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import * as S from '../../src/crypto/scalar.js';
import { ecc } from '../helpers/independent.js';
import { describeEachBackend } from './backends.js';
import { nobleId, toNobleCommitments, toNoblePublic } from './noble-ref.js';

const F = schnorr_FROST;

/** A deterministic rng: SHA-256 in counter mode over a seed; two instances give the same stream. */
function streamRng(seed: Uint8Array): (len?: number) => Uint8Array {
  let counter = 0;
  return (len = 32) => {
    const out = new Uint8Array(len);
    for (let off = 0; off < len; off += 32) {
      const block = sha256(
        Uint8Array.of(...seed, counter >> 24, (counter >> 16) & 255, (counter >> 8) & 255, counter & 255),
      );
      counter++;
      out.set(block.subarray(0, Math.min(32, len - off)), off);
    }
    return out;
  };
}

const seedArb = fc.uint8Array({ minLength: 16, maxLength: 16 });
const secretArb = fc.bigInt({ min: 1n, max: S.N - 1n }).map(S.toBytes);

/** t, n, a random t-subset (sorted) and whether to tweak (with an empty or random merkle root). */
const configArb = (maxT: number, maxN: number) =>
  fc
    .integer({ min: 2, max: maxT })
    .chain((t) => fc.tuple(fc.constant(t), fc.integer({ min: t, max: Math.max(t, maxN) })))
    .chain(([t, n]) =>
      fc.record({
        t: fc.constant(t),
        n: fc.constant(n),
        subset: fc.shuffledSubarray(
          Array.from({ length: n }, (_, i) => i + 1),
          { minLength: t, maxLength: t },
        ),
        tweak: fc.constantFrom<'none' | 'bip86' | 'script'>('none', 'bip86', 'script'),
        seed: seedArb,
        secret: secretArb,
        msg: fc.uint8Array({ minLength: 0, maxLength: 64 }),
      }),
    );

const hexMap = (m: Record<string, Uint8Array>) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, toHex(v)]));

function sameKeys(pub: PublicKeyPackage, npub: FrostPublic): void {
  assert.deepEqual(pub.commitments.map(toHex), npub.commitments.map(toHex));
  assert.deepEqual(hexMap(toNoblePublic(pub).verifyingShares), hexMap(npub.verifyingShares));
}

/** Floe and noble sign the same message with the same members and the same rng; all bytes must agree. */
function signBoth(
  keys: KeyPackage[],
  npub: FrostPublic,
  nsecrets: Map<number, FrostSecret>,
  subset: number[],
  msg: Uint8Array,
  seed: Uint8Array,
): void {
  const ids = [...subset].sort((a, b) => a - b);
  const ours = ids.map((id) => {
    const key = keys.find((k) => k.identifier === id)!;
    return { key, r1: commit(key, streamRng(Uint8Array.of(...seed, id))) };
  });
  const theirs = ids.map((id) => F.commit(nsecrets.get(id)!, streamRng(Uint8Array.of(...seed, id))));
  ours.forEach((o, i) => {
    assert.equal(toHex(o.r1.nonces.hiding), toHex(theirs[i]!.nonces.hiding));
    assert.equal(toHex(o.r1.nonces.binding), toHex(theirs[i]!.nonces.binding));
    assert.equal(toHex(o.r1.commitments.hiding), toHex(theirs[i]!.commitments.hiding));
    assert.equal(toHex(o.r1.commitments.binding), toHex(theirs[i]!.commitments.binding));
  });
  const pkg = { message: msg, commitments: ours.map((o) => o.r1.commitments) };
  const list = toNobleCommitments(pkg.commitments);
  const pub = keys[0]!.public;
  const shares = ours.map((o) => signShare(o.key, o.r1.nonces, pkg));
  const nshares: Record<string, Uint8Array> = {};
  ids.forEach((id, i) => {
    nshares[nobleId(id)] = F.signShare(nsecrets.get(id)!, npub, theirs[i]!.nonces, list, msg);
    assert.equal(toHex(shares[i]!.share), toHex(nshares[nobleId(id)]!), `share of ${id}`);
    assert.ok(verifyShare(pub, pkg, shares[i]!));
  });
  const sig = aggregate(pub, pkg, shares);
  assert.equal(toHex(sig), toHex(F.aggregate(npub, list, msg, nshares)));
  assert.ok(schnorr.verify(sig, msg, xOnlyGroupKey(pub)));
  if (msg.length === 32) assert.ok(ecc.verifySchnorr(msg, xOnlyGroupKey(pub), sig));
  // A corrupted share is caught and named, by both.
  const bad = { ...shares[0]!, share: S.toBytes(S.add(S.fromBytes(shares[0]!.share), 1n)) };
  assert.throws(() => aggregate(pub, pkg, [bad, ...shares.slice(1)]), {
    code: 'aggregate_failed',
    culprits: [ids[0]],
  });
}

describeEachBackend('differential: dealer keys and signing against noble schnorr_FROST', (name) => {
  const slow = name === 'noble';

  it('same rng: same dealer split, nonces, commitments, shares and signatures (t ≤ 7, any subset, tweaked or not)', () => {
    const seenParity = new Set<number>();
    fc.assert(
      fc.property(configArb(7, 10), fc.uint8Array({ minLength: 32, maxLength: 32 }), (c, root) => {
        const deal = dealerSplit(c.secret, c.t, c.n, streamRng(c.seed));
        const nd = F.trustedDealer({ min: c.t, max: c.n }, undefined, c.secret, streamRng(c.seed));
        sameKeys(deal.public, nd.public);
        seenParity.add(deal.public.commitments[0]![0]!);
        const nsecrets = new Map<number, FrostSecret>();
        for (const k of deal.shares) {
          const ns = nd.secretShares[nobleId(k.identifier)]!;
          assert.equal(toHex(k.signingShare), toHex(ns.signingShare));
          nsecrets.set(k.identifier, ns);
        }
        let keys = deal.shares;
        let npub = nd.public;
        if (c.tweak !== 'none') {
          const merkleRoot = c.tweak === 'bip86' ? new Uint8Array(0) : root;
          keys = deal.shares.map((k) => tweakKeyPackage(k, merkleRoot));
          npub = __TEST.frostTweakPublic(nd.public, merkleRoot);
          for (const k of keys) {
            const ns = __TEST.frostTweakSecret(nsecrets.get(k.identifier)!, nd.public, merkleRoot);
            assert.equal(toHex(k.signingShare), toHex(ns.signingShare));
            nsecrets.set(k.identifier, ns);
          }
          sameKeys(keys[0]!.public, npub);
        }
        signBoth(keys, npub, nsecrets, c.subset, c.msg, c.seed);
      }),
      { numRuns: slow ? 8 : 40 },
    );
    if (!slow) assert.deepEqual([...seenParity].sort(), [2, 3], 'both group-key parities were exercised');
  });

  it('large thresholds (18-of-24 and 18-of-18)', () => {
    fc.assert(
      fc.property(seedArb, secretArb, fc.boolean(), (seed, secret, full) => {
        const n = full ? 18 : 24;
        const deal = dealerSplit(secret, 18, n, streamRng(seed));
        const nd = F.trustedDealer({ min: 18, max: n }, undefined, secret, streamRng(seed));
        sameKeys(deal.public, nd.public);
        const keys = deal.shares.map((k) => tweakKeyPackage(k));
        const npub = __TEST.frostTweakPublic(nd.public, new Uint8Array(0));
        const nsecrets = new Map(
          keys.map((k) => [
            k.identifier,
            __TEST.frostTweakSecret(nd.secretShares[nobleId(k.identifier)]!, nd.public, new Uint8Array(0)),
          ]),
        );
        const subset = Array.from({ length: n }, (_, i) => i + 1)
          .sort((a, b) => seed[a % 16]! - seed[b % 16]! || a - b)
          .slice(0, 18);
        signBoth(keys, npub, nsecrets, subset, seed.subarray(0, 16), seed);
      }),
      { numRuns: slow ? 1 : 3 },
    );
  });
});

describeEachBackend('differential: DKG against noble schnorr_FROST', (name) => {
  it('same rng: same round-1 packages, round-2 shares and (BIP-86 tweaked) keys; they sign like noble', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }).chain((t) => fc.tuple(fc.constant(t), fc.integer({ min: t, max: 6 }))),
        seedArb,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        ([t, n], seed, msg) => {
          const ids = Array.from({ length: n }, (_, i) => i + 1);
          const rngFor = (i: number) => streamRng(Uint8Array.of(...seed, i));
          const r1 = ids.map((i) => dkgRound1(i, t, n, rngFor(i)));
          const nr1 = ids.map((i) => F.DKG.round1(nobleId(i), { min: t, max: n }, undefined, rngFor(i)));
          r1.forEach((r, i) => {
            assert.deepEqual(r.package.commitment.map(toHex), nr1[i]!.public.commitment.map(toHex));
            assert.equal(toHex(r.package.proofOfKnowledge), toHex(nr1[i]!.public.proofOfKnowledge));
          });
          const others = (i: number) => r1.filter((r) => r.package.identifier !== i).map((r) => r.package);
          const nothers = (i: number) => nr1.filter((_, j) => j + 1 !== i).map((r) => r.public);
          const sent = ids.flatMap((i) => dkgRound2(r1[i - 1]!.secret, others(i)));
          const nsent = ids.map((i) => F.DKG.round2(nr1[i - 1]!.secret, nothers(i)));
          for (const p of sent) {
            assert.equal(
              toHex(p.signingShare),
              toHex(nsent[p.sender - 1]![nobleId(p.receiver)]!.signingShare),
            );
          }
          const keys = ids.map((i) =>
            dkgRound3(
              r1[i - 1]!.secret,
              others(i),
              sent.filter((p) => p.receiver === i),
            ),
          );
          const nkeys = ids.map((i) =>
            F.DKG.round3(
              nr1[i - 1]!.secret,
              nothers(i),
              ids.filter((j) => j !== i).map((j) => nsent[j - 1]![nobleId(i)]!),
            ),
          );
          keys.forEach((k, i) => {
            validateKeyPackage(k);
            assert.equal(toHex(k.signingShare), toHex(nkeys[i]!.secret.signingShare));
            sameKeys(k.public, nkeys[i]!.public);
          });
          const nsecrets = new Map(keys.map((k, i) => [k.identifier, nkeys[i]!.secret]));
          signBoth(keys, nkeys[0]!.public, nsecrets, ids.slice(n - t), msg, seed);
        },
      ),
      { numRuns: name === 'noble' ? 3 : 12 },
    );
  });
});

describeEachBackend('differential: protocol core with derived (non-consecutive) identifiers', (name) => {
  it('noble dealer with Identifier.derive ids; Floe core signs and aggregates byte for byte', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }).chain((t) => fc.tuple(fc.constant(t), fc.integer({ min: t, max: 8 }))),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 8, maxLength: 8 }),
        seedArb,
        secretArb,
        fc.uint8Array({ maxLength: 40 }),
        ([t, n], names, seed, secret, msg) => {
          const b = cryptoBackend();
          const nids = names.slice(0, n).map((s) => F.Identifier.derive(s));
          const deal = F.trustedDealer({ min: t, max: n }, nids, secret, streamRng(seed));
          const chosen = nids
            .map((hex) => ({ hex, id: BigInt(`0x${hex}`) }))
            .sort((x, y) => (x.id < y.id ? -1 : 1))
            .slice(0, t);
          const gk = deal.public.commitments[0]!;
          const odd = gk[0] === 3;
          const r1 = chosen.map((c) =>
            roundOne(b, deal.secretShares[c.hex]!.signingShare, streamRng(Uint8Array.of(...seed, 1))),
          );
          const n1 = chosen.map((c) =>
            F.commit(deal.secretShares[c.hex]!, streamRng(Uint8Array.of(...seed, 1))),
          );
          const entries = chosen.map((c, i) => ({
            id: c.id,
            hiding: r1[i]!.hidingCommitment,
            binding: r1[i]!.bindingCommitment,
          }));
          const ctx = signingContext(b, gk, entries, msg);
          const list = chosen.map((c, i) => ({ ...n1[i]!.commitments, identifier: c.hex }));
          const zs = chosen.map((c, i) => {
            const s = S.fromBytes(deal.secretShares[c.hex]!.signingShare);
            const z = signShareCore(
              ctx,
              c.id,
              odd ? S.neg(s) : s,
              S.fromBytes(r1[i]!.hiding),
              S.fromBytes(r1[i]!.binding),
            );
            const nz = F.signShare(deal.secretShares[c.hex]!, deal.public, n1[i]!.nonces, list, msg);
            assert.equal(toHex(S.toBytes(z)), toHex(nz));
            const vs = deal.public.verifyingShares[c.hex]!;
            assert.ok(verifyShareCore(b, ctx, c.id, b.decode(odd ? flipEncoding(vs) : vs, 'vs'), z));
            return z;
          });
          const sig = aggregateCore(b, ctx, b.decode(evenEncoding(gk), 'gk'), zs);
          assert.ok(sig);
          const nsig = F.aggregate(
            deal.public,
            list,
            msg,
            Object.fromEntries(chosen.map((c, i) => [c.hex, S.toBytes(zs[i]!)])),
          );
          assert.equal(toHex(sig), toHex(nsig));
          assert.ok(schnorr.verify(sig, msg, gk.subarray(1)));
        },
      ),
      { numRuns: name === 'noble' ? 5 : 25 },
    );
  });
});
