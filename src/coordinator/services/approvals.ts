/**
 * The approval stage (DESIGN §13) as the session service sees it: whether a new session of a
 * key must wait for its stewards, and the two ways out of `awaiting_approval` (approved →
 * `pending`, rejected → `failed` with `approval_rejected`; the expiry job takes the third).
 * Stewards' policies and proofs plug in behind {@link ApprovalGate}; with none, a session
 * goes straight to signing, as before approvals existed.
 *
 * {@link StewardApprovals} is the gate of keys with a steward approval policy (issue 13): it
 * sends the requests (NIP-17 over the key's relays), records the stewards' signed decisions
 * (from the API or read from the relays) after checking each one, moves the session once they
 * decide, hands the approvals to the signers with every signing request (the signers check
 * them again themselves), and changes a key's policy only with its current stewards' quorum,
 * applied by every member.
 */
import {
  APPROVAL_CLOCK_SKEW_S,
  type ApprovalPolicy,
  type ApprovalSubject,
  checkDecision,
  decisionTemplate,
  intentSummary,
  NO_POLICY,
  normalizePolicy,
  type PolicyState,
  policyApplies,
  policyState,
  policyStateHashHex,
  proveQuorum,
  stewardKey,
  tally,
} from '../../approvals/index.js';
import { npubEncode } from '../../crypto/bech32.js';
import { decodePublicKeyPackage } from '../../crypto/encoding.js';
import { fromHex } from '../../crypto/hex.js';
import type { NodeIdentity } from '../../crypto/identity.js';
import { type IntentView, intentKeyOf, type ResolvedIntent, resolveIntent } from '../../domain/intent.js';
import type { KeyRecord, Principal, SessionRecord } from '../../domain/records.js';
import type { InitialSessionStatus } from '../../domain/session-state.js';
import type {
  ApprovalDecisionObject,
  ApprovalPolicyObject,
  ApprovalsQuery,
  KeyObject,
  Page,
  PendingApprovalObject,
  SessionObject,
  UpdateApprovalPolicyBody,
} from '../../protocol/api.js';
import { FloeError, isFloeError } from '../../protocol/errors.js';
import type { ApprovalEventJson } from '../../protocol/messages/approvals.js';
import { ApprovalRelays } from '../approval-relays.js';
import type { Backend } from '../backend.js';
import type { ApprovalRecord } from '../ports.js';
import type { SignerRegistry } from './registry.js';

export type InitialStatus = InitialSessionStatus;

export interface ApprovalGate {
  /** The status a new session of `key` signing `intent` starts in. */
  initialStatus(key: KeyRecord, intent: ResolvedIntent): InitialStatus;
  /** When a new session waiting for its stewards expires (Unix ms); default: the session TTL. */
  approvalDeadline?(key: KeyRecord, now: number): number;
  /** A session waiting for its stewards was just created: ask them. Never throws. */
  requested?(session: SessionRecord, key: KeyRecord, intent: ResolvedIntent): void;
  /** The stewards' decisions on these sessions, for the API objects (sessions without any: absent). */
  decisions?(
    tenantId: string,
    sessions: readonly SessionRecord[],
  ): Promise<Map<string, ApprovalDecisionObject[]>>;
}

/** No approval policy anywhere: every session starts `pending`. */
export const noApprovals: ApprovalGate = { initialStatus: () => 'pending' };

export type ApprovalOutcome = { decision: 'approved' } | { decision: 'rejected'; reason: string };

// ------------------------------------------------------------------------------ steward approvals

/** The policy state a key holds (normalized), or none. */
export function keyPolicyState(k: Pick<KeyRecord, 'approvalPolicy'>): PolicyState {
  const raw = k.approvalPolicy;
  return raw ? policyState(raw.revision, raw.policy) : NO_POLICY;
}

/** The API object of a key's policy (null: the key had one and it was removed; absent: never had one). */
export function approvalPolicyObject(k: KeyRecord): { approval_policy?: ApprovalPolicyObject | null } {
  if (!k.approvalPolicy) return {};
  const s = keyPolicyState(k);
  const p = s.policy;
  if (!p) return { approval_policy: null };
  return {
    approval_policy: {
      stewards: p.stewards,
      stewards_npub: p.stewards.map((x) => npubEncode(fromHex(x, 'steward', 32))),
      threshold: p.threshold,
      veto: p.veto,
      expires_in_s: p.expires_in_s,
      required_for: p.required_for,
      devices: p.devices,
      require_device: p.require_device,
      revision: s.revision,
      policy_hash: policyStateHashHex(k.id, s),
    },
  };
}

