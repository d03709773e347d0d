/**
 * Hardened interactive signing (DESIGN §4): nonce custody for two-round FROST signing.
 *
 * 1. Nonces come from the OS CSPRNG hashed with the share (RFC 9591 nonce_generate), live
 *    only in this object's memory, bound to (key, session, attempt id), never leave it.
 * 2. open is idempotent per (session, attempt id, request fingerprint); another
 *    fingerprint for the same attempt is a conflict; a higher attempt number replaces
 *    (and wipes) the live attempt; a lower one is refused.
 * 3. open resolves the intent itself (digest, intent hash: DESIGN §12) and refuses a
 *    coordinator that claims another. A multi-digest intent (a PSBT: one digest per input of
 *    the key, each under its own derived key) gets one nonce pair per digest, all in the one
 *    attempt; round 2 then checks every digest's package as below, writes ONE marker for the
 *    attempt and releases all the shares, or none. Round 2 checks everything before consuming: message,
 *    exactly t commitments, all in the included set, own identifier present, own commitment
 *    byte-identical, policy (shown the decoded intent, at open and again at round 2).
 * 4. Then the consumption marker is written durably BEFORE the share is computed; a failed
 *    write leaves the nonces live; an existing marker means `consumed_nonce_replay`.
 * 5. Nonce buffers are zeroed after use, abort, expiry and replacement.
 * 6. Live attempts are capped and expire (swept at every entry point and by a timer).
 * 7. After a restart no live nonce exists (they were only in memory); markers remain.
 * 8. Responses are signed by the node identity (done by the server around this engine).
 */
import {
  deriveTaprootKeyPackage,
  type TaprootDerivation,
  taprootDerivationBytes,
} from '../crypto/derive-key.js';
import { decodeSigningPackage, encodeCommitments, encodeSignatureShare } from '../crypto/encoding.js';
import { taggedFieldsHash, utf8 } from '../crypto/hash.js';
import { bytesEqual, fromHex, toHex, wipe } from '../crypto/hex.js';
import { sortedUniqueIds } from '../crypto/identifier.js';
import { checkSigningPackage, commit, signShare } from '../crypto/signing.js';
import type { KeyPackage, SigningCommitments, SigningNonces, SigningPackage } from '../crypto/types.js';
import { type IntentView, intentKeyOf, type ResolvedIntent, resolveIntent } from '../domain/intent.js';
import { attemptIdHex } from '../protocol/attempt.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type {
  BatchItemError,
  SignAbortRequest,
  SignAbortResponse,
  SignOpenBatchRequest,
  SignOpenBatchResponse,
  SignOpenRequest,
  SignOpenResponse,
  SignRound2BatchRequest,
  SignRound2BatchResponse,
  SignRound2Request,
  SignRound2Response,
} from '../protocol/messages/sign.js';
import { signingPackageHash } from '../protocol/transcript.js';
import { requireApprovals } from './approvals.js';
import { allowAll, type SigningPolicy } from './policy.js';
import type { Clock, Rng, SignerStore, StoredKey } from './ports.js';

export interface EngineOptions {
  store: SignerStore;
  clock: Clock;
  /** Randomness for nonces (RFC 9591 hashes it with the share). Defaults to the OS CSPRNG. */
  rng?: Rng;
  policy?: SigningPolicy;
  /** Default 1024. */
  maxLiveAttempts?: number;
  /** Default 600 000 ms. */
  attemptTtlMs?: number;
  /** Called with events for metrics and audit; never receives secrets. */
  onEvent?: (e: EngineEvent) => void;
}

export type EngineEvent =
  | { kind: 'opened'; sessionId: string; attempt: number }
  | { kind: 'replaced'; sessionId: string; attempt: number }
  | { kind: 'signed'; sessionId: string; attemptId: string }
  | { kind: 'refused'; code: string }
  | { kind: 'expired'; count: number }
  | { kind: 'aborted'; count: number };

