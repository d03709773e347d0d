/**
 * NIP-46 bunkers (migration 013): one per key, its clients, its single-use connect secrets
 * (SHA-256 only) and the requests it holds for an operator. Everything is tenant-scoped
 * (row-level security) except the lease functions, which work across tenants for the host
 * that runs bunkers (src/coordinator/bunkers/host.ts). Times are Unix milliseconds.
 */
import type { Queryable } from '../connection.js';
import { camelize, json } from './util.js';

export interface BunkerRow {
  tenantId: string;
  keyId: string;
  remoteSignerPubkey: string;
  sealKeyId: string;
  sealedNonce: string;
  sealedSecret: string;
  relays: string[];
  /** Permission strings (`method[:kind]`) whose requests wait for an operator. */
  requireApproval: string[];
  enabled: boolean;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface BunkerClientRow {
  pubkey: string;
  /** src/nostr/nip46.ts Permission objects (expiresAt in unix seconds). */
  permissions: unknown[];
  via: 'bunker' | 'nostrconnect';
  relays: string[];
  name: string | null;
  url: string | null;
  image: string | null;
  connectedAt: number;
}

export interface BunkerSecretRow {
  secretSha256: string;
  permissions: unknown[];
  label: string | null;
  createdAt: number;
  expiresAt: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface BunkerApprovalRow {
  keyId: string;
  approvalId: string;
  client: string;
  requestId: string;
  method: string;
  kind: number | null;
  status: ApprovalStatus;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
}

/** What the host needs to run a bunker it holds (no secret). */
export interface HeldBunker {
  tenantId: string;
  keyId: string;
  relays: string[];
  requireApproval: string[];
  updatedAt: number;
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toBunker(r: Record<string, unknown>): BunkerRow {
  const b = camelize<BunkerRow>(r);
  return {
    ...b,
    leaseUntil: numOrNull(b.leaseUntil),
    createdAt: num(b.createdAt),
    updatedAt: num(b.updatedAt),
  };
}

function toClient(r: Record<string, unknown>): BunkerClientRow {
  const c = camelize<BunkerClientRow & { tenantId: string; keyId: string; updatedAt: number }>(r);
  return {
    pubkey: c.pubkey,
    permissions: c.permissions,
    via: c.via,
    relays: c.relays,
    name: c.name,
    url: c.url,
    image: c.image,
    connectedAt: num(c.connectedAt),
  };
}

function toApproval(r: Record<string, unknown>): BunkerApprovalRow {
  const a = camelize<BunkerApprovalRow & { tenantId: string }>(r);
  return {
    keyId: a.keyId,
    approvalId: a.approvalId,
    client: a.client,
    requestId: a.requestId,
    method: a.method,
    kind: a.kind,
    status: a.status,
    createdAt: num(a.createdAt),
    expiresAt: num(a.expiresAt),
    decidedAt: numOrNull(a.decidedAt),
    decidedBy: a.decidedBy,
  };
}

// ---- bunkers

export interface NewBunker {
  keyId: string;
  remoteSignerPubkey: string;
  sealKeyId: string;
  sealedNonce: string;
  sealedSecret: string;
  relays: string[];
  requireApproval: string[];
  createdAt: number;
}

/** Insert an enabled bunker; false when the key has one already (it is left as it is). */
export async function insertBunker(q: Queryable, b: NewBunker): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO bunkers (key_id, remote_signer_pubkey, seal_key_id, sealed_nonce, sealed_secret,
                          relays, require_approval, enabled, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, true, $8, $8)
     ON CONFLICT (tenant_id, key_id) DO NOTHING`,
    [
      b.keyId,
      b.remoteSignerPubkey,
      b.sealKeyId,
      b.sealedNonce,
      b.sealedSecret,
      json(b.relays),
      json(b.requireApproval),
      b.createdAt,
    ],
  );
  return r.rowCount === 1;
}

/** The key's bunker; `forUpdate` locks the row until the transaction ends. */
export async function getBunker(q: Queryable, keyId: string, forUpdate = false): Promise<BunkerRow | null> {
  const r = await q.query(`SELECT * FROM bunkers WHERE key_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
    keyId,
  ]);
  return r.rows[0] ? toBunker(r.rows[0]) : null;
}

