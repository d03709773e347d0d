/**
 * Signing sessions (DESIGN §7, §12, §13): a request becomes an intent, the intent a session
 * (waiting for its stewards or ready to sign), and the orchestrator drives it to a signature.
 */
import { createHash } from 'node:crypto';
import type { NetworkName } from '../../bitcoin/network.js';
import { fromHex, toHex } from '../../crypto/hex.js';
import { newId } from '../../domain/ids.js';
import {
  canonicalPsbt,
  checkNostrEventTemplate,
  type Intent,
  NOSTR_CREATED_AT_SKEW_S,
  type ResolvedIntent,
  resolveIntent,
  unsignedEvent,
} from '../../domain/intent.js';
import { KeyChanged, type VersionedKey } from '../../domain/key-version.js';
import type { KeyRecord, Principal, SessionRecord } from '../../domain/records.js';
import { isTerminal, legalSources } from '../../domain/session-state.js';
import { isOneOf, SESSION_STATUSES } from '../../domain/vocabulary.js';
import type { CreateBatchBody, CreateSessionBody, Page, SessionObject } from '../../protocol/api.js';
import { FloeError, isFloeError } from '../../protocol/errors.js';
import { ActiveKeys } from '../active-keys.js';
import type { Backend } from '../backend.js';
import type { BatchSigning } from '../batch.js';
import type { NewSession } from '../ports.js';
import { psbtSummary, resolveForKey } from '../psbt.js';
import { attemptEvent, type Known, type Member, type SigningOrchestrator } from '../signing.js';
import type { ApprovalGate, ApprovalOutcome } from './approvals.js';
import { publishObject, publishRelaysOf } from './publish.js';
import { sleep, within } from './wait.js';

/** How often a waiting GET reads a session that this process is not driving. */
const POLL_MS = 200;

/** How many times a cancel reads and moves a session that a drive keeps moving. */
const CANCEL_TRIES = 5;

/** The API object of a session; `xOnlyKey` (the key's, hex) rebuilds a signed Nostr event. */
export function sessionObject(s: SessionRecord, xOnlyKey: string | null): SessionObject {
  const event =
    s.intent.type === 'nostr_event' && s.finalSignature && xOnlyKey
      ? { id: s.messageHash, ...unsignedEvent(s.intent.event, xOnlyKey), sig: s.finalSignature }
      : undefined;
  return {
    id: s.sessionId,
    key_id: s.keyId,
    message: s.messageHash,
    intent_type: s.intentType,
    intent: s.intent,
    intent_hash: s.intentHash,
    status: s.status,
    attempt: s.attempt,
    participants: s.participants,
    signature: s.finalSignature,
    ...(event ? { event } : {}),
    final_event_id: s.finalEventId,
    error_code: s.errorCode,
    error_message: s.errorMessage,
    culprits: s.culprits,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    expires_at: s.expiresAt,
    completed_at: s.completedAt,
    ...publishObject(s),
    ...bitcoinObject(s),
    ...(s.policyRefusals?.length ? { policy_refusals: s.policyRefusals } : {}),
  };
}

/** A bitcoin_psbt session's members: the signed PSBT, raw transaction, txid and the summary. */
function bitcoinObject(s: SessionRecord): Partial<SessionObject> {
  const b = s.bitcoin;
  if (!b) return {};
  const { psbt, raw_tx, finalize: _f, ...summary } = b;
  return {
    ...(psbt ? { psbt } : {}),
    ...(raw_tx ? { raw_tx } : {}),
    txid: b.txid,
    bitcoin: summary,
  };
}

/**
 * The intent a request asks for: exactly one of message, nostr_event, bitcoin_psbt. Nostr
 * events are checked here so that each mistake has its own code; `nowS` fills a missing
 * created_at.
 */
export function intentOfRequest(
  body: CreateSessionBody,
  o: { nowS: number; maxSkewS: number; bitcoinNetwork?: NetworkName },
): Intent {
  const given = (['message', 'nostr_event', 'bitcoin_psbt'] as const).filter((k) => body[k] !== undefined);
  if (given.length !== 1) {
    throw new FloeError('invalid_request', 'give exactly one of message, nostr_event, bitcoin_psbt', {
      hint: 'message: a 32-byte hex digest; nostr_event: {kind, content, tags?, created_at?}',
    });
  }
  if (body.message !== undefined) return { type: 'message', message: body.message };
  if (body.nostr_event !== undefined) {
    return { type: 'nostr_event', event: checkNostrEventTemplate(body.nostr_event, o) };
  }
  return {
    type: 'bitcoin_psbt',
    psbt: canonicalPsbt(body.bitcoin_psbt!),
    network: o.bitcoinNetwork ?? 'regtest',
  };
}

