/**
 * NIP-46 remote signing, the pure protocol (DESIGN §14): kind-24133 JSON-RPC requests
 * `{id, method, params}` and answers `{id, result, error}`, their encryption (NIP-44 v2, and
 * NIP-04 as NDK's fallback), `bunker://` and `nostrconnect://` URIs, and `method[:kind]`
 * permissions. No I/O: the runtime is `bunker.ts`.
 *
 * Parsing is strict and never throws on peer input: a refused request yields the id it
 * carried (when one could be read) and a FloeError whose code and sentence become the error
 * answer `"<code>: <sentence>"`. Nothing a peer sent is echoed back beyond a sanitized method.
 */
import { FloeError, toProblem } from '../protocol/errors.js';
import { checkUnsignedEvent, type EventTemplate, eventError, nowSeconds } from './event.js';
import * as nip04 from './nip04.js';
import * as nip44 from './nip44.js';
import { normalizeRelayUrl } from './url.js';

/** Kind of NIP-46 requests and answers (ephemeral: relays forward, never store). */
export const NIP46_KIND = 24_133;
/** NIP-98 HTTP auth: never covered by a bare `sign_event` permission. */
export const NIP98_KIND = 27_235;

/** Every method Floe's bunker answers. `logout` is an extension nostr-tools and Primal speak. */
export const NIP46_METHODS = [
  'connect',
  'sign_event',
  'ping',
  'get_public_key',
  'nip04_encrypt',
  'nip04_decrypt',
  'nip44_encrypt',
  'nip44_decrypt',
  'switch_relays',
  'logout',
] as const;

export type Nip46Method = (typeof NIP46_METHODS)[number];

/** Methods that act with the user key: a client needs a permission for each. */
export const GATED_METHODS: readonly Nip46Method[] = Object.freeze([
  'sign_event',
  'nip04_encrypt',
  'nip04_decrypt',
  'nip44_encrypt',
  'nip44_decrypt',
]);

/** Kinds a wildcard `sign_event` never covers: only `sign_event:<kind>` grants them. */
export const EXPLICIT_ONLY_KINDS: readonly number[] = Object.freeze([NIP98_KIND]);

/** Number of params each method takes (min, max). `connect` has nostr-tools' 4th (metadata). */
const ARITY: Record<Nip46Method, readonly [number, number]> = {
  connect: [1, 4],
  sign_event: [1, 1],
  ping: [0, 0],
  get_public_key: [0, 0],
  nip04_encrypt: [2, 2],
  nip04_decrypt: [2, 2],
  nip44_encrypt: [2, 2],
  nip44_decrypt: [2, 2],
  switch_relays: [0, 0],
  logout: [0, 0],
};

const METHOD_SET = new Set<string>(NIP46_METHODS);
const HEX32 = /^[0-9a-f]{64}$/;
// request ids: what nostr-tools (`abc12-3`) and NDK (`k3j2h1`) send, bounded; printable ASCII
const ID_PATTERN = /^[\x21-\x7e]+$/;
const METHOD_SAFE = /^[a-z0-9_]{1,32}$/;

export function isNip46Method(x: unknown): x is Nip46Method {
  return typeof x === 'string' && METHOD_SET.has(x);
}

export function isHexPubkey(x: unknown): x is string {
  return typeof x === 'string' && HEX32.test(x);
}

// ---------------------------------------------------------------------------------------
// JSON-RPC messages

export interface Nip46Request {
  id: string;
  method: Nip46Method;
  /** Positional string parameters. */
  params: string[];
}

export interface Nip46Response {
  id: string;
  /** The method's result; `"auth_url"` for an auth challenge. Absent in an error answer. */
  result?: string;
  /** Error sentence (`"<code>: <detail>"`), or the URL of an auth challenge. */
  error?: string;
}

export interface Nip46Limits {
  /** Largest decrypted request, in UTF-8 bytes. */
  maxRequestBytes: number;
  /** Longest request id. */
  maxIdLength: number;
}