/** Enable the bunker with these relays and approval policy. */
export async function enableBunker(
  q: Queryable,
  keyId: string,
  o: { relays: string[]; requireApproval: string[]; now: number },
): Promise<BunkerRow | null> {
  const r = await q.query(
    `UPDATE bunkers SET enabled = true, relays = $2::jsonb, require_approval = $3::jsonb, updated_at = $4
      WHERE key_id = $1 RETURNING *`,
    [keyId, json(o.relays), json(o.requireApproval), o.now],
  );
  return r.rows[0] ? toBunker(r.rows[0]) : null;
}

/**
 * Disable the bunker: no lease (its host stops it), and its unused secrets are gone (a URL
 * issued before cannot connect after a later enable). Clients stay. Null if it has none.
 */
export async function disableBunker(q: Queryable, keyId: string, now: number): Promise<BunkerRow | null> {
  const r = await q.query(
    `UPDATE bunkers SET enabled = false, lease_owner = NULL, lease_until = NULL, updated_at = $2
      WHERE key_id = $1 RETURNING *`,
    [keyId, now],
  );
  if (!r.rows[0]) return null;
  await q.query('DELETE FROM bunker_secrets WHERE key_id = $1 AND used_at IS NULL', [keyId]);
  return toBunker(r.rows[0]);
}

/**
 * Take or renew the lease of one bunker of the transaction's tenant for `owner` (the API
 * enabled it here): only when it is enabled, sealed under `sealKeyId`, and free or already
 * `owner`'s. Null when another coordinator holds it.
 */
export async function claimBunker(
  q: Queryable,
  keyId: string,
  o: { owner: string; sealKeyId: string; leaseMs: number; now: number },
): Promise<HeldBunker | null> {
  const r = await q.query(
    `UPDATE bunkers SET lease_owner = $2, lease_until = $4::bigint + $5::bigint
      WHERE key_id = $1 AND enabled AND seal_key_id = $3
        AND (lease_owner = $2 OR coalesce(lease_until, 0) < $4::bigint)
      RETURNING tenant_id, key_id, relays, require_approval, updated_at`,
    [keyId, o.owner, o.sealKeyId, o.now, o.leaseMs],
  );
  return r.rows[0] ? toHeld(r.rows[0]) : null;
}

/** Give up `owner`'s lease of one bunker of the transaction's tenant. */
export async function releaseBunker(q: Queryable, keyId: string, owner: string): Promise<void> {
  await q.query(
    'UPDATE bunkers SET lease_owner = NULL, lease_until = NULL WHERE key_id = $1 AND lease_owner = $2',
    [keyId, owner],
  );
}

function toHeld(r: Record<string, unknown>): HeldBunker {
  const h = camelize<HeldBunker>(r);
  return { ...h, updatedAt: num(h.updatedAt) };
}

/**
 * Every tenant: renew `owner`'s leases and claim free bunkers (floe_claim_bunkers, 013). Returns
 * every bunker `owner` holds afterwards.
 */
export async function claimBunkers(
  q: Queryable,
  o: { owner: string; sealKeyId: string; leaseMs: number; limit: number; skip: string[]; now?: number },
): Promise<HeldBunker[]> {
  const r = await q.query('SELECT * FROM floe_claim_bunkers($1, $2, $3, $4, $5::text[], $6)', [
    o.owner,
    o.sealKeyId,
    o.leaseMs,
    o.limit,
    o.skip,
    o.now ?? null,
  ]);
  return r.rows.map(toHeld);
}

/** Every tenant: give up every lease of `owner`. */
export async function releaseBunkerLeases(q: Queryable, owner: string): Promise<number> {
  const r = await q.query<{ n: number }>('SELECT floe_release_bunker_leases($1) AS n', [owner]);
  return Number(r.rows[0]?.n ?? 0);
}

