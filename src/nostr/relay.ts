/**
 * One relay connection speaking NIP-01 (EVENT/OK, REQ/EVENT/EOSE/CLOSED, CLOSE, NOTICE) and
 * NIP-42 (AUTH) over `ws`.
 *
 * - `publish` resolves with the relay's OK answer, or with a `failure` when none came before
 *   the per-relay deadline; it never rejects for network reasons, so a pool can record every
 *   relay's outcome. With reconnecting off, a lost connection ends it at once.
 * - Subscriptions outlive connections: after a drop the client reconnects with capped
 *   exponential backoff and jitter and sends every live REQ again. Events are verified
 *   (id, BIP-340 signature), checked against the subscription's filters, and deduplicated.
 * - NIP-42: when the relay sends a challenge and an `authSigner` was given, the client
 *   answers with a signed kind-22242 event and retries what was refused `auth-required:`.
 * - Inbound messages are bounded (`maxMessageBytes`, enforced by ws before parsing).
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { FloeError } from '../protocol/errors.js';
import {
  checkEvent,
  DEFAULT_EVENT_LIMITS,
  type EventLimits,
  type EventTemplate,
  eventError,
  type NostrEvent,
  validateEvent,
} from './event.js';
import { checkFilters, type Filter, matchFilters } from './filter.js';
import { AUTH_KIND, authTemplate } from './nip42.js';
import { normalizeRelayUrl } from './url.js';

/**
 * Why a publish got no OK: `timeout` (connected, no answer in time), `unreachable` (no
 * connection), `disconnected` (lost before the OK and reconnecting is off), `closed` (we
 * closed the connection).
 */
export type PublishFailure = 'timeout' | 'unreachable' | 'disconnected' | 'closed';

/** One relay's answer to a published event. */
export interface PublishResult {
  relay: string;
  /** The relay's OK flag; false when it refused or never answered. */
  accepted: boolean;
  /** The relay's OK message, or a description of why there was none. */
  message: string;
  /** Unix ms when the answer (or the failure) was recorded. */
  at: number;
  /** Set when the relay gave no OK at all. */
  failure?: PublishFailure;
}

export interface SubscriptionHandlers {
  onEvent(event: NostrEvent): void;
  /** First end of stored events (not repeated after a reconnect). */
  onEose?(): void;
  /** The relay ended the subscription (`CLOSED`) with this reason. */
  onClosed?(reason: string): void;
}

export interface Subscription {
  readonly id: string;
  close(): void;
}

export interface ReconnectOptions {
  /** First delay; multiplied by `factor` per failed attempt up to `maxMs`. */
  initialMs: number;
  maxMs: number;
  factor: number;
  /** Fraction of the delay removed at random (0 = none, 1 = full jitter). */
  jitter: number;
}

export type RelayStatus = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

export type RelayStatusEvent =
  | { relay: string; status: 'connecting' | 'open' | 'idle' | 'closed' }
  | { relay: string; status: 'backoff'; attempt: number; delayMs: number; error?: string };

export interface RelayOptions {
  /** TCP + WebSocket handshake deadline. Default 10 s. */
  connectTimeoutMs?: number;
  /** Deadline for the OK of a published event, connection time included. Default 10 s. */
  publishTimeoutMs?: number;
  /** Deadline for the OK of our AUTH event. Default 10 s. */
  authTimeoutMs?: number;
  /** Largest inbound message. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Backoff of reconnections; `false` disables reconnecting. */
  reconnect?: Partial<ReconnectOptions> | false;
  /** WebSocket ping period to detect dead connections; 0 disables. Default 30 s. */
  pingIntervalMs?: number;
  /** Signs the NIP-42 auth template; without it AUTH challenges are ignored. */
  authSigner?: (template: EventTemplate) => Promise<NostrEvent>;
  /** Verify ids and signatures of received events (default true). */
  verifyEvents?: boolean;
  eventLimits?: EventLimits;
  /** Most event ids remembered per subscription for deduplication. Default 10 000. */
  maxSeenIds?: number;
  onNotice?: (message: string, relay: string) => void;
  onStatus?: (e: RelayStatusEvent) => void;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.3,
});