export const DEFAULT_NIP46_LIMITS: Readonly<Nip46Limits> = Object.freeze({
  maxRequestBytes: 256 * 1024,
  maxIdLength: 64,
});

export type RequestCheck =
  | { ok: true; request: Nip46Request }
  | {
      ok: false;
      /** The request's id when it could be read, so the error answer can name it; else `""`. */
      id: string;
      error: FloeError;
    };

const REQUEST_FIELDS = new Set(['id', 'method', 'params']);

function refuse(id: string, code: 'invalid_request' | 'payload_too_large', detail: string): RequestCheck {
  return { ok: false, id, error: new FloeError(code, detail) };
}

/**
 * Parse a decrypted request. Strict: a JSON object with exactly `id` (1..maxIdLength printable
 * ASCII), `method` (one of NIP46_METHODS) and `params` (strings, as many as the method takes).
 */
export function parseRequest(plaintext: string, limits: Nip46Limits = DEFAULT_NIP46_LIMITS): RequestCheck {
  if (typeof plaintext !== 'string') return refuse('', 'invalid_request', 'request: expected a string');
  if (Buffer.byteLength(plaintext, 'utf8') > limits.maxRequestBytes) {
    return refuse('', 'payload_too_large', `request: larger than ${limits.maxRequestBytes} bytes`);
  }
  let x: unknown;
  try {
    x = JSON.parse(plaintext);
  } catch {
    return refuse('', 'invalid_request', 'request: not valid JSON');
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    return refuse('', 'invalid_request', 'request: expected a JSON object {id, method, params}');
  }
  const o = x as Record<string, unknown>;
  const id =
    typeof o.id === 'string' && o.id.length <= limits.maxIdLength && ID_PATTERN.test(o.id) ? o.id : undefined;
  if (id === undefined) {
    return refuse(
      '',
      'invalid_request',
      `request.id: expected 1 to ${limits.maxIdLength} printable ASCII characters`,
    );
  }
  for (const k of Object.keys(o)) {
    if (!REQUEST_FIELDS.has(k)) return refuse(id, 'invalid_request', 'request: unknown field');
  }
  if (!isNip46Method(o.method)) {
    const shown = typeof o.method === 'string' && METHOD_SAFE.test(o.method) ? ` "${o.method}"` : '';
    return refuse(id, 'invalid_request', `request.method: unknown method${shown}`);
  }
  const method = o.method;
  if (!Array.isArray(o.params) || !o.params.every((p) => typeof p === 'string')) {
    return refuse(id, 'invalid_request', 'request.params: expected an array of strings');
  }
  const [min, max] = ARITY[method];
  if (o.params.length < min || o.params.length > max) {
    const n = min === max ? `${min}` : `${min} to ${max}`;
    return refuse(id, 'invalid_request', `request.params: ${method} takes ${n} parameters`);
  }
  return { ok: true, request: { id, method, params: [...(o.params as string[])] } };
}

/** Serialize a request (client side). */
export function serializeRequest(r: Nip46Request): string {
  return JSON.stringify({ id: r.id, method: r.method, params: r.params });
}

/** A successful answer. */
export function resultResponse(id: string, result: string): Nip46Response {
  return { id, result };
}

/** The error sentence of an answer: `"<code>: <detail>"`, from any thrown value (internals hidden). */
export function errorText(e: unknown): string {
  const p = toProblem(e);
  return `${p.code}: ${p.detail}`;
}

/** An error answer: `{id, error}` with no `result`. */
export function errorResponse(id: string, e: unknown): Nip46Response {
  return { id, error: errorText(e) };
}

/** An auth challenge: `result: "auth_url"`, the URL in `error`; the real answer follows under the same id. */
export function authUrlResponse(id: string, url: string): Nip46Response {
  return { id, result: 'auth_url', error: url };
}

export function serializeResponse(r: Nip46Response): string {
  const out: Record<string, string> = { id: r.id };
  if (r.result !== undefined) out.result = r.result;
  if (r.error !== undefined) out.error = r.error;
  return JSON.stringify(out);
}

