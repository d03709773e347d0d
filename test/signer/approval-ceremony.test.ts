/**
 * The approval policy is part of what every member certifies at key creation (DESIGN §13): in
 * a DKG it is bound into the transcript (members told different policies certify different
 * transcripts), in an import into the sealed share's associated data and the certificate (a
 * coordinator that drops or changes it gets a share that does not open).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { normalizePolicy, policyStateHash } from '../../src/approvals/policy.js';
import { prepareDealerImport, verifyImportCertificates } from '../../src/client/dealer-import.js';
import { decodeDkgRound1 } from '../../src/crypto/encoding.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { ApprovalPolicyJson } from '../../src/protocol/messages/approvals.js';
import { dkgTranscriptHash } from '../../src/protocol/transcript.js';
import { CeremonyParticipant } from '../../src/signer/ceremony.js';
import { steward } from '../approvals/helpers.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';

const [a, b, c] = [steward(), steward(), steward()];
const policy = normalizePolicy({ stewards: [a.npub, b.npub, c.npub], threshold: 2, veto: true });

function nodes(n: number) {
  const clock = new FakeClock();
  const identities = Array.from({ length: n }, () => softwareIdentity(generateIdentityKey()));
  const roster = identities.map((x) => x.publicKeyHex);
  return identities.map((identity, i) => {
    const store = new MemoryStore();
    return {
      identifier: i + 1,
      identity,
      store,
      participant: new CeremonyParticipant({ store, clock, identity, roster }),
    };
  });
}

function dkg(ns: ReturnType<typeof nodes>, policies: (ApprovalPolicyJson | undefined)[]) {
  const participants = ns.map((x) => ({ identifier: x.identifier, identity: x.identity.publicKeyHex }));
  const r1 = ns.map((x, i) =>
    x.participant.dkgRound1({
      ceremony_id: 'c1',
      key_id: 'k1',
      threshold: 2,
      n: ns.length,
      identifier: x.identifier,
      participants,
      ...(policies[i] ? { approval_policy: policies[i] } : {}),
    }),
  );
  const all = r1.map((r) => r.round1);
  const r2 = ns.map((x) => x.participant.dkgRound2({ ceremony_id: 'c1', round1: all }));
  const r3 = ns.map((x) =>
    x.participant.dkgRound3({
      ceremony_id: 'c1',
      boxes: r2.flatMap((r) =>
        r.boxes
          .filter((bx) => bx.receiver === x.identifier)
          .map((bx) => ({ sender: r.identifier, box: bx.box })),
      ),
    }),
  );
  return { r1, r3, participants };
}

describe('approval policy at key creation: DKG', () => {
  it('every member certifies the transcript with the policy in it, and keeps the policy', () => {
    const ns = nodes(3);
    const { r1, r3, participants } = dkg(ns, [policy, policy, policy]);
    const want = dkgTranscriptHash({
      ceremonyId: 'c1',
      keyId: 'k1',
      threshold: 2,
      n: 3,
      participants,
      round1: r1.map((r) => decodeDkgRound1(r.round1)),
      approvalPolicyHash: policyStateHash('k1', { revision: 0, policy }),
    });
    for (const r of r3) assert.equal(r.transcript_hash, Buffer.from(want).toString('hex'));
    for (const x of ns) assert.deepEqual(x.store.getKey('k1')!.approvalPolicy, { revision: 0, policy });
  });

  it('members told different policies (or none) certify different transcripts: the key never activates', () => {
    const ns = nodes(3);
    const lax = normalizePolicy({ ...policy, threshold: 1 });
    const { r3 } = dkg(ns, [policy, lax, undefined]);
    assert.equal(new Set(r3.map((r) => r.transcript_hash)).size, 3);
  });

  it('a malformed policy is refused before any DKG secret exists', () => {
    const ns = nodes(3);
    assert.throws(
      () => dkg(ns, [{ ...policy, threshold: 9 }, policy, policy]),
      (e: unknown) => e instanceof FloeError && e.code === 'approval_policy_invalid',
    );
    assert.equal(ns[0]!.participant.liveCeremonies, 0);
  });
});

describe('approval policy at key creation: import', () => {
  function setup() {
    const ns = nodes(3);
    const signers = ns.map((x, i) => ({ id: `sig_${i}`, identity: x.identity.publicKeyHex }));
    const prep = prepareDealerImport({
      secret: new Uint8Array(randomBytes(32)),
      threshold: 2,
      signers,
      keyId: 'key_imp',
      approvalPolicy: { stewards: [a.npub, b.npub, c.npub], threshold: 2, veto: true },
    });
    const members = ns.map((x) => ({ identifier: x.identifier, identity: x.identity.publicKeyHex }));
    const send = (i: number, p: ApprovalPolicyJson | undefined) =>
      ns[i]!.participant.importKey({
        key_id: 'key_imp',
        identifier: i + 1,
        members,
        public_key_package: prep.body.public_key_package,
        sealed_share: prep.body.sealed_shares[i]!,
        ...(p ? { approval_policy: p } : {}),
      });
    return { ns, prep, members, send };
  }

  it('the client seals the normalized policy; members certify it; the client checks the certificates with it', () => {
    const { ns, prep, members, send } = setup();
    assert.deepEqual(prep.body.approval_policy, policy);
    const res = ns.map((_, i) => send(i, prep.body.approval_policy as ApprovalPolicyJson));
    const certificates = res.map((r) => ({
      identifier: r.identifier,
      verifying_share: r.verifying_share,
      certificate: r.certificate,
    }));
    for (const x of ns) x.participant.confirmImport({ key_id: 'key_imp', members, certificates });
    assert.ok(ns.every((x) => x.store.getKey('key_imp')!.status === 'active'));
    assert.deepEqual(ns[0]!.store.getKey('key_imp')!.approvalPolicy, { revision: 0, policy });
    const signed = res.map((r, i) => ({ ...r, identity: members[i]!.identity }));
    verifyImportCertificates({
      keyId: 'key_imp',
      publicKeyPackage: prep.body.public_key_package,
      members,
      certificates: signed,
      approvalPolicy: policy,
    });
    assert.throws(
      () =>
        verifyImportCertificates({
          keyId: 'key_imp',
          publicKeyPackage: prep.body.public_key_package,
          members,
          certificates: signed,
        }),
      /did not certify this import/,
      'certificates over the policy are not certificates over no policy',
    );
  });

  it('a coordinator that drops or weakens the policy gets shares that do not open', () => {
    const { send } = setup();
    const refused = (e: unknown) => e instanceof FloeError && e.code === 'import_failed';
    assert.throws(() => send(0, undefined), refused);
    assert.throws(() => send(1, normalizePolicy({ ...policy, threshold: 1 })), refused);
  });
});
