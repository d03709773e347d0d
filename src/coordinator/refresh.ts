/**
 * Share refresh driven by the coordinator (issue "Key lifecycle"; the signer side is
 * src/signer/refresh.ts). Same group key, same addresses, same npub; every member gets a new
 * share and the old ones stop signing.
 *
 * Rounds 1–3 run on every member, like a DKG without proofs of knowledge (the polynomials have
 * a zero constant term). The coordinator computes the new public package itself from the
 * round-1 broadcasts (src/crypto/refresh.ts refreshPublicKeyPackage) and requires every member
 * to report exactly that package with a valid certificate. Then the decision, in one database
 * transaction: the refresh becomes `committing` with every certificate, and the key takes the
 * new generation and public package. From then on it only rolls forward: `refresh.commit` goes
 * to every member, and to those that did not answer again from the jobs (after a coordinator
 * crash too) until all have. A member not yet committed is left out of signing (its generation
 * in the key's member list is behind), and a signer asked for another generation refuses, so no
 * signature ever mixes generations. Before the decision any failure fails the refresh, tells
 * the members to drop their pending shares, and leaves the old ones in force.
 */
import type { SealedBox } from '../crypto/box.js';
import { decodePublicKeyPackage, encodePublicKeyPackage } from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { verifyDigest } from '../crypto/identity.js';
import {
  type RefreshRound1Package,
  refreshPublicKeyPackage,
  verifyRefreshRound1Package,
} from '../crypto/refresh.js';
import { groupPublicKey } from '../crypto/signing.js';
import { newId } from '../domain/ids.js';
import type { KeyRecord, KeyRefreshRecord, SignerRecord } from '../domain/records.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import { publicKeyPackageHash, refreshCertificateDigest } from '../protocol/transcript.js';
import type { RefreshStore } from './refresh-store.js';
import { SingleFlight, sendToEach } from './roll-forward.js';
import type { SignerClient } from './signer-client.js';

export interface RefreshOptions {
  store: RefreshStore;
  clientFor: (signer: SignerRecord) => SignerClient;
  /** The signer records of a key's members (by signer id). */
  signersOf: (key: KeyRecord) => Promise<SignerRecord[]>;
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
  /** An undecided refresh not done by then fails (jobs). Default 10 minutes. */
  ttlMs?: number;
}

const UNDECIDED = ['pending', 'round1', 'round2', 'round3'] as const;

export class RefreshDriver {
  private readonly o: Required<RefreshOptions>;
  /** Commits this process is pushing (so the jobs do not push the same one twice at once). */
  private readonly committing = new SingleFlight<KeyRefreshRecord>();

  constructor(o: RefreshOptions) {
    this.o = { now: Date.now, roundTimeoutMs: 30_000, ttlMs: 10 * 60_000, ...o };
  }

  get store(): RefreshStore {
    return this.o.store;
  }

  /** Create the refresh row (one open refresh per key: refresh_pending otherwise). */
  async create(key: KeyRecord): Promise<KeyRefreshRecord> {
    if (key.status !== 'active') {
      throw new FloeError(
        'key_not_active',
        `key ${key.id} is ${key.status}; only an active key is refreshed`,
      );
    }
    if (!key.publicKeyPackage)
      throw new FloeError('key_not_active', `key ${key.id} has no public package yet`);
    const now = this.o.now();
    const r = await this.o.store.insertRefresh(key.tenantId, {
      id: newId('share_refresh'),
      keyId: key.id,
      generation: (key.generation ?? 0) + 1,
      participants: key.members.map((m) => ({
        identifier: m.identifier,
        signer_id: m.signer_id,
        identity: m.identity,
      })),
      createdAt: now,
      expiresAt: now + this.o.ttlMs,
    });
    await this.o.audit(key.tenantId, 'key.refresh_started', 'key', key.id, {
      refresh: r.id,
      generation: r.generation,
    });
    return r;
  }

