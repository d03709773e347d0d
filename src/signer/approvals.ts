/**
 * The signer's own check of the stewards (DESIGN §13): a key whose members certified an
 * approval policy releases nothing for an intent the policy covers unless the request carries
 * a quorum of the stewards' signed decisions, for this session and this intent as this signer
 * resolved it, recent enough. The coordinator's word counts for nothing here: a coordinator
 * that skips or forges approvals gets `approval_missing`.
 *
 * Policy changes are checked the same way: the signer applies a new policy only at its next
 * revision and only with a quorum of its current stewards over exactly that change.
 */
import {
  APPROVAL_CLOCK_SKEW_S,
  type ApprovalSubject,
  NO_POLICY,
  type PolicyState,
  policyApplies,
  policyState,
  policyStateHashHex,
  proveQuorum,
  signerWindow,
} from '../approvals/index.js';
import { toHex } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';
import type { KeyApprovalPolicyRequest, KeyApprovalPolicyResponse } from '../protocol/messages/approvals.js';
import type { Clock, SignerStore, StoredKey } from './ports.js';

/**
 * Refuse (`approval_missing`) unless `approvals` prove the quorum of the key's policy for this
 * session and intent. A key without a policy, or an intent its policy does not cover, passes.
 */
export function requireApprovals(o: {
  key: StoredKey;
  sessionId: string;
  intentHash: Uint8Array;
  subject: ApprovalSubject;
  approvals: readonly unknown[] | undefined;
  nowMs: number;
}): void {
  const policy = o.key.approvalPolicy?.policy;
  if (!policy || !policyApplies(policy, o.subject)) return;
  const q = proveQuorum(o.approvals ?? [], {
    policy,
    subject: { kind: 'session', sessionId: o.sessionId, intentHash: toHex(o.intentHash) },
    window: signerWindow(policy, Math.floor(o.nowMs / 1000)),
  });
  if (!q.ok) {
    throw new FloeError(
      'approval_missing',
      `key ${o.key.keyId} signs this intent only with its stewards' approval: ${q.detail}`,
      {
        approvers: q.approvers.length,
        threshold: policy.threshold,
        ...(q.refused.length ? { refused: q.refused.slice(0, 16) } : {}),
      },
    );
  }
}

/**
 * Apply `key.approval_policy`: the next revision only, with a quorum of the current stewards
 * (none needed when the key has no policy: a policy only ever restricts). Asking again for
 * the state already held answers the same (a coordinator retrying after a partial failure).
 */
export function changeApprovalPolicy(
  o: { store: SignerStore; clock: Clock },
  req: KeyApprovalPolicyRequest,
): KeyApprovalPolicyResponse {
  const key = o.store.getKey(req.key_id);
  if (!key) throw new FloeError('unknown_key', `no share of key ${req.key_id} on this signer`);
  key.keyPackage.signingShare.fill(0);
  if (key.status !== 'active') throw new FloeError('key_not_active', `key ${req.key_id} is not active`);
  const current: PolicyState = key.approvalPolicy ?? NO_POLICY;
  const next = policyState(req.revision, req.policy);
  const nextHash = policyStateHashHex(req.key_id, next);
  if (current.revision === next.revision && policyStateHashHex(req.key_id, current) === nextHash) {
    return { key_id: req.key_id, revision: next.revision, policy_hash: nextHash };
  }
  if (next.revision !== current.revision + 1) {
    throw new FloeError(
      'approval_policy_conflict',
      `this signer holds revision ${current.revision} of the policy; only ${current.revision + 1} can follow`,
    );
  }
  if (current.policy) {
    const nowS = Math.floor(o.clock.now() / 1000);
    const q = proveQuorum(req.approvals, {
      policy: current.policy,
      subject: {
        kind: 'policy',
        keyId: req.key_id,
        from: policyStateHashHex(req.key_id, current),
        to: nextHash,
      },
      window: { notBefore: nowS - current.policy.expires_in_s, notAfter: nowS + APPROVAL_CLOCK_SKEW_S },
    });
    if (!q.ok) {
      throw new FloeError(
        'approval_missing',
        `changing the approval policy of key ${req.key_id} needs its stewards: ${q.detail}`,
        { approvers: q.approvers.length, threshold: current.policy.threshold },
      );
    }
  }
  o.store.setApprovalPolicy(req.key_id, next);
  o.store.appendAudit({
    at: o.clock.now(),
    kind: 'approval_policy_changed',
    keyId: req.key_id,
    detail: `revision ${next.revision} ${nextHash}`,
  });
  return { key_id: req.key_id, revision: next.revision, policy_hash: nextHash };
}
