/**
 * A small Nostr relay for tests and for `floe up` (DESIGN §9, §14): NIP-01 over `ws`, events
 * in memory, optional NIP-42 AUTH required mode, NIP-11 information document. Not a
 * production relay: no persistence, no rate limits beyond per-connection caps.
 *
 * Why our own rather than `@nostr-relay/core` (0.0.40, evaluated): that package is pre-1.0,
 * ships no in-memory repository (we would write the storage, replaceable and addressable
 * rules ourselves anyway), expects a separate validator (zod) before `handleMessage`, pulls in
 * rxjs and verifies signatures with its own pinned copy of noble's curves 1.x — a second curve
 * library outside Floe's backend seam (DESIGN §10). On `ws` the whole relay is a few hundred
 * lines that verify through `src/crypto`, reuse Floe's strict event and filter checks, and
 * behave the same on Node 20.
 *
 * Kinds (NIP-01): 20000–29999 are forwarded to live subscriptions and never stored;
 * 0, 3 and 10000–19999 keep the newest event per (pubkey, kind); 30000–39999 keep the newest
 * per (pubkey, kind, d tag); on equal `created_at` the lowest id wins.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { FloeError } from '../protocol/errors.js';
import {
  DEFAULT_EVENT_LIMITS,
  type EventLimits,
  kindClass,
  type NostrEvent,
  tagValue,
  validateEvent,
} from './event.js';
import { checkFilters, type Filter, matchFilter, matchFilters } from './filter.js';
import { AUTH_KIND, checkAuthEvent } from './nip42.js';

export interface RelayServerOptions {
  /** Interface to listen on. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** NIP-42: require an authenticated client for EVENT and REQ. Default false. */
  auth?: boolean;
  /** URLs this relay is reachable at besides the listening address (for AUTH `relay` tags). */
  publicUrls?: string[];
  /** Largest inbound WebSocket message. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Events kept in memory; the oldest stored are dropped first. Default 100 000. */
  maxEvents?: number;
  /** Live subscriptions per connection. Default 64. */
  maxSubscriptions?: number;
  /** Filters per REQ. Default 16. */
  maxFilters?: number;
  /** Most stored events one filter returns. Default 1000. */
  maxLimit?: number;
  eventLimits?: EventLimits;
  /** Structured log lines (connections, refusals); silent by default. */
  log?: (line: Record<string, unknown>) => void;
}

export interface RunningRelay {
  url: string;
  host: string;
  port: number;
  /** Counts for tests and health output. */
  stats(): { connections: number; subscriptions: number; events: number };
  close(): Promise<void>;
}

// a client that cannot keep up with its subscriptions is dropped instead of buffering forever
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const MAX_SUB_ID_LENGTH = 64;
const HEX32 = /^[0-9a-f]{64}$/;

/** What storing an event did. */
type StoreOutcome = 'stored' | 'duplicate' | 'superseded';

/** In-memory events with NIP-01 replaceable and addressable rules. */
export class MemoryEventStore {
  private readonly byId = new Map<string, NostrEvent>();
  private readonly latest = new Map<string, string>();

  constructor(private readonly maxEvents: number) {}

  get size(): number {
    return this.byId.size;
  }

  private static slot(e: NostrEvent): string | undefined {
    const c = kindClass(e.kind);
    if (c === 'replaceable') return `${e.kind}:${e.pubkey}`;
    if (c === 'addressable') return `${e.kind}:${e.pubkey}:${tagValue(e, 'd') ?? ''}`;
    return undefined;
  }

  add(e: NostrEvent): StoreOutcome {
    if (this.byId.has(e.id)) return 'duplicate';
    const slot = MemoryEventStore.slot(e);
    if (slot !== undefined) {
      const currentId = this.latest.get(slot);
      const current = currentId ? this.byId.get(currentId) : undefined;
      if (current) {
        const newer =
          e.created_at > current.created_at || (e.created_at === current.created_at && e.id < current.id);
        if (!newer) return 'superseded';
        this.byId.delete(current.id);
      }
      this.latest.set(slot, e.id);
    }
    this.byId.set(e.id, e);
    while (this.byId.size > this.maxEvents) {
      const oldest = this.byId.values().next().value!;
      this.byId.delete(oldest.id);
      const s = MemoryEventStore.slot(oldest);
      if (s !== undefined && this.latest.get(s) === oldest.id) this.latest.delete(s);
    }
    return 'stored';
  }