/** Parse an answer (client side). Throws `invalid_request` naming the rule. */
export function parseResponse(plaintext: string, limits: Nip46Limits = DEFAULT_NIP46_LIMITS): Nip46Response {
  if (typeof plaintext !== 'string' || Buffer.byteLength(plaintext, 'utf8') > limits.maxRequestBytes) {
    throw new FloeError(
      'invalid_request',
      `response: expected a string of at most ${limits.maxRequestBytes} bytes`,
    );
  }
  let x: unknown;
  try {
    x = JSON.parse(plaintext);
  } catch {
    throw new FloeError('invalid_request', 'response: not valid JSON');
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new FloeError('invalid_request', 'response: expected a JSON object {id, result, error}');
  }
  const o = x as Record<string, unknown>;
  if (typeof o.id !== 'string') throw new FloeError('invalid_request', 'response.id: expected a string');
  const r: Nip46Response = { id: o.id };
  // NDK's own backend sends result "error" beside the error; null is read as absent
  if (o.result !== undefined && o.result !== null) {
    if (typeof o.result !== 'string')
      throw new FloeError('invalid_request', 'response.result: expected a string');
    r.result = o.result;
  }
  if (o.error !== undefined && o.error !== null) {
    if (typeof o.error !== 'string')
      throw new FloeError('invalid_request', 'response.error: expected a string');
    if (o.error !== '') r.error = o.error;
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// sign_event parameter

/** Fields of a `sign_event` parameter that are outputs of signing and so are ignored. */
const IGNORED_TEMPLATE_FIELDS = new Set(['id', 'sig']);
const TEMPLATE_FIELDS = new Set(['kind', 'content', 'tags', 'created_at', 'pubkey', 'id', 'sig']);

/**
 * Parse the `sign_event` parameter: JSON `{kind, content, tags, created_at}`. A `pubkey`, if
 * present (NDK and the NIP's example send one), must be the user's or empty; `id` and `sig`
 * (NDK sends its own id) are outputs and ignored. Every other rule is NIP-01's (`checkUnsignedEvent`).
 */
export function parseSignEventParam(param: string, userPubkey: string): EventTemplate {
  let x: unknown;
  try {
    x = JSON.parse(param);
  } catch {
    throw new FloeError('invalid_request', 'sign_event: the parameter is not valid JSON');
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new FloeError('invalid_request', 'sign_event: expected {kind, content, tags, created_at}');
  }
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!TEMPLATE_FIELDS.has(k)) throw new FloeError('invalid_request', 'sign_event: unknown event field');
  }
  if (o.pubkey !== undefined && o.pubkey !== '' && o.pubkey !== userPubkey) {
    throw new FloeError('forbidden', "sign_event: the event names another pubkey than this signer's user");
  }
  const candidate: Record<string, unknown> = { pubkey: userPubkey };
  for (const [k, v] of Object.entries(o)) {
    if (k !== 'pubkey' && !IGNORED_TEMPLATE_FIELDS.has(k)) candidate[k] = v;
  }
  const check = checkUnsignedEvent(candidate);
  if (!check.ok) throw eventError(check);
  const e = check.event;
  return { kind: e.kind, content: e.content, tags: e.tags.map((t) => [...t]), created_at: e.created_at };
}

// ---------------------------------------------------------------------------------------
// encryption of the content

/** How a request's content is encrypted; the answer uses the same. */
export type Nip46Encryption = 'nip44' | 'nip04';

/**
 * NIP-04 payloads are `base64?iv=base64`; NIP-44 payloads are plain base64 and never contain
 * `?`. So the form tells the scheme without trial decryption.
 */
export function detectEncryption(content: string): Nip46Encryption {
  return content.includes('?iv=') ? 'nip04' : 'nip44';
}

