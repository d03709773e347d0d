/**
 * A NIP-46 remote signer ("bunker") for one user key (DESIGN §14). The bunker has its own
 * transport keypair (the remote-signer key, never the user key); signing and ECDH with the
 * user key go through a `BunkerBackend`, which in Floe runs FROST sessions and threshold ECDH
 * on the signers, so no process here holds the user's secret.
 *
 * What it does with a kind-24133 request p-tagged to its remote-signer pubkey, in order:
 * drop duplicates, stale events and floods (token bucket per client pubkey); decrypt (NIP-44,
 * or NIP-04 when the content has NIP-04's form, and answer in the same scheme); parse
 * strictly; `connect` with a single-use, expiring secret makes the sender a known client with
 * that secret's permissions; every other method needs a known client, and the methods that use
 * the user key need a permission (`sign_event:<kind>`, `nip44_encrypt`, …; a bare `sign_event`
 * never covers NIP-98 kind 27235). A policy may hold a request for an operator: the client gets
 * `result: "auth_url"` at once and the real answer under the same id after `approve`/`deny`.
 * Every refusal is an error answer `"<code>: <sentence>"` and changes nothing.
 *
 * Persistence is the caller's: clients and secrets live in a `BunkerStore`. Audit events go to
 * `onEvent` and never carry secrets, plaintexts or event contents.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cryptoBackend } from '../crypto/backend.js';
import { type NodeIdentity, softwareIdentity } from '../crypto/identity.js';
import { type ErrorCode, FloeError, toProblem } from '../protocol/errors.js';
import { type EventTemplate, type NostrEvent, nowSeconds, serializeEvent, validateEvent } from './event.js';
import * as nip04 from './nip04.js';
import * as nip44 from './nip44.js';
import {
  authUrlResponse,
  checkPermission,
  DEFAULT_NIP46_LIMITS,
  decryptContent,
  detectEncryption,
  EXPLICIT_ONLY_KINDS,
  encryptContent,
  errorResponse,
  formatPermission,
  GATED_METHODS,
  intersectPermissions,
  isHexPubkey,
  NIP46_KIND,
  type Nip46Encryption,
  type Nip46Limits,
  type Nip46Method,
  type Nip46Request,
  type Nip46Response,
  nip46Template,
  type Permission,
  parseNostrConnectUri,
  parsePermissionsLenient,
  parseRequest,
  parseSignEventParam,
  resultResponse,
  serializeResponse,
  toBunkerUrl,
  validatePermission,
} from './nip46.js';
import { signTemplate } from './nip59.js';
import { type PoolOptions, RelayPool } from './pool.js';
import type { PublishResult, Subscription } from './relay.js';
import { normalizeRelayUrl } from './url.js';

// ---------------------------------------------------------------------------------------
// the seams: backend (user key) and store (clients, secrets)

/** The user key, used without being held: threshold signing and threshold ECDH in Floe. */
export interface BunkerBackend {
  /** The user key's x-only pubkey (hex). */
  userPubkey(): string;
  /** Sign an event template with the user key (a FROST session in Floe); returns the signed event. */
  signEvent(template: EventTemplate, client: string): Promise<NostrEvent>;
  /** x coordinate of ECDH(user key, peer) (threshold ECDH in Floe). */
  ecdh(peerXOnly: string, client: string): Promise<Uint8Array>;
}

/** How a client became known: it redeemed a bunker secret, or the operator scanned its nostrconnect URI. */
export type ClientVia = 'bunker' | 'nostrconnect';

/** A client the bunker answers: its transport pubkey and what it may do. */
export interface BunkerClient {
  /** The client's (local keypair) pubkey, hex. */
  pubkey: string;
  permissions: Permission[];
  via: ClientVia;
  /** Unix seconds of the connect. */
  connectedAt: number;
  /** Relays of its nostrconnect URI (the bunker listens and answers there too); [] for bunker clients. */
  relays: string[];
  /** Self-declared metadata (shown to the operator, never trusted). */
  name?: string;
  url?: string;
  image?: string;
}

/** A connect token as stored: only its hash, so a leaked table grants nothing. */
export interface BunkerSecretRecord {
  /** Lower-case hex SHA-256 of the UTF-8 secret. */
  hash: string;
  /** What a client redeeming it gets (narrowed by what it asks for in `connect`). */
  permissions: Permission[];
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds; a secret is refused from this instant on. */
  expiresAt: number;
  /** Operator's note (for example who it was issued to). */
  label?: string;
}

/**
 * Persistence of one bunker's clients and secrets (one user key; the caller scopes it). The
 * bunker reads a client on every request, so a revoke written by another process takes
 * effect at once. Every method may reject; the bunker then answers `internal` and changes
 * nothing else.
 *
 * Postgres shape: `bunker_clients(key_id, pubkey, permissions jsonb, via, connected_at,
 * relays jsonb, name, url, image, primary key (key_id, pubkey))` and `bunker_secrets(key_id,
 * hash, permissions jsonb, created_at, expires_at, label, used_at, used_by, primary key
 * (key_id, hash))`.
 */
export interface BunkerStore {
  /** Every known client (read at start, to listen on nostrconnect clients' relays). */
  listClients(): Promise<BunkerClient[]>;
  /** One client, or undefined when unknown (never connected, logged out or revoked). */
  getClient(pubkey: string): Promise<BunkerClient | undefined>;
  /** Insert or replace the client with this pubkey. */
  saveClient(client: BunkerClient): Promise<void>;
  /** Remove a client; true when it existed. */
  deleteClient(pubkey: string): Promise<boolean>;
  /** Store a new secret (the hash is unique). */
  addSecret(record: BunkerSecretRecord): Promise<void>;
  /**
   * Atomically redeem a secret: when an unused secret with this hash exists and `now <
   * expiresAt`, mark it used by `client` and return it; otherwise return undefined. Two
   * concurrent calls with one hash must not both succeed. In SQL: `UPDATE bunker_secrets SET
   * used_at = now(), used_by = $client WHERE key_id = $k AND hash = $h AND used_at IS NULL
   * AND expires_at > $now RETURNING *`.
   */
  consumeSecret(hash: string, now: number, client: string): Promise<BunkerSecretRecord | undefined>;
}

