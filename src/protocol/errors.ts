/**
 * Stable error codes shared by the coordinator and the signers, their HTTP status, and the
 * RFC 9457 problem+json shape. A code never changes meaning once published; messages
 * (`detail`) describe the failed rule and never carry secret values.
 */
import { isCryptoError } from '../crypto/errors.js';

export const ERROR_STATUS = {
  // generic
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  // signed envelopes
  envelope_malformed: 400,
  envelope_bad_signature: 401,
  envelope_unknown_sender: 403,
  envelope_wrong_recipient: 403,
  envelope_wrong_type: 400,
  envelope_stale: 401,
  envelope_future: 401,
  envelope_replay: 409,
  envelope_body_mismatch: 400,
  // crypto input
  invalid_encoding: 400,
  invalid_package: 400,
  invalid_share: 422,
  // signer: keys and DKG
  unknown_key: 404,
  key_exists: 409,
  key_not_active: 409,
  ceremony_unknown: 404,
  ceremony_conflict: 409,
  dkg_failed: 422,
  dkg_complaint: 422,
  certification_mismatch: 422,
  import_failed: 422,
  not_on_roster: 403,
  signer_unverified: 422,
  // signer: signing attempts (DESIGN §4)
  attempt_conflict: 409,
  attempt_superseded: 409,
  attempt_unknown: 404,
  attempt_expired: 410,
  attempt_cap_reached: 503,
  attempt_id_mismatch: 400,
  message_mismatch: 422,
  wrong_commitment_count: 422,
  identifier_not_included: 422,
  own_identifier_missing: 422,
  own_commitment_mismatch: 422,
  not_a_member: 422,
  policy_refused: 403,
  // intents (DESIGN §12)
  intent_not_supported: 422,
  intent_mismatch: 422,
  // Bitcoin (DESIGN §14; src/bitcoin/errors.ts BITCOIN_REASONS)
  network_unknown: 400,
  address_invalid: 400,
  address_wrong_network: 400,
  address_unsupported: 422,
  xpub_invalid: 400,
  derivation_path_invalid: 400,
  descriptor_checksum_invalid: 400,
  psbt_invalid: 400,
  psbt_missing_utxo: 400,
  psbt_input_unsupported: 422,
  psbt_sighash_unsupported: 422,
  psbt_signature_invalid: 422,
  psbt_no_owned_inputs: 422,
  psbt_too_many_inputs: 422,
  policy_config_invalid: 400,
  // Nostr events (src/nostr/event.ts EVENT_REJECTIONS: one code per rule)
  event_not_object: 400,
  event_field_unknown: 400,
  event_pubkey_invalid: 400,
  event_created_at_invalid: 400,
  event_kind_invalid: 400,
  event_tags_invalid: 400,
  event_tags_too_large: 400,
  event_content_invalid: 400,
  event_content_too_large: 400,
  event_too_large: 400,
  event_id_malformed: 400,
  event_sig_malformed: 400,
  event_id_mismatch: 400,
  event_sig_invalid: 400,
  // approvals (DESIGN §13)
  approval_rejected: 422,
  approval_missing: 403,
  // steward approvals (issue 13): a bad policy, a decision that does not count, a steward
  // deciding twice, a policy change a signer cannot apply at its revision
  approval_policy_invalid: 400,
  approval_invalid: 422,
  approval_duplicate: 409,
  approval_policy_conflict: 409,
  consumed_nonce_replay: 409,
  marker_write_failed: 503,
  // coordinator
  session_not_found: 404,
  session_conflict: 409,
  session_failed: 422,
  session_expired: 410,
  no_quorum: 503,
  signer_unreachable: 502,
  signer_fault: 502,
  response_unverified: 502,
  nonce_reuse_detected: 409,
  idempotency_conflict: 409,
  // publishing to Nostr relays (DESIGN §14)
  relay_url_invalid: 400,
  publish_no_relays: 400,
  publish_not_nostr_event: 400,
  // threshold ECDH, NIP-04 / NIP-44 (DESIGN §14)
  invalid_pubkey: 400,
  ecdh_failed: 502,
  // NIP-46 bunkers (issue 12, src/coordinator/bunkers/)
  bunker_not_found: 404,
  bunker_disabled: 409,
  bunker_elsewhere: 409,
  // key creation: the threshold rules of src/domain/threshold-rules.ts, when strict
  threshold_unsafe: 422,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_STATUS, x);
}

/** An error with a stable code, safe to show to the caller. */
export class FloeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra, non-secret members for the problem document (for example `culprits`). */
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}) {
    super(detail);
    this.name = 'FloeError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.extra = extra;
  }
}

export function isFloeError(e: unknown): e is FloeError {
  return e instanceof FloeError;
}

/** RFC 9457 problem details with Floe's stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  return {
    ...extra,
    type: `https://floe.dev/errors/${code}`,
    title: code.replace(/_/g, ' '),
    status: ERROR_STATUS[code],
    code,
    detail,
  };
}

/**
 * Map any thrown value to a problem document. Unknown errors become `internal` with a
 * generic detail: their message may carry anything, so it is not shown.
 */
export function toProblem(e: unknown): Problem {
  if (isFloeError(e)) return problemOf(e.code, e.message, e.extra);
  if (isCryptoError(e)) {
    const code: ErrorCode =
      e.code === 'invalid_share' || e.code === 'dkg_failed'
        ? e.code
        : e.code === 'aggregate_failed'
          ? 'signer_fault'
          : e.code === 'invalid_package' || e.code === 'invalid_signature'
            ? 'invalid_package'
            : 'invalid_encoding';
    return problemOf(code, e.message, e.culprits.length ? { culprits: e.culprits } : {});
  }
  return problemOf('internal', 'internal error');
}

/** Rebuild a FloeError from a problem document received from a peer. */
export function fromProblem(p: unknown, fallbackStatus = 500): FloeError {
  if (typeof p === 'object' && p !== null) {
    const o = p as Record<string, unknown>;
    if (isErrorCode(o.code)) {
      const { type: _t, title: _ti, status: _s, code, detail, ...extra } = o;
      return new FloeError(code as ErrorCode, typeof detail === 'string' ? detail : String(code), extra);
    }
  }
  return new FloeError(
    fallbackStatus >= 500 ? 'internal' : 'invalid_request',
    `peer answered ${fallbackStatus}`,
  );
}
