/**
 * Signing sessions. Status changes are conditional UPDATEs (… WHERE status = ANY(expected)), so
 * when two coordinators race exactly one wins and the other gets null. The legal moves are the
 * domain's state table (src/domain/session-state.ts); the database trigger (migration 008)
 * enforces the same table for any UPDATE.
 */

import type { Intent } from '../../domain/intent.js';
import { KeyChanged } from '../../domain/key-version.js';
import type { SessionRecord } from '../../domain/records.js';
import {
  canTransition,
  type InitialSessionStatus,
  nonTerminalStatuses,
  SESSION_STATUSES,
  type SessionStatus,
} from '../../domain/session-state.js';
import type { IntentType } from '../../domain/vocabulary.js';
import { FloeError } from '../../protocol/errors.js';
import type { Queryable } from '../connection.js';
import {
  assignments,
  camelize,
  clampLimit,
  dbError,
  decodeCursor,
  encodeCursor,
  isUniqueViolation,
  json,
  SQLSTATE,
} from './util.js';

export type { SessionStatus };

/** A row of signing_sessions: the domain record plus what only storage needs. */
export interface SessionRow extends SessionRecord {
  /** Hash of the request that carried the idempotency key: the same key with another request is a conflict. */
  idempotencyFingerprint: string | null;
  /** The coordinator holding the publishing round, and until when (migration 012). */
  publishLeaseOwner?: string | null;
  publishLeaseUntil?: number | null;
}

export interface NewSession {
  sessionId: string;
  /** Defaults to the transaction's tenant. */
  tenantId?: string;
  keyId: string;
  messageHash: string;
  intentType: IntentType;
  intent: Intent;
  intentHash: string;
  /** Initial status: `pending`, or `awaiting_approval` under an approval policy. */
  status?: InitialSessionStatus;
  participants?: number[];
  /**
   * A `pending` session born in its first attempt: it is inserted in `nonce_collection`,
   * attempt 1, on these members (what its first move would have written).
   */
  firstAttempt?: FirstAttempt;
  threshold: number;
  createdBy?: string | null;
  idempotencyKey?: string | null;
  /** Fingerprint of the request; the same idempotency key with another fingerprint is a conflict. */
  idempotencyFingerprint?: string | null;
  createdAt: number;
  expiresAt: number;
  /** nostr_event: relays to publish to once completed (migration 012); absent or null: none. */
  publishRelays?: readonly string[] | null;
  /**
   * Insert only while the key's row is this version (getKeyVersioned); otherwise nothing is
   * written and KeyChanged is thrown. Absent: no condition on the key.
   */
  keyVersion?: string;
}

/** The members and start time of a session's first attempt, written with the session. */
export interface FirstAttempt {
  participants: number[];
  startedAt: number;
}

/** The status, attempt, participants and stamp a new session is inserted with. */
function initialColumns(s: NewSession) {
  const f = s.firstAttempt;
  if (f && (s.status ?? 'pending') !== 'pending') {
    throw new RangeError('insertSession: only a pending session starts in its first attempt');
  }
  return f
    ? { status: 'nonce_collection', attempt: 1, participants: f.participants, startedAt: f.startedAt }
    : { status: s.status ?? 'pending', attempt: 0, participants: s.participants ?? [], startedAt: null };
}

export type SessionPatch = Partial<
  Pick<
    SessionRow,
    | 'attempt'
    | 'participants'
    | 'nonceCommitments'
    | 'partialSignatures'
    | 'finalSignature'
    | 'finalEventId'
    | 'errorCode'
    | 'errorMessage'
    | 'culprits'
    | 'nonceCollectionStartedAt'
    | 'signingStartedAt'
    | 'completedAt'
    | 'failedAt'
    // bitcoin_psbt sessions and policy refusals (migration 015)
    | 'bitcoin'
    | 'policyRefusals'
    // a session leaving awaiting_approval gets the signing TTL from then (DESIGN §13)
    | 'expiresAt'
  >
>;