/** A `BunkerStore` in memory, for tests and `floe up`. */
export class MemoryBunkerStore implements BunkerStore {
  private readonly clientsByKey = new Map<string, BunkerClient>();
  private readonly secrets = new Map<string, BunkerSecretRecord & { usedBy?: string }>();

  async listClients(): Promise<BunkerClient[]> {
    return [...this.clientsByKey.values()].map((c) => structuredClone(c));
  }

  async getClient(pubkey: string): Promise<BunkerClient | undefined> {
    const c = this.clientsByKey.get(pubkey);
    return c ? structuredClone(c) : undefined;
  }

  async saveClient(client: BunkerClient): Promise<void> {
    this.clientsByKey.set(client.pubkey, structuredClone(client));
  }

  async deleteClient(pubkey: string): Promise<boolean> {
    return this.clientsByKey.delete(pubkey);
  }

  async addSecret(record: BunkerSecretRecord): Promise<void> {
    if (this.secrets.has(record.hash)) throw new FloeError('conflict', 'secret: already exists');
    this.secrets.set(record.hash, structuredClone(record));
  }

  async consumeSecret(hash: string, now: number, client: string): Promise<BunkerSecretRecord | undefined> {
    // synchronous between lookup and mark: atomic on one event loop
    const r = this.secrets.get(hash);
    if (!r || r.usedBy !== undefined || now >= r.expiresAt) return undefined;
    r.usedBy = client;
    const { usedBy: _u, ...record } = r;
    return structuredClone(record);
  }
}

/** SHA-256 (hex) under which a secret is stored. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------
// audit events

export type BunkerAuditEvent =
  | {
      type: 'request';
      client: string;
      requestId: string;
      method: Nip46Method;
      encryption: Nip46Encryption;
      /** For sign_event, once the template parsed. */
      kind?: number;
    }
  | {
      type: 'answered';
      client: string;
      requestId: string;
      method?: Nip46Method;
      kind?: number;
      ok: boolean;
      /** The refusal's code (error answers only). */
      code?: ErrorCode;
      ms: number;
    }
  | {
      type: 'dropped';
      client: string;
      /** Why no answer was sent. */
      reason: 'duplicate' | 'stale' | 'flood' | 'bad_pubkey';
    }
  | { type: 'client_connected'; client: string; via: ClientVia; permissions: string[]; ignored?: string[] }
  | { type: 'client_removed'; client: string; reason: 'logout' | 'revoked' }
  | { type: 'client_updated'; client: string; permissions: string[] }
  | { type: 'secret_issued'; permissions: string[]; expiresAt: number; label?: string }
  | {
      type: 'approval_requested';
      approvalId: string;
      client: string;
      requestId: string;
      method: Nip46Method;
      kind?: number;
    }
  | {
      type: 'approval_resolved';
      approvalId: string;
      client: string;
      outcome: 'approved' | 'denied' | 'expired';
    }
  | { type: 'relays_changed'; relays: string[] }
  | { type: 'subscription_closed'; relay: string; reason: string }
  | {
      type: 'answer_unpublished';
      client: string;
      requestId: string;
      results: { relay: string; message: string }[];
    };

// ---------------------------------------------------------------------------------------
// options

/** What a policy sees when deciding whether a request needs an operator. */
export interface ApprovalContext {
  client: BunkerClient;
  method: Nip46Method;
  /** For sign_event. */
  kind?: number;
  /** For sign_event: the template to be signed (to show the operator what is signed). */
  template?: EventTemplate;
  /** For nip04/nip44 methods: the third party. */
  peer?: string;
}

/** A request held for an operator. */
export interface PendingApproval {
  approvalId: string;
  client: string;
  requestId: string;
  method: Nip46Method;
  kind?: number;
  /** Unix ms. */
  createdAt: number;
  /** Unix ms; after it the request is refused. */
  expiresAt: number;
}

export interface RateLimit {
  /** Burst: requests a client may send at once. */
  capacity: number;
  /** Sustained rate. */
  refillPerSecond: number;
}

