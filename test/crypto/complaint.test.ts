/**
 * Verifiable DKG complaints (src/crypto/complaint.ts): a receiver reveals its ECDH point with
 * the sender, with a DLEQ proof; a third party opens the sender's box and checks the share.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import {
  boxKeyFromShared,
  type ComplaintEvidence,
  type DkgComplaint,
  type DkgRound1Package,
  type DkgSecretState,
  deriveBoxKey,
  dkgComplaintContext,
  dkgRound1,
  dkgRound2,
  generateIdentityKey,
  judgeDkgComplaint,
  makeDkgComplaint,
  type NodeIdentity,
  openBoxWithShared,
  proveEcdh,
  type SealedBox,
  sealBox,
  softwareIdentity,
  toHex,
  useBackend,
  utf8,
} from '../../src/crypto/index.js';
import * as S from '../../src/crypto/scalar.js';
import { ALL_BACKENDS, describeEachBackend } from './backends.js';

const INFO = 'floe/dkg-round2/v1';
const aadFor = (sender: number, receiver: number) => utf8(`cer-test|key_t|${sender}->${receiver}`);

interface Ceremony {
  secrets: Uint8Array[];
  ids: ReturnType<typeof softwareIdentity>[];
  round1: DkgRound1Package[];
  state: DkgSecretState[];
  /** share[s][r]: the share member s sends member r (1-based). */
  share: (s: number, r: number) => Uint8Array;
}

function ceremony(n = 3, t = 2): Ceremony {
  const secrets = Array.from({ length: n }, () => generateIdentityKey());
  const ids = secrets.map((s) => softwareIdentity(s));
  const r1 = Array.from({ length: n }, (_, i) => dkgRound1(i + 1, t, n));
  const round1 = r1.map((x) => x.package);
  const shares = new Map<string, Uint8Array>();
  for (const [i, x] of r1.entries()) {
    for (const p of dkgRound2(
      x.secret,
      round1.filter((o) => o.identifier !== i + 1),
    )) {
      shares.set(`${p.sender}->${p.receiver}`, p.signingShare);
    }
  }
  return {
    secrets,
    ids,
    round1,
    state: r1.map((x) => x.secret),
    share: (s, r) => shares.get(`${s}->${r}`)!,
  };
}

const seal = (c: Ceremony, s: number, r: number, plain = c.share(s, r), to = r, aad = aadFor(s, r)) =>
  sealBox(c.ids[s - 1]!, c.ids[to - 1]!.publicKey, plain, aad, INFO);

const complain = (c: Ceremony, s: number, r: number): DkgComplaint =>
  makeDkgComplaint(c.ids[r - 1]!, {
    sender: s,
    receiver: r,
    senderKey: c.ids[s - 1]!.publicKey,
    aad: aadFor(s, r),
    info: INFO,
  });

const evidence = (
  c: Ceremony,
  complaint: DkgComplaint,
  box: SealedBox,
  over: Partial<ComplaintEvidence> = {},
): ComplaintEvidence => ({
  complaint,
  // (from the ceremony's participant list; a malformed identifier gets the 1->2 pair's)
  identityKeys: {
    sender: (c.ids[complaint.sender - 1] ?? c.ids[0]!).publicKey,
    receiver: (c.ids[complaint.receiver - 1] ?? c.ids[1]!).publicKey,
  },
  box,
  aad: aadFor(complaint.sender, complaint.receiver),
  info: INFO,
  senderRound1: c.round1[complaint.sender - 1] ?? c.round1[0]!,
  threshold: 2,
  ...over,
});

const verdict = (e: ComplaintEvidence) => judgeDkgComplaint(e).verdict;

