/**
 * Signing many sessions of one key at once (the batch API): one attempt per session, all on the
 * same `t` members, with ONE `sign.open_batch` and ONE `sign.round2_batch` per member and a
 * fixed number of transactions for the whole batch (start, commit, complete). Each item keeps
 * the rules of a single session (DESIGN §7): its own nonces and attempt id, its commitments
 * refused by the database if seen before, no share asked for before they are recorded, its
 * own conditional transitions. An item the batch cannot finish (a member refused it, did not
 * answer, or its signature does not verify) is handed to the single-session orchestrator,
 * which retries it with another subset and blames with the evidence of single answers.
 */
import {
  decodePublicKeyPackage,
  decodeSignatureShare,
  decodeSigningPackage,
  type SignatureShareJson,
  type SigningCommitmentsJson,
} from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { aggregate } from '../crypto/signing.js';
import { isTerminal } from '../domain/session-state.js';
import { attemptIdHex } from '../protocol/attempt.js';
import { isFloeError } from '../protocol/errors.js';
import type { ApprovalEventJson } from '../protocol/messages/approvals.js';
import type { SignOpenResponse, SignRound2Response } from '../protocol/messages/sign.js';
import { signingPackageHash } from '../protocol/transcript.js';
import type { CoordinatorStore, KeyRecord, SessionRecord, SignerRecord } from './ports.js';
import type { SignerClient } from './signer-client.js';
import { attemptEvent, type Member, type SigningEvent, type SigningOrchestrator } from './signing.js';

export interface BatchOptions {
  store: CoordinatorStore;
  clientFor: (signer: SignerRecord) => SignerClient;
  orchestrator: SigningOrchestrator;
  now?: () => number;
  /** Per-round timeout for the whole batch. Default 10 s. */
  roundTimeoutMs?: number;
  /** Faults after which a signer is quarantined. Default 3. */
  quarantineAfter?: number;
  /** The stewards' approving decisions per session (DESIGN §13), as for single sessions. Default: none. */
  approvalsFor?: (key: KeyRecord, session: SessionRecord) => Promise<ApprovalEventJson[] | undefined>;
  onEvent?: (e: SigningEvent) => void;
}

/** One item on its way through the batch. */
interface Item {
  session: SessionRecord;
  attemptId: string;
  commitments: Record<number, SigningCommitmentsJson>;
  shares: Record<number, SignatureShareJson>;
  /** Why the batch gave it up (it goes to the orchestrator then). */
  dropped?: string;
}

const commitmentHex = (c: SigningCommitmentsJson) => `${c.hiding}${c.binding}`;
const isItemError = (x: object): x is { error: { code: string; message: string } } => 'error' in x;

export class BatchSigning {
  private readonly o: Required<Omit<BatchOptions, 'onEvent'>> & { onEvent: (e: SigningEvent) => void };

  constructor(o: BatchOptions) {
    this.o = {
      now: Date.now,
      roundTimeoutMs: 10_000,
      quarantineAfter: 3,
      approvalsFor: async () => undefined,
      onEvent: () => {},
      ...o,
    };
  }

  /**
   * Sign `sessions` (new, all of `key`): `pending`, or — with `started` — all born in their
   * first attempt on those members (`NewSession.firstAttempt`). Returns each session after it,
   * in order: completed by the batch, or as the orchestrator left it.
   */
  async run(
    key: KeyRecord,
    sessions: readonly SessionRecord[],
    started?: Member[],
  ): Promise<SessionRecord[]> {
    const { store } = this.o;
    const byId = new Map<string, SessionRecord>(sessions.map((s) => [s.sessionId, s]));
    const fallback: { id: string; avoid: number[] }[] = [];
    const chosen = started ?? (await this.o.orchestrator.choose(key, new Set()));
    if (chosen) {
      const done = await this.attempt(key, chosen, sessions, started !== undefined);
      for (const s of done.completed) byId.set(s.sessionId, s);
      fallback.push(...done.fallback);
    } else {
      fallback.push(...sessions.map((s) => ({ id: s.sessionId, avoid: [] })));
    }
    // What the batch could not finish: one session at a time, as any session.
    await Promise.all(
      fallback.map(async ({ id, avoid }) => {
        const s = byId.get(id)!;
        try {
          byId.set(id, await this.o.orchestrator.drive(s.tenantId, id, { key, avoid }));
        } catch {
          const now = await store.getSession(s.tenantId, id);
          if (now) byId.set(id, now);
        }
      }),
    );
    return sessions.map((s) => byId.get(s.sessionId)!);
  }

