/**
 * This signer's part in a share repair (issue "Key lifecycle"; messages in
 * src/protocol/messages/repair.ts): as a helper (help, combine), as the new member (enroll), and
 * as any member learning the replacement (commit).
 *
 * A helper's secret parts live in memory only, with a TTL: a restart loses them and the repair
 * fails cleanly (nothing changed anywhere). Every member checks for itself that the new
 * identity is on its roster and that the replaced one is not a current helper; the new member
 * checks every part against the published points, the result against the lost member's
 * verifying share, and t helper statements before it activates. The commit revokes the
 * replaced identity for the key on every member: it is never again accepted in the key's
 * ceremonies here (refresh, repair).
 */

import { policyState } from '../approvals/policy.js';
import { openBox, sealBoxOneTime } from '../crypto/box.js';
import { decodePublicKeyPackage } from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { parseScalar } from '../crypto/group.js';
import { bytesEqual, fromHex, toHex, wipe } from '../crypto/hex.js';
import { type NodeIdentity, verifyDigest } from '../crypto/identity.js';
import { repairStep1, repairStep2, repairStep3, verifyRepairCommitments } from '../crypto/repair.js';
import type { PublicKeyPackage } from '../crypto/types.js';
import { FloeError } from '../protocol/errors.js';
import type {
  RepairAbortRequest,
  RepairAbortResponse,
  RepairCombineRequest,
  RepairCombineResponse,
  RepairCommitRequest,
  RepairCommitResponse,
  RepairEnrollRequest,
  RepairEnrollResponse,
  RepairHelpRequest,
  RepairHelpResponse,
} from '../protocol/messages/repair.js';
import {
  publicKeyPackageHash,
  REPAIR_DELTA_INFO,
  REPAIR_SIGMA_INFO,
  repairBoxAad,
  repairCertificateDigest,
  repairStatementDigest,
} from '../protocol/transcript.js';
import type { Clock, SignerStore } from './ports.js';

export interface RepairOptions {
  store: SignerStore;
  clock: Clock;
  identity: NodeIdentity;
  /** The pinned roster (config `peers`): the new member and every helper must be on it. */
  roster: readonly string[];
  /** Default 600 000 ms. */
  ttlMs?: number;
  /** Default 64. */
  maxCeremonies?: number;
}

type Member = { identifier: number; identity: string };
type Subject = Pick<
  RepairHelpRequest,
  'ceremony_id' | 'key_id' | 'generation' | 'lost' | 'replaced' | 'helpers' | 'members'
>;

interface Helping {
  id: string;
  keyId: string;
  subject: Subject;
  fingerprint: string;
  identifier: number;
  pub: PublicKeyPackage;
  /** This helper's own part δ_{i→i}, until combine. */
  ownDelta?: Uint8Array;
  help: RepairHelpResponse;
  combine?: RepairCombineResponse;
  expiresAt: number;
}

const repairFailed = (e: unknown, fallback: string): FloeError => {
  if (e instanceof FloeError) return e;
  if (isCryptoError(e))
    return new FloeError('repair_failed', e.message, e.culprits.length ? { culprits: e.culprits } : {});
  return new FloeError('repair_failed', fallback);
};

export class RepairParticipant {
  private readonly live = new Map<string, Helping>();
  private readonly o: Required<RepairOptions>;
  private readonly roster: ReadonlySet<string>;

  constructor(o: RepairOptions) {
    this.o = { ttlMs: 600_000, maxCeremonies: 64, ...o };
    this.roster = new Set([...o.roster, o.identity.publicKeyHex]);
  }

  private sweep(): void {
    const now = this.o.clock.now();
    for (const [id, c] of this.live) if (c.expiresAt <= now) this.forget(id);
  }

  private forget(id: string): void {
    const c = this.live.get(id);
    if (c?.ownDelta) wipe(c.ownDelta);
    this.live.delete(id);
  }

  wipeAll(): void {
    for (const id of [...this.live.keys()]) this.forget(id);
  }

