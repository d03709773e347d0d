/**
 * Known-answer vectors for Floe's own formats, pinned from the code as it was before the
 * crypto backend seam (DESIGN §10): envelope digests, the DKG transcript and certificate
 * digests, sealed-box AADs and key derivation, the stored record v1 and attempt id v2.
 * Any change of these bytes breaks stored data or running peers: it must be a new version.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { deriveBoxKey, openBox, sealBox } from '../../src/crypto/box.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { identityPublicKey, softwareIdentity, verifyDigest } from '../../src/crypto/identity.js';
import { attemptId } from '../../src/protocol/attempt.js';
import { envelopeDigest } from '../../src/protocol/envelope.js';
import {
  dkgBoxAad,
  dkgCertificateDigest,
  dkgTranscriptHash,
  importBoxAad,
  importCertificateDigest,
  membersHash,
} from '../../src/protocol/transcript.js';
import { RecordCipher, shareAad } from '../../src/signer/keystore.js';
import { describeEachBackend } from '../crypto/backends.js';

const load = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/formats/${name}`, import.meta.url), 'utf8'));
const h = (s: string) => fromHex(s, 'fixture');

describeEachBackend('pinned formats: envelope', () => {
  const v = load('envelope.json');
  it('envelopeDigest of fixed request and response headers', () => {
    for (const c of v.cases) assert.equal(toHex(envelopeDigest(c.header)), c.digest);
  });
  it('a fixed BIP-340 envelope signature still verifies, and only over its digest', () => {
    const pub = identityPublicKey(h(v.identity_secret));
    assert.equal(toHex(pub), v.cases[0].header.from);
    assert.ok(verifyDigest(h(v.cases[0].sig), h(v.cases[0].digest), pub));
    assert.equal(verifyDigest(h(v.cases[0].sig), h(v.cases[1].digest), pub), false);
  });
});

describe('pinned formats: DKG transcript and certificates', () => {
  const v = load('dkg.json');
  it('dkgTranscriptHash', () => {
    const t = v.transcript;
    const hash = dkgTranscriptHash({
      ceremonyId: t.ceremony_id,
      keyId: t.key_id,
      threshold: t.threshold,
      n: t.n,
      participants: t.participants,
      round1: t.round1.map((p: { identifier: number; commitment: string[]; proof_of_knowledge: string }) => ({
        identifier: p.identifier,
        commitment: p.commitment.map(h),
        proofOfKnowledge: h(p.proof_of_knowledge),
      })),
    });
    assert.equal(toHex(hash), t.hash);
  });
  it('dkgCertificateDigest and importCertificateDigest', () => {
    const d = v.dkg_certificate;
    assert.equal(
      toHex(dkgCertificateDigest(d.ceremony_id, d.key_id, h(d.transcript_hash), h(d.group_public_key))),
      d.digest,
    );
    const i = v.import_certificate;
    assert.equal(toHex(membersHash(i.members)), i.members_hash);
    assert.equal(
      toHex(
        importCertificateDigest(
          i.key_id,
          i.identifier,
          h(i.group_public_key),
          h(i.verifying_share),
          i.members,
        ),
      ),
      i.digest,
    );
  });
});

describeEachBackend('pinned formats: sealed boxes', () => {
  const v = load('box.json');
  it('dkgBoxAad and importBoxAad', () => {
    const d = v.aads.dkg;
    assert.equal(toHex(dkgBoxAad(d.ceremony_id, d.key_id, d.sender, d.receiver)), d.aad);
    const i = v.aads.import;
    const gk = h(i.group_public_key);
    assert.equal(
      toHex(importBoxAad(i.key_id, i.identifier, gk, { kind: 'none' }, i.members)),
      i.aad_no_tweak,
    );
    const taproot = { kind: 'taproot' as const, internalKey: gk, merkleRoot: new Uint8Array(0) };
    assert.equal(
      toHex(importBoxAad(i.key_id, i.identifier, gk, taproot, i.members)),
      i.aad_taproot_empty_root,
    );
  });
  for (const b of v.boxes) {
    it(`the box key derivation is unchanged (${b.name})`, () => {
      const sender = softwareIdentity(h(b.sender_secret));
      const recipient = softwareIdentity(h(b.recipient_secret));
      assert.equal(sender.publicKeyHex, b.sender_public);
      assert.equal(recipient.publicKeyHex, b.recipient_public);
      assert.equal(toHex(deriveBoxKey(sender, h(b.recipient_public), 'seal', b.info)), b.key);
      assert.equal(toHex(deriveBoxKey(recipient, h(b.sender_public), 'open', b.info)), b.key);
    });
    it(`a fixed box opens to the fixed plaintext (${b.name})`, () => {
      assert.equal(toHex(identityPublicKey(h(b.sender_secret))), b.sender_public);
      assert.equal(toHex(identityPublicKey(h(b.recipient_secret))), b.recipient_public);
      const recipient = softwareIdentity(h(b.recipient_secret));
      const plain = openBox(recipient, b.box, h(b.aad), b.info, h(b.sender_public));
      assert.equal(toHex(plain), b.plaintext);
    });
    it(`a box sealed now with the fixed sender opens with the fixed recipient (${b.name})`, () => {
      const sender = softwareIdentity(h(b.sender_secret));
      const box = sealBox(sender, h(b.recipient_public), h(b.plaintext), h(b.aad), b.info);
      assert.equal(box.sender, b.sender_public);
      const recipient = softwareIdentity(h(b.recipient_secret));
      assert.equal(toHex(openBox(recipient, box, h(b.aad), b.info)), b.plaintext);
    });
  }
});

describe('pinned formats: stored record v1', () => {
  const v = load('record.json');
  it('a fixed record opens with the fixed data key and shareAad(key_id, identifier)', () => {
    assert.equal(toHex(shareAad(v.key_id, v.identifier)), v.aad);
    const cipher = new RecordCipher(h(v.data_key));
    assert.equal(toHex(cipher.open(h(v.blob), shareAad(v.key_id, v.identifier))), v.plaintext);
    assert.throws(() => cipher.open(h(v.blob), shareAad(v.key_id, v.identifier + 1)));
  });
});

describe('pinned formats: attempt id v2', () => {
  const v = load('attempt.json');
  it('attemptId of fixed contexts', () => {
    for (const c of v.cases) {
      const id = attemptId({
        sessionId: c.sessionId,
        digest: h(c.digest),
        intentHash: h(c.intentHash),
        attempt: c.attempt,
        included: c.included,
      });
      assert.equal(toHex(id), c.attempt_id);
    }
  });
});
