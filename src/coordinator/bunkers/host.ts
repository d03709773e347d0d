/**
 * Runs the NIP-46 bunkers of the database in this coordinator (DESIGN §14): a `Bunker`
 * (src/nostr/bunker.ts) per enabled bunker whose lease this process holds, with the user key
 * behind `FloeBunkerBackend` (signing sessions, threshold ECDH) and its clients and secrets in
 * `PgBunkerStore`.
 *
 * Leases (migration 013): every `tickMs` one statement renews the leases this coordinator
 * holds and claims enabled bunkers whose lease ran out (a coordinator that stopped, crashed or
 * lost the database); a bunker whose lease is no longer ours (disabled, or taken over after
 * we failed to renew in time) is stopped. So of several coordinators on one database exactly
 * one runs a given bunker, and another takes over within `leaseMs` of its end. Only bunkers
 * sealed under this coordinator's `bunker.key` are claimed (it could not open the others).
 *
 * The same tick applies configuration changed by another coordinator's API (relays, approval
 * policy) and operator decisions on held requests taken there (approvals live in the
 * database, so any coordinator lists and decides them).
 *
 * Audit: bunker events go to the coordinator's audit log (`bunker.<type>`, subject the key),
 * except per-request `request` events (every request ends in an `answered` event with method,
 * kind, outcome and time) and floods: `dropped` and `subscription_closed` events are counted
 * and written once a minute. The events carry no secrets, plaintexts or event contents.
 */
import { wipe } from '../../crypto/hex.js';
import type { Db, Tx } from '../../db/connection.js';
import * as q from '../../db/queries/bunkers.js';
import type { KeyRecord } from '../../domain/records.js';
import { Bunker, type BunkerAuditEvent } from '../../nostr/bunker.js';
import type { Permission } from '../../nostr/nip46.js';
import type { PoolOptions } from '../../nostr/pool.js';
import { FloeError, toProblem } from '../../protocol/errors.js';
import type { SessionService } from '../services/sessions.js';
import { FloeBunkerBackend, type SharedXSource } from './backend.js';
import { approvalPolicy, parsePermissionList } from './policy.js';
import type { BunkerSealer } from './seal.js';
import { PgBunkerStore } from './store.js';

/** What a coordinator is given to run bunkers (node.ts: its database and `bunker.key`). */
export interface BunkerHostConfig {
  db: Db;
  sealer: BunkerSealer;
  /** A lease lasts this long unless renewed. Default 15 s. */
  leaseMs?: number;
  /** Renewal, claims, configuration and decisions every this often. Default 2 s. */
  tickMs?: number;
  /** How long a sign_event waits for its session. Default 30 s. */
  signWaitMs?: number;
  /** How long a held request waits for an operator. Default 5 minutes. */
  approvalTimeoutMs?: number;
  /** How long a start waits for the relays to hold the subscription. Default 5 s. */
  startTimeoutMs?: number;
  /** A bunker that failed to start is tried again after this long. Default 30 s. */
  retryAfterMs?: number;
  /** Relay connections (reconnect backoff, timeouts). */
  poolOptions?: PoolOptions;
}

export interface BunkerHostOptions extends BunkerHostConfig {
  instanceId: string;
  sessions: SessionService;
  getKey(tenantId: string, keyId: string): Promise<KeyRecord | undefined>;
  audit(tenantId: string, kind: string, subjectType: string, subjectId: string, data: unknown): Promise<void>;
  ecdh: () => SharedXSource | undefined;
  now?: () => number;
  log?: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

/** Where a bunker runs, as seen from this coordinator. */
export type Placement = 'here' | 'elsewhere' | 'unavailable';

interface Running {
  tenantId: string;
  keyId: string;
  bunker: Bunker;
  updatedAt: number;
  policy: { list: Permission[] };
}

/** Reconnect quickly: a bunker is a user waiting, and its relays are few. */
const DEFAULT_POOL: PoolOptions = {
  connectTimeoutMs: 5000,
  publishTimeoutMs: 5000,
  reconnect: { initialMs: 250, maxMs: 5000, factor: 2, jitter: 0.3 },
};
const CLAIM_LIMIT = 50;
const FLUSH_MS = 60_000;
const PRUNE_AFTER_MS = 30 * 86_400_000;

const name = (tenantId: string, keyId: string) => `${tenantId}/${keyId}`;

export class BunkerHost {
  private readonly running = new Map<string, Running>();
  private readonly starting = new Map<string, Promise<Running | undefined>>();
  /** Bunkers asked to stop while starting. */
  private readonly unwanted = new Set<string>();
  private readonly failedUntil = new Map<string, number>();
  private readonly noise = new Map<
    string,
    { tenantId: string; keyId: string; counts: Record<string, number> }
  >();
  private readonly now: () => number;
  private readonly c: Required<Omit<BunkerHostConfig, 'db' | 'sealer' | 'poolOptions'>> & {
    poolOptions: PoolOptions;
  };
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private lastFlush = 0;
  private closed = false;
  private apiUrl = '';