  /**
   * The subject as every member checks it: members 1..n, distinct, each on the roster and none
   * revoked for the key; the new identity at `lost` differs from the replaced one; t sorted
   * distinct helpers, members, without `lost`.
   */
  private checkSubject(s: Subject, n: number, threshold: number): { members: Member[]; newIdentity: string } {
    const members = [...s.members].sort((a, b) => a.identifier - b.identifier);
    if (members.length !== n || members.some((m, i) => m.identifier !== i + 1)) {
      throw new FloeError('invalid_request', 'members: identifiers must be 1..n, each once');
    }
    if (new Set(members.map((m) => m.identity)).size !== n) {
      throw new FloeError('invalid_request', 'members: identity keys must be distinct');
    }
    const newIdentity = members[s.lost - 1]?.identity;
    if (!newIdentity) throw new FloeError('invalid_request', 'lost: not an identifier of the key');
    if (newIdentity === s.replaced) {
      throw new FloeError(
        'invalid_request',
        'the new member must have another identity than the replaced one',
      );
    }
    const outside = members.filter((m) => !this.roster.has(m.identity));
    if (outside.length) {
      throw new FloeError(
        'not_on_roster',
        `member${outside.length > 1 ? 's' : ''} ${outside.map((m) => m.identifier).join(', ')} not on this signer's roster`,
        {
          hint: "add the new signer's identity key to every signer's config `peers` first (an operator action on each)",
        },
      );
    }
    const revoked = members.filter((m) => this.o.store.isRevoked(s.key_id, m.identity));
    if (revoked.length) {
      throw new FloeError(
        'member_revoked',
        `member ${revoked[0]!.identifier}'s identity was revoked for this key`,
      );
    }
    const helpers = s.helpers;
    if (
      helpers.length !== threshold ||
      helpers.some((h, i) => h < 1 || h > n || h === s.lost || (i > 0 && h <= helpers[i - 1]!))
    ) {
      throw new FloeError(
        'invalid_request',
        `helpers: ${threshold} sorted distinct members other than the lost one`,
      );
    }
    return { members, newIdentity };
  }

  private statement(s: Subject, members: Member[], pub: PublicKeyPackage): Uint8Array {
    return repairStatementDigest({
      ceremonyId: s.ceremony_id,
      keyId: s.key_id,
      generation: s.generation,
      lost: s.lost,
      replaced: s.replaced,
      members,
      publicPackageHash: publicKeyPackageHash(pub),
    });
  }

  /** Helper, step 1: split λ·share into t parts; seal each other helper's; publish the points. */
  help(req: RepairHelpRequest): RepairHelpResponse {
    this.sweep();
    const fingerprint = JSON.stringify(req);
    const existing = this.live.get(req.ceremony_id);
    if (existing) {
      if (existing.fingerprint !== fingerprint)
        throw new FloeError('ceremony_conflict', 'repair help repeated with other parameters');
      return existing.help;
    }
    const key = this.o.store.getKey(req.key_id);
    if (!key) throw new FloeError('unknown_key', `no share of key ${req.key_id} on this signer`);
    try {
      if (key.status !== 'active')
        throw new FloeError('key_not_active', `key ${req.key_id} is not active here`);
      if ((key.generation ?? 0) !== req.generation) {
        throw new FloeError(
          'generation_mismatch',
          `this signer holds generation ${key.generation ?? 0}, not ${req.generation}`,
        );
      }
      const pub = key.keyPackage.public;
      const { members } = this.checkSubject(req, pub.n, pub.threshold);
      if (!req.helpers.includes(key.identifier))
        throw new FloeError('not_a_member', 'this signer is not one of the helpers');
      if (members[key.identifier - 1]!.identity !== this.o.identity.publicKeyHex) {
        throw new FloeError('not_a_member', 'this signer is not the member at its identifier');
      }
      if (this.live.size >= this.o.maxCeremonies) {
        throw new FloeError('unavailable', 'too many ceremonies in progress on this signer');
      }
      const parts = repairStep1(req.helpers, key.keyPackage, req.lost);
      const boxes: RepairHelpResponse['boxes'] = [];
      for (const [receiver, delta] of parts.deltas) {
        if (receiver === key.identifier) continue;
        try {
          boxes.push({
            receiver,
            box: sealBoxOneTime(
              fromHex(members[receiver - 1]!.identity, 'identity', 32),
              delta,
              repairBoxAad(req.ceremony_id, req.key_id, key.identifier, String(receiver)),
              REPAIR_DELTA_INFO,
            ),
          });
        } finally {
          wipe(delta);
        }
      }
      const help: RepairHelpResponse = {
        ceremony_id: req.ceremony_id,
        identifier: key.identifier,
        commitments: [...parts.commitments].map(([receiver, c]) => ({ receiver, commitment: toHex(c) })),
        boxes,
      };
      this.live.set(req.ceremony_id, {
        id: req.ceremony_id,
        keyId: req.key_id,
        subject: req,
        fingerprint,
        identifier: key.identifier,
        pub,
        ownDelta: parts.deltas.get(key.identifier)!,
        help,
        expiresAt: this.o.clock.now() + this.o.ttlMs,
      });
      return help;
    } catch (e) {
      throw repairFailed(e, 'repair help failed');
    } finally {
      wipe(key.keyPackage.signingShare);
    }
  }

