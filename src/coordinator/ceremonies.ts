/**
 * Key ceremonies driven by the coordinator (DESIGN §8).
 *
 * DKG: rounds 1–3 on every member; round-2 shares travel sealed between signers (the
 * coordinator relays them blind); at the end every member signs the transcript hash and
 * group key, and the key becomes `active` only when all those certificates agree and
 * verify, and every member has accepted all of them. Any failure names the member at fault
 * where it can be known, marks the ceremony and key failed, and tells the members to drop
 * their state.
 *
 * Import: the client split the secret and sealed each share to its signer; the coordinator
 * relays the sealed shares and checks each signer's signed acknowledgement.
 */
import { type ApprovalPolicy, creationPolicyHash, NO_POLICY, policyState } from '../approvals/policy.js';
import type { SealedBox } from '../crypto/box.js';
import { judgeDkgComplaint } from '../crypto/complaint.js';
import { verifyDkgRound1Package } from '../crypto/dkg.js';
import {
  decodeDkgRound1,
  decodePublicKeyPackage,
  encodePublicKeyPackage,
  type PublicKeyPackageJson,
} from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { pointAdd } from '../crypto/group.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { verifyDigest } from '../crypto/identity.js';
import { groupPublicKey, xOnlyGroupKey } from '../crypto/signing.js';
import { taprootOutputKey } from '../crypto/tweak.js';
import { newId } from '../domain/ids.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { ImportCertificate } from '../protocol/messages/import.js';
import {
  DKG_BOX_INFO,
  dkgBoxAad,
  dkgBoxHash,
  dkgCertificateDigest,
  dkgTranscriptHash,
  importCertificateDigest,
} from '../protocol/transcript.js';
import type { CeremonyRecord, KeyMember, KeyRecord, KeyStore, SignerRecord } from './ports.js';
import type { SignerClient } from './signer-client.js';

export interface CeremonyOptions {
  keys: KeyStore;
  clientFor: (signer: SignerRecord) => SignerClient;
  audit: (
    tenantId: string,
    kind: string,
    subjectType: string,
    subjectId: string,
    data: unknown,
  ) => Promise<void>;
  now?: () => number;
  roundTimeoutMs?: number;
  /** A ceremony not completed by then is failed by the expiry job. Default 10 minutes. */
  ceremonyTtlMs?: number;
}

export class CeremonyDriver {
  private readonly o: Required<CeremonyOptions>;

  constructor(o: CeremonyOptions) {
    this.o = { now: Date.now, roundTimeoutMs: 30_000, ceremonyTtlMs: 10 * 60_000, ...o };
  }