/** Longest content (base64 characters) that can carry a request of `maxBytes`. */
export function maxContentChars(maxBytes: number, scheme: Nip46Encryption): number {
  if (scheme === 'nip04') return 4 * Math.ceil((maxBytes + 16) / 3) + 4 + 24;
  const prefix = maxBytes > nip44.MAX_PLAINTEXT_BYTES_U16 ? 6 : 2;
  return 4 * Math.ceil((1 + 32 + prefix + nip44.calcPaddedLen(maxBytes) + 32) / 3);
}

/**
 * Encrypt an answer or request for the peer whose ECDH x coordinate with us is `sharedX`.
 * NIP-44 is limited to what every implementation reads (65535 bytes) unless `maxBytes` says more.
 */
export function encryptContent(
  plaintext: string,
  sharedX: Uint8Array,
  scheme: Nip46Encryption,
  maxBytes = nip44.MAX_PLAINTEXT_BYTES_U16,
): string {
  if (scheme === 'nip04') return nip04.encrypt(plaintext, sharedX);
  const ck = nip44.conversationKey(sharedX);
  try {
    return nip44.encrypt(plaintext, ck, undefined, { maxPlaintextBytes: maxBytes });
  } finally {
    ck.fill(0);
  }
}

/**
 * Decrypt a request or answer in whichever scheme its form shows. Refuses content longer than a
 * `maxBytes` plaintext allows (`payload_too_large`) before any decryption; a wrong key or a
 * corrupted payload is `invalid_encoding` naming the rule.
 */
export function decryptContent(
  content: string,
  sharedX: Uint8Array,
  maxBytes: number = DEFAULT_NIP46_LIMITS.maxRequestBytes,
): { plaintext: string; scheme: Nip46Encryption } {
  if (typeof content !== 'string') throw new FloeError('invalid_encoding', 'content: expected a string');
  const scheme = detectEncryption(content);
  if (content.length > maxContentChars(maxBytes, scheme)) {
    throw new FloeError('payload_too_large', `request: larger than ${maxBytes} bytes`);
  }
  if (scheme === 'nip04') {
    return { plaintext: nip04.decrypt(content, sharedX, { maxPlaintextBytes: maxBytes }), scheme };
  }
  const ck = nip44.conversationKey(sharedX);
  try {
    return { plaintext: nip44.decrypt(content, ck, { maxPlaintextBytes: maxBytes }), scheme };
  } finally {
    ck.fill(0);
  }
}

/** The kind-24133 template carrying `content` to `recipient` (p-tagged). */
export function nip46Template(content: string, recipient: string, createdAt = nowSeconds()): EventTemplate {
  if (!isHexPubkey(recipient)) throw new FloeError('invalid_request', 'recipient: expected a hex pubkey');
  return { kind: NIP46_KIND, created_at: createdAt, tags: [['p', recipient]], content };
}

// ---------------------------------------------------------------------------------------
// bunker:// and nostrconnect:// URIs

/** Longest URI accepted. */
export const MAX_URI_LENGTH = 8192;
/** Most relays one URI may name. */
export const MAX_URI_RELAYS = 16;
/** Longest secret accepted in a URI. */
export const MAX_SECRET_LENGTH = 256;
const MAX_NAME_LENGTH = 256;
const MAX_LINK_LENGTH = 2048;

/** The same shape as nostr-tools' `BunkerPointer`. */
export interface BunkerPointer {
  /** Remote-signer pubkey (not the user key). */
  pubkey: string;
  relays: string[];
  secret: string | null;
}

export interface NostrConnectUri {
  clientPubkey: string;
  relays: string[];
  /** Required: the bunker returns it as the result of its connect answer. */
  secret: string;
  /** Requested permissions as written (`method[:kind]`); see `parsePermissionsLenient`. */
  perms: string[];
  name?: string;
  url?: string;
  image?: string;
}