const decisionObject = (a: ApprovalRecord): ApprovalDecisionObject => ({
  steward: a.steward,
  decision: a.decision,
  at: a.recordedAt,
  event_id: a.eventId,
});

/** What the session service offers this service (bound after both exist). */
export interface SessionsPort {
  decideApproval(
    tenantId: string,
    sessionId: string,
    outcome: ApprovalOutcome,
  ): Promise<SessionRecord | null>;
  get(p: Principal, id: string): Promise<SessionObject>;
}
export interface KeysPort {
  get(p: Principal, id: string): Promise<KeyObject>;
}

export interface StewardApprovalsOptions {
  backend: Backend;
  registry: SignerRegistry;
  /** The coordinator's identity: the author of the requests to stewards. */
  identity: NodeIdentity;
  now: () => number;
  /** Relays for the requests of keys that have none of their own (config `approval_relays`). */
  relays: readonly string[];
  /** Per-signer deadline of a policy change. */
  roundTimeoutMs: number;
  log?: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

/** How long a key's policy read from the database serves the next sessions (another coordinator may change it). */
const KEY_CACHE_MS = 2000;

export class StewardApprovals implements ApprovalGate {
  private sessions?: SessionsPort;
  private keys?: KeysPort;
  private readonly transport: ApprovalRelays;
  private readonly keyCache = new Map<string, { at: number; key: KeyRecord }>();
  /** Requests in progress (so shutdown can wait for them). */
  private readonly sending = new Set<Promise<unknown>>();

  constructor(private readonly o: StewardApprovalsOptions) {
    this.transport = new ApprovalRelays({
      identity: o.identity,
      onDecision: async (tenantId, sessionId, event) => {
        await this.record(tenantId, sessionId, event, 'relay');
      },
      ...(o.log ? { log: o.log } : {}),
    });
  }

  bind(o: { sessions: SessionsPort; keys: KeysPort }): void {
    this.sessions = o.sessions;
    this.keys = o.keys;
  }

  // ---- the gate (src/coordinator/services/sessions.ts)

  initialStatus(key: KeyRecord, intent: ResolvedIntent): InitialStatus {
    const p = keyPolicyState(key).policy;
    return p && policyApplies(p, intent.view) ? 'awaiting_approval' : 'pending';
  }

  approvalDeadline(key: KeyRecord, now: number): number {
    const p = keyPolicyState(key).policy;
    return now + (p?.expires_in_s ?? 0) * 1000;
  }

  requested(session: SessionRecord, key: KeyRecord, intent: ResolvedIntent): void {
    const run = this.request(session, key, intent.view)
      .catch((e) =>
        this.o.log?.warn(
          { session: session.sessionId, err: e instanceof Error ? e.message : 'error' },
          'approval request failed',
        ),
      )
      .finally(() => this.sending.delete(run));
    this.sending.add(run);
  }

  async decisions(
    tenantId: string,
    sessions: readonly SessionRecord[],
  ): Promise<Map<string, ApprovalDecisionObject[]>> {
    const out = new Map<string, ApprovalDecisionObject[]>();
    const under: SessionRecord[] = [];
    for (const s of sessions) {
      if (s.status === 'awaiting_approval') {
        under.push(s);
        continue;
      }
      const k = await this.key(tenantId, s.keyId);
      if (k?.approvalPolicy) under.push(s);
    }
    if (under.length === 0) return out;
    for (const s of under) out.set(s.sessionId, []);
    for (const a of await this.o.backend.listApprovals(
      tenantId,
      under.map((s) => s.sessionId),
    )) {
      out.get(a.sessionId)?.push(decisionObject(a));
    }
    return out;
  }

  /**
   * The approving decisions the signers are shown with a signing request of `session` (they
   * check them themselves). Undefined for a key without a policy: nothing to read.
   */
  async approvalsFor(key: KeyRecord, session: SessionRecord): Promise<ApprovalEventJson[] | undefined> {
    if (!keyPolicyState(key).policy) return undefined;
    const rows = await this.o.backend.listApprovals(session.tenantId, [session.sessionId]);
    return rows.filter((a) => a.decision === 'approve').map((a) => a.event as ApprovalEventJson);
  }

