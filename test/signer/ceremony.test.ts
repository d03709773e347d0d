import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { judgeDkgComplaint } from '../../src/crypto/complaint.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodeDkgRound1,
  decodePublicKeyPackage,
  decodeSignatureShare,
  encodePublicKeyPackage,
  fromHex,
  generateIdentityKey,
  groupPublicKey,
  type SealedBox,
  sealBox,
  softwareIdentity,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { DkgRound3Response } from '../../src/protocol/messages/dkg.js';
import {
  DKG_BOX_INFO,
  dkgBoxAad,
  dkgBoxHash,
  IMPORT_BOX_INFO,
  importBoxAad,
} from '../../src/protocol/transcript.js';
import { CeremonyParticipant } from '../../src/signer/ceremony.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { libsecpVerify } from '../helpers/independent.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

function refuses(fn: () => unknown, code: string, culprits?: number[]) {
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof FloeError &&
      e.code === code &&
      (culprits === undefined || JSON.stringify(e.extra.culprits) === JSON.stringify(culprits)),
    `expected ${code}`,
  );
}

/** The complaints of a `dkg_complaint` refusal (fails the test if `fn` does not refuse so). */
function complaintsOf(
  fn: () => unknown,
): { sender: number; box_hash: string; shared: string; proof: string }[] {
  try {
    fn();
  } catch (e) {
    assert.ok(
      e instanceof FloeError && e.code === 'dkg_complaint',
      `expected dkg_complaint, got ${String(e)}`,
    );
    return e.extra.complaints as never;
  }
  assert.fail('expected a dkg_complaint refusal');
}

/** What the coordinator (or anyone) concludes from a complaint of `receiver` about `box`. */
function judge(
  ns: Node[],
  all: ReturnType<typeof round1>[number]['round1'][],
  receiver: number,
  c: { sender: number; box_hash: string; shared: string; proof: string },
  box: SealedBox,
) {
  assert.equal(toHex(dkgBoxHash(box)), c.box_hash, 'the complaint names this box');
  const senderKey = fromHex(box.sender, 'sender', 32);
  return judgeDkgComplaint({
    complaint: {
      sender: c.sender,
      receiver,
      senderKey,
      receiverKey: ns[receiver - 1]!.identity.publicKey,
      shared: fromHex(c.shared, 'shared', 33),
      proof: fromHex(c.proof, 'proof', 64),
    },
    identityKeys: { sender: senderKey, receiver: ns[receiver - 1]!.identity.publicKey },
    box,
    aad: dkgBoxAad('c1', 'k1', c.sender, receiver),
    info: DKG_BOX_INFO,
    senderRound1: decodeDkgRound1(all[c.sender - 1]!),
    threshold: 2,
  }).verdict;
}

/** n nodes, each with every node on its roster (plus `extraPeers`). */
function nodes(n: number, clock = new FakeClock(), extraPeers: string[] = []) {
  const identities = Array.from({ length: n }, () => softwareIdentity(generateIdentityKey()));
  const roster = [...identities.map((x) => x.publicKeyHex), ...extraPeers];
  return identities.map((identity, i) => {
    const store = new MemoryStore();
    return {
      identifier: i + 1,
      identity,
      identityPub: identity.publicKeyHex,
      store,
      clock,
      participant: new CeremonyParticipant({ store, clock, identity, roster }),
      engine: new SigningEngine({ store, clock }),
    };
  });
}
type Node = ReturnType<typeof nodes>[number];

function round1(ns: Node[], t: number, ceremony = 'c1', keyId = 'k1') {
  const participants = ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub }));
  return ns.map((x) =>
    x.participant.dkgRound1({
      ceremony_id: ceremony,
      key_id: keyId,
      threshold: t,
      n: ns.length,
      identifier: x.identifier,
      participants,
    }),
  );
}

function runDkg(ns: Node[], t: number) {
  const r1 = round1(ns, t);
  const all = r1.map((r) => r.round1);
  const r2 = ns.map((x) => x.participant.dkgRound2({ ceremony_id: 'c1', round1: all }));
  const r3 = ns.map((x) =>
    x.participant.dkgRound3({
      ceremony_id: 'c1',
      boxes: r2.flatMap((r) =>
        r.boxes.filter((b) => b.receiver === x.identifier).map((b) => ({ sender: r.identifier, box: b.box })),
      ),
    }),
  );
  return { r1, r2, r3 };
}