/** Column, SQL type, and whether the value goes as JSON text (`::jsonb`), of each patch field. */
const PATCH_COLUMNS: Record<keyof SessionPatch, { col: string; type: string; json?: boolean }> = {
  attempt: { col: 'attempt', type: 'integer' },
  participants: { col: 'participants', type: 'jsonb', json: true },
  nonceCommitments: { col: 'nonce_commitments', type: 'jsonb', json: true },
  partialSignatures: { col: 'partial_signatures', type: 'jsonb', json: true },
  finalSignature: { col: 'final_signature', type: 'text' },
  finalEventId: { col: 'final_event_id', type: 'text' },
  errorCode: { col: 'error_code', type: 'text' },
  errorMessage: { col: 'error_message', type: 'text' },
  culprits: { col: 'culprits', type: 'jsonb', json: true },
  nonceCollectionStartedAt: { col: 'nonce_collection_started_at', type: 'bigint' },
  signingStartedAt: { col: 'signing_started_at', type: 'bigint' },
  completedAt: { col: 'completed_at', type: 'bigint' },
  failedAt: { col: 'failed_at', type: 'bigint' },
  bitcoin: { col: 'bitcoin', type: 'jsonb', json: true },
  policyRefusals: { col: 'policy_refusals', type: 'jsonb', json: true },
  expiresAt: { col: 'expires_at', type: 'bigint' },
};

/** Timestamp stamped when a session enters a status (unless the patch sets it). */
const STAMP: Partial<Record<SessionStatus, keyof SessionPatch>> = {
  nonce_collection: 'nonceCollectionStartedAt',
  signing: 'signingStartedAt',
  completed: 'completedAt',
  failed: 'failedAt',
};

export const toSession = (r: Record<string, unknown>): SessionRow => camelize<SessionRow>(r);

/**
 * Inserts a session, or — when a session with the same idempotency key exists in the tenant —
 * returns that one (`created: false`). Throws `idempotency_conflict` if that session was made
 * from a different request, `unknown_key` if the key is not in the tenant, KeyChanged if `keyVersion`
 * is no longer the key's (and no session of the idempotency key exists): nothing is written then.
 */
export async function insertSession(
  q: Queryable,
  s: NewSession,
): Promise<{ session: SessionRow; created: boolean }> {
  let inserted: SessionRow | undefined;
  const initial = initialColumns(s);
  try {
    const r = await q.query(
      `INSERT INTO signing_sessions (session_id, tenant_id, key_id, message_hash, intent_type, intent,
         intent_hash, status, participants, threshold, created_by, idempotency_key, idempotency_fingerprint,
         created_at, updated_at, expires_at, publish_relays, publish_status, attempt,
         nonce_collection_started_at)
       SELECT $1::text, coalesce($2::text, floe_current_tenant()), $3::text, $4::text, $5::text, $6::jsonb,
         $7::text, $8::text, $9::jsonb, $10::integer, $11::text, $12::text, $13::text, $14::bigint,
         $14::bigint, $15::bigint, $16::jsonb, CASE WHEN $16::jsonb IS NULL THEN NULL ELSE 'pending' END,
         $17::integer, $18::bigint
        WHERE $19::text IS NULL
           OR EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = coalesce($2::text, floe_current_tenant())
                        AND k.id = $3::text AND k.xmin::text = $19::text)
       ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
       RETURNING *`,
      [
        s.sessionId,
        s.tenantId ?? null,
        s.keyId,
        s.messageHash,
        s.intentType,
        json(s.intent),
        s.intentHash,
        initial.status,
        json(initial.participants),
        s.threshold,
        s.createdBy ?? null,
        s.idempotencyKey ?? null,
        s.idempotencyFingerprint ?? null,
        s.createdAt,
        s.expiresAt,
        s.publishRelays ? json(s.publishRelays) : null,
        initial.attempt,
        initial.startedAt,
        s.keyVersion ?? null,
      ],
    );
    if (r.rows[0]) inserted = toSession(r.rows[0]);
  } catch (e) {
    const d = dbError(e);
    if (d.code === SQLSTATE.foreignKeyViolation && d.constraint === 'signing_sessions_key_fkey') {
      throw new FloeError('unknown_key', `no key ${s.keyId}`);
    }
    if (isUniqueViolation(e, ['signing_sessions_pkey']))
      throw new FloeError('conflict', 'session id already exists');
    throw e;
  }
  if (inserted) return { session: inserted, created: true };
  const existing = s.idempotencyKey ? await getSessionByIdempotencyKey(q, s.idempotencyKey) : null;
  // Nothing inserted and no session of that idempotency key: the key's row changed.
  if (!existing && s.keyVersion !== undefined) throw new KeyChanged(s.keyId);
  if (
    !existing ||
    (s.idempotencyFingerprint != null && existing.idempotencyFingerprint !== s.idempotencyFingerprint)
  ) {
    throw new FloeError('idempotency_conflict', 'this Idempotency-Key was used for a different request');
  }
  return { session: existing, created: false };
}