function splitUri(input: string, scheme: string): { host: string; query: URLSearchParams } {
  if (typeof input !== 'string' || input.length > MAX_URI_LENGTH) {
    throw new FloeError(
      'invalid_request',
      `${scheme} uri: expected a string of at most ${MAX_URI_LENGTH} characters`,
    );
  }
  const prefix = `${scheme}://`;
  if (!input.startsWith(prefix))
    throw new FloeError('invalid_request', `${scheme} uri: must start with ${prefix}`);
  const rest = input.slice(prefix.length);
  const q = rest.indexOf('?');
  // nostr-tools' regex lets a slash sit between the pubkey and the query
  const host = (q < 0 ? rest : rest.slice(0, q)).replace(/\/$/, '');
  if (!HEX32.test(host)) {
    throw new FloeError('invalid_request', `${scheme} uri: expected a lower-case hex pubkey after ${prefix}`);
  }
  return { host, query: new URLSearchParams(q < 0 ? '' : rest.slice(q + 1)) };
}

function uriRelays(query: URLSearchParams, scheme: string): string[] {
  const raw = query.getAll('relay');
  if (raw.length === 0) throw new FloeError('invalid_request', `${scheme} uri: names no relay`);
  if (raw.length > MAX_URI_RELAYS) {
    throw new FloeError('invalid_request', `${scheme} uri: more than ${MAX_URI_RELAYS} relays`);
  }
  return [...new Set(raw.map(normalizeRelayUrl))];
}

function optionalText(query: URLSearchParams, key: string, max: number, scheme: string): string | undefined {
  const v = query.get(key);
  if (v === null || v === '') return undefined;
  if (v.length > max)
    throw new FloeError('invalid_request', `${scheme} uri: ${key} longer than ${max} characters`);
  return v;
}

