/**
 * The coordinator's storage on Postgres (or embedded PGlite): every operation runs in its
 * own transaction as the non-superuser `floe_app` role, scoped to its tenant by row-level
 * security. Cross-tenant operations (token lookup at login, expiry, resumption, metrics)
 * go through narrow SECURITY DEFINER functions in the schema.
 */
import { type Db, type OpenDbOptions, openDb, type Tx } from '../db/connection.js';
import { maintainTables } from '../db/maintenance.js';
import * as addresses from '../db/queries/addresses.js';
import * as approvals from '../db/queries/approvals.js';
import * as audit from '../db/queries/audit.js';
import * as ceremonies from '../db/queries/ceremonies.js';
import * as keys from '../db/queries/keys.js';
import * as nonces from '../db/queries/nonces.js';
import * as rateLimits from '../db/queries/rate-limits.js';
import * as sessions from '../db/queries/sessions.js';
import * as signers from '../db/queries/signers.js';
import * as tenants from '../db/queries/tenants.js';
import * as tokens from '../db/queries/tokens.js';
import { NON_TERMINAL_CEREMONY_STATUSES } from '../domain/ceremony-state.js';
import type { ApiTokenRecord, RefreshRecord } from '../domain/records.js';
import type { SessionStatus } from '../domain/vocabulary.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import { apiTokenRefusal, type TokenLimitRequest } from './auth/tokens.js';
import type { Backend, TenantRecord } from './backend.js';
import type {
  ApprovalRecord,
  AttemptCommit,
  AttemptCompletion,
  AuditEvent,
  CeremonyRecord,
  KeyRecord,
  NewSession,
  Page,
  PublishPatch,
  SessionMove,
  SessionPatch,
  SessionRecord,
  SignerRecord,
} from './ports.js';

/** Rows carry storage-only columns beside the record; the API never sees a row directly. */
const ceremonyRecord = ({
  round1: _1,
  round2: _2,
  certificates: _c,
  completedAt: _a,
  failedAt: _f,
  ...r
}: ceremonies.CeremonyRow): CeremonyRecord => r;
const signerRecord = ({ updatedAt: _u, ...r }: signers.SignerRow): SignerRecord => r;
const sessionRecord = ({ idempotencyFingerprint: _f, ...r }: sessions.SessionRow): SessionRecord => r;
const tokenRecord = ({ tokenSha256: _h, lastUsedAt: _l, ...r }: tokens.ApiTokenRow): ApiTokenRecord => r;
const refreshRecord = ({ tokenSha256: _h, createdAt: _c, ...r }: tokens.RefreshTokenRow): RefreshRecord => r;

/**
 * Items split into rounds in which each session appears once (its first item in the first round,
 * its second in the second…), each with its index: a batch statement moves a session once, and
 * the rounds keep the order of a session's own items. A batch has one round.
 */
function rounds<T extends { sessionId: string }>(items: readonly T[]): { i: number; it: T }[][] {
  const out: { i: number; it: T }[][] = [];
  const seen = new Map<string, number>();
  for (const [i, it] of items.entries()) {
    const n = seen.get(it.sessionId) ?? 0;
    seen.set(it.sessionId, n + 1);
    if (n === out.length) out.push([]);
    out[n]!.push({ i, it });
  }
  return out;
}

/** An attempt's commitments as the nonce queries take them. */
function commitmentRows(it: AttemptCommit): nonces.CommitmentInput[] {
  return it.rows.map((r) => ({
    participant: r.identifier,
    signerId: r.signerId,
    commitment: r.commitment,
    ...(r.inputIndex === undefined ? {} : { inputIndex: r.inputIndex }),
  }));
}