/**
 * Inserts several new sessions (no idempotency keys) of the transaction's tenant in one
 * statement, in order; returns their rows in the same order. Throws `unknown_key` if a key is not
 * in the tenant, `conflict` if a session id exists, KeyChanged if the items name a key version
 * (one, of one key) that is no longer the key's: nothing is inserted then.
 */
export async function insertSessions(
  q: Queryable,
  list: readonly Omit<NewSession, 'tenantId' | 'idempotencyKey' | 'idempotencyFingerprint'>[],
): Promise<SessionRow[]> {
  if (list.length === 0) return [];
  const version = list[0]!.keyVersion ?? null;
  if (version !== null && list.some((s) => s.keyVersion !== version || s.keyId !== list[0]!.keyId)) {
    throw new TypeError('db: insertSessions names one key version, of one key');
  }
  let rows: SessionRow[];
  try {
    const r = await q.query(
      `INSERT INTO signing_sessions (session_id, tenant_id, key_id, message_hash, intent_type, intent,
         intent_hash, status, participants, threshold, created_by, idempotency_key, idempotency_fingerprint,
         created_at, updated_at, expires_at, publish_relays, publish_status, attempt,
         nonce_collection_started_at)
       SELECT v.session_id, floe_current_tenant(), v.key_id, v.message_hash, v.intent_type, v.intent,
              v.intent_hash, v.status, v.participants, v.threshold, v.created_by, NULL, NULL,
              v.created_at, v.created_at, v.expires_at, v.publish_relays,
              CASE WHEN v.publish_relays IS NULL THEN NULL ELSE 'pending' END, v.attempt,
              v.nonce_collection_started_at
         FROM jsonb_to_recordset($1::jsonb) AS v (ord integer, session_id text, key_id text,
              message_hash text, intent_type text, intent jsonb, intent_hash text, status text,
              participants jsonb, threshold integer, created_by text, created_at bigint,
              expires_at bigint, publish_relays jsonb, attempt integer,
              nonce_collection_started_at bigint)
        WHERE $2::text IS NULL
           OR EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = floe_current_tenant() AND k.id = v.key_id
                        AND k.xmin::text = $2::text)
        ORDER BY v.ord
       RETURNING *`,
      [
        json(
          list.map((s, ord) => {
            const initial = initialColumns(s);
            return {
              ord,
              session_id: s.sessionId,
              key_id: s.keyId,
              message_hash: s.messageHash,
              intent_type: s.intentType,
              intent: s.intent,
              intent_hash: s.intentHash,
              status: initial.status,
              participants: initial.participants,
              threshold: s.threshold,
              created_by: s.createdBy ?? null,
              created_at: s.createdAt,
              expires_at: s.expiresAt,
              publish_relays: s.publishRelays ?? null,
              attempt: initial.attempt,
              nonce_collection_started_at: initial.startedAt,
            };
          }),
        ),
        version,
      ],
    );
    rows = r.rows.map(toSession);
  } catch (e) {
    const d = dbError(e);
    if (d.code === SQLSTATE.foreignKeyViolation && d.constraint === 'signing_sessions_key_fkey') {
      // A batch is one key; otherwise the statement does not say which one is missing.
      throw new FloeError('unknown_key', `no key ${[...new Set(list.map((s) => s.keyId))].join(' or ')}`);
    }
    if (isUniqueViolation(e, ['signing_sessions_pkey']))
      throw new FloeError('conflict', 'session id already exists');
    throw e;
  }
  if (version !== null && rows.length === 0) throw new KeyChanged(list[0]!.keyId);
  const byId = new Map(rows.map((r) => [r.sessionId, r]));
  return list.map((s) => byId.get(s.sessionId)!);
}

