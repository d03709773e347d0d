import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodePublicKeyPackage,
  decodeSignatureShare,
  encodePublicKeyPackage,
  generateIdentityKey,
  groupPublicKey,
  sealBox,
  softwareIdentity,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { DkgRound3Response } from '../../src/protocol/messages/dkg.js';
import { DKG_BOX_INFO, dkgBoxAad, IMPORT_BOX_INFO, importBoxAad } from '../../src/protocol/transcript.js';
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

function nodes(n: number, clock = new FakeClock()) {
  return Array.from({ length: n }, (_, i) => {
    const identity = softwareIdentity(generateIdentityKey());
    const identityPub = identity.publicKeyHex;
    const store = new MemoryStore();
    return {
      identifier: i + 1,
      identity,
      identityPub,
      store,
      clock,
      participant: new CeremonyParticipant({ store, clock, identity }),
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
    refuses(() => ns[0]!.participant.dkgRound3({ ceremony_id: 'c1', boxes }), 'dkg_failed', [2]);
    assert.equal(ns[0]!.store.getKey('k1'), undefined);
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
    refuses(() => ns[0]!.participant.dkgRound3({ ceremony_id: 'c1', boxes }), 'dkg_failed', [3]);
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

describe('dealer share import', () => {
  function importAll(ns: Node[], secret: Uint8Array, t: number) {
    const { shares, public: pub } = dealerSplit(secret, t, ns.length);
    const gk = groupPublicKey(pub);
    return shares.map((s, i) => {
      const eph = softwareIdentity(generateIdentityKey());
      const sealed = sealBox(
        eph,
        ns[i]!.identity.publicKey,
        s.signingShare,
        importBoxAad('imp', s.identifier, gk),
        IMPORT_BOX_INFO,
      );
      return ns[i]!.participant.importKey({
        key_id: 'imp',
        identifier: s.identifier,
        public_key_package: encodePublicKeyPackage(pub),
        sealed_share: sealed,
      });
    });
  }

  it('imported shares sign for the original secret’s BIP-340 key', () => {
    const ns = nodes(3);
    const secret = new Uint8Array(randomBytes(32));
    const res = importAll(ns, secret, 2);
    assert.ok(res.every((r) => r.status === 'active'));
    const { sig, msg, pub } = signWith([ns[1]!, ns[2]!], 'imp');
    assert.equal(pub.tweak.kind, 'none');
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(pub)));
    refuses(() => importAll(ns, secret, 2), 'key_exists');
  });

  it('a share sealed to another signer, or a public package that does not match the share, is refused', () => {
    const ns = nodes(3);
    const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
    const gk = groupPublicKey(pub);
    const eph = softwareIdentity(generateIdentityKey());
    const toOther = sealBox(
      eph,
      ns[1]!.identity.publicKey,
      shares[0]!.signingShare,
      importBoxAad('x', 1, gk),
      IMPORT_BOX_INFO,
    );
    refuses(
      () =>
        ns[0]!.participant.importKey({
          key_id: 'x',
          identifier: 1,
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
      importBoxAad('x', 1, gk),
      IMPORT_BOX_INFO,
    );
    refuses(
      () =>
        ns[0]!.participant.importKey({
          key_id: 'x',
          identifier: 1,
          public_key_package: encodePublicKeyPackage(pub),
          sealed_share: wrong,
        }),
      'import_failed',
    );
    assert.equal(ns[0]!.store.getKey('x'), undefined);
  });
});