export interface BunkerOptions {
  backend: BunkerBackend;
  /** The remote-signer key: a 32-byte secret (copied; the caller keeps it encrypted at rest) or an identity. */
  signer: Uint8Array | NodeIdentity;
  /** Relays the bunker listens and answers on (the `relay` params of its bunker:// URL). */
  relays: string[];
  store: BunkerStore;
  /** A pool to use (the caller closes it); otherwise the bunker makes one with `poolOptions`. */
  pool?: RelayPool;
  poolOptions?: PoolOptions;
  /** Token bucket per client pubkey. Default 20 at once, 2 per second. */
  rateLimit?: RateLimit;
  /**
   * One bucket for all requests together, so fresh pubkeys (each with a full bucket of its
   * own) cannot flood the bunker. Default 200 at once, 50 per second.
   */
  globalRateLimit?: RateLimit;
  /** Requests of one client being worked on or awaiting approval. Default 8. */
  maxInFlightPerClient?: number;
  /** Requests awaiting approval, all clients together. Default 256. */
  maxPendingApprovals?: number;
  /** Marks requests that need an operator's approval (after the permission check). */
  needsApproval?: (ctx: ApprovalContext) => boolean;
  /** The page where the operator (or user) approves `approvalId`; required with `needsApproval`. */
  authUrl?: (approvalId: string, ctx: ApprovalContext) => string;
  /**
   * Records a held request where the page of its auth_url reads it; awaited before the client
   * is sent the auth_url, so the URL never names a request not recorded yet. If it throws, the
   * request is refused (`internal`) and nothing is held.
   */
  holdRequest?: (held: PendingApproval) => Promise<void>;
  /** How long a request waits for approval. Default 5 minutes. */
  approvalTimeoutMs?: number;
  /** Methods every known client may call without a permission. Default ping, get_public_key, switch_relays, logout. */
  alwaysAllowed?: readonly Nip46Method[];
  /** Kinds only `sign_event:<kind>` grants. Default [27235] (NIP-98). */
  explicitOnlyKinds?: readonly number[];
  /** Lifetime of secrets from `issueSecret` unless given. Default 15 minutes. */
  secretTtlSeconds?: number;
  /** Requests whose created_at is further than this from now are dropped. Default 600 s. */
  maxRequestAgeSeconds?: number;
  limits?: Partial<Nip46Limits>;
  /** How long `start` waits for the relays to hold its subscription (see `listening`). Default 5 s. */
  startTimeoutMs?: number;
  /** Audit sink; must not throw (exceptions are swallowed). */
  onEvent?: (e: BunkerAuditEvent) => void;
}

export const DEFAULT_ALWAYS_ALLOWED: readonly Nip46Method[] = Object.freeze([
  'ping',
  'get_public_key',
  'switch_relays',
  'logout',
]);
export const DEFAULT_RATE_LIMIT: Readonly<RateLimit> = Object.freeze({ capacity: 20, refillPerSecond: 2 });
export const DEFAULT_GLOBAL_RATE_LIMIT: Readonly<RateLimit> = Object.freeze({
  capacity: 200,
  refillPerSecond: 50,
});

function checkRate(r: RateLimit, what: string): RateLimit {
  if (!(r.capacity >= 1) || !(r.refillPerSecond >= 0)) {
    throw new FloeError('invalid_request', `${what}: capacity >= 1 and refillPerSecond >= 0 expected`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// token buckets

type Take = 'ok' | 'refuse' | 'drop';

/**
 * Token bucket per key. Past the bucket, as many requests again are refused with an answer
 * (so a client learns it is limited); beyond that they are dropped unanswered, bounding the
 * work a flood can cause. At most `maxKeys` buckets are kept (least recently used go first).
 */
class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = 10_000,
  ) {}

  take(key: string, nowMs = Date.now()): Take {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else b = { tokens: this.limit.capacity, at: nowMs };
    b.tokens = Math.min(this.limit.capacity, b.tokens + ((nowMs - b.at) / 1000) * this.limit.refillPerSecond);
    b.at = nowMs;
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'ok';
    }
    if (b.tokens > -this.limit.capacity) {
      b.tokens -= 1;
      return 'refuse';
    }
    return 'drop';
  }
}

const SEVERITY: Record<Take, number> = { ok: 0, refuse: 1, drop: 2 };