export async function getSession(q: Queryable, sessionId: string): Promise<SessionRow | null> {
  const r = await q.query('SELECT * FROM signing_sessions WHERE session_id = $1', [sessionId]);
  return r.rows[0] ? toSession(r.rows[0]) : null;
}

export async function getSessionByIdempotencyKey(q: Queryable, key: string): Promise<SessionRow | null> {
  const r = await q.query(
    'SELECT * FROM signing_sessions WHERE tenant_id = floe_current_tenant() AND idempotency_key = $1',
    [key],
  );
  return r.rows[0] ? toSession(r.rows[0]) : null;
}

export interface ListSessionsOptions {
  limit?: number;
  cursor?: string | null;
  status?: SessionStatus | null;
  keyId?: string | null;
}

/** Newest first, keyset-paginated on (created_at, session_id). */
export async function listSessions(
  q: Queryable,
  o: ListSessionsOptions = {},
): Promise<{ items: SessionRow[]; nextCursor: string | null }> {
  const limit = clampLimit(o.limit);
  const params: unknown[] = [];
  const where: string[] = ['tenant_id = floe_current_tenant()'];
  if (o.cursor) {
    const c = decodeCursor(o.cursor);
    params.push(c.createdAt, c.id);
    where.push(`(created_at, session_id) < ($${params.length - 1}, $${params.length})`);
  }
  if (o.status) {
    params.push(o.status);
    where.push(`status = $${params.length}`);
  }
  if (o.keyId) {
    params.push(o.keyId);
    where.push(`key_id = $${params.length}`);
  }
  params.push(limit + 1);
  const r = await q.query(
    `SELECT * FROM signing_sessions WHERE ${where.join(' AND ')}
      ORDER BY created_at DESC, session_id DESC LIMIT $${params.length}`,
    params,
  );
  const items = r.rows.slice(0, limit).map(toSession);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor: r.rows.length > limit && last ? encodeCursor(last.createdAt, last.sessionId) : null,
  };
}

export interface TransitionOptions {
  /** Also require this attempt number (fences a coordinator working on an older attempt). */
  expectAttempt?: number;
  /** Time stamped into updated_at and the status's own timestamp (default Date.now()). */
  now?: number;
}

/**
 * Moves a session from one of `from` to `to` and applies `patch`, in one conditional UPDATE.
 * Returns the updated row, or null if the session is not (any more) in one of `from` — another
 * writer won — or if no status in `from` may legally move to `to`.
 *
 * - `to` equal to the current status is a plain patch (except for nonce_collection: see below).
 * - Entering nonce_collection (also from nonce_collection) starts a new attempt: attempt + 1
 *   unless the patch sets it.
 * - updated_at is `now`; the status's own timestamp (nonce_collection_started_at,
 *   signing_started_at, completed_at, failed_at) is stamped on entry unless the patch sets it.
 */
export async function transitionSession(
  q: Queryable,
  sessionId: string,
  from: readonly SessionStatus[],
  to: SessionStatus,
  patch: SessionPatch = {},
  opts: TransitionOptions = {},
): Promise<SessionRow | null> {
  const r = await moveOne(q, sessionId, from, to, patch, opts, '*');
  return r ? toSession(r) : null;
}

