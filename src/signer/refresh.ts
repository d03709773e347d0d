/**
 * This signer's part in a share refresh (issue "Key lifecycle"): a new share of the same secret
 * for every member, the old one wiped only after every member certified the new public package.
 *
 * Rounds 1 and 2 keep their secret (the zero-constant polynomial) in memory only, as a DKG does:
 * a restart before round 3 loses it and the ceremony fails, leaving the old shares in force.
 * Round 3 derives the new share and keeps it durably, sealed, beside the old one
 * (`key_refreshes`), where it signs nothing. `commit` shows every member's certificate of the
 * same new package; only then does this node swap the shares (one transaction) and from then on
 * signs only with the new generation (the engine refuses a request for another one). Without
 * every certificate nobody commits: an interrupted refresh leaves every member on the old
 * generation, and no signature can mix generations.
 *
 * Sub-shares travel sealed to their receiver (fresh sender key per box), like DKG round 2.
 */
import { openBox, sealBoxOneTime } from '../crypto/box.js';
import { encodePublicKeyPackage } from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { parseScalar } from '../crypto/group.js';
import { bytesEqual, fromHex, toHex, wipe } from '../crypto/hex.js';
import { type NodeIdentity, verifyDigest } from '../crypto/identity.js';
import {
  type RefreshRound1Package,
  type RefreshSecretState,
  refreshRound1,
  refreshRound2,
  refreshRound3,
  refreshWipe,
  verifyRefreshRound1Package,
} from '../crypto/refresh.js';
import type { DkgRound2Package, KeyPackage } from '../crypto/types.js';
import { FloeError } from '../protocol/errors.js';
import type {
  RefreshAbortRequest,
  RefreshAbortResponse,
  RefreshCommitRequest,
  RefreshCommitResponse,
  RefreshRound1Request,
  RefreshRound1Response,
  RefreshRound2Request,
  RefreshRound2Response,
  RefreshRound3Request,
  RefreshRound3Response,
} from '../protocol/messages/refresh.js';
import {
  publicKeyPackageHash,
  REFRESH_BOX_INFO,
  refreshBoxAad,
  refreshCertificateDigest,
} from '../protocol/transcript.js';
import type { Clock, Rng, SignerStore } from './ports.js';

export interface RefreshOptions {
  store: SignerStore;
  clock: Clock;
  identity: NodeIdentity;
  /** The pinned roster (config `peers`): every member of a refresh must be on it. */
  roster: readonly string[];
  rng?: Rng;
  /** Default 600 000 ms. */
  ttlMs?: number;
  /** Default 64. */
  maxCeremonies?: number;
}

type Member = { identifier: number; identity: string };

interface Refresh {
  id: string;
  keyId: string;
  generation: number;
  identifier: number;
  threshold: number;
  n: number;
  participants: Member[];
  fingerprint: string;
  expiresAt: number;
  secret?: RefreshSecretState;
  round1: RefreshRound1Response;
  own: RefreshRound1Package;
  others?: RefreshRound1Package[];
  round2?: RefreshRound2Response;
  round3?: RefreshRound3Response;
}

const refreshFailed = (e: unknown, fallback: string): FloeError => {
  if (e instanceof FloeError) return e;
  if (isCryptoError(e))
    return new FloeError('refresh_failed', e.message, e.culprits.length ? { culprits: e.culprits } : {});
  return new FloeError('refresh_failed', fallback);
};

const decodeRound1 = (r: { identifier: number; commitment: string[] }): RefreshRound1Package => ({
  identifier: r.identifier,
  commitment: r.commitment.map((c) => fromHex(c, 'commitment', 33)),
});
const encodeRound1 = (p: RefreshRound1Package) => ({
  identifier: p.identifier,
  commitment: p.commitment.map(toHex),
});

export class RefreshParticipant {
  private readonly live = new Map<string, Refresh>();
  private readonly o: Required<Omit<RefreshOptions, 'rng'>> & { rng?: Rng };
  private readonly roster: ReadonlySet<string>;

  constructor(o: RefreshOptions) {
    this.o = { ttlMs: 600_000, maxCeremonies: 64, ...o };
    this.roster = new Set([...o.roster, o.identity.publicKeyHex]);
  }

  get liveCeremonies(): number {
    return this.live.size;
  }

  sweep(): number {
    const now = this.o.clock.now();
    let n = 0;
    for (const [id, c] of this.live) {
      if (c.expiresAt <= now) {
        this.forget(id);
        n++;
      }
    }
    return n;
  }

  wipeAll(): void {
    for (const id of [...this.live.keys()]) this.forget(id);
  }

