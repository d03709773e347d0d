/**
 * Share repair driven by the coordinator (issue "Key lifecycle"; messages and the maths in
 * src/protocol/messages/repair.ts, the signer side in src/signer/repair.ts): a member whose
 * share is lost is replaced by a new signer (registered here and on every member's roster),
 * which receives the lost member's share from t helpers without anyone learning the secret.
 *
 * help → combine → enroll run only on the helpers and the new signer. The decision is the new
 * member's certificate (it holds a share matching the lost member's verifying share, and t
 * helper statements): the repair becomes `committing` with the signed commit kept here, and
 * from then on it rolls forward — `repair.commit` goes to every member (the jobs retry the
 * ones that did not answer): each revokes the replaced identity for the key, the new member
 * activates its share, and the key's member entry moves to the new signer. Before the decision
 * a failure changes nothing anywhere: the helpers drop their parts, the new signer its pending
 * share. A repaired share is the lost share itself: refresh the key afterwards so that a copy of
 * the lost machine's disk is worth nothing (docs/key-lifecycle.md).
 */
import type { SealedBox } from '../crypto/box.js';
import { decodePublicKeyPackage } from '../crypto/encoding.js';
import { fromHex } from '../crypto/hex.js';
import { verifyDigest } from '../crypto/identity.js';
import { verifyRepairCommitments } from '../crypto/repair.js';
import { newId } from '../domain/ids.js';
import {
  currentMembers,
  type KeyRecord,
  type KeyRepairRecord,
  type SignerRecord,
} from '../domain/records.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { RepairCommitRequest } from '../protocol/messages/repair.js';
import {
  publicKeyPackageHash,
  repairCertificateDigest,
  repairStatementDigest,
} from '../protocol/transcript.js';
import type { RepairStore } from './repair-store.js';
import { SingleFlight, sendToEach } from './roll-forward.js';
import type { SignerClient } from './signer-client.js';

export interface RepairOptions {
  store: RepairStore;
  clientFor: (signer: SignerRecord) => SignerClient;
  getSigner: (id: string) => Promise<SignerRecord | undefined>;
  getKey: (tenantId: string, keyId: string) => Promise<KeyRecord | undefined>;
  audit: (
    tenantId: string,
    kind: string,
    subjectType: string,
    subjectId: string,
    data: unknown,
  ) => Promise<void>;
  now?: () => number;
  roundTimeoutMs?: number;
  /** An undecided repair not done by then fails (jobs). Default 10 minutes. */
  ttlMs?: number;
}

const UNDECIDED = ['pending', 'helping', 'enrolling'] as const;

export class RepairDriver {
  private readonly o: Required<RepairOptions>;
  private readonly committing = new SingleFlight<KeyRepairRecord>();

  constructor(o: RepairOptions) {
    this.o = { now: Date.now, roundTimeoutMs: 30_000, ttlMs: 10 * 60_000, ...o };
  }

  get store(): RepairStore {
    return this.o.store;
  }

  /** Check the request and create the repair row (one open repair per key). */
  async create(
    key: KeyRecord,
    lost: number,
    newSigner: SignerRecord,
    helpers?: number[],
  ): Promise<KeyRepairRecord> {
    if (key.status !== 'active') {
      throw new FloeError('key_not_active', `key ${key.id} is ${key.status}; only an active key is repaired`);
    }
    const old = key.members.find((m) => m.identifier === lost);
    if (!old) throw new FloeError('invalid_request', `identifier ${lost} is not a member of key ${key.id}`);
    if (key.members.some((m) => m.identity === newSigner.identityPubkey || m.signer_id === newSigner.id)) {
      throw new FloeError('invalid_request', `signer ${newSigner.id} is a member of key ${key.id} already`);
    }
    if (newSigner.status !== 'active')
      throw new FloeError('invalid_request', `signer ${newSigner.id} is ${newSigner.status}`);
    const able = currentMembers(key)
      .map((m) => m.identifier)
      .filter((id) => id !== lost);
    let chosen: number[];
    if (helpers) {
      chosen = [...new Set(helpers)].sort((a, b) => a - b);
      if (chosen.length !== key.threshold || chosen.some((h) => !able.includes(h))) {
        throw new FloeError(
          'invalid_request',
          `helpers: ${key.threshold} distinct members on the current generation, other than ${lost}`,
        );
      }
    } else {
      if (able.length < key.threshold) {
        throw new FloeError(
          'no_quorum',
          `fewer than ${key.threshold} members can help repair member ${lost}`,
        );
      }
      chosen = able.slice(0, key.threshold);
    }
    const now = this.o.now();
    const r = await this.o.store.insertRepair(key.tenantId, {
      id: newId('repair'),
      keyId: key.id,
      generation: key.generation ?? 0,
      lost,
      replaced: old.identity,
      newSignerId: newSigner.id,
      newIdentity: newSigner.identityPubkey,
      helpers: chosen,
      members: key.members.map((m) =>
        m.identifier === lost
          ? { identifier: lost, signer_id: newSigner.id, identity: newSigner.identityPubkey }
          : { identifier: m.identifier, signer_id: m.signer_id, identity: m.identity },
      ),
      createdAt: now,
      expiresAt: now + this.o.ttlMs,
    });
    await this.o.audit(key.tenantId, 'key.repair_started', 'key', key.id, {
      repair: r.id,
      lost,
      replaced: old.identity,
      new_signer: newSigner.id,
      helpers: chosen,
    });
    return r;
  }

