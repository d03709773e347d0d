/**
 * The stewards' Nostr transport (DESIGN §13): approval requests go out as NIP-17 direct
 * messages (NIP-59 gift wraps, one per steward) from the coordinator's own identity key, and
 * the stewards' kind-30078 decisions are read back from the same relays. A thin adapter: what a
 * request says and what a decision proves are src/approvals/; what a decision does is the
 * approval service's.
 *
 * Listening: per relay, one subscription `{kinds: [30078], "#d": ["floe-approval:<session>", …]}`
 * over every session waiting there, rebuilt when that set changes (a relay allows few
 * subscriptions per connection). Relays send stored events again on every rebuild; an event
 * id seen before is not handed on twice.
 */
import {
  APPROVAL_KIND,
  type ApprovalRequest,
  requestTags,
  requestText,
  SESSION_D_PREFIX,
} from '../approvals/index.js';
import type { NodeIdentity } from '../crypto/identity.js';
import type { NostrEvent } from '../nostr/event.js';
import { nowSeconds } from '../nostr/event.js';
import type { Filter } from '../nostr/filter.js';
import { directMessageTemplate } from '../nostr/nip17.js';
import { createRumor, createSeal, createWrap } from '../nostr/nip59.js';
import { RelayPool } from '../nostr/pool.js';
import type { Subscription } from '../nostr/relay.js';

/** Most `#d` values in one filter (relays bound list lengths); a subscription takes several filters. */
const D_PER_FILTER = 500;
const MAX_FILTERS = 16;
/** Event ids remembered per session (a steward's decisions, and the relays' repeats of them). */
const SEEN_PER_SESSION = 64;

export interface Delivery {
  steward: string;
  relay: string;
  accepted: boolean;
  message: string;
}

export interface ApprovalRelaysOptions {
  /** The coordinator's identity: the author of the requests (its npub is who stewards hear from). */
  identity: NodeIdentity;
  /** A decision read from a relay, for a watched session. */
  onDecision: (tenantId: string, sessionId: string, event: NostrEvent) => Promise<void>;
  /** Per-relay deadline of a publish (connection included). Default 10 s. */
  publishTimeoutMs?: number;
  log?: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

interface Watched {
  tenantId: string;
  relays: string[];
  /** Unix ms; the session is dropped from the subscriptions after it. */
  until: number;
  seen: Set<string>;
}

export class ApprovalRelays {
  private readonly pool: RelayPool;
  private readonly watched = new Map<string, Watched>();
  private readonly subs = new Map<string, Subscription>();
  private rebuild: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly o: ApprovalRelaysOptions) {
    this.pool = new RelayPool({
      publishTimeoutMs: o.publishTimeoutMs ?? 10_000,
      connectTimeoutMs: o.publishTimeoutMs ?? 10_000,
      eoseTimeoutMs: 10_000,
    });
  }

  /**
   * Send the request to every steward of `r.policy` on `relays`: one gift wrap per steward,
   * each to every relay. Never rejects: each (steward, relay) answer is returned.
   */
  async notify(r: ApprovalRequest, relays: readonly string[]): Promise<Delivery[]> {
    if (this.closed || relays.length === 0) return [];
    const stewards = r.policy.stewards;
    const template = directMessageTemplate(
      stewards.map((pubkey) => ({ pubkey })),
      requestText(r),
      { createdAt: nowSeconds() },
    );
    template.tags.push(...requestTags(r));
    const rumor = createRumor(template, this.o.identity.publicKeyHex);
    const out: Delivery[] = [];
    await Promise.all(
      stewards.map(async (steward) => {
        const wrap = createWrap(createSeal(rumor, this.o.identity, steward), steward);
        try {
          for (const res of await this.pool.publish(wrap, [...relays])) {
            out.push({ steward, relay: res.relay, accepted: res.accepted, message: res.message });
          }
        } catch (e) {
          const message = e instanceof Error ? e.message : 'publish failed';
          for (const relay of relays) out.push({ steward, relay, accepted: false, message });
        }
      }),
    );
    return out;
  }

  /** Listen for decisions on `sessionId` on `relays` until `until` (Unix ms). */
  watch(tenantId: string, sessionId: string, relays: readonly string[], until: number): void {
    if (this.closed || relays.length === 0) return;
    const w = this.watched.get(sessionId);
    this.watched.set(sessionId, { tenantId, relays: [...relays], until, seen: w?.seen ?? new Set() });
    this.schedule();
  }

  /** Stop listening for decisions on `sessionId` (decided, expired, cancelled). */
  unwatch(sessionId: string): void {
    if (this.watched.delete(sessionId)) this.schedule();
  }

  isWatching(sessionId: string): boolean {
    return this.watched.has(sessionId);
  }

  close(): void {
    this.closed = true;
    if (this.rebuild) clearImmediate(this.rebuild);
    for (const s of this.subs.values()) s.close();
    this.subs.clear();
    this.watched.clear();
    this.pool.close();
  }

  /** Rebuild the subscriptions once, after every change made in this turn of the event loop. */
  private schedule(): void {
    if (this.rebuild || this.closed) return;
    this.rebuild = setImmediate(() => {
      this.rebuild = undefined;
      this.resubscribe();
    });
  }

  private resubscribe(): void {
    const now = Date.now();
    for (const [sid, w] of this.watched) if (w.until < now) this.watched.delete(sid);
    const byRelay = new Map<string, string[]>();
    for (const [sid, w] of this.watched) {
      for (const r of w.relays) byRelay.set(r, [...(byRelay.get(r) ?? []), `${SESSION_D_PREFIX}${sid}`]);
    }
    for (const [relay, sub] of this.subs) {
      sub.close();
      this.subs.delete(relay);
    }
    for (const [relay, ds] of byRelay) {
      const filters: Filter[] = [];
      for (let i = 0; i < ds.length && filters.length < MAX_FILTERS; i += D_PER_FILTER) {
        filters.push({ kinds: [APPROVAL_KIND], '#d': ds.slice(i, i + D_PER_FILTER) });
      }
      try {
        this.subs.set(
          relay,
          this.pool.subscribe([relay], filters, {
            onEvent: (e) => this.received(e),
            onClosed: (_r, reason) => this.o.log?.warn({ relay, reason }, 'approval subscription closed'),
          }),
        );
      } catch (e) {
        this.o.log?.warn({ relay, err: e instanceof Error ? e.message : 'error' }, 'cannot subscribe');
      }
    }
  }

  private received(e: NostrEvent): void {
    const d = e.tags.find((t) => t[0] === 'd')?.[1];
    if (!d?.startsWith(SESSION_D_PREFIX)) return;
    const sid = d.slice(SESSION_D_PREFIX.length);
    const w = this.watched.get(sid);
    if (!w || w.seen.has(e.id)) return;
    w.seen.add(e.id);
    if (w.seen.size > SEEN_PER_SESSION) w.seen.delete(w.seen.values().next().value!);
    this.o
      .onDecision(w.tenantId, sid, e)
      .catch((err) =>
        this.o.log?.info(
          { session: sid, event: e.id, err: err instanceof Error ? err.message : 'error' },
          'decision from a relay not counted',
        ),
      );
  }
}