  // ---- requests to the stewards

  /** The relays a key's requests go to: its own (migration 012), else the configured ones. */
  relaysFor(key: KeyRecord): string[] {
    return key.relays?.length ? [...key.relays] : [...this.o.relays];
  }

  private async request(session: SessionRecord, key: KeyRecord, view: IntentView): Promise<void> {
    const policy = keyPolicyState(key).policy;
    if (!policy) return;
    const relays = this.relaysFor(key);
    this.transport.watch(session.tenantId, session.sessionId, relays, session.expiresAt);
    const deliveries = await this.transport.notify(
      {
        keyId: key.id,
        keyLabel: key.label,
        sessionId: session.sessionId,
        intentHash: session.intentHash,
        subject: view,
        deadline: session.expiresAt,
        policy,
      },
      relays,
    );
    const delivered = new Set(deliveries.filter((d) => d.accepted).map((d) => d.steward));
    await this.o.backend.audit(session.tenantId, 'session.approval_requested', 'session', session.sessionId, {
      relays,
      stewards: policy.stewards.length,
      delivered: delivered.size,
      deadline: session.expiresAt,
      from: this.o.identity.publicKeyHex,
    });
    if (relays.length && delivered.size < policy.stewards.length) {
      this.o.log?.warn(
        { session: session.sessionId, delivered: delivered.size, stewards: policy.stewards.length },
        'approval request not accepted by any relay for some stewards',
      );
    }
  }

  /**
   * Listen again for the decisions on every session still waiting (a restarted coordinator).
   * Best effort: a failure is logged, and the API still takes decisions.
   */
  async start(): Promise<void> {
    try {
      const waiting = await this.o.backend.listAwaitingApproval(1000);
      for (const w of waiting) {
        const s = await this.o.backend.getSession(w.tenantId, w.sessionId);
        const k = s && (await this.key(w.tenantId, s.keyId, true));
        if (s && k) this.transport.watch(w.tenantId, w.sessionId, this.relaysFor(k), s.expiresAt);
      }
    } catch (e) {
      this.o.log?.warn(
        { err: e instanceof Error ? e.message : 'error' },
        'cannot listen for steward decisions',
      );
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.sending]);
    this.transport.close();
  }

  // ---- decisions

  /** POST /v1/sessions/:id/approvals: record a decision, answer with the session as it is then. */
  async submit(p: Principal, sessionId: string, event: unknown): Promise<SessionObject> {
    await this.record(p.tenantId, sessionId, event, 'api');
    return this.sessions!.get(p, sessionId);
  }

  /**
   * Check and record one steward's decision; once the stewards have decided, move the session
   * (approved → pending and signing; rejected → failed). A decision that does not count is
   * refused with its reason and changes nothing.
   */
  async record(tenantId: string, sessionId: string, event: unknown, via: 'api' | 'relay'): Promise<void> {
    const s = await this.o.backend.getSession(tenantId, sessionId);
    if (!s) throw new FloeError('session_not_found', `no session ${sessionId}`);
    if (s.status !== 'awaiting_approval') {
      this.transport.unwatch(sessionId);
      throw new FloeError(
        s.status === 'expired' ? 'session_expired' : 'session_conflict',
        `session ${sessionId} is ${s.status}: it does not wait for decisions`,
      );
    }
    const now = this.o.now();
    if (now > s.expiresAt) {
      throw new FloeError('session_expired', 'the deadline for decisions on this session has passed');
    }
    const key = await this.key(tenantId, s.keyId, true);
    const policy = key && keyPolicyState(key).policy;
    if (!policy) throw new FloeError('session_conflict', 'the key of this session has no approval policy');
    const c = checkDecision(event, {
      policy,
      subject: { kind: 'session', sessionId, intentHash: s.intentHash },
      window: {
        notBefore: Math.floor(s.createdAt / 1000) - APPROVAL_CLOCK_SKEW_S,
        notAfter: Math.floor(s.expiresAt / 1000),
      },
    });
    if (!c.ok) {
      throw new FloeError('approval_invalid', `the decision does not count: ${c.detail}`, {
        reason: c.reason,
      });
    }
    const d = c.value;
    const before = await this.o.backend.listApprovals(tenantId, [sessionId]);
    const dup = before.find((a) => a.steward === d.steward);
    if (dup) throw duplicate(dup.eventId === d.eventId);
    const recorded = await this.o.backend.recordApproval(
      tenantId,
      {
        sessionId,
        steward: d.steward,
        decision: d.decision,
        eventId: d.eventId,
        event: d.event,
        via,
        decidedAt: d.createdAt,
        recordedAt: now,
      },
      {
        kind: 'session.approval_recorded',
        data: { steward: d.steward, decision: d.decision, event_id: d.eventId, via },
      },
    );
    if (recorded === 'duplicate') throw duplicate(false);
    if (recorded === 'not_awaiting') {
      throw new FloeError('session_conflict', `session ${sessionId} no longer waits for decisions`);
    }
    await this.settle(tenantId, s, policy);
  }