  constructor(private readonly o: BunkerHostOptions) {
    this.now = o.now ?? Date.now;
    this.c = {
      leaseMs: o.leaseMs ?? 15_000,
      tickMs: o.tickMs ?? 2000,
      signWaitMs: Math.min(o.signWaitMs ?? 30_000, 120_000),
      approvalTimeoutMs: o.approvalTimeoutMs ?? 5 * 60_000,
      startTimeoutMs: o.startTimeoutMs ?? 5000,
      retryAfterMs: o.retryAfterMs ?? 30_000,
      poolOptions: { ...DEFAULT_POOL, ...o.poolOptions },
    };
    if (this.c.tickMs * 2 >= this.c.leaseMs) {
      throw new FloeError('invalid_request', 'bunkers: the lease must last more than two ticks');
    }
  }

  /** Fingerprint of this coordinator's `bunker.key` (the bunkers it can open). */
  get sealKeyId(): string {
    return this.o.sealer.keyId;
  }

  get instanceId(): string {
    return this.o.instanceId;
  }

  get sealer(): BunkerSealer {
    return this.o.sealer;
  }

  get db(): Db {
    return this.o.db;
  }

  /** The API's base URL, for the `auth_url` of held requests. */
  setApiUrl(url: string): void {
    this.apiUrl = url.replace(/\/+$/, '');
  }

  /** The page of a held request (GET answers it; POST …/approve or …/deny decides it). */
  approvalUrl(keyId: string, approvalId: string): string {
    return `${this.apiUrl}/v1/keys/${encodeURIComponent(keyId)}/bunker/approvals/${approvalId}`;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(), this.c.tickMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stop every bunker (held requests are refused), and give up the leases at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.ticking;
    await Promise.allSettled([...this.starting.values()]);
    await Promise.allSettled([...this.running.keys()].map((k) => this.stop(k, 'shutdown', false)));
    await this.flushNoise(true);
    await this.o.db
      .transaction((tx) => q.releaseBunkerLeases(tx, this.o.instanceId))
      .catch((e) => this.o.log?.warn({ err: errText(e) }, 'bunkers: releasing the leases failed'));
  }

  /** The bunker when it runs in this process. */
  local(tenantId: string, keyId: string): Bunker | undefined {
    return this.running.get(name(tenantId, keyId))?.bunker;
  }

  /**
   * Run the bunker here unless another coordinator holds it (the API just enabled or changed
   * it): takes or renews its lease, applies its configuration, and resolves once it listens.
   */
  async ensureRunning(tenantId: string, keyId: string): Promise<Placement> {
    if (this.closed) return 'unavailable';
    const held = await this.t(tenantId, (tx) =>
      q.claimBunker(tx, keyId, {
        owner: this.o.instanceId,
        sealKeyId: this.o.sealer.keyId,
        leaseMs: this.c.leaseMs,
        now: this.now(),
      }),
    );
    if (!held) return 'elsewhere';
    const k = name(tenantId, keyId);
    this.failedUntil.delete(k);
    this.unwanted.delete(k);
    const r = this.running.get(k) ?? (await (this.starting.get(k) ?? this.launch(held)));
    if (!r) return 'unavailable';
    await this.apply(r, held);
    // requests are ephemeral: a URL handed out before the relays hold the subscription could
    // lose the client's first request (bounded: relays that are down are retried in the background)
    await r.bunker.listening(this.c.startTimeoutMs);
    return 'here';
  }

  /** Stop the bunker here now (disabled through the API of this coordinator). */
  async stopLocal(tenantId: string, keyId: string, reason: string): Promise<void> {
    const k = name(tenantId, keyId);
    if (this.starting.has(k)) {
      this.unwanted.add(k);
      await this.starting.get(k);
    }
    if (this.running.has(k)) await this.stop(k, reason, false);
  }