  /**
   * Helper, step 2: check every helper's points against the public package and every part
   * received against its point; seal the sum to the new member; sign the statement.
   */
  combine(req: RepairCombineRequest): RepairCombineResponse {
    this.sweep();
    const c = this.live.get(req.ceremony_id);
    if (!c)
      throw new FloeError('ceremony_unknown', `no repair ${req.ceremony_id} in progress on this signer`);
    if (c.combine) return c.combine;
    if (!c.ownDelta) throw new FloeError('ceremony_conflict', 'repair is past combine');
    const s = c.subject;
    const byHelper = pointsByHelper(req.commitments);
    const received: { helper: number; delta: Uint8Array; commitment: Uint8Array }[] = [];
    try {
      for (const h of s.helpers) {
        const points = byHelper.get(h);
        if (!points) throw new FloeError('invalid_request', `commitments: none from helper ${h}`);
        verifyRepairCommitments(s.helpers, h, s.lost, c.pub, points);
      }
      const own = byHelper.get(c.identifier)!;
      if (!c.help.commitments.every((x) => toHex(own.get(x.receiver)!) === x.commitment)) {
        throw new FloeError('ceremony_conflict', "commitments: this helper's own points were altered");
      }
      const bySender = new Map(req.boxes.map((b) => [b.sender, b.box]));
      const others = s.helpers.filter((h) => h !== c.identifier);
      if (
        bySender.size !== req.boxes.length ||
        others.some((h) => !bySender.has(h)) ||
        req.boxes.length !== others.length
      ) {
        throw new FloeError('invalid_request', 'boxes: expected one from each other helper');
      }
      received.push({ helper: c.identifier, delta: c.ownDelta, commitment: own.get(c.identifier)! });
      for (const h of others) {
        let delta: Uint8Array;
        try {
          delta = openBox(
            this.o.identity,
            bySender.get(h)!,
            repairBoxAad(s.ceremony_id, s.key_id, h, String(c.identifier)),
            REPAIR_DELTA_INFO,
          );
          parseScalar(delta, 'delta');
        } catch {
          throw new FloeError('repair_failed', `the part from helper ${h} does not open`, { culprits: [h] });
        }
        received.push({ helper: h, delta, commitment: byHelper.get(h)!.get(c.identifier)! });
      }
      const sigma = repairStep2(c.identifier, received);
      const members = [...s.members].sort((a, b) => a.identifier - b.identifier);
      let box: RepairCombineResponse['box'];
      try {
        box = sealBoxOneTime(
          fromHex(members[s.lost - 1]!.identity, 'identity', 32),
          sigma,
          repairBoxAad(s.ceremony_id, s.key_id, c.identifier, members[s.lost - 1]!.identity),
          REPAIR_SIGMA_INFO,
        );
      } finally {
        wipe(sigma);
      }
      c.combine = {
        ceremony_id: s.ceremony_id,
        identifier: c.identifier,
        box,
        statement: toHex(this.o.identity.sign(this.statement(s, members, c.pub))),
      };
      return c.combine;
    } catch (e) {
      this.forget(c.id);
      throw repairFailed(e, 'repair combine failed');
    } finally {
      for (const r of received) wipe(r.delta);
      delete c.ownDelta;
    }
  }

