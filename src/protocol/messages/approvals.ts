/**
 * Steward approvals on the wire between coordinator and signers (DESIGN §13): the policy a key
 * is created with (DKG round 1, import), the stewards' signed decisions that `sign.open` and
 * `sign.round2` carry, and `key.approval_policy`, a policy change the signers accept only with
 * a quorum of the current stewards. Strict: a signer refuses what it would not check itself.
 */
import { type Static, Type } from '@sinclair/typebox';
import {
  MAX_APPROVAL_EVENTS,
  MAX_DEVICES_PER_STEWARD,
  MAX_EXPIRES_IN_S,
  MAX_REQUIRED_KINDS,
  MAX_SATS,
  MAX_STEWARDS,
} from '../../approvals/index.js';
import { Hex, Id, Strict } from '../schema.js';

// Not dkg.ts's KeyId: dkg.ts imports this module.
const KeyId = Id('key id');

/** A steward's signed decision: a NIP-01 event, bounded (the signer verifies id and signature). */
export const ApprovalEventSchema = Strict(
  {
    id: Hex(32),
    pubkey: Hex(32),
    created_at: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    kind: Type.Integer({ minimum: 0, maximum: 65535 }),
    tags: Type.Array(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 8 }), { maxItems: 16 }),
    content: Type.String({ maxLength: 4096 }),
    sig: Hex(64),
  },
  "a steward's signed kind-30078 decision (src/approvals/proof.ts)",
);
export type ApprovalEventJson = Static<typeof ApprovalEventSchema>;

/** Decisions carried by a signing request or a policy change. */
export const ApprovalEvents = Type.Array(ApprovalEventSchema, { maxItems: MAX_APPROVAL_EVENTS });

/** A normalized policy (src/approvals/policy.ts normalizePolicy), as the coordinator sends it. */
export const ApprovalPolicySchema = Strict({
  stewards: Type.Array(Hex(32, 'steward (x-only)'), { minItems: 1, maxItems: MAX_STEWARDS }),
  threshold: Type.Integer({ minimum: 1, maximum: MAX_STEWARDS }),
  veto: Type.Boolean(),
  expires_in_s: Type.Integer({ minimum: 1, maximum: MAX_EXPIRES_IN_S }),
  required_for: Type.Union([
    Strict({
      nostr_kinds: Type.Optional(
        Type.Array(Type.Integer({ minimum: 0, maximum: 65535 }), { maxItems: MAX_REQUIRED_KINDS }),
      ),
      bitcoin_output_above_sat: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SATS })),
    }),
    Type.Null(),
  ]),
  devices: Type.Record(
    Type.String({ pattern: '^[0-9a-f]{64}$' }),
    Type.Array(Hex(33, 'P-256 device key, compressed SEC1'), {
      minItems: 1,
      maxItems: MAX_DEVICES_PER_STEWARD,
    }),
    { maxProperties: MAX_STEWARDS, additionalProperties: false },
  ),
  require_device: Type.Boolean(),
});
export type ApprovalPolicyJson = Static<typeof ApprovalPolicySchema>;

/**
 * Change a key's approval policy to `policy` (null: none) at `revision` (the signer's current
 * revision + 1), proven by `approvals` of a quorum of the current stewards (none needed when the
 * key has no policy). Idempotent: asking again for the state the signer holds answers the same.
 */
export const KeyApprovalPolicyRequest = Strict({
  key_id: KeyId,
  revision: Type.Integer({ minimum: 1, maximum: 0xffffffff }),
  policy: Type.Union([ApprovalPolicySchema, Type.Null()]),
  approvals: ApprovalEvents,
});
export const KeyApprovalPolicyResponse = Strict({
  key_id: KeyId,
  revision: Type.Integer({ minimum: 0 }),
  /** policyStateHash of the state this signer now holds. */
  policy_hash: Hex(32),
});
export type KeyApprovalPolicyRequest = Static<typeof KeyApprovalPolicyRequest>;
export type KeyApprovalPolicyResponse = Static<typeof KeyApprovalPolicyResponse>;