// ---- clients

export async function countClients(q: Queryable, keyId: string): Promise<number> {
  const r = await q.query<{ n: number }>('SELECT count(*)::int AS n FROM bunker_clients WHERE key_id = $1', [
    keyId,
  ]);
  return Number(r.rows[0]?.n ?? 0);
}

export async function listClients(q: Queryable, keyId: string): Promise<BunkerClientRow[]> {
  const r = await q.query('SELECT * FROM bunker_clients WHERE key_id = $1 ORDER BY connected_at, pubkey', [
    keyId,
  ]);
  return r.rows.map(toClient);
}

/** A client of an enabled bunker: a disabled bunker answers no one, whichever coordinator runs it. */
export async function getActiveClient(
  q: Queryable,
  keyId: string,
  pubkey: string,
): Promise<BunkerClientRow | null> {
  const r = await q.query(
    `SELECT c.* FROM bunker_clients c
       JOIN bunkers b ON b.tenant_id = c.tenant_id AND b.key_id = c.key_id
      WHERE c.key_id = $1 AND c.pubkey = $2 AND b.enabled`,
    [keyId, pubkey],
  );
  return r.rows[0] ? toClient(r.rows[0]) : null;
}

export async function upsertClient(
  q: Queryable,
  keyId: string,
  c: BunkerClientRow,
  now: number,
): Promise<void> {
  await q.query(
    `INSERT INTO bunker_clients (key_id, pubkey, permissions, via, relays, name, url, image, connected_at, updated_at)
     VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6, $7, $8, $9, $10)
     ON CONFLICT (tenant_id, key_id, pubkey) DO UPDATE
       SET permissions = EXCLUDED.permissions, via = EXCLUDED.via, relays = EXCLUDED.relays,
           name = EXCLUDED.name, url = EXCLUDED.url, image = EXCLUDED.image,
           connected_at = EXCLUDED.connected_at, updated_at = EXCLUDED.updated_at`,
    [keyId, c.pubkey, json(c.permissions), c.via, json(c.relays), c.name, c.url, c.image, c.connectedAt, now],
  );
}

/** True when the client existed. */
export async function deleteClient(q: Queryable, keyId: string, pubkey: string): Promise<boolean> {
  const r = await q.query('DELETE FROM bunker_clients WHERE key_id = $1 AND pubkey = $2', [keyId, pubkey]);
  return r.rowCount === 1;
}

// ---- secrets

export async function insertSecret(q: Queryable, keyId: string, s: BunkerSecretRow): Promise<void> {
  await q.query(
    `INSERT INTO bunker_secrets (key_id, secret_sha256, permissions, label, created_at, expires_at)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6)`,
    [keyId, s.secretSha256, json(s.permissions), s.label, s.createdAt, s.expiresAt],
  );
}

/**
 * Redeem a secret atomically: only an unused one, before it expires, of an enabled bunker. Of
 * two concurrent calls with one hash at most one gets the row (the UPDATE re-checks
 * `used_at IS NULL` on the row it waited for).
 */
export async function consumeSecret(
  q: Queryable,
  keyId: string,
  o: { secretSha256: string; now: number; client: string },
): Promise<BunkerSecretRow | null> {
  const r = await q.query(
    `UPDATE bunker_secrets s SET used_at = $3, used_by = $4
      WHERE s.key_id = $1 AND s.secret_sha256 = $2 AND s.used_at IS NULL AND s.expires_at > $3
        AND EXISTS (SELECT 1 FROM bunkers b WHERE b.tenant_id = s.tenant_id AND b.key_id = s.key_id AND b.enabled)
      RETURNING s.secret_sha256, s.permissions, s.label, s.created_at, s.expires_at`,
    [keyId, o.secretSha256, o.now, o.client],
  );
  if (!r.rows[0]) return null;
  const s = camelize<BunkerSecretRow>(r.rows[0]);
  return { ...s, createdAt: num(s.createdAt), expiresAt: num(s.expiresAt) };
}

