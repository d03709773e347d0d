/**
 * Proactive share refresh (src/crypto/refresh.ts) on keys made by the DKG (BIP-86 tweaked) and by
 * the trusted dealer (untweaked, as a Nostr import keeps it, and Taproot-tweaked), for every
 * parity of the internal and the output key, on every backend. Signatures made with refreshed
 * shares are checked with noble's BIP-340 verifier and libsecp256k1, not with the code under test.
 */
import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { it } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { cryptoBackend, withBackend } from '../../src/crypto/backend.js';
import { dealerSplit, validateKeyPackage } from '../../src/crypto/dealer.js';
import { deriveTaprootKeyPackage } from '../../src/crypto/derive-key.js';
import { dkgRound1, dkgRound2, dkgRound3 } from '../../src/crypto/dkg.js';
import { encodeKeyPackage, encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { toHex } from '../../src/crypto/hex.js';
import {
  type RefreshRound1Package,
  refreshPublicKeyPackage,
  refreshRound1,
  refreshRound2,
  refreshRound3,
  refreshWipe,
  verifyRefreshRound1Package,
} from '../../src/crypto/refresh.js';
import * as S from '../../src/crypto/scalar.js';
import { aggregate, commit, groupPublicKey, signShare, xOnlyGroupKey } from '../../src/crypto/signing.js';
import { tweakKeyPackage } from '../../src/crypto/tweak.js';
import type { DkgRound2Package, KeyPackage, PublicKeyPackage } from '../../src/crypto/types.js';
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
const keyJson = (k: KeyPackage) => JSON.stringify(encodeKeyPackage(k));

/** A whole DKG among 1..n, member i drawing from seededRng(`${label}/${i}`). */
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

/** A secret scalar from a label (0 < s < n). */
function secretFrom(label: string): Uint8Array {
  const s = sha('secret', label);
  assert.ok(S.fromBytes(s) > 0n && S.fromBytes(s) < S.N);
  return s;
}

interface RefreshRun {
  keys: KeyPackage[];
  round1: RefreshRound1Package[];
  round2: DkgRound2Package[];
}

/** A whole refresh among every member of `keys` (sorted by identifier). */
function runRefresh(keys: readonly KeyPackage[], label: string): RefreshRun {
  const { threshold: t, n } = keys[0]!.public;
  const r1 = keys.map((k) => refreshRound1(k.identifier, t, n, seededRng(`${label}/${k.identifier}`)));
  const others = (id: number) => r1.filter((r) => r.package.identifier !== id).map((r) => r.package);
  const r2 = r1.flatMap((r) => refreshRound2(r.secret, others(r.package.identifier)));
  const fresh = r1.map((r, i) =>
    refreshRound3(
      r.secret,
      others(r.package.identifier),
      r2.filter((p) => p.receiver === r.package.identifier),
      keys[i]!,
    ),
  );
  return { keys: fresh, round1: r1.map((r) => r.package), round2: r2 };
}

/** commit → signShare → aggregate with exactly `signers`. */
function signWith(signers: readonly KeyPackage[], pub: PublicKeyPackage, message: Uint8Array): Uint8Array {
  const round1 = signers.map((k) => commit(k));
  const pkg = { message, commitments: round1.map((r) => r.commitments) };
  const shares = signers.map((k, i) => signShare(k, round1[i]!.nonces, pkg));
  return aggregate(pub, pkg, shares);
}

/** Both independent BIP-340 verifiers accept `sig` under the x-only key. */
function verifiesIndependently(sig: Uint8Array, msg32: Uint8Array, xOnly: Uint8Array): boolean {
  return schnorr.verify(sig, msg32, xOnly) && libsecpVerify(sig, msg32, xOnly);
}

function randomSubset(n: number, t: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, t).sort((a, b) => a - b);
}

function subsets(n: number, t: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, acc: number[]) => {
    if (acc.length === t) return void out.push([...acc]);
    for (let i = start; i <= n; i++) rec(i + 1, [...acc, i]);
  };
  rec(1, []);
  return out;
}