  private async signerFor(r: KeyRepairRecord, identifier: number): Promise<SignerRecord> {
    const m = r.members.find((x) => x.identifier === identifier);
    const s = m ? await this.o.getSigner(m.signer_id) : undefined;
    if (!s) throw new FloeError('signer_not_found', `the signer of member ${identifier} is not registered`);
    return s;
  }

  async run(key: KeyRecord, r: KeyRepairRecord): Promise<KeyRepairRecord> {
    const t = this.o.roundTimeoutMs;
    const rid = r.id;
    const subject = {
      ceremony_id: rid,
      key_id: key.id,
      generation: r.generation,
      lost: r.lost,
      replaced: r.replaced,
      helpers: r.helpers,
      members: r.members.map((m) => ({ identifier: m.identifier, identity: m.identity })),
    };
    const helperClients = await Promise.all(
      r.helpers.map(async (h) => this.o.clientFor(await this.signerFor(r, h))),
    );
    const fresh = this.o.clientFor(await this.signerFor(r, r.lost));
    const all = async <T>(f: (c: SignerClient, i: number) => Promise<T>): Promise<T[]> => {
      const rs = await Promise.allSettled(helperClients.map((c, i) => f(c, i)));
      const bad = rs.findIndex((x) => x.status === 'rejected');
      if (bad >= 0) {
        const e = (rs[bad] as PromiseRejectedResult).reason;
        throw new FloeError(
          'repair_failed',
          `helper ${r.helpers[bad]}: ${isFloeError(e) ? `${e.code}: ${e.message}` : 'did not answer'}`,
        );
      }
      return rs.map((x) => (x as PromiseFulfilledResult<T>).value);
    };
    try {
      const pub = decodePublicKeyPackage(key.publicKeyPackage as never);
      if (!(await this.o.store.transitionRepair(key.tenantId, rid, ['pending'], 'helping'))) {
        throw new FloeError('repair_failed', 'the repair is no longer pending');
      }
      const help = await all((c) => c.call('repairHelp', subject, t));
      const commitments = help.flatMap((h, i) => {
        if (h.identifier !== r.helpers[i]) {
          throw new FloeError('repair_failed', `helper ${r.helpers[i]} answered for another identifier`, {
            culprits: [r.helpers[i]!],
          });
        }
        return h.commitments.map((c) => ({
          helper: h.identifier,
          receiver: c.receiver,
          commitment: c.commitment,
        }));
      });
      // Every helper's points must add up to its λ·VS (public): a helper splitting a wrong value is named here.
      for (const h of help) {
        try {
          verifyRepairCommitments(
            r.helpers,
            h.identifier,
            r.lost,
            pub,
            new Map(h.commitments.map((c) => [c.receiver, fromHex(c.commitment, 'commitment', 33)])),
          );
        } catch {
          throw new FloeError('repair_failed', `helper ${h.identifier} published points that do not add up`, {
            culprits: [h.identifier],
          });
        }
      }
      const combined = await all((c, i) => {
        const me = r.helpers[i]!;
        const boxes: { sender: number; box: SealedBox }[] = help.flatMap((h) =>
          h.boxes.filter((b) => b.receiver === me).map((b) => ({ sender: h.identifier, box: b.box })),
        );
        return c.call('repairCombine', { ceremony_id: rid, boxes, commitments }, t);
      });
      const statement = repairStatementDigest({
        ceremonyId: rid,
        keyId: key.id,
        generation: r.generation,
        lost: r.lost,
        replaced: r.replaced,
        members: subject.members,
        publicPackageHash: publicKeyPackageHash(pub),
      });
      for (const [i, c] of combined.entries()) {
        const h = r.helpers[i]!;
        const identity = subject.members[h - 1]!.identity;
        if (
          c.identifier !== h ||
          !verifyDigest(fromHex(c.statement, 'statement', 64), statement, fromHex(identity, 'id', 32))
        ) {
          throw new FloeError('repair_failed', `helper ${h} signed another repair`, { culprits: [h] });
        }
      }
      const statements = combined.map((c) => ({ identifier: c.identifier, statement: c.statement }));
      await this.o.store.transitionRepair(key.tenantId, rid, ['helping'], 'enrolling');
      const enrolled = await fresh.call(
        'repairEnroll',
        {
          ...subject,
          public_key_package: key.publicKeyPackage as never,
          origin: key.origin === 'dealer' ? 'dealer' : 'dkg',
          commitments,
          sigmas: combined.map((c) => ({ helper: c.identifier, box: c.box })),
          statements,
          ...(key.approvalPolicy ? { approval_policy: key.approvalPolicy.policy as never } : {}),
        },
        t,
      );
      const vs = pub.verifyingShares.get(r.lost)!;
      if (
        enrolled.identifier !== r.lost ||
        !verifyDigest(
          fromHex(enrolled.certificate, 'certificate', 64),
          repairCertificateDigest(statement, vs),
          fromHex(r.newIdentity, 'identity', 32),
        )
      ) {
        throw new FloeError('repair_failed', 'the new signer did not certify the repaired share');
      }
      const commitRequest: RepairCommitRequest = {
        ...subject,
        public_key_package: key.publicKeyPackage as never,
        statements,
        certificate: enrolled.certificate,
      };
      const decided = await this.o.store.transitionRepair(key.tenantId, rid, ['enrolling'], 'committing', {
        commitRequest,
      });
      if (!decided)
        throw new FloeError('repair_failed', 'the repair expired before the new member certified');
      await this.o.audit(key.tenantId, 'key.repair_decided', 'key', key.id, { repair: rid, lost: r.lost });
    } catch (e) {
      const err =
        isFloeError(e) && e.code === 'repair_failed'
          ? e
          : new FloeError('repair_failed', isFloeError(e) ? `${e.code}: ${e.message}` : 'repair failed');
      const culprits = (err.extra.culprits as number[] | undefined) ?? [];
      const failed = await this.o.store.transitionRepair(key.tenantId, rid, UNDECIDED, 'failed', {
        failure: { code: err.code, message: err.message, culprits },
      });
      if (failed) {
        await this.o.audit(key.tenantId, 'key.repair_failed', 'key', key.id, {
          repair: rid,
          culprits,
          reason: err.message,
        });
        await Promise.allSettled(
          [...helperClients, fresh].map((c) =>
            c.call('repairAbort', { ceremony_id: rid, key_id: key.id }, 5000),
          ),
        );
        throw err;
      }
    }
    return this.commit(key.tenantId, rid);
  }