  /** Renew, claim, stop what is no longer ours, apply changes and decisions. */
  tick(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.ticking ??= this.tickOnce()
      .catch((e) => this.o.log?.warn({ err: errText(e) }, 'bunkers: tick failed'))
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async tickOnce(): Promise<void> {
    const now = this.now();
    for (const [k, until] of this.failedUntil) if (until <= now) this.failedUntil.delete(k);
    const held = await this.o.db.transaction((tx) =>
      q.claimBunkers(tx, {
        owner: this.o.instanceId,
        sealKeyId: this.o.sealer.keyId,
        leaseMs: this.c.leaseMs,
        limit: CLAIM_LIMIT,
        skip: [...this.failedUntil.keys()],
      }),
    );
    if (this.closed) return;
    const ours = new Set(held.map((h) => name(h.tenantId, h.keyId)));
    for (const k of [...this.running.keys()]) {
      if (!ours.has(k)) void this.stop(k, 'not_held', false);
    }
    for (const k of this.starting.keys()) if (!ours.has(k)) this.unwanted.add(k);
    for (const h of held) {
      const k = name(h.tenantId, h.keyId);
      const r = this.running.get(k);
      if (r)
        await this.apply(r, h).catch((e) => this.warn(h.tenantId, h.keyId, e, 'applying changes failed'));
      else if (!this.starting.has(k)) void this.launch(h);
    }
    await this.pollDecisions();
    await this.flushNoise(false);
  }

  // ---- starting and stopping

  private launch(h: q.HeldBunker): Promise<Running | undefined> {
    const k = name(h.tenantId, h.keyId);
    const p = this.startOne(h)
      .then(async (r) => {
        if (!r) return undefined;
        if (this.closed || this.unwanted.has(k)) {
          this.unwanted.delete(k);
          await r.bunker.close();
          return undefined;
        }
        this.running.set(k, r);
        this.auditEvent(h.tenantId, h.keyId, 'bunker.started', { coordinator: this.o.instanceId });
        this.o.log?.info({ key_id: h.keyId, relays: r.bunker.relays() }, 'bunker started');
        return r;
      })
      .catch(async (e) => {
        this.failedUntil.set(k, this.now() + this.c.retryAfterMs);
        this.warn(h.tenantId, h.keyId, e, 'start failed; retrying later');
        await this.release(h.tenantId, h.keyId);
        return undefined;
      })
      .finally(() => {
        this.starting.delete(k);
        this.unwanted.delete(k);
      });
    this.starting.set(k, p);
    return p;
  }

  private async startOne(h: q.HeldBunker): Promise<Running | undefined> {
    const { tenantId, keyId } = h;
    const key = await this.o.getKey(tenantId, keyId);
    if (key?.status !== 'active' || !key.xOnlyPublicKey) {
      throw new FloeError('key_not_active', `key ${keyId} is ${key?.status ?? 'gone'}`);
    }
    const row = await this.t(tenantId, async (tx) => {
      const b = await q.getBunker(tx, keyId);
      if (b?.enabled) {
        // requests a stopped coordinator held are gone with it
        await q.expirePendingApprovals(tx, keyId, this.now());
        await q.pruneBunker(tx, keyId, this.now() - PRUNE_AFTER_MS);
      }
      return b;
    });
    if (!row?.enabled) return undefined;
    const secret = this.o.sealer.open(
      { sealKeyId: row.sealKeyId, nonce: row.sealedNonce, ciphertext: row.sealedSecret },
      { tenantId, keyId, remoteSignerPubkey: row.remoteSignerPubkey },
    );
    const policy = { list: parsePermissionList(row.requireApproval, 'require_approval') };
    try {
      const bunker = await Bunker.start({
        backend: new FloeBunkerBackend({
          tenantId,
          keyId,
          xOnlyPublicKey: key.xOnlyPublicKey,
          sessions: this.o.sessions,
          ecdh: this.o.ecdh,
          signWaitMs: this.c.signWaitMs,
          audit: (kind, st, sid, data) => this.auditEvent(tenantId, keyId, kind, data, st, sid),
        }),
        signer: secret,
        relays: row.relays,
        store: new PgBunkerStore(this.o.db, tenantId, keyId, this.now),
        poolOptions: this.c.poolOptions,
        needsApproval: (ctx) => approvalPolicy(policy.list)(ctx),
        authUrl: (approvalId) => this.approvalUrl(keyId, approvalId),
        // (recorded before the client is sent the auth_url: its page reads this row)
        holdRequest: (h) => {
          const at = this.now();
          return this.t(tenantId, (tx) =>
            q.insertApproval(tx, {
              keyId,
              approvalId: h.approvalId,
              client: h.client,
              requestId: h.requestId,
              method: h.method,
              kind: h.kind ?? null,
              createdAt: at,
              expiresAt: at + this.c.approvalTimeoutMs,
            }),
          ).catch((err) => {
            this.warn(tenantId, keyId, err, 'recording a held request failed');
            throw err;
          });
        },
        approvalTimeoutMs: this.c.approvalTimeoutMs,
        startTimeoutMs: this.c.startTimeoutMs,
        onEvent: (e) => this.onBunkerEvent(tenantId, keyId, e),
      });
      return { tenantId, keyId, bunker, updatedAt: row.updatedAt, policy };
    } finally {
      wipe(secret);
    }
  }

  private async stop(k: string, reason: string, release: boolean): Promise<void> {
    const r = this.running.get(k);
    if (!r) return;
    this.running.delete(k);
    await r.bunker.close();
    this.auditEvent(r.tenantId, r.keyId, 'bunker.stopped', { coordinator: this.o.instanceId, reason });
    if (release) await this.release(r.tenantId, r.keyId);
  }

  private async release(tenantId: string, keyId: string): Promise<void> {
    await this.t(tenantId, (tx) => q.releaseBunker(tx, keyId, this.o.instanceId)).catch(() => {});
  }

  /** Relays and approval policy as stored now. */
  private async apply(r: Running, h: q.HeldBunker): Promise<void> {
    if (h.updatedAt === r.updatedAt) return;
    r.updatedAt = h.updatedAt;
    r.policy.list = parsePermissionList(h.requireApproval, 'require_approval');
    const now = r.bunker.relays();
    if (now.length !== h.relays.length || now.some((u, i) => u !== h.relays[i])) {
      await r.bunker.setRelays(h.relays);
    }
  }

  // ---- approvals decided on any coordinator

  private async pollDecisions(): Promise<void> {
    for (const r of this.running.values()) {
      const ids = r.bunker.pendingApprovals().map((a) => a.approvalId);
      if (ids.length === 0) continue;
      const decided = await this.t(r.tenantId, (tx) => q.decidedApprovals(tx, r.keyId, ids)).catch(() => []);
      for (const d of decided) {
        if (d.status === 'approved') r.bunker.approve(d.approvalId);
        else r.bunker.deny(d.approvalId);
      }
    }
  }

  // ---- audit

  private onBunkerEvent(tenantId: string, keyId: string, e: BunkerAuditEvent): void {
    switch (e.type) {
      case 'request':
        return;
      case 'dropped':
        this.count(tenantId, keyId, `dropped.${e.reason}`);
        return;
      case 'subscription_closed':
        this.count(tenantId, keyId, 'subscription_closed');
        return;
      case 'approval_requested':
        // (the held request was recorded before the auth_url went out: holdRequest above)
        break;
      case 'approval_resolved':
        void this.t(tenantId, (tx) =>
          q.settleApproval(tx, keyId, e.approvalId, {
            status: e.outcome,
            now: this.now(),
            by: null,
            unexpired: false,
          }),
        ).catch((err) => this.warn(tenantId, keyId, err, 'recording an approval failed'));
        break;
    }
    const { type, ...data } = e;
    this.auditEvent(tenantId, keyId, `bunker.${type}`, data);
  }

  private count(tenantId: string, keyId: string, what: string): void {
    const k = name(tenantId, keyId);
    let n = this.noise.get(k);
    if (!n) {
      n = { tenantId, keyId, counts: {} };
      this.noise.set(k, n);
    }
    n.counts[what] = (n.counts[what] ?? 0) + 1;
  }

  private async flushNoise(force: boolean): Promise<void> {
    const now = this.now();
    if (!force && now - this.lastFlush < FLUSH_MS) return;
    this.lastFlush = now;
    const all = [...this.noise.values()];
    this.noise.clear();
    await Promise.allSettled(
      all.map((n) =>
        this.o.audit(n.tenantId, 'bunker.noise', 'bunker', n.keyId, { counts: n.counts, since_ms: FLUSH_MS }),
      ),
    );
  }

  /** Fire and forget: an audit write must not hold up an answer. */
  private auditEvent(
    tenantId: string,
    keyId: string,
    kind: string,
    data: unknown,
    subjectType = 'bunker',
    subjectId = keyId,
  ): void {
    this.o
      .audit(tenantId, kind, subjectType, subjectId, data)
      .catch((e) => this.warn(tenantId, keyId, e, `audit ${kind} failed`));
  }

  private warn(tenantId: string, keyId: string, e: unknown, what: string): void {
    this.o.log?.warn({ tenant_id: tenantId, key_id: keyId, err: errText(e) }, `bunker: ${what}`);
  }

  private t<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.o.db.transaction(fn, { tenantId });
  }
}

/** A refusal's code and sentence; for another error (the database's) its message, never a stack. */
function errText(e: unknown): string {
  const p = toProblem(e);
  if (p.code === 'internal' && e instanceof Error) return `internal: ${e.message.slice(0, 300)}`;
  return `${p.code}: ${p.detail}`;
}
