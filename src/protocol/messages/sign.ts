/** Signing messages, coordinator → signer (DESIGN §4, §7). */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Hex, Id, Identifier, Strict } from '../schema.js';
import { ApprovalEvents } from './approvals.js';
import { KeyId } from './dkg.js';
import { CommitmentsSchema, SignatureShareSchema, SigningPackageSchema } from './frost.js';
import { IntentSchema } from './intent.js';
import { Generation } from './refresh.js';

export const SessionId = Id('signing session id');
export const AttemptNumber = Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'attempt number' });

/**
 * Multi-digest attempts (a PSBT intent: one digest per input of the key, DESIGN §12). The open
 * answer, the round-2 request and its answer each carry `inputs`, one entry per digest in the
 * order the intent resolves them (input order), each naming its PSBT input; the single-digest
 * members (`commitments`, `signing_package`, `share`, `package_hash`) then repeat the first
 * entry's, so every rule about them holds as before. Single-digest attempts have no `inputs`.
 */
export const MAX_ATTEMPT_DIGESTS = 256;
const InputIndex = Type.Integer({ minimum: 0, maximum: 65_535, description: 'PSBT input index' });
const inputsOf = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) =>
  Type.Optional(
    Type.Array(Strict({ input: InputIndex, ...props }), {
      minItems: 1,
      maxItems: MAX_ATTEMPT_DIGESTS,
      description,
    }),
  );

/** Round 1: open an attempt and commit to fresh nonces. Idempotent per request fingerprint. */
export const SignOpenRequest = Strict({
  key_id: KeyId,
  session_id: SessionId,
  attempt: AttemptNumber,
  /** Identifiers included in this attempt (sorted, unique, at least the threshold). */
  included: Type.Array(Identifier, { minItems: 1, maxItems: 255 }),
  /** What is to be signed (DESIGN §12): the signer resolves it itself. */
  intent: IntentSchema,
  /** The 32-byte digest the coordinator resolved from the intent; the signer refuses another. */
  message: Hex(32),
  /** The intent hash the coordinator resolved; the signer refuses another. */
  intent_hash: Hex(32),
  /** attempt_id derived from the fields above (DESIGN §4); the signer recomputes it. */
  attempt_id: Hex(32),
  /**
   * The stewards' signed decisions (DESIGN §13): a key under an approval policy signs only when
   * they prove its quorum for this session and intent, checked by the signer itself.
   */
  approvals: Type.Optional(ApprovalEvents),
  /**
   * The share generation the coordinator verifies shares against (absent: 0, the shares the key
   * was created with). A signer holding another generation refuses (`generation_mismatch`): no
   * signature ever mixes shares of two generations (src/signer/refresh.ts).
   */
  generation: Type.Optional(Generation),
});
export const SignOpenResponse = Strict({
  session_id: SessionId,
  attempt: AttemptNumber,
  attempt_id: Hex(32),
  commitments: CommitmentsSchema,
  inputs: inputsOf(
    { commitments: CommitmentsSchema },
    "multi-digest attempts: this signer's commitments for each digest (one nonce pair each)",
  ),
});

/** Round 2: sign with the nonces of an open attempt. */
export const SignRound2Request = Strict({
  key_id: KeyId,
  session_id: SessionId,
  attempt_id: Hex(32),
  signing_package: SigningPackageSchema,
  inputs: inputsOf(
    { signing_package: SigningPackageSchema },
    'multi-digest attempts: one package per digest',
  ),
  /** The stewards' decisions again: the quorum is checked again before a share leaves (DESIGN §4.3). */
  approvals: Type.Optional(ApprovalEvents),
});
export const SignRound2Response = Strict({
  session_id: SessionId,
  attempt_id: Hex(32),
  share: SignatureShareSchema,
  /** This signer's own commitments the share was computed with (those it issued at open). */
  commitments: CommitmentsSchema,
  /**
   * signingPackageHash (src/protocol/transcript.ts) of exactly what this share was computed
   * over: the signed response binds the share to it, so blame can be checked by anyone.
   */
  package_hash: Hex(32),
  inputs: inputsOf(
    { share: SignatureShareSchema, commitments: CommitmentsSchema, package_hash: Hex(32) },
    'multi-digest attempts: the share of each digest, bound to its own package (and key tweak)',
  ),
});

/**
 * Batches (the batch API): one request carries many sessions' attempts of one key, each with
 * its own nonces, its own checks and (at round 2) its own durable marker; the markers of a
 * round-2 batch are written in one transaction before any share leaves. Each item answers
 * for itself: its response, or its refusal.
 */
export const MAX_BATCH_ITEMS = 256;
export const BatchItemError = Strict({
  error: Strict({ code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1024 }) }),
});
const batchOf = <T extends TSchema>(item: T) =>
  Strict({ items: Type.Array(item, { minItems: 1, maxItems: MAX_BATCH_ITEMS }) });
export const SignOpenBatchRequest = batchOf(SignOpenRequest);
export const SignOpenBatchResponse = batchOf(Type.Union([SignOpenResponse, BatchItemError]));
export const SignRound2BatchRequest = batchOf(SignRound2Request);
export const SignRound2BatchResponse = batchOf(Type.Union([SignRound2Response, BatchItemError]));

export const SignAbortRequest = Strict({ session_id: SessionId, attempt_id: Type.Optional(Hex(32)) });
export const SignAbortResponse = Strict({ session_id: SessionId, aborted: Type.Integer({ minimum: 0 }) });

export type SignOpenRequest = Static<typeof SignOpenRequest>;
export type SignOpenResponse = Static<typeof SignOpenResponse>;
export type SignRound2Request = Static<typeof SignRound2Request>;
export type SignRound2Response = Static<typeof SignRound2Response>;
export type SignAbortRequest = Static<typeof SignAbortRequest>;
export type SignAbortResponse = Static<typeof SignAbortResponse>;
export type BatchItemError = Static<typeof BatchItemError>;
export type SignOpenBatchRequest = Static<typeof SignOpenBatchRequest>;
export type SignOpenBatchResponse = Static<typeof SignOpenBatchResponse>;
export type SignRound2BatchRequest = Static<typeof SignRound2BatchRequest>;
export type SignRound2BatchResponse = Static<typeof SignRound2BatchResponse>;