  /** Matching events, newest first (ties by lowest id), at most min(filter.limit, cap). */
  query(f: Filter, cap: number): NostrEvent[] {
    const limit = Math.min(f.limit ?? cap, cap);
    if (limit === 0) return [];
    const candidates = f.ids
      ? f.ids.map((id) => this.byId.get(id)).filter((e) => e !== undefined)
      : this.byId.values();
    const out: NostrEvent[] = [];
    for (const e of candidates) if (matchFilter(f, e)) out.push(e);
    out.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
    return out.slice(0, limit);
  }
}

interface Conn {
  ws: WebSocket;
  subs: Map<string, Filter[]>;
  challenge: string;
  authed: Set<string>;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Start a relay; resolves once it listens. */
export async function startRelay(opts: RelayServerOptions = {}): Promise<RunningRelay> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new FloeError('invalid_request', 'port: expected an integer from 0 to 65535');
  }
  const o = {
    auth: opts.auth ?? false,
    maxMessageBytes: opts.maxMessageBytes ?? 1024 * 1024,
    maxSubscriptions: opts.maxSubscriptions ?? 64,
    maxFilters: opts.maxFilters ?? 16,
    maxLimit: opts.maxLimit ?? 1000,
    eventLimits: opts.eventLimits ?? DEFAULT_EVENT_LIMITS,
  };
  const log = opts.log ?? (() => {});
  const store = new MemoryEventStore(opts.maxEvents ?? 100_000);
  const conns = new Set<Conn>();
  let url = '';
  let relayUrls: string[] = [];

  const info = {
    name: 'floe-relay',
    description: 'Floe local relay (in memory, for tests and floe up)',
    software: 'floe',
    supported_nips: o.auth ? [1, 11, 42] : [1, 11],
    limitation: {
      max_message_length: o.maxMessageBytes,
      max_subscriptions: o.maxSubscriptions,
      max_filters: o.maxFilters,
      max_limit: o.maxLimit,
      max_subid_length: MAX_SUB_ID_LENGTH,
      max_content_length: o.eventLimits.maxContentBytes,
      max_event_tags: o.eventLimits.maxTags,
      auth_required: o.auth,
    },
  };

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    // NIP-11: the relay information document, for clients that ask for it
    if (req.method === 'GET' && (req.headers.accept ?? '').includes('application/nostr+json')) {
      res.writeHead(200, { 'content-type': 'application/nostr+json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify(info));
      return;
    }
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('floe relay: connect with a WebSocket\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: o.maxMessageBytes, perMessageDeflate: false });

  const send = (c: Conn, msg: unknown[]) => {
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (c.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      log({ event: 'relay_client_dropped', reason: 'slow consumer' });
      c.ws.terminate();
      return;
    }
    c.ws.send(JSON.stringify(msg));
  };

  const broadcast = (e: NostrEvent) => {
    for (const c of conns) {
      for (const [subId, filters] of c.subs) if (matchFilters(filters, e)) send(c, ['EVENT', subId, e]);
    }
  };

  // OK needs the event id; without a well-formed one the refusal goes out as a NOTICE
  const refuse = (c: Conn, raw: unknown, detail: string) => {
    const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    if (typeof id === 'string' && HEX32.test(id)) send(c, ['OK', id, false, `invalid: ${detail}`]);
    else send(c, ['NOTICE', `invalid: ${detail}`]);
  };

  const mayAct = (c: Conn) => !o.auth || c.authed.size > 0;

  const onEvent = (c: Conn, raw: unknown) => {
    const check = validateEvent(raw, o.eventLimits);
    if (!check.ok) {
      refuse(c, raw, check.detail);
      return;
    }
    const e = check.event;
    if (e.kind === AUTH_KIND) {
      send(c, ['OK', e.id, false, 'invalid: auth events are sent with AUTH, not EVENT']);
      return;
    }
    if (!mayAct(c)) {
      send(c, ['OK', e.id, false, 'auth-required: this relay accepts events from authenticated clients']);
      return;
    }
    if (kindClass(e.kind) === 'ephemeral') {
      send(c, ['OK', e.id, true, '']);
      broadcast(e);
      return;
    }
    const outcome = store.add(e);
    if (outcome === 'duplicate') send(c, ['OK', e.id, true, 'duplicate: already have this event']);
    else if (outcome === 'superseded') send(c, ['OK', e.id, true, 'duplicate: a newer version is stored']);
    else {
      send(c, ['OK', e.id, true, '']);
      broadcast(e);
    }
  };

  const onReq = (c: Conn, subId: unknown, rawFilters: unknown[]) => {
    if (typeof subId !== 'string' || subId.length === 0 || subId.length > MAX_SUB_ID_LENGTH) {
      send(c, ['NOTICE', `invalid: REQ subscription id must be 1 to ${MAX_SUB_ID_LENGTH} characters`]);
      return;
    }
    if (!mayAct(c)) {
      send(c, ['CLOSED', subId, 'auth-required: this relay serves authenticated clients']);
      return;
    }
    let filters: Filter[];
    try {
      filters = checkFilters(rawFilters, o.maxFilters);
    } catch (err) {
      send(c, ['CLOSED', subId, `invalid: ${err instanceof FloeError ? err.message : 'bad filter'}`]);
      return;
    }
    if (!c.subs.has(subId) && c.subs.size >= o.maxSubscriptions) {
      send(c, ['CLOSED', subId, `error: at most ${o.maxSubscriptions} subscriptions per connection`]);
      return;
    }
    c.subs.set(subId, filters);
    const sent = new Set<string>();
    for (const f of filters) {
      for (const e of store.query(f, o.maxLimit)) {
        if (sent.has(e.id)) continue;
        sent.add(e.id);
        send(c, ['EVENT', subId, e]);
      }
    }
    send(c, ['EOSE', subId]);
  };

  const onAuth = (c: Conn, raw: unknown) => {
    const check = validateEvent(raw, o.eventLimits);
    if (!check.ok) {
      refuse(c, raw, check.detail);
      return;
    }
    if (!o.auth) {
      send(c, ['OK', check.event.id, false, 'invalid: this relay does not use AUTH']);
      return;
    }
    const r = checkAuthEvent(check.event, { challenge: c.challenge, relayUrls });
    if (!r.ok) {
      log({ event: 'relay_auth_refused', reason: r.reason });
      send(c, ['OK', check.event.id, false, `invalid: ${r.detail}`]);
      return;
    }
    c.authed.add(r.pubkey);
    send(c, ['OK', check.event.id, true, '']);
  };

  wss.on('connection', (ws) => {
    const c: Conn = { ws, subs: new Map(), challenge: randomBytes(16).toString('hex'), authed: new Set() };
    conns.add(c);
    ws.on('close', () => conns.delete(c));
    ws.on('error', () => ws.terminate());
    if (o.auth) send(c, ['AUTH', c.challenge]);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        send(c, ['NOTICE', 'invalid: binary messages are not supported']);
        return;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        send(c, ['NOTICE', 'invalid: message is not JSON']);
        return;
      }
      if (!Array.isArray(msg) || typeof msg[0] !== 'string') {
        send(c, ['NOTICE', 'invalid: message must be a JSON array starting with its type']);
        return;
      }
      switch (msg[0]) {
        case 'EVENT':
          onEvent(c, msg[1]);
          break;
        case 'REQ':
          onReq(c, msg[1], msg.slice(2));
          break;
        case 'CLOSE':
          if (typeof msg[1] === 'string') c.subs.delete(msg[1]);
          break;
        case 'AUTH':
          onAuth(c, msg[1]);
          break;
        default:
          send(c, ['NOTICE', `unsupported: message type ${JSON.stringify(msg[0].slice(0, 16))}`]);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address() as AddressInfo;
  url = `ws://${hostForUrl(host)}:${addr.port}`;
  relayUrls = [
    url,
    `ws://localhost:${addr.port}`,
    `ws://127.0.0.1:${addr.port}`,
    `ws://[::1]:${addr.port}`,
    ...(opts.publicUrls ?? []),
  ];
  log({ event: 'relay_listening', url });

  let closing: Promise<void> | undefined;
  return {
    url,
    host,
    port: addr.port,
    stats: () => ({
      connections: conns.size,
      subscriptions: [...conns].reduce((n, c) => n + c.subs.size, 0),
      events: store.size,
    }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const c of conns) c.ws.terminate();
        wss.close(() => http.close(() => resolve()));
        http.closeAllConnections();
      });
      return closing;
    },
  };
}