/** transitionSession's statement, returning `returning` of the moved row (raw), or null. */
async function moveOne(
  q: Queryable,
  sessionId: string,
  from: readonly SessionStatus[],
  to: SessionStatus,
  patch: SessionPatch,
  opts: TransitionOptions,
  returning: '*' | 'session_id',
): Promise<Record<string, unknown> | null> {
  const legal = from.filter((f) => canTransition(f, to) || f === to);
  if (legal.length === 0) return null;
  const now = opts.now ?? Date.now();
  const params: unknown[] = [to, now];
  const sets = ['status = $1', 'updated_at = $2', ...assignments(patch, PATCH_COLUMNS, params)];
  const stamp = STAMP[to];
  if (stamp && patch[stamp] === undefined) {
    const col = PATCH_COLUMNS[stamp].col;
    sets.push(
      to === 'nonce_collection' ? `${col} = $2` : `${col} = CASE WHEN status = $1 THEN ${col} ELSE $2 END`,
    );
  }
  if (to === 'nonce_collection' && patch.attempt === undefined) sets.push('attempt = attempt + 1');
  params.push(sessionId, legal);
  let where = `session_id = $${params.length - 1} AND status = ANY($${params.length}::text[])`;
  if (opts.expectAttempt !== undefined) {
    params.push(opts.expectAttempt);
    where += ` AND attempt = $${params.length}`;
  }
  const r = await q.query(
    `UPDATE signing_sessions SET ${sets.join(', ')} WHERE ${where} RETURNING ${returning}`,
    params,
  );
  return r.rows[0] ?? null;
}

/** One session's move in transitionSessions. */
export interface SessionMoveItem {
  sessionId: string;
  /** Also require this attempt number. */
  expectAttempt?: number;
  patch: SessionPatch;
}

/**
 * transitionSession for several sessions (distinct ids) from one of `from` to `to`, each with its
 * own patch and attempt, under the same conditions and with the same stamps: one UPDATE for the
 * items whose patches set the same fields (a batch's all do). Returns, per item, the updated row
 * or null.
 */
export async function transitionSessions(
  q: Queryable,
  items: readonly SessionMoveItem[],
  from: readonly SessionStatus[],
  to: SessionStatus,
  opts: { now?: number } = {},
): Promise<(SessionRow | null)[]> {
  return moveSessions(q, items, from, to, opts, 's.*', toSession);
}

/**
 * transitionSessions for a caller that needs only to know which sessions moved: the rows are
 * not sent back (a step whose next step returns them anyway).
 */
export async function transitionSessionsMoved(
  q: Queryable,
  items: readonly SessionMoveItem[],
  from: readonly SessionStatus[],
  to: SessionStatus,
  opts: { now?: number } = {},
): Promise<boolean[]> {
  const out = await moveSessions(q, items, from, to, opts, 's.session_id', () => true as const);
  return out.map((x) => x !== null);
}