  /** Run rounds 1–3, decide, commit. Resolves with the refresh as it ended (or is committing). */
  async run(key: KeyRecord, refresh: KeyRefreshRecord): Promise<KeyRefreshRecord> {
    const signers = await this.o.signersOf(key);
    const clients = signers.map((s) => this.o.clientFor(s));
    const t = this.o.roundTimeoutMs;
    const rid = refresh.id;
    const generation = refresh.generation;
    const participants = refresh.participants.map((m) => ({
      identifier: m.identifier,
      identity: m.identity,
    }));
    const step = (from: (typeof UNDECIDED)[number], to: (typeof UNDECIDED)[number]) =>
      this.o.store.transitionRefresh(key.tenantId, rid, [from], to);
    const all = async <T>(f: (c: SignerClient, i: number) => Promise<T>): Promise<T[]> => {
      const rs = await Promise.allSettled(clients.map((c, i) => f(c, i)));
      const bad = rs.flatMap((r, i) => (r.status === 'rejected' ? [{ id: i + 1, e: r.reason }] : []));
      if (bad.length) {
        const first = bad[0]!.e;
        // A refusal or a silence proves nothing about who is at fault (DESIGN §11): no culprits.
        throw new FloeError(
          'refresh_failed',
          `member ${bad[0]!.id}: ${isFloeError(first) ? `${first.code}: ${first.message}` : 'did not answer'}`,
        );
      }
      return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
    };
    try {
      // A refresh of this key that failed earlier may have left pending shares: drop them first
      // (a signer refuses a new refresh while another one's share is pending).
      const earlier = (await this.o.store.listRefreshes(key.tenantId, key.id, 5)).filter(
        (r) => r.id !== rid && r.status === 'failed',
      );
      for (const r of earlier.slice(0, 1)) await this.abortOn(clients, key.id, r.id);

      if (!(await step('pending', 'round1')))
        throw new FloeError('refresh_failed', 'the refresh is no longer pending');
      const r1 = await all((c, i) =>
        c.call(
          'refreshRound1',
          { ceremony_id: rid, key_id: key.id, generation, identifier: i + 1, participants },
          t,
        ),
      );
      const packages: RefreshRound1Package[] = [];
      for (const [i, r] of r1.entries()) {
        const p = {
          identifier: r.round1.identifier,
          commitment: r.round1.commitment.map((c) => fromHex(c, 'commitment', 33)),
        };
        if (r.identifier !== i + 1 || p.identifier !== i + 1) {
          throw new FloeError('refresh_failed', `member ${i + 1} answered for another identifier`, {
            culprits: [i + 1],
          });
        }
        try {
          verifyRefreshRound1Package(p, key.threshold);
        } catch (e) {
          // Its own signed answer shows it: a package nobody can use.
          throw new FloeError('refresh_failed', isCryptoError(e) ? e.message : 'bad round-1 package', {
            culprits: [i + 1],
          });
        }
        packages.push(p);
      }
      // What every member must derive: computed here from public data.
      const current = decodePublicKeyPackage(key.publicKeyPackage as never);
      const expected = refreshPublicKeyPackage(current, packages);
      if (toHex(groupPublicKey(expected)) !== toHex(groupPublicKey(current))) {
        throw new FloeError('refresh_failed', 'the refreshed package has another group key');
      }
      const expectedJson = JSON.stringify(encodePublicKeyPackage(expected));
      const digest = refreshCertificateDigest(
        rid,
        key.id,
        generation,
        participants,
        publicKeyPackageHash(expected),
      );

      await step('round1', 'round2');
      const round1 = r1.map((r) => r.round1);
      const r2 = await all((c) => c.call('refreshRound2', { ceremony_id: rid, round1 }, t));
      const inbox = new Map<number, { sender: number; box: SealedBox }[]>(
        participants.map((m) => [m.identifier, []]),
      );
      for (const [i, r] of r2.entries()) {
        const receivers = r.boxes.map((b) => b.receiver).sort((a, b) => a - b);
        const want = participants.map((m) => m.identifier).filter((id) => id !== i + 1);
        if (r.identifier !== i + 1 || receivers.join() !== want.join()) {
          throw new FloeError(
            'refresh_failed',
            `member ${i + 1} did not send one sub-share to each other member`,
            {
              culprits: [i + 1],
            },
          );
        }
        for (const b of r.boxes) inbox.get(b.receiver)!.push({ sender: i + 1, box: b.box });
      }

      await step('round2', 'round3');
      const r3 = await all((c, i) =>
        c.call('refreshRound3', { ceremony_id: rid, boxes: inbox.get(i + 1)! }, t),
      );
      const certificates: { identifier: number; certificate: string }[] = [];
      for (const [i, r] of r3.entries()) {
        const m = participants[i]!;
        const ok =
          r.identifier === m.identifier &&
          r.key_id === key.id &&
          r.generation === generation &&
          JSON.stringify(r.public_key_package) === expectedJson &&
          verifyDigest(
            fromHex(r.certificate, 'certificate', 64),
            digest,
            fromHex(m.identity, 'identity', 32),
          );
        if (!ok) {
          throw new FloeError(
            'refresh_failed',
            `member ${m.identifier} derived another package or certified wrongly`,
            {
              culprits: [m.identifier],
            },
          );
        }
        certificates.push({ identifier: m.identifier, certificate: r.certificate });
      }

      // The decision: from here the refresh only rolls forward.
      const decided = await this.o.store.decideRefresh(
        key.tenantId,
        rid,
        encodePublicKeyPackage(expected),
        certificates,
      );
      if (!decided)
        throw new FloeError('refresh_failed', 'the refresh expired before every member certified it');
      await this.o.audit(key.tenantId, 'key.refresh_decided', 'key', key.id, { refresh: rid, generation });
    } catch (e) {
      const err =
        isFloeError(e) && e.code === 'refresh_failed'
          ? e
          : new FloeError('refresh_failed', isFloeError(e) ? e.message : 'refresh failed');
      const culprits = (err.extra.culprits as number[] | undefined) ?? [];
      const failed = await this.o.store.transitionRefresh(key.tenantId, rid, UNDECIDED, 'failed', {
        code: err.code,
        message: err.message,
        culprits,
      });
      // Only an undecided refresh is aborted: one that reached `committing` meanwhile rolls forward.
      if (failed) {
        await this.o.audit(key.tenantId, 'key.refresh_failed', 'key', key.id, {
          refresh: rid,
          culprits,
          reason: err.message,
        });
        await this.abortOn(clients, key.id, rid);
        throw err;
      }
    }
    return this.commit(key.tenantId, rid);
  }