interface LiveAttempt {
  keyId: string;
  sessionId: string;
  attempt: number;
  attemptId: string;
  fingerprint: string;
  included: number[];
  /** The digest signed, as this signer resolved it from the intent. */
  message: Uint8Array;
  intentHash: Uint8Array;
  tweak: Uint8Array | null;
  intent: IntentView;
  nonces: SigningNonces;
  commitments: SigningCommitments;
  expiresAt: number;
  /** The share generation the attempt was opened on: round 2 signs only with that one. */
  generation: number;
  /**
   * Multi-digest attempts (a PSBT intent): one part per digest, in the intent's order; the
   * first part's nonces and commitments are the ones above. Absent for a single digest.
   */
  parts?: LivePart[];
}

/** One digest of a multi-digest attempt, with its own nonces (bound to its input and the attempt). */
interface LivePart {
  /** The PSBT input it signs. */
  input: number;
  /** The digest (the input's sighash), as this signer resolved it. */
  message: Uint8Array;
  /** The derived key it is signed under; null: the key as stored. */
  key: TaprootDerivation | null;
  nonces: SigningNonces;
  commitments: SigningCommitments;
}

/** A round-2 request that passed every check (rule 3), ready for its marker. */
interface Round2Ready {
  req: SignRound2Request;
  a: LiveAttempt;
  key: StoredKey;
  pkg: SigningPackage;
  /** Multi-digest attempts: the package of each part, in order (pkgs[0] is `pkg`). */
  pkgs?: SigningPackage[];
}

export const DEFAULT_MAX_LIVE_ATTEMPTS = 1024;
export const DEFAULT_ATTEMPT_TTL_MS = 600_000;

export class SigningEngine {
  private readonly live = new Map<string, LiveAttempt>();
  /**
   * Highest attempt number opened per session (memory only, kept as long as an attempt TTL).
   * Only attempts after the first are recorded: attempt numbers start at 1, so a first attempt
   * fences nothing, and most sessions never have a second (at 50 signatures/s a fence for every
   * session would hold 30,000 entries).
   */
  private readonly highWater = new Map<string, { attempt: number; until: number }>();
  private readonly store: SignerStore;
  private readonly clock: Clock;
  private readonly rng: Rng | undefined;
  private readonly policy: SigningPolicy;
  private readonly maxLive: number;
  private readonly ttl: number;
  private readonly onEvent: (e: EngineEvent) => void;

  constructor(o: EngineOptions) {
    this.store = o.store;
    this.clock = o.clock;
    this.rng = o.rng;
    this.policy = o.policy ?? allowAll;
    this.maxLive = o.maxLiveAttempts ?? DEFAULT_MAX_LIVE_ATTEMPTS;
    this.ttl = o.attemptTtlMs ?? DEFAULT_ATTEMPT_TTL_MS;
    this.onEvent = o.onEvent ?? (() => {});
  }

  get liveAttempts(): number {
    return this.live.size;
  }

  /** Sessions whose older attempts are refused (the high-water fence). */
  get fencedSessions(): number {
    return this.highWater.size;
  }

  /** Wipe and drop expired attempts. Runs at every entry point; the server also runs it on a timer. */
  sweep(): number {
    const now = this.clock.now();
    let n = 0;
    for (const [sid, a] of this.live) {
      if (a.expiresAt <= now) {
        this.drop(sid);
        n++;
      }
    }
    for (const [sid, hw] of this.highWater)
      if (hw.until <= now && !this.live.has(sid)) this.highWater.delete(sid);
    if (n) this.onEvent({ kind: 'expired', count: n });
    return n;
  }

  /** Round 1: open an attempt and commit to fresh nonces. */
  open(req: SignOpenRequest): SignOpenResponse {
    return this.guard(() => this.openInner(req));
  }

  /** Round 2: verify everything, write the marker, then compute and release the share. */
  round2(req: SignRound2Request): SignRound2Response {
    return this.guard(() => this.round2Inner(req));
  }

