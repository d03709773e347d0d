/**
 * API tokens and refresh tokens. Only SHA-256 hashes (hex) of token secrets are stored. The
 * lookups by hash run before the tenant is known (login, refresh), through SECURITY DEFINER
 * functions; everything else is tenant-scoped.
 */
import { createHash } from 'node:crypto';
import type { ApiTokenRecord, RefreshRecord } from '../../domain/records.js';
import type { Role } from '../../domain/vocabulary.js';
import type { Queryable } from '../connection.js';
import { camelize } from './util.js';

export type TokenRole = Role;

/** A row of api_tokens: the domain record plus the secret's hash. */
export interface ApiTokenRow extends ApiTokenRecord {
  tokenSha256: string;
  lastUsedAt: number | null;
}

/** A row of refresh_tokens: the domain record plus the secret's hash. */
export interface RefreshTokenRow extends RefreshRecord {
  tokenSha256: string;
  createdAt: number;
}

export const sha256Hex = (secret: string): string => createHash('sha256').update(secret).digest('hex');

const toToken = (r: Record<string, unknown>) => camelize<ApiTokenRow>(r);
const toRefresh = (r: Record<string, unknown>) => camelize<RefreshTokenRow>(r);

export interface NewApiToken {
  id: string;
  tenantId?: string;
  tokenSha256: string;
  role: TokenRole;
  label?: string | null;
  createdAt: number;
  expiresAt?: number | null;
}

export async function insertApiToken(q: Queryable, t: NewApiToken): Promise<ApiTokenRow> {
  const r = await q.query(
    `INSERT INTO api_tokens (id, tenant_id, token_sha256, role, label, created_at, expires_at)
     VALUES ($1, coalesce($2, floe_current_tenant()), $3, $4, $5, $6, $7) RETURNING *`,
    [t.id, t.tenantId ?? null, t.tokenSha256, t.role, t.label ?? null, t.createdAt, t.expiresAt ?? null],
  );
  return toToken(r.rows[0]!);
}

/** Any tenant's token by the hash of its secret (login). Validity (revoked, expired) is the caller's to check. */
export async function findApiTokenByHash(q: Queryable, tokenSha256: string): Promise<ApiTokenRow | null> {
  const r = await q.query('SELECT * FROM floe_lookup_token($1)', [tokenSha256]);
  return r.rows[0] ? toToken(r.rows[0]) : null;
}

export async function getApiToken(q: Queryable, id: string): Promise<ApiTokenRow | null> {
  const r = await q.query('SELECT * FROM api_tokens WHERE id = $1', [id]);
  return r.rows[0] ? toToken(r.rows[0]) : null;
}

export async function listApiTokens(q: Queryable): Promise<ApiTokenRow[]> {
  const r = await q.query('SELECT * FROM api_tokens ORDER BY created_at, id');
  return r.rows.map(toToken);
}

/** True if it was live and is now revoked. */
export async function revokeApiToken(q: Queryable, id: string, at: number): Promise<boolean> {
  const r = await q.query('UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [
    id,
    at,
  ]);
  return r.rowCount === 1;
}

export async function touchApiToken(q: Queryable, id: string, at: number): Promise<void> {
  await q.query(
    'UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)',
    [id, at],
  );
}

export interface NewRefreshToken {
  id: string;
  tenantId?: string;
  tokenId: string;
  familyId: string;
  tokenSha256: string;
  createdAt: number;
  expiresAt: number;
}

export async function insertRefreshToken(q: Queryable, t: NewRefreshToken): Promise<RefreshTokenRow> {
  const r = await q.query(
    `INSERT INTO refresh_tokens (id, tenant_id, token_id, family_id, token_sha256, created_at, expires_at)
     VALUES ($1, coalesce($2, floe_current_tenant()), $3, $4, $5, $6, $7) RETURNING *`,
    [t.id, t.tenantId ?? null, t.tokenId, t.familyId, t.tokenSha256, t.createdAt, t.expiresAt],
  );
  return toRefresh(r.rows[0]!);
}

/** Any tenant's refresh token by the hash of its secret. */
export async function findRefreshTokenByHash(
  q: Queryable,
  tokenSha256: string,
): Promise<RefreshTokenRow | null> {
  const r = await q.query('SELECT * FROM floe_lookup_refresh_token($1)', [tokenSha256]);
  return r.rows[0] ? toRefresh(r.rows[0]) : null;
}

/**
 * Spends a refresh token: true only for the first use of a live, unexpired token. On false the
 * caller revokes the family (revokeRefreshFamily) and commits — do not throw inside the same
 * transaction, or the revocation is rolled back with it.
 */
export async function useRefreshToken(q: Queryable, id: string, at: number): Promise<boolean> {
  const r = await q.query(
    `UPDATE refresh_tokens SET used_at = $2
      WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2`,
    [id, at],
  );
  return r.rowCount === 1;
}

/** Revokes every live token of a family; returns how many. */
export async function revokeRefreshFamily(q: Queryable, familyId: string, at: number): Promise<number> {
  const r = await q.query(
    'UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL',
    [familyId, at],
  );
  return r.rowCount;
}
