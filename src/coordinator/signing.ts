/**
 * Drives one signing session to a terminal state (DESIGN §7): choose `t` responsive,
 * non-quarantined signers; open+commit on each; store the commitments (the database refuses
 * any commitment seen before); send the signing package; aggregate and verify; on a fault or
 * a timeout, blame, exclude and start a new attempt with another subset, until attempts run
 * out or the session expires. Every move is a conditional transition, so a second
 * coordinator driving the same session stops at its first lost race.
 */

import type { SignatureShareJson, SigningCommitmentsJson } from '../crypto/encoding.js';
import { decodeCommitments, decodePublicKeyPackage, decodeSignatureShare } from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { aggregate } from '../crypto/signing.js';
import { isTerminal, legalSources } from '../domain/session-state.js';
import { attemptIdHex } from '../protocol/attempt.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { CoordinatorStore, KeyRecord, SessionRecord, SignerRecord } from './ports.js';
import { type Candidate, chooseSubset } from './selection.js';
import type { SignerClient } from './signer-client.js';

export interface SigningOptions {
  store: CoordinatorStore;
  clientFor: (signer: SignerRecord) => SignerClient;
  now?: () => number;
  /** Per-round timeout. Default 10 s. */
  roundTimeoutMs?: number;
  /** Attempts per session. Default 5. */
  maxAttempts?: number;
  /** Faults after which a signer is quarantined. Default 3. */
  quarantineAfter?: number;
  /** A signer not seen for this long is tried only when fresher ones do not suffice. Default 10 s. */
  staleAfterMs?: number;
  /** Latencies within one bucket of this width rank as equally fast. Default 100 ms. */
  latencyBucketMs?: number;
  onEvent?: (e: SigningEvent) => void;
}

export type SigningEvent =
  | { kind: 'attempt'; sessionId: string; attempt: number; participants: number[] }
  | { kind: 'round'; round: 'open' | 'sign' | 'aggregate'; ms: number }
  | { kind: 'fault'; signerId: string; identifier: number; fault: string }
  | { kind: 'terminal'; sessionId: string; status: string; attempts: number };

interface Member {
  identifier: number;
  signer: SignerRecord;
}

const commitmentHex = (c: SigningCommitmentsJson) => `${c.hiding}${c.binding}`;

export class SigningOrchestrator {
  private readonly o: Required<Omit<SigningOptions, 'onEvent'>> & { onEvent: (e: SigningEvent) => void };

  constructor(o: SigningOptions) {
    this.o = {
      now: Date.now,
      roundTimeoutMs: 10_000,
      maxAttempts: 5,
      quarantineAfter: 3,
      staleAfterMs: 10_000,
      latencyBucketMs: 100,
      onEvent: () => {},
      ...o,
    };
  }

  /** Run the session until it is terminal or another coordinator takes it. */
  async drive(tenantId: string, sessionId: string): Promise<SessionRecord> {
    const { store } = this.o;
    let s = await store.getSession(tenantId, sessionId);
    if (!s) throw new FloeError('session_not_found', `no session ${sessionId}`);
    // Terminal, or waiting for its stewards (DESIGN §13): nothing to drive.
    if (isTerminal(s.status) || s.status === 'awaiting_approval') return s;
    const key = await store.getKey(tenantId, s.keyId);
    if (key?.status !== 'active') {
      return (await this.fail(s, 'unknown_key', 'the key is not active')) ?? s;
    }
    const excluded = new Set<number>(s.culprits);
    for (;;) {
      if (this.o.now() >= s.expiresAt) {
        const e = await store.transitionSession(
          tenantId,
          sessionId,
          legalSources('expired'),
          s.attempt,
          'expired',
          {
            errorCode: 'session_expired',
            errorMessage: 'the session expired before a signature was made',
          },
        );
        return this.finish(e ?? (await store.getSession(tenantId, sessionId))!);
      }
      if (s.attempt >= this.o.maxAttempts) {
        return this.finish(
          (await this.fail(s, 'session_failed', `no valid signature after ${s.attempt} attempts`)) ?? s,
        );
      }
      const members = await this.members(key);
      const subset = chooseSubset(
        members.map(toCandidate),
        key.threshold,
        excluded,
        this.o.now() - this.o.staleAfterMs,
        this.o.latencyBucketMs,
      );
      if (!subset) {
        return this.finish(
          (await this.fail(s, 'no_quorum', `fewer than ${key.threshold} eligible signers remain`)) ?? s,
        );
      }
      const chosen = subset.map((c) => members.find((m) => m.identifier === c.identifier)!);
      const next = await this.attempt(s, key, chosen, excluded);
      if (!next) return (await store.getSession(tenantId, sessionId))!; // lost a race: someone else drives it
      s = next;
      if (isTerminal(s.status)) return this.finish(s);
    }
  }

  private finish(s: SessionRecord): SessionRecord {
    this.o.onEvent({ kind: 'terminal', sessionId: s.sessionId, status: s.status, attempts: s.attempt });
    return s;
  }