const MAX_FILTERS = 16;
const MAX_CHALLENGE_LENGTH = 512;
const HEX32 = /^[0-9a-f]{64}$/;

interface SubState {
  id: string;
  filters: Filter[];
  handlers: SubscriptionHandlers;
  eosed: boolean;
  authRetried: boolean;
  seen: Set<string>;
}

interface PendingPublish {
  event: NostrEvent;
  waiters: ((r: PublishResult) => void)[];
  timer: NodeJS.Timeout;
  authRetried: boolean;
  /** Sent on the current connection (cleared on reconnect, so it is sent again). */
  sent: boolean;
}

/** Delay before reconnection attempt `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  o: ReconnectOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** attempt);
  return Math.max(0, Math.round(base * (1 - o.jitter * random())));
}

/** A NIP-01 connection to one relay. Construct, then `publish`/`subscribe`; `close` ends it. */
export class RelayConnection {
  readonly url: string;
  private readonly o: Required<Omit<RelayOptions, 'authSigner' | 'onNotice' | 'onStatus' | 'reconnect'>> & {
    reconnect: ReconnectOptions | false;
  };
  private readonly authSigner: RelayOptions['authSigner'];
  private readonly onNotice: RelayOptions['onNotice'];
  private readonly onStatus: RelayOptions['onStatus'];
  private ws: WebSocket | undefined;
  private connecting: Promise<void> | undefined;
  private _status: RelayStatus = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly subs = new Map<string, SubState>();
  private readonly pending = new Map<string, PendingPublish>();
  private readonly pendingAuth = new Map<string, (accepted: boolean) => void>();
  private challenge: string | undefined;
  private authing: Promise<boolean> | undefined;
  private _authedAs: string | undefined;
  private lastError: string | undefined;