/** Drop secrets that expired before `before` and approvals decided before it (housekeeping). */
export async function pruneBunker(q: Queryable, keyId: string, before: number): Promise<void> {
  await q.query('DELETE FROM bunker_secrets WHERE key_id = $1 AND expires_at < $2', [keyId, before]);
  await q.query(
    `DELETE FROM bunker_approvals WHERE key_id = $1 AND status <> 'pending' AND decided_at < $2`,
    [keyId, before],
  );
}

// ---- approvals

export async function insertApproval(
  q: Queryable,
  a: Omit<BunkerApprovalRow, 'status' | 'decidedAt' | 'decidedBy'>,
): Promise<void> {
  await q.query(
    `INSERT INTO bunker_approvals (key_id, approval_id, client, request_id, method, kind, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
    [a.keyId, a.approvalId, a.client, a.requestId, a.method, a.kind, a.createdAt, a.expiresAt],
  );
}

/** Pending and not yet expired, oldest first. */
export async function listPendingApprovals(
  q: Queryable,
  keyId: string,
  now: number,
): Promise<BunkerApprovalRow[]> {
  const r = await q.query(
    `SELECT * FROM bunker_approvals WHERE key_id = $1 AND status = 'pending' AND expires_at > $2
      ORDER BY created_at, approval_id`,
    [keyId, now],
  );
  return r.rows.map(toApproval);
}

export async function getApproval(
  q: Queryable,
  keyId: string,
  approvalId: string,
): Promise<BunkerApprovalRow | null> {
  const r = await q.query('SELECT * FROM bunker_approvals WHERE key_id = $1 AND approval_id = $2', [
    keyId,
    approvalId,
  ]);
  return r.rows[0] ? toApproval(r.rows[0]) : null;
}

/**
 * Settle a pending approval (`expiresAt` bounds an operator's decision; the bunker's own outcome
 * passes `now` = its decision time and no bound). Null when it was not pending (any more).
 */
export async function settleApproval(
  q: Queryable,
  keyId: string,
  approvalId: string,
  o: { status: Exclude<ApprovalStatus, 'pending'>; now: number; by: string | null; unexpired: boolean },
): Promise<BunkerApprovalRow | null> {
  const r = await q.query(
    `UPDATE bunker_approvals SET status = $3, decided_at = $4, decided_by = $5
      WHERE key_id = $1 AND approval_id = $2 AND status = 'pending' AND (NOT $6 OR expires_at > $4)
      RETURNING *`,
    [keyId, approvalId, o.status, o.now, o.by, o.unexpired],
  );
  return r.rows[0] ? toApproval(r.rows[0]) : null;
}

/** Approvals among `ids` that an operator decided (approved or denied). */
export async function decidedApprovals(
  q: Queryable,
  keyId: string,
  ids: string[],
): Promise<{ approvalId: string; status: 'approved' | 'denied' }[]> {
  if (ids.length === 0) return [];
  const r = await q.query<{ approval_id: string; status: 'approved' | 'denied' }>(
    `SELECT approval_id, status FROM bunker_approvals
      WHERE key_id = $1 AND approval_id = ANY($2::text[]) AND status IN ('approved', 'denied')`,
    [keyId, ids],
  );
  return r.rows.map((x) => ({ approvalId: x.approval_id, status: x.status }));
}

/**
 * Requests a coordinator held for this bunker before it stopped are gone with it: when a
 * bunker (re)starts, its still-pending approvals expire.
 */
export async function expirePendingApprovals(q: Queryable, keyId: string, now: number): Promise<number> {
  const r = await q.query(
    `UPDATE bunker_approvals SET status = 'expired', decided_at = $2
      WHERE key_id = $1 AND status = 'pending'`,
    [keyId, now],
  );
  return r.rowCount;
}