  /** Verify t helper statements over the subject (each helper a member on the roster). */
  private checkStatements(
    s: Subject,
    members: Member[],
    digest: Uint8Array,
    statements: readonly { identifier: number; statement: string }[],
  ): void {
    const by = new Map(statements.map((x) => [x.identifier, x.statement]));
    for (const h of s.helpers) {
      const sig = by.get(h);
      if (
        !sig ||
        !verifyDigest(
          fromHex(sig, 'statement', 64),
          digest,
          fromHex(members[h - 1]!.identity, 'identity', 32),
        )
      ) {
        throw new FloeError('certification_mismatch', `helper ${h} did not sign this repair`, {
          culprits: [h],
        });
      }
    }
  }

  /** New member: derive the lost member's share, check it, keep it pending, certify. */
  enroll(req: RepairEnrollRequest): RepairEnrollResponse {
    let pub: PublicKeyPackage;
    try {
      pub = decodePublicKeyPackage(req.public_key_package);
    } catch {
      throw new FloeError('invalid_package', 'public_key_package does not decode');
    }
    const { members, newIdentity } = this.checkSubject(req, pub.n, pub.threshold);
    if (newIdentity !== this.o.identity.publicKeyHex) {
      throw new FloeError('not_a_member', 'this signer is not the new member of this repair');
    }
    const existing = this.o.store.getKey(req.key_id);
    if (existing) {
      wipe(existing.keyPackage.signingShare);
      if (existing.status === 'active')
        throw new FloeError('key_exists', `key ${req.key_id} is active on this signer`);
    }
    const digest = this.statement(req, members, pub);
    this.checkStatements(req, members, digest, req.statements);
    const byHelper = pointsByHelper(req.commitments);
    const sigmas: { helper: number; sigma: Uint8Array }[] = [];
    try {
      const bySender = new Map(req.sigmas.map((x) => [x.helper, x.box]));
      for (const h of req.helpers) {
        const box = bySender.get(h);
        if (!box) throw new FloeError('invalid_request', `sigmas: none from helper ${h}`);
        try {
          const sigma = openBox(
            this.o.identity,
            box,
            repairBoxAad(req.ceremony_id, req.key_id, h, newIdentity),
            REPAIR_SIGMA_INFO,
          );
          parseScalar(sigma, 'sigma');
          sigmas.push({ helper: h, sigma });
        } catch {
          throw new FloeError('repair_failed', `the sum from helper ${h} does not open`, { culprits: [h] });
        }
      }
      const key = repairStep3(req.lost, sigmas, pub, byHelper);
      const vs = pub.verifyingShares.get(req.lost)!;
      // A repair replaces only a pending leftover of an earlier attempt, never an active share.
      if (existing) this.o.store.deleteKey(req.key_id);
      this.o.store.putKey({
        keyId: req.key_id,
        identifier: req.lost,
        status: 'pending',
        origin: req.origin,
        keyPackage: key,
        transcriptHash: digest,
        createdAt: this.o.clock.now(),
        ...(req.generation ? { generation: req.generation } : {}),
        ...(req.approval_policy ? { approvalPolicy: policyState(0, req.approval_policy) } : {}),
      });
      wipe(key.signingShare);
      this.o.store.appendAudit({
        at: this.o.clock.now(),
        kind: 'key_repair_pending',
        keyId: req.key_id,
        detail: req.ceremony_id,
      });
      return {
        ceremony_id: req.ceremony_id,
        key_id: req.key_id,
        identifier: req.lost,
        verifying_share: toHex(vs),
        certificate: toHex(this.o.identity.sign(repairCertificateDigest(digest, vs))),
      };
    } catch (e) {
      throw repairFailed(e, 'repair enroll failed');
    } finally {
      for (const x of sigmas) wipe(x.sigma);
    }
  }