function optionalLink(query: URLSearchParams, key: string, scheme: string): string | undefined {
  const v = optionalText(query, key, MAX_LINK_LENGTH, scheme);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new FloeError('invalid_request', `${scheme} uri: ${key} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new FloeError('invalid_request', `${scheme} uri: ${key} must be an http(s) URL`);
  }
  return v;
}

/** Parse `bunker://<remote-signer-pubkey>?relay=…&secret=…` (relays normalized, at least one). */
export function parseBunkerUrl(input: string): BunkerPointer {
  const { host, query } = splitUri(input, 'bunker');
  const secret = optionalText(query, 'secret', MAX_SECRET_LENGTH, 'bunker') ?? null;
  return { pubkey: host, relays: uriRelays(query, 'bunker'), secret };
}

/** Build a `bunker://` URL exactly as nostr-tools' `toBunkerURL` does. */
export function toBunkerUrl(p: BunkerPointer): string {
  if (!isHexPubkey(p.pubkey)) throw new FloeError('invalid_request', 'pubkey: expected a hex pubkey');
  const q = new URLSearchParams();
  for (const r of p.relays) q.append('relay', r);
  if (p.secret) q.set('secret', p.secret);
  const qs = q.toString();
  return qs ? `bunker://${p.pubkey}?${qs}` : `bunker://${p.pubkey}`;
}

/**
 * Parse `nostrconnect://<client-pubkey>?relay=…&secret=…&perms=…&name=…&url=…&image=…`. The
 * secret is required (without it anyone who saw the URI could answer as the signer); empty
 * `name`/`url`/`image`/`perms` (NDK writes them empty) count as absent.
 */
export function parseNostrConnectUri(input: string): NostrConnectUri {
  const { host, query } = splitUri(input, 'nostrconnect');
  const secret = optionalText(query, 'secret', MAX_SECRET_LENGTH, 'nostrconnect');
  if (secret === undefined) throw new FloeError('invalid_request', 'nostrconnect uri: has no secret');
  const permsRaw = optionalText(query, 'perms', MAX_LINK_LENGTH, 'nostrconnect');
  const out: NostrConnectUri = {
    clientPubkey: host,
    relays: uriRelays(query, 'nostrconnect'),
    secret,
    perms: permsRaw ? permsRaw.split(',').filter((s) => s !== '') : [],
  };
  const name = optionalText(query, 'name', MAX_NAME_LENGTH, 'nostrconnect');
  const url = optionalLink(query, 'url', 'nostrconnect');
  const image = optionalLink(query, 'image', 'nostrconnect');
  if (name !== undefined) out.name = name;
  if (url !== undefined) out.url = url;
  if (image !== undefined) out.image = image;
  return out;
}

/** Build a `nostrconnect://` URI exactly as nostr-tools' `createNostrConnectURI` does. */
export function toNostrConnectUri(p: NostrConnectUri): string {
  if (!isHexPubkey(p.clientPubkey))
    throw new FloeError('invalid_request', 'clientPubkey: expected a hex pubkey');
  const q = new URLSearchParams();
  for (const r of p.relays) q.append('relay', r);
  q.append('secret', p.secret);
  if (p.perms.length > 0) q.append('perms', p.perms.join(','));
  if (p.name) q.append('name', p.name);
  if (p.url) q.append('url', p.url);
  if (p.image) q.append('image', p.image);
  return `nostrconnect://${p.clientPubkey}?${q.toString()}`;
}

// ---------------------------------------------------------------------------------------
// permissions

/** A grant `method[:kind]`, optionally until `expiresAt` (unix seconds). */
export interface Permission {
  method: Nip46Method;
  /** Only for `sign_event`: the one kind granted; absent = every kind but EXPLICIT_ONLY_KINDS. */
  kind?: number;
  expiresAt?: number;
}

/** Parse one `method[:kind]`. Throws `invalid_request` naming the rule. */
export function parsePermission(s: string): Permission {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) {
    throw new FloeError('invalid_request', 'permission: expected method[:kind]');
  }
  const colon = s.indexOf(':');
  const method = colon < 0 ? s : s.slice(0, colon);
  if (!isNip46Method(method)) throw new FloeError('invalid_request', 'permission: unknown method');
  if (colon < 0) return { method };
  if (method !== 'sign_event') {
    throw new FloeError('invalid_request', 'permission: only sign_event takes a parameter (a kind)');
  }
  const k = s.slice(colon + 1);
  const kind = Number(k);
  if (!/^\d{1,5}$/.test(k) || kind > 65_535) {
    throw new FloeError('invalid_request', 'permission: sign_event kind must be an integer from 0 to 65535');
  }
  return { method, kind };
}

/**
 * Check a permission given as an object (an operator's API input) and return a clean copy:
 * a known method, a kind only on sign_event (0..65535), an expiry in unix seconds.
 */
export function validatePermission(x: unknown): Permission {
  if (typeof x !== 'object' || x === null)
    throw new FloeError('invalid_request', 'permission: expected an object');
  const o = x as Record<string, unknown>;
  if (!isNip46Method(o.method)) throw new FloeError('invalid_request', 'permission.method: unknown method');
  const p: Permission = { method: o.method };
  if (o.kind !== undefined) {
    if (o.method !== 'sign_event') {
      throw new FloeError('invalid_request', 'permission.kind: only sign_event takes a kind');
    }
    if (typeof o.kind !== 'number' || !Number.isInteger(o.kind) || o.kind < 0 || o.kind > 65_535) {
      throw new FloeError('invalid_request', 'permission.kind: expected an integer from 0 to 65535');
    }
    p.kind = o.kind;
  }
  if (o.expiresAt !== undefined) {
    if (typeof o.expiresAt !== 'number' || !Number.isSafeInteger(o.expiresAt) || o.expiresAt < 0) {
      throw new FloeError('invalid_request', 'permission.expiresAt: expected unix seconds');
    }
    p.expiresAt = o.expiresAt;
  }
  return p;
}

/** Parse a comma-separated list strictly (an operator's input). */
export function parsePermissions(csv: string): Permission[] {
  if (typeof csv !== 'string') throw new FloeError('invalid_request', 'permissions: expected a string');
  return dedupePermissions(
    csv
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(parsePermission),
  );
}

/** Parse what a client asks for: entries Floe does not know are set aside, not fatal. */
export function parsePermissionsLenient(items: readonly string[]): {
  permissions: Permission[];
  ignored: string[];
} {
  const permissions: Permission[] = [];
  const ignored: string[] = [];
  for (const raw of items.slice(0, 256)) {
    const s = raw.trim();
    if (s === '') continue;
    try {
      permissions.push(parsePermission(s));
    } catch {
      ignored.push(s.slice(0, 64));
    }
  }
  return { permissions: dedupePermissions(permissions), ignored };
}

export function formatPermission(p: Permission): string {
  return p.kind === undefined ? p.method : `${p.method}:${p.kind}`;
}

export function formatPermissions(ps: readonly Permission[]): string {
  return ps.map(formatPermission).join(',');
}

function dedupePermissions(ps: Permission[]): Permission[] {
  const seen = new Map<string, Permission>();
  for (const p of ps) {
    const key = formatPermission(p);
    const prev = seen.get(key);
    // the same grant twice: keep the one that lasts longer
    if (!prev || expiry(p) > expiry(prev)) seen.set(key, p);
  }
  return [...seen.values()];
}

function expiry(p: Permission): number {
  return p.expiresAt ?? Number.POSITIVE_INFINITY;
}

/** What a request needs: a method and, for sign_event, the event's kind. */
export interface PermissionNeed {
  method: Nip46Method;
  kind?: number;
}

/** Whether `p` (ignoring expiry) covers `need`. A bare `sign_event` never covers EXPLICIT_ONLY_KINDS. */
export function permissionCovers(
  p: Permission,
  need: PermissionNeed,
  explicitOnlyKinds: readonly number[] = EXPLICIT_ONLY_KINDS,
): boolean {
  if (p.method !== need.method) return false;
  if (need.method !== 'sign_event') return true;
  if (need.kind === undefined) return false;
  if (p.kind !== undefined) return p.kind === need.kind;
  return !explicitOnlyKinds.includes(need.kind);
}

export type PermissionDecision =
  | { allowed: true; permission: Permission }
  | { allowed: false; reason: 'not_granted' | 'expired' };

/** Decide `need` against a client's grants at `now` (unix seconds). */
export function checkPermission(
  perms: readonly Permission[],
  need: PermissionNeed,
  now: number,
  explicitOnlyKinds: readonly number[] = EXPLICIT_ONLY_KINDS,
): PermissionDecision {
  let expired = false;
  for (const p of perms) {
    if (!permissionCovers(p, need, explicitOnlyKinds)) continue;
    if (p.expiresAt !== undefined && p.expiresAt <= now) {
      expired = true;
      continue;
    }
    return { allowed: true, permission: p };
  }
  return { allowed: false, reason: expired ? 'expired' : 'not_granted' };
}

/**
 * What a client may have of what it `requested`, given what the operator `allowed`: each
 * requested grant that an allowed one covers, narrowed to the requested kind and carrying the
 * allowed grant's expiry. `sign_event` asked bare against `sign_event:1` yields `sign_event:1`.
 */
export function intersectPermissions(
  requested: readonly Permission[],
  allowed: readonly Permission[],
  explicitOnlyKinds: readonly number[] = EXPLICIT_ONLY_KINDS,
): Permission[] {
  const out: Permission[] = [];
  for (const r of requested) {
    for (const a of allowed) {
      if (a.method !== r.method) continue;
      let kind: number | undefined;
      if (r.method === 'sign_event') {
        if (r.kind === undefined) {
          // a wildcard request never turns into an explicit-only grant (NIP-98 stays opt-in)
          if (a.kind !== undefined && explicitOnlyKinds.includes(a.kind)) continue;
          kind = a.kind;
        } else if (a.kind === undefined) {
          if (explicitOnlyKinds.includes(r.kind)) continue;
          kind = r.kind;
        } else if (a.kind === r.kind) kind = r.kind;
        else continue;
      }
      const p: Permission = { method: r.method };
      if (kind !== undefined) p.kind = kind;
      const exp = minExpiry(a.expiresAt, r.expiresAt);
      if (exp !== undefined) p.expiresAt = exp;
      out.push(p);
    }
  }
  return dedupePermissions(out);
}

function minExpiry(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