  /** Move the session once its decisions settle it. */
  private async settle(tenantId: string, s: SessionRecord, policy: ApprovalPolicy): Promise<void> {
    const all = await this.o.backend.listApprovals(tenantId, [s.sessionId]);
    const t = tally(policy, all);
    if (t.outcome === 'waiting') return;
    this.transport.unwatch(s.sessionId);
    const reason =
      t.outcome === 'approved'
        ? ''
        : policy.veto
          ? `steward ${npubEncode(fromHex(t.rejecters[0]!, 'steward', 32))} rejected it (veto)`
          : `${t.rejecters.length} of ${policy.stewards.length} stewards rejected it: the quorum of ${policy.threshold} can no longer be reached`;
    await this.sessions!.decideApproval(
      tenantId,
      s.sessionId,
      t.outcome === 'approved' ? { decision: 'approved' } : { decision: 'rejected', reason },
    );
  }

  // ---- what waits for the stewards

  async list(p: Principal, q: ApprovalsQuery): Promise<Page<PendingApprovalObject>> {
    let steward: string | undefined;
    if (q.steward !== undefined) {
      try {
        steward = stewardKey(q.steward, 'steward');
      } catch (e) {
        throw new FloeError('invalid_request', isFloeError(e) ? e.message : 'steward: invalid');
      }
    }
    const page = await this.o.backend.listSessions(
      p.tenantId,
      q.limit ?? 50,
      q.cursor ?? null,
      'awaiting_approval',
    );
    const decisions = await this.decisions(p.tenantId, page.items);
    const items: PendingApprovalObject[] = [];
    for (const s of page.items) {
      const key = await this.key(p.tenantId, s.keyId);
      const policy = key && keyPolicyState(key).policy;
      if (!key || !policy) continue;
      const decided = decisions.get(s.sessionId) ?? [];
      const waitingFor = policy.stewards.filter((x) => !decided.some((d) => d.steward === x));
      if (steward && !waitingFor.includes(steward)) continue;
      const subject = { kind: 'session' as const, sessionId: s.sessionId, intentHash: s.intentHash };
      items.push({
        session_id: s.sessionId,
        key_id: s.keyId,
        key_label: key.label,
        intent_type: s.intentType,
        intent: s.intent,
        intent_hash: s.intentHash,
        message: s.messageHash,
        summary: summaryOf(s, key),
        deadline: s.expiresAt,
        threshold: policy.threshold,
        veto: policy.veto,
        require_device: policy.require_device,
        stewards: policy.stewards,
        approvals: decided,
        waiting_for: waitingFor,
        tags: decisionTemplate(subject, 'approve', { createdAt: 0 }).tags,
      });
    }
    return { items, next_cursor: page.nextCursor };
  }

  // ---- policy changes