  /**
   * Every member: the replacement is proven by t helper statements and the new member's
   * certificate; revoke the replaced identity for the key. The new member activates its share.
   * Safe to repeat.
   */
  commit(req: RepairCommitRequest): RepairCommitResponse {
    const done: RepairCommitResponse = {
      ceremony_id: req.ceremony_id,
      key_id: req.key_id,
      status: 'committed',
    };
    const key = this.o.store.getKey(req.key_id);
    if (!key) throw new FloeError('unknown_key', `no share of key ${req.key_id} on this signer`);
    wipe(key.keyPackage.signingShare);
    let pub: PublicKeyPackage;
    try {
      pub = decodePublicKeyPackage(req.public_key_package);
    } catch {
      throw new FloeError('invalid_package', 'public_key_package does not decode');
    }
    const own = key.keyPackage.public;
    if (
      (key.generation ?? 0) !== req.generation ||
      !bytesEqual(publicKeyPackageHash(pub), publicKeyPackageHash(own))
    ) {
      throw new FloeError(
        'generation_mismatch',
        'the repair names another generation or public package than this share',
      );
    }
    // A repeat passes too: the replaced identity is not among the members it names.
    const { members, newIdentity } = this.checkSubject(req, pub.n, pub.threshold);
    const digest = this.statement(req, members, pub);
    this.checkStatements(req, members, digest, req.statements);
    const vs = pub.verifyingShares.get(req.lost)!;
    if (
      !verifyDigest(
        fromHex(req.certificate, 'certificate', 64),
        repairCertificateDigest(digest, vs),
        fromHex(newIdentity, 'identity', 32),
      )
    ) {
      throw new FloeError('certification_mismatch', 'the new member did not certify this repair', {
        culprits: [req.lost],
      });
    }
    if (key.identifier === req.lost) {
      // The new member: activate the share this very repair gave it.
      if (
        newIdentity !== this.o.identity.publicKeyHex ||
        !key.transcriptHash ||
        !bytesEqual(key.transcriptHash, digest)
      ) {
        throw new FloeError('ceremony_unknown', 'this signer holds no share from this repair');
      }
      if (key.status !== 'active') {
        this.o.store.setKeyStatus(req.key_id, 'active', {
          at: this.o.clock.now(),
          kind: 'key_repaired',
          keyId: req.key_id,
          detail: req.ceremony_id,
        });
      }
    }
    this.o.store.revokeIdentity(req.key_id, req.replaced, req.lost, req.ceremony_id, this.o.clock.now());
    this.forget(req.ceremony_id);
    return done;
  }

  /** Drop a helper's parts (and, on the new member, a share still pending from this repair). */
  abort(req: RepairAbortRequest): RepairAbortResponse {
    const had = this.live.has(req.ceremony_id);
    this.forget(req.ceremony_id);
    let dropped = false;
    const k = this.o.store.getKey(req.key_id);
    if (k) {
      wipe(k.keyPackage.signingShare);
      // Only a share this repair enrolled (however many entries the audit gained since).
      if (
        k.status === 'pending' &&
        this.o.store.hasAudit('key_repair_pending', req.key_id, req.ceremony_id)
      ) {
        this.o.store.deleteKey(req.key_id);
        dropped = true;
      }
    }
    return { ceremony_id: req.ceremony_id, aborted: had || dropped };
  }
}

/** commitments as helper → receiver → point. */
function pointsByHelper(list: RepairCombineRequest['commitments']): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const x of list) {
    let m = out.get(x.helper);
    if (!m) {
      m = new Map();
      out.set(x.helper, m);
    }
    if (m.has(x.receiver)) throw new FloeError('invalid_request', 'commitments: a helper and receiver twice');
    m.set(x.receiver, fromHex(x.commitment, 'commitment', 33));
  }
  return out;
}