  constructor(url: string, opts: RelayOptions = {}) {
    this.url = normalizeRelayUrl(url);
    this.o = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      publishTimeoutMs: opts.publishTimeoutMs ?? 10_000,
      authTimeoutMs: opts.authTimeoutMs ?? 10_000,
      maxMessageBytes: opts.maxMessageBytes ?? 1024 * 1024,
      pingIntervalMs: opts.pingIntervalMs ?? 30_000,
      verifyEvents: opts.verifyEvents ?? true,
      eventLimits: opts.eventLimits ?? DEFAULT_EVENT_LIMITS,
      maxSeenIds: opts.maxSeenIds ?? 10_000,
      reconnect: opts.reconnect === false ? false : { ...DEFAULT_RECONNECT, ...opts.reconnect },
    };
    this.authSigner = opts.authSigner;
    this.onNotice = opts.onNotice;
    this.onStatus = opts.onStatus;
  }

  get status(): RelayStatus {
    return this._status;
  }

  /** The pubkey the relay accepted our AUTH for on the current connection, if any. */
  get authedAs(): string | undefined {
    return this._authedAs;
  }

  /** Open the connection (or join the attempt in progress). Rejects on failure or timeout. */
  connect(): Promise<void> {
    if (this._status === 'closed')
      return Promise.reject(new FloeError('unavailable', 'relay connection is closed'));
    if (this._status === 'open') return Promise.resolve();
    if (this.connecting) return this.connecting;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.setStatus('connecting');
    const ws = new WebSocket(this.url, {
      maxPayload: this.o.maxMessageBytes,
      handshakeTimeout: this.o.connectTimeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.ws = ws;
    const p = new Promise<void>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        this.lastError = `no connection within ${this.o.connectTimeoutMs} ms`;
        ws.terminate();
      }, this.o.connectTimeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        this.onOpen(ws);
        resolve();
      });
      ws.on('error', (err) => {
        if (!timedOut) this.lastError = err.message;
      });
      ws.once('close', () => {
        clearTimeout(timer);
        const wasOpen = this._status === 'open' && this.ws === ws;
        this.onClose(ws, wasOpen);
        if (!wasOpen)
          reject(new FloeError('unavailable', `relay ${this.url}: ${this.lastError ?? 'closed'}`));
      });
      ws.on('message', (data, isBinary) => {
        if (this.ws === ws) this.onMessage(data, isBinary);
      });
      ws.on('pong', () => {
        (ws as WebSocket & { floeAlive?: boolean }).floeAlive = true;
      });
    });
    this.connecting = p;
    // the promise is also observed through publish results and reconnects
    p.catch(() => {});
    return p;
  }

  /**
   * Publish `event`. Resolves with the relay's OK, or with `failure` set when there was
   * none within `publishTimeoutMs`. A malformed event throws (caller bug), it is not sent.
   */
  publish(event: NostrEvent): Promise<PublishResult> {
    const check = checkEvent(event, this.o.eventLimits);
    if (!check.ok) throw eventError(check);
    if (this._status === 'closed') return Promise.resolve(this.result(false, 'connection closed', 'closed'));
    return new Promise((resolve) => {
      const existing = this.pending.get(event.id);
      if (existing) {
        existing.waiters.push(resolve);
        return;
      }
      const timer = setTimeout(() => {
        const open = this._status === 'open';
        this.settle(
          event.id,
          this.result(
            false,
            open
              ? `no OK within ${this.o.publishTimeoutMs} ms`
              : `not connected within ${this.o.publishTimeoutMs} ms: ${this.lastError ?? 'no connection'}`,
            open ? 'timeout' : 'unreachable',
          ),
        );
      }, this.o.publishTimeoutMs);
      this.pending.set(event.id, {
        event: check.event,
        waiters: [resolve],
        timer,
        authRetried: false,
        sent: false,
      });
      this.flushPublishes();
      this.ensureConnected();
    });
  }

  /** Subscribe with NIP-01 filters. The subscription survives reconnects until `close()`. */
  subscribe(filters: Filter[], handlers: SubscriptionHandlers, opts: { id?: string } = {}): Subscription {
    if (this._status === 'closed') throw new FloeError('unavailable', 'relay connection is closed');
    const clean = checkFilters(filters, MAX_FILTERS);
    const id = opts.id ?? randomBytes(8).toString('hex');
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
      throw new FloeError('invalid_request', 'subscription id: expected 1 to 64 characters');
    }
    if (this.subs.has(id)) throw new FloeError('conflict', 'subscription id: already in use on this relay');
    const sub: SubState = { id, filters: clean, handlers, eosed: false, authRetried: false, seen: new Set() };
    this.subs.set(id, sub);
    if (this._status === 'open') this.send(['REQ', id, ...clean]);
    else this.ensureConnected();
    return {
      id,
      close: () => {
        if (this.subs.get(id) !== sub) return;
        this.subs.delete(id);
        if (this._status === 'open') this.send(['CLOSE', id]);
      },
    };
  }

  /** Close the connection for good: pending publishes resolve as `closed`. */
  close(): void {
    if (this._status === 'closed') return;
    this.setStatus('closed');
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    for (const id of [...this.pending.keys()])
      this.settle(id, this.result(false, 'connection closed', 'closed'));
    for (const done of this.pendingAuth.values()) done(false);
    this.pendingAuth.clear();
    this.subs.clear();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else ws.terminate();
    }
  }

  // ---- connection lifecycle ----

  private setStatus(s: RelayStatus, extra?: { attempt: number; delayMs: number }): void {
    this._status = s;
    if (!this.onStatus) return;
    if (s === 'backoff' && extra) {
      this.onStatus({
        relay: this.url,
        status: s,
        ...extra,
        ...(this.lastError ? { error: this.lastError } : {}),
      });
    } else if (s !== 'backoff') {
      this.onStatus({ relay: this.url, status: s });
    }
  }

  private ensureConnected(): void {
    if (this._status === 'idle') this.connect().catch(() => {});
  }

  private needed(): boolean {
    return this.subs.size > 0 || this.pending.size > 0;
  }

  private onOpen(ws: WebSocket): void {
    this.connecting = undefined;
    this.attempt = 0;
    this.lastError = undefined;
    this.setStatus('open');
    if (this.o.pingIntervalMs > 0) {
      const w = ws as WebSocket & { floeAlive?: boolean };
      w.floeAlive = true;
      this.pingTimer = setInterval(() => {
        if (!w.floeAlive) {
          this.lastError = 'no pong from relay';
          ws.terminate();
          return;
        }
        w.floeAlive = false;
        ws.ping();
      }, this.o.pingIntervalMs);
      this.pingTimer.unref();
    }
    for (const sub of this.subs.values()) this.send(['REQ', sub.id, ...sub.filters]);
    this.flushPublishes();
  }

  private onClose(ws: WebSocket, wasOpen: boolean): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    this.connecting = undefined;
    clearInterval(this.pingTimer);
    this.challenge = undefined;
    this.authing = undefined;
    this._authedAs = undefined;
    for (const done of this.pendingAuth.values()) done(false);
    this.pendingAuth.clear();
    for (const p of this.pending.values()) p.sent = false;
    if (this._status === 'closed') return;
    if (this.o.reconnect === false) {
      // nothing will bring the connection back by itself: end what was waiting on it
      const [message, failure]: [string, PublishFailure] = wasOpen
        ? ['connection lost before OK', 'disconnected']
        : [`could not connect: ${this.lastError ?? 'closed'}`, 'unreachable'];
      for (const id of [...this.pending.keys()]) this.settle(id, this.result(false, message, failure));
      const subs = [...this.subs.values()];
      this.subs.clear();
      for (const sub of subs) sub.handlers.onClosed?.(wasOpen ? 'connection lost' : message);
    }
    if (this.o.reconnect === false || !this.needed()) {
      this.setStatus('idle');
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.o.reconnect);
    this.attempt++;
    this.setStatus('backoff', { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._status !== 'backoff') return;
      this._status = 'idle';
      if (this.needed()) this.connect().catch(() => {});
      else this.setStatus('idle');
    }, delayMs);
  }

  private send(msg: unknown[]): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(msg));
  }

  private flushPublishes(): void {
    if (this._status !== 'open') return;
    for (const p of this.pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      this.send(['EVENT', p.event]);
    }
  }

  private result(accepted: boolean, message: string, failure?: PublishFailure): PublishResult {
    return { relay: this.url, accepted, message, at: Date.now(), ...(failure ? { failure } : {}) };
  }

  private settle(id: string, r: PublishResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    for (const w of p.waiters) w(r);
  }

  // ---- inbound ----

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') return;
    switch (msg[0]) {
      case 'EVENT':
        this.onEvent(msg[1], msg[2]);
        break;
      case 'OK':
        this.onOk(msg[1], msg[2], msg[3]);
        break;
      case 'EOSE':
        this.onEose(msg[1]);
        break;
      case 'CLOSED':
        this.onClosed(msg[1], msg[2]);
        break;
      case 'NOTICE':
        if (typeof msg[1] === 'string') this.onNotice?.(msg[1], this.url);
        break;
      case 'AUTH':
        this.onAuthChallenge(msg[1]);
        break;
      default:
      // unknown message types (COUNT, NEG-*, …) are not ours to answer
    }
  }

  private onEvent(subId: unknown, raw: unknown): void {
    if (typeof subId !== 'string') return;
    const sub = this.subs.get(subId);
    if (!sub) return;
    const check = this.o.verifyEvents
      ? validateEvent(raw, this.o.eventLimits)
      : checkEvent(raw, this.o.eventLimits);
    // a relay may send anything: forged, malformed or unrequested events are dropped
    if (!check.ok || !matchFilters(sub.filters, check.event)) return;
    const e = check.event;
    if (sub.seen.has(e.id)) return;
    sub.seen.add(e.id);
    if (sub.seen.size > this.o.maxSeenIds) sub.seen.delete(sub.seen.values().next().value!);
    sub.handlers.onEvent(e);
  }

  private onOk(id: unknown, accepted: unknown, message: unknown): void {
    if (typeof id !== 'string' || !HEX32.test(id) || typeof accepted !== 'boolean') return;
    const text = typeof message === 'string' ? message : '';
    const authDone = this.pendingAuth.get(id);
    if (authDone) {
      this.pendingAuth.delete(id);
      authDone(accepted);
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    if (!accepted && text.startsWith('auth-required:') && this.authSigner && !p.authRetried) {
      p.authRetried = true;
      this.authenticate().then((ok) => {
        if (this.pending.get(id) !== p) return;
        if (ok) {
          p.sent = false;
          this.flushPublishes();
        } else {
          this.settle(id, this.result(false, text));
        }
      });
      return;
    }
    this.settle(id, this.result(accepted, text));
  }

  private onEose(subId: unknown): void {
    if (typeof subId !== 'string') return;
    const sub = this.subs.get(subId);
    if (!sub || sub.eosed) return;
    sub.eosed = true;
    sub.handlers.onEose?.();
  }

  private onClosed(subId: unknown, message: unknown): void {
    if (typeof subId !== 'string') return;
    const sub = this.subs.get(subId);
    if (!sub) return;
    const text = typeof message === 'string' ? message : '';
    if (text.startsWith('auth-required:') && this.authSigner && !sub.authRetried) {
      sub.authRetried = true;
      this.authenticate().then((ok) => {
        if (this.subs.get(subId) !== sub) return;
        if (ok) {
          this.send(['REQ', sub.id, ...sub.filters]);
        } else {
          this.subs.delete(subId);
          sub.handlers.onClosed?.(text);
        }
      });
      return;
    }
    this.subs.delete(subId);
    sub.handlers.onClosed?.(text);
  }

  private onAuthChallenge(challenge: unknown): void {
    if (typeof challenge !== 'string' || challenge.length === 0 || challenge.length > MAX_CHALLENGE_LENGTH)
      return;
    this.challenge = challenge;
    this.authing = undefined;
    this._authedAs = undefined;
    if (this.authSigner) this.authenticate().catch(() => {});
  }

  /** Answer the current challenge (once per challenge); true when the relay said OK. */
  private authenticate(): Promise<boolean> {
    if (!this.authSigner || this.challenge === undefined) return Promise.resolve(false);
    if (this.authing) return this.authing;
    const challenge = this.challenge;
    const signer = this.authSigner;
    const ws = this.ws;
    const run = async (): Promise<boolean> => {
      let signed: NostrEvent;
      try {
        signed = await signer(authTemplate(this.url, challenge));
      } catch {
        return false;
      }
      const check = validateEvent(signed, this.o.eventLimits);
      if (!check.ok || check.event.kind !== AUTH_KIND) return false;
      if (this.ws !== ws || this.challenge !== challenge) return false;
      const accepted = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.pendingAuth.delete(check.event.id);
          resolve(false);
        }, this.o.authTimeoutMs);
        this.pendingAuth.set(check.event.id, (ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
        this.send(['AUTH', check.event]);
      });
      if (accepted && this.ws === ws) this._authedAs = check.event.pubkey;
      return accepted;
    };
    const p = run();
    this.authing = p;
    // a refused or failed AUTH may be retried on the next challenge, not on this one
    return p;
  }
}
