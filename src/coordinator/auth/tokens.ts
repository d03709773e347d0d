/**
 * API tokens and short-lived access tokens.
 *
 * - API token: `floe_<id>_<secret>`, shown once at creation; only SHA-256(token) is stored.
 * - Access token: HS256 JWT (jose), 15 minutes but never past its API token's expiry, claims
 *   {sub: token id, tid: tenant, role, iat, exp, jti}.
 * - Refresh token: `floer_<random>`, single use; using it rotates it (a new one in the same
 *   family). Presenting a spent refresh token revokes the whole family (token theft).
 */
import { createHash, randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { RateLimitHit } from '../../db/queries/rate-limits.js';
import type { ApiTokenRecord, Principal, RefreshRecord } from '../../domain/records.js';
import { hasRole, ROLES, type Role } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import type { LimitRequest } from './rate-limit.js';

export type { ApiTokenRecord, Principal, RefreshRecord };
export { hasRole };

export const ACCESS_TTL_S = 15 * 60;
export const REFRESH_TTL_S = 7 * 24 * 3600;

/** Storage of token hashes. Lookups by hash cross tenants (the tenant is not known yet at login). */
export interface TokenStore {
  insertToken(t: ApiTokenRecord & { hash: string }): Promise<void>;
  findTokenByHash(hash: string): Promise<ApiTokenRecord | undefined>;
  /**
   * The API token of this hash and, when it is live at `o.now` ({@link apiTokenRefusal}), one
   * request counted on its rate limit `o.key(id)`: both in one transaction, the database work of
   * every request made with an API token.
   */
  findTokenByHashCounted(hash: string, o: TokenLimitRequest): Promise<CountedToken | undefined>;
  getToken(tenantId: string, id: string): Promise<ApiTokenRecord | undefined>;
  listTokens(tenantId: string): Promise<ApiTokenRecord[]>;
  revokeToken(tenantId: string, id: string, at: number): Promise<boolean>;
  insertRefresh(r: RefreshRecord & { hash: string }): Promise<void>;
  findRefreshByHash(hash: string): Promise<RefreshRecord | undefined>;
  /** Atomically mark used; false if it was already used or revoked. */
  useRefresh(tenantId: string, id: string, at: number): Promise<boolean>;
  revokeFamily(tenantId: string, familyId: string, at: number): Promise<void>;
}

export const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const b64url = (b: Buffer) => b.toString('base64url');
const rid = (n: number) => randomBytes(n).toString('hex');

const TOKEN_RE = /^floe_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function newApiToken(): { id: string; token: string } {
  const id = rid(8);
  return { id, token: `floe_${id}_${b64url(randomBytes(32))}` };
}

export interface NewTokenOptions {
  tenantId: string;
  role: Role;
  label?: string | null;
  ttlMs?: number;
  now: number;
}

/** A new API token, its record and the hash to store (nothing stored yet). */
export function prepareApiToken(o: NewTokenOptions): { record: ApiTokenRecord; token: string; hash: string } {
  const { id, token } = newApiToken();
  const record: ApiTokenRecord = {
    id,
    tenantId: o.tenantId,
    role: o.role,
    label: o.label ?? null,
    createdAt: o.now,
    expiresAt: o.ttlMs ? o.now + o.ttlMs : null,
    revokedAt: null,
  };
  return { record, token, hash: sha256hex(token) };
}

export async function createApiToken(
  store: TokenStore,
  o: NewTokenOptions,
): Promise<{ record: ApiTokenRecord; token: string }> {
  const { record, token, hash } = prepareApiToken(o);
  await store.insertToken({ ...record, hash });
  return { record, token };
}

/** Why a stored API token is refused at `now` (revoked, expired), or null when it is live. */
export function apiTokenRefusal(rec: ApiTokenRecord, now: number): FloeError | null {
  if (rec.revokedAt !== null) return new FloeError('unauthorized', 'token revoked');
  if (rec.expiresAt !== null && rec.expiresAt <= now) return new FloeError('unauthorized', 'token expired');
  return null;
}

/** The stored hash of a presented API token; a malformed one is refused before any lookup. */
function presentedHash(token: string): string {
  if (!TOKEN_RE.test(token)) throw new FloeError('unauthorized', 'invalid token');
  return sha256hex(token);
}

/** The token found for a presented one, if it is live at `now`; unknown, revoked, expired: refused. */
function liveToken(rec: ApiTokenRecord | undefined, now: number): ApiTokenRecord {
  if (!rec) throw new FloeError('unauthorized', 'invalid token');
  const refused = apiTokenRefusal(rec, now);
  if (refused) throw refused;
  return rec;
}

/** Resolve an API token; refuses unknown, malformed, expired and revoked tokens alike. */
export async function verifyApiToken(store: TokenStore, token: string, now: number): Promise<ApiTokenRecord> {
  return liveToken(await store.findTokenByHash(presentedHash(token)), now);
}

/** A request on the token's rate limit (rate-limit.ts `LimitCheck.request`), keyed by the token's id. */
export type TokenLimitRequest = LimitRequest;

/** What {@link TokenStore.findTokenByHashCounted} found and counted. */
export interface CountedToken {
  token: ApiTokenRecord;
  /** The rate limit's answer; null when the token is not live (nothing was counted). */
  hit: RateLimitHit | null;
}

/**
 * {@link verifyApiToken} that also counts the request on the token's own rate limit, in the same
 * round trip to the database; a refused token counts nothing. Returns the limit's answer.
 */
export async function verifyApiTokenCounted(
  store: TokenStore,
  token: string,
  o: TokenLimitRequest,
): Promise<{ token: ApiTokenRecord; hit: RateLimitHit }> {
  const r = await store.findTokenByHashCounted(presentedHash(token), o);
  const live = liveToken(r?.token, o.now);
  // live at o.now, so counted (the store decides with the same function)
  if (!r?.hit) throw new Error('a live token was not counted');
  return { token: live, hit: r.hit };
}

// ---------- JWT (HS256, jose) ----------

export interface AccessClaims {
  sub: string;
  tid: string;
  role: Role;
  iat: number;
  exp: number;
  jti: string;
}

/**
 * Issue and expiry (Unix seconds) of an access token issued at `nowMs`: ACCESS_TTL_S later,
 * but never after its API token expires (`notAfterMs`), so it cannot outlive it.
 */
export function accessTokenTimes(
  nowMs: number,
  notAfterMs: number | null = null,
  ttlS = ACCESS_TTL_S,
): { iat: number; exp: number } {
  const iat = Math.floor(nowMs / 1000);
  const exp = notAfterMs === null ? iat + ttlS : Math.min(iat + ttlS, Math.floor(notAfterMs / 1000));
  return { iat, exp: Math.max(iat, exp) };
}

/** An access token for the principal; `notAfterMs` is its API token's expiry, if any. */
export async function signAccessToken(
  secret: Uint8Array,
  p: Principal,
  nowMs: number,
  o: { notAfterMs?: number | null; ttlS?: number } = {},
): Promise<string> {
  const { iat, exp } = accessTokenTimes(nowMs, o.notAfterMs ?? null, o.ttlS);
  return new SignJWT({ tid: p.tenantId, role: p.role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(p.tokenId)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(rid(8))
    .sign(secret);
}

/**
 * Verify an access token: HS256 only, signature, `exp` (no clock tolerance), `iat` (present,
 * not in the future, at most ACCESS_TTL_S old), and the claims Floe needs. Any failure is
 * `unauthorized`, without saying more than "expired" or "invalid".
 */
export async function verifyAccessToken(
  secret: Uint8Array,
  jwt: string,
  nowMs: number,
): Promise<AccessClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(jwt, secret, {
      algorithms: ['HS256'],
      typ: 'JWT',
      clockTolerance: 0,
      currentDate: new Date(nowMs),
      maxTokenAge: ACCESS_TTL_S,
      requiredClaims: ['sub', 'tid', 'role', 'iat', 'exp', 'jti'],
    }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new FloeError('unauthorized', 'access token expired');
    throw new FloeError('unauthorized', 'invalid access token');
  }
  const c = payload as Partial<AccessClaims>;
  if (
    typeof c.sub !== 'string' ||
    typeof c.tid !== 'string' ||
    typeof c.jti !== 'string' ||
    !ROLES.includes(c.role as Role) ||
    typeof c.iat !== 'number' ||
    typeof c.exp !== 'number' ||
    c.exp - c.iat > ACCESS_TTL_S
  ) {
    throw new FloeError('unauthorized', 'invalid access token');
  }
  return c as AccessClaims;
}

// ---------- refresh tokens ----------

export async function issueRefresh(
  store: TokenStore,
  o: { tenantId: string; tokenId: string; familyId?: string; now: number },
): Promise<string> {
  const token = `floer_${b64url(randomBytes(32))}`;
  await store.insertRefresh({
    id: rid(8),
    tenantId: o.tenantId,
    tokenId: o.tokenId,
    familyId: o.familyId ?? rid(8),
    expiresAt: o.now + REFRESH_TTL_S * 1000,
    usedAt: null,
    revokedAt: null,
    hash: sha256hex(token),
  });
  return token;
}

/**
 * Spend a refresh token: returns the principal and a rotated refresh token. A spent token
 * presented again revokes its family.
 */
export async function rotateRefresh(
  store: TokenStore,
  refresh: string,
  now: number,
): Promise<{ principal: Principal; refresh: string; notAfterMs: number | null }> {
  if (!/^floer_[A-Za-z0-9_-]{43}$/.test(refresh))
    throw new FloeError('unauthorized', 'invalid refresh token');
  const rec = await store.findRefreshByHash(sha256hex(refresh));
  if (!rec) throw new FloeError('unauthorized', 'invalid refresh token');
  if (rec.revokedAt !== null) throw new FloeError('unauthorized', 'refresh token revoked');
  if (rec.usedAt === null && rec.expiresAt <= now)
    throw new FloeError('unauthorized', 'refresh token expired');
  if (rec.usedAt !== null || !(await store.useRefresh(rec.tenantId, rec.id, now))) {
    await store.revokeFamily(rec.tenantId, rec.familyId, now);
    throw new FloeError('unauthorized', 'refresh token reused; its family is revoked');
  }
  const tok = await store.getToken(rec.tenantId, rec.tokenId);
  if (!tok || tok.revokedAt !== null || (tok.expiresAt !== null && tok.expiresAt <= now)) {
    await store.revokeFamily(rec.tenantId, rec.familyId, now);
    throw new FloeError('unauthorized', 'the API token behind this refresh token is no longer valid');
  }
  const next = await issueRefresh(store, {
    tenantId: rec.tenantId,
    tokenId: rec.tokenId,
    familyId: rec.familyId,
    now,
  });
  return {
    principal: { tenantId: tok.tenantId, role: tok.role, tokenId: tok.id },
    refresh: next,
    notAfterMs: tok.expiresAt,
  };
}

/** The API token id behind a refresh token, if it names one (a lookup only: nothing is spent). */
export async function refreshTokenOwner(store: TokenStore, refresh: string): Promise<string | undefined> {
  if (!/^floer_[A-Za-z0-9_-]{43}$/.test(refresh)) return undefined;
  return (await store.findRefreshByHash(sha256hex(refresh)))?.tokenId;
}