  /**
   * Round 1 for a batch: each item opened exactly as `open` would (its own nonces, its own
   * checks); a refused item is answered with its error and the others go on.
   */
  openBatch(req: SignOpenBatchRequest): SignOpenBatchResponse {
    this.sweep();
    distinctSessions(req.items);
    return {
      items: req.items.map((item) => {
        try {
          return this.guard(() => this.openInner(item));
        } catch (e) {
          return itemError(e);
        }
      }),
    };
  }

  /**
   * Round 2 for a batch: every item checked as `round2` does, then the markers of all that
   * passed written in ONE transaction before any share is computed (rule 4), then the shares.
   */
  round2Batch(req: SignRound2BatchRequest): SignRound2BatchResponse {
    this.sweep();
    distinctSessions(req.items);
    const checked = req.items.map((item) => {
      try {
        return this.guard(() => this.checkRound2(item));
      } catch (e) {
        return e instanceof Error ? e : new Error('refused');
      }
    });
    return {
      items: this.release(checked).map((r, i) => {
        if (!(r instanceof Error)) return r;
        // Refusals of the checks were counted by guard; these came from the markers.
        if (!(checked[i] instanceof Error)) {
          this.onEvent({ kind: 'refused', code: isFloeError(r) ? r.code : 'internal' });
        }
        return itemError(r);
      }),
    };
  }

  abort(req: SignAbortRequest): SignAbortResponse {
    this.sweep();
    const a = this.live.get(req.session_id);
    let n = 0;
    if (a && (req.attempt_id === undefined || req.attempt_id === a.attemptId)) {
      this.drop(req.session_id);
      n = 1;
    }
    if (n) this.onEvent({ kind: 'aborted', count: n });
    return { session_id: req.session_id, aborted: n };
  }

  /** Wipe the live nonces of every attempt with a key (it was just frozen: src/signer/freeze.ts). */
  dropKey(keyId: string): number {
    let n = 0;
    for (const [sid, a] of [...this.live]) {
      if (a.keyId === keyId) {
        this.drop(sid);
        n++;
      }
    }
    if (n) this.onEvent({ kind: 'aborted', count: n });
    return n;
  }

  /** Wipe every live nonce (shutdown). */
  wipeAll(): void {
    for (const sid of [...this.live.keys()]) this.drop(sid);
  }