async function moveSessions<T>(
  q: Queryable,
  items: readonly SessionMoveItem[],
  from: readonly SessionStatus[],
  to: SessionStatus,
  opts: { now?: number },
  returning: 's.*' | 's.session_id',
  row: (r: Record<string, unknown>) => T,
): Promise<(T | null)[]> {
  const out: (T | null)[] = items.map(() => null);
  const legal = from.filter((f) => canTransition(f, to) || f === to);
  if (legal.length === 0 || items.length === 0) return out;
  if (new Set(items.map((it) => it.sessionId)).size !== items.length) {
    throw new TypeError('db: transitionSessions moves each session once');
  }
  const now = opts.now ?? Date.now();
  if (items.length === 1) {
    // One session: the single-row statement (no JSON list to join; ~0.5 ms less on PGlite).
    const it = items[0]!;
    const expect = it.expectAttempt !== undefined ? { expectAttempt: it.expectAttempt } : {};
    const r = await moveOne(
      q,
      it.sessionId,
      from,
      to,
      it.patch,
      { now, ...expect },
      returning === 's.*' ? '*' : 'session_id',
    );
    return [r ? row(r) : null];
  }
  // Items by the fields their patch sets, in order.
  const shapes = new Map<string, { fields: (keyof SessionPatch)[]; at: number[] }>();
  for (const [i, it] of items.entries()) {
    const fields = (Object.keys(it.patch) as (keyof SessionPatch)[]).filter((k) => it.patch[k] !== undefined);
    for (const k of fields) if (!PATCH_COLUMNS[k]) throw new TypeError(`db: unknown patch field ${k}`);
    const key = fields.join(',');
    const shape = shapes.get(key) ?? { fields, at: [] };
    shape.at.push(i);
    shapes.set(key, shape);
  }
  for (const { fields, at } of shapes.values()) {
    const cols = fields.map((k) => PATCH_COLUMNS[k]);
    const sets = ['status = $1', 'updated_at = $2', ...cols.map((c) => `${c.col} = v.${c.col}`)];
    const stamp = STAMP[to];
    if (stamp && !fields.includes(stamp)) {
      const col = PATCH_COLUMNS[stamp].col;
      sets.push(
        to === 'nonce_collection'
          ? `${col} = $2`
          : `${col} = CASE WHEN s.status = $1 THEN s.${col} ELSE $2 END`,
      );
    }
    if (to === 'nonce_collection' && !fields.includes('attempt')) sets.push('attempt = s.attempt + 1');
    const defs = ['session_id text', 'expect_attempt integer', ...cols.map((c) => `${c.col} ${c.type}`)];
    const values = at.map((i) => {
      const it = items[i]!;
      const v: Record<string, unknown> = {
        session_id: it.sessionId,
        expect_attempt: it.expectAttempt ?? null,
      };
      for (const [j, k] of fields.entries()) v[cols[j]!.col] = it.patch[k];
      return v;
    });
    // The ids again as an array: a condition the planner matches to the primary key. Joined
    // only to the JSON list (guessed at 100 rows), it read every live session, or every one of
    // the tenant's in the source status: more with each session served (test/db/session-move-plan.test.ts).
    const r = await q.query(
      `UPDATE signing_sessions s SET ${sets.join(', ')}
         FROM jsonb_to_recordset($3::jsonb) AS v (${defs.join(', ')})
        WHERE s.session_id = ANY($5::text[]) AND s.session_id = v.session_id
          AND s.status = ANY($4::text[])
          AND (v.expect_attempt IS NULL OR s.attempt = v.expect_attempt)
       RETURNING ${returning}`,
      [to, now, json(values), legal, at.map((i) => items[i]!.sessionId)],
    );
    const moved = new Map(r.rows.map((x) => [x.session_id as string, row(x)]));
    for (const i of at) out[i] = moved.get(items[i]!.sessionId) ?? null;
  }
  return out;
}

/** Applies `patch` without a status change, only while the session is in one of `statuses`. */
export async function patchSession(
  q: Queryable,
  sessionId: string,
  statuses: readonly SessionStatus[],
  patch: Omit<SessionPatch, 'attempt'>,
  opts: TransitionOptions = {},
): Promise<SessionRow | null> {
  const params: unknown[] = [opts.now ?? Date.now()];
  const sets = ['updated_at = $1', ...assignments(patch, PATCH_COLUMNS, params)];
  params.push(sessionId, [...statuses]);
  let where = `session_id = $${params.length - 1} AND status = ANY($${params.length}::text[])`;
  if (opts.expectAttempt !== undefined) {
    params.push(opts.expectAttempt);
    where += ` AND attempt = $${params.length}`;
  }
  const r = await q.query(
    `UPDATE signing_sessions SET ${sets.join(', ')} WHERE ${where} RETURNING *`,
    params,
  );
  return r.rows[0] ? toSession(r.rows[0]) : null;
}

/** Expires past-due live sessions in every tenant; returns how many. */
export async function expireSessions(q: Queryable): Promise<number> {
  const r = await q.query<{ n: number }>('SELECT expire_old_signing_sessions() AS n');
  return r.rows[0]?.n ?? 0;
}

/** Deletes terminal sessions older than `retentionDays` in every tenant (commitments cascade); returns how many. */
export async function cleanupSessions(q: Queryable, retentionDays = 90): Promise<number> {
  const r = await q.query<{ n: number }>('SELECT cleanup_old_signing_sessions($1) AS n', [retentionDays]);
  return r.rows[0]?.n ?? 0;
}

/** Live sessions not updated for `staleMs`, in every tenant (to resume after a crash). */
export async function listStaleSessions(
  q: Queryable,
  staleMs: number,
  limit: number,
  now?: number,
): Promise<{ tenantId: string; sessionId: string }[]> {
  const r = await q.query<{ tenant_id: string; session_id: string }>(
    'SELECT tenant_id, session_id FROM floe_list_stale_sessions($1, $2, $3)',
    [staleMs, limit, now ?? null],
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, sessionId: x.session_id }));
}

