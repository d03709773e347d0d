/**
 * Drives one signing session to a terminal state (DESIGN §7): choose `t` responsive,
 * non-quarantined signers; open+commit on each; store the commitments (the database refuses
 * any commitment seen before); send the signing package; aggregate and verify; on a fault or
 * a timeout, blame, exclude and start a new attempt with another subset, until attempts run
 * out or the session expires. Every move is a conditional transition, so a second
 * coordinator driving the same session stops at its first lost race.
 *
 * A PSBT session signs several digests (one per input of the key, each under its own derived
 * key) in ONE attempt: each member commits to one nonce pair per digest, the database records
 * every commitment, round 2 carries one package per digest, and each signature is aggregated,
 * verified and blamed on its own (./psbt.ts). A member that refuses by its own policy
 * (`policy_refused`) is left out but never blamed; when the refusals leave fewer than t members,
 * the session fails with `policy_refused` and the rule.
 */

import type { SignatureShareJson, SigningCommitmentsJson } from '../crypto/encoding.js';
import {
  decodePublicKeyPackage,
  decodeSignatureShare,
  decodeSigningPackage,
  type PublicKeyPackageJson,
} from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { aggregate } from '../crypto/signing.js';
import type { ResolvedIntent } from '../domain/intent.js';
import { currentMembers, type PolicyRefusal } from '../domain/records.js';
import { isTerminal, legalSources } from '../domain/session-state.js';
import { attemptIdHex } from '../protocol/attempt.js';
import { judgeCommitments, judgeShare, type SignedAnswer } from '../protocol/blame.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { ApprovalEventJson } from '../protocol/messages/approvals.js';
import type { SignOpenResponse, SignRound2Response } from '../protocol/messages/sign.js';
import { signingPackageHash } from '../protocol/transcript.js';
import type { AuditEvent, CoordinatorStore, KeyRecord, SessionRecord, SignerRecord } from './ports.js';
import { type MultiDigest, multiDigestOf, psbtSummary, signedPsbt } from './psbt.js';
import type { SignerReachability } from './reachability.js';
import { type Candidate, chooseSubset, ineligibility } from './selection.js';
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
  /**
   * How long the signer list read for one session serves the next ones. A fault, a change made
   * through this coordinator (`forgetSigners`) or a key member missing from it reads it again at
   * once; a change made through another coordinator is seen within this time. Default 1 s; 0
   * reads it every attempt.
   */
  signerCacheMs?: number;
  /**
   * Among equally good signers, choose at random (spreads the load when n > t) instead of
   * by identifier. Default true.
   */
  spreadLoad?: boolean;
  /**
   * The stewards' approving decisions to show the signers with each request of a session whose
   * key has an approval policy (DESIGN §13; services/approvals.ts). Default: none.
   */
  approvalsFor?: (key: KeyRecord, session: SessionRecord) => Promise<ApprovalEventJson[] | undefined>;
  /**
   * What this coordinator last learned about reaching each signer (shared with the health job):
   * a signer last found unreachable is not chosen, so a session that cannot make a quorum of
   * reachable signers fails at once (`no_quorum`, naming them) instead of timing out.
   */
  reachability?: SignerReachability;
  /** How long the re-check of a signer marked unreachable before failing fast may take. Default 1 s. */
  recheckTimeoutMs?: number;
  onEvent?: (e: SigningEvent) => void;
}

/** What the caller already read: skips those reads (the service passes them at creation). */
export interface Known {
  session?: SessionRecord;
  key?: KeyRecord;
  /** Members to leave out of this drive's attempts (not blamed: e.g. they failed a batch). */
  avoid?: readonly number[];
  /** The session's intent as resolved at creation for this key (a PSBT is then not read again). */
  resolved?: ResolvedIntent;
  /**
   * The members of the attempt the session was created in (`NewSession.firstAttempt`): its
   * first attempt runs on them without a move of its own.
   */
  started?: Member[];
}