  private async members(key: KeyRecord): Promise<Member[]> {
    const signers = new Map((await this.o.store.listSigners()).map((x) => [x.id, x]));
    return key.members.flatMap((m) => {
      const signer = signers.get(m.signer_id);
      return signer ? [{ identifier: m.identifier, signer }] : [];
    });
  }

  private fail(s: SessionRecord, code: string, message: string): Promise<SessionRecord | null> {
    return this.o.store.transitionSession(
      s.tenantId,
      s.sessionId,
      legalSources('failed'),
      s.attempt,
      'failed',
      {
        errorCode: code,
        errorMessage: message,
        failedAt: this.o.now(),
      },
    );
  }

  /**
   * Exclude a member from this session. Misbehaviour (a refusal, a bad share or commitment,
   * nonce reuse) also counts towards quarantine; an unreachable signer does not: that is a
   * liveness problem (a crash, a restart), and health probes already rank it last.
   */
  private async fault(m: Member, fault: string, excluded: Set<number>): Promise<void> {
    excluded.add(m.identifier);
    this.o.onEvent({ kind: 'fault', signerId: m.signer.id, identifier: m.identifier, fault });
    if (fault !== 'unreachable')
      await this.o.store.recordSignerFault(m.signer.id, fault, this.o.quarantineAfter);
  }

  private abortAll(chosen: Member[], sessionId: string, attemptId: string): void {
    for (const m of chosen) {
      this.o
        .clientFor(m.signer)
        .call('signAbort', { session_id: sessionId, attempt_id: attemptId }, 2000)
        .catch(() => {});
    }
  }

  /** Classify a failed call: a signed refusal or an unreachable signer. */
  private faultKind(e: unknown): string {
    if (isFloeError(e)) return e.code === 'signer_unreachable' ? 'unreachable' : `refused:${e.code}`;
    return 'error';
  }