const isCode = (code: string, culprits?: number[]) => (e: unknown) => {
  assert.ok(e instanceof CryptoError, `expected a CryptoError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (culprits) assert.deepEqual(e.culprits, culprits, e.message);
  return true;
};

/** Dealer secrets by parity: of the internal key P and of the BIP-86 output key Q (tweaked). */
function parityCases(): { label: string; secret: Uint8Array; pOdd: boolean; qOdd: boolean }[] {
  const found = new Map<string, { label: string; secret: Uint8Array; pOdd: boolean; qOdd: boolean }>();
  for (let i = 0; found.size < 4 && i < 200; i++) {
    const secret = secretFrom(`parity/${i}`);
    // P's parity from noble, independently of the code under test.
    const pOdd = secp256k1.getPublicKey(secret, true)[0] === 3;
    const deal = dealerSplit(secret, 2, 2, seededRng(`parity-poly/${i}`));
    const qOdd = tweakKeyPackage(deal.shares[0]!).public.commitments[0]![0] === 3;
    const key = `${pOdd}/${qOdd}`;
    if (!found.has(key)) found.set(key, { label: `parity/${i}`, secret, pOdd, qOdd });
  }
  assert.equal(found.size, 4, 'all four parity combinations found');
  return [...found.values()];
}

const CONFIGS = [
  [2, 2],
  [2, 3],
  [3, 5],
  [4, 6],
  [5, 7],
] as const;

const sourceCache = new Map<string, { name: string; keys: KeyPackage[] }[]>();

/** Every kind of stored key the service holds, with a name for messages; made once per backend. */
function keySources(): { name: string; keys: KeyPackage[] }[] {
  const backend = cryptoBackend().name;
  let cached = sourceCache.get(backend);
  if (!cached) {
    cached = makeKeySources();
    sourceCache.set(backend, cached);
  }
  return cached;
}

function makeKeySources(): { name: string; keys: KeyPackage[] }[] {
  const out: { name: string; keys: KeyPackage[] }[] = [];
  for (const [t, n] of CONFIGS) out.push({ name: `DKG ${t}-of-${n}`, keys: runDkg(t, n, `dkg/${t}/${n}`) });
  for (const c of parityCases()) {
    const [t, n] = c.pOdd ? [3, 5] : [2, 4];
    const deal = dealerSplit(c.secret, t, n, seededRng(`${c.label}/poly`));
    const p = c.pOdd ? 'odd' : 'even';
    // Untweaked (imported Nostr key): the group key is P itself.
    // Untweaked keys depend on P only: one per parity of P.
    if (c.qOdd) out.push({ name: `dealer ${t}-of-${n} untweaked, P ${p}`, keys: deal.shares });
    out.push({
      name: `dealer ${t}-of-${n} tweaked, P ${p}, Q ${c.qOdd ? 'odd' : 'even'}`,
      keys: deal.shares.map((k) => tweakKeyPackage(k)),
    });
  }
  return out;
}

const MSG = sha('floe refresh test message');

// ---------- tests ----------

describeEachBackend('proactive refresh', () => {
  it('keeps group key, tweak and internal key; one public package for all, as refreshPublicKeyPackage computes', () => {
    const sources = keySources();
    // Both parities of P and of Q are covered, tweaked and untweaked.
    assert.ok(
      sources.some(
        (s) => s.keys[0]!.public.tweak.kind === 'none' && groupPublicKey(s.keys[0]!.public)[0] === 3,
      ),
    );
    assert.ok(
      sources.some(
        (s) => s.keys[0]!.public.tweak.kind === 'none' && groupPublicKey(s.keys[0]!.public)[0] === 2,
      ),
    );
    for (const { name, keys } of sources) {
      const old = keys[0]!.public;
      const { keys: fresh, round1 } = runRefresh(keys, `refresh/${name}`);
      const pub = fresh[0]!.public;
      assert.deepEqual(groupPublicKey(pub), groupPublicKey(old), name);
      assert.deepEqual(xOnlyGroupKey(pub), xOnlyGroupKey(old), name);
      assert.deepEqual(encodePublicKeyPackage(pub).tweak, encodePublicKeyPackage(old).tweak, name);
      assert.equal(pub.threshold, old.threshold);
      assert.equal(pub.n, old.n);
      for (const k of fresh) assert.equal(pubJson(k.public), pubJson(pub), `${name}: member ${k.identifier}`);
      assert.equal(pubJson(refreshPublicKeyPackage(old, round1)), pubJson(pub), name);
      // Order of the round-1 packages does not matter to the coordinator.
      assert.equal(pubJson(refreshPublicKeyPackage(old, [...round1].reverse())), pubJson(pub), name);
      for (const [i, k] of fresh.entries()) {
        validateKeyPackage(k);
        assert.equal(k.identifier, keys[i]!.identifier);
        assert.notDeepEqual(k.signingShare, keys[i]!.signingShare, `${name}: share ${k.identifier} changed`);
        assert.notDeepEqual(pub.verifyingShares.get(k.identifier), old.verifyingShares.get(k.identifier));
      }
      for (let c = 1; c < pub.threshold; c++) assert.notDeepEqual(pub.commitments[c], old.commitments[c]);
    }
  });

  it('refreshed shares of any t members sign under the unchanged key (BIP-340, noble and libsecp256k1)', () => {
    for (const { name, keys } of keySources()) {
      const { keys: fresh } = runRefresh(keys, `sign/${name}`);
      const { threshold: t, n } = fresh[0]!.public;
      const xonly = xOnlyGroupKey(keys[0]!.public);
      const sets = n <= 5 ? subsets(n, t) : [randomSubset(n, t), randomSubset(n, t)];
      for (const ids of sets) {
        const sig = signWith(
          ids.map((id) => fresh[id - 1]!),
          fresh[0]!.public,
          MSG,
        );
        assert.ok(verifiesIndependently(sig, MSG, xonly), `${name}: signers ${ids}`);
      }
    }
  });

  it('an old share does not combine with new shares: aggregation fails and names the stale member', () => {
    for (const { name, keys } of keySources()) {
      const { keys: fresh } = runRefresh(keys, `mix/${name}`);
      const { threshold: t, n } = fresh[0]!.public;
      const ids = randomSubset(n, t);
      const stale = ids[randomInt(ids.length)]!;
      const signers = ids.map((id) => (id === stale ? keys[id - 1]! : fresh[id - 1]!));
      // Judged by the new public package, the old share is the bad one…
      assert.throws(
        () => signWith(signers, fresh[0]!.public, MSG),
        isCode('aggregate_failed', [stale]),
        name,
      );
      // …and by the old one, every refreshed share is.
      assert.throws(
        () => signWith(signers, keys[0]!.public, MSG),
        isCode(
          'aggregate_failed',
          ids.filter((id) => id !== stale),
        ),
        name,
      );
      // An old share does not fit the new public package at all.
      assert.throws(
        () => validateKeyPackage({ ...keys[stale - 1]!, public: fresh[0]!.public }),
        isCode('invalid_share'),
      );
    }
  });

  it('refreshes again, and derived (BIP-32 style) keys keep their addresses and still sign', () => {
    const keys = runDkg(3, 4, 'twice');
    const once = runRefresh(keys, 'twice/1').keys;
    const twice = runRefresh(once, 'twice/2').keys;
    assert.deepEqual(groupPublicKey(twice[0]!.public), groupPublicKey(keys[0]!.public));
    for (const [i, k] of twice.entries()) {
      assert.notDeepEqual(k.signingShare, once[i]!.signingShare);
      assert.notDeepEqual(k.signingShare, keys[i]!.signingShare);
    }
    const d = sha('derivation tweak');
    const before = deriveTaprootKeyPackage(keys[0]!, d);
    const derived = [1, 3, 4].map((id) => deriveTaprootKeyPackage(twice[id - 1]!, d));
    assert.deepEqual(groupPublicKey(derived[0]!.public), groupPublicKey(before.public));
    const sig = signWith(derived, derived[0]!.public, MSG);
    assert.ok(verifiesIndependently(sig, MSG, xOnlyGroupKey(before.public)));
  });

  it('a tampered sub-share is rejected in round 3, naming its sender', () => {
    const keys = runDkg(3, 5, 'tamper');
    const r1 = keys.map((k) => refreshRound1(k.identifier, 3, 5, seededRng(`tamper/${k.identifier}`)));
    const others = (id: number) => r1.filter((r) => r.package.identifier !== id).map((r) => r.package);
    const r2 = r1.flatMap((r) => refreshRound2(r.secret, others(r.package.identifier)));
    const forOne = r2.filter((p) => p.receiver === 1);
    // Sender 4's sub-share to member 1, plus one.
    const bumped = forOne.map((p) =>
      p.sender === 4 ? { ...p, signingShare: S.toBytes(S.add(S.fromBytes(p.signingShare), 1n)) } : p,
    );
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), bumped, keys[0]!),
      isCode('invalid_share', [4]),
    );
    // Sender 2's sub-share meant for member 3, sent to member 1 as if it were member 1's.
    const swapped = forOne.map((p) =>
      p.sender === 2
        ? { ...p, signingShare: r2.find((q) => q.sender === 2 && q.receiver === 3)!.signingShare }
        : p,
    );
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), swapped, keys[0]!),
      isCode('invalid_share', [2]),
    );
    // Out of range or zero.
    const junk = forOne.map((p) =>
      p.sender === 5 ? { ...p, signingShare: new Uint8Array(32).fill(0xff) } : p,
    );
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), junk, keys[0]!),
      isCode('invalid_share', [5]),
    );
    const zero = forOne.map((p) => (p.sender === 3 ? { ...p, signingShare: new Uint8Array(32) } : p));
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), zero, keys[0]!),
      isCode('invalid_share', [3]),
    );
    // A missing or misaddressed package.
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), forOne.slice(1), keys[0]!),
      isCode('invalid_package'),
    );
    const misaddressed = forOne.map((p) => (p.sender === 2 ? { ...p, receiver: 3 } : p));
    assert.throws(
      () => refreshRound3(r1[0]!.secret, others(1), misaddressed, keys[0]!),
      isCode('invalid_package', [2]),
    );
    // The untampered packages still work (the failures did not consume the state).
    const fresh = refreshRound3(r1[0]!.secret, others(1), forOne, keys[0]!);
    validateKeyPackage(fresh);
  });

  it('a member committing to a polynomial it does not use is named by the others', () => {
    const keys = runDkg(2, 3, 'liar');
    const r1 = keys.map((k) => refreshRound1(k.identifier, 2, 3, seededRng(`liar/${k.identifier}`)));
    // Member 2 broadcasts someone else's commitment (it cannot open it) but deals its own polynomial.
    const lie = refreshRound1(2, 2, 3, seededRng('liar/other')).package.commitment;
    const broadcast = r1.map((r) =>
      r.package.identifier === 2 ? { identifier: 2, commitment: lie } : r.package,
    );
    const others = (id: number) => broadcast.filter((p) => p.identifier !== id);
    const r2 = r1.flatMap((r) => refreshRound2(r.secret, others(r.package.identifier)));
    for (const id of [1, 3]) {
      assert.throws(
        () =>
          refreshRound3(
            r1[id - 1]!.secret,
            others(id),
            r2.filter((p) => p.receiver === id),
            keys[id - 1]!,
          ),
        isCode('invalid_share', [2]),
      );
    }
  });

  it('round-1 packages with the wrong length or a non-point are rejected, naming the sender', () => {
    const good = refreshRound1(2, 3, 4, seededRng('r1')).package;
    verifyRefreshRound1Package(good, 3);
    assert.equal(good.commitment.length, 2, 't−1 commitments: a_0 = 0 is implicit');
    const withConstant = { ...good, commitment: [good.commitment[0]!, ...good.commitment] };
    const bad: [string, RefreshRound1Package][] = [
      ['t commitments (constant included)', withConstant],
      ['t−2 commitments', { ...good, commitment: good.commitment.slice(1) }],
      ['no commitments', { ...good, commitment: [] }],
      ['identity as 33 zero bytes', { ...good, commitment: [good.commitment[0]!, new Uint8Array(33)] }],
      ['identity as one zero byte', { ...good, commitment: [Uint8Array.of(0), good.commitment[1]!] }],
      [
        'x not on the curve',
        { ...good, commitment: [good.commitment[0]!, Uint8Array.of(2, ...new Uint8Array(32).fill(0xff))] },
      ],
      [
        'uncompressed prefix',
        { ...good, commitment: [Uint8Array.of(4, ...good.commitment[0]!.subarray(1)), good.commitment[1]!] },
      ],
    ];
    for (const [what, p] of bad) {
      assert.throws(() => verifyRefreshRound1Package(p, 3), isCode('invalid_package', [2]), what);
    }
    // Round 2 and the coordinator's computation refuse them too.
    const me = refreshRound1(1, 3, 4, seededRng('r1/me'));
    const rest = [3, 4].map((id) => refreshRound1(id, 3, 4, seededRng(`r1/${id}`)).package);
    assert.throws(() => refreshRound2(me.secret, [withConstant, ...rest]), isCode('invalid_package', [2]));
    const keys = runDkg(3, 4, 'r1/keys');
    assert.throws(
      () => refreshPublicKeyPackage(keys[0]!.public, [me.package, withConstant, ...rest]),
      isCode('invalid_package', [2]),
    );
    // Every member's package is needed, once.
    assert.throws(
      () => refreshPublicKeyPackage(keys[0]!.public, [me.package, good, rest[0]!]),
      isCode('invalid_package'),
    );
    assert.throws(() => refreshRound2(me.secret, [good, rest[0]!]), isCode('invalid_package'));
    assert.throws(() => refreshRound2(me.secret, [good, good, rest[0]!]), isCode('invalid_identifier'));
    assert.throws(() => refreshRound2(me.secret, [me.package, good, ...rest]), isCode('invalid_package'));
    // Round 1 itself checks its parameters.
    assert.throws(() => refreshRound1(5, 3, 4), isCode('invalid_identifier'));
    assert.throws(() => refreshRound1(1, 5, 4), isCode('invalid_package'));
    assert.throws(() => refreshRound1(1, 1, 4), isCode('invalid_package'));
  });

  it('round 2 is repeatable, refuses a different set on a repeat; round 3 checks its inputs and wipes', () => {
    const keys = runDkg(2, 3, 'repeat');
    const r1 = keys.map((k) => refreshRound1(k.identifier, 2, 3, seededRng(`repeat/${k.identifier}`)));
    const others = (id: number) => r1.filter((r) => r.package.identifier !== id).map((r) => r.package);
    const first = refreshRound2(r1[0]!.secret, others(1));
    assert.deepEqual(refreshRound2(r1[0]!.secret, [...others(1)].reverse()), first);
    assert.deepEqual(
      first.map((p) => [p.sender, p.receiver]),
      [
        [1, 2],
        [1, 3],
      ],
    );
    const substitute = refreshRound1(3, 2, 3, seededRng('repeat/substitute')).package;
    assert.throws(
      () => refreshRound2(r1[0]!.secret, [others(1)[0]!, substitute]),
      /differ from those of an earlier/,
    );
    const r2 = r1.flatMap((r) => refreshRound2(r.secret, others(r.package.identifier)));
    const toOne = r2.filter((p) => p.receiver === 1);
    assert.throws(
      () => refreshRound3(r1[0]!.secret, [others(1)[0]!, substitute], toOne, keys[0]!),
      /differ from those of round 2/,
    );
    // The current key must be this member's, of this threshold, and consistent.
    assert.throws(() => refreshRound3(r1[0]!.secret, others(1), toOne, keys[1]!), /another member/);
    const wrongT = { ...keys[0]!, public: { ...keys[0]!.public, threshold: 3 } };
    assert.throws(() => refreshRound3(r1[0]!.secret, others(1), toOne, wrongT), /another threshold or n/);
    const tampered = { ...keys[0]!, signingShare: S.toBytes(S.add(S.fromBytes(keys[0]!.signingShare), 1n)) };
    assert.throws(() => refreshRound3(r1[0]!.secret, others(1), toOne, tampered), isCode('invalid_share'));
    // Success wipes the state: no second round 3 or round 2 from it.
    refreshRound3(r1[0]!.secret, others(1), toOne, keys[0]!);
    assert.equal(r1[0]!.secret.coefficients.length, 0);
    assert.throws(() => refreshRound3(r1[0]!.secret, others(1), toOne, keys[0]!), /already used or wiped/);
    refreshWipe(r1[1]!.secret);
    assert.throws(() => refreshRound2(r1[1]!.secret, others(2)), /already used or wiped/);
  });
});

it('refresh outputs are byte-identical on every backend for a deterministic rng', () => {
  const run = () => {
    const dkg = runDkg(3, 5, 'xb/dkg');
    const dealt = dealerSplit(secretFrom('xb'), 4, 6, seededRng('xb/poly')).shares.map((k) =>
      tweakKeyPackage(k),
    );
    const out: string[] = [];
    for (const keys of [dkg, dealt]) {
      const r = runRefresh(keys, `xb/${keys[0]!.public.n}`);
      out.push(
        ...r.round1.map((p) => p.commitment.map(toHex).join()),
        ...r.round2.map((p) => toHex(p.signingShare)),
        ...r.keys.map(keyJson),
      );
    }
    return out;
  };
  const results = ALL_BACKENDS.map((name) => withBackend(name, run));
  for (const [i, r] of results.entries())
    assert.deepEqual(r, results[0], `${ALL_BACKENDS[i]} vs ${ALL_BACKENDS[0]}`);
  assert.ok(results[0]!.length > 20);
});