  private forget(id: string): void {
    const c = this.live.get(id);
    if (!c) return;
    if (c.secret) refreshWipe(c.secret);
    this.live.delete(id);
  }

  private get(id: string): Refresh {
    this.sweep();
    const c = this.live.get(id);
    if (!c) throw new FloeError('ceremony_unknown', `no refresh ${id} in progress on this signer`);
    return c;
  }

  /** Members 1..n, distinct, this node at its own identifier, each on the roster. */
  private checkMembers(keyId: string, members: readonly Member[], n: number, self: number): Member[] {
    if (members.length !== n) throw new FloeError('invalid_request', 'participants: expected n entries');
    const sorted = [...members].sort((a, b) => a.identifier - b.identifier);
    if (sorted.some((p, i) => p.identifier !== i + 1)) {
      throw new FloeError('invalid_request', 'participants: identifiers must be 1..n, each once');
    }
    if (new Set(sorted.map((p) => p.identity)).size !== n) {
      throw new FloeError('invalid_request', 'participants: identity keys must be distinct');
    }
    if (sorted[self - 1]?.identity !== this.o.identity.publicKeyHex) {
      throw new FloeError('not_a_member', 'this signer is not the member at that identifier');
    }
    const outside = sorted.filter((p) => !this.roster.has(p.identity));
    if (outside.length) {
      throw new FloeError(
        'not_on_roster',
        `member${outside.length > 1 ? 's' : ''} ${outside.map((p) => p.identifier).join(', ')} not on this signer's roster`,
        {
          hint: "add the signer's identity key to this signer's config `peers` (an operator action on each signer)",
        },
      );
    }
    const revoked = sorted.find((p) => this.o.store.isRevoked(keyId, p.identity));
    if (revoked) {
      throw new FloeError(
        'member_revoked',
        `member ${revoked.identifier}'s identity was revoked for this key by a repair`,
      );
    }
    return sorted.map((p) => ({ identifier: p.identifier, identity: p.identity }));
  }

  private activeKey(keyId: string) {
    const key = this.o.store.getKey(keyId);
    if (!key) throw new FloeError('unknown_key', `no share of key ${keyId} on this signer`);
    if (key.status !== 'active') {
      wipe(key.keyPackage.signingShare);
      throw new FloeError('key_not_active', `key ${keyId} is not active on this signer`);
    }
    return key;
  }