export class PgBackend implements Backend {
  constructor(
    readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  get kind() {
    return this.db.kind;
  }

  private t<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn, { tenantId });
  }

  private global<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- keys and ceremonies
  async getKey(tenantId: string, keyId: string) {
    return (await this.t(tenantId, (q) => keys.getKey(q, keyId))) ?? undefined;
  }

  async getKeyVersioned(tenantId: string, keyId: string) {
    return (await this.t(tenantId, (q) => keys.getKeyVersioned(q, keyId))) ?? undefined;
  }

  async insertKey(k: KeyRecord): Promise<void> {
    await this.t(k.tenantId, (q) => this.insertKeyIn(q, k));
  }

  private async insertKeyIn(q: Tx, k: KeyRecord): Promise<void> {
    await keys.insertKey(q, {
      id: k.id,
      label: k.label,
      threshold: k.threshold,
      n: k.n,
      groupPublicKey: k.groupPublicKey,
      xOnlyPublicKey: k.xOnlyPublicKey,
      publicKeyPackage: k.publicKeyPackage ?? null,
      members: k.members,
      origin: k.origin,
      tweak: k.tweak ?? null,
      status: k.status,
      createdAt: k.createdAt,
    });
    // The steward approval policy its members will certify (migration 014), in the same transaction.
    if (k.approvalPolicy) await approvals.setKeyApprovalPolicy(q, k.id, k.approvalPolicy, k.createdAt);
  }

  async insertDkg(k: KeyRecord, c: CeremonyRecord, event: AuditEvent): Promise<void> {
    await this.t(k.tenantId, async (q) => {
      await this.insertKeyIn(q, k);
      await this.insertCeremonyIn(q, c);
      await this.appendAuditIn(q, 'key', k.id, event);
    });
  }

  async completeDkg(
    tenantId: string,
    keyId: string,
    patch: Parameters<Backend['updateKey']>[2],
    ceremony: { id: string; transcriptHash: string },
    event: AuditEvent,
  ): Promise<void> {
    await this.t(tenantId, async (q) => {
      await keys.updateKey(q, keyId, patch as keys.KeyPatch, { at: this.now() });
      await ceremonies.transitionCeremony(
        q,
        ceremony.id,
        NON_TERMINAL_CEREMONY_STATUSES,
        'completed',
        { transcriptHash: ceremony.transcriptHash },
        { now: this.now() },
      );
      await this.appendAuditIn(q, 'key', keyId, event);
    });
  }

  async updateKey(
    tenantId: string,
    keyId: string,
    patch: Parameters<Backend['updateKey']>[2],
  ): Promise<void> {
    await this.t(tenantId, (q) => keys.updateKey(q, keyId, patch as keys.KeyPatch, { at: this.now() }));
  }

  async insertCeremony(c: CeremonyRecord): Promise<void> {
    await this.t(c.tenantId, (q) => this.insertCeremonyIn(q, c));
  }

  private async insertCeremonyIn(q: Tx, c: CeremonyRecord): Promise<void> {
    await ceremonies.insertCeremony(q, {
      id: c.id,
      keyId: c.keyId,
      threshold: c.threshold,
      n: c.n,
      participants: c.participants,
      createdAt: c.createdAt,
      expiresAt: c.expiresAt,
    });
  }

  async updateCeremony(
    tenantId: string,
    id: string,
    patch: Parameters<Backend['updateCeremony']>[2],
  ): Promise<void> {
    const { status, ...rest } = patch;
    const now = this.now();
    await this.t(tenantId, async (q) => {
      // A move names its status: the conditional update alone finds the row (or none).
      const to = status ?? (await ceremonies.getCeremony(q, id))?.status;
      if (to) await ceremonies.transitionCeremony(q, id, NON_TERMINAL_CEREMONY_STATUSES, to, rest, { now });
    });
  }

  async getCeremony(tenantId: string, id: string) {
    const r = await this.t(tenantId, (q) => ceremonies.getCeremony(q, id));
    return r ? ceremonyRecord(r) : undefined;
  }

  async getKeyWithCeremony(tenantId: string, keyId: string) {
    return this.t(tenantId, async (q) => {
      const key = await keys.getKey(q, keyId);
      if (!key) return undefined;
      const c = key.origin === 'dkg' ? await ceremonies.getCeremonyForKey(q, keyId) : null;
      return { key, ceremony: c ? ceremonyRecord(c) : undefined };
    });
  }

  async listKeys(tenantId: string, limit: number, cursor: string | null): Promise<Page<KeyRecord>> {
    const r = await this.t(tenantId, (q) => keys.listKeys(q, { limit, cursor }));
    return { items: r.items, nextCursor: r.nextCursor };
  }

  // ---- signers (global infrastructure, no tenant)
  async listSigners() {
    return (await this.global((q) => signers.listSigners(q))).map(signerRecord);
  }

  async getSigner(id: string) {
    const r = await this.global((q) => signers.getSigner(q, id));
    return r ? signerRecord(r) : undefined;
  }

  async insertSigner(s: SignerRecord): Promise<void> {
    await this.global((q) =>
      signers.insertSigner(q, {
        id: s.id,
        name: s.name,
        url: s.url,
        identityPubkey: s.identityPubkey,
        status: s.status,
        createdAt: s.createdAt,
      }),
    );
  }

  async updateSigner(id: string, patch: Parameters<Backend['updateSigner']>[1]): Promise<void> {
    await this.global((q) => signers.updateSigner(q, id, patch, this.now()));
  }

  async recordSignerFault(signerId: string, _kind: string, quarantineAfter: number) {
    const r = await this.global((q) => signers.recordSignerFault(q, signerId, quarantineAfter, this.now()));
    return r ?? { faultCount: 0, quarantined: false };
  }

  async recordSignerSeen(signerId: string, latencyMs: number): Promise<void> {
    await this.global((q) => signers.recordSignerSeen(q, signerId, this.now(), latencyMs));
  }

  // ---- sessions
  async getSession(tenantId: string, sessionId: string) {
    const r = await this.t(tenantId, (q) => sessions.getSession(q, sessionId));
    return r ? sessionRecord(r) : undefined;
  }

  async insertSession(s: NewSession, event?: AuditEvent) {
    const r = await this.t(s.tenantId, async (q) => {
      const inserted = await sessions.insertSession(q, {
        sessionId: s.sessionId,
        keyId: s.keyId,
        messageHash: s.messageHash,
        intentType: s.intentType,
        intent: s.intent,
        intentHash: s.intentHash,
        status: s.status,
        threshold: s.threshold,
        createdBy: s.createdBy,
        idempotencyKey: s.idempotencyKey,
        idempotencyFingerprint: s.idempotencyKey ? s.fingerprint : null,
        createdAt: s.createdAt,
        expiresAt: s.expiresAt,
        publishRelays: s.publishRelays ?? null,
        ...(s.firstAttempt ? { firstAttempt: s.firstAttempt } : {}),
        ...(s.keyVersion !== undefined ? { keyVersion: s.keyVersion } : {}),
      });
      if (inserted.created && s.bitcoin) {
        // bitcoin_psbt: its summary, in the same transaction (migration 015).
        const withBitcoin = await sessions.patchSession(
          q,
          s.sessionId,
          [inserted.session.status],
          { bitcoin: s.bitcoin },
          { now: s.createdAt },
        );
        if (withBitcoin) inserted.session = withBitcoin;
      }
      if (inserted.created) {
        const events = [event, s.firstAttempt?.event].flatMap((e) =>
          e ? [{ sessionId: s.sessionId, event: e }] : [],
        );
        if (events.length) await this.appendSessionAudits(q, events);
      }
      return inserted;
    });
    return { session: sessionRecord(r.session), created: r.created };
  }

  async insertSessions(list: readonly NewSession[], event: AuditEvent) {
    if (list.length === 0) return [];
    const tenantId = list[0]!.tenantId;
    if (list.some((s) => s.tenantId !== tenantId || s.idempotencyKey !== null)) {
      throw new FloeError('internal', 'insertSessions: one tenant, no idempotency keys');
    }
    // One INSERT for the sessions (each audits its creation by trigger), one for the events.
    return this.t(tenantId, async (q) => {
      const rows = await sessions.insertSessions(
        q,
        list.map((s) => ({
          sessionId: s.sessionId,
          keyId: s.keyId,
          messageHash: s.messageHash,
          intentType: s.intentType,
          intent: s.intent,
          intentHash: s.intentHash,
          status: s.status,
          threshold: s.threshold,
          createdBy: s.createdBy,
          createdAt: s.createdAt,
          expiresAt: s.expiresAt,
          publishRelays: s.publishRelays ?? null,
          ...(s.firstAttempt ? { firstAttempt: s.firstAttempt } : {}),
          ...(s.keyVersion !== undefined ? { keyVersion: s.keyVersion } : {}),
        })),
      );
      await this.appendSessionAudits(
        q,
        list.flatMap((s) => [
          { sessionId: s.sessionId, event },
          ...(s.firstAttempt ? [{ sessionId: s.sessionId, event: s.firstAttempt.event }] : []),
        ]),
      );
      return rows.map(sessionRecord);
    });
  }

  async transitionSession(
    tenantId: string,
    sessionId: string,
    from: readonly SessionStatus[],
    expectAttempt: number,
    to: SessionStatus,
    patch: SessionPatch,
    event?: AuditEvent,
  ) {
    const r = await this.t(tenantId, async (q) => {
      const moved = await sessions.transitionSession(q, sessionId, from, to, patch as sessions.SessionPatch, {
        expectAttempt,
        now: this.now(),
      });
      if (moved && event) await this.appendSessionAudit(q, sessionId, event);
      return moved;
    });
    return r ? sessionRecord(r) : null;
  }

  private appendSessionAudit(q: Tx, sessionId: string, event: AuditEvent): Promise<unknown> {
    return this.appendAuditIn(q, 'session', sessionId, event);
  }

  /** appendSessionAudit for several sessions, in one statement. */
  private appendSessionAudits(q: Tx, list: readonly { sessionId: string; event: AuditEvent }[]) {
    const at = this.now();
    return audit.appendAudits(
      q,
      list.map(({ sessionId, event }) => ({
        actor: 'coordinator',
        kind: event.kind,
        subjectType: 'session',
        subjectId: sessionId,
        data: event.data,
        at,
      })),
    );
  }

  /**
   * Every session's end of round 1. All items at once first (commitAll); anything the database
   * refuses there rolls that whole transaction back, and the items are written one by one in a
   * new one (commitEach), which writes and refuses exactly item by item.
   */
  async commitAttempts(tenantId: string, items: readonly AttemptCommit[]) {
    const rowsValid = items.every((it) => {
      try {
        if (it.rows.length > 0) nonces.checkCommitments(commitmentRows(it));
        return true;
      } catch {
        return false; // commitEach refuses it in order, after the items before it
      }
    });
    if (rowsValid) {
      try {
        return await this.t(tenantId, (q) => this.commitAll(q, items));
      } catch {
        // Refused (a commitment seen before, commitments already recorded): nothing of it stayed.
      }
    }
    return this.t(tenantId, (q) => this.commitEach(q, items));
  }

  /**
   * Every session's end of round 1 in a fixed number of statements: the conditional moves
   * nonce_collection → signing (which lock the sessions), then the commitments of the sessions
   * that moved, inserted already marked used. Throws whatever the database refuses.
   */
  private async commitAll(q: Tx, items: readonly AttemptCommit[]): Promise<(SessionRecord | null)[]> {
    const now = this.now();
    const out: (SessionRecord | null)[] = items.map(() => null);
    for (const round of rounds(items)) {
      const moved = await sessions.transitionSessions(
        q,
        round.map(({ it }) => ({
          sessionId: it.sessionId,
          expectAttempt: it.attempt,
          patch: it.patch as sessions.SessionPatch,
        })),
        ['nonce_collection'],
        'signing',
        { now },
      );
      const attempts: nonces.AttemptCommitments[] = [];
      for (const [j, { i, it }] of round.entries()) {
        const s = moved[j];
        if (!s) continue;
        out[i] = sessionRecord(s);
        attempts.push({
          tenantId: s.tenantId,
          sessionId: it.sessionId,
          attempt: it.attempt,
          rows: commitmentRows(it),
        });
      }
      await nonces.insertUsedCommitments(q, attempts, now);
    }
    return out;
  }

  /** commitOne for each item in turn: the reference semantics of commitAttempts. */
  private async commitEach(q: Tx, items: readonly AttemptCommit[]): Promise<(SessionRecord | null)[]> {
    const out: (SessionRecord | null)[] = [];
    for (const it of items) out.push(await this.commitOne(q, it));
    return out;
  }

  /** One session's end of round 1, under a savepoint: a session that moved on writes nothing. */
  private async commitOne(q: Tx, it: AttemptCommit): Promise<SessionRecord | null> {
    await q.query('SAVEPOINT floe_commit_attempt');
    try {
      // Refuses a commitment seen before (nonce_reuse_detected), and inserts nothing unless the
      // session is collecting nonces for this attempt (session_conflict: it moved on).
      await nonces.insertCommitments(q, it.sessionId, it.attempt, commitmentRows(it), this.now());
      if (
        !(await nonces.markAllUsed(
          q,
          it.rows.map((r) => r.commitment),
        ))
      ) {
        throw new FloeError('nonce_reuse_detected', 'a nonce commitment was already used');
      }
      const moved = await sessions.transitionSession(
        q,
        it.sessionId,
        ['nonce_collection'],
        'signing',
        it.patch as sessions.SessionPatch,
        { expectAttempt: it.attempt, now: this.now() },
      );
      if (!moved) {
        await q.query('ROLLBACK TO SAVEPOINT floe_commit_attempt');
        return null;
      }
      await q.query('RELEASE SAVEPOINT floe_commit_attempt');
      return sessionRecord(moved);
    } catch (e) {
      if (isFloeError(e) && e.code === 'session_conflict') {
        await q.query('ROLLBACK TO SAVEPOINT floe_commit_attempt');
        return null;
      }
      throw e;
    }
  }

  /**
   * Per session, both moves are conditional and nothing else is written before the second: a
   * session that moved on is untouched. Three statements for the batch: the moves to
   * aggregating, the moves to completed of the sessions that made the first, their events.
   */
  completeAttempts(tenantId: string, items: readonly AttemptCompletion[]) {
    return this.t(tenantId, async (q) => {
      const now = this.now();
      const out: (SessionRecord | null)[] = items.map(() => null);
      for (const round of rounds(items)) {
        // The shares, kept as evidence; the completion below returns the rows.
        const agg = await sessions.transitionSessionsMoved(
          q,
          round.map(({ it }) => ({
            sessionId: it.sessionId,
            expectAttempt: it.attempt,
            patch: it.shares as sessions.SessionPatch,
          })),
          ['signing'],
          'aggregating',
          { now },
        );
        const next = round.filter((_, j) => agg[j]);
        const done = await sessions.transitionSessions(
          q,
          next.map(({ it }) => ({
            sessionId: it.sessionId,
            expectAttempt: it.attempt,
            patch: it.completion as sessions.SessionPatch,
          })),
          ['aggregating'],
          'completed',
          { now },
        );
        const events: { sessionId: string; event: AuditEvent }[] = [];
        for (const [j, { i, it }] of next.entries()) {
          const s = done[j];
          if (!s) continue;
          out[i] = sessionRecord(s);
          events.push({ sessionId: it.sessionId, event: it.event });
        }
        await this.appendSessionAudits(q, events);
      }
      return out;
    });
  }

  /** The moves with the same from and to go in one statement; then the events of those made. */
  transitionSessions(tenantId: string, moves: readonly SessionMove[]) {
    return this.t(tenantId, async (q) => {
      const now = this.now();
      const out: (SessionRecord | null)[] = moves.map(() => null);
      for (const round of rounds(moves)) {
        const groups = new Map<string, { i: number; it: SessionMove }[]>();
        for (const x of round) {
          const k = JSON.stringify([x.it.from, x.it.to]);
          groups.set(k, [...(groups.get(k) ?? []), x]);
        }
        for (const group of groups.values()) {
          const { from, to } = group[0]!.it;
          const moved = await sessions.transitionSessions(
            q,
            group.map(({ it }) => ({
              sessionId: it.sessionId,
              expectAttempt: it.expectAttempt,
              patch: it.patch as sessions.SessionPatch,
            })),
            from,
            to,
            { now },
          );
          for (const [j, { i }] of group.entries()) {
            const s = moved[j];
            if (s) out[i] = sessionRecord(s);
          }
        }
        const events: { sessionId: string; event: AuditEvent }[] = [];
        for (const { i, it } of round)
          if (out[i] && it.event) events.push({ sessionId: it.sessionId, event: it.event });
        await this.appendSessionAudits(q, events);
      }
      return out;
    });
  }

  async listSessions(tenantId: string, limit: number, cursor: string | null, status: string | null) {
    const r = await this.t(tenantId, (q) =>
      sessions.listSessions(q, { limit, cursor, status: (status as SessionStatus | null) ?? null }),
    );
    return { items: r.items.map(sessionRecord), nextCursor: r.nextCursor };
  }

  claimStaleSessions(owner: string, staleMs: number, leaseMs: number, limit: number) {
    return this.global((q) =>
      sessions.claimStaleSessions(q, { owner, staleMs, leaseMs, limit, now: this.now() }),
    );
  }

  countSessionsByStatus(o: { live?: boolean } = {}) {
    return this.global((q) => sessions.countSessionsByStatus(q, o));
  }

  // ---- publishing signed Nostr events (migration 012)
  async claimPublish(tenantId: string, sessionId: string, owner: string, leaseMs: number) {
    const r = await this.t(tenantId, (q) =>
      sessions.claimPublish(q, sessionId, { owner, leaseMs, now: this.now() }),
    );
    return r ? sessionRecord(r) : null;
  }

  claimDuePublishes(owner: string, leaseMs: number, limit: number) {
    return this.global((q) => sessions.claimDuePublishes(q, { owner, leaseMs, limit, now: this.now() }));
  }

  async recordPublish(
    tenantId: string,
    sessionId: string,
    owner: string,
    patch: PublishPatch,
    event?: AuditEvent,
  ) {
    const r = await this.t(tenantId, async (q) => {
      const done = await sessions.recordPublish(q, sessionId, { owner, ...patch, now: this.now() });
      if (done && event) await this.appendSessionAudit(q, sessionId, event);
      return done;
    });
    return r ? sessionRecord(r) : null;
  }

  setKeyRelays(tenantId: string, keyId: string, relays: string[], event: AuditEvent & { actor: string }) {
    return this.t(tenantId, async (q) => {
      const k = await keys.setKeyRelays(q, keyId, relays, this.now());
      if (k) await this.appendKeyAudit(q, keyId, event);
      return k;
    });
  }

  // ---- steward approvals (migration 014)
  recordApproval(tenantId: string, a: ApprovalRecord, event: AuditEvent) {
    return this.t(tenantId, async (q) => {
      const r = await approvals.insertApproval(q, a);
      if (r === 'recorded') await this.appendSessionAudit(q, a.sessionId, event);
      return r;
    });
  }

  listApprovals(tenantId: string, sessionIds: readonly string[]): Promise<ApprovalRecord[]> {
    return this.t(tenantId, async (q) =>
      (await approvals.listApprovals(q, sessionIds)).map(({ tenantId: _t, ...r }) => r),
    );
  }

  setKeyApprovalPolicy(
    tenantId: string,
    keyId: string,
    state: { revision: number; policy: unknown } | null,
    event: AuditEvent & { actor: string },
  ): Promise<boolean> {
    return this.t(tenantId, async (q) => {
      const ok = await approvals.setKeyApprovalPolicy(q, keyId, state, this.now());
      if (ok) await this.appendKeyAudit(q, keyId, event);
      return ok;
    });
  }

  /** An audit event about a key, in the transaction that changed it. */
  private appendKeyAudit(q: Tx, keyId: string, event: AuditEvent & { actor: string }) {
    return audit.appendAudit(q, {
      actor: event.actor,
      kind: event.kind,
      subjectType: 'key',
      subjectId: keyId,
      data: event.data,
      at: this.now(),
    });
  }

  listAwaitingApproval(limit: number) {
    return this.global((q) => approvals.listAwaitingApproval(q, limit));
  }

  // ---- audit, tenants, jobs
  async audit(
    tenantId: string,
    kind: string,
    subjectType: string,
    subjectId: string,
    data: unknown,
  ): Promise<void> {
    await this.t(tenantId, (q) => this.appendAuditIn(q, subjectType, subjectId, { kind, data }));
  }

  private appendAuditIn(q: Tx, subjectType: string, subjectId: string, event: AuditEvent) {
    return audit.appendAudit(q, {
      actor: 'coordinator',
      kind: event.kind,
      subjectType,
      subjectId,
      data: event.data,
      at: this.now(),
    });
  }

  async ensureTenant(id: string, name: string, now: number): Promise<void> {
    await this.t(id, (q) => tenants.ensureTenant(q, { id, name, createdAt: now }));
  }

  async createTenant(t: TenantRecord, firstToken: ApiTokenRecord & { hash: string }): Promise<boolean> {
    return this.t(t.id, async (q) => {
      if (!(await tenants.insertTenant(q, t))) return false;
      await tokens.insertApiToken(q, {
        id: firstToken.id,
        tokenSha256: firstToken.hash,
        role: firstToken.role,
        label: firstToken.label,
        createdAt: firstToken.createdAt,
        expiresAt: firstToken.expiresAt,
      });
      return true;
    });
  }

  listTenants(): Promise<TenantRecord[]> {
    return this.global((q) => tenants.listTenants(q));
  }

  // ---- rate limits (shared by every coordinator of the database)
  hitRateLimit(key: string, o: { now: number; intervalMs: number; windowMs: number }) {
    return this.global((q) => rateLimits.hitRateLimit(q, key, o));
  }

  cleanupRateLimits(now: number = this.now()) {
    return this.global((q) => rateLimits.cleanupRateLimits(q, now));
  }

  async withJobLock(lockKey: number, fn: () => Promise<void>): Promise<boolean> {
    const r = await this.db.withSessionLock(lockKey, fn);
    return r.ran;
  }

  expireSessions() {
    return this.global((q) => sessions.expireSessions(q));
  }

  expireCeremonies() {
    return this.global((q) => ceremonies.expireCeremonies(q));
  }

  cleanupSessions(retentionDays: number) {
    return this.global((q) => sessions.cleanupSessions(q, retentionDays));
  }

  maintainTables() {
    return maintainTables(this.db);
  }

  // ---- tokens
  async insertToken(t: ApiTokenRecord & { hash: string }): Promise<void> {
    await this.t(t.tenantId, (q) =>
      tokens.insertApiToken(q, {
        id: t.id,
        tokenSha256: t.hash,
        role: t.role,
        label: t.label,
        createdAt: t.createdAt,
        expiresAt: t.expiresAt,
      }),
    );
  }

  async findTokenByHash(hash: string) {
    const r = await this.global((q) => tokens.findApiTokenByHash(q, hash));
    return r ? tokenRecord(r) : undefined;
  }

  findTokenByHashCounted(hash: string, o: TokenLimitRequest) {
    return this.global(async (q) => {
      const r = await tokens.findApiTokenByHash(q, hash);
      if (!r) return undefined;
      const token = tokenRecord(r);
      const hit =
        apiTokenRefusal(token, o.now) === null
          ? await rateLimits.hitRateLimit(q, o.key(token.id), {
              now: o.now,
              intervalMs: o.intervalMs,
              windowMs: o.windowMs,
            })
          : null;
      return { token, hit };
    });
  }

  async getToken(tenantId: string, id: string) {
    const r = await this.t(tenantId, (q) => tokens.getApiToken(q, id));
    return r ? tokenRecord(r) : undefined;
  }

  async listTokens(tenantId: string) {
    return (await this.t(tenantId, (q) => tokens.listApiTokens(q))).map(tokenRecord);
  }

  revokeToken(tenantId: string, id: string, at: number) {
    return this.t(tenantId, (q) => tokens.revokeApiToken(q, id, at));
  }

  async insertRefresh(r: RefreshRecord & { hash: string }): Promise<void> {
    await this.t(r.tenantId, (q) =>
      tokens.insertRefreshToken(q, {
        id: r.id,
        tokenId: r.tokenId,
        familyId: r.familyId,
        tokenSha256: r.hash,
        createdAt: this.now(),
        expiresAt: r.expiresAt,
      }),
    );
  }

  async findRefreshByHash(hash: string) {
    const r = await this.global((q) => tokens.findRefreshTokenByHash(q, hash));
    return r ? refreshRecord(r) : undefined;
  }

  useRefresh(tenantId: string, id: string, at: number) {
    return this.t(tenantId, (q) => tokens.useRefreshToken(q, id, at));
  }

  async revokeFamily(tenantId: string, familyId: string, at: number): Promise<void> {
    await this.t(tenantId, (q) => tokens.revokeRefreshFamily(q, familyId, at));
  }

  // ---- addresses per passphrase (016)
  async getPassphraseAddress(tenantId: string, lookupId: string) {
    return (await this.t(tenantId, (q) => addresses.getPassphraseAddress(q, lookupId))) ?? undefined;
  }

  async claimPassphraseAddress(tenantId: string, a: { lookupId: string; keyId: string; network: string }) {
    const at = this.now();
    return (
      (await this.t(tenantId, (q) => addresses.claimPassphraseAddress(q, { ...a, createdAt: at }))) ??
      undefined
    );
  }

  async repointPassphraseAddress(
    tenantId: string,
    o: { lookupId: string; fromKeyId: string; keyId: string; network: string },
  ) {
    const at = this.now();
    return (await this.t(tenantId, (q) => addresses.repointPassphraseAddress(q, { ...o, at }))) ?? undefined;
  }

  async setPassphraseAddressOutput(
    tenantId: string,
    o: { lookupId: string; keyId: string; address: string; outputKey: string; internalKey: string },
  ) {
    const at = this.now();
    return (
      (await this.t(tenantId, (q) => addresses.setPassphraseAddressOutput(q, { ...o, at }))) ?? undefined
    );
  }
}

export async function openBackend(o: OpenDbOptions): Promise<PgBackend> {
  return new PgBackend(await openDb(o));
}
