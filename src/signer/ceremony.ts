/**
 * This signer's part in key ceremonies (DESIGN §8): DKG rounds 1–3 and certification, and
 * import of a dealer share. DKG secrets live only in memory with a TTL: a restart in the
 * middle of a ceremony loses them and the ceremony fails cleanly (the coordinator sees
 * `ceremony_unknown`). Round-2 shares travel sealed to their receiver (ECDH of identity
 * keys + AEAD); the coordinator relays them blind and cannot forge one.
 */
import { creationPolicyHash, type PolicyState, policyState } from '../approvals/policy.js';
import { openBox, type SealedBox, sealBoxOneTime } from '../crypto/box.js';
import { makeDkgComplaint } from '../crypto/complaint.js';
import { validateKeyPackage } from '../crypto/dealer.js';
import {
  type DkgSecretState,
  dkgRound1,
  dkgRound1Deterministic,
  dkgRound2,
  dkgRound3,
  dkgWipe,
} from '../crypto/dkg.js';
import {
  decodeDkgRound1,
  decodePublicKeyPackage,
  encodeDkgRound1,
  encodePublicKeyPackage,
} from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { parseScalar } from '../crypto/group.js';
import { lengthPrefixed, taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { bytesEqual, fromHex, toHex, wipe } from '../crypto/hex.js';
import { type NodeIdentity, verifyDigest } from '../crypto/identity.js';
import { groupPublicKey } from '../crypto/signing.js';
import { taprootOutputKey } from '../crypto/tweak.js';
import type { DkgRound1Package, KeyPackage } from '../crypto/types.js';
import { FloeError } from '../protocol/errors.js';
import type { KeyApprovalPolicyRequest, KeyApprovalPolicyResponse } from '../protocol/messages/approvals.js';
import type {
  DkgAbortRequest,
  DkgAbortResponse,
  DkgCertifyRequest,
  DkgCertifyResponse,
  DkgRound1Request,
  DkgRound1Response,
  DkgRound2Request,
  DkgRound2Response,
  DkgRound3Request,
  DkgRound3Response,
} from '../protocol/messages/dkg.js';
import type {
  KeyImportAbortRequest,
  KeyImportAbortResponse,
  KeyImportConfirmRequest,
  KeyImportConfirmResponse,
  KeyImportRequest,
  KeyImportResponse,
} from '../protocol/messages/import.js';
import {
  DKG_BOX_INFO,
  dkgBoxAad,
  dkgBoxHash,
  dkgCertificateDigest,
  dkgTranscriptHash,
  IMPORT_BOX_INFO,
  importBoxAad,
  importCertificateDigest,
  membersHash,
} from '../protocol/transcript.js';
import { changeApprovalPolicy } from './approvals.js';
import type { DeterministicSecret } from './keys/deterministic.js';
import type { Clock, Rng, SignerStore } from './ports.js';

/** Label of the deterministic-secret HMAC that seeds a deterministic DKG (keys/deterministic.ts). */
export const DKG_SEED_LABEL = 'floe/dkg/deterministic-seed/v1';

/**
 * The data a member's deterministic DKG seed is the HMAC of (DESIGN §14): the passphrase id,
 * the threshold, n, this member's identifier and the whole member list (identifiers and identity
 * keys). Anything that differs gives an unrelated polynomial: a polynomial is never evaluated
 * for another group, so no two groups ever hold shares of one polynomial.
 */
export function dkgSeedInput(o: {
  passphraseId: Uint8Array;
  threshold: number;
  n: number;
  identifier: number;
  participants: readonly { identifier: number; identity: string }[];
}): Uint8Array {
  return lengthPrefixed('floe/dkg/deterministic-input/v1', [
    o.passphraseId,
    u32be(o.threshold),
    u32be(o.n),
    u32be(o.identifier),
    membersHash(o.participants),
  ]);
}

export interface CeremonyOptions {
  store: SignerStore;
  clock: Clock;
  /** This node's identity (signs certificates, opens and seals shares). */
  identity: NodeIdentity;
  /**
   * The pinned roster (config `peers`, DESIGN §11): identity keys of the signers this node may
   * share a key with. A DKG or an import with any member outside it (or this node) is refused:
   * whoever chose the members' keys could otherwise learn the key.
   */
  roster: readonly string[];
  rng?: Rng;
  /**
   * The signer's deterministic secret (the HSM's HMAC key, or the store's stand-in): seeds
   * deterministic DKGs ({@link CeremonyParticipant.dkgRound1Deterministic}). Without it they are
   * refused.
   */
  deterministic?: DeterministicSecret;
  /** Default 600 000 ms. */
  ttlMs?: number;
  /** Default 64. */
  maxCeremonies?: number;
}

interface Ceremony {
  id: string;
  keyId: string;
  threshold: number;
  n: number;
  identifier: number;
  participants: { identifier: number; identity: string }[];
  fingerprint: string;
  expiresAt: number;
  secret?: DkgSecretState;
  round1: DkgRound1Response;
  ownRound1: DkgRound1Package;
  others?: DkgRound1Package[];
  round2?: DkgRound2Response;
  round3?: DkgRound3Response;
  transcriptHash?: Uint8Array;
  groupKey?: Uint8Array;
  /** The key's approval policy (DESIGN §13), certified with the transcript. */
  approvalPolicy?: PolicyState;
}

const dkgFailed = (e: unknown, fallback: string): FloeError => {
  if (isCryptoError(e))
    return new FloeError('dkg_failed', e.message, e.culprits.length ? { culprits: e.culprits } : {});
  if (e instanceof FloeError) return e;
  return new FloeError('dkg_failed', fallback);
};

export class CeremonyParticipant {
  private readonly ceremonies = new Map<string, Ceremony>();
  private readonly o: Required<Omit<CeremonyOptions, 'rng' | 'deterministic'>> & {
    rng?: Rng;
    deterministic?: DeterministicSecret;
  };
  private readonly roster: ReadonlySet<string>;

  constructor(o: CeremonyOptions) {
    this.o = { ttlMs: 600_000, maxCeremonies: 64, ...o };
    this.roster = new Set([...o.roster, o.identity.publicKeyHex]);
  }

  /** Members must be 1..n, distinct, this node at `self`, and every one on the roster. */
  private checkMembers(
    members: readonly { identifier: number; identity: string }[],
    n: number,
    self: number,
  ) {
    if (members.length !== n) throw new FloeError('invalid_request', 'members: expected n entries');
    const sorted = [...members].sort((a, b) => a.identifier - b.identifier);
    if (sorted.some((p, i) => p.identifier !== i + 1)) {
      throw new FloeError('invalid_request', 'members: identifiers must be 1..n, each once');
    }
    if (new Set(sorted.map((p) => p.identity)).size !== sorted.length) {
      throw new FloeError('invalid_request', 'members: identity keys must be distinct');
    }
    if (sorted[self - 1]?.identity !== this.o.identity.publicKeyHex) {
      throw new FloeError('not_a_member', 'this signer is not the member at that identifier');
    }
    const outside = sorted.filter((p) => !this.roster.has(p.identity));
    if (outside.length) {
      throw new FloeError(
        'not_on_roster',
        `member${outside.length > 1 ? 's' : ''} ${outside.map((p) => p.identifier).join(', ')} ${outside.length > 1 ? 'are' : 'is'} not on this signer's roster`,
        {
          hint: "add the signer's identity key to this signer's config `peers` (an operator action on each signer)",
        },
      );
    }
    return sorted;
  }

  get liveCeremonies(): number {
    return this.ceremonies.size;
  }

  sweep(): number {
    const now = this.o.clock.now();
    let n = 0;
    for (const [id, c] of this.ceremonies) {
      if (c.expiresAt <= now) {
        this.forget(id, true);
        n++;
      }
    }
    return n;
  }

  wipeAll(): void {
    for (const id of [...this.ceremonies.keys()]) this.forget(id, true);
  }

  private forget(id: string, dropPendingKey: boolean): void {
    const c = this.ceremonies.get(id);
    if (!c) return;
    if (c.secret) dkgWipe(c.secret);
    this.ceremonies.delete(id);
    // Only the pending key this ceremony stored (round 3 sets its transcript hash): another
    // ceremony for the same key id may have stored its own.
    if (dropPendingKey && c.transcriptHash) {
      const k = this.o.store.getKey(c.keyId);
      if (
        k &&
        k.status === 'pending' &&
        k.origin === 'dkg' &&
        k.transcriptHash &&
        bytesEqual(k.transcriptHash, c.transcriptHash)
      )
        this.o.store.deleteKey(c.keyId);
    }
  }

  private get(id: string): Ceremony {
    this.sweep();
    const c = this.ceremonies.get(id);
    if (!c)
      throw new FloeError('ceremony_unknown', `no live ceremony ${id} on this signer (expired or restarted)`);
    return c;
  }

  dkgRound1(req: DkgRound1Request): DkgRound1Response {
    if (req.deterministic) {
      throw new FloeError('internal', 'a deterministic round 1 goes through dkgRound1Deterministic');
    }
    const pre = this.round1Checks(req);
    if ('existing' in pre) return pre.existing;
    return this.beginRound1(req, pre, dkgRound1(req.identifier, req.threshold, req.n, this.o.rng));
  }

  /**
   * Round 1 of a deterministic DKG (DESIGN §14): polynomial and proof nonce from
   * HMAC(deterministic secret, {@link dkgSeedInput}), computed in the HSM when there is one.
   * Same request on any rebuild with the same secret, the same package (and so, with every
   * member doing the same, the same key). A request without `deterministic` runs the random round 1.
   */
  async dkgRound1Deterministic(req: DkgRound1Request): Promise<DkgRound1Response> {
    const det = req.deterministic;
    if (!det) return this.dkgRound1(req);
    const secret = this.o.deterministic;
    if (!secret) {
      throw new FloeError('unavailable', 'this signer has no deterministic secret for a deterministic DKG');
    }
    const pre = this.round1Checks(req);
    if ('existing' in pre) return pre.existing;
    const seed = await secret.hmac(
      DKG_SEED_LABEL,
      dkgSeedInput({
        passphraseId: fromHex(det.passphrase_id, 'passphrase_id', 32),
        threshold: req.threshold,
        n: req.n,
        identifier: req.identifier,
        participants: pre.parts,
      }),
    );
    try {
      // Again after the wait: the same request may have started this ceremony meanwhile.
      const again = this.round1Checks(req);
      if ('existing' in again) return again.existing;
      return this.beginRound1(req, again, dkgRound1Deterministic(req.identifier, req.threshold, req.n, seed));
    } finally {
      wipe(seed);
    }
  }

  /** Checks of a round-1 request; the live ceremony's answer when it is a repeat. */
  private round1Checks(
    req: DkgRound1Request,
  ):
    | { existing: DkgRound1Response }
    | { fingerprint: string; parts: { identifier: number; identity: string }[] } {
    this.sweep();
    const fingerprint = toHex(taggedFieldsHash('floe/dkg-round1-request/v1', [utf8(JSON.stringify(req))]));
    const existing = this.ceremonies.get(req.ceremony_id);
    if (existing) {
      if (existing.fingerprint !== fingerprint)
        throw new FloeError('ceremony_conflict', 'ceremony exists with other parameters');
      return { existing: existing.round1 };
    }
    if (req.threshold > req.n) throw new FloeError('invalid_request', 'threshold must not exceed n');
    if (req.approval_policy) policyState(0, req.approval_policy); // approval_policy_invalid, before any work
    const parts = this.checkMembers(req.participants, req.n, req.identifier);
    if (this.o.store.getKey(req.key_id))
      throw new FloeError('key_exists', `key ${req.key_id} already exists on this signer`);
    if (this.ceremonies.size >= this.o.maxCeremonies) {
      throw new FloeError('unavailable', 'too many ceremonies in progress on this signer');
    }
    return { fingerprint, parts };
  }

  private beginRound1(
    req: DkgRound1Request,
    pre: { fingerprint: string; parts: { identifier: number; identity: string }[] },
    r: { package: DkgRound1Package; secret: DkgSecretState },
  ): DkgRound1Response {
    const round1: DkgRound1Response = {
      ceremony_id: req.ceremony_id,
      identifier: req.identifier,
      round1: encodeDkgRound1(r.package),
    };
    this.ceremonies.set(req.ceremony_id, {
      id: req.ceremony_id,
      keyId: req.key_id,
      threshold: req.threshold,
      n: req.n,
      identifier: req.identifier,
      participants: pre.parts,
      fingerprint: pre.fingerprint,
      expiresAt: this.o.clock.now() + this.o.ttlMs,
      secret: r.secret,
      round1,
      ownRound1: r.package,
      ...(req.approval_policy ? { approvalPolicy: policyState(0, req.approval_policy) } : {}),
    });
    return round1;
  }

  dkgRound2(req: DkgRound2Request): DkgRound2Response {
    const c = this.get(req.ceremony_id);
    const all = req.round1.map(decodeDkgRound1).sort((a, b) => a.identifier - b.identifier);
    if (all.length !== c.n || all.some((p, i) => p.identifier !== i + 1)) {
      throw new FloeError('invalid_request', 'round1: expected one package from each member');
    }
    const own = all[c.identifier - 1]!;
    if (
      own.commitment.length !== c.ownRound1.commitment.length ||
      own.commitment.some((x, i) => !bytesEqual(x, c.ownRound1.commitment[i]!)) ||
      !bytesEqual(own.proofOfKnowledge, c.ownRound1.proofOfKnowledge)
    ) {
      throw new FloeError('ceremony_conflict', "round1: this signer's own package was altered");
    }
    const others = all.filter((p) => p.identifier !== c.identifier);
    if (c.round2) {
      // Repeat: only for the same transcript (every commitment: the proof covers only the first).
      const same = c.others!.every(
        (p, i) =>
          bytesEqual(p.proofOfKnowledge, others[i]!.proofOfKnowledge) &&
          p.commitment.length === others[i]!.commitment.length &&
          p.commitment.every((x, j) => bytesEqual(x, others[i]!.commitment[j]!)),
      );
      if (!same)
        throw new FloeError('ceremony_conflict', 'round1 packages differ from the first round-2 request');
      return c.round2;
    }
    if (!c.secret) throw new FloeError('ceremony_conflict', 'ceremony is past round 2');
    try {
      const packages = dkgRound2(c.secret, others); // verifies every other member's package
      // A fresh sender key per box: the signed round-2 answer is what says who sent it, and a
      // complaint that reveals this box's ECDH opens this box only (a static pairwise key would
      // open every box between the two members, in every ceremony).
      const boxes = packages.map((p) => {
        const receiver = c.participants[p.receiver - 1]!;
        try {
          const box = sealBoxOneTime(
            fromHex(receiver.identity, 'identity', 32),
            p.signingShare,
            dkgBoxAad(c.id, c.keyId, c.identifier, p.receiver),
            DKG_BOX_INFO,
          );
          return { receiver: p.receiver, box };
        } finally {
          wipe(p.signingShare);
        }
      });
      c.others = others;
      c.round2 = { ceremony_id: c.id, identifier: c.identifier, boxes };
      return c.round2;
    } catch (e) {
      throw dkgFailed(e, 'round 2 failed');
    }
  }

  dkgRound3(req: DkgRound3Request): DkgRound3Response {
    const c = this.get(req.ceremony_id);
    if (c.round3) return c.round3;
    if (!c.others || !c.secret) throw new FloeError('ceremony_conflict', 'round 3 before round 2');
    const bySender = new Map(req.boxes.map((b) => [b.sender, b.box]));
    if (bySender.size !== req.boxes.length || req.boxes.length !== c.n - 1) {
      throw new FloeError('invalid_request', 'boxes: expected one from each other member');
    }
    // A malformed request is refused before anything happens: only a box that fails to open or
    // to verify ends the ceremony (below).
    for (const o of c.others) {
      if (!bySender.has(o.identifier))
        throw new FloeError('invalid_request', `boxes: missing the box from ${o.identifier}`);
    }
    let key: KeyPackage;
    const received: { sender: number; receiver: number; signingShare: Uint8Array }[] = [];
    try {
      const unopened: number[] = [];
      for (const o of c.others) {
        try {
          const share = openBox(
            this.o.identity,
            bySender.get(o.identifier)!,
            dkgBoxAad(c.id, c.keyId, o.identifier, c.identifier),
            DKG_BOX_INFO,
          );
          parseScalar(share, 'share');
          received.push({ sender: o.identifier, receiver: c.identifier, signingShare: share });
        } catch {
          unopened.push(o.identifier);
        }
      }
      if (unopened.length) throw this.complaint(c, unopened, bySender);
      try {
        key = dkgRound3(c.secret, c.others, received);
      } catch (e) {
        // A share that does not match its sender's commitments: complain about that sender.
        if (isCryptoError(e) && e.code === 'invalid_share' && e.culprits.length) {
          throw this.complaint(c, e.culprits, bySender);
        }
        throw e;
      }
    } catch (e) {
      this.forget(c.id, true);
      throw dkgFailed(e, 'round 3 failed');
    } finally {
      for (const r of received) wipe(r.signingShare);
    }
    dkgWipe(c.secret);
    delete c.secret;
    const transcriptHash = dkgTranscriptHash({
      ceremonyId: c.id,
      keyId: c.keyId,
      threshold: c.threshold,
      n: c.n,
      participants: c.participants,
      round1: [c.ownRound1, ...c.others],
      approvalPolicyHash: creationPolicyHash(c.keyId, c.approvalPolicy),
    });
    const gk = groupPublicKey(key.public);
    this.o.store.putKey({
      keyId: c.keyId,
      identifier: c.identifier,
      status: 'pending',
      origin: 'dkg',
      keyPackage: key,
      transcriptHash,
      createdAt: this.o.clock.now(),
      ...(c.approvalPolicy ? { approvalPolicy: c.approvalPolicy } : {}),
    });
    wipe(key.signingShare);
    c.transcriptHash = transcriptHash;
    c.groupKey = gk;
    c.round3 = {
      ceremony_id: c.id,
      key_id: c.keyId,
      identifier: c.identifier,
      public_key_package: encodePublicKeyPackage(key.public),
      transcript_hash: toHex(transcriptHash),
      certificate: toHex(this.o.identity.sign(dkgCertificateDigest(c.id, c.keyId, transcriptHash, gk))),
    };
    return c.round3;
  }

  /**
   * A complaint anyone can check (DESIGN §11): for each bad box, this node reveals the box's
   * ECDH with a DLEQ proof, so the coordinator or an auditor can open the sender's signed box
   * and judge (src/crypto/complaint.ts). An identity that cannot prove its ECDH (an HSM key)
   * fails the round without complaint: nobody is blamed.
   */
  private complaint(
    c: Ceremony,
    senders: readonly number[],
    boxes: ReadonlyMap<number, SealedBox>,
  ): FloeError {
    const list = `${senders.length > 1 ? 'members' : 'member'} ${senders.join(', ')}`;
    if (!this.o.identity.proveEcdh) {
      return new FloeError('dkg_failed', `the sealed shares from ${list} do not open or verify`);
    }
    const complaints = senders.map((sender) => {
      const box = boxes.get(sender)!;
      const proof = makeDkgComplaint(this.o.identity, {
        sender,
        receiver: c.identifier,
        senderKey: fromHex(box.sender, 'box.sender', 32),
        aad: dkgBoxAad(c.id, c.keyId, sender, c.identifier),
        info: DKG_BOX_INFO,
      });
      return {
        sender,
        box_hash: toHex(dkgBoxHash(box)),
        shared: toHex(proof.shared),
        proof: toHex(proof.proof),
      };
    });
    return new FloeError('dkg_complaint', `the sealed shares from ${list} do not open or verify`, {
      complaints,
    });
  }

  /**
   * Activate the key only if every member certified the same transcript and group key:
   * a coordinator that showed members different transcripts cannot get a key activated.
   */
  dkgCertify(req: DkgCertifyRequest): DkgCertifyResponse {
    const c = this.get(req.ceremony_id);
    if (!c.round3 || !c.transcriptHash || !c.groupKey)
      throw new FloeError('ceremony_conflict', 'certify before round 3');
    if (req.key_id !== c.keyId) throw new FloeError('ceremony_conflict', 'certify names another key');
    const byId = new Map(req.certificates.map((x) => [x.identifier, x]));
    if (byId.size !== c.n || req.certificates.length !== c.n) {
      throw new FloeError('certification_mismatch', 'expected one certificate from each member');
    }
    for (const p of c.participants) {
      const cert = byId.get(p.identifier);
      const ok =
        cert &&
        cert.transcript_hash === toHex(c.transcriptHash) &&
        cert.group_public_key === toHex(c.groupKey) &&
        verifyDigest(
          fromHex(cert.certificate, 'certificate', 64),
          dkgCertificateDigest(c.id, c.keyId, c.transcriptHash, c.groupKey),
          fromHex(p.identity, 'identity', 32),
        );
      if (!ok) {
        this.forget(c.id, true);
        throw new FloeError(
          'certification_mismatch',
          `member ${p.identifier} certified another transcript or key`,
          {
            culprits: [p.identifier],
          },
        );
      }
    }
    this.o.store.setKeyStatus(c.keyId, 'active', {
      at: this.o.clock.now(),
      kind: 'dkg_certified',
      keyId: c.keyId,
      detail: c.id,
    });
    this.forget(c.id, false);
    return { ceremony_id: c.id, key_id: c.keyId, status: 'active' };
  }

  dkgAbort(req: DkgAbortRequest): DkgAbortResponse {
    const had = this.ceremonies.has(req.ceremony_id);
    this.forget(req.ceremony_id, true);
    return { ceremony_id: req.ceremony_id, aborted: had };
  }

  /**
   * Import a dealer share sealed to this node (DESIGN §8): every member on the roster, the
   * box bound to the key, identifier, group key, tweak and member list; checked against the
   * public package. Stored `pending`: it signs nothing until {@link confirmImport} shows every
   * member's certificate.
   */
  importKey(req: KeyImportRequest): KeyImportResponse {
    if (this.o.store.getKey(req.key_id))
      throw new FloeError('key_exists', `key ${req.key_id} already exists on this signer`);
    let key: KeyPackage;
    let members: { identifier: number; identity: string }[];
    // The policy the client bound into the box (DESIGN §13): a coordinator that changed it fails to open it.
    const approvalPolicy = req.approval_policy ? policyState(0, req.approval_policy) : undefined;
    const policyHash = creationPolicyHash(req.key_id, approvalPolicy);
    try {
      const pub = decodePublicKeyPackage(req.public_key_package);
      members = this.checkMembers(req.members, pub.n, req.identifier);
      if (!pub.verifyingShares.has(req.identifier))
        throw new FloeError('not_a_member', 'identifier is not a member');
      const t = pub.tweak;
      if (
        t.kind === 'taproot' &&
        !bytesEqual(taprootOutputKey(t.internalKey, t.merkleRoot), groupPublicKey(pub))
      ) {
        throw new FloeError('import_failed', 'the group key is not the taproot tweak of the internal key');
      }
      const share = openBox(
        this.o.identity,
        req.sealed_share,
        importBoxAad(req.key_id, req.identifier, groupPublicKey(pub), pub.tweak, members, policyHash),
        IMPORT_BOX_INFO,
      );
      key = { identifier: req.identifier, signingShare: share, public: pub };
      validateKeyPackage(key);
    } catch (e) {
      if (e instanceof FloeError) throw e;
      throw new FloeError(
        'import_failed',
        isCryptoError(e) ? e.message : 'share does not open or does not verify',
      );
    }
    const vs = key.public.verifyingShares.get(req.identifier)!;
    const gk = groupPublicKey(key.public);
    this.o.store.putKey({
      keyId: req.key_id,
      identifier: req.identifier,
      status: 'pending',
      origin: 'dealer',
      keyPackage: key,
      transcriptHash: importTranscriptHash(req.key_id, members, gk),
      createdAt: this.o.clock.now(),
      ...(approvalPolicy ? { approvalPolicy } : {}),
    });
    wipe(key.signingShare);
    this.o.store.appendAudit({ at: this.o.clock.now(), kind: 'key_import_pending', keyId: req.key_id });
    return {
      key_id: req.key_id,
      identifier: req.identifier,
      verifying_share: toHex(vs),
      status: 'pending',
      certificate: toHex(
        this.o.identity.sign(
          importCertificateDigest(req.key_id, req.identifier, gk, vs, members, policyHash),
        ),
      ),
    };
  }

  /**
   * Activate an imported share once every member's import certificate, for the same members
   * and group key this node stored, verifies under that member's (roster) identity key.
   */
  confirmImport(req: KeyImportConfirmRequest): KeyImportConfirmResponse {
    const k = this.o.store.getKey(req.key_id);
    if (!k || k.origin !== 'dealer')
      throw new FloeError('unknown_key', `no imported key ${req.key_id} on this signer`);
    const pub = k.keyPackage.public;
    wipe(k.keyPackage.signingShare);
    if (k.status === 'active') return { key_id: req.key_id, status: 'active' };
    const members = this.checkMembers(req.members, pub.n, k.identifier);
    const gk = groupPublicKey(pub);
    if (!k.transcriptHash || !bytesEqual(importTranscriptHash(req.key_id, members, gk), k.transcriptHash)) {
      throw new FloeError('certification_mismatch', 'confirm names other members than the import');
    }
    const byId = new Map(req.certificates.map((c) => [c.identifier, c]));
    if (byId.size !== pub.n || req.certificates.length !== pub.n) {
      throw new FloeError('certification_mismatch', 'expected one certificate from each member');
    }
    for (const m of members) {
      const c = byId.get(m.identifier);
      const vs = pub.verifyingShares.get(m.identifier)!;
      const ok =
        c &&
        c.verifying_share === toHex(vs) &&
        verifyDigest(
          fromHex(c.certificate, 'certificate', 64),
          importCertificateDigest(
            req.key_id,
            m.identifier,
            gk,
            vs,
            members,
            creationPolicyHash(req.key_id, k.approvalPolicy),
          ),
          fromHex(m.identity, 'identity', 32),
        );
      if (!ok) {
        throw new FloeError('certification_mismatch', `member ${m.identifier} did not certify this import`);
      }
    }
    this.o.store.setKeyStatus(req.key_id, 'active', {
      at: this.o.clock.now(),
      kind: 'key_imported',
      keyId: req.key_id,
    });
    return { key_id: req.key_id, status: 'active' };
  }

  /** A change of a key's approval policy, proven by its current stewards (src/signer/approvals.ts). */
  changeApprovalPolicy(req: KeyApprovalPolicyRequest): KeyApprovalPolicyResponse {
    return changeApprovalPolicy(this.o, req);
  }

  /** Drop an imported share that was never confirmed (an active key is never dropped this way). */
  abortImport(req: KeyImportAbortRequest): KeyImportAbortResponse {
    const k = this.o.store.getKey(req.key_id);
    if (k) wipe(k.keyPackage.signingShare);
    const drop = k?.origin === 'dealer' && k.status === 'pending';
    if (drop) {
      this.o.store.deleteKey(req.key_id);
      this.o.store.appendAudit({ at: this.o.clock.now(), kind: 'key_import_aborted', keyId: req.key_id });
    }
    return { key_id: req.key_id, aborted: drop };
  }
}

/** What a pending import was told (key, members, group key): confirm must name the same. */
function importTranscriptHash(
  keyId: string,
  members: readonly { identifier: number; identity: string }[],
  groupKey: Uint8Array,
): Uint8Array {
  return taggedFieldsHash('floe/import-transcript/v1', [utf8(keyId), membersHash(members), groupKey]);
}
