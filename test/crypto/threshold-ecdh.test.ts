/**
 * Threshold ECDH (src/crypto/threshold-ecdh.ts) against @noble/curves: for dealer keys (either
 * parity of Y, tweaked or not) and DKG keys (Taproot-tweaked), any t of n members' shares
 * combine to the x of the ECDH point of the secret whose BIP-340 key is the group key's x, as
 * noble's getSharedSecret computes it from that secret (rebuilt here independently); the NIP-44
 * vectors' conversation keys come out of a split sec1; a corrupted share or proof is refused
 * with its member named. Every suite runs on every backend.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  CryptoError,
  CURVE_ORDER,
  dealerSplit,
  dkgRound1,
  dkgRound2,
  dkgRound3,
  fromHex,
  type KeyPackage,
  type PublicKeyPackage,
  toHex,
  tweakKeyPackage,
  useBackend,
  utf8,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import {
  combineEcdhShares,
  type EcdhShare,
  ecdhShare,
  ecdhShareContext,
  isEcdhPeer,
  verifyEcdhShare,
} from '../../src/crypto/threshold-ecdh.js';
import { ALL_BACKENDS, describeEachBackend } from './backends.js';

const { Point } = secp256k1;
const N = CURVE_ORDER;
const int = (b: Uint8Array) => BigInt(`0x${toHex(b)}`);
const be32 = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));
const mod = (x: bigint) => ((x % N) + N) % N;

function randomScalar(): bigint {
  for (;;) {
    const v = int(new Uint8Array(randomBytes(32)));
    if (v > 0n && v < N) return v;
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

/** A peer's x-only key (a random point; either parity of the secret behind it). */
const randomPeer = () => Point.BASE.multiply(randomScalar()).toBytes(true).subarray(1);

/** noble's ECDH of `secret` with lift_x(peer): the reference the combination must equal. */
const nobleEcdhX = (secret: bigint, peer: Uint8Array) =>
  toHex(secp256k1.getSharedSecret(be32(secret), Uint8Array.of(2, ...peer)).subarray(1));

/** The secret behind t key packages, by Lagrange interpolation in plain bigint (independent of src/). */
function interpolate(keys: readonly KeyPackage[]): bigint {
  const xs = keys.map((k) => BigInt(k.identifier));
  let d = 0n;
  for (const k of keys) {
    const xi = BigInt(k.identifier);
    let num = 1n;
    let den = 1n;
    for (const xj of xs) {
      if (xj === xi) continue;
      num = mod(num * xj);
      den = mod(den * (xj - xi));
    }
    d = mod(d + int(k.signingShare) * num * modInv(den));
  }
  return d;
}

function modInv(a: bigint): bigint {
  // Fermat: a^(n-2) mod n
  let r = 1n;
  let b = mod(a);
  let e = N - 2n;
  while (e > 0n) {
    if (e & 1n) r = mod(r * b);
    b = mod(b * b);
    e >>= 1n;
  }
  return r;
}

const ctxFor =
  (keyId: string, requestId: string, peer: Uint8Array, purpose = 'nip44') =>
  (id: number) =>
    ecdhShareContext({ keyId, requestId, peer, purpose, identifier: id });

/** Every member's share for one request. */
function allShares(keys: readonly KeyPackage[], peer: Uint8Array, ctx: (id: number) => Uint8Array) {
  return keys.map((k) => ecdhShare(k, peer, ctx(k.identifier)));
}

function runDkg(t: number, n: number): KeyPackage[] {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const r1 = ids.map((i) => dkgRound1(i, t, n));
  const round1 = r1.map((r) => r.package);
  const others = (i: number) => round1.filter((p) => p.identifier !== i);
  const sent = ids.map((i) => dkgRound2(r1[i - 1]!.secret, others(i)));
  return ids.map((i) =>
    dkgRound3(
      r1[i - 1]!.secret,
      others(i),
      sent.flat().filter((p) => p.receiver === i),
    ),
  );
}

/** A dealer secret whose public key has the given Y parity. */
function secretWithParity(odd: boolean): bigint {
  for (;;) {
    const d = randomScalar();
    const y = Point.BASE.multiply(d).toAffine().y;
    if ((y % 2n === 1n) === odd) return d;
  }
}