  /** Round 1: commit to a fresh zero-constant polynomial. The same request gets the same answer. */
  round1(req: RefreshRound1Request): RefreshRound1Response {
    this.sweep();
    const fingerprint = JSON.stringify([req.key_id, req.generation, req.identifier, req.participants]);
    const existing = this.live.get(req.ceremony_id);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        throw new FloeError('ceremony_conflict', 'refresh round1 repeated with different parameters');
      }
      return existing.round1;
    }
    const key = this.activeKey(req.key_id);
    const pub = key.keyPackage.public;
    wipe(key.keyPackage.signingShare);
    const current = key.generation ?? 0;
    if (req.generation !== current + 1) {
      throw new FloeError(
        'generation_mismatch',
        `this signer holds generation ${current} of key ${req.key_id}; a refresh makes ${current + 1}, not ${req.generation}`,
      );
    }
    if (req.identifier !== key.identifier) {
      throw new FloeError(
        'not_a_member',
        `this signer holds identifier ${key.identifier}, not ${req.identifier}`,
      );
    }
    const participants = this.checkMembers(req.key_id, req.participants, pub.n, req.identifier);
    // A pending share of another refresh may have been certified by every member and be committed
    // elsewhere already: it is never overwritten behind its back. The coordinator aborts a refresh
    // that failed before it starts the next one (refresh.abort drops the pending share).
    const pending = this.o.store.getPendingRefresh(req.key_id);
    if (pending) {
      wipe(pending.keyPackage.signingShare);
      if (pending.ceremonyId !== req.ceremony_id) {
        throw new FloeError(
          'refresh_pending',
          `refresh ${pending.ceremonyId} of key ${req.key_id} is still pending here`,
          {
            hint: 'commit or abort that refresh first',
          },
        );
      }
    }
    if (this.live.size >= this.o.maxCeremonies) {
      throw new FloeError('unavailable', 'too many ceremonies in progress on this signer');
    }
    const { package: own, secret } = refreshRound1(
      req.identifier,
      pub.threshold,
      pub.n,
      ...(this.o.rng ? [this.o.rng] : []),
    );
    const round1: RefreshRound1Response = {
      ceremony_id: req.ceremony_id,
      identifier: req.identifier,
      round1: encodeRound1(own),
    };
    this.live.set(req.ceremony_id, {
      id: req.ceremony_id,
      keyId: req.key_id,
      generation: req.generation,
      identifier: req.identifier,
      threshold: pub.threshold,
      n: pub.n,
      participants,
      fingerprint,
      expiresAt: this.o.clock.now() + this.o.ttlMs,
      secret,
      round1,
      own,
    });
    return round1;
  }

  /** Round 2: one sub-share sealed to each other member. Repeatable for the same round-1 set. */
  round2(req: RefreshRound2Request): RefreshRound2Response {
    const c = this.get(req.ceremony_id);
    const all = req.round1.map(decodeRound1).sort((a, b) => a.identifier - b.identifier);
    if (all.length !== c.n || all.some((p, i) => p.identifier !== i + 1)) {
      throw new FloeError('invalid_request', 'round1: expected one package from each member');
    }
    const own = all[c.identifier - 1]!;
    if (
      own.commitment.length !== c.own.commitment.length ||
      own.commitment.some((x, i) => !bytesEqual(x, c.own.commitment[i]!))
    ) {
      throw new FloeError('ceremony_conflict', "round1: this signer's own package was altered");
    }
    const others = all.filter((p) => p.identifier !== c.identifier);
    if (c.round2) {
      const same = c.others!.every(
        (p, i) =>
          p.commitment.length === others[i]!.commitment.length &&
          p.commitment.every((x, j) => bytesEqual(x, others[i]!.commitment[j]!)),
      );
      if (!same)
        throw new FloeError('ceremony_conflict', 'round1 packages differ from the first round-2 request');
      return c.round2;
    }
    if (!c.secret) throw new FloeError('ceremony_conflict', 'refresh is past round 2');
    let packages: DkgRound2Package[] = [];
    try {
      for (const p of others) verifyRefreshRound1Package(p, c.threshold);
      packages = refreshRound2(c.secret, others);
      const boxes = packages.map((p) => {
        const receiver = c.participants[p.receiver - 1]!;
        return {
          receiver: p.receiver,
          box: sealBoxOneTime(
            fromHex(receiver.identity, 'identity', 32),
            p.signingShare,
            refreshBoxAad(c.id, c.keyId, c.generation, c.identifier, p.receiver),
            REFRESH_BOX_INFO,
          ),
        };
      });
      c.others = others;
      c.round2 = { ceremony_id: c.id, identifier: c.identifier, boxes };
      return c.round2;
    } catch (e) {
      throw refreshFailed(e, 'refresh round 2 failed');
    } finally {
      for (const p of packages) wipe(p.signingShare);
    }
  }

  /**
   * Round 3: open and check every sub-share, derive the new share, keep it (sealed, unusable)
   * beside the old one and certify the new public package.
   */
  round3(req: RefreshRound3Request): RefreshRound3Response {
    const c = this.get(req.ceremony_id);
    if (c.round3) return c.round3;
    if (!c.others || !c.secret) throw new FloeError('ceremony_conflict', 'refresh round 3 before round 2');
    const bySender = new Map(req.boxes.map((b) => [b.sender, b.box]));
    if (bySender.size !== req.boxes.length || req.boxes.length !== c.n - 1) {
      throw new FloeError('invalid_request', 'boxes: expected one from each other member');
    }
    for (const o of c.others) {
      if (!bySender.has(o.identifier))
        throw new FloeError('invalid_request', `boxes: missing the box from ${o.identifier}`);
    }
    const key = this.activeKey(c.keyId);
    const received: DkgRound2Package[] = [];
    let next: KeyPackage;
    try {
      if ((key.generation ?? 0) + 1 !== c.generation) {
        throw new FloeError('generation_mismatch', 'this share changed generation during the refresh');
      }
      const unopened: number[] = [];
      for (const o of c.others) {
        try {
          const share = openBox(
            this.o.identity,
            bySender.get(o.identifier)!,
            refreshBoxAad(c.id, c.keyId, c.generation, o.identifier, c.identifier),
            REFRESH_BOX_INFO,
          );
          parseScalar(share, 'sub-share');
          received.push({ sender: o.identifier, receiver: c.identifier, signingShare: share });
        } catch {
          unopened.push(o.identifier);
        }
      }
      if (unopened.length) {
        throw new FloeError(
          'refresh_failed',
          `the sealed sub-shares from members ${unopened.join(', ')} do not open`,
          {
            culprits: unopened,
          },
        );
      }
      next = refreshRound3(c.secret, c.others, received, key.keyPackage);
    } catch (e) {
      this.forget(c.id);
      throw refreshFailed(e, 'refresh round 3 failed');
    } finally {
      for (const r of received) wipe(r.signingShare);
      wipe(key.keyPackage.signingShare);
    }
    delete c.secret;
    const publicHash = publicKeyPackageHash(next.public);
    try {
      this.o.store.putPendingRefresh({
        keyId: c.keyId,
        ceremonyId: c.id,
        generation: c.generation,
        keyPackage: next,
        publicHash,
        members: c.participants,
        createdAt: this.o.clock.now(),
      });
    } finally {
      wipe(next.signingShare);
    }
    this.o.store.appendAudit({
      at: this.o.clock.now(),
      kind: 'key_refresh_pending',
      keyId: c.keyId,
      detail: `${c.id} generation ${c.generation}`,
    });
    c.round3 = {
      ceremony_id: c.id,
      key_id: c.keyId,
      identifier: c.identifier,
      generation: c.generation,
      public_key_package: encodePublicKeyPackage(next.public),
      certificate: toHex(
        this.o.identity.sign(
          refreshCertificateDigest(c.id, c.keyId, c.generation, c.participants, publicHash),
        ),
      ),
    };
    return c.round3;
  }

  /**
   * Make the refreshed share the only one, once every member certified the same new package.
   * Safe to repeat (the coordinator retries until every member answers), also after a restart:
   * the pending share is durable. A node already on that generation answers `committed`.
   */
  commit(req: RefreshCommitRequest): RefreshCommitResponse {
    const done: RefreshCommitResponse = {
      ceremony_id: req.ceremony_id,
      key_id: req.key_id,
      generation: req.generation,
      status: 'committed',
    };
    const key = this.o.store.getKey(req.key_id);
    if (!key) throw new FloeError('unknown_key', `no share of key ${req.key_id} on this signer`);
    wipe(key.keyPackage.signingShare);
    // Already there (a repeat after a lost answer): nothing changes. Only one refresh can reach a
    // generation — the coordinator starts the next only after this one completed everywhere.
    if ((key.generation ?? 0) === req.generation) return done;
    if ((key.generation ?? 0) > req.generation) {
      throw new FloeError(
        'generation_mismatch',
        `this signer holds generation ${key.generation ?? 0} of key ${req.key_id}, not from refresh ${req.ceremony_id}`,
      );
    }
    const pending = this.o.store.getPendingRefresh(req.key_id);
    if (!pending || pending.ceremonyId !== req.ceremony_id || pending.generation !== req.generation) {
      if (pending) wipe(pending.keyPackage.signingShare);
      throw new FloeError(
        'ceremony_unknown',
        `no pending refresh ${req.ceremony_id} of key ${req.key_id} here`,
      );
    }
    wipe(pending.keyPackage.signingShare);
    const byId = new Map(req.certificates.map((x) => [x.identifier, x]));
    if (byId.size !== pending.members.length || req.certificates.length !== pending.members.length) {
      throw new FloeError('certification_mismatch', 'expected one certificate from each member');
    }
    const digest = refreshCertificateDigest(
      req.ceremony_id,
      req.key_id,
      req.generation,
      pending.members,
      pending.publicHash,
    );
    for (const m of pending.members) {
      const cert = byId.get(m.identifier);
      if (
        !cert ||
        !verifyDigest(
          fromHex(cert.certificate, 'certificate', 64),
          digest,
          fromHex(m.identity, 'identity', 32),
        )
      ) {
        throw new FloeError('certification_mismatch', `member ${m.identifier} did not certify this refresh`, {
          culprits: [m.identifier],
        });
      }
    }
    this.o.store.commitRefresh(req.key_id, req.ceremony_id, this.o.clock.now());
    this.forget(req.ceremony_id);
    return done;
  }

  /**
   * Drop a refresh that will not complete: its in-memory secret and, unless committed, its
   * pending share (the old share stays in force). An unknown ceremony is not an error.
   */
  abort(req: RefreshAbortRequest): RefreshAbortResponse {
    const had = this.live.has(req.ceremony_id);
    this.forget(req.ceremony_id);
    const dropped = this.o.store.dropPendingRefresh(req.key_id, req.ceremony_id);
    if (dropped) {
      this.o.store.appendAudit({
        at: this.o.clock.now(),
        kind: 'key_refresh_aborted',
        keyId: req.key_id,
        detail: req.ceremony_id,
      });
    }
    return { ceremony_id: req.ceremony_id, aborted: had || dropped };
  }
}