  private async attempt(
    key: KeyRecord,
    chosen: Member[],
    sessions: readonly SessionRecord[],
    /** The sessions are already in this attempt (born in it): no move to make. */
    begun: boolean,
  ): Promise<{ completed: SessionRecord[]; fallback: { id: string; avoid: number[] }[] }> {
    const { store } = this.o;
    const tenantId = sessions[0]!.tenantId;
    const ids = chosen.map((m) => m.identifier);
    const fallback: { id: string; avoid: number[] }[] = [];
    const drop = (it: Item, why: string, avoid: number[] = []) => {
      if (it.dropped) return;
      it.dropped = why;
      fallback.push({ id: it.session.sessionId, avoid });
    };

    // Transaction 1 (unless they were born in it): every session to nonce_collection, attempt 1,
    // on these members.
    const started = begun
      ? sessions
      : await store.transitionSessions(
          tenantId,
          sessions.map((s) => ({
            sessionId: s.sessionId,
            from: ['pending'],
            expectAttempt: s.attempt,
            to: 'nonce_collection',
            patch: { attempt: s.attempt + 1, participants: ids, nonceCollectionStartedAt: this.o.now() },
            event: attemptEvent(s.attempt + 1, ids, true),
          })),
        );
    // A session that moved on (cancelled, expired) is someone else's now: left out.
    const items: Item[] = started.flatMap((s) =>
      s
        ? [
            {
              session: s,
              attemptId: attemptIdHex({
                sessionId: s.sessionId,
                digest: fromHex(s.messageHash, 'message', 32),
                intentHash: fromHex(s.intentHash, 'intent hash', 32),
                attempt: s.attempt,
                included: ids,
              }),
              commitments: {},
              shares: {},
            },
          ]
        : [],
    );
    if (items.length === 0) return { completed: [], fallback };
    for (const s of items) {
      this.o.onEvent({
        kind: 'attempt',
        sessionId: s.session.sessionId,
        attempt: s.session.attempt,
        participants: ids,
      });
    }

    // Each item carries its stewards' decisions, if its key has a policy: every signer checks them.
    const approvals = await Promise.all(items.map((it) => this.o.approvalsFor(key, it.session)));
    const withApprovals = (j: number) => (approvals[j]?.length ? { approvals: approvals[j] } : {});
    // Round 1: one open_batch per member.
    let t0 = this.o.now();
    const opened = await Promise.allSettled(
      chosen.map((m) =>
        this.o.clientFor(m.signer).exchange(
          'signOpenBatch',
          {
            items: items.map((it) => ({
              key_id: key.id,
              session_id: it.session.sessionId,
              attempt: it.session.attempt,
              included: ids,
              intent: it.session.intent,
              message: it.session.messageHash,
              intent_hash: it.session.intentHash,
              attempt_id: it.attemptId,
              ...withApprovals(items.indexOf(it)),
              ...(key.generation ? { generation: key.generation } : {}),
            })),
          },
          this.o.roundTimeoutMs,
        ),
      ),
    );
    this.o.onEvent({ kind: 'round', round: 'open', ms: this.o.now() - t0 });
    for (const [i, r] of opened.entries()) {
      const m = chosen[i]!;
      if (r.status === 'rejected' || r.value.body.items.length !== items.length) {
        // The member failed the whole batch: every item goes on without it.
        this.o.onEvent({
          kind: 'fault',
          signerId: m.signer.id,
          identifier: m.identifier,
          fault: 'batch_open',
        });
        for (const it of items) drop(it, 'open', [m.identifier]);
        continue;
      }
      for (const [j, answer] of r.value.body.items.entries()) {
        const it = items[j]!;
        if (isItemError(answer)) {
          drop(it, `refused:${answer.error.code}`, [m.identifier]);
          continue;
        }
        const a = answer as SignOpenResponse;
        if (
          a.session_id !== it.session.sessionId ||
          a.attempt_id !== it.attemptId ||
          a.commitments.identifier !== m.identifier
        ) {
          drop(it, 'bad_commitments', [m.identifier]);
          continue;
        }
        it.commitments[m.identifier] = a.commitments;
      }
    }
    const live = items.filter((it) => !it.dropped);
    // Dropped items hold nonces on the members that answered: give them back at once.
    this.abort(
      chosen,
      items.filter((it) => it.dropped),
    );
    if (live.length === 0) return { completed: [], fallback };

    // Transaction 2: commitments recorded and marked used, sessions to signing.
    const committed = await this.commit(tenantId, live, chosen);
    const signing: Item[] = [];
    for (const [j, it] of live.entries()) {
      const s = committed[j];
      if (s === 'reuse') {
        drop(it, 'nonce_reuse');
      } else if (s) {
        it.session = s;
        signing.push(it);
      } else {
        it.dropped = 'moved_on'; // someone else drives it
      }
    }
    this.abort(
      chosen,
      live.filter((it) => it.dropped),
    );
    if (signing.length === 0) return { completed: [], fallback };

    // Round 2: one round2_batch per member.
    const packages = signing.map((it) => ({
      v: 1 as const,
      type: 'signing_package' as const,
      message: it.session.messageHash,
      commitments: ids.map((id) => it.commitments[id]!),
    }));
    t0 = this.o.now();
    const signed = await Promise.allSettled(
      chosen.map((m) =>
        this.o.clientFor(m.signer).exchange(
          'signRound2Batch',
          {
            items: signing.map((it, j) => ({
              key_id: key.id,
              session_id: it.session.sessionId,
              attempt_id: it.attemptId,
              signing_package: packages[j]!,
              ...withApprovals(items.indexOf(it)),
            })),
          },
          this.o.roundTimeoutMs,
        ),
      ),
    );
    this.o.onEvent({ kind: 'round', round: 'sign', ms: this.o.now() - t0 });
    // Decoded once: the package hashes and the aggregation read the same points.
    const decoded = packages.map((p) => decodeSigningPackage(p));
    const hashes = signing.map((it, j) =>
      toHex(
        signingPackageHash({
          sessionId: it.session.sessionId,
          attemptId: fromHex(it.attemptId, 'attempt id', 32),
          intentHash: fromHex(it.session.intentHash, 'intent hash', 32),
          tweak: null,
          pkg: decoded[j]!,
        }),
      ),
    );
    for (const [i, r] of signed.entries()) {
      const m = chosen[i]!;
      if (r.status === 'rejected' || r.value.body.items.length !== signing.length) {
        this.o.onEvent({
          kind: 'fault',
          signerId: m.signer.id,
          identifier: m.identifier,
          fault: 'batch_round2',
        });
        for (const it of signing) drop(it, 'round2', [m.identifier]);
        continue;
      }
      for (const [j, answer] of r.value.body.items.entries()) {
        const it = signing[j]!;
        if (isItemError(answer)) {
          drop(it, `refused:${answer.error.code}`, [m.identifier]);
          continue;
        }
        const a = answer as SignRound2Response;
        if (
          a.session_id !== it.session.sessionId ||
          a.attempt_id !== it.attemptId ||
          a.share.identifier !== m.identifier ||
          a.package_hash !== hashes[j]
        ) {
          drop(it, 'bad_share', [m.identifier]);
          continue;
        }
        it.shares[m.identifier] = a.share;
      }
    }

    // Aggregate and verify each; a failure goes to the orchestrator, which blames on single
    // answers (a batch answer is evidence of the whole batch, not of one share).
    t0 = this.o.now();
    const pub = decodePublicKeyPackage(key.publicKeyPackage);
    const finished: { it: Item; sig: string }[] = [];
    for (const [j, it] of signing.entries()) {
      if (it.dropped) continue;
      try {
        const sig = aggregate(
          pub,
          {
            message: fromHex(it.session.messageHash, 'message', 32),
            commitments: decoded[j]!.commitments,
          },
          ids.map((id) => decodeSignatureShare(it.shares[id]!)),
        );
        finished.push({ it, sig: toHex(sig) });
      } catch (e) {
        if (!isCryptoError(e)) throw e;
        drop(it, 'aggregate_failed');
      }
    }
    this.o.onEvent({ kind: 'round', round: 'aggregate', ms: this.o.now() - t0 });
    if (finished.length === 0) return { completed: [], fallback };

    // Transaction 3: shares and signatures.
    const done = await store.completeAttempts(
      tenantId,
      finished.map(({ it, sig }) => ({
        sessionId: it.session.sessionId,
        attempt: it.session.attempt,
        shares: { partialSignatures: { ...it.session.partialSignatures, [it.session.attempt]: it.shares } },
        completion: {
          finalSignature: sig,
          ...(it.session.intentType === 'nostr_event' ? { finalEventId: it.session.messageHash } : {}),
          completedAt: this.o.now(),
        },
        event: { kind: 'session.completed', data: { attempt: it.session.attempt, batch: true } },
      })),
    );
    const completed = done.filter((s): s is SessionRecord => s !== null && isTerminal(s.status));
    for (const s of completed) {
      this.o.onEvent({ kind: 'terminal', sessionId: s.sessionId, status: s.status, attempts: s.attempt });
    }
    return { completed, fallback };
  }