function certificates(r3: DkgRound3Response[]) {
  return r3.map((r) => ({
    identifier: r.identifier,
    transcript_hash: r.transcript_hash,
    group_public_key: encodePublicKeyPackage(decodePublicKeyPackage(r.public_key_package)).commitments[0]!,
    certificate: r.certificate,
  }));
}

function signWith(ns: Node[], keyId: string) {
  const msg = new Uint8Array(randomBytes(32));
  const ids = ns.map((x) => x.identifier);
  const open = openRequest({ keyId, sessionId: 's', attempt: 1, included: ids, intent: msg });
  const opens = ns.map((x) => x.engine.open(open));
  const pkg = {
    v: 1 as const,
    type: 'signing_package' as const,
    message: toHex(msg),
    commitments: opens.map((o) => o.commitments),
  };
  const shares = ns.map((x) =>
    decodeSignatureShare(
      x.engine.round2({ key_id: keyId, session_id: 's', attempt_id: open.attempt_id, signing_package: pkg })
        .share,
    ),
  );
  const pub = ns[0]!.store.getKey(keyId)!.keyPackage.public;
  const sig = aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, shares);
  return { sig, msg, pub };
}

describe('signer DKG participation', () => {
  it('a 2-of-3 ceremony gives every member the same certified key; it signs only after certification', () => {
    const ns = nodes(3);
    const { r3 } = runDkg(ns, 2);
    assert.equal(new Set(r3.map((r) => JSON.stringify(r.public_key_package))).size, 1);
    assert.equal(new Set(r3.map((r) => r.transcript_hash)).size, 1);
    for (const x of ns) assert.equal(x.store.getKey('k1')!.status, 'pending');
    // Pending keys do not sign.
    const msg = new Uint8Array(32);
    refuses(
      () => ns[0]!.engine.open(openRequest({ sessionId: 's', attempt: 1, included: [1, 2], intent: msg })),
      'key_not_active',
    );
    const certs = certificates(r3);
    for (const x of ns)
      assert.equal(
        x.participant.dkgCertify({ ceremony_id: 'c1', key_id: 'k1', certificates: certs }).status,
        'active',
      );
    assert.equal(ns[0]!.participant.liveCeremonies, 0, 'ceremony secrets are dropped after certification');
    const { sig, msg: m, pub } = signWith([ns[0]!, ns[2]!], 'k1');
    assert.ok(libsecpVerify(sig, m, xOnlyGroupKey(pub)));
    assert.equal(pub.tweak.kind, 'taproot');
  });

  it('repeating a round returns the same answer; other parameters are a conflict', () => {
    const ns = nodes(3);
    const participants = ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub }));
    const req = { ceremony_id: 'c1', key_id: 'k1', threshold: 2, n: 3, identifier: 1, participants };
    assert.deepEqual(ns[0]!.participant.dkgRound1(req), ns[0]!.participant.dkgRound1(req));
    refuses(() => ns[0]!.participant.dkgRound1({ ...req, threshold: 3 }), 'ceremony_conflict');
  });

  it('refuses to take part under another identity', () => {
    const ns = nodes(3);
    const participants = ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub }));
    refuses(
      () =>
        ns[0]!.participant.dkgRound1({
          ceremony_id: 'c',
          key_id: 'k',
          threshold: 2,
          n: 3,
          identifier: 2,
          participants,
        }),
      'not_a_member',
    );
  });

  it("an altered copy of this signer's own round-1 package is refused", () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    const altered = structuredClone(all);
    altered[0]!.proof_of_knowledge = all[1]!.proof_of_knowledge;
    refuses(() => ns[0]!.participant.dkgRound2({ ceremony_id: 'c1', round1: altered }), 'ceremony_conflict');
  });

  it('a bad round-1 package is blamed on its sender', () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    const bad = structuredClone(all);
    bad[2]!.proof_of_knowledge = `${bad[2]!.proof_of_knowledge.slice(0, 100)}${'0'.repeat(28)}`;
    refuses(() => ns[0]!.participant.dkgRound2({ ceremony_id: 'c1', round1: bad }), 'dkg_failed', [3]);
  });

  it('a tampered sealed share fails round 3 naming its sender, and leaves no key behind', () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    const r2 = ns.map((x) => x.participant.dkgRound2({ ceremony_id: 'c1', round1: all }));
    const boxes = r2.flatMap((r) =>
      r.boxes.filter((b) => b.receiver === 1).map((b) => ({ sender: r.identifier, box: { ...b.box } })),
    );
    const fromTwo = boxes.find((b) => b.sender === 2)!;
    fromTwo.box.ciphertext =
      (fromTwo.box.ciphertext.startsWith('0') ? '1' : '0') + fromTwo.box.ciphertext.slice(1);
    const [c] = complaintsOf(() => ns[0]!.participant.dkgRound3({ ceremony_id: 'c1', boxes }));
    assert.equal(c!.sender, 2);
    assert.equal(ns[0]!.store.getKey('k1'), undefined);
    // The complaint is about the box it received: against the box member 2 really sent, it
    // is false (the coordinator tampered, and the complaint shows the box hash it got).
    const sent = r2[1]!.boxes.find((b) => b.receiver === 1)!.box;
    assert.notEqual(toHex(dkgBoxHash(sent)), c!.box_hash);
    assert.equal(judge(ns, all, 1, c!, fromTwo.box), 'sender_at_fault', 'the tampered box does not open');
  });

  it('a share that opens but does not match its sender commitments is blamed on the sender', () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    const r2 = ns.map((x) => x.participant.dkgRound2({ ceremony_id: 'c1', round1: all }));
    const boxes = r2.flatMap((r) =>
      r.boxes.filter((b) => b.receiver === 1).map((b) => ({ sender: r.identifier, box: b.box })),
    );
    // Member 3 seals a random scalar instead of its real share (a validly sealed lie).
    const lie = sealBox(
      ns[2]!.identity,
      ns[0]!.identity.publicKey,
      new Uint8Array(32).fill(1),
      dkgBoxAad('c1', 'k1', 3, 1),
      DKG_BOX_INFO,
    );
    boxes.find((b) => b.sender === 3)!.box = lie;
    const complaints = complaintsOf(() => ns[0]!.participant.dkgRound3({ ceremony_id: 'c1', boxes }));
    assert.deepEqual(
      complaints.map((c) => c.sender),
      [3],
    );
    // Anyone can check it: the revealed ECDH opens the box to a share that fails vss_verify.
    assert.equal(judge(ns, all, 1, complaints[0]!, lie), 'sender_at_fault');
    // The same proof about member 2's good box would show the complaint false.
    const good = boxes.find((b) => b.sender === 2)!.box;
    const forged = { ...complaints[0]!, sender: 2, box_hash: toHex(dkgBoxHash(good)) };
    assert.equal(judge(ns, all, 1, forged, good), 'unverifiable', 'a proof is bound to its sender and box');
  });

  it('a coordinator showing members different transcripts cannot get the key activated', () => {
    const ns = nodes(3);
    const { r3 } = runDkg(ns, 2);
    const certs = certificates(r3);
    const forged = structuredClone(certs);
    forged[1]!.transcript_hash = 'ab'.repeat(32);
    refuses(
      () => ns[0]!.participant.dkgCertify({ ceremony_id: 'c1', key_id: 'k1', certificates: forged }),
      'certification_mismatch',
      [2],
    );
    assert.equal(ns[0]!.store.getKey('k1'), undefined, 'the pending key is dropped');
    const badSig = structuredClone(certs);
    badSig[2]!.certificate = certs[1]!.certificate;
    refuses(
      () => ns[1]!.participant.dkgCertify({ ceremony_id: 'c1', key_id: 'k1', certificates: badSig }),
      'certification_mismatch',
      [3],
    );
  });

  it('a restart mid-ceremony makes the ceremony fail cleanly', () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    const restarted = new CeremonyParticipant({
      store: ns[0]!.store,
      clock: ns[0]!.clock,
      identity: ns[0]!.identity,
      roster: ns.map((x) => x.identityPub),
    });
    refuses(() => restarted.dkgRound2({ ceremony_id: 'c1', round1: all }), 'ceremony_unknown');
  });

  it('ceremony secrets expire after the TTL', () => {
    const ns = nodes(3);
    const all = round1(ns, 2).map((r) => r.round1);
    ns[0]!.clock.advance(600_000);
    refuses(() => ns[0]!.participant.dkgRound2({ ceremony_id: 'c1', round1: all }), 'ceremony_unknown');
    assert.equal(ns[0]!.participant.liveCeremonies, 0);
  });
});