/** What an idempotency key stands for: the request as sent (a defaulted created_at is not part of it). */
function requestFingerprint(body: CreateSessionBody): string {
  const e = body.nostr_event;
  const canonical = [
    body.key_id,
    body.message ?? null,
    e ? [e.kind, e.content, e.tags ?? null, e.created_at ?? null] : null,
    body.bitcoin_psbt ?? null,
    // Only when present, so fingerprints of requests without it stay what they were.
    ...(body.publish ? [body.publish.relays ?? null] : []),
    ...(body.finalize !== undefined ? [{ finalize: body.finalize }] : []),
  ];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** A new session's first attempt on `members` (attempt 1), with the event its move would record. */
function firstAttempt(
  members: readonly Member[],
  now: number,
  batch = false,
): NonNullable<NewSession['firstAttempt']> {
  const participants = members.map((m) => m.identifier);
  return { participants, startedAt: now, event: attemptEvent(1, participants, batch) };
}

/** A frozen key (the kill switch) or a disabled one is refused with its own code and hint. */
function refuseStopped(key: KeyRecord): void {
  if (key.status === 'frozen') {
    throw new FloeError('key_frozen', `key ${key.id} is frozen by an operator instruction`);
  }
  if (key.status === 'disabled') throw new FloeError('key_disabled', `key ${key.id} is disabled`);
}

/** The key a new session may be made with: found, not stopped, active with its public key. */
function usableKey(key: KeyRecord | undefined, keyId: string): KeyRecord & { xOnlyPublicKey: string } {
  if (!key) throw new FloeError('key_not_found', `no key ${keyId}`);
  refuseStopped(key);
  if (key.status !== 'active' || !key.xOnlyPublicKey) {
    throw new FloeError('key_not_active', `key ${keyId} is ${key.status}`);
  }
  return key as KeyRecord & { xOnlyPublicKey: string };
}

export class SessionService {
  private readonly driving = new Map<string, Promise<SessionRecord>>();
  /** x-only keys by key id: an active key's public key never changes (the database refuses it). */
  private readonly xOnlyKeys = new Map<string, string>();
  /** Active keys as last read, each with its row's version (active-keys.ts). */
  private readonly activeKeys = new ActiveKeys();

  constructor(
    private readonly o: {
      backend: Backend;
      orchestrator: SigningOrchestrator;
      batch: BatchSigning;
      approvals: ApprovalGate;
      now: () => number;
      sessionTtlMs: number;
      /** How far a Nostr event's created_at may be from now. */
      nostrCreatedAtSkewS?: number;
      log?: { warn: (o: object, m?: string) => void };
      /** The network of bitcoin_psbt sessions (config bitcoin_network). Default regtest. */
      bitcoinNetwork?: NetworkName;
      /** Called with every session a drive here completed (publishing, services/publish.ts). */
      onCompleted?: (s: SessionRecord) => void;
    },
  ) {}

  async create(
    p: Principal,
    body: CreateSessionBody,
    idempotencyKey: string | undefined,
  ): Promise<{ session: SessionObject; created: boolean }> {
    const now = this.o.now();
    const intent = intentOfRequest(body, {
      nowS: Math.floor(now / 1000),
      maxSkewS: this.o.nostrCreatedAtSkewS ?? NOSTR_CREATED_AT_SKEW_S,
      ...(this.o.bitcoinNetwork ? { bitcoinNetwork: this.o.bitcoinNetwork } : {}),
    });
    if (body.finalize !== undefined && intent.type !== 'bitcoin_psbt') {
      throw new FloeError('invalid_request', 'finalize: only for bitcoin_psbt sessions');
    }
    const { key, resolved, started, session, created } = await this.withKey(
      p.tenantId,
      body.key_id,
      async (read, version) => {
        const key = usableKey(read?.key, body.key_id);
        // A PSBT is read against the key's package (own output key, root xpub); the others need
        // only its x-only key.
        const resolved =
          intent.type === 'bitcoin_psbt'
            ? resolveForKey(intent, key)
            : resolveIntent(intent, { xOnlyKey: fromHex(key.xOnlyPublicKey, 'key', 32) });
        const publishRelays = publishRelaysOf(body, key);
        const status = this.o.approvals.initialStatus(key, resolved);
        // Ready to sign: the session is born in its first attempt (one move fewer), on the members
        // its first move would choose. Without a quorum it starts pending and the drive explains.
        const started = status === 'pending' ? await this.o.orchestrator.choose(key, new Set()) : undefined;
        const inserted = await this.o.backend.insertSession(
          {
            ...this.newSession(p, key, intent, resolved, now),
            sessionId: newId('session'),
            status,
            fingerprint: requestFingerprint(body),
            idempotencyKey: idempotencyKey ?? null,
            publishRelays,
            ...(resolved.psbt
              ? {
                  bitcoin: psbtSummary(
                    resolved.psbt.view,
                    resolved.digests!.map((d) => d.input),
                    body.finalize ?? false,
                  ),
                }
              : {}),
            ...(started ? { firstAttempt: firstAttempt(started, now) } : {}),
            ...(version !== undefined ? { keyVersion: version } : {}),
          },
          { kind: 'session.created', data: { key_id: key.id, intent_type: resolved.type } },
        );
        return { key, resolved, started, ...inserted };
      },
    );
    let s = session;
    // Waiting for its stewards (DESIGN §13): ask them, once.
    if (s.status === 'awaiting_approval' && created) this.o.approvals.requested?.(s, key, resolved);
    if (s.status !== 'awaiting_approval') {
      // Created just now: the orchestrator needs neither to read it nor its key again.
      const run = this.drive(
        p.tenantId,
        session.sessionId,
        created
          ? { session, key, ...(resolved.psbt ? { resolved } : {}), ...(started ? { started } : {}) }
          : {},
      );
      if (body.wait) {
        const done = await within(run, body.wait);
        s = done ?? (await this.o.backend.getSession(p.tenantId, session.sessionId)) ?? session;
      }
    }
    return {
      session: await this.withApprovals(p.tenantId, s, sessionObject(s, key.xOnlyPublicKey)),
      created,
    };
  }

  /**
   * Many intents of one key (the batch API): every item is checked before anything is written
   * (a bad item refuses the request, naming its index), the sessions are created in one
   * transaction, and those not waiting for stewards are signed together (batch.ts).
   */
  async createBatch(p: Principal, body: CreateBatchBody): Promise<SessionObject[]> {
    const now = this.o.now();
    const opts = {
      nowS: Math.floor(now / 1000),
      maxSkewS: this.o.nostrCreatedAtSkewS ?? NOSTR_CREATED_AT_SKEW_S,
    };
    const { key, resolvedOf, started, created } = await this.withKey(
      p.tenantId,
      body.key_id,
      async (read, version) => {
        const key = usableKey(read?.key, body.key_id);
        const xOnlyKey = fromHex(key.xOnlyPublicKey, 'key', 32);
        const resolvedOf = new Map<string, ResolvedIntent>();
        const checked: NewSession[] = body.items.map((item, i) => {
          try {
            if (item.bitcoin_psbt !== undefined) {
              // One PSBT is already one attempt for all its inputs; batches carry single digests.
              throw new FloeError('intent_not_supported', 'bitcoin_psbt cannot be signed in a batch', {
                hint: 'POST /v1/sessions with bitcoin_psbt: every input of the key is signed in one attempt',
              });
            }
            const intent = intentOfRequest({ key_id: body.key_id, ...item }, opts);
            const resolved = resolveIntent(intent, { xOnlyKey });
            const sessionId = newId('session');
            resolvedOf.set(sessionId, resolved);
            return {
              ...this.newSession(p, key, intent, resolved, now),
              sessionId,
              status: this.o.approvals.initialStatus(key, resolved),
              fingerprint: '',
              idempotencyKey: null,
              publishRelays: publishRelaysOf(item, key),
            };
          } catch (e) {
            if (isFloeError(e))
              throw new FloeError(e.code, `items[${i}]: ${e.message}`, { ...e.extra, item: i });
            throw e;
          }
        });
        // Every item is valid: those ready to sign are born in the batch's attempt, on the members it
        // would choose.
        const started = await this.o.orchestrator.choose(key, new Set());
        const list = checked.map((s) => ({
          ...(started && s.status === 'pending'
            ? { ...s, firstAttempt: firstAttempt(started, now, true) }
            : s),
          ...(version !== undefined ? { keyVersion: version } : {}),
        }));
        const sessions = await this.o.backend.insertSessions(list, {
          kind: 'session.created',
          data: { key_id: key.id, batch: true },
        });
        return { key, resolvedOf, started, created: sessions };
      },
    );
    for (const s of created) {
      if (s.status === 'awaiting_approval')
        this.o.approvals.requested?.(s, key, resolvedOf.get(s.sessionId)!);
    }
    const ready = created.filter((s) => s.status === 'pending' || s.status === 'nonce_collection');
    const result = new Map(created.map((s) => [s.sessionId, s]));
    if (ready.length) {
      const run = this.o.batch.run(key, ready, started);
      // Each session counts as driven here until the batch is done with it.
      for (const [i, s] of ready.entries()) {
        const one = run.then((all) => all[i]!);
        this.driving.set(s.sessionId, one);
        this.whenCompleted(one);
        one
          .catch((e) =>
            this.o.log?.warn(
              { session: s.sessionId, err: e instanceof Error ? e.message : 'error' },
              'batch failed',
            ),
          )
          .finally(() => this.driving.delete(s.sessionId));
      }
      if (body.wait) {
        const done = await within(run, body.wait);
        if (done) for (const s of done) result.set(s.sessionId, s);
        else {
          for (const s of ready) {
            const now = await this.o.backend.getSession(p.tenantId, s.sessionId);
            if (now) result.set(s.sessionId, now);
          }
        }
      }
    }
    return created.map((s) => sessionObject(result.get(s.sessionId)!, key.xOnlyPublicKey));
  }

  /** Drive a session in this process (at most once at a time). */
  drive(tenantId: string, sessionId: string, known: Known = {}): Promise<SessionRecord> {
    let run = this.driving.get(sessionId);
    if (!run) {
      run = this.o.orchestrator
        .drive(tenantId, sessionId, known)
        .finally(() => this.driving.delete(sessionId));
      this.driving.set(sessionId, run);
      this.whenCompleted(run);
      run.catch((e) =>
        this.o.log?.warn(
          { session: sessionId, err: e instanceof Error ? e.message : 'error' },
          'drive failed',
        ),
      );
    }
    return run;
  }

  private whenCompleted(run: Promise<SessionRecord>): void {
    const hook = this.o.onCompleted;
    if (hook)
      run.then(
        (s) => s.status === 'completed' && hook(s),
        () => {},
      );
  }

  isDriving(sessionId: string): boolean {
    return this.driving.has(sessionId);
  }

  inFlight(): Promise<unknown>[] {
    return [...this.driving.values()];
  }

  private async record(p: Principal, id: string): Promise<SessionRecord> {
    const s = await this.o.backend.getSession(p.tenantId, id);
    if (!s) throw new FloeError('session_not_found', `no session ${id}`);
    return s;
  }

  /**
   * A session, waiting up to `waitMs` for it to end: it is read again when this process's drive
   * of it settles, or every 200 ms (a session driven elsewhere, or waiting for its stewards).
   */
  async get(p: Principal, id: string, waitMs = 0): Promise<SessionObject> {
    let s = await this.record(p, id);
    const deadline = this.o.now() + waitMs;
    while (!isTerminal(s.status) && this.o.now() < deadline) {
      const pause = sleep(Math.min(POLL_MS, deadline - this.o.now()));
      const running = this.driving.get(id);
      // Not `Promise.race([undefined, …])`: that settles at once, and with a database that
      // answers without I/O (PGlite) the loop would then never yield to timers or sockets.
      await (running ? Promise.race([running.catch(() => {}), pause]) : pause);
      s = await this.record(p, id);
    }
    return this.object(p.tenantId, s);
  }

  async list(
    p: Principal,
    limit: number,
    cursor: string | null,
    status: string | null,
  ): Promise<Page<SessionObject>> {
    if (status !== null && !isOneOf(SESSION_STATUSES, status)) {
      throw new FloeError('invalid_request', `unknown status ${status}`, {
        hint: `one of ${SESSION_STATUSES.join(', ')}`,
      });
    }
    const page = await this.o.backend.listSessions(p.tenantId, limit, cursor, status);
    const items = await Promise.all(page.items.map((s) => this.object(p.tenantId, s)));
    return { items, next_cursor: page.nextCursor };
  }

  /**
   * Fail a session that is not final yet. The move is conditional on the attempt read, so a
   * drive that moves the session in between (a new attempt) makes it miss: it reads the
   * session again and tries again while the session is still not final, a few times.
   */
  async cancel(p: Principal, id: string): Promise<SessionObject> {
    for (let tries = 0; tries < CANCEL_TRIES; tries++) {
      const s = await this.record(p, id);
      if (isTerminal(s.status)) throw new FloeError('session_conflict', `session is already ${s.status}`);
      const done = await this.o.backend.transitionSession(
        p.tenantId,
        id,
        legalSources('failed'),
        s.attempt,
        'failed',
        { errorCode: 'cancelled', errorMessage: 'cancelled by request', failedAt: this.o.now() },
        { kind: 'session.cancelled', data: {} },
      );
      if (done) return this.object(p.tenantId, done);
    }
    throw new FloeError('session_conflict', 'the session kept moving on; try again');
  }

  /**
   * The way out of `awaiting_approval`: approved → `pending` (and signing starts here),
   * rejected → `failed` with `approval_rejected`. Null when the session is no longer waiting.
   */
  async decideApproval(
    tenantId: string,
    sessionId: string,
    outcome: ApprovalOutcome,
  ): Promise<SessionRecord | null> {
    if (outcome.decision === 'approved') {
      const s = await this.o.backend.transitionSession(
        tenantId,
        sessionId,
        ['awaiting_approval'],
        0,
        'pending',
        // Signing gets its own time from now: the stewards may have used all of theirs.
        { expiresAt: this.o.now() + this.o.sessionTtlMs },
        { kind: 'session.approved', data: {} },
      );
      if (s) this.drive(tenantId, sessionId);
      return s;
    }
    return this.o.backend.transitionSession(
      tenantId,
      sessionId,
      ['awaiting_approval'],
      0,
      'failed',
      { errorCode: 'approval_rejected', errorMessage: outcome.reason, failedAt: this.o.now() },
      { kind: 'session.rejected', data: { reason: outcome.reason } },
    );
  }

  private async object(tenantId: string, s: SessionRecord): Promise<SessionObject> {
    return this.withApprovals(
      tenantId,
      s,
      sessionObject(s, s.intentType === 'nostr_event' ? await this.xOnlyKey(tenantId, s.keyId) : null),
    );
  }

  /** The stewards' decisions on the session, when its key has an approval policy (DESIGN §13). */
  private async withApprovals(tenantId: string, s: SessionRecord, o: SessionObject): Promise<SessionObject> {
    const d = await this.o.approvals.decisions?.(tenantId, [s]);
    const list = d?.get(s.sessionId);
    return list ? { ...o, approvals: list } : o;
  }

  /**
   * Prepares and writes new sessions of a key with `write`, given the key as kept in memory (or
   * read, when not kept) and the version its writes must name. Once more on a fresh read, naming
   * no version, when the key's row changed since (KeyChanged: nothing was written) or when `write`
   * refused the request on a kept key (a refusal is never decided on a kept key: the request may
   * be good for the key as it is now). What the second run decides is what a read just before
   * the write decides.
   */
  private async withKey<T>(
    tenantId: string,
    keyId: string,
    write: (read: VersionedKey | undefined, version: string | undefined) => Promise<T>,
  ): Promise<T> {
    const kept = this.activeKeys.get(tenantId, keyId);
    const read = kept ?? (await this.o.backend.getKeyVersioned(tenantId, keyId));
    if (!kept) this.activeKeys.note(tenantId, keyId, read);
    try {
      return await write(read, read?.version);
    } catch (e) {
      if (!(e instanceof KeyChanged || (kept && isFloeError(e)))) throw e;
    }
    const fresh = await this.o.backend.getKeyVersioned(tenantId, keyId);
    this.activeKeys.note(tenantId, keyId, fresh);
    return write(fresh, undefined);
  }

  /** What every new session of `key` takes from its principal, its intent and the time. */
  private newSession(p: Principal, key: KeyRecord, intent: Intent, resolved: ResolvedIntent, now: number) {
    return {
      tenantId: p.tenantId,
      keyId: key.id,
      messageHash: toHex(resolved.digest),
      intentType: resolved.type,
      intent,
      intentHash: toHex(resolved.intentHash),
      threshold: key.threshold,
      createdBy: p.tokenId,
      createdAt: now,
      expiresAt: this.expiry(key, resolved, now),
    };
  }

  /** A session waiting for its stewards expires at their deadline (DESIGN §13), others after the TTL. */
  private expiry(key: KeyRecord, resolved: ResolvedIntent, now: number): number {
    const gate = this.o.approvals;
    return gate.approvalDeadline && gate.initialStatus(key, resolved) === 'awaiting_approval'
      ? gate.approvalDeadline(key, now)
      : now + this.o.sessionTtlMs;
  }

  private async xOnlyKey(tenantId: string, keyId: string): Promise<string | null> {
    const cached = this.xOnlyKeys.get(keyId);
    if (cached) return cached;
    const k: KeyRecord | undefined = await this.o.backend.getKey(tenantId, keyId);
    if (!k?.xOnlyPublicKey) return null;
    if (this.xOnlyKeys.size > 10_000) this.xOnlyKeys.clear();
    this.xOnlyKeys.set(keyId, k.xOnlyPublicKey);
    return k.xOnlyPublicKey;
  }
}