  /**
   * Push the commit of a decided refresh to every member that has not acknowledged it. Safe to
   * repeat (signers answer `committed` again); the refresh completes when every member has.
   */
  commit(tenantId: string, rid: string): Promise<KeyRefreshRecord> {
    return this.committing.run(rid, () => this.pushCommit(tenantId, rid));
  }

  private async pushCommit(tenantId: string, rid: string): Promise<KeyRefreshRecord> {
    let r = await this.o.store.getRefresh(tenantId, rid);
    if (!r) throw new FloeError('refresh_not_found', `no refresh ${rid}`);
    if (r.status !== 'committing') return r;
    const key = await this.o.getKey(tenantId, r.keyId);
    if (!key) return r;
    const signers = await this.o.signersOf(key);
    const certificates = r.certificates ?? [];
    const todo = r.participants.filter((m) => !r!.committed.includes(m.identifier));
    const body = { ceremony_id: rid, key_id: key.id, generation: r.generation, certificates };
    const acked = await sendToEach(
      todo,
      (id) => signers.find((x) => x.id === id),
      (s) => this.o.clientFor(s).call('refreshCommit', body, this.o.roundTimeoutMs),
    );
    for (const id of acked) r = (await this.o.store.acknowledgeCommit(tenantId, rid, id)) ?? r;
    if (r.status === 'completed') {
      await this.o.audit(tenantId, 'key.refreshed', 'key', key.id, {
        refresh: rid,
        generation: r.generation,
      });
    }
    return r;
  }

  /** Jobs: fail undecided refreshes past their deadline (aborting them), roll decided ones forward. */
  async runDue(): Promise<void> {
    for (const x of await this.o.store.expireRefreshes()) {
      const key = await this.o.getKey(x.tenantId, x.keyId);
      if (key) {
        await this.o.audit(x.tenantId, 'key.refresh_failed', 'key', key.id, {
          refresh: x.id,
          reason: 'expired',
        });
        await this.abortOn(
          (await this.o.signersOf(key)).map((s) => this.o.clientFor(s)),
          key.id,
          x.id,
        );
      }
    }
    for (const x of await this.o.store.openRefreshes()) {
      if (x.status === 'committing') await this.commit(x.tenantId, x.id).catch(() => {});
    }
  }

  private async abortOn(clients: SignerClient[], keyId: string, rid: string): Promise<void> {
    await Promise.allSettled(
      clients.map((c) => c.call('refreshAbort', { ceremony_id: rid, key_id: keyId }, 5000)),
    );
  }
}
