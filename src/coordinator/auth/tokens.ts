/**
 * API tokens and short-lived access tokens.
 *
 * - API token: `floe_<id>_<secret>`, shown once at creation; only SHA-256(token) is stored.
 * - Access token: HS256 JWT, 15 minutes, claims {sub: token id, tid: tenant, role}.
 * - Refresh token: `floer_<random>`, single use; using it rotates it (a new one in the same
 *   family). Presenting a spent refresh token revokes the whole family (token theft).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiTokenRecord, Principal, RefreshRecord } from '../../domain/records.js';
import { hasRole, ROLES, type Role } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';

export type { ApiTokenRecord, Principal, RefreshRecord };
export { hasRole };

export const ACCESS_TTL_S = 15 * 60;
export const REFRESH_TTL_S = 7 * 24 * 3600;

/** Storage of token hashes. Lookups by hash cross tenants (the tenant is not known yet at login). */
export interface TokenStore {
  insertToken(t: ApiTokenRecord & { hash: string }): Promise<void>;
  findTokenByHash(hash: string): Promise<ApiTokenRecord | undefined>;
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

export async function createApiToken(
  store: TokenStore,
  o: { tenantId: string; role: Role; label?: string | null; ttlMs?: number; now: number },
): Promise<{ record: ApiTokenRecord; token: string }> {
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
  await store.insertToken({ ...record, hash: sha256hex(token) });
  return { record, token };
}

/** Resolve an API token; refuses unknown, malformed, expired and revoked tokens alike. */
export async function verifyApiToken(store: TokenStore, token: string, now: number): Promise<ApiTokenRecord> {
  if (!TOKEN_RE.test(token)) throw new FloeError('unauthorized', 'invalid token');
  const rec = await store.findTokenByHash(sha256hex(token));
  if (!rec) throw new FloeError('unauthorized', 'invalid token');
  if (rec.revokedAt !== null) throw new FloeError('unauthorized', 'token revoked');
  if (rec.expiresAt !== null && rec.expiresAt <= now) throw new FloeError('unauthorized', 'token expired');
  return rec;
}

// ---------- JWT (HS256) ----------

export interface AccessClaims {
  sub: string;
  tid: string;
  role: Role;
  iat: number;
  exp: number;
  jti: string;
}

export function signAccessToken(
  secret: Uint8Array,
  p: Principal,
  nowMs: number,
  ttlS = ACCESS_TTL_S,
): string {
  const iat = Math.floor(nowMs / 1000);
  const header = b64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
  const claims: AccessClaims = {
    sub: p.tokenId,
    tid: p.tenantId,
    role: p.role,
    iat,
    exp: iat + ttlS,
    jti: rid(8),
  };
  const body = b64url(Buffer.from(JSON.stringify(claims)));
  const sig = b64url(createHmac('sha256', secret).update(`${header}.${body}`).digest());
  return `${header}.${body}.${sig}`;
}

export function verifyAccessToken(secret: Uint8Array, jwt: string, nowMs: number): AccessClaims {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new FloeError('unauthorized', 'invalid access token');
  const [h, b, s] = parts as [string, string, string];
  const expect = createHmac('sha256', secret).update(`${h}.${b}`).digest();
  const got = Buffer.from(s, 'base64url');
  // Canonical encoding only: base64url ignores the unused low bits of the last character.
  if (got.toString('base64url') !== s || got.length !== expect.length || !timingSafeEqual(got, expect)) {
    throw new FloeError('unauthorized', 'invalid access token');
  }
  let header: { alg?: string };
  let claims: AccessClaims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString());
    claims = JSON.parse(Buffer.from(b, 'base64url').toString());
  } catch {
    throw new FloeError('unauthorized', 'invalid access token');
  }
  if (header.alg !== 'HS256') throw new FloeError('unauthorized', 'invalid access token');
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs)
    throw new FloeError('unauthorized', 'access token expired');
  if (!ROLES.includes(claims.role) || typeof claims.tid !== 'string' || typeof claims.sub !== 'string') {
    throw new FloeError('unauthorized', 'invalid access token');
  }
  return claims;
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
): Promise<{ principal: Principal; refresh: string }> {
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
  return { principal: { tenantId: tok.tenantId, role: tok.role, tokenId: tok.id }, refresh: next };
}

// ---------- roles and rate limits ----------

/** Token bucket per principal, in memory (per coordinator process). */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Returns 0 if allowed, else the seconds to wait. */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
      if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.perSecond);
  }
}