  /** Create the key and ceremony rows (status pending); `runDkg` then drives it. */
  async createDkg(
    tenantId: string,
    signers: SignerRecord[],
    threshold: number,
    label: string | null,
    /** The key's steward approval policy (DESIGN §13), normalized; every member certifies it. */
    approvalPolicy?: ApprovalPolicy | null,
  ): Promise<{ key: KeyRecord; ceremony: CeremonyRecord }> {
    const n = signers.length;
    if (n < 2) throw new FloeError('invalid_request', 'a key needs at least 2 signers');
    if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) {
      throw new FloeError('invalid_request', `threshold must be from 2 to ${n}`);
    }
    if (new Set(signers.map((s) => s.identityPubkey)).size !== n) {
      throw new FloeError('invalid_request', 'signers must be distinct');
    }
    const now = this.o.now();
    const members: KeyMember[] = signers.map((s, i) => ({
      identifier: i + 1,
      signer_id: s.id,
      identity: s.identityPubkey,
    }));
    const key: KeyRecord = {
      id: newId('key'),
      tenantId,
      label,
      threshold,
      n,
      groupPublicKey: null,
      xOnlyPublicKey: null,
      publicKeyPackage: null,
      members,
      origin: 'dkg',
      tweak: null,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      ...(approvalPolicy ? { approvalPolicy: { revision: 0, policy: approvalPolicy } } : {}),
    };
    const ceremony: CeremonyRecord = {
      id: newId('ceremony'),
      tenantId,
      keyId: key.id,
      status: 'pending',
      threshold,
      n,
      participants: members,
      transcriptHash: null,
      errorCode: null,
      errorMessage: null,
      culprits: [],
      createdAt: now,
      updatedAt: now,
      expiresAt: now + this.o.ceremonyTtlMs,
    };
    await this.o.keys.insertDkg(key, ceremony, {
      kind: 'key.dkg_started',
      data: { ceremony: ceremony.id, threshold, n },
    });
    return { key, ceremony };
  }

  /** Run every round; resolves with the activated key or throws the ceremony's failure. */
  async runDkg(
    key: KeyRecord,
    ceremony: CeremonyRecord,
    signers: SignerRecord[],
    /**
     * A deterministic DKG (DESIGN §14): every member seeds its round 1 from its HSM over this
     * passphrase id and the group (src/signer/ceremony.ts dkgRound1Deterministic). Never stored.
     */
    opts: { deterministic?: { passphrase_id: string } } = {},
  ): Promise<KeyRecord> {
    const t = this.o.roundTimeoutMs;
    const clients = signers.map((s) => this.o.clientFor(s));
    const cid = ceremony.id;
    const step = async (status: CeremonyRecord['status']) =>
      this.o.keys.updateCeremony(key.tenantId, cid, { status });
    /**
     * A round and the record that it runs, side by side: the record says which round the
     * ceremony is in, and no member's answer waits for it. (A failure of either ends the
     * ceremony; the record of a later round starts only after this round's answers.)
     */
    const round = async <T>(status: CeremonyRecord['status'], calls: Promise<T>): Promise<T> =>
      (await Promise.all([step(status), calls]))[1];
    /**
     * Run a call on every member. A failure ends the ceremony; it blames nobody by itself (a
     * refusal or a silence proves nothing: DESIGN §11). `judge` may turn refusals into proven
     * culprits (DKG complaints, checked here).
     */
    const all = async <T>(
      f: (c: SignerClient, i: number) => Promise<T>,
      judge?: (failed: { id: number; e: unknown }[]) => { culprits: number[]; evidence: unknown[] },
    ): Promise<T[]> => {
      const rs = await Promise.allSettled(clients.map((c, i) => f(c, i)));
      const bad = rs.flatMap((r, i) => (r.status === 'rejected' ? [{ id: i + 1, e: r.reason }] : []));
      if (bad.length) {
        const first = bad[0]!.e;
        const proven = judge?.(bad) ?? { culprits: [], evidence: [] };
        throw new FloeError(
          'dkg_failed',
          `member ${bad[0]!.id}: ${isFloeError(first) ? first.message : 'failed'}`,
          {
            culprits: proven.culprits,
            ...(proven.evidence.length ? { evidence: proven.evidence } : {}),
          },
        );
      }
      return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
    };
    try {
      const participants = key.members.map((m) => ({ identifier: m.identifier, identity: m.identity }));
      const policy = key.approvalPolicy
        ? policyState(key.approvalPolicy.revision, key.approvalPolicy.policy)
        : NO_POLICY;
      const r1 = await round(
        'round1',
        all((c, i) =>
          c.call(
            'dkgRound1',
            {
              ceremony_id: cid,
              key_id: key.id,
              threshold: key.threshold,
              n: key.n,
              identifier: i + 1,
              participants,
              ...(policy.policy ? { approval_policy: policy.policy } : {}),
              ...(opts.deterministic ? { deterministic: opts.deterministic } : {}),
            },
            t,
          ),
        ),
      );
      // Check every broadcast before relaying it, to name a bad member early.
      for (const [i, r] of r1.entries()) {
        if (r.identifier !== i + 1 || r.round1.identifier !== i + 1) {
          throw new FloeError('dkg_failed', `member ${i + 1} answered for another identifier`, {
            culprits: [i + 1],
          });
        }
        try {
          verifyDkgRound1Package(decodeDkgRound1(r.round1), key.threshold);
        } catch (e) {
          throw new FloeError('dkg_failed', isCryptoError(e) ? e.message : 'bad round-1 package', {
            culprits: [i + 1],
          });
        }
      }
      const round1 = r1.map((r) => r.round1);
      const r2answers = await round(
        'round2',
        all((c) => c.exchange('dkgRound2', { ceremony_id: cid, round1 }, t)),
      );
      const r2 = r2answers.map((a) => a.body);
      const inbox = new Map<number, { sender: number; box: SealedBox }[]>(
        key.members.map((m) => [m.identifier, []]),
      );
      for (const [i, r] of r2.entries()) {
        const receivers = r.boxes.map((b) => b.receiver).sort((a, b) => a - b);
        const expected = key.members.map((m) => m.identifier).filter((id) => id !== i + 1);
        if (r.identifier !== i + 1 || receivers.join() !== expected.join()) {
          throw new FloeError('dkg_failed', `member ${i + 1} did not send one share to each other member`, {
            culprits: [i + 1],
          });
        }
        for (const b of r.boxes) inbox.get(b.receiver)!.push({ sender: i + 1, box: b.box });
      }
      // A member whose box does not open or verify complains with proof (src/crypto/complaint.ts):
      // judged here against the sender's own signed round-2 answer.
      const judgeComplaints = (failed: { id: number; e: unknown }[]) => {
        const culprits = new Set<number>();
        const evidence: unknown[] = [];
        for (const { id: receiver, e } of failed) {
          if (!isFloeError(e) || e.code !== 'dkg_complaint') continue;
          for (const c of complaintsOf(e)) {
            const senderAnswer = r2answers[c.sender - 1];
            const box = senderAnswer?.body.boxes.find((b) => b.receiver === receiver)?.box;
            const senderRound1 = r1[c.sender - 1];
            if (!box || !senderRound1 || c.sender === receiver || toHex(dkgBoxHash(box)) !== c.box_hash) {
              continue; // not about the box the sender signed: unverifiable
            }
            const j = judgeDkgComplaint({
              complaint: {
                sender: c.sender,
                receiver,
                senderKey: fromHex(box.sender, 'box sender', 32),
                receiverKey: fromHex(key.members[receiver - 1]!.identity, 'identity', 32),
                shared: fromHex(c.shared, 'shared', 33),
                proof: fromHex(c.proof, 'proof', 64),
              },
              identityKeys: {
                sender: fromHex(box.sender, 'box sender', 32),
                receiver: fromHex(key.members[receiver - 1]!.identity, 'identity', 32),
              },
              box,
              aad: dkgBoxAad(cid, key.id, c.sender, receiver),
              info: DKG_BOX_INFO,
              senderRound1: decodeDkgRound1(senderRound1.round1),
              threshold: key.threshold,
            });
            if (j.verdict === 'unverifiable') continue;
            const culprit = j.verdict === 'sender_at_fault' ? c.sender : receiver;
            culprits.add(culprit);
            evidence.push({
              culprit,
              verdict: j.verdict,
              reason: j.reason,
              complaint: { receiver, ...c },
              sender_round2: senderAnswer.evidence,
            });
          }
        }
        return { culprits: [...culprits].sort((a, b) => a - b), evidence };
      };
      const r3 = await round(
        'round3',
        all(
          (c, i) => c.call('dkgRound3', { ceremony_id: cid, boxes: inbox.get(i + 1)! }, t),
          judgeComplaints,
        ),
      );
      // Every member must report the transcript and the group key that follow from the round-1
      // broadcasts (computed here, so a member that reports others is proven wrong by its own
      // signed answer), and all the same public package.
      const round1Packages = round1.map(decodeDkgRound1);
      const transcript = toHex(
        dkgTranscriptHash({
          ceremonyId: cid,
          keyId: key.id,
          threshold: key.threshold,
          n: key.n,
          participants,
          round1: round1Packages,
          approvalPolicyHash: creationPolicyHash(key.id, policy),
        }),
      );
      const expectedKey = toHex(
        taprootOutputKey(round1Packages.map((p) => p.commitment[0]!).reduce((a, b) => pointAdd(a, b))),
      );
      const wrong = r3.flatMap((r, i) =>
        r.transcript_hash !== transcript ||
        r.public_key_package.commitments[0] !== expectedKey ||
        r.key_id !== key.id
          ? [i + 1]
          : [],
      );
      if (wrong.length) {
        throw new FloeError('dkg_failed', `member ${wrong[0]} derived a different key or transcript`, {
          culprits: wrong,
        });
      }
      const pkgJson = JSON.stringify(r3[0]!.public_key_package);
      if (r3.some((r) => JSON.stringify(r.public_key_package) !== pkgJson)) {
        throw new FloeError('dkg_failed', 'members derived different verifying shares');
      }
      const pub = decodePublicKeyPackage(r3[0]!.public_key_package);
      const gk = groupPublicKey(pub);
      const digest = dkgCertificateDigest(cid, key.id, fromHex(transcript, 'transcript', 32), gk);
      for (const [i, r] of r3.entries()) {
        if (
          !verifyDigest(
            fromHex(r.certificate, 'certificate', 64),
            digest,
            fromHex(key.members[i]!.identity, 'id', 32),
          )
        ) {
          throw new FloeError('dkg_failed', `member ${i + 1} signed an invalid certificate`, {
            culprits: [i + 1],
          });
        }
      }
      const certificates = r3.map((r) => ({
        identifier: r.identifier,
        transcript_hash: r.transcript_hash,
        group_public_key: toHex(gk),
        certificate: r.certificate,
      }));
      await round(
        'certifying',
        all((c) => c.call('dkgCertify', { ceremony_id: cid, key_id: key.id, certificates }, t)),
      );
      const activated = {
        status: 'active' as const,
        groupPublicKey: toHex(gk),
        xOnlyPublicKey: toHex(xOnlyGroupKey(pub)),
        publicKeyPackage: encodePublicKeyPackage(pub),
        tweak: encodePublicKeyPackage(pub).tweak,
      };
      await this.o.keys.completeDkg(
        key.tenantId,
        key.id,
        activated,
        { id: cid, transcriptHash: transcript },
        { kind: 'key.activated', data: { ceremony: cid, transcript_hash: transcript } },
      );
      return { ...key, ...activated, updatedAt: this.o.now() };
    } catch (e) {
      const err = isFloeError(e) ? e : new FloeError('dkg_failed', 'ceremony failed');
      const culprits = (err.extra.culprits as number[] | undefined) ?? [];
      const evidence = err.extra.evidence;
      await this.o.keys.updateCeremony(key.tenantId, cid, {
        status: 'failed',
        errorCode: err.code,
        errorMessage: err.message,
        culprits,
      });
      await this.o.keys.updateKey(key.tenantId, key.id, { status: 'failed' });
      await this.o.audit(key.tenantId, 'key.dkg_failed', 'key', key.id, {
        ceremony: cid,
        code: err.code,
        culprits,
        ...(evidence ? { evidence } : {}),
      });
      for (const c of clients) c.call('dkgAbort', { ceremony_id: cid }, 2000).catch(() => {});
      throw err;
    }
  }

  /**
   * Relay a client-side dealer split: `shares[i]` is sealed to `signers[i]` (identifier i+1).
   * The key is active only when every signer acknowledged its share with a valid signature.
   */
  async importDealer(
    tenantId: string,
    signers: SignerRecord[],
    publicKeyPackage: PublicKeyPackageJson,
    sealedShares: SealedBox[],
    label: string | null,
    /** The client's key id: the sealed shares are bound to it. */
    keyId: string = newId('key'),
    /** The steward approval policy the client bound into the sealed shares (DESIGN §13), normalized. */
    approvalPolicy?: ApprovalPolicy | null,
  ): Promise<{ key: KeyRecord; certificates: ImportCertificate[] }> {
    const pub = decodePublicKeyPackage(publicKeyPackage);
    if (pub.n !== signers.length || sealedShares.length !== signers.length) {
      throw new FloeError('invalid_request', 'one sealed share per signer, and n signers');
    }
    if (new Set(signers.map((s) => s.identityPubkey)).size !== signers.length) {
      throw new FloeError('invalid_request', 'signers must be distinct');
    }
    const now = this.o.now();
    const gk = groupPublicKey(pub);
    const key: KeyRecord = {
      id: keyId,
      tenantId,
      label,
      threshold: pub.threshold,
      n: pub.n,
      groupPublicKey: toHex(gk),
      xOnlyPublicKey: toHex(xOnlyGroupKey(pub)),
      publicKeyPackage: encodePublicKeyPackage(pub),
      members: signers.map((s, i) => ({ identifier: i + 1, signer_id: s.id, identity: s.identityPubkey })),
      origin: 'dealer',
      tweak: encodePublicKeyPackage(pub).tweak,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      ...(approvalPolicy ? { approvalPolicy: { revision: 0, policy: approvalPolicy } } : {}),
    };
    const policyHash = creationPolicyHash(
      keyId,
      approvalPolicy ? { revision: 0, policy: approvalPolicy } : null,
    );
    await this.o.keys.insertKey(key);
    const members = key.members.map((m) => ({ identifier: m.identifier, identity: m.identity }));
    const clients = signers.map((x) => this.o.clientFor(x));
    const rs = await Promise.allSettled(
      clients.map((c, i) =>
        c.call(
          'keyImport',
          {
            key_id: key.id,
            identifier: i + 1,
            members,
            public_key_package: encodePublicKeyPackage(pub),
            sealed_share: sealedShares[i]!,
            ...(approvalPolicy ? { approval_policy: approvalPolicy } : {}),
          },
          this.o.roundTimeoutMs,
        ),
      ),
    );
    const certificates: ImportCertificate[] = [];
    const bad: number[] = [];
    for (const [i, r] of rs.entries()) {
      const vs = pub.verifyingShares.get(i + 1)!;
      const ok =
        r.status === 'fulfilled' &&
        r.value.verifying_share === toHex(vs) &&
        verifyDigest(
          fromHex(r.value.certificate, 'certificate', 64),
          importCertificateDigest(key.id, i + 1, gk, vs, members, policyHash),
          fromHex(signers[i]!.identityPubkey, 'id', 32),
        );
      if (ok)
        certificates.push({
          identifier: i + 1,
          verifying_share: toHex(vs),
          certificate: r.value.certificate,
        });
      else bad.push(i + 1);
    }
    // Every member must confirm every certificate before any share is usable: a failed import
    // leaves no active share anywhere (the members that accepted drop theirs).
    let confirmFailed: unknown;
    if (!bad.length) {
      const confirmed = await Promise.allSettled(
        clients.map((c) =>
          c.call('keyImportConfirm', { key_id: key.id, members, certificates }, this.o.roundTimeoutMs),
        ),
      );
      for (const [i, r] of confirmed.entries()) {
        if (r.status === 'rejected') {
          bad.push(i + 1);
          confirmFailed ??= r.reason;
        }
      }
    }
    if (bad.length) {
      for (const c of clients) c.call('keyImportAbort', { key_id: key.id }, 2000).catch(() => {});
      await this.o.keys.updateKey(tenantId, key.id, { status: 'failed' });
      await this.o.audit(tenantId, 'key.import_failed', 'key', key.id, { members: bad });
      const first = rs[bad[0]! - 1]!;
      const reason = first.status === 'rejected' ? first.reason : confirmFailed;
      const why = isFloeError(reason) ? reason.message : 'bad acknowledgement';
      throw new FloeError('import_failed', `signer ${bad[0]} did not accept its share: ${why}`, {
        members: bad,
      });
    }
    await this.o.keys.updateKey(tenantId, key.id, { status: 'active' });
    await this.o.audit(tenantId, 'key.imported', 'key', key.id, { n: key.n, threshold: key.threshold });
    return { key: { ...key, status: 'active' }, certificates };
  }
}

/** The complaints a member's signed `dkg_complaint` refusal carries (malformed ones dropped). */
function complaintsOf(e: FloeError): { sender: number; box_hash: string; shared: string; proof: string }[] {
  const list = e.extra.complaints;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (c): c is { sender: number; box_hash: string; shared: string; proof: string } =>
      typeof c === 'object' &&
      c !== null &&
      Number.isInteger(c.sender) &&
      typeof c.box_hash === 'string' &&
      /^[0-9a-f]{64}$/.test(c.box_hash) &&
      typeof c.shared === 'string' &&
      /^[0-9a-f]{66}$/.test(c.shared) &&
      typeof c.proof === 'string' &&
      /^[0-9a-f]{128}$/.test(c.proof),
  );
}
