/** Seed data for the database tests. */
import { randomBytes } from 'node:crypto';
import { toHex } from '../../src/crypto/hex.js';
import type { Db, Tx } from '../../src/db/connection.js';
import { insertKey, type KeyRow } from '../../src/db/queries/keys.js';
import { insertSession, type SessionRow, transitionSession } from '../../src/db/queries/sessions.js';
import { ensureTenant } from '../../src/db/queries/tenants.js';
import { newId } from '../../src/domain/ids.js';
import { resolveIntent } from '../../src/domain/intent.js';
import type { SessionStatus } from '../../src/domain/session-state.js';

export const NOW = Date.now();
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const hex = (n: number) => randomBytes(n).toString('hex');
/** A well-formed commitment: two compressed-point encodings (not real points; the schema checks form only). */
export const commitment = () => `02${hex(32)}03${hex(32)}`;
export const signature = () => hex(64);

let seq = 0;
export const uniq = (p: string) => `${p}${++seq}${hex(3)}`;

export async function seedTenant(db: Db, id = uniq('t')): Promise<string> {
  await db.transaction((tx) => ensureTenant(tx, { id, name: `tenant ${id}`, createdAt: NOW }), {
    tenantId: id,
  });
  return id;
}

export function seedKeyTx(tx: Tx, o: { id?: string } = {}): Promise<KeyRow> {
  return insertKey(tx, {
    id: o.id ?? uniq('key'),
    threshold: 2,
    n: 3,
    origin: 'dkg',
    members: [1, 2, 3].map((i) => ({ identifier: i, signer_id: `s${i}`, identity: hex(32) })),
    createdAt: NOW,
  });
}

/** The intent columns of a session signing a message (a random digest by default). */
export function intentFields(message = hex(32)) {
  const intent = { type: 'message' as const, message };
  return {
    messageHash: message,
    intentType: 'message' as const,
    intent,
    intentHash: toHex(resolveIntent(intent, { xOnlyKey: new Uint8Array(32) }).intentHash),
  };
}

/** message_hash, intent (JSON text) and intent_hash of a message session, for raw INSERTs. */
export function intentValues(message = hex(32)): [string, string, string] {
  const f = intentFields(message);
  return [f.messageHash, JSON.stringify(f.intent), f.intentHash];
}

export interface SeedSession {
  keyId?: string;
  createdAt?: number;
  expiresAt?: number;
  idempotencyKey?: string;
  idempotencyFingerprint?: string;
  /** Initial status (default pending). */
  initial?: 'pending' | 'awaiting_approval';
}

export async function seedSessionTx(tx: Tx, o: SeedSession = {}): Promise<SessionRow> {
  const keyId = o.keyId ?? (await seedKeyTx(tx)).id;
  const { session } = await insertSession(tx, {
    sessionId: newId('session'),
    keyId,
    ...intentFields(),
    ...(o.initial ? { status: o.initial } : {}),
    threshold: 2,
    participants: [1, 2],
    createdBy: 'test',
    createdAt: o.createdAt ?? NOW,
    expiresAt: o.expiresAt ?? NOW + 100 * DAY,
    ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
    ...(o.idempotencyFingerprint ? { idempotencyFingerprint: o.idempotencyFingerprint } : {}),
  });
  return session;
}

/** What a move to `to` needs so the row constraints hold. */
export function patchFor(to: SessionStatus) {
  if (to === 'completed') return { finalSignature: signature() };
  if (to === 'failed') return { errorCode: 'session_failed', errorMessage: 'test failure' };
  if (to === 'expired') return { errorCode: 'session_expired', errorMessage: 'expired' };
  return {};
}

const PATH: Record<SessionStatus, SessionStatus[]> = {
  awaiting_approval: [],
  pending: [],
  nonce_collection: ['nonce_collection'],
  signing: ['nonce_collection', 'signing'],
  aggregating: ['nonce_collection', 'signing', 'aggregating'],
  completed: ['nonce_collection', 'signing', 'aggregating', 'completed'],
  failed: ['failed'],
  expired: ['expired'],
};

/** Drives a session along legal moves to `status`. */
export async function driveTo(tx: Tx, s: SessionRow, status: SessionStatus): Promise<SessionRow> {
  let cur = s;
  for (const to of PATH[status]) {
    const next = await transitionSession(tx, cur.sessionId, [cur.status], to, patchFor(to));
    if (!next) throw new Error(`driveTo: ${cur.status} -> ${to} refused`);
    cur = next;
  }
  return cur;
}

export async function seedSession(
  db: Db,
  tenantId: string,
  status: SessionStatus = 'pending',
  o: SeedSession = {},
): Promise<SessionRow> {
  const initial = status === 'awaiting_approval' ? { initial: status } : {};
  return db.transaction(async (tx) => driveTo(tx, await seedSessionTx(tx, { ...o, ...initial }), status), {
    tenantId,
  });
}

/** Resolves once `n` parties have arrived. */
export function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => {
    release = r;
  });
  return () => {
    arrived += 1;
    if (arrived >= n) release();
    return all;
  };
}
