/**
 * Several relays behind one object: publish to a set and get every relay's answer, subscribe
 * to many with events deduplicated by id, fetch stored events until every relay has sent
 * EOSE (or a deadline passes). One `RelayConnection` per normalized URL, created on first use.
 */
import { randomBytes } from 'node:crypto';
import { FloeError } from '../protocol/errors.js';
import type { NostrEvent } from './event.js';
import type { Filter } from './filter.js';
import { type PublishResult, RelayConnection, type RelayOptions, type Subscription } from './relay.js';
import { normalizeRelayUrl } from './url.js';

export interface PoolSubscriptionHandlers {
  /** Each event once, from whichever relay delivered it first. */
  onEvent(event: NostrEvent, relay: string): void;
  /** Once, when every relay has sent EOSE or ended the subscription, or `eoseTimeoutMs` passed. */
  onEose?(): void;
  onClosed?(relay: string, reason: string): void;
}

export interface PoolOptions extends RelayOptions {
  /** Deadline for `onEose` of pool subscriptions and for `fetch`. Default 10 s. */
  eoseTimeoutMs?: number;
  /** Most event ids remembered per pool subscription. Default 10 000. */
  maxSeenIds?: number;
  /** Most relays one call may address. Default 64. */
  maxRelays?: number;
}

export class RelayPool {
  private readonly relays = new Map<string, RelayConnection>();
  private closed = false;

  constructor(private readonly opts: PoolOptions = {}) {}

  /** The connection for `url` (created on first use). Throws on a non-ws(s) URL. */
  relay(url: string): RelayConnection {
    if (this.closed) throw new FloeError('unavailable', 'relay pool is closed');
    const key = normalizeRelayUrl(url);
    let r = this.relays.get(key);
    if (!r) {
      r = new RelayConnection(key, this.opts);
      this.relays.set(key, r);
    }
    return r;
  }

  private targets(relays: string[]): RelayConnection[] {
    if (!Array.isArray(relays) || relays.length === 0) {
      throw new FloeError('invalid_request', 'relays: expected at least one relay URL');
    }
    const max = this.opts.maxRelays ?? 64;
    // validate every URL before touching any relay, so a bad list has no side effects
    const urls = [...new Set(relays.map(normalizeRelayUrl))];
    if (urls.length > max) throw new FloeError('invalid_request', `relays: more than ${max} relays`);
    return urls.map((u) => this.relay(u));
  }

  /** Publish to every relay in parallel; one result per distinct relay, in input order. */
  publish(event: NostrEvent, relays: string[]): Promise<PublishResult[]> {
    return Promise.all(this.targets(relays).map((r) => r.publish(event)));
  }

  /** Subscribe on every relay; events are deduplicated by id across relays. */
  subscribe(relays: string[], filters: Filter[], handlers: PoolSubscriptionHandlers): Subscription {
    const targets = this.targets(relays);
    const seen = new Set<string>();
    const maxSeen = this.opts.maxSeenIds ?? 10_000;
    const waiting = new Set(targets.map((r) => r.url));
    let eosed = false;
    const eose = () => {
      if (eosed) return;
      eosed = true;
      clearTimeout(timer);
      handlers.onEose?.();
    };
    const done = (url: string) => {
      waiting.delete(url);
      if (waiting.size === 0) eose();
    };
    const timer = setTimeout(eose, this.opts.eoseTimeoutMs ?? 10_000);
    const subs: Subscription[] = [];
    const id = `pool-${randomBytes(8).toString('hex')}`;
    try {
      for (const r of targets) {
        subs.push(
          r.subscribe(
            filters,
            {
              onEvent: (e) => {
                if (seen.has(e.id)) return;
                seen.add(e.id);
                if (seen.size > maxSeen) seen.delete(seen.values().next().value!);
                handlers.onEvent(e, r.url);
              },
              onEose: () => done(r.url),
              onClosed: (reason) => {
                done(r.url);
                handlers.onClosed?.(r.url, reason);
              },
            },
            { id },
          ),
        );
      }
    } catch (e) {
      for (const s of subs) s.close();
      clearTimeout(timer);
      throw e;
    }
    return {
      id,
      close: () => {
        clearTimeout(timer);
        eosed = true;
        for (const s of subs) s.close();
      },
    };
  }

  /** Stored events matching `filters`, newest first, once every relay sent EOSE or the deadline passed. */
  fetch(relays: string[], filters: Filter[], opts: { timeoutMs?: number } = {}): Promise<NostrEvent[]> {
    const events: NostrEvent[] = [];
    return new Promise((resolve, reject) => {
      let sub: Subscription | undefined;
      const finish = () => {
        clearTimeout(timer);
        sub?.close();
        resolve(events.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1)));
      };
      const timer = setTimeout(finish, opts.timeoutMs ?? this.opts.eoseTimeoutMs ?? 10_000);
      try {
        sub = this.subscribe(relays, filters, { onEvent: (e) => events.push(e), onEose: finish });
      } catch (e) {
        clearTimeout(timer);
        reject(e);
      }
    });
  }

  /** Close every connection. */
  close(): void {
    this.closed = true;
    for (const r of this.relays.values()) r.close();
    this.relays.clear();
  }
}