  // ---------------------------------------------------------------------------------------

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.onEvent({ kind: 'refused', code: isFloeError(e) ? e.code : 'internal' });
      throw e;
    }
  }

  private drop(sessionId: string): void {
    const a = this.live.get(sessionId);
    if (!a) return;
    wipe(a.nonces.hiding, a.nonces.binding);
    for (const p of a.parts ?? []) wipe(p.nonces.hiding, p.nonces.binding);
    this.live.delete(sessionId);
  }

  private activeKey(keyId: string): StoredKey {
    const key = this.store.getKey(keyId);
    if (!key) throw new FloeError('unknown_key', `no share of key ${keyId} on this signer`);
    if (key.status !== 'active')
      throw new FloeError('key_not_active', `key ${keyId} is not active on this signer`);
    return key;
  }

  private openInner(req: SignOpenRequest): SignOpenResponse {
    this.sweep();
    const key = this.activeKey(req.key_id);
    const pub = key.keyPackage.public;
    // The coordinator verifies shares against one generation's verifying shares: a share of
    // another generation would not combine (src/signer/refresh.ts).
    if ((req.generation ?? 0) !== (key.generation ?? 0)) {
      throw new FloeError(
        'generation_mismatch',
        `this signer holds generation ${key.generation ?? 0} of key ${req.key_id}, not ${req.generation ?? 0}`,
      );
    }
    let included: number[];
    try {
      included = sortedUniqueIds(req.included, 'included');
    } catch {
      throw new FloeError('invalid_request', 'included: identifiers must be unique');
    }
    if (included.some((id, i) => id !== req.included[i])) {
      throw new FloeError('invalid_request', 'included: identifiers must be sorted');
    }
    if (included.length < pub.threshold) {
      throw new FloeError('invalid_request', `included: at least ${pub.threshold} identifiers`);
    }
    for (const id of included) {
      if (!pub.verifyingShares.has(id))
        throw new FloeError('not_a_member', `identifier ${id} is not a member of the key`);
    }
    if (!included.includes(key.identifier)) {
      throw new FloeError('own_identifier_missing', 'this signer is not included in the attempt');
    }
    // The intent is resolved here, by this signer: the coordinator's digest must be the one it says.
    const resolved = this.resolve(key, req.intent);
    if (toHex(resolved.digest) !== req.message || toHex(resolved.intentHash) !== req.intent_hash) {
      throw new FloeError(
        'intent_mismatch',
        'message or intent_hash differs from what the intent resolves to',
      );
    }
    const message = resolved.digest;
    const expectedId = attemptIdHex({
      sessionId: req.session_id,
      digest: message,
      intentHash: resolved.intentHash,
      attempt: req.attempt,
      included,
    });
    if (expectedId !== req.attempt_id)
      throw new FloeError('attempt_id_mismatch', 'attempt_id does not match its fields');
    if (this.store.hasMarker(req.key_id, req.session_id, req.attempt_id)) {
      throw new FloeError('consumed_nonce_replay', 'this attempt has already been signed by this signer');
    }
    const fingerprint = toHex(
      taggedFieldsHash('floe/open-fingerprint/v1', [
        utf8(req.key_id),
        fromHex(req.attempt_id, 'attempt_id', 32),
      ]),
    );

    const existing = this.live.get(req.session_id);
    if (existing) {
      if (existing.attemptId === req.attempt_id) {
        if (existing.fingerprint !== fingerprint) {
          throw new FloeError('attempt_conflict', 'attempt already open with a different request');
        }
        return this.openResponse(existing);
      }
      if (req.attempt < existing.attempt) {
        throw new FloeError('attempt_superseded', `attempt ${req.attempt} is older than the live attempt`);
      }
      if (req.attempt === existing.attempt) {
        throw new FloeError('attempt_conflict', 'another attempt with this number is already open');
      }
    }
    const hw = this.highWater.get(req.session_id);
    if (hw && req.attempt < hw.attempt) {
      throw new FloeError('attempt_superseded', `attempt ${req.attempt} is older than one already opened`);
    }
    if (!existing && this.live.size >= this.maxLive) {
      throw new FloeError('attempt_cap_reached', `too many live attempts (${this.maxLive}); retry later`);
    }
    // DESIGN §13: the stewards' quorum, proven to this signer itself, before any nonce exists.
    requireApprovals({
      key,
      sessionId: req.session_id,
      intentHash: resolved.intentHash,
      subject: resolved.view,
      approvals: req.approvals,
      nowMs: this.clock.now(),
    });
    this.policy.check({
      keyId: req.key_id,
      sessionId: req.session_id,
      digest: req.message,
      intent: resolved.view,
      phase: 'open',
    });

    const { nonces, commitments } = commit(key.keyPackage, this.rng);
    // One nonce pair per digest; the first is the attempt's own (rule 1 for each of them).
    const parts = resolved.digests?.map(
      (d, i): LivePart => ({
        input: d.input,
        message: d.digest,
        key: d.key,
        ...(i === 0 ? { nonces, commitments } : commit(key.keyPackage, this.rng)),
      }),
    );
    if (existing) {
      this.drop(req.session_id);
      this.onEvent({ kind: 'replaced', sessionId: req.session_id, attempt: req.attempt });
    }
    const now = this.clock.now();
    const a: LiveAttempt = {
      keyId: req.key_id,
      sessionId: req.session_id,
      attempt: req.attempt,
      attemptId: req.attempt_id,
      fingerprint,
      included,
      message,
      intentHash: resolved.intentHash,
      tweak: resolved.tweak,
      intent: resolved.view,
      nonces,
      commitments,
      expiresAt: now + this.ttl,
      generation: key.generation ?? 0,
      ...(parts ? { parts } : {}),
    };
    this.live.set(req.session_id, a);
    if (req.attempt > 1) this.highWater.set(req.session_id, { attempt: req.attempt, until: now + this.ttl });
    this.onEvent({ kind: 'opened', sessionId: req.session_id, attempt: req.attempt });
    return this.openResponse(a);
  }

  private openResponse(a: LiveAttempt): SignOpenResponse {
    return {
      session_id: a.sessionId,
      attempt: a.attempt,
      attempt_id: a.attemptId,
      commitments: encodeCommitments(a.commitments),
      ...(a.parts
        ? { inputs: a.parts.map((p) => ({ input: p.input, commitments: encodeCommitments(p.commitments) })) }
        : {}),
    };
  }

  /**
   * The intent as this key signs it. A per-session tweak (a derived key) would be applied to
   * the key package here; no intent carries one yet, and one that does is refused.
   */
  private resolve(key: StoredKey, intent: SignOpenRequest['intent']): ResolvedIntent {
    const resolved = resolveIntent(intent, intentKeyOf(key.keyPackage.public));
    if (resolved.tweak)
      throw new FloeError('intent_not_supported', 'per-session key tweaks are not supported yet');
    return resolved;
  }

  /**
   * The key package that signs one digest: the stored one, or (a PSBT input of a derived
   * address) its derived Taproot package, which this signer computes itself from the intent.
   */
  private keyPackageFor(key: StoredKey, derivation: TaprootDerivation | null = null): KeyPackage {
    return derivation
      ? deriveTaprootKeyPackage(key.keyPackage, derivation.derivation, derivation.merkleRoot)
      : key.keyPackage;
  }

  private round2Inner(req: SignRound2Request): SignRound2Response {
    this.sweep();
    const [r] = this.release([this.checkRound2(req)]);
    if (r instanceof Error) throw r;
    return r!;
  }

  /** Rule 3: everything about a round-2 request, before anything is consumed. */
  private checkRound2(req: SignRound2Request): Round2Ready {
    const a = this.live.get(req.session_id);
    if (!a || a.attemptId !== req.attempt_id) {
      if (this.store.hasMarker(req.key_id, req.session_id, req.attempt_id)) {
        throw new FloeError('consumed_nonce_replay', 'this attempt has already been signed by this signer');
      }
      throw new FloeError(
        'attempt_unknown',
        'no live attempt with this id (expired, aborted, replaced or restarted)',
      );
    }
    if (a.keyId !== req.key_id) throw new FloeError('attempt_conflict', 'attempt was opened for another key');
    const key = this.activeKey(req.key_id);
    const pub = key.keyPackage.public;
    if ((key.generation ?? 0) !== a.generation) {
      throw new FloeError('generation_mismatch', 'the share was refreshed after this attempt opened');
    }

    // Verify everything before consuming (rule 3). Any refusal leaves the nonces live.
    const pkg = decodeSigningPackage(req.signing_package);
    const pkgs = a.parts ? this.partPackages(req, a.parts, pkg) : undefined;
    if (req.inputs && !a.parts) {
      throw new FloeError('invalid_package', 'inputs: this attempt signs a single digest');
    }
    const checks = a.parts
      ? a.parts.map((p, i) => ({ pkg: pkgs![i]!, message: p.message, mine: p.commitments }))
      : [{ pkg, message: a.message, mine: a.commitments }];
    for (const { pkg, message, mine } of checks) {
      if (!bytesEqual(pkg.message, message))
        throw new FloeError('message_mismatch', 'message differs from the one opened');
      if (pkg.commitments.length !== pub.threshold) {
        throw new FloeError(
          'wrong_commitment_count',
          `signing package needs exactly ${pub.threshold} commitments`,
        );
      }
      for (const c of pkg.commitments) {
        if (!a.included.includes(c.identifier)) {
          throw new FloeError(
            'identifier_not_included',
            `identifier ${c.identifier} is not in the attempt's included set`,
          );
        }
      }
      const own = pkg.commitments.find((c) => c.identifier === key.identifier);
      if (!own)
        throw new FloeError('own_identifier_missing', "signing package lacks this signer's commitment");
      if (!bytesEqual(own.hiding, mine.hiding) || !bytesEqual(own.binding, mine.binding)) {
        throw new FloeError('own_commitment_mismatch', "signing package alters this signer's commitment");
      }
      checkSigningPackage(pub, pkg);
    }
    // The stewards' quorum again (rule 3: gates are re-checked now), with this round's approvals.
    requireApprovals({
      key,
      sessionId: req.session_id,
      intentHash: a.intentHash,
      subject: a.intent,
      approvals: req.approvals,
      nowMs: this.clock.now(),
    });
    this.policy.check({
      keyId: req.key_id,
      sessionId: req.session_id,
      digest: toHex(a.message),
      intent: a.intent,
      phase: 'round2',
    });

    return { req, a, key, pkg, ...(pkgs ? { pkgs } : {}) };
  }

  /**
   * The packages of a multi-digest attempt: exactly one per part, in order, each naming its
   * part's input, the first equal to `signing_package`, all over the same signers (one attempt,
   * one set of members). Their contents are checked like any package by the caller.
   */
  private partPackages(req: SignRound2Request, parts: readonly LivePart[], first: SigningPackage) {
    const inputs = req.inputs;
    if (!inputs || inputs.length !== parts.length) {
      throw new FloeError(
        'invalid_package',
        `inputs: this attempt signs ${parts.length} digests, one signing package each`,
      );
    }
    const pkgs = inputs.map((x, i) => {
      if (x.input !== parts[i]!.input) {
        throw new FloeError('invalid_package', `inputs[${i}]: expected input ${parts[i]!.input}`);
      }
      return decodeSigningPackage(x.signing_package);
    });
    const ids = (p: SigningPackage) => p.commitments.map((c) => c.identifier).join(',');
    const same = (p: SigningPackage, q: SigningPackage) =>
      bytesEqual(p.message, q.message) &&
      p.commitments.length === q.commitments.length &&
      p.commitments.every(
        (c, j) =>
          c.identifier === q.commitments[j]!.identifier &&
          bytesEqual(c.hiding, q.commitments[j]!.hiding) &&
          bytesEqual(c.binding, q.commitments[j]!.binding),
      );
    if (!same(first, pkgs[0]!)) {
      throw new FloeError('invalid_package', 'signing_package differs from the package of inputs[0]');
    }
    if (pkgs.some((p) => ids(p) !== ids(first))) {
      throw new FloeError('invalid_package', "inputs: every digest's package must name the same signers");
    }
    return pkgs;
  }

  /**
   * Rule 4 for a set of checked requests: every consumption marker (with its audit entry) is
   * written durably in one transaction BEFORE any share is computed; then each share. A marker
   * already there is `consumed_nonce_replay` for that item; a failed write fails them all and
   * leaves every nonce live.
   */
  private release(items: readonly (Round2Ready | Error)[]): (SignRound2Response | Error)[] {
    const ready = items.filter((x): x is Round2Ready => !(x instanceof Error));
    let outcome: ('ok' | 'replay')[];
    try {
      const now = this.clock.now();
      outcome = this.store.putMarkers(
        ready.map(({ a, key }) => ({
          marker: {
            keyId: a.keyId,
            sessionId: a.sessionId,
            attemptId: a.attemptId,
            identifier: key.identifier,
            messageDigest: toHex(a.message),
            at: now,
          },
          audit: {
            at: now,
            kind: 'sign',
            keyId: a.keyId,
            sessionId: a.sessionId,
            attemptId: a.attemptId,
            messageDigest: toHex(a.message),
          },
        })),
      );
    } catch {
      const failed = new FloeError(
        'marker_write_failed',
        'could not record the consumption marker; nothing was signed',
      );
      return items.map((x) => (x instanceof Error ? x : failed));
    }
    const results = new Map<Round2Ready, SignRound2Response | Error>();
    for (const [i, r] of ready.entries()) {
      results.set(r, outcome[i] === 'ok' ? this.share(r) : this.replayed(r));
    }
    return items.map((x) => (x instanceof Error ? x : results.get(x)!));
  }

  private replayed({ a }: Round2Ready): Error {
    this.drop(a.sessionId);
    return new FloeError('consumed_nonce_replay', 'this attempt has already been signed by this signer');
  }

  /** The share of a consumed attempt (its marker is durable): the nonces are used once and wiped. */
  private share({ a, key, pkg, pkgs }: Round2Ready): SignRound2Response {
    // From here the attempt is consumed whatever happens: fail closed.
    this.live.delete(a.sessionId);
    if (a.parts) return this.shareParts(a, key, a.parts, pkgs!);
    let share: ReturnType<typeof signShare>;
    try {
      share = signShare(this.keyPackageFor(key), a.nonces, pkg);
    } finally {
      wipe(a.nonces.hiding, a.nonces.binding);
    }
    this.onEvent({ kind: 'signed', sessionId: a.sessionId, attemptId: a.attemptId });
    return {
      session_id: a.sessionId,
      attempt_id: a.attemptId,
      share: encodeSignatureShare(share),
      commitments: encodeCommitments(a.commitments),
      package_hash: toHex(
        signingPackageHash({
          sessionId: a.sessionId,
          attemptId: fromHex(a.attemptId, 'attempt id', 32),
          intentHash: a.intentHash,
          tweak: a.tweak,
          pkg,
        }),
      ),
    };
  }

  /**
   * Every share of a consumed multi-digest attempt: each digest under its own key package with
   * its own nonces, each share bound to its own package hash (its key tweak included). All or
   * nothing: a failure on any digest releases none, and every nonce is wiped either way.
   */
  private shareParts(
    a: LiveAttempt,
    key: StoredKey,
    parts: readonly LivePart[],
    pkgs: readonly SigningPackage[],
  ): SignRound2Response {
    const derived = new Map<string, KeyPackage>();
    let shares: ReturnType<typeof signShare>[];
    try {
      shares = parts.map((p, i) => {
        let kp = key.keyPackage;
        if (p.key) {
          const id = toHex(taprootDerivationBytes(p.key));
          kp = derived.get(id) ?? this.keyPackageFor(key, p.key);
          derived.set(id, kp);
        }
        return signShare(kp, p.nonces, pkgs[i]!);
      });
    } finally {
      for (const p of parts) wipe(p.nonces.hiding, p.nonces.binding);
      for (const kp of derived.values()) wipe(kp.signingShare);
    }
    this.onEvent({ kind: 'signed', sessionId: a.sessionId, attemptId: a.attemptId });
    const attemptId = fromHex(a.attemptId, 'attempt id', 32);
    const inputs = parts.map((p, i) => ({
      input: p.input,
      share: encodeSignatureShare(shares[i]!),
      commitments: encodeCommitments(p.commitments),
      package_hash: toHex(
        signingPackageHash({
          sessionId: a.sessionId,
          attemptId,
          intentHash: a.intentHash,
          tweak: p.key ? taprootDerivationBytes(p.key) : null,
          pkg: pkgs[i]!,
        }),
      ),
    }));
    const first = inputs[0]!;
    return {
      session_id: a.sessionId,
      attempt_id: a.attemptId,
      share: first.share,
      commitments: first.commitments,
      package_hash: first.package_hash,
      inputs,
    };
  }
}

/** A batch names each session once (two items of one session would race for its nonces). */
function distinctSessions(items: readonly { session_id: string }[]): void {
  if (new Set(items.map((i) => i.session_id)).size !== items.length) {
    throw new FloeError('invalid_request', 'a batch names a session twice');
  }
}

/** A refused batch item: its stable code and message (never a secret: FloeErrors carry none). */
function itemError(e: unknown): BatchItemError {
  return isFloeError(e)
    ? { error: { code: e.code, message: e.message.slice(0, 1024) } }
    : { error: { code: 'internal', message: 'internal error' } };
}