const isCrypto =
  (code: CryptoError['code'], culprits?: number[]) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof CryptoError, `expected a CryptoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (culprits) assert.deepEqual(e.culprits, culprits);
    return true;
  };

/** x of the group key, from noble: what the Nostr pubkey of the key is. */
const nostrPubkey = (pub: PublicKeyPackage) => toHex(xOnlyGroupKey(pub));

/** The independent taproot tweak: d_even + H_TapTweak(x(d·G)) (node:crypto SHA-256). */
function tapTweakedSecret(d: bigint): bigint {
  const P = Point.BASE.multiply(d);
  const even = P.toAffine().y % 2n === 0n ? d : N - d;
  const tag = createHash('sha256').update('TapTweak').digest();
  const t = int(
    new Uint8Array(createHash('sha256').update(tag).update(tag).update(P.toBytes(true).subarray(1)).digest()),
  );
  return mod(even + t);
}

describeEachBackend('threshold ECDH', () => {
  it('dealer keys, either Y parity, random t-of-n and random sets: x equals noble’s ECDH of the secret', () => {
    for (const [t, n] of [
      [2, 2],
      [2, 3],
      [3, 5],
      [4, 7],
    ] as const) {
      for (const odd of [false, true]) {
        const d = secretWithParity(odd);
        const { shares: keys, public: pub } = dealerSplit(be32(d), t, n);
        assert.equal(nostrPubkey(pub), toHex(Point.BASE.multiply(d).toBytes(true).subarray(1)));
        const peer = randomPeer();
        const ctx = ctxFor('k1', 'r1', peer);
        const shares = allShares(keys, peer, ctx);
        const want = nobleEcdhX(d, peer);
        for (let i = 0; i < 3; i++) {
          const set = randomSubset(n, t);
          const x = combineEcdhShares(
            pub,
            peer,
            shares.filter((s) => set.includes(s.identifier)),
            ctx,
          );
          assert.equal(x.length, 32);
          assert.equal(toHex(x), want, `${t}-of-${n}, odd=${odd}, set ${set}`);
        }
        // More than t members give the same value.
        assert.equal(toHex(combineEcdhShares(pub, peer, shares, ctx)), want);
      }
    }
  });

  it('taproot-tweaked dealer keys: the value of the tweaked secret, the one the x-only key belongs to', () => {
    for (const odd of [false, true]) {
      const d = secretWithParity(odd);
      const split = dealerSplit(be32(d), 2, 3);
      const keys = split.shares.map((k) => tweakKeyPackage(k));
      const pub = keys[0]!.public;
      const dt = tapTweakedSecret(d);
      assert.equal(nostrPubkey(pub), toHex(Point.BASE.multiply(dt).toBytes(true).subarray(1)));
      const peer = randomPeer();
      const ctx = ctxFor('k-tweaked', 'r', peer, 'nip04');
      const set = randomSubset(3, 2);
      const x = combineEcdhShares(
        pub,
        peer,
        allShares(
          keys.filter((k) => set.includes(k.identifier)),
          peer,
          ctx,
        ),
        ctx,
      );
      assert.equal(toHex(x), nobleEcdhX(dt, peer));
      // …and not the untweaked secret's.
      assert.notEqual(toHex(x), nobleEcdhX(d, peer));
    }
  });

  it('DKG keys (Taproot-tweaked output): x equals noble’s ECDH of the interpolated secret', () => {
    for (const [t, n] of [
      [2, 3],
      [3, 4],
    ] as const) {
      const keys = runDkg(t, n);
      const pub = keys[0]!.public;
      assert.equal(pub.tweak.kind, 'taproot');
      const d = interpolate(keys.slice(0, t));
      // The interpolated secret is the key's: d·G is the group key (either parity).
      assert.equal(Point.BASE.multiply(d).toHex(true), toHex(pub.commitments[0]!));
      const peer = randomPeer();
      const ctx = ctxFor('k-dkg', 'r', peer);
      const shares = allShares(keys, peer, ctx);
      for (let i = 0; i < 3; i++) {
        const set = randomSubset(n, t);
        const x = combineEcdhShares(
          pub,
          peer,
          shares.filter((s) => set.includes(s.identifier)),
          ctx,
        );
        assert.equal(toHex(x), nobleEcdhX(d, peer));
      }
    }
  });

  it('reproduces the NIP-44 vectors’ get_conversation_key from a split sec1', () => {
    const vectors = JSON.parse(
      readFileSync(new URL('../fixtures/nostr/nip44.vectors.json', import.meta.url), 'utf8'),
    ).v2.valid.get_conversation_key as { sec1: string; pub2: string; conversation_key: string }[];
    assert.ok(vectors.length >= 10);
    for (const v of vectors) {
      const { shares: keys, public: pub } = dealerSplit(fromHex(v.sec1, 'sec1', 32), 2, 3);
      const peer = fromHex(v.pub2, 'pub2', 32);
      const ctx = ctxFor('k', 'r', peer);
      const set = randomSubset(3, 2);
      const x = combineEcdhShares(
        pub,
        peer,
        allShares(
          keys.filter((k) => set.includes(k.identifier)),
          peer,
          ctx,
        ),
        ctx,
      );
      // HKDF-extract with @noble/hashes directly: independent of src/nostr/nip44.ts.
      assert.equal(toHex(extract(sha256, x, utf8('nip44-v2'))), v.conversation_key, v.sec1);
    }
  });

  it('a corrupted share, a flipped proof bit, a proof for another request or member: refused, members named', () => {
    const d = randomScalar();
    const { shares: keys, public: pub } = dealerSplit(be32(d), 3, 5);
    const peer = randomPeer();
    const ctx = ctxFor('k1', 'r1', peer);
    const shares = allShares(keys, peer, ctx);
    const set = (s: EcdhShare[]) => s.filter((x) => [1, 3, 5].includes(x.identifier));
    const G = Point.BASE.toBytes(true);
    const plusG = (s: EcdhShare): EcdhShare => ({
      ...s,
      shared: Point.fromBytes(s.shared).add(Point.fromBytes(G)).toBytes(true),
    });
    const negated = (s: EcdhShare): EcdhShare => ({
      ...s,
      shared: Uint8Array.of(s.shared[0]! ^ 1, ...s.shared.subarray(1)),
    });
    const flipped = (s: EcdhShare, bit: number): EcdhShare => {
      const proof = Uint8Array.from(s.proof);
      proof[bit >> 3]! ^= 1 << (bit & 7);
      return { ...s, proof };
    };
    const cases: [string, EcdhShare[], number[]][] = [
      ['S_3 + G with its honest proof', set(shares).map((s) => (s.identifier === 3 ? plusG(s) : s)), [3]],
      ['−S_1', set(shares).map((s) => (s.identifier === 1 ? negated(s) : s)), [1]],
      ['proof bit 0 of 5', set(shares).map((s) => (s.identifier === 5 ? flipped(s, 0) : s)), [5]],
      [
        'proof bit 300 of 1 and 3',
        set(shares).map((s) => (s.identifier !== 5 ? flipped(s, 300) : s)),
        [1, 3],
      ],
      [
        'a proof made for another request',
        set(shares).map((s) =>
          s.identifier === 3 ? ecdhShare(keys[2]!, peer, ctxFor('k1', 'r2', peer)(3)) : s,
        ),
        [3],
      ],
      [
        'a proof made for another purpose',
        set(shares).map((s) =>
          s.identifier === 1 ? ecdhShare(keys[0]!, peer, ctxFor('k1', 'r1', peer, 'nip04')(1)) : s,
        ),
        [1],
      ],
      [
        'member 2’s answer presented as member 3’s',
        set(shares).map((s) => (s.identifier === 3 ? { ...shares[1]!, identifier: 3 } : s)),
        [3],
      ],
    ];
    for (const [what, list, culprits] of cases) {
      assert.throws(() => combineEcdhShares(pub, peer, list, ctx), isCrypto('invalid_share', culprits), what);
      for (const s of list) {
        assert.equal(
          verifyEcdhShare(pub, peer, s, ctx(s.identifier)),
          !culprits.includes(s.identifier),
          what,
        );
      }
    }
    // Untouched, the same set combines to noble's value.
    assert.equal(toHex(combineEcdhShares(pub, peer, set(shares), ctx)), nobleEcdhX(d, peer));
    // A share verifies against its own member's Y_i only, and for its own peer only.
    const other = randomPeer();
    assert.equal(verifyEcdhShare(pub, other, shares[0]!, ctxFor('k1', 'r1', other)(1)), false);
    const otherKey = dealerSplit(be32(randomScalar()), 3, 5).public;
    assert.equal(verifyEcdhShare(otherKey, peer, shares[0]!, ctx(1)), false);
  });

  it('fewer than t members, a duplicate, a non-member: refused', () => {
    const { shares: keys, public: pub } = dealerSplit(be32(randomScalar()), 3, 4);
    const peer = randomPeer();
    const ctx = ctxFor('k', 'r', peer);
    const shares = allShares(keys, peer, ctx);
    assert.throws(() => combineEcdhShares(pub, peer, shares.slice(0, 2), ctx), isCrypto('invalid_package'));
    assert.throws(
      () => combineEcdhShares(pub, peer, [shares[0]!, shares[1]!, shares[1]!], ctx),
      isCrypto('invalid_package'),
    );
    assert.throws(
      () => combineEcdhShares(pub, peer, [shares[0]!, shares[1]!, { ...shares[2]!, identifier: 9 }], ctx),
      isCrypto('invalid_identifier'),
    );
  });

  it('a peer that is not a point, or not 32 bytes, is refused before anything is computed', () => {
    const { shares: keys } = dealerSplit(be32(randomScalar()), 2, 2);
    const offCurve = new Uint8Array(32);
    offCurve[31] = 5; // x = 5: x³ + 7 = 132 is not a square mod p
    assert.equal(isEcdhPeer(offCurve), false);
    assert.equal(isEcdhPeer(new Uint8Array(32).fill(0xff)), false, 'x ≥ p');
    assert.equal(isEcdhPeer(randomPeer().subarray(1)), false, '31 bytes');
    assert.equal(isEcdhPeer(randomPeer()), true);
    const ctx = ecdhShareContext({
      keyId: 'k',
      requestId: 'r',
      peer: randomPeer(),
      purpose: 'x',
      identifier: 1,
    });
    assert.throws(() => ecdhShare(keys[0]!, offCurve, ctx), isCrypto('invalid_point'));
    assert.throws(() => ecdhShare(keys[0]!, new Uint8Array(33), ctx), isCrypto('invalid_encoding'));
  });

  it('a member whose share does not match its verifying share refuses to answer', () => {
    const { shares: keys } = dealerSplit(be32(randomScalar()), 2, 3);
    const wrong = { ...keys[0]!, signingShare: keys[1]!.signingShare };
    const peer = randomPeer();
    assert.throws(() => ecdhShare(wrong, peer, ctxFor('k', 'r', peer)(1)), isCrypto('invalid_package'));
  });

  it('the context binds key, request, peer, purpose and member: each field changes it', () => {
    const peer = randomPeer();
    const base = { keyId: 'k', requestId: 'r', peer, purpose: 'nip44', identifier: 1 };
    const seen = new Set([toHex(ecdhShareContext(base))]);
    for (const c of [
      { ...base, keyId: 'k2' },
      { ...base, requestId: 'r2' },
      { ...base, peer: randomPeer() },
      { ...base, purpose: 'nip04' },
      { ...base, identifier: 2 },
      // length prefixes: moving a character between fields is another context
      { ...base, keyId: 'kr', requestId: '' },
    ]) {
      const hex = toHex(ecdhShareContext(c));
      assert.ok(!seen.has(hex), JSON.stringify({ ...c, peer: toHex(c.peer) }));
      seen.add(hex);
    }
  });

  it('shares made on this backend combine on every other to the same value', () => {
    const d = randomScalar();
    const { shares: keys, public: pub } = dealerSplit(be32(d), 2, 3);
    const peer = randomPeer();
    const ctx = ctxFor('k', 'r', peer);
    const shares = allShares(keys.slice(1), peer, ctx);
    for (const other of ALL_BACKENDS) {
      const prev = useBackend(other);
      try {
        assert.equal(toHex(combineEcdhShares(pub, peer, shares, ctx)), nobleEcdhX(d, peer), other);
      } finally {
        useBackend(prev);
      }
    }
  });
});