  /**
   * Record the commitments of every live item in one transaction. A commitment seen before
   * refuses the whole transaction; then each item is recorded on its own, so only the items
   * that carry a reused commitment are refused, and the members the database names are
   * blamed (their signed batch answer carried it).
   */
  private async commit(
    tenantId: string,
    live: Item[],
    chosen: Member[],
  ): Promise<(SessionRecord | null | 'reuse')[]> {
    const commit = (it: Item) => ({
      sessionId: it.session.sessionId,
      attempt: it.session.attempt,
      rows: chosen.map((m) => ({
        identifier: m.identifier,
        signerId: m.signer.id,
        commitment: commitmentHex(it.commitments[m.identifier]!),
      })),
      patch: {
        nonceCommitments: { ...it.session.nonceCommitments, [it.session.attempt]: it.commitments },
        signingStartedAt: this.o.now(),
      },
    });
    try {
      return await this.o.store.commitAttempts(tenantId, live.map(commit));
    } catch (e) {
      if (!isFloeError(e) || e.code !== 'nonce_reuse_detected') throw e;
    }
    const out: (SessionRecord | null | 'reuse')[] = [];
    for (const it of live) {
      try {
        out.push((await this.o.store.commitAttempts(tenantId, [commit(it)]))[0] ?? null);
      } catch (e) {
        if (!isFloeError(e) || e.code !== 'nonce_reuse_detected') throw e;
        const culprits = (e.extra.culprits as number[] | undefined) ?? [];
        for (const id of culprits) {
          const m = chosen.find((x) => x.identifier === id);
          if (!m) continue;
          this.o.onEvent({ kind: 'fault', signerId: m.signer.id, identifier: id, fault: 'nonce_reuse' });
          await this.o.store.recordSignerFault(m.signer.id, 'nonce_reuse', this.o.quarantineAfter);
        }
        await this.o.store.audit(tenantId, 'session.nonce_reuse', 'session', it.session.sessionId, {
          attempt: it.session.attempt,
          culprits,
          batch: true,
        });
        // The culprits are this session's: its next attempts go without them.
        if (culprits.length) {
          await this.o.store.transitionSessions(tenantId, [
            {
              sessionId: it.session.sessionId,
              from: ['nonce_collection'],
              expectAttempt: it.session.attempt,
              to: 'nonce_collection',
              patch: {
                attempt: it.session.attempt,
                culprits: [...new Set([...it.session.culprits, ...culprits])].sort((a, b) => a - b),
              },
              event: { kind: 'session.blame', data: { attempt: it.session.attempt, culprits } },
            },
          ]);
        }
        out.push('reuse');
      }
    }
    return out;
  }

  /** Give back the nonces of items that will not reach round 2 (fire and forget). */
  private abort(chosen: Member[], items: Item[]): void {
    for (const it of items) {
      for (const m of chosen) {
        this.o
          .clientFor(m.signer)
          .call('signAbort', { session_id: it.session.sessionId, attempt_id: it.attemptId }, 2000)
          .catch(() => {});
      }
    }
  }
}