  /** One attempt. Returns the session after it (terminal or ready for another attempt), or null on a lost race. */
  private async attempt(
    prev: SessionRecord,
    key: KeyRecord,
    chosen: Member[],
    excluded: Set<number>,
  ): Promise<SessionRecord | null> {
    const { store } = this.o;
    const attempt = prev.attempt + 1;
    const ids = chosen.map((m) => m.identifier);
    const message = fromHex(prev.messageHash, 'message', 32);
    const attemptId = attemptIdHex({
      sessionId: prev.sessionId,
      digest: message,
      intentHash: fromHex(prev.intentHash, 'intent hash', 32),
      attempt,
      included: ids,
    });
    let s = await store.transitionSession(
      prev.tenantId,
      prev.sessionId,
      legalSources('nonce_collection'),
      prev.attempt,
      'nonce_collection',
      { attempt, participants: ids, nonceCollectionStartedAt: this.o.now() },
      { kind: 'session.attempt', data: { attempt, participants: ids } },
    );
    if (!s) return null;
    this.o.onEvent({ kind: 'attempt', sessionId: s.sessionId, attempt, participants: ids });
    // From the first open until round 2 is sent, the chosen signers hold live nonces for this
    // attempt: every other way out (a refusal, reused nonces, a lost race, an error) aborts
    // them at once instead of leaving them until their TTL.
    let roundTwo = false;
    try {
      // Round 1: open + commit on every chosen signer.
      let t0 = this.o.now();
      const opened = await Promise.allSettled(
        chosen.map((m) =>
          this.o.clientFor(m.signer).call(
            'signOpen',
            {
              key_id: key.id,
              session_id: s!.sessionId,
              attempt,
              included: ids,
              intent: prev.intent,
              message: prev.messageHash,
              intent_hash: prev.intentHash,
              attempt_id: attemptId,
            },
            this.o.roundTimeoutMs,
          ),
        ),
      );
      this.o.onEvent({ kind: 'round', round: 'open', ms: this.o.now() - t0 });
      const commitments: Record<string, SigningCommitmentsJson> = {};
      let ok = true;
      for (const [i, r] of opened.entries()) {
        const m = chosen[i]!;
        if (r.status === 'rejected') {
          ok = false;
          await this.fault(m, this.faultKind(r.reason), excluded);
        } else if (r.value.commitments.identifier !== m.identifier || r.value.attempt_id !== attemptId) {
          ok = false;
          await this.fault(m, 'bad_commitments', excluded);
        } else {
          commitments[m.identifier] = r.value.commitments;
        }
      }
      if (!ok) return s;
      try {
        await store.insertCommitments(
          s.tenantId,
          s.sessionId,
          attempt,
          chosen.map((m) => ({
            identifier: m.identifier,
            signerId: m.signer.id,
            commitment: commitmentHex(commitments[m.identifier]!),
          })),
        );
      } catch (e) {
        if (isFloeError(e) && e.code === 'nonce_reuse_detected') {
          // No share is ever requested under a commitment seen before. A member named as its
          // sender is blamed and excluded, and the next attempt goes on without it; if the
          // database cannot say who, the session fails safe.
          const culprits = (e.extra.culprits as number[] | undefined) ?? [];
          if (culprits.length === 0) {
            return (await this.fail(s, 'nonce_reuse_detected', 'a nonce commitment was seen before')) ?? s;
          }
          for (const id of culprits) {
            const m = chosen.find((x) => x.identifier === id);
            if (m) await this.fault(m, 'nonce_reuse', excluded);
          }
          await store.audit(s.tenantId, 'session.nonce_reuse', 'session', s.sessionId, { attempt, culprits });
          return s;
        }
        throw e;
      }
      s = await store.transitionSession(s.tenantId, s.sessionId, ['nonce_collection'], attempt, 'signing', {
        nonceCommitments: { ...s.nonceCommitments, [attempt]: commitments },
        signingStartedAt: this.o.now(),
      });
      if (!s) return null; // another coordinator, a cancel or the expiry job moved it on

      // Round 2: the signing package to every chosen signer.
      const signingPackage = {
        v: 1 as const,
        type: 'signing_package' as const,
        message: prev.messageHash,
        commitments: ids.map((id) => commitments[id]!),
      };
      if (
        !(await store.markCommitmentsUsed(
          s.tenantId,
          ids.map((id) => commitmentHex(commitments[id]!)),
        ))
      ) {
        return (await this.fail(s, 'nonce_reuse_detected', 'a nonce commitment was already used')) ?? s;
      }
      roundTwo = true;
      t0 = this.o.now();
      const signed = await Promise.allSettled(
        chosen.map((m) =>
          this.o.clientFor(m.signer).call(
            'signRound2',
            {
              key_id: key.id,
              session_id: s!.sessionId,
              attempt_id: attemptId,
              signing_package: signingPackage,
            },
            this.o.roundTimeoutMs,
          ),
        ),
      );
      this.o.onEvent({ kind: 'round', round: 'sign', ms: this.o.now() - t0 });
      const shares: Record<string, SignatureShareJson> = {};
      ok = true;
      for (const [i, r] of signed.entries()) {
        const m = chosen[i]!;
        if (r.status === 'rejected') {
          ok = false;
          await this.fault(m, this.faultKind(r.reason), excluded);
        } else if (r.value.share.identifier !== m.identifier || r.value.attempt_id !== attemptId) {
          ok = false;
          await this.fault(m, 'bad_share', excluded);
        } else {
          shares[m.identifier] = r.value.share;
        }
      }
      if (!ok) {
        this.abortAll(chosen, s.sessionId, attemptId);
        return s;
      }
      s = await store.transitionSession(s.tenantId, s.sessionId, ['signing'], attempt, 'aggregating', {
        partialSignatures: { ...s.partialSignatures, [attempt]: shares },
      });
      if (!s) return null;

      // Aggregate, verify, blame.
      t0 = this.o.now();
      const pub = decodePublicKeyPackage(key.publicKeyPackage);
      try {
        const sig = aggregate(
          pub,
          { message, commitments: signingPackage.commitments.map(decodeCommitments) },
          ids.map((id) => decodeSignatureShare(shares[id]!)),
        );
        this.o.onEvent({ kind: 'round', round: 'aggregate', ms: this.o.now() - t0 });
        const done = await store.transitionSession(
          s.tenantId,
          s.sessionId,
          ['aggregating'],
          attempt,
          'completed',
          {
            finalSignature: toHex(sig),
            // A nostr_event session signed the event id: that is the event now.
            ...(s.intentType === 'nostr_event' ? { finalEventId: s.messageHash } : {}),
            completedAt: this.o.now(),
          },
          { kind: 'session.completed', data: { attempt } },
        );
        return done;
      } catch (e) {
        if (!isCryptoError(e)) throw e;
        const culprits = e.culprits;
        for (const id of culprits) {
          const m = chosen.find((x) => x.identifier === id);
          if (m) await this.fault(m, 'invalid_share', excluded);
        }
        const after = await store.transitionSession(
          s.tenantId,
          s.sessionId,
          ['aggregating'],
          attempt,
          'aggregating',
          {
            culprits: [...new Set([...s.culprits, ...culprits])],
          },
          { kind: 'session.blame', data: { attempt, culprits } },
        );
        return after;
      }
    } finally {
      if (!roundTwo) this.abortAll(chosen, prev.sessionId, attemptId);
    }
  }
}

function toCandidate(m: Member): Candidate {
  return {
    identifier: m.identifier,
    signerId: m.signer.id,
    status: m.signer.status,
    quarantined: m.signer.quarantined,
    quarantineOverride: m.signer.quarantineOverride,
    faultCount: m.signer.faultCount,
    lastLatencyMs: m.signer.lastLatencyMs,
    lastSeenAt: m.signer.lastSeenAt,
  };
}