  /**
   * PUT /v1/keys/:id/approval-policy: the next revision of the key's policy, proven by a quorum
   * of its current stewards (none needed for a key without a policy), applied by every member
   * (each checks the proof itself) before the coordinator records it. Refused without a quorum:
   * the refusal names the state hashes and tags the stewards must sign.
   */
  async changePolicy(p: Principal, keyId: string, body: UpdateApprovalPolicyBody): Promise<KeyObject> {
    const key = await this.o.backend.getKey(p.tenantId, keyId);
    if (!key) throw new FloeError('key_not_found', `no key ${keyId}`);
    if (key.status !== 'active') throw new FloeError('key_not_active', `key ${keyId} is ${key.status}`);
    const current = keyPolicyState(key);
    const next: PolicyState = {
      revision: current.revision + 1,
      policy: body.approval_policy === null ? null : normalizePolicy(body.approval_policy),
    };
    const from = policyStateHashHex(keyId, current);
    const to = policyStateHashHex(keyId, next);
    const approvals = body.approvals ?? [];
    let approvers: string[] = [];
    if (current.policy) {
      const nowS = Math.floor(this.o.now() / 1000);
      const subject = { kind: 'policy' as const, keyId, from, to };
      const q = proveQuorum(approvals, {
        policy: current.policy,
        subject,
        window: { notBefore: nowS - current.policy.expires_in_s, notAfter: nowS + APPROVAL_CLOCK_SKEW_S },
      });
      if (!q.ok) {
        throw new FloeError(
          'approval_missing',
          `changing the approval policy needs its stewards: ${q.detail}`,
          {
            hint: `a quorum of the current stewards signs kind-30078 events with these tags (decision "approve")`,
            revision: next.revision,
            from,
            policy_hash: to,
            tags: decisionTemplate(subject, 'approve', { createdAt: 0 }).tags,
            approvers: q.approvers.length,
            threshold: current.policy.threshold,
            ...(q.refused.length ? { refused: q.refused.slice(0, 16) } : {}),
          },
        );
      }
      approvers = q.approvers;
    }
    const members = await this.o.registry.members(key);
    if (members.length !== key.members.length) {
      throw new FloeError(
        'no_quorum',
        'every member of the key must apply a policy change; some are not registered',
      );
    }
    const results = await Promise.allSettled(
      members.map((m) =>
        this.o.registry
          .clientFor(m.signer)
          .call(
            'keyApprovalPolicy',
            { key_id: keyId, revision: next.revision, policy: next.policy, approvals },
            this.o.roundTimeoutMs,
          ),
      ),
    );
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' || r.value.policy_hash !== to ? [{ member: members[i]!.identifier, r }] : [],
    );
    if (failed.length) {
      const first = failed[0]!.r;
      const why = first.status === 'rejected' && isFloeError(first.reason) ? first.reason : undefined;
      throw new FloeError(
        why?.code ?? 'signer_fault',
        `member ${failed[0]!.member} did not apply the policy change${why ? `: ${why.message}` : ''}; nothing was recorded, retry to finish it`,
        { members: failed.map((f) => f.member) },
      );
    }
    await this.o.backend.setKeyApprovalPolicy(p.tenantId, keyId, next, {
      actor: p.tokenId,
      kind: 'key.approval_policy_changed',
      data: { revision: next.revision, from, policy_hash: to, approvers },
    });
    this.keyCache.delete(`${p.tenantId}/${keyId}`);
    return this.keys!.get(p, keyId);
  }

  private async key(tenantId: string, keyId: string, fresh = false): Promise<KeyRecord | undefined> {
    const id = `${tenantId}/${keyId}`;
    const c = this.keyCache.get(id);
    if (!fresh && c && this.o.now() - c.at < KEY_CACHE_MS) return c.key;
    const k = await this.o.backend.getKey(tenantId, keyId);
    if (this.keyCache.size > 10_000) this.keyCache.clear();
    if (k) this.keyCache.set(id, { at: this.o.now(), key: k });
    return k;
  }
}

function duplicate(same: boolean): FloeError {
  return new FloeError(
    'approval_duplicate',
    same
      ? 'this decision was already recorded'
      : 'this steward already decided on this session: one decision counts per steward',
    { reason: same ? 'replayed' : 'already_decided' },
  );
}

/** The summary of what a session signs, from the intent as the key resolves it. */
function summaryOf(s: SessionRecord, key: KeyRecord): string {
  try {
    const pub = decodePublicKeyPackage(key.publicKeyPackage);
    return intentSummary(resolveIntent(s.intent, intentKeyOf(pub)).view as ApprovalSubject);
  } catch {
    return `a ${s.intentType} intent, digest ${s.messageHash}`;
  }
}