/** A key member with its registry record. */
export interface Member {
  identifier: number;
  signer: SignerRecord;
}

export type SigningEvent =
  | { kind: 'attempt'; sessionId: string; attempt: number; participants: number[] }
  | { kind: 'round'; round: 'open' | 'sign' | 'aggregate'; ms: number }
  | { kind: 'fault'; signerId: string; identifier: number; fault: string }
  | { kind: 'terminal'; sessionId: string; status: string; attempts: number };

const commitmentHex = (c: SigningCommitmentsJson) => `${c.hiding}${c.binding}`;

export class SigningOrchestrator {
  private readonly o: Required<Omit<SigningOptions, 'onEvent' | 'reachability'>> & {
    onEvent: (e: SigningEvent) => void;
    reachability: SignerReachability | undefined;
  };

  constructor(o: SigningOptions) {
    this.o = {
      now: Date.now,
      roundTimeoutMs: 10_000,
      maxAttempts: 5,
      quarantineAfter: 3,
      staleAfterMs: 10_000,
      latencyBucketMs: 100,
      signerCacheMs: 1000,
      spreadLoad: true,
      approvalsFor: async () => undefined,
      recheckTimeoutMs: 1000,
      onEvent: () => {},
      reachability: undefined,
      ...o,
    };
  }