/**
 * Claim live sessions nobody moved for `staleMs` (and whose lease ran out), in every tenant, for
 * `owner` until now + `leaseMs`: each is claimed by one caller only (migration 011).
 */
export async function claimStaleSessions(
  q: Queryable,
  o: { owner: string; staleMs: number; leaseMs: number; limit: number; now?: number },
): Promise<{ tenantId: string; sessionId: string }[]> {
  const r = await q.query<{ tenant_id: string; session_id: string }>(
    'SELECT tenant_id, session_id FROM floe_claim_stale_sessions($1, $2, $3, $4, $5)',
    [o.owner, o.staleMs, o.leaseMs, o.limit, o.now ?? null],
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, sessionId: x.session_id }));
}

/**
 * Session counts by status over all tenants (metrics), every status counted (0 for none);
 * `live`: only the statuses of live sessions, read through their index instead of the whole
 * table.
 */
export async function countSessionsByStatus(
  q: Queryable,
  o: { live?: boolean } = {},
): Promise<Record<string, number>> {
  const r = await q.query<{ status: string; count: number }>(
    o.live
      ? 'SELECT status, count FROM floe_count_live_sessions_by_status()'
      : 'SELECT status, count FROM floe_count_sessions_by_status()',
  );
  const counts: Record<string, number> = Object.fromEntries(
    (o.live ? nonTerminalStatuses() : SESSION_STATUSES).map((s) => [s, 0]),
  );
  for (const x of r.rows) counts[x.status] = Number(x.count);
  return counts;
}

// ---------------------------------------------------------------- publishing (migration 012)

/**
 * Claim the publishing round of one completed session for `owner` until now + `leaseMs`: only
 * while publishing is pending, due, and not leased by anyone. Null otherwise.
 */
export async function claimPublish(
  q: Queryable,
  sessionId: string,
  o: { owner: string; leaseMs: number; now: number },
): Promise<SessionRow | null> {
  const r = await q.query(
    `UPDATE signing_sessions SET publish_lease_owner = $1, publish_lease_until = $2::bigint + $3::bigint
      WHERE session_id = $4 AND status = 'completed' AND publish_status = 'pending'
        AND coalesce(publish_next_at, 0) <= $2 AND coalesce(publish_lease_until, 0) < $2
      RETURNING *`,
    [o.owner, o.now, o.leaseMs, sessionId],
  );
  return r.rows[0] ? toSession(r.rows[0]) : null;
}

/** Claim due publishing rounds in every tenant, each for one caller only (floe_claim_due_publishes). */
export async function claimDuePublishes(
  q: Queryable,
  o: { owner: string; leaseMs: number; limit: number; now?: number },
): Promise<{ tenantId: string; sessionId: string }[]> {
  const r = await q.query<{ tenant_id: string; session_id: string }>(
    'SELECT tenant_id, session_id FROM floe_claim_due_publishes($1, $2, $3, $4)',
    [o.owner, o.leaseMs, o.limit, o.now ?? null],
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, sessionId: x.session_id }));
}

/**
 * Record a publishing round and release the lease, only if `owner` still holds it (a
 * coordinator whose lease was taken over writes nothing). Null when it did not.
 */
export async function recordPublish(
  q: Queryable,
  sessionId: string,
  o: {
    owner: string;
    results: unknown[];
    status: 'pending' | 'done';
    nextAt: number | null;
    now: number;
  },
): Promise<SessionRow | null> {
  const r = await q.query(
    `UPDATE signing_sessions
        SET publish_results = $1::jsonb, publish_status = $2, publish_next_at = $3,
            publish_lease_until = NULL, updated_at = $4
      WHERE session_id = $5 AND status = 'completed' AND publish_status = 'pending'
        AND publish_lease_owner = $6
      RETURNING *`,
    [json(o.results), o.status, o.nextAt, o.now, sessionId, o.owner],
  );
  return r.rows[0] ? toSession(r.rows[0]) : null;
}