function worst(a: Take, b: Take): Take {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

// ---------------------------------------------------------------------------------------
// the bunker

interface RequestContext {
  client: string;
  requestId: string;
  scheme: Nip46Encryption;
  /** Where the request arrived: always among the relays the answer goes to. */
  relay: string;
  method?: Nip46Method;
  kind?: number;
  started: number;
}

interface ApprovalState extends PendingApproval {
  settle(outcome: 'approved' | 'denied' | 'expired'): void;
  timer: NodeJS.Timeout;
}

const MAX_SEEN_EVENTS = 10_000;
/** Largest answer; relays refuse much more than this anyway. */
const MAX_ANSWER_BYTES = 512 * 1024;
/** Delay before listening again on a relay that ended the bunker's subscription. */
const RESUBSCRIBE_MS = 5000;
const MAX_META_LENGTH = 2048;

function unique(xs: Iterable<string>): string[] {
  return [...new Set(xs)];
}

function normalizeRelays(relays: readonly string[], what: string): string[] {
  if (!Array.isArray(relays) || relays.length === 0 || relays.length > 16) {
    throw new FloeError('invalid_request', `${what}: expected 1 to 16 relay URLs`);
  }
  return unique(relays.map(normalizeRelayUrl));
}

function copyPermissions(ps: readonly Permission[], what: string): Permission[] {
  if (!Array.isArray(ps) || ps.length > 256) {
    throw new FloeError('invalid_request', `${what}: expected at most 256 permissions`);
  }
  return ps.map(validatePermission);
}

/** nostr-tools' 4th connect param: `{"name","url","image"}`; anything odd is ignored. */
function connectMetadata(raw: string | undefined): Pick<BunkerClient, 'name' | 'url' | 'image'> {
  if (!raw || raw.length > MAX_META_LENGTH) return {};
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch {
    return {};
  }
  if (typeof o !== 'object' || o === null) return {};
  const m = o as Record<string, unknown>;
  const out: Pick<BunkerClient, 'name' | 'url' | 'image'> = {};
  if (typeof m.name === 'string' && m.name !== '' && m.name.length <= 256) out.name = m.name;
  for (const k of ['url', 'image'] as const) {
    const v = m[k];
    if (typeof v === 'string' && /^https?:\/\//.test(v) && v.length <= 2048) out[k] = v;
  }
  return out;
}

/** A running bunker. Create with `Bunker.start`. */
export class Bunker {
  /** The remote-signer pubkey (hex): the host of the bunker:// URL. */
  readonly signerPubkey: string;
  private readonly identity: NodeIdentity;
  private readonly ownIdentity: (NodeIdentity & { dispose(): void }) | undefined;
  private readonly pool: RelayPool;
  private readonly ownPool: boolean;
  private readonly o: {
    maxInFlight: number;
    maxPendingApprovals: number;
    approvalTimeoutMs: number;
    alwaysAllowed: readonly Nip46Method[];
    explicitOnlyKinds: readonly number[];
    secretTtlSeconds: number;
    maxRequestAgeSeconds: number;
    limits: Nip46Limits;
  };
  private relayList: string[];
  /** Relays of nostrconnect clients, by client pubkey. */
  private readonly clientRelays = new Map<string, string[]>();
  private readonly subs = new Map<string, { sub: Subscription; ready: Promise<void> }>();
  private readonly seen = new Set<string>();
  private readonly buckets: TokenBuckets;
  private readonly globalBucket: TokenBuckets;
  private readonly inFlight = new Map<string, number>();
  private readonly approvals = new Map<string, ApprovalState>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly work = new Set<Promise<void>>();
  private closed = false;
  private resubscribeTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly opts: BunkerOptions) {
    if (opts.needsApproval && !opts.authUrl) {
      throw new FloeError('invalid_request', 'authUrl: required when needsApproval is given');
    }
    const userPk = opts.backend.userPubkey();
    if (!isHexPubkey(userPk)) {
      throw new FloeError('invalid_request', 'backend.userPubkey: expected a hex pubkey');
    }
    this.relayList = normalizeRelays(opts.relays, 'relays');
    const rate = checkRate(opts.rateLimit ?? DEFAULT_RATE_LIMIT, 'rateLimit');
    const globalRate = checkRate(opts.globalRateLimit ?? DEFAULT_GLOBAL_RATE_LIMIT, 'globalRateLimit');
    this.buckets = new TokenBuckets(rate);
    this.globalBucket = new TokenBuckets(globalRate, 1);
    if (opts.signer instanceof Uint8Array) {
      this.ownIdentity = softwareIdentity(opts.signer);
      this.identity = this.ownIdentity;
    } else {
      this.identity = opts.signer;
    }
    this.signerPubkey = this.identity.publicKeyHex;
    if (userPk === this.signerPubkey) {
      this.ownIdentity?.dispose();
      // NIP-46 allows it, Floe does not (nips#1300): the transport key must not be the user key
      throw new FloeError('invalid_request', 'signer: the remote-signer key must differ from the user key');
    }
    const identity = this.identity;
    this.pool =
      opts.pool ??
      new RelayPool({
        // NIP-42: relays that want AUTH get it from the remote-signer key
        authSigner: async (t) => signTemplate(t, identity),
        ...opts.poolOptions,
      });
    this.ownPool = !opts.pool;
    this.o = {
      maxInFlight: opts.maxInFlightPerClient ?? 8,
      maxPendingApprovals: opts.maxPendingApprovals ?? 256,
      approvalTimeoutMs: opts.approvalTimeoutMs ?? 5 * 60_000,
      alwaysAllowed: opts.alwaysAllowed ?? DEFAULT_ALWAYS_ALLOWED,
      explicitOnlyKinds: opts.explicitOnlyKinds ?? EXPLICIT_ONLY_KINDS,
      secretTtlSeconds: opts.secretTtlSeconds ?? 15 * 60,
      maxRequestAgeSeconds: opts.maxRequestAgeSeconds ?? 600,
      limits: { ...DEFAULT_NIP46_LIMITS, ...opts.limits },
    };
  }

  /** Load the known clients and listen on the relays; resolves once they hold the subscription (or after `startTimeoutMs`). */
  static async start(opts: BunkerOptions): Promise<Bunker> {
    const b = new Bunker(opts);
    try {
      for (const c of await opts.store.listClients()) {
        if (c.via === 'nostrconnect' && c.relays.length > 0) b.clientRelays.set(c.pubkey, c.relays);
      }
      b.syncSubscriptions();
      await b.listening(opts.startTimeoutMs ?? 5000);
    } catch (e) {
      await b.close();
      throw e;
    }
    return b;
  }

  /** The relays the bunker announces (what `switch_relays` answers). */
  relays(): string[] {
    return [...this.relayList];
  }

  /** `bunker://<signer-pubkey>?relay=…[&secret=…]`. */
  bunkerUrl(secret: string | null = null): string {
    return toBunkerUrl({ pubkey: this.signerPubkey, relays: this.relayList, secret });
  }

  /**
   * Change the relays at run time: listen on the new set at once and stop listening on relays
   * no longer needed; resolves once the new relays hold the subscription (bounded, see
   * `listening`). Clients learn the new set through `switch_relays`.
   */
  async setRelays(relays: string[]): Promise<void> {
    this.assertOpen();
    this.relayList = normalizeRelays(relays, 'relays');
    this.syncSubscriptions();
    this.emit({ type: 'relays_changed', relays: this.relays() });
    await this.listening(5000, this.relayList);
  }

  /**
   * Issue a single-use connect secret granting `permissions`; returns it once (only its hash
   * is stored) with the bunker:// URL that carries it.
   */
  async issueSecret(opts: {
    permissions: readonly Permission[];
    ttlSeconds?: number;
    label?: string;
  }): Promise<{ secret: string; url: string; expiresAt: number }> {
    this.assertOpen();
    const ttl = opts.ttlSeconds ?? this.o.secretTtlSeconds;
    if (!Number.isSafeInteger(ttl) || ttl < 1) {
      throw new FloeError('invalid_request', 'ttlSeconds: expected a positive integer');
    }
    const secret = randomBytes(16).toString('hex');
    const now = nowSeconds();
    const record: BunkerSecretRecord = {
      hash: secretHash(secret),
      permissions: copyPermissions(opts.permissions, 'permissions'),
      createdAt: now,
      expiresAt: now + ttl,
    };
    if (opts.label !== undefined) record.label = opts.label;
    await this.opts.store.addSecret(record);
    this.emit({
      type: 'secret_issued',
      permissions: record.permissions.map(formatPermission),
      expiresAt: record.expiresAt,
      ...(opts.label !== undefined ? { label: opts.label } : {}),
    });
    return { secret, url: this.bunkerUrl(secret), expiresAt: record.expiresAt };
  }

  /**
   * The nostrconnect:// flow: the operator hands the bunker a client's URI. The client becomes
   * known with the permissions it asked for that `allow` covers (all of `allow` when it asked
   * for none), the bunker listens on the URI's relays, and sends there the `connect` answer
   * whose result is the URI's secret. Fails (and forgets the client) when no relay took it.
   */
  async connectTo(
    uri: string,
    allow: readonly Permission[],
  ): Promise<{ client: BunkerClient; ignored: string[]; results: PublishResult[] }> {
    this.assertOpen();
    const p = parseNostrConnectUri(uri);
    if (p.clientPubkey === this.signerPubkey || p.clientPubkey === this.opts.backend.userPubkey()) {
      throw new FloeError('invalid_request', "nostrconnect uri: the client key is one of this bunker's keys");
    }
    const allowed = copyPermissions(allow, 'allow');
    const { permissions: requested, ignored } = parsePermissionsLenient(p.perms);
    const permissions =
      p.perms.length === 0 ? allowed : intersectPermissions(requested, allowed, this.o.explicitOnlyKinds);
    const client: BunkerClient = {
      pubkey: p.clientPubkey,
      permissions,
      via: 'nostrconnect',
      connectedAt: nowSeconds(),
      relays: p.relays,
    };
    if (p.name !== undefined) client.name = p.name;
    if (p.url !== undefined) client.url = p.url;
    if (p.image !== undefined) client.image = p.image;
    return this.serialize(client.pubkey, async () => {
      await this.opts.store.saveClient(client);
      // listen before answering: the client's next request (switch_relays) follows at once
      this.clientRelays.set(client.pubkey, client.relays);
      this.syncSubscriptions();
      await this.listening(5000, client.relays);
      const response = resultResponse(randomBytes(8).toString('hex'), p.secret);
      const results = await this.publishResponse(client.pubkey, response, 'nip44', client.relays);
      if (!results.some((r) => r.accepted)) {
        await this.opts.store.deleteClient(client.pubkey);
        this.clientRelays.delete(client.pubkey);
        this.syncSubscriptions();
        throw new FloeError('unavailable', 'nostrconnect: no relay of the URI accepted the connect answer');
      }
      this.emit({
        type: 'client_connected',
        client: client.pubkey,
        via: 'nostrconnect',
        permissions: permissions.map(formatPermission),
        ...(ignored.length ? { ignored } : {}),
      });
      return { client, ignored, results };
    });
  }

  /** Every known client. */
  clients(): Promise<BunkerClient[]> {
    return this.opts.store.listClients();
  }

  /** End a client (operator action); its pending approvals are denied. True when it existed. */
  async revoke(client: string): Promise<boolean> {
    const existed = await this.serialize(client, () => this.removeClient(client, 'revoked'));
    return existed;
  }

  /** Replace a client's permissions (operator action). */
  async setPermissions(client: string, permissions: readonly Permission[]): Promise<void> {
    await this.serialize(client, async () => {
      const c = await this.opts.store.getClient(client);
      if (!c) throw new FloeError('not_found', 'client: not known to this bunker');
      c.permissions = copyPermissions(permissions, 'permissions');
      await this.opts.store.saveClient(c);
      this.emit({ type: 'client_updated', client, permissions: c.permissions.map(formatPermission) });
    });
  }

  /** Requests waiting for an operator. */
  pendingApprovals(): PendingApproval[] {
    return [...this.approvals.values()].map((a) => {
      const v: PendingApproval = {
        approvalId: a.approvalId,
        client: a.client,
        requestId: a.requestId,
        method: a.method,
        createdAt: a.createdAt,
        expiresAt: a.expiresAt,
      };
      if (a.kind !== undefined) v.kind = a.kind;
      return v;
    });
  }

  /** Let a held request proceed; its answer goes out under the request's id. False if unknown. */
  approve(approvalId: string): boolean {
    const a = this.approvals.get(approvalId);
    if (!a) return false;
    a.settle('approved');
    return true;
  }

  /** Refuse a held request (`approval_rejected`). False if unknown. */
  deny(approvalId: string): boolean {
    const a = this.approvals.get(approvalId);
    if (!a) return false;
    a.settle('denied');
    return true;
  }

  /** Stop listening, refuse held requests, wait for requests in progress, release the keys. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resubscribeTimer);
    for (const s of this.subs.values()) s.sub.close();
    this.subs.clear();
    for (const a of [...this.approvals.values()]) a.settle('expired');
    await Promise.allSettled([...this.work]);
    if (this.ownPool) this.pool.close();
    this.ownIdentity?.dispose();
  }

  // ---- relays ----

  private assertOpen(): void {
    if (this.closed) throw new FloeError('unavailable', 'bunker is closed');
  }

  private listenSet(): Set<string> {
    const s = new Set(this.relayList);
    for (const rs of this.clientRelays.values()) for (const r of rs) s.add(r);
    return s;
  }

  private syncSubscriptions(): void {
    if (this.closed) return;
    const want = this.listenSet();
    for (const [url, s] of this.subs) {
      if (!want.has(url)) {
        s.sub.close();
        this.subs.delete(url);
      }
    }
    const since = nowSeconds() - this.o.maxRequestAgeSeconds;
    for (const url of want) {
      if (this.subs.has(url)) continue;
      let done!: () => void;
      const ready = new Promise<void>((resolve) => {
        done = resolve;
      });
      const entry = {
        ready,
        sub: this.pool.relay(url).subscribe([{ kinds: [NIP46_KIND], '#p': [this.signerPubkey], since }], {
          onEvent: (e) => this.track(this.onRequestEvent(e, url)),
          onEose: done,
          onClosed: (reason) => {
            done();
            // the relay (or a lost connection with reconnecting off) ended it: try again later
            if (this.subs.get(url) === entry) this.subs.delete(url);
            this.emit({ type: 'subscription_closed', relay: url, reason: reason.slice(0, 200) });
            if (!this.closed && !this.resubscribeTimer) {
              this.resubscribeTimer = setTimeout(() => {
                this.resubscribeTimer = undefined;
                this.syncSubscriptions();
              }, RESUBSCRIBE_MS);
              this.resubscribeTimer.unref();
            }
          },
        }),
      };
      this.subs.set(url, entry);
    }
  }

  /**
   * Resolves once the relays in `urls` (default: every relay listened on) have answered the
   * bunker's subscription (EOSE), or after `timeoutMs`: requests are ephemeral, so one sent
   * before the relay holds the subscription is lost. Never rejects; relays that are down keep
   * being retried in the background.
   */
  async listening(timeoutMs = 5000, urls?: readonly string[]): Promise<boolean> {
    const subs = urls
      ? urls.map((u) => this.subs.get(normalizeRelayUrl(u))).filter((s) => s !== undefined)
      : [...this.subs.values()];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(subs.map((s) => s.ready)).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private track(p: Promise<void>): void {
    this.work.add(p);
    p.finally(() => this.work.delete(p)).catch(() => {});
  }

  // ---- requests ----

  private async onRequestEvent(e: NostrEvent, relay: string): Promise<void> {
    if (this.closed || e.kind !== NIP46_KIND || e.pubkey === this.signerPubkey) return;
    if (this.seen.has(e.id)) {
      this.emit({ type: 'dropped', client: e.pubkey, reason: 'duplicate' });
      return;
    }
    this.seen.add(e.id);
    if (this.seen.size > MAX_SEEN_EVENTS) this.seen.delete(this.seen.values().next().value!);
    if (Math.abs(nowSeconds() - e.created_at) > this.o.maxRequestAgeSeconds) {
      this.emit({ type: 'dropped', client: e.pubkey, reason: 'stale' });
      return;
    }
    const verdict = worst(this.globalBucket.take('*'), this.buckets.take(e.pubkey));
    if (verdict === 'drop') {
      this.emit({ type: 'dropped', client: e.pubkey, reason: 'flood' });
      return;
    }
    const ctx: RequestContext = {
      client: e.pubkey,
      requestId: '',
      scheme: detectEncryption(e.content),
      relay,
      started: Date.now(),
    };
    let sharedX: Uint8Array;
    try {
      sharedX = this.identity.ecdh(Buffer.from(e.pubkey, 'hex'));
    } catch {
      // no curve point has this x: nothing can be encrypted to the sender
      this.emit({ type: 'dropped', client: e.pubkey, reason: 'bad_pubkey' });
      return;
    }
    let request: Nip46Request;
    try {
      let plaintext: string;
      try {
        ({ plaintext } = decryptContent(e.content, sharedX, this.o.limits.maxRequestBytes));
      } finally {
        sharedX.fill(0);
      }
      const check = parseRequest(plaintext, this.o.limits);
      if (!check.ok) {
        ctx.requestId = check.id;
        throw check.error;
      }
      request = check.request;
    } catch (err) {
      await this.answerError(ctx, err);
      return;
    }
    ctx.requestId = request.id;
    ctx.method = request.method;
    if (verdict === 'refuse') {
      await this.answerError(
        ctx,
        new FloeError('rate_limited', 'too many requests from this client; retry later'),
      );
      return;
    }
    const busy = this.inFlight.get(ctx.client) ?? 0;
    if (busy >= this.o.maxInFlight) {
      await this.answerError(
        ctx,
        new FloeError('rate_limited', 'too many requests in progress for this client'),
      );
      return;
    }
    this.inFlight.set(ctx.client, busy + 1);
    try {
      this.emit({
        type: 'request',
        client: ctx.client,
        requestId: ctx.requestId,
        method: request.method,
        encryption: ctx.scheme,
      });
      const result = await this.dispatch(request, ctx);
      await this.answer(ctx, resultResponse(request.id, result), 'ok');
    } catch (err) {
      await this.answerError(ctx, err);
    } finally {
      const n = (this.inFlight.get(ctx.client) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(ctx.client);
      else this.inFlight.set(ctx.client, n);
    }
  }

  private async dispatch(req: Nip46Request, ctx: RequestContext): Promise<string> {
    if (req.method === 'connect') return this.serialize(ctx.client, () => this.connect(req, ctx));
    const client = await this.opts.store.getClient(ctx.client);
    if (!client) {
      throw new FloeError(
        'unauthorized',
        'not connected: send connect with a secret from the operator first',
      );
    }
    const userPk = this.opts.backend.userPubkey();
    const approval: ApprovalContext = { client, method: req.method };
    let template: EventTemplate | undefined;
    let peer: string | undefined;
    if (req.method === 'sign_event') {
      template = parseSignEventParam(req.params[0]!, userPk);
      approval.kind = ctx.kind = template.kind;
      approval.template = template;
    } else if (req.method.startsWith('nip04_') || req.method.startsWith('nip44_')) {
      peer = req.params[0]!;
      if (!isHexPubkey(peer)) {
        throw new FloeError(
          'invalid_request',
          `${req.method}: the third-party pubkey must be 32 bytes of lower-case hex`,
        );
      }
      try {
        // refused here rather than after a threshold ECDH session is started for nothing
        cryptoBackend().liftX(Buffer.from(peer, 'hex'), 'third-party pubkey');
      } catch {
        throw new FloeError(
          'invalid_request',
          `${req.method}: the third-party pubkey is not a point on secp256k1`,
        );
      }
      approval.peer = peer;
    }
    this.authorize(client, req.method, template?.kind);
    if (this.opts.needsApproval?.(approval)) await this.awaitApproval(approval, ctx);
    switch (req.method) {
      case 'ping':
        return 'pong';
      case 'get_public_key':
        return userPk;
      case 'switch_relays':
        return JSON.stringify(this.relayList);
      case 'logout':
        await this.serialize(ctx.client, () => this.removeClient(ctx.client, 'logout'));
        return 'ack';
      case 'sign_event':
        return JSON.stringify(await this.sign(template!, ctx.client, userPk));
      case 'nip04_encrypt':
      case 'nip04_decrypt':
      case 'nip44_encrypt':
      case 'nip44_decrypt':
        return this.crypt(req.method, peer!, req.params[1]!, ctx.client);
    }
  }

  /** Permission check; a refusal names the method (and kind) and why. */
  private authorize(client: BunkerClient, method: Nip46Method, kind: number | undefined): void {
    if (this.o.alwaysAllowed.includes(method) && !GATED_METHODS.includes(method)) return;
    const d = checkPermission(
      client.permissions,
      kind === undefined ? { method } : { method, kind },
      nowSeconds(),
      this.o.explicitOnlyKinds,
    );
    if (d.allowed) return;
    const what = kind === undefined ? method : `${method} for kind ${kind}`;
    if (d.reason === 'expired') throw new FloeError('forbidden', `the permission for ${what} has expired`);
    const hint =
      kind !== undefined && this.o.explicitOnlyKinds.includes(kind)
        ? ` (kind ${kind} needs an explicit sign_event:${kind})`
        : '';
    throw new FloeError('forbidden', `${what} is not granted to this client${hint}`);
  }

  private async connect(req: Nip46Request, ctx: RequestContext): Promise<string> {
    const [target = '', secret = '', permsCsv = '', meta] = req.params;
    const userPk = this.opts.backend.userPubkey();
    // nostr-tools sends the remote-signer pubkey (as NIP-46 says); NDK sends the user pubkey or ""
    if (target !== '' && target !== this.signerPubkey && target !== userPk) {
      throw new FloeError('invalid_request', 'connect: names another remote signer');
    }
    const now = nowSeconds();
    const known = await this.opts.store.getClient(ctx.client);
    const requested = permsCsv === '' ? undefined : parsePermissionsLenient(permsCsv.split(','));
    const grant = (r: BunkerSecretRecord): Permission[] =>
      requested
        ? intersectPermissions(requested.permissions, r.permissions, this.o.explicitOnlyKinds)
        : r.permissions.map(validatePermission);
    if (known) {
      // a known client reconnecting (NDK re-sends its used secret on restore) keeps its grant;
      // a fresh secret replaces it
      if (secret !== '') {
        const r = await this.opts.store.consumeSecret(secretHash(secret), now, ctx.client);
        if (r) {
          known.permissions = grant(r);
          await this.opts.store.saveClient(known);
          this.emit({
            type: 'client_updated',
            client: ctx.client,
            permissions: known.permissions.map(formatPermission),
          });
        }
      }
      return 'ack';
    }
    if (secret === '') throw new FloeError('unauthorized', 'connect: a secret from the operator is required');
    const r = await this.opts.store.consumeSecret(secretHash(secret), now, ctx.client);
    if (!r) throw new FloeError('unauthorized', 'connect: the secret is invalid, expired or already used');
    const client: BunkerClient = {
      pubkey: ctx.client,
      permissions: grant(r),
      via: 'bunker',
      connectedAt: now,
      relays: [],
      ...connectMetadata(meta),
    };
    await this.opts.store.saveClient(client);
    this.emit({
      type: 'client_connected',
      client: ctx.client,
      via: 'bunker',
      permissions: client.permissions.map(formatPermission),
      ...(requested?.ignored.length ? { ignored: requested.ignored } : {}),
    });
    return 'ack';
  }

  private async removeClient(client: string, reason: 'logout' | 'revoked'): Promise<boolean> {
    const existed = await this.opts.store.deleteClient(client);
    for (const a of [...this.approvals.values()]) if (a.client === client) a.settle('denied');
    if (this.clientRelays.delete(client)) this.syncSubscriptions();
    if (existed) this.emit({ type: 'client_removed', client, reason });
    return existed;
  }

  private async sign(template: EventTemplate, client: string, userPk: string): Promise<NostrEvent> {
    const signed = await this.opts.backend.signEvent(template, client);
    const check = validateEvent(signed);
    const expected = serializeEvent({ ...template, pubkey: userPk });
    if (!check.ok || check.event.pubkey !== userPk || serializeEvent(check.event) !== expected) {
      throw new FloeError(
        'signer_fault',
        'the signing backend returned an event that is not the one requested',
      );
    }
    return check.event;
  }

  private async crypt(
    method: 'nip04_encrypt' | 'nip04_decrypt' | 'nip44_encrypt' | 'nip44_decrypt',
    peer: string,
    text: string,
    client: string,
  ): Promise<string> {
    const sharedX = await this.opts.backend.ecdh(peer, client);
    if (!(sharedX instanceof Uint8Array) || sharedX.length !== 32) {
      throw new FloeError('signer_fault', 'the ECDH backend returned something other than 32 bytes');
    }
    try {
      switch (method) {
        case 'nip04_encrypt':
          return nip04.encrypt(text, sharedX);
        case 'nip04_decrypt':
          return nip04.decrypt(text, sharedX);
        case 'nip44_encrypt':
        case 'nip44_decrypt': {
          const ck = nip44.conversationKey(sharedX);
          try {
            return method === 'nip44_encrypt' ? nip44.encrypt(text, ck) : nip44.decrypt(text, ck);
          } finally {
            ck.fill(0);
          }
        }
      }
    } finally {
      sharedX.fill(0);
    }
  }

  // ---- approvals ----

  private async awaitApproval(ctx: ApprovalContext, rc: RequestContext): Promise<void> {
    if (this.approvals.size >= this.o.maxPendingApprovals) {
      throw new FloeError('rate_limited', 'too many requests are waiting for approval; retry later');
    }
    const approvalId = randomBytes(16).toString('hex');
    const url = this.opts.authUrl!(approvalId, ctx);
    const createdAt = Date.now();
    const outcome = new Promise<'approved' | 'denied' | 'expired'>((resolve) => {
      const state: ApprovalState = {
        approvalId,
        client: rc.client,
        requestId: rc.requestId,
        method: ctx.method,
        createdAt,
        expiresAt: createdAt + this.o.approvalTimeoutMs,
        timer: setTimeout(() => state.settle('expired'), this.o.approvalTimeoutMs),
        settle: (o) => {
          if (this.approvals.get(approvalId) !== state) return;
          this.approvals.delete(approvalId);
          clearTimeout(state.timer);
          this.emit({ type: 'approval_resolved', approvalId, client: rc.client, outcome: o });
          resolve(o);
        },
      };
      if (ctx.kind !== undefined) state.kind = ctx.kind;
      this.approvals.set(approvalId, state);
    });
    if (this.opts.holdRequest) {
      try {
        await this.opts.holdRequest({
          approvalId,
          client: rc.client,
          requestId: rc.requestId,
          method: ctx.method,
          ...(ctx.kind !== undefined ? { kind: ctx.kind } : {}),
          createdAt,
          expiresAt: createdAt + this.o.approvalTimeoutMs,
        });
      } catch {
        // (not held: forget it without an approval_resolved event, as if it had never been)
        const state = this.approvals.get(approvalId);
        if (state) {
          clearTimeout(state.timer);
          this.approvals.delete(approvalId);
        }
        throw new FloeError('internal', 'the request could not be held for approval; retry later');
      }
    }
    this.emit({
      type: 'approval_requested',
      approvalId,
      client: rc.client,
      requestId: rc.requestId,
      method: ctx.method,
      ...(ctx.kind !== undefined ? { kind: ctx.kind } : {}),
    });
    await this.answer(rc, authUrlResponse(rc.requestId, url), undefined);
    const o = await outcome;
    if (o === 'denied') throw new FloeError('approval_rejected', 'the request was denied');
    if (o === 'expired') throw new FloeError('approval_rejected', 'the request was not approved in time');
    // the client may have been revoked while waiting
    const still = await this.opts.store.getClient(rc.client);
    if (!still) throw new FloeError('unauthorized', 'not connected: the client was removed');
    this.authorize(still, ctx.method, ctx.kind);
  }

  // ---- answers ----

  private async answerError(ctx: RequestContext, err: unknown): Promise<void> {
    await this.answer(ctx, errorResponse(ctx.requestId, err), toProblem(err).code);
  }

  /**
   * Encrypt, sign and publish an answer. `outcome` is the request's final answer (audited):
   * 'ok' or the refusal's code; an auth challenge passes `undefined`.
   */
  private async answer(
    ctx: RequestContext,
    r: Nip46Response,
    outcome: 'ok' | ErrorCode | undefined,
  ): Promise<void> {
    const known = this.clientRelays.get(ctx.client) ?? [];
    // building the answer may throw (for example an answer too large to encrypt); the caller
    // then answers that error instead, so the audit records only what went out
    await this.publishResponse(ctx.client, r, ctx.scheme, [ctx.relay, ...known]);
    if (outcome !== undefined) {
      this.emit({
        type: 'answered',
        client: ctx.client,
        requestId: ctx.requestId,
        ...(ctx.method ? { method: ctx.method } : {}),
        ...(ctx.kind !== undefined ? { kind: ctx.kind } : {}),
        ok: outcome === 'ok',
        ...(outcome === 'ok' ? {} : { code: outcome }),
        ms: Date.now() - ctx.started,
      });
    }
  }

  private async publishResponse(
    client: string,
    r: Nip46Response,
    scheme: Nip46Encryption,
    extraRelays: readonly string[],
  ): Promise<PublishResult[]> {
    let event: NostrEvent;
    const sharedX = this.identity.ecdh(Buffer.from(client, 'hex'));
    try {
      event = signTemplate(
        // a large signed event (a kind-3 list) may pass 65535 bytes: then the extended
        // NIP-44 length prefix, which current clients read, rather than no answer at all
        nip46Template(encryptContent(serializeResponse(r), sharedX, scheme, MAX_ANSWER_BYTES), client),
        this.identity,
      );
    } finally {
      sharedX.fill(0);
    }
    const relays = unique([...this.relayList, ...extraRelays]);
    let results: PublishResult[];
    try {
      results = await this.pool.publish(event, relays);
    } catch {
      results = [];
    }
    if (!results.some((x) => x.accepted)) {
      this.emit({
        type: 'answer_unpublished',
        client,
        requestId: r.id,
        results: results.map((x) => ({ relay: x.relay, message: x.message })),
      });
    }
    return results;
  }

  // ---- helpers ----

  /** Run state changes of one client one at a time (connect, logout, revoke). */
  private serialize<T>(client: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(client) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.locks.set(client, tail);
    tail.then(() => {
      if (this.locks.get(client) === tail) this.locks.delete(client);
    });
    return next;
  }

  private emit(e: BunkerAuditEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // the audit sink's failure must not change an answer
    }
  }
}
