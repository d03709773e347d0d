/**
 * mulSecret (the constant-time variable-base multiplication) against noble, and the DLEQ proof
 * of an ECDH point (src/crypto/dleq.ts): known answers, every tampering refused, proofs made on
 * one backend verify on every other.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import {
  cryptoBackend,
  fromHex,
  generateIdentityKey,
  identityPublicKey,
  proveEcdh,
  softwareIdentity,
  toHex,
  useBackend,
  utf8,
  verifyEcdhProof,
} from '../../src/crypto/index.js';
import { loadVector, scriptedRng } from '../helpers/vectors.js';
import { ALL_BACKENDS, describeEachBackend } from './backends.js';
import { refProve, refVerify } from './dleq-ref.js';

const { Point } = secp256k1;
const N = Point.Fn.ORDER;
const be32 = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));
const int = (b: Uint8Array) => BigInt(`0x${toHex(b)}`);
const h = (s: string) => fromHex(s, 'vector');

interface Vector {
  description: string;
  prover_secret: string;
  prover_x_only: string;
  peer_x_only: string;
  context: string;
  aux: string;
  shared: string;
  a1: string;
  a2: string;
  proof: string;
}
const VECTORS = (loadVector('dleq-ecdh.json') as { vectors: Vector[] }).vectors;

const pair = () => {
  const d = generateIdentityKey();
  const peer = generateIdentityKey();
  return { d, q: identityPublicKey(d), peerSecret: peer, p: identityPublicKey(peer) };
};

describeEachBackend('mulSecret (constant-time k·P, whole point)', () => {
  const scalar = fc.oneof(
    fc.bigInt({ min: 1n, max: N - 1n }),
    fc.bigInt({ min: 1n, max: 300n }),
    fc.constantFrom(1n, 2n, N - 1n, N - 2n, (N - 1n) / 2n),
  );
  it('agrees with noble (Point.multiply) on random points of either Y and random, small and edge scalars', () => {
    const b = cryptoBackend();
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: N - 1n }), scalar, (p, k) => {
        const P = Point.BASE.multiply(p);
        const got = b.encode(b.mulSecret(b.decode(P.toBytes(true), 'P'), be32(k)));
        assert.equal(toHex(got), P.multiply(k).toHex(true));
        // …and with the variable-time multiplication of the same backend.
        assert.equal(toHex(got), toHex(b.encode(b.mulPublic(b.decode(P.toBytes(true), 'P'), be32(k)))));
      }),
      { numRuns: 64 },
    );
  });

  it('its x is the backend ECDH of the same secret and lift_x(x)', () => {
    const b = cryptoBackend();
    for (let i = 0; i < 8; i++) {
      const { d, p } = pair();
      const S = b.encode(b.mulSecret(b.liftX(p, 'peer'), d));
      assert.equal(toHex(S.subarray(1)), toHex(b.ecdh(d, p)));
    }
  });

  it('refuses 0, n and larger, and scalars that are not 32 bytes', () => {
    const b = cryptoBackend();
    const G = b.mulBase(be32(1n));
    for (const k of [
      new Uint8Array(32),
      Uint8Array.from(Buffer.from(N.toString(16), 'hex')),
      new Uint8Array(32).fill(0xff),
    ]) {
      assert.throws(() => b.mulSecret(G, k), { code: 'invalid_scalar' });
    }
    assert.throws(() => b.mulSecret(G, new Uint8Array(31).fill(1)), { code: 'invalid_scalar' });
  });
});

describeEachBackend('DLEQ proof of an ECDH point', (name) => {
  const ctx = utf8('cer-0001|key_x|1->2');

  it('known answers (test/fixtures/vectors/dleq-ecdh.json; the independent noble transcription agrees)', () => {
    for (const v of VECTORS) {
      const ref = refProve(h(v.prover_secret), h(v.peer_x_only), h(v.context), h(v.aux));
      assert.equal(toHex(ref.proof), v.proof, `reference: ${v.description}`);
      assert.equal(toHex(identityPublicKey(h(v.prover_secret))), v.prover_x_only);
      const r = proveEcdh(h(v.prover_secret), h(v.peer_x_only), h(v.context), scriptedRng(h(v.aux)));
      assert.equal(toHex(r.shared), v.shared, v.description);
      assert.equal(toHex(r.proof), v.proof, v.description);
      assert.ok(verifyEcdhProof(h(v.prover_x_only), h(v.peer_x_only), h(v.shared), h(v.proof), h(v.context)));
    }
  });

  it('proofs verify (here and with the independent verifier); S is d·lift_x(peer) for the even-Y d', () => {
    for (let i = 0; i < 8; i++) {
      const { d, q, p } = pair();
      const r = proveEcdh(d, p, ctx);
      assert.equal(r.shared.length, 33);
      assert.equal(r.proof.length, 64);
      assert.ok(verifyEcdhProof(q, p, r.shared, r.proof, ctx));
      assert.ok(refVerify(q, p, r.shared, r.proof, ctx));
      const d0 = int(d);
      const dEven = Point.BASE.multiply(d0).toAffine().y % 2n === 0n ? d0 : N - d0;
      const P = Point.fromBytes(Uint8Array.of(2, ...p));
      assert.equal(toHex(r.shared), P.multiply(dEven).toHex(true));
      // x(S) is what both ends of a box agree on.
      assert.equal(toHex(r.shared.subarray(1)), toHex(softwareIdentity(d).ecdh(p)));
    }
  });

  it('fresh randomness: two proofs of one statement differ, and both verify', () => {
    const { d, q, p } = pair();
    const a = proveEcdh(d, p, ctx);
    const b = proveEcdh(d, p, ctx);
    assert.equal(toHex(a.shared), toHex(b.shared));
    assert.notEqual(toHex(a.proof), toHex(b.proof));
    assert.ok(verifyEcdhProof(q, p, b.shared, b.proof, ctx));
  });

  it('any other S, Q, P or context fails', () => {
    const { d, q, p } = pair();
    const other = pair();
    const r = proveEcdh(d, p, ctx);
    const negS = Uint8Array.from(r.shared);
    negS[0]! ^= 1;
    const randomPoint = Point.BASE.multiply(int(generateIdentityKey())).toBytes(true);
    for (const s of [
      negS,
      randomPoint,
      proveEcdh(other.d, p, ctx).shared,
      proveEcdh(d, other.p, ctx).shared,
    ]) {
      assert.equal(verifyEcdhProof(q, p, s, r.proof, ctx), false);
    }
    assert.equal(verifyEcdhProof(other.q, p, r.shared, r.proof, ctx), false, 'other Q');
    assert.equal(verifyEcdhProof(p, q, r.shared, r.proof, ctx), false, 'roles swapped');
    assert.equal(verifyEcdhProof(q, other.p, r.shared, r.proof, ctx), false, 'other P');
    for (const c of [utf8('cer-0001|key_x|1->3'), new Uint8Array(0), Uint8Array.of(...ctx, 0)]) {
      assert.equal(verifyEcdhProof(q, p, r.shared, r.proof, c), false, 'other context');
    }
  });

  it('a proof for d·P does not verify for d′·P (another key’s ECDH with the same peer)', () => {
    const { d, q, p } = pair();
    const other = pair();
    const mine = proveEcdh(d, p, ctx);
    const theirs = proveEcdh(other.d, p, ctx);
    assert.equal(verifyEcdhProof(q, p, theirs.shared, mine.proof, ctx), false);
    assert.equal(verifyEcdhProof(q, p, theirs.shared, theirs.proof, ctx), false);
    assert.equal(verifyEcdhProof(other.q, p, mine.shared, mine.proof, ctx), false);
    assert.ok(verifyEcdhProof(other.q, p, theirs.shared, theirs.proof, ctx));
  });

  it('every flipped bit of the proof fails; c or z ≥ n and malformed inputs are false, never a throw', () => {
    const { d, q, p } = pair();
    const r = proveEcdh(d, p, ctx);
    const bits =
      name === 'noble' ? [0, 7, 100, 255, 256, 300, 511] : Array.from({ length: 512 }, (_, i) => i);
    for (const bit of bits) {
      const t = Uint8Array.from(r.proof);
      t[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(verifyEcdhProof(q, p, r.shared, t, ctx), false, `bit ${bit}`);
    }
    for (const bit of [0, 100, 255]) {
      const s = Uint8Array.from(r.shared);
      s[1 + (bit >> 3)]! ^= 1 << (bit & 7);
      assert.equal(verifyEcdhProof(q, p, s, r.proof, ctx), false);
    }
    const c = int(r.proof.subarray(0, 32));
    const z = int(r.proof.subarray(32));
    // The same c and z plus n (when that still fits in 32 bytes): equal mod n, refused as encodings.
    if (z + N < 2n ** 256n) {
      const t = Uint8Array.of(...r.proof.subarray(0, 32), ...be32(z + N));
      assert.equal(verifyEcdhProof(q, p, r.shared, t, ctx), false);
    }
    if (c + N < 2n ** 256n) {
      const t = Uint8Array.of(...be32(c + N), ...r.proof.subarray(32));
      assert.equal(verifyEcdhProof(q, p, r.shared, t, ctx), false);
    }
    const offCurve = new Uint8Array(32);
    offCurve[31] = 5;
    const bad: [Uint8Array, Uint8Array, Uint8Array, Uint8Array][] = [
      [q, p, r.shared, r.proof.subarray(0, 63)],
      [q, p, r.shared, new Uint8Array(64)],
      [q, p, r.shared.subarray(1), r.proof],
      [q, p, Uint8Array.of(4, ...r.shared.subarray(1)), r.proof],
      [q, p, Uint8Array.of(2, ...offCurve), r.proof],
      [offCurve, p, r.shared, r.proof],
      [q, offCurve, r.shared, r.proof],
      [q.subarray(1), p, r.shared, r.proof],
      [q, new Uint8Array(33), r.shared, r.proof],
    ];
    for (const [a, b, s, pr] of bad) assert.equal(verifyEcdhProof(a, b, s, pr, ctx), false);
    assert.equal(verifyEcdhProof(q, p, r.shared, r.proof, 'ctx' as unknown as Uint8Array), false);
  });

  it('refuses to prove with a secret out of range or a peer that is not a point', () => {
    const { p } = pair();
    assert.throws(() => proveEcdh(new Uint8Array(32), p, ctx), { code: 'invalid_scalar' });
    assert.throws(() => proveEcdh(new Uint8Array(32).fill(0xff), p, ctx), { code: 'invalid_scalar' });
    const offCurve = new Uint8Array(32);
    offCurve[31] = 5;
    assert.throws(() => proveEcdh(generateIdentityKey(), offCurve, ctx), { code: 'invalid_point' });
    assert.throws(() => proveEcdh(generateIdentityKey(), p, ctx, () => new Uint8Array(31)), {
      code: 'invalid_encoding',
    });
  });

  it('NodeIdentity.proveEcdh (software identity) proves its ECDH; a disposed one refuses', () => {
    const a = softwareIdentity(generateIdentityKey());
    const b = softwareIdentity(generateIdentityKey());
    assert.ok(a.proveEcdh, 'softwareIdentity offers proveEcdh');
    const r = a.proveEcdh(b.publicKey, ctx);
    assert.ok(verifyEcdhProof(a.publicKey, b.publicKey, r.shared, r.proof, ctx));
    assert.equal(toHex(r.shared.subarray(1)), toHex(b.ecdh(a.publicKey)));
    assert.throws(() => a.proveEcdh!(new Uint8Array(31), ctx), { code: 'invalid_encoding' });
    a.dispose();
    assert.throws(() => a.proveEcdh!(b.publicKey, ctx));
  });

  it(`a proof made on ${name} verifies on every backend`, () => {
    const { d, q, p } = pair();
    const r = proveEcdh(d, p, ctx, () => new Uint8Array(randomBytes(32)));
    for (const other of ALL_BACKENDS) {
      const prev = useBackend(other);
      try {
        assert.ok(verifyEcdhProof(q, p, r.shared, r.proof, ctx), other);
        assert.equal(verifyEcdhProof(q, p, r.shared, r.proof, utf8('x')), false, other);
      } finally {
        useBackend(prev);
      }
    }
  });
});