  /** Push the commit of a decided repair to every member that has not acknowledged it. Safe to repeat. */
  commit(tenantId: string, rid: string): Promise<KeyRepairRecord> {
    return this.committing.run(rid, () => this.pushCommit(tenantId, rid));
  }

  private async pushCommit(tenantId: string, rid: string): Promise<KeyRepairRecord> {
    let r = await this.o.store.getRepair(tenantId, rid);
    if (!r) throw new FloeError('repair_not_found', `no repair ${rid}`);
    if (r.status !== 'committing') return r;
    const body = r.commitRequest as RepairCommitRequest;
    const todo = r.members.filter((m) => !r!.committed.includes(m.identifier));
    const acked = await sendToEach(todo, this.o.getSigner, (s) =>
      this.o.clientFor(s).call('repairCommit', body, this.o.roundTimeoutMs),
    );
    for (const id of acked) r = (await this.o.store.acknowledgeRepair(tenantId, rid, id)) ?? r;
    if (r.status === 'completed') {
      await this.o.audit(tenantId, 'key.repaired', 'key', r.keyId, {
        repair: rid,
        lost: r.lost,
        replaced: r.replaced,
        new_signer: r.newSignerId,
      });
    }
    return r;
  }

  /** Jobs: fail undecided repairs past their deadline, roll decided ones forward. */
  async runDue(): Promise<void> {
    for (const x of await this.o.store.expireRepairs()) {
      await this.o.audit(x.tenantId, 'key.repair_failed', 'key', x.keyId, {
        repair: x.id,
        reason: 'expired',
      });
    }
    for (const x of await this.o.store.openRepairs()) {
      if (x.status === 'committing') await this.commit(x.tenantId, x.id).catch(() => {});
    }
  }
}