describeEachBackend('DKG complaints (verifiable by a third party)', (name) => {
  const c = ceremony();

  it('a good box: the complaint is false (and the verdict is the same on every backend)', () => {
    for (const [s, r] of [
      [1, 2],
      [2, 1],
      [3, 1],
      [1, 3],
    ] as const) {
      const complaint = complain(c, s, r);
      const e = evidence(c, complaint, seal(c, s, r));
      const j = judgeDkgComplaint(e);
      assert.equal(j.verdict, 'complaint_false', j.reason);
      assert.deepEqual(judgeDkgComplaint(e), j, 'deterministic');
      for (const other of ALL_BACKENDS) {
        const prev = useBackend(other);
        try {
          assert.equal(verdict(e), 'complaint_false', other);
        } finally {
          useBackend(prev);
        }
      }
    }
  });

  it('the revealed x(S) derives the key both ends of the box derive', () => {
    const complaint = complain(c, 1, 2);
    const key = boxKeyFromShared(
      complaint.shared.subarray(1),
      c.ids[0]!.publicKey,
      c.ids[1]!.publicKey,
      INFO,
    );
    assert.deepEqual(key, deriveBoxKey(c.ids[0]!, c.ids[1]!.publicKey, 'seal', INFO));
    assert.deepEqual(key, deriveBoxKey(c.ids[1]!, c.ids[0]!.publicKey, 'open', INFO));
    const box = seal(c, 1, 2);
    assert.deepEqual(
      openBoxWithShared(complaint.shared.subarray(1), c.ids[1]!.publicKey, box, aadFor(1, 2), INFO),
      c.share(1, 2),
    );
    assert.throws(
      () => openBoxWithShared(complaint.shared.subarray(1), c.ids[2]!.publicKey, box, aadFor(1, 2), INFO),
      {
        code: 'invalid_share',
      },
    );
    assert.throws(() => boxKeyFromShared(complaint.shared, c.ids[0]!.publicKey, c.ids[1]!.publicKey, INFO), {
      code: 'invalid_encoding',
    });
  });

  it('a box sealed with a share that fails vss_verify: the sender is at fault', () => {
    const complaint = complain(c, 1, 2);
    const wrong = [
      c.share(1, 3), // another member's share
      S.toBytes(S.add(S.fromBytes(c.share(1, 2)), 1n)),
      c.share(2, 3), // someone else's polynomial
    ];
    for (const share of wrong) {
      const j = judgeDkgComplaint(evidence(c, complaint, seal(c, 1, 2, share)));
      assert.equal(j.verdict, 'sender_at_fault');
      assert.match(j.reason, /commitments/);
    }
  });

  it('a box that opens to no share (zero, out of range, wrong length): the sender is at fault', () => {
    const complaint = complain(c, 1, 2);
    for (const plain of [
      new Uint8Array(32),
      new Uint8Array(32).fill(0xff),
      c.share(1, 2).subarray(0, 31),
      new Uint8Array(0),
    ]) {
      assert.equal(verdict(evidence(c, complaint, seal(c, 1, 2, plain))), 'sender_at_fault');
    }
  });

  it('garbage ciphertext, or a box that does not name its sender: the sender is at fault', () => {
    const complaint = complain(c, 1, 2);
    const good = seal(c, 1, 2);
    const garbage = [
      { ...good, ciphertext: toHex(randomBytes(good.ciphertext.length / 2)) },
      { ...good, ciphertext: toHex(randomBytes(8)) }, // shorter than a tag
      { ...good, ciphertext: 'zz' },
      { ...good, nonce: toHex(randomBytes(12)) },
      { ...good, nonce: '00' },
      { ...good, sender: c.ids[2]!.publicKeyHex },
      { ...good, sender: 42 as unknown as string },
      null as unknown as SealedBox,
    ];
    for (const box of garbage) assert.equal(verdict(evidence(c, complaint, box)), 'sender_at_fault');
  });

  it('a box sealed to another receiver, or under another context: the sender is at fault', () => {
    const complaint = complain(c, 1, 2);
    // Sealed to member 3's key (with the 1->2 context): member 2 cannot open it.
    assert.equal(verdict(evidence(c, complaint, seal(c, 1, 2, c.share(1, 2), 3))), 'sender_at_fault');
    // Sealed to member 2 under the 1->3 context.
    assert.equal(
      verdict(evidence(c, complaint, seal(c, 1, 2, c.share(1, 2), 2, aadFor(1, 3)))),
      'sender_at_fault',
    );
    // Sealed for 2 with another info string.
    const otherInfo = sealBox(c.ids[0]!, c.ids[1]!.publicKey, c.share(1, 2), aadFor(1, 2), 'other');
    assert.equal(verdict(evidence(c, complaint, otherInfo)), 'sender_at_fault');
  });

  it('a wrong shared point with a proof made by someone else: unverifiable', () => {
    const box = seal(c, 1, 2, c.share(1, 3)); // even a bad box blames nobody without a valid proof
    // Member 3's ECDH with the sender, proved by member 3 under the 1->2 context, in 2's name.
    const by3 = proveEcdh(c.secrets[2]!, c.ids[0]!.publicKey, dkgComplaintContext(INFO, aadFor(1, 2), 1, 2));
    const forged: DkgComplaint = { ...complain(c, 1, 2), shared: by3.shared, proof: by3.proof };
    assert.equal(verdict(evidence(c, forged, box)), 'unverifiable');
    // Member 3 complaining with its own key in member 2's name.
    const own: DkgComplaint = { ...forged, receiverKey: c.ids[2]!.publicKey };
    const j = judgeDkgComplaint(evidence(c, own, box));
    assert.equal(j.verdict, 'unverifiable');
    assert.match(j.reason, /identity keys/);
    // A random point with the real proof.
    const real = complain(c, 1, 2);
    const other = {
      ...real,
      shared: proveEcdh(generateIdentityKey(), c.ids[0]!.publicKey, new Uint8Array(0)).shared,
    };
    assert.equal(verdict(evidence(c, other, box)), 'unverifiable');
    // The real point with a proof from another ceremony (context), or a tampered proof.
    const elsewhere = makeDkgComplaint(c.ids[1]!, {
      sender: 1,
      receiver: 2,
      senderKey: c.ids[0]!.publicKey,
      aad: utf8('another ceremony'),
      info: INFO,
    });
    assert.equal(verdict(evidence(c, elsewhere, box)), 'unverifiable');
    const flipped = Uint8Array.from(real.proof);
    flipped[40]! ^= 4;
    assert.equal(verdict(evidence(c, { ...real, proof: flipped }, box)), 'unverifiable');
  });

  it('malformed complaints or evidence that does not match the ceremony: unverifiable', () => {
    const real = complain(c, 1, 2);
    const box = seal(c, 1, 2, c.share(1, 3));
    const cases: ComplaintEvidence[] = [
      evidence(c, { ...real, proof: real.proof.subarray(0, 63) }, box),
      evidence(c, { ...real, shared: real.shared.subarray(1) }, box),
      evidence(c, { ...real, senderKey: c.ids[2]!.publicKey }, box),
      evidence(c, { ...real, sender: 0 }, box),
      evidence(c, { ...real, receiver: 1 }, box),
      evidence(c, real, box, { senderRound1: c.round1[2]! }),
      evidence(c, real, box, { threshold: 3 }),
      evidence(c, real, box, {
        senderRound1: { ...c.round1[0]!, commitment: [new Uint8Array(33), c.round1[0]!.commitment[1]!] },
      }),
      evidence(c, real, box, {
        identityKeys: { sender: c.ids[0]!.publicKey, receiver: c.ids[2]!.publicKey },
      }),
      evidence(c, real, box, { aad: 'x' as unknown as Uint8Array }),
      evidence(c, real, box, { aad: aadFor(1, 3) }), // the proof is bound to the 1->2 box
      evidence(c, real, box, { info: 'other' }),
    ];
    for (const [i, e] of cases.entries()) assert.equal(verdict(e), 'unverifiable', `case ${i}`);
  });

  it('an identity that cannot prove its ECDH (an HSM) cannot make a complaint', () => {
    const full = c.ids[1]!;
    const hsm: NodeIdentity = {
      publicKey: full.publicKey,
      publicKeyHex: full.publicKeyHex,
      sign: (d) => full.sign(d),
      ecdh: (p) => full.ecdh(p),
    };
    assert.throws(
      () =>
        makeDkgComplaint(hsm, {
          sender: 1,
          receiver: 2,
          senderKey: c.ids[0]!.publicKey,
          aad: aadFor(1, 2),
          info: INFO,
        }),
      { code: 'dkg_failed' },
    );
  });

  it(`fresh ceremonies on ${name} (keys of either parity): good boxes are never blamed, bad ones always are`, () => {
    for (let k = 0; k < 3; k++) {
      const x = ceremony(3, 2);
      const complaint = complain(x, 3, 2);
      assert.equal(verdict(evidence(x, complaint, seal(x, 3, 2))), 'complaint_false');
      assert.equal(verdict(evidence(x, complaint, seal(x, 3, 2, x.share(3, 1)))), 'sender_at_fault');
    }
  });
});