  /** Run the session until it is terminal or another coordinator takes it. */
  async drive(tenantId: string, sessionId: string, known: Known = {}): Promise<SessionRecord> {
    const { store } = this.o;
    let s = known.session ?? (await store.getSession(tenantId, sessionId));
    if (!s) throw new FloeError('session_not_found', `no session ${sessionId}`);
    // Terminal, or waiting for its stewards (DESIGN §13): nothing to drive.
    if (isTerminal(s.status) || s.status === 'awaiting_approval') return s;
    const key = known.key?.id === s.keyId ? known.key : await store.getKey(tenantId, s.keyId);
    if (key?.status === 'frozen') {
      return this.finish((await this.fail(s, 'key_frozen', `key ${s.keyId} is frozen`)) ?? s);
    }
    if (key?.status !== 'active') {
      return (await this.fail(s, 'unknown_key', 'the key is not active')) ?? s;
    }
    const startedAt = this.o.now();
    let rechecked = false;
    const excluded = new Set<number>([...s.culprits, ...(known.avoid ?? [])]);
    // A PSBT: its digests and the key of each, resolved once for the whole drive.
    let multi: MultiDigest | undefined;
    try {
      multi = multiDigestOf(s, key, known.resolved);
    } catch (e) {
      if (!isFloeError(e)) throw e;
      return this.finish((await this.fail(s, e.code, e.message)) ?? s);
    }
    // Born in its first attempt (and still in it): that attempt runs on its members.
    let begun =
      known.started && s.status === 'nonce_collection' && s.attempt === 1 ? known.started : undefined;
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
      if (!begun && s.attempt >= this.o.maxAttempts) {
        return this.finish(
          (await this.fail(s, 'session_failed', `no valid signature after ${s.attempt} attempts`)) ?? s,
        );
      }
      const chosen = begun ?? (await this.choose(key, excluded));
      if (!chosen && this.refusedByPolicy(s, key)) {
        return this.finish((await this.fail(s, 'policy_refused', this.refusalSummary(s))) ?? s);
      }
      if (!chosen) {
        // Marks older than this drive may be stale: ask those signers once more before failing.
        if (!rechecked) {
          rechecked = true;
          if (await this.recheck(key, excluded, startedAt)) continue;
        }
        return this.finish((await this.fail(s, 'no_quorum', await this.noQuorum(key, excluded))) ?? s);
      }
      const next = await this.attempt(s, key, chosen, excluded, multi, begun !== undefined);
      begun = undefined;
      if (!next) return (await store.getSession(tenantId, sessionId))!; // lost a race: someone else drives it
      s = next;
      if (isTerminal(s.status)) return this.finish(s);
    }
  }

  /** The members of an attempt (selection.ts), or undefined when fewer than t are eligible. */
  async choose(key: KeyRecord, excluded: ReadonlySet<number>): Promise<Member[] | undefined> {
    const members = await this.members(key);
    const subset = chooseSubset(
      members.map((m) => this.candidate(m)),
      key.threshold,
      excluded,
      this.o.now() - this.o.staleAfterMs,
      this.o.latencyBucketMs,
      this.o.spreadLoad ? () => Math.random() : undefined,
    );
    return subset?.map((c) => members.find((m) => m.identifier === c.identifier)!);
  }

  private candidate(m: Member): Candidate {
    return { ...toCandidate(m), unreachable: this.o.reachability?.unreachable(m.signer.id) !== undefined };
  }

  /**
   * Ask the members marked unreachable before `since` (and not excluded) whether they are back,
   * at once and briefly; true when one of them answered.
   */
  private async recheck(key: KeyRecord, excluded: ReadonlySet<number>, since: number): Promise<boolean> {
    const r = this.o.reachability;
    if (!r) return false;
    const stale = (await this.members(key)).filter((m) => {
      const mark = r.unreachable(m.signer.id);
      return mark !== undefined && mark.at < since && !excluded.has(m.identifier);
    });
    const back = await Promise.all(
      stale.map(async (m) => {
        try {
          const info = await this.o.clientFor(m.signer).call('nodeInfo', {}, this.o.recheckTimeoutMs);
          if (info.identity !== m.signer.identityPubkey) return false;
          r.markReachable(m.signer.id);
          return true;
        } catch (e) {
          if (isFloeError(e) && e.code === 'signer_unreachable') r.markUnreachable(m.signer.id, this.o.now());
          else r.markReachable(m.signer.id); // it answered, with a refusal
          return false;
        }
      }),
    );
    return back.some(Boolean);
  }

  /** The no_quorum message: how many are needed, and each member that cannot sign and why. */
  private async noQuorum(key: KeyRecord, excluded: ReadonlySet<number>): Promise<string> {
    const why = (await this.members(key)).flatMap((m) => {
      const reason = ineligibility(this.candidate(m), excluded);
      const name = m.signer.name
        ? `${m.signer.id} (${m.signer.name}, ${m.signer.url})`
        : `${m.signer.id} (${m.signer.url})`;
      return reason ? [`member ${m.identifier} ${name}: ${reason}`] : [];
    });
    return `fewer than ${key.threshold} eligible signers remain; ${why.join('; ')}`.slice(0, 1000);
  }

  private finish(s: SessionRecord): SessionRecord {
    this.o.onEvent({ kind: 'terminal', sessionId: s.sessionId, status: s.status, attempts: s.attempt });
    return s;
  }

  /** Whether the members that refused by their own policy leave fewer than t to sign. */
  private refusedByPolicy(s: SessionRecord, key: KeyRecord): boolean {
    const refused = new Set((s.policyRefusals ?? []).map((r) => r.identifier));
    return refused.size > 0 && key.members.length - refused.size < key.threshold;
  }

  private refusalSummary(s: SessionRecord): string {
    const list = s.policyRefusals ?? [];
    const members = [...new Set(list.map((r) => r.identifier))].sort((a, b) => a - b);
    const rules = [...new Set(list.map((r) => r.rule).filter((r) => r !== null))];
    const first = list[0]?.message ?? 'refused';
    return `refused by the policy of members ${members.join(', ')}${rules.length ? ` (rule ${rules.join(', ')})` : ''}: ${first}`.slice(
      0,
      1000,
    );
  }

  /** Record members' policy refusals with the session (shown, and judged by refusedByPolicy). */
  private async noteRefusals(s: SessionRecord, attempt: number, refusals: PolicyRefusal[]) {
    if (refusals.length === 0) return s;
    const moved = await this.o.store.transitionSession(
      s.tenantId,
      s.sessionId,
      [s.status],
      attempt,
      s.status,
      {
        policyRefusals: [...(s.policyRefusals ?? []), ...refusals],
        // Staying in nonce_collection must not start another attempt.
        ...(s.status === 'nonce_collection' ? { attempt } : {}),
      },
      { kind: 'session.policy_refused', data: { attempt, refusals } },
    );
    return moved ?? s;
  }

  private signerCache: { at: number; byId: Map<string, SignerRecord> } | null = null;

  /** Read the signer list again for the next attempt (a signer was registered or changed). */
  forgetSigners(): void {
    this.signerCache = null;
  }

  private async signers(key: KeyRecord): Promise<Map<string, SignerRecord>> {
    const c = this.signerCache;
    if (
      c &&
      this.o.now() - c.at < this.o.signerCacheMs &&
      key.members.every((m) => c.byId.has(m.signer_id))
    ) {
      return c.byId;
    }
    const byId = new Map((await this.o.store.listSigners()).map((x) => [x.id, x]));
    this.signerCache = { at: this.o.now(), byId };
    return byId;
  }

  /** The key's members on its current share generation (a refresh's commit may still be on its way to others). */
  private async members(key: KeyRecord): Promise<Member[]> {
    const signers = await this.signers(key);
    return currentMembers(key).flatMap((m) => {
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
   * Exclude a member from this session: the next attempt goes without it. Only misbehaviour
   * the member itself signed (`proven`: a commitment seen before, equivocation, an invalid
   * share under the package it signed; src/protocol/blame.ts) counts towards quarantine.
   * A refusal, an unreachable signer, an unsigned or unbound answer is an availability event
   * (a restart, clock skew, an on-path attacker) and is not held against it (DESIGN §11).
   */
  private async exclude(m: Member, fault: string, excluded: Set<number>, proven = false): Promise<void> {
    excluded.add(m.identifier);
    if (fault === 'unreachable') this.o.reachability?.markUnreachable(m.signer.id, this.o.now());
    else this.o.reachability?.markReachable(m.signer.id);
    this.signerCache = null;
    this.o.onEvent({ kind: 'fault', signerId: m.signer.id, identifier: m.identifier, fault });
    if (proven) await this.o.store.recordSignerFault(m.signer.id, fault, this.o.quarantineAfter);
  }

  /** Record proven culprits with their evidence (audited with the session). */
  private async blame(
    s: SessionRecord,
    attempt: number,
    culprits: number[],
    evidence: Record<number, unknown>,
  ): Promise<SessionRecord | null> {
    return this.o.store.transitionSession(
      s.tenantId,
      s.sessionId,
      [s.status],
      attempt,
      s.status,
      {
        culprits: [...new Set([...s.culprits, ...culprits])].sort((a, b) => a - b),
        // Staying in nonce_collection must not start another attempt.
        ...(s.status === 'nonce_collection' ? { attempt } : {}),
      },
      { kind: 'session.blame', data: { attempt, culprits, evidence } },
    );
  }

  private abortAll(chosen: Member[], sessionId: string, attemptId: string): void {
    for (const m of chosen) {
      this.o
        .clientFor(m.signer)
        .call('signAbort', { session_id: sessionId, attempt_id: attemptId }, 2000)
        .catch(() => {});
    }
  }

  /** What a failed call was: unreachable, an answer that proves nothing, or a refusal. */
  private faultKind(e: unknown): string {
    if (!isFloeError(e)) return 'error';
    if (e.code === 'signer_unreachable') return 'unreachable';
    if (e.code === 'response_unverified') return 'unverified';
    return `refused:${e.code}`;
  }

  /**
   * One attempt. Returns the session after it (terminal or ready for another attempt), or null
   * on a lost race. `begun`: the session is already in this attempt, on `chosen` (it was created
   * in it), so there is no move to make.
   */
  private async attempt(
    prev: SessionRecord,
    key: KeyRecord,
    chosen: Member[],
    excluded: Set<number>,
    multi: MultiDigest | undefined,
    begun: boolean,
  ): Promise<SessionRecord | null> {
    const { store } = this.o;
    const attempt = begun ? prev.attempt : prev.attempt + 1;
    const refusals: PolicyRefusal[] = [];
    /** A refusal by the member's own policy: shown with the session, never a fault (DESIGN §14). */
    const noteRefusal = (m: Member, e: unknown) => {
      if (isFloeError(e) && e.code === 'policy_refused') {
        refusals.push({
          attempt,
          identifier: m.identifier,
          signer_id: m.signer.id,
          rule: typeof e.extra.rule === 'string' ? e.extra.rule.slice(0, 64) : null,
          message: e.message.slice(0, 500),
        });
      }
    };
    const ids = chosen.map((m) => m.identifier);
    const message = fromHex(prev.messageHash, 'message', 32);
    const attemptId = attemptIdHex({
      sessionId: prev.sessionId,
      digest: message,
      intentHash: fromHex(prev.intentHash, 'intent hash', 32),
      attempt,
      included: ids,
    });
    let s = begun
      ? prev
      : await store.transitionSession(
          prev.tenantId,
          prev.sessionId,
          legalSources('nonce_collection'),
          prev.attempt,
          'nonce_collection',
          { attempt, participants: ids, nonceCollectionStartedAt: this.o.now() },
          attemptEvent(attempt, ids),
        );
    if (!s) return null;
    this.o.onEvent({ kind: 'attempt', sessionId: s.sessionId, attempt, participants: ids });
    // From the first open until round 2 is sent, the chosen signers hold live nonces for this
    // attempt: every other way out (a refusal, reused nonces, a lost race, an error) aborts
    // them at once instead of leaving them until their TTL.
    // Every signer checks the stewards' quorum itself, at open and again at round 2.
    const approvals = await this.o.approvalsFor(key, prev);
    let roundTwo = false;
    try {
      // Round 1: open + commit on every chosen signer.
      let t0 = this.o.now();
      const opened = await Promise.allSettled(
        chosen.map((m) =>
          this.o.clientFor(m.signer).exchange(
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
              ...(approvals?.length ? { approvals } : {}),
              ...(key.generation ? { generation: key.generation } : {}),
            },
            this.o.roundTimeoutMs,
          ),
        ),
      );
      this.o.onEvent({ kind: 'round', round: 'open', ms: this.o.now() - t0 });
      const commitments: Record<string, SigningCommitmentsJson> = {};
      /** Multi-digest attempts: each member's commitments, one per digest in order. */
      const inputCommitments: Record<string, SigningCommitmentsJson[]> = {};
      const openAnswers = new Map<number, SignedAnswer>();
      let ok = true;
      const frozen = frozenRefusal(opened);
      if (frozen) return (await this.fail(s, 'key_frozen', frozen)) ?? s;
      for (const [i, r] of opened.entries()) {
        const m = chosen[i]!;
        if (r.status === 'fulfilled') this.o.reachability?.markReachable(m.signer.id);
        if (r.status === 'rejected') {
          ok = false;
          noteRefusal(m, r.reason);
          await this.exclude(m, this.faultKind(r.reason), excluded);
        } else if (
          r.value.body.commitments.identifier !== m.identifier ||
          r.value.body.attempt_id !== attemptId ||
          !openInputsMatch(r.value.body, m.identifier, multi)
        ) {
          ok = false;
          await this.exclude(m, 'bad_commitments', excluded);
        } else {
          commitments[m.identifier] = r.value.body.commitments;
          if (multi) inputCommitments[m.identifier] = r.value.body.inputs!.map((x) => x.commitments);
          openAnswers.set(m.identifier, r.value.evidence);
        }
      }
      if (!ok) return await this.noteRefusals(s, attempt, refusals);
      // One signing package per digest (a single one unless the intent signs several).
      const packages = (multi ? multi.digests : [null]).map((d, i) => ({
        v: 1 as const,
        type: 'signing_package' as const,
        message: d ? toHex(d.digest) : prev.messageHash,
        commitments: ids.map((id) => (multi ? inputCommitments[id]![i]! : commitments[id]!)),
      }));
      const signingPackage = packages[0]!;
      // One transaction: the commitments are recorded (the database refuses any seen before),
      // marked used, and the session moves to signing. No share is asked for before it commits.
      const collecting = s;
      try {
        const [committed] = await store.commitAttempts(collecting.tenantId, [
          {
            sessionId: collecting.sessionId,
            attempt,
            rows: chosen.flatMap((m) =>
              multi
                ? multi.digests.map((d, i) => ({
                    identifier: m.identifier,
                    signerId: m.signer.id,
                    commitment: commitmentHex(inputCommitments[m.identifier]![i]!),
                    inputIndex: d.input,
                  }))
                : [
                    {
                      identifier: m.identifier,
                      signerId: m.signer.id,
                      commitment: commitmentHex(commitments[m.identifier]!),
                    },
                  ],
            ),
            patch: {
              nonceCommitments: {
                ...collecting.nonceCommitments,
                [attempt]: multi ? inputCommitments : commitments,
              },
              signingStartedAt: this.o.now(),
            },
          },
        ]);
        s = committed ?? null;
      } catch (e) {
        if (isFloeError(e) && e.code === 'nonce_reuse_detected') {
          // No share is ever requested under a commitment seen before. A member named as its
          // sender is blamed and excluded, and the next attempt goes on without it; if the
          // database cannot say who, the session fails safe.
          const culprits = (e.extra.culprits as number[] | undefined) ?? [];
          if (culprits.length === 0) {
            return (
              (await this.fail(collecting, 'nonce_reuse_detected', 'a nonce commitment was seen before')) ??
              collecting
            );
          }
          // Proven by its own signed answer: a commitment the database has seen before.
          for (const id of culprits) {
            const m = chosen.find((x) => x.identifier === id);
            if (m) await this.exclude(m, 'nonce_reuse', excluded, true);
          }
          await store.audit(collecting.tenantId, 'session.nonce_reuse', 'session', collecting.sessionId, {
            attempt,
            culprits,
            evidence: Object.fromEntries(culprits.map((id) => [id, openAnswers.get(id)])),
          });
          return collecting;
        }
        throw e;
      }
      if (!s) return null; // another coordinator, a cancel or the expiry job moved it on

      // Round 2: the signing package (one per digest) to every chosen signer.
      roundTwo = true;
      t0 = this.o.now();
      const inputs = multi?.digests.map((d, i) => ({ input: d.input, signing_package: packages[i]! }));
      const signed = await Promise.allSettled(
        chosen.map((m) =>
          this.o.clientFor(m.signer).exchange(
            'signRound2',
            {
              key_id: key.id,
              session_id: s!.sessionId,
              attempt_id: attemptId,
              signing_package: signingPackage,
              ...(inputs ? { inputs } : {}),
              ...(approvals?.length ? { approvals } : {}),
            },
            this.o.roundTimeoutMs,
          ),
        ),
      );
      this.o.onEvent({ kind: 'round', round: 'sign', ms: this.o.now() - t0 });
      /** Each member's shares, one per digest in order. */
      const shares: Record<string, SignatureShareJson[]> = {};
      const shareAnswers = new Map<number, SignedAnswer>();
      // Decoded once: the package hashes and the aggregation read the same points.
      const decoded = packages.map((p) => decodeSigningPackage(p));
      const packageHashes = decoded.map((pkg, i) =>
        toHex(
          signingPackageHash({
            sessionId: s!.sessionId,
            attemptId: fromHex(attemptId, 'attempt id', 32),
            intentHash: fromHex(s!.intentHash, 'intent hash', 32),
            tweak: multi?.tweaks[i] ? fromHex(multi.tweaks[i]!, 'tweak') : null,
            pkg,
          }),
        ),
      );
      const equivocated: number[] = [];
      const equivocation: Record<number, unknown> = {};
      const frozenNow = frozenRefusal(signed);
      if (frozenNow) {
        this.abortAll(chosen, s.sessionId, attemptId);
        return (await this.fail(s, 'key_frozen', frozenNow)) ?? s;
      }
      ok = true;
      for (const [i, r] of signed.entries()) {
        const m = chosen[i]!;
        if (r.status === 'rejected') {
          ok = false;
          noteRefusal(m, r.reason);
          await this.exclude(m, this.faultKind(r.reason), excluded);
          continue;
        }
        const { body, evidence } = r.value;
        const answered = sharesOf(body, multi);
        if (
          !answered ||
          answered.some((x) => x.share.identifier !== m.identifier) ||
          body.attempt_id !== attemptId
        ) {
          ok = false;
          await this.exclude(m, 'bad_share', excluded);
        } else if (answered.some((x, j) => x.package_hash !== packageHashes[j])) {
          ok = false;
          // It signed over another package than ours. Only its own two answers can tell whose
          // doing that is: a commitment other than the one it opened with is its equivocation;
          // otherwise nobody is blamed (the package may have been changed on the way).
          const open = openAnswers.get(m.identifier)!;
          if (judgeCommitments(open, evidence) === 'equivocation') {
            equivocated.push(m.identifier);
            equivocation[m.identifier] = { open, round2: evidence };
            await this.exclude(m, 'equivocation', excluded, true);
          } else {
            await this.exclude(m, 'other_package', excluded);
          }
        } else {
          shares[m.identifier] = answered.map((x) => x.share);
          shareAnswers.set(m.identifier, evidence);
        }
      }
      if (!ok) {
        this.abortAll(chosen, s.sessionId, attemptId);
        if (equivocated.length) return (await this.blame(s, attempt, equivocated, equivocation)) ?? s;
        return await this.noteRefusals(s, attempt, refusals);
      }
      // As stored: one share per member (a list per member for several digests).
      const stored = Object.fromEntries(
        Object.entries(shares).map(([id, list]) => [id, multi ? list : list[0]!]),
      );
      // Aggregate and verify each digest, then store shares and signatures in one transaction.
      t0 = this.o.now();
      const pub = decodePublicKeyPackage(key.publicKeyPackage);
      const failed: number[] = [];
      const sigs: Uint8Array[] = [];
      for (const j of packages.keys()) {
        try {
          sigs.push(
            aggregate(
              multi ? multi.keys[j]! : pub,
              {
                message: multi ? multi.digests[j]!.digest : message,
                commitments: decoded[j]!.commitments,
              },
              ids.map((id) => decodeSignatureShare(shares[id]![j]!)),
            ),
          );
        } catch (e) {
          if (!isCryptoError(e)) throw e;
          failed.push(j);
        }
      }
      if (failed.length === 0) {
        this.o.onEvent({ kind: 'round', round: 'aggregate', ms: this.o.now() - t0 });
        let bitcoin: SessionRecord['bitcoin'];
        if (multi) {
          try {
            bitcoin = signedPsbt(
              multi.plan,
              multi.digests.map((d, j) => ({ inputIndex: d.input, signature: sigs[j]! })),
              s.bitcoin ?? psbtSummaryOf(multi),
            );
          } catch (e) {
            if (!isFloeError(e)) throw e;
            return (await this.fail(s, e.code, e.message)) ?? s;
          }
        }
        const [done] = await store.completeAttempts(s.tenantId, [
          {
            sessionId: s.sessionId,
            attempt,
            shares: { partialSignatures: { ...s.partialSignatures, [attempt]: stored } },
            completion: {
              // A PSBT: the first input's signature here, every one of them in the PSBT.
              finalSignature: toHex(sigs[0]!),
              // A nostr_event session signed the event id: that is the event now.
              ...(s.intentType === 'nostr_event' ? { finalEventId: s.messageHash } : {}),
              ...(bitcoin ? { bitcoin } : {}),
              completedAt: this.o.now(),
            },
            event: { kind: 'session.completed', data: { attempt } },
          },
        ]);
        return done ?? null;
      }
      {
        // Keep the shares with the session: they are the evidence.
        s = await store.transitionSession(s.tenantId, s.sessionId, ['signing'], attempt, 'aggregating', {
          partialSignatures: { ...s.partialSignatures, [attempt]: stored },
        });
        if (!s) return null;
        // Blame only what the evidence proves: each member's signed answer, judged against
        // the package it signed (which, its package_hash says, is ours), digest by digest.
        const culprits: number[] = [];
        const evidence: Record<number, unknown> = {};
        for (const m of chosen) {
          const answer = shareAnswers.get(m.identifier)!;
          const bad = failed.find(
            (j) =>
              judgeShare({
                evidence: answer,
                sessionId: s!.sessionId,
                attemptId,
                intentHash: s!.intentHash,
                tweak: multi ? multi.tweaks[j]! : null,
                ...(multi ? { index: j } : {}),
                signingPackage: packages[j]!,
                publicKeyPackage: key.publicKeyPackage as PublicKeyPackageJson,
              }) === 'invalid_share',
          );
          if (bad !== undefined) {
            culprits.push(m.identifier);
            evidence[m.identifier] = multi ? { answer, input: multi.digests[bad]!.input } : answer;
            await this.exclude(m, 'invalid_share', excluded, true);
          }
        }
        if (culprits.length === 0) {
          // The aggregate failed and no share is provably bad: do not blame, try other members.
          for (const m of chosen) await this.exclude(m, 'aggregate_failed', excluded);
          return s;
        }
        return this.blame(s, attempt, culprits, evidence);
      }
    } finally {
      if (!roundTwo) this.abortAll(chosen, prev.sessionId, attemptId);
    }
  }
}

/** What a session's move into an attempt records. */
export function attemptEvent(attempt: number, participants: number[], batch = false): AuditEvent {
  return { kind: 'session.attempt', data: { attempt, participants, ...(batch ? { batch } : {}) } };
}

/** The message of a member's `key_frozen` refusal (the operator froze the key: DESIGN kill switch). */
function frozenRefusal(results: readonly PromiseSettledResult<unknown>[]): string | undefined {
  for (const r of results) {
    if (r.status === 'rejected' && isFloeError(r.reason) && r.reason.code === 'key_frozen') {
      return `a signer refused: ${r.reason.message}`.slice(0, 1000);
    }
  }
  return undefined;
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

/**
 * A multi-digest open answer carries one commitment per digest, in order, naming each digest's
 * input, all of the member, the first the one of `commitments`; a single-digest one has none.
 */
function openInputsMatch(
  body: SignOpenResponse,
  identifier: number,
  multi: MultiDigest | undefined,
): boolean {
  if (!multi) return body.inputs === undefined;
  const got = body.inputs;
  return (
    got !== undefined &&
    got.length === multi.digests.length &&
    got.every((x, i) => x.input === multi.digests[i]!.input && x.commitments.identifier === identifier) &&
    commitmentHex(got[0]!.commitments) === commitmentHex(body.commitments)
  );
}

/** A round-2 answer's shares, one per digest in order, or undefined when its shape is wrong. */
function sharesOf(
  body: SignRound2Response,
  multi: MultiDigest | undefined,
): { share: SignatureShareJson; package_hash: string }[] | undefined {
  if (!multi) return body.inputs === undefined ? [body] : undefined;
  const got = body.inputs;
  if (!got || got.length !== multi.digests.length) return undefined;
  if (got.some((x, i) => x.input !== multi.digests[i]!.input)) return undefined;
  if (got[0]!.share.share !== body.share.share || got[0]!.package_hash !== body.package_hash)
    return undefined;
  return got;
}

/** The summary of a PSBT session that has none stored (created before it was kept). */
function psbtSummaryOf(multi: MultiDigest) {
  return psbtSummary(
    multi.plan.view,
    multi.digests.map((d) => d.input),
    false,
  );
}