describe('the roster (DESIGN §11)', () => {
  it('a DKG with a member outside the roster is refused by every honest member', () => {
    // A coordinator slips its own key in as member 3: the honest members do not take part.
    const ns = nodes(2);
    const impostor = softwareIdentity(generateIdentityKey());
    const participants = [
      ...ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub })),
      { identifier: 3, identity: impostor.publicKeyHex },
    ];
    for (const x of ns) {
      refuses(
        () =>
          x.participant.dkgRound1({
            ceremony_id: 'c1',
            key_id: 'k1',
            threshold: 2,
            n: 3,
            identifier: x.identifier,
            participants,
          }),
        'not_on_roster',
      );
      assert.equal(x.participant.liveCeremonies, 0);
    }
  });

  it('a member the operator pinned may take part', () => {
    const extra = softwareIdentity(generateIdentityKey());
    const ns = nodes(2, new FakeClock(), [extra.publicKeyHex]);
    const r = ns[0]!.participant.dkgRound1({
      ceremony_id: 'c1',
      key_id: 'k1',
      threshold: 2,
      n: 3,
      identifier: 1,
      participants: [
        ...ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub })),
        { identifier: 3, identity: extra.publicKeyHex },
      ],
    });
    assert.equal(r.identifier, 1);
  });

  it('an empty roster takes part in nothing (fail closed)', () => {
    const [a, b] = nodes(2);
    const lone = new CeremonyParticipant({
      store: new MemoryStore(),
      clock: new FakeClock(),
      identity: a!.identity,
      roster: [],
    });
    refuses(
      () =>
        lone.dkgRound1({
          ceremony_id: 'c1',
          key_id: 'k1',
          threshold: 2,
          n: 2,
          identifier: 1,
          participants: [
            { identifier: 1, identity: a!.identityPub },
            { identifier: 2, identity: b!.identityPub },
          ],
        }),
      'not_on_roster',
    );
  });
});

