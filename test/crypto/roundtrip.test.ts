import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import {
  aggregate,
  CryptoError,
  CURVE_ORDER,
  commit,
  type DkgRound1Package,
  type DkgRound2Package,
  dealerSplit,
  dkgRound1,
  dkgRound2,
  dkgRound3,
  encodePublicKeyPackage,
  type KeyPackage,
  type PublicKeyPackage,
  type SignatureShare,
  type SigningNonces,
  type SigningPackage,
  signShare,
  taprootOutputKey,
  toHex,
  validateKeyPackage,
  verifyShare,
  verifySignature,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { libsecpVerify } from '../helpers/independent.js';
import { describeEachBackend } from './backends.js';

// ---------- helpers ----------

function randomSecret(): Uint8Array {
  for (;;) {
    const s = randomBytes(32);
    const v = BigInt(`0x${s.toString('hex')}`);
    if (v > 0n && v < CURVE_ORDER) return new Uint8Array(s);
  }
}

function randomSubset(n: number, t: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, t).sort((a, b) => a - b);
}

const msg32 = () => new Uint8Array(randomBytes(32));

const isCrypto =
  (code: CryptoError['code'], culprits?: number[]) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof CryptoError, `expected a CryptoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (culprits) assert.deepEqual(e.culprits, culprits);
    return true;
  };

/** Runs the DKG for every member in-process; returns the key packages by identifier order. */
function runDkg(
  t: number,
  n: number,
  tamper?: (p: DkgRound2Package) => DkgRound2Package,
): { keys: KeyPackage[]; round1: DkgRound1Package[] } {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const r1 = ids.map((i) => dkgRound1(i, t, n));
  const round1 = r1.map((r) => r.package);
  const others = (i: number) => round1.filter((p) => p.identifier !== i);
  const sent = ids.map((i) => dkgRound2(r1[i - 1]!.secret, others(i)).map((p) => (tamper ? tamper(p) : p)));
  const keys = ids.map((i) =>
    dkgRound3(
      r1[i - 1]!.secret,
      others(i),
      sent.flat().filter((p) => p.receiver === i),
    ),
  );
  return { keys, round1 };
}

interface Session {
  pkg: SigningPackage;
  signers: KeyPackage[];
  nonces: SigningNonces[];
}

function startSession(keys: KeyPackage[], ids: number[], message: Uint8Array): Session {
  const signers = ids.map((id) => keys.find((k) => k.identifier === id)!);
  const round1 = signers.map((k) => commit(k));
  return {
    pkg: { message, commitments: round1.map((r) => r.commitments) },
    signers,
    nonces: round1.map((r) => r.nonces),
  };
}

function signAll(s: Session): SignatureShare[] {
  return s.signers.map((k, i) => signShare(k, s.nonces[i]!, s.pkg));
}

function checkKeySet(keys: KeyPackage[], t: number, n: number): PublicKeyPackage {
  assert.equal(keys.length, n);
  const pub = keys[0]!.public;
  assert.equal(pub.threshold, t);
  assert.equal(pub.n, n);
  const json = JSON.stringify(encodePublicKeyPackage(pub));
  keys.forEach((k, i) => {
    assert.equal(k.identifier, i + 1);
    assert.equal(JSON.stringify(encodePublicKeyPackage(k.public)), json, `public package of ${k.identifier}`);
    validateKeyPackage(k);
  });
  // Shares are distinct.
  assert.equal(new Set(keys.map((k) => toHex(k.signingShare))).size, n);
  return pub;
}

function signAndVerify(keys: KeyPackage[], pub: PublicKeyPackage, subsets: number): void {
  const xkey = xOnlyGroupKey(pub);
  for (let r = 0; r < subsets; r++) {
    const ids = randomSubset(pub.n, pub.threshold);
    const message = msg32();
    const s = startSession(keys, ids, message);
    const shares = signAll(s);
    for (const sh of shares) assert.ok(verifyShare(pub, s.pkg, sh));
    const sig = aggregate(pub, s.pkg, shares);
    assert.equal(sig.length, 64);
    assert.ok(verifySignature(sig, message, xkey), `verifySignature, signers ${ids}`);
    assert.ok(libsecpVerify(sig, message, xkey), `libsecp, signers ${ids}`);
    // A different message does not verify.
    assert.equal(libsecpVerify(sig, msg32(), xkey), false);
  }
}

// ---------- tests ----------

const PARAMS: [number, number, number][] = [
  [2, 3, 3],
  [3, 5, 3],
  [7, 10, 2],
];

describeEachBackend('DKG and dealer round trips', () => {
  for (const [t, n, subsets] of PARAMS) {
    it(`${t}-of-${n} DKG: identical public packages, valid shares, signatures verify`, () => {
      const { keys } = runDkg(t, n);
      const pub = checkKeySet(keys, t, n);
      assert.equal(pub.tweak.kind, 'taproot');
      if (pub.tweak.kind === 'taproot') {
        assert.equal(pub.tweak.merkleRoot.length, 0);
        assert.equal(toHex(taprootOutputKey(pub.tweak.internalKey)), toHex(pub.commitments[0]!));
      }
      signAndVerify(keys, pub, subsets);
    });

    it(`${t}-of-${n} dealer split: identical public packages, valid shares, signatures verify`, () => {
      const { public: pub0, shares } = dealerSplit(randomSecret(), t, n);
      const pub = checkKeySet(shares, t, n);
      assert.deepEqual(encodePublicKeyPackage(pub0), encodePublicKeyPackage(pub));
      assert.equal(pub.tweak.kind, 'none');
      signAndVerify(shares, pub, subsets);
    });
  }

  it('a dealer key of a known secret signs for schnorr.getPublicKey(secret), untweaked', () => {
    for (let i = 0; i < 4; i++) {
      const secret = randomSecret();
      const { public: pub, shares } = dealerSplit(secret, 2, 3);
      assert.equal(pub.tweak.kind, 'none');
      assert.equal(toHex(xOnlyGroupKey(pub)), toHex(schnorr.getPublicKey(secret)));
      const message = msg32();
      const s = startSession(shares, randomSubset(3, 2), message);
      const sig = aggregate(pub, s.pkg, signAll(s));
      assert.ok(libsecpVerify(sig, message, schnorr.getPublicKey(secret)));
    }
  });

  it('dealerSplit refuses a zero or out-of-range secret and bad thresholds', () => {
    assert.throws(() => dealerSplit(new Uint8Array(32), 2, 3), isCrypto('invalid_scalar'));
    assert.throws(() => dealerSplit(new Uint8Array(32).fill(0xff), 2, 3), isCrypto('invalid_scalar'));
    assert.throws(() => dealerSplit(randomSecret(), 1, 3), isCrypto('invalid_package'));
    assert.throws(() => dealerSplit(randomSecret(), 4, 3), isCrypto('invalid_package'));
  });
});

describeEachBackend('cheater identification', () => {
  const keySets = () => [
    { name: 'dealer', keys: dealerSplit(randomSecret(), 3, 5).shares },
    { name: 'dkg', keys: runDkg(3, 5).keys },
  ];

  for (const mode of ['flipped byte', 'other message'] as const) {
    it(`one bad share (${mode}) is named as the only culprit`, () => {
      for (const { name, keys } of keySets()) {
        const pub = keys[0]!.public;
        const ids = randomSubset(5, 3);
        const s = startSession(keys, ids, msg32());
        const badIdx = randomInt(3);
        const bad = ids[badIdx]!;
        const shares = s.signers.map((k, i) => {
          if (i !== badIdx) return signShare(k, s.nonces[i]!, s.pkg);
          if (mode === 'other message') return signShare(k, s.nonces[i]!, { ...s.pkg, message: msg32() });
          const sh = signShare(k, s.nonces[i]!, s.pkg);
          sh.share[31]! ^= 0x01;
          return sh;
        });
        assert.throws(() => aggregate(pub, s.pkg, shares), isCrypto('aggregate_failed', [bad]), name);
        for (const sh of shares) assert.equal(verifyShare(pub, s.pkg, sh), sh.identifier !== bad, name);
      }
    });
  }

  it('two bad shares: both are named', () => {
    for (const { name, keys } of keySets()) {
      const pub = keys[0]!.public;
      const ids = randomSubset(5, 3);
      const s = startSession(keys, ids, msg32());
      const good = ids[randomInt(3)]!;
      // Different bytes per bad signer, so the two errors cannot cancel in the sum.
      let k = 31;
      const shares = signAll(s).map((sh) => {
        if (sh.identifier !== good) sh.share[k--]! ^= 0x01;
        return sh;
      });
      const bad = ids.filter((id) => id !== good);
      assert.throws(() => aggregate(pub, s.pkg, shares), isCrypto('aggregate_failed', bad), name);
      for (const sh of shares) assert.equal(verifyShare(pub, s.pkg, sh), sh.identifier === good, name);
    }
  });

  it('shares swapped between two signers fail verifyShare for both', () => {
    // The sum is unchanged, so the aggregate would still be a valid signature; per-share
    // verification is what tells the shares are not the ones these members should send.
    const keys = dealerSplit(randomSecret(), 2, 3).shares;
    const pub = keys[0]!.public;
    const s = startSession(keys, [1, 3], msg32());
    const [a, b] = signAll(s);
    assert.ok(verifyShare(pub, s.pkg, a!));
    assert.ok(verifyShare(pub, s.pkg, b!));
    assert.equal(verifyShare(pub, s.pkg, { identifier: 1, share: b!.share }), false);
    assert.equal(verifyShare(pub, s.pkg, { identifier: 3, share: a!.share }), false);
  });

  it('aggregate refuses shares from a set other than the signers in the package', () => {
    const keys = dealerSplit(randomSecret(), 2, 3).shares;
    const pub = keys[0]!.public;
    const s = startSession(keys, [1, 2], msg32());
    const shares = signAll(s);
    assert.throws(() => aggregate(pub, s.pkg, shares.slice(0, 1)), isCrypto('invalid_package'));
    assert.throws(
      () => aggregate(pub, s.pkg, [shares[0]!, { identifier: 3, share: shares[1]!.share }]),
      isCrypto('invalid_package'),
    );
    // The genuine set still aggregates.
    assert.ok(libsecpVerify(aggregate(pub, s.pkg, shares), s.pkg.message, xOnlyGroupKey(pub)));
  });
});

describeEachBackend('signShare refusals and nonce consumption', () => {
  const { shares: keys } = dealerSplit(randomSecret(), 3, 5);
  const c = (id: number) => commit(keys[id - 1]!);

  it('refuses a package without its own identifier', () => {
    const me = c(1);
    const pkg = { message: msg32(), commitments: [c(2), c(3), c(4)].map((r) => r.commitments) };
    assert.throws(() => signShare(keys[0]!, me.nonces, pkg), isCrypto('invalid_package'));
  });

  it('refuses t-1 and t+1 commitments', () => {
    const me = c(1);
    const fewer = { message: msg32(), commitments: [me, c(2)].map((r) => r.commitments) };
    const more = { message: msg32(), commitments: [me, c(2), c(3), c(4)].map((r) => r.commitments) };
    assert.throws(() => signShare(keys[0]!, me.nonces, fewer), isCrypto('invalid_package'));
    assert.throws(() => signShare(keys[0]!, me.nonces, more), isCrypto('invalid_package'));
  });

  it('refuses a non-member identifier and duplicate identifiers', () => {
    const me = c(1);
    const stranger = { ...c(2).commitments, identifier: 6 };
    const pkg = { message: msg32(), commitments: [me.commitments, c(3).commitments, stranger] };
    assert.throws(() => signShare(keys[0]!, me.nonces, pkg), isCrypto('invalid_package'));
    const dup = { message: msg32(), commitments: [me.commitments, c(3).commitments, c(3).commitments] };
    assert.throws(() => signShare(keys[0]!, me.nonces, dup), isCrypto('invalid_identifier'));
  });

  it('zero-fills the nonces after signing; the same nonce object cannot sign again', () => {
    const round1 = [1, 2, 3].map(c);
    const pkg = { message: msg32(), commitments: round1.map((r) => r.commitments) };
    const nonces = round1[0]!.nonces;
    assert.ok(nonces.hiding.some((b) => b !== 0));
    assert.ok(nonces.binding.some((b) => b !== 0));
    const first = signShare(keys[0]!, nonces, pkg);
    assert.ok(verifyShare(keys[0]!.public, pkg, first));
    assert.ok(nonces.hiding.every((b) => b === 0));
    assert.ok(nonces.binding.every((b) => b === 0));
    assert.throws(() => signShare(keys[0]!, nonces, pkg));
    assert.throws(() => signShare(keys[0]!, nonces, { ...pkg, message: msg32() }));
  });

  it("refuses nonces that do not match the member's commitments in the package", () => {
    const round1 = [1, 2, 3].map(c);
    const other = c(1);
    const pkg = { message: msg32(), commitments: round1.map((r) => r.commitments) };
    assert.throws(() => signShare(keys[0]!, other.nonces, pkg));
  });
});

describeEachBackend('decoded public packages are cached, but never stale', () => {
  it('a package changed in place is decoded again (verifyShare follows the new bytes)', () => {
    const { shares: keys } = dealerSplit(randomSecret(), 2, 3);
    const pub = keys[0]!.public;
    const s = startSession(keys, [1, 2], msg32());
    const shares = signAll(s);
    assert.ok(verifyShare(pub, s.pkg, shares[0]!));
    const saved = pub.verifyingShares.get(1)!;
    pub.verifyingShares.set(1, pub.verifyingShares.get(3)!);
    assert.equal(verifyShare(pub, s.pkg, shares[0]!), false);
    pub.verifyingShares.set(1, saved);
    assert.ok(verifyShare(pub, s.pkg, shares[0]!));
    assert.ok(libsecpVerify(aggregate(pub, s.pkg, shares), s.pkg.message, xOnlyGroupKey(pub)));
  });
});

describeEachBackend('DKG blame', () => {
  it('a tampered round-2 share from j makes the receiver name j', () => {
    const [t, n] = [2, 3];
    const ids = [1, 2, 3];
    const r1 = ids.map((i) => dkgRound1(i, t, n));
    const round1 = r1.map((r) => r.package);
    const others = (i: number) => round1.filter((p) => p.identifier !== i);
    const sent = ids.map((i) => dkgRound2(r1[i - 1]!.secret, others(i)));
    const j = 2;
    const receiver = 3;
    const received = sent.flat().filter((p) => p.receiver === receiver);
    const tampered = received.map((p) =>
      p.sender === j
        ? { ...p, signingShare: Uint8Array.from(p.signingShare, (b, k) => (k === 31 ? b ^ 1 : b)) }
        : p,
    );
    assert.throws(
      () => dkgRound3(r1[receiver - 1]!.secret, others(receiver), tampered),
      isCrypto('invalid_share', [j]),
    );
    // A round-2 share addressed to another member is refused, naming its sender.
    const misdirected = received.map((p) =>
      p.sender === j ? sent[j - 1]!.find((q) => q.receiver !== receiver)! : p,
    );
    assert.throws(
      () => dkgRound3(r1[receiver - 1]!.secret, others(receiver), misdirected),
      isCrypto('invalid_package', [j]),
    );
    // The untampered set still works for the same receiver.
    validateKeyPackage(dkgRound3(r1[receiver - 1]!.secret, others(receiver), received));
  });

  it('the tampered-share blame also holds in a full 3-of-5 run', () => {
    const j = 4;
    assert.throws(
      () =>
        runDkg(3, 5, (p) =>
          p.sender === j && p.receiver === 1
            ? { ...p, signingShare: Uint8Array.from(p.signingShare, (b, k) => (k === 0 ? b ^ 0x10 : b)) }
            : p,
        ),
      isCrypto('invalid_share', [j]),
    );
  });

  it('round-1 packages with a wrong commitment count or a bad proof are refused, naming the sender', () => {
    const [t, n] = [3, 4];
    const r1 = [1, 2, 3, 4].map((i) => dkgRound1(i, t, n));
    const me = r1[0]!.secret;
    const others = r1.slice(1).map((r) => r.package);
    const replace = (id: number, p: DkgRound1Package) => others.map((o) => (o.identifier === id ? p : o));

    const short = { ...others[1]!, commitment: others[1]!.commitment.slice(0, t - 1) };
    assert.throws(() => dkgRound2(me, replace(3, short)), isCrypto('invalid_package', [3]));
    const long = { ...others[1]!, commitment: [...others[1]!.commitment, others[0]!.commitment[0]!] };
    assert.throws(() => dkgRound2(me, replace(3, long)), isCrypto('invalid_package', [3]));

    const proof = Uint8Array.from(others[2]!.proofOfKnowledge);
    proof[50]! ^= 1;
    assert.throws(
      () => dkgRound2(me, replace(4, { ...others[2]!, proofOfKnowledge: proof })),
      isCrypto('invalid_package', [4]),
    );
    // A valid proof under another member's identifier does not pass.
    assert.throws(
      () => dkgRound2(me, replace(2, { ...others[1]!, identifier: 2 })),
      isCrypto('invalid_package', [2]),
    );
    // Someone else's commitment with the sender's own proof fails too.
    const swapped = { ...others[0]!, commitment: others[1]!.commitment };
    assert.throws(() => dkgRound2(me, replace(2, swapped)), isCrypto('invalid_package', [2]));
    // And the untampered set is accepted.
    assert.equal(dkgRound2(me, others).length, 3);
    // Round 3 skips the proofs only of the very set its round 2 verified: a state that has not
    // been through round 2 checks them, and one that has refuses any other set.
    const badProof = replace(4, { ...others[2]!, proofOfKnowledge: proof });
    assert.throws(() => dkgRound3(dkgRound1(1, t, n).secret, badProof, []), isCrypto('invalid_package', [4]));
    assert.throws(() => dkgRound3(me, badProof, []), isCrypto('invalid_package', [4]));
  });

  it('a round-1 set that misses a member (or includes oneself or a stranger) is refused', () => {
    const [t, n] = [2, 3];
    const r1 = [1, 2, 3].map((i) => dkgRound1(i, t, n));
    const me = r1[0]!.secret;
    assert.throws(() => dkgRound2(me, [r1[1]!.package]), isCrypto('invalid_package'));
    assert.throws(() => dkgRound2(me, [r1[0]!.package, r1[1]!.package]), isCrypto('invalid_package'));
    assert.throws(
      () => dkgRound2(me, [r1[1]!.package, r1[2]!.package, { ...r1[2]!.package, identifier: 4 }]),
      isCrypto('invalid_package'),
    );
    // Round 3 applies the same rule.
    const others = (i: number) => r1.filter((r) => r.package.identifier !== i).map((r) => r.package);
    const sent = [1, 2, 3].map((i) => dkgRound2(r1[i - 1]!.secret, others(i)));
    const received = sent.flat().filter((p) => p.receiver === 1);
    assert.throws(() => dkgRound3(me, [r1[1]!.package], received.slice(0, 1)), isCrypto('invalid_package'));
    assert.throws(() => dkgRound3(me, others(1), received.slice(0, 1)), isCrypto('invalid_package'));
  });
});