describe('dealer share import', () => {
  const membersOf = (ns: Node[]) => ns.map((x) => ({ identifier: x.identifier, identity: x.identityPub }));

  /** Every node imports its share (pending), then, unless `confirm` is false, every node confirms. */
  function importAll(
    ns: Node[],
    secret: Uint8Array,
    t: number,
    o: { confirm?: boolean; keyId?: string } = {},
  ) {
    const keyId = o.keyId ?? 'imp';
    const { shares, public: pub } = dealerSplit(secret, t, ns.length);
    const gk = groupPublicKey(pub);
    const members = membersOf(ns);
    const res = shares.map((s, i) => {
      const eph = softwareIdentity(generateIdentityKey());
      const sealed = sealBox(
        eph,
        ns[i]!.identity.publicKey,
        s.signingShare,
        importBoxAad(keyId, s.identifier, gk, pub.tweak, members),
        IMPORT_BOX_INFO,
      );
      return ns[i]!.participant.importKey({
        key_id: keyId,
        identifier: s.identifier,
        members,
        public_key_package: encodePublicKeyPackage(pub),
        sealed_share: sealed,
      });
    });
    const certificates = res.map((r) => ({
      identifier: r.identifier,
      verifying_share: r.verifying_share,
      certificate: r.certificate,
    }));
    if (o.confirm !== false) {
      for (const x of ns) x.participant.confirmImport({ key_id: keyId, members, certificates });
    }
    return { res, certificates, members, pub };
  }

  it('imported shares sign for the original secret’s BIP-340 key', () => {
    const ns = nodes(3);
    const secret = new Uint8Array(randomBytes(32));
    const { res } = importAll(ns, secret, 2);
    assert.ok(res.every((r) => r.status === 'pending'));
    assert.ok(
      ns.every((x) => x.store.getKey('imp')!.status === 'active'),
      'active once confirmed',
    );
    const { sig, msg, pub } = signWith([ns[1]!, ns[2]!], 'imp');
    assert.equal(pub.tweak.kind, 'none');
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(pub)));
    refuses(() => importAll(ns, secret, 2), 'key_exists');
  });

  it('an imported share signs nothing until every member certified it; a failed import is dropped', () => {
    const ns = nodes(3);
    const { certificates, members } = importAll(ns, new Uint8Array(randomBytes(32)), 2, { confirm: false });
    refuses(
      () =>
        ns[0]!.engine.open(
          openRequest({
            keyId: 'imp',
            sessionId: 's',
            attempt: 1,
            included: [1, 2],
            intent: new Uint8Array(32),
          }),
        ),
      'key_not_active',
    );
    // A certificate missing, forged, or for other members: no activation.
    refuses(
      () =>
        ns[0]!.participant.confirmImport({ key_id: 'imp', members, certificates: certificates.slice(0, 2) }),
      'certification_mismatch',
    );
    const forged = certificates.map((c) =>
      c.identifier === 3 ? { ...c, certificate: certificates[0]!.certificate } : c,
    );
    refuses(
      () => ns[0]!.participant.confirmImport({ key_id: 'imp', members, certificates: forged }),
      'certification_mismatch',
    );
    const outsider = softwareIdentity(generateIdentityKey()).publicKeyHex;
    refuses(
      () =>
        ns[0]!.participant.confirmImport({
          key_id: 'imp',
          members: members.map((m) => (m.identifier === 3 ? { ...m, identity: outsider } : m)),
          certificates,
        }),
      'not_on_roster',
    );
    assert.equal(ns[0]!.store.getKey('imp')!.status, 'pending');
    // The coordinator gives up: the pending share is dropped; an active one would not be.
    assert.deepEqual(ns[0]!.participant.abortImport({ key_id: 'imp' }), { key_id: 'imp', aborted: true });
    assert.equal(ns[0]!.store.getKey('imp'), undefined);
    ns[1]!.participant.confirmImport({ key_id: 'imp', members, certificates });
    assert.deepEqual(ns[1]!.participant.abortImport({ key_id: 'imp' }), { key_id: 'imp', aborted: false });
    assert.equal(ns[1]!.store.getKey('imp')!.status, 'active');
  });

  it('an import naming a member outside the roster is refused before anything is stored', () => {
    const ns = nodes(3);
    const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
    const members = membersOf(ns).map((m) =>
      m.identifier === 2 ? { ...m, identity: softwareIdentity(generateIdentityKey()).publicKeyHex } : m,
    );
    const sealed = sealBox(
      softwareIdentity(generateIdentityKey()),
      ns[0]!.identity.publicKey,
      shares[0]!.signingShare,
      importBoxAad('x', 1, groupPublicKey(pub), pub.tweak, members),
      IMPORT_BOX_INFO,
    );
    refuses(
      () =>
        ns[0]!.participant.importKey({
          key_id: 'x',
          identifier: 1,
          members,
          public_key_package: encodePublicKeyPackage(pub),
          sealed_share: sealed,
        }),
      'not_on_roster',
    );
    assert.equal(ns[0]!.store.getKey('x'), undefined);
  });

  it('a share sealed to another signer, or a public package that does not match the share, is refused', () => {
    const ns = nodes(3);
    const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
    const gk = groupPublicKey(pub);
    const members = membersOf(ns);
    const eph = softwareIdentity(generateIdentityKey());
    const toOther = sealBox(
      eph,
      ns[1]!.identity.publicKey,
      shares[0]!.signingShare,
      importBoxAad('x', 1, gk, pub.tweak, members),
      IMPORT_BOX_INFO,
    );
    refuses(
      () =>
        ns[0]!.participant.importKey({
          key_id: 'x',
          identifier: 1,
          members,
          public_key_package: encodePublicKeyPackage(pub),
          sealed_share: toOther,
        }),
      'import_failed',
    );
    // Share 2 presented as identifier 1: opens (sealed correctly) but fails the VSS check.
    const wrong = sealBox(
      eph,
      ns[0]!.identity.publicKey,
      shares[1]!.signingShare,
      importBoxAad('x', 1, gk, pub.tweak, members),
      IMPORT_BOX_INFO,
    );
    refuses(
      () =>
        ns[0]!.participant.importKey({
          key_id: 'x',
          identifier: 1,
          members,
          public_key_package: encodePublicKeyPackage(pub),
          sealed_share: wrong,
        }),
      'import_failed',
    );
    assert.equal(ns[0]!.store.getKey('x'), undefined);
  });
});
