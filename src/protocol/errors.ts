/**
 * Stable error codes shared by the coordinator and the signers (one table: status, meaning,
 * what to do), and the RFC 9457 problem+json shape. A code never changes meaning once
 * published; messages (`detail`) describe the failed rule and never carry secret values.
 */
import { isCryptoError } from '../crypto/errors.js';

/** One row of the error catalogue: the HTTP status, what the code means, what to do about it. */
export interface ErrorEntry {
  status: number;
  /** What went wrong, in a sentence. */
  meaning: string;
  /** What to do about it: the default `hint` of the problem document. */
  hint: string;
}

const e = (status: number, meaning: string, hint: string): ErrorEntry => ({ status, meaning, hint });

/**
 * THE error catalogue: every code Floe answers with, its HTTP status, meaning and what to do.
 * docs/errors.md is generated from it (`npm run docs:errors`); test/coordinator/errors-catalogue
 * fails when the two differ. Add a code here, with its words, before throwing it.
 */
export const ERROR_TABLE = {
  // generic
  invalid_request: e(
    400,
    'The request does not match the API contract: a field is missing, unknown, or not of the expected form.',
    'Read `detail` and `hint`: they name the field and say what is expected. The contract is at GET /openapi.json (browse it at /docs).',
  ),
  unauthorized: e(
    401,
    'No valid credential: the bearer token is missing, malformed, expired or revoked.',
    'Send `Authorization: Bearer <access token>` (exchange an API token at POST /v1/auth/token); `floe` reads .floe/admin.token or FLOE_TOKEN.',
  ),
  forbidden: e(
    403,
    'The credential is valid but its role or tenant may not do this.',
    'Use a token with the role the operation needs (viewer < requester < operator < admin), or of the system tenant for tenants and signers.',
  ),
  not_found: e(
    404,
    'No such endpoint: the URL matches no route (unknown resources have their own codes, such as key_not_found).',
    'Check the path against GET /openapi.json; every path starts with /v1/ except /healthz, /metrics, /openapi.json and /docs.',
  ),
  method_not_allowed: e(
    405,
    'The path exists but not with this HTTP method.',
    'Use one of the methods in the `Allow` header (also listed in `allow`).',
  ),
  conflict: e(
    409,
    'The request conflicts with the current state (an id already taken, a request already decided).',
    'Read the current state (GET the resource) and retry with a new id or a request that fits it.',
  ),
  payload_too_large: e(
    413,
    'The request body, or a value in it, is larger than the limit.',
    'Send less: the limit is in `detail`; large inputs (PSBTs, events) have their own limits in the contract.',
  ),
  uri_too_long: e(414, 'A path parameter is too long.', 'Ids are at most 64 characters.'),
  unsupported_media_type: e(
    415,
    'The request body is not JSON: Floe reads `application/json` bodies only.',
    'Send the body as JSON with `Content-Type: application/json`.',
  ),
  rate_limited: e(
    429,
    'Too many requests for this token, address or tenant in the current window.',
    'Wait for the number of seconds in the `Retry-After` header, then retry; limits are in docs/configuration.md.',
  ),
  internal: e(
    500,
    'An unexpected error in Floe; the details are in the server log, not in the answer.',
    'Retry once; if it persists, look at the coordinator log at the time of the request and report it.',
  ),
  unavailable: e(
    503,
    'A part this request needs is not running or not configured here.',
    'Read `detail` for what is missing (for example bunkers without bunker.key), configure it or retry later.',
  ),
  // signed envelopes
  envelope_malformed: e(
    400,
    'A signed message between coordinator and signer is not a well-formed envelope.',
    'Coordinator and signers must run the same Floe version; check both are up to date.',
  ),
  envelope_bad_signature: e(
    401,
    'The signature of a signed envelope does not verify.',
    'Check the identity keys configured on each side (the signer allowlist, the registered signer identity).',
  ),
  envelope_unknown_sender: e(
    403,
    'A signed envelope comes from an identity the receiver does not know.',
    "Add the coordinator's identity to the signer's allowlist (GET /healthz shows it), or register the signer.",
  ),
  envelope_wrong_recipient: e(
    403,
    'A signed envelope is addressed to another identity.',
    'The signer URL registered for this signer reaches a different signer: fix its URL or identity.',
  ),
  envelope_wrong_type: e(
    400,
    'A signed envelope carries a message type the endpoint does not take.',
    'Coordinator and signers must run the same Floe version.',
  ),
  envelope_stale: e(
    401,
    'A signed envelope is older than the allowed clock skew.',
    'Synchronize the clocks of coordinator and signers (NTP).',
  ),
  envelope_future: e(
    401,
    'A signed envelope is dated in the future beyond the allowed clock skew.',
    'Synchronize the clocks of coordinator and signers (NTP).',
  ),
  envelope_replay: e(
    409,
    'A signed envelope was already received once.',
    'Nothing to do for a single occurrence; repeated replays mean something is resending traffic.',
  ),
  envelope_body_mismatch: e(
    400,
    "A signed envelope's body differs from what its signature covers.",
    'Something between coordinator and signer alters requests: check proxies on the path.',
  ),
  // crypto input
  invalid_encoding: e(
    400,
    'A value is not in its expected encoding (hex, base64, point or scalar form).',
    'Read `detail` for the field; hex is lower or upper case without 0x, base64 is standard base64.',
  ),
  invalid_package: e(
    400,
    'A FROST package (commitment, share, signature share) is malformed or does not verify.',
    'When a signer sent it, it is blamed in `culprits`; otherwise check the client builds packages as the protocol says.',
  ),
  invalid_share: e(
    422,
    'A secret share does not match its commitments.',
    'The member in `culprits` sent a bad share; the ceremony must run again without it.',
  ),
  // signer: keys and DKG
  unknown_key: e(
    404,
    'The signer holds no share of this key.',
    "The key was not created on this signer, or its data directory was replaced: check the key's members.",
  ),
  key_exists: e(
    409,
    'A key with this id exists already.',
    'Choose another key id (imports: the client chooses it).',
  ),
  key_not_active: e(
    409,
    'The key is not active (still pending, failed, or disabled), so it cannot be used.',
    'GET /v1/keys/<id> shows its status; wait for a pending key, or use an active one.',
  ),
  ceremony_unknown: e(
    404,
    'The signer knows no ceremony with this id.',
    'The ceremony expired or the signer restarted; create the key again.',
  ),
  ceremony_conflict: e(
    409,
    'A ceremony with this id exists with other parameters, or a package was altered.',
    'Create the key again; repeated conflicts point at the coordinator or the network.',
  ),
  refresh_failed: e(
    422,
    'The share refresh failed; every member keeps its current share (nothing was committed).',
    'GET /v1/keys/<id>/refreshes/<refresh_id> shows why; bring the members back and refresh again.',
  ),
  repair_failed: e(
    422,
    "The share repair failed; nothing changed on any member (the new signer's share, if any, stays unusable).",
    'GET /v1/keys/<id>/repairs/<repair_id> shows why and `culprits` the helpers at fault; run the repair again with other helpers.',
  ),
  repair_not_found: e(
    404,
    'The key has no share repair with this id.',
    'GET /v1/keys/<id>/repairs lists the repairs of a key.',
  ),
  member_revoked: e(
    409,
    'A member named is an identity a repair revoked for this key.',
    'A replaced signer never rejoins the key it was replaced in; enroll a new signer (new identity) instead.',
  ),
  refresh_not_found: e(
    404,
    'The key has no share refresh with this id.',
    'GET /v1/keys/<id>/refreshes lists the refreshes of a key.',
  ),
  refresh_pending: e(
    409,
    'A share refresh of this key is still pending or committing.',
    'Wait for it (GET /v1/keys/<id>/refreshes); a failed one is aborted before the next starts.',
  ),
  generation_mismatch: e(
    409,
    "The signer holds another generation of the key's shares than the request names.",
    'A refresh is still being committed on this signer; the coordinator retries it, or signs with the members on the new generation.',
  ),
  dkg_failed: e(
    422,
    'The distributed key generation failed.',
    '`culprits` names the members at fault; exclude them (--signers) and create the key again.',
  ),
  dkg_complaint: e(
    422,
    'A member complained about another during the DKG.',
    '`culprits` names the accused; exclude it and create the key again.',
  ),
  certification_mismatch: e(
    422,
    "The members' certificates of a new key do not agree.",
    'Some signer computed a different key: check every signer runs the same version, then create the key again.',
  ),
  import_failed: e(
    422,
    'A dealer import was refused by a signer.',
    'Read `detail`; each share must be sealed to its signer and bound to the key id.',
  ),
  not_on_roster: e(
    403,
    'This signer is not on the roster of the ceremony.',
    'Create the key with signers registered in the coordinator (GET /v1/signers).',
  ),
  signer_unverified: e(
    422,
    "A signer's answer at registration did not prove the identity given.",
    'Give the identity printed by `floe signer --print-identity` on that signer, and its reachable URL.',
  ),
  // signer: signing attempts (DESIGN §4)
  attempt_conflict: e(
    409,
    'A signing attempt with this id exists with other content.',
    'Retry the session; repeated conflicts point at the coordinator.',
  ),
  attempt_superseded: e(
    409,
    'A newer attempt of this session exists on the signer.',
    'Nothing to do: the coordinator retries with the newest attempt.',
  ),
  attempt_unknown: e(
    404,
    'The signer knows no such attempt (expired or never opened).',
    'Nothing to do: the coordinator opens a new attempt.',
  ),
  attempt_expired: e(
    410,
    'The attempt expired before it completed.',
    'Nothing to do: the coordinator opens a new attempt while the session lasts.',
  ),
  attempt_cap_reached: e(
    503,
    'The signer has too many attempts in flight.',
    'Retry later, or raise the signer limit if the load is expected.',
  ),
  attempt_id_mismatch: e(
    400,
    'The attempt id does not match its content.',
    'Coordinator and signers must run the same Floe version.',
  ),
  message_mismatch: e(
    422,
    'The message of the signing package differs from the one of the attempt.',
    'The coordinator is at fault or tampered with; check its logs.',
  ),
  wrong_commitment_count: e(
    422,
    'The signing package has the wrong number of commitments.',
    'The coordinator is at fault; check its version and logs.',
  ),
  identifier_not_included: e(
    422,
    'The signing package omits a participant.',
    'The coordinator is at fault; check its version and logs.',
  ),
  own_identifier_missing: e(
    422,
    "The signing package omits this signer's own commitment.",
    'The coordinator is at fault; check its version and logs.',
  ),
  own_commitment_mismatch: e(
    422,
    "The signing package alters this signer's commitment.",
    'Someone altered the commitment: check the coordinator and the network path.',
  ),
  not_a_member: e(
    422,
    'This signer is not the member at that identifier.',
    "Check the key's members (GET /v1/keys/<id>) against the registered signers.",
  ),
  policy_refused: e(
    403,
    "A signer's own policy refused to sign this intent.",
    'Read `policy_refusals` on the session for the rule; signer policies are set in each signer configuration.',
  ),
  // intents (DESIGN §12)
  intent_not_supported: e(
    422,
    'The intent is not one this key or signer can sign.',
    'Give exactly one of message, nostr_event or bitcoin_psbt, of a kind the key supports.',
  ),
  intent_mismatch: e(
    422,
    'The message to sign does not follow from the intent.',
    'The coordinator is at fault or tampered with; check its logs.',
  ),
  // Bitcoin (DESIGN §14)
  network_unknown: e(400, 'Unknown Bitcoin network.', 'Use mainnet, testnet, signet or regtest.'),
  address_invalid: e(
    400,
    'Not a valid Bitcoin address.',
    'Check the address for typos (bech32m for Taproot).',
  ),
  address_wrong_network: e(
    400,
    'The address belongs to another Bitcoin network.',
    'Use an address of the network the coordinator runs (see its configuration).',
  ),
  address_unsupported: e(
    422,
    'The address type is not supported here.',
    'Floe keys spend and derive Taproot (P2TR) key-path addresses.',
  ),
  xpub_invalid: e(400, 'Not a valid extended public key.', 'Check the xpub string and its network.'),
  derivation_path_invalid: e(
    400,
    'Not a valid derivation path.',
    'Use non-hardened steps from the key root, such as m/0/5.',
  ),
  descriptor_checksum_invalid: e(
    400,
    'The descriptor checksum does not match.',
    'Copy the descriptor with its #checksum exactly as GET /v1/keys/<id>/descriptor gives it.',
  ),
  psbt_invalid: e(400, 'The PSBT cannot be decoded.', 'Send a base64 PSBT (BIP-174 or BIP-370).'),
  psbt_missing_utxo: e(
    400,
    'A PSBT input lacks the output it spends (witness_utxo).',
    'Add witness_utxo for every input (your wallet does with `walletprocesspsbt`).',
  ),
  psbt_input_unsupported: e(
    422,
    'A PSBT input of the key is of a form Floe does not sign.',
    'Floe signs Taproot key-path inputs of the key or of addresses derived from it.',
  ),
  psbt_sighash_unsupported: e(
    422,
    'A PSBT input asks for a sighash type Floe does not sign.',
    'Use SIGHASH_DEFAULT (or ALL).',
  ),
  psbt_signature_invalid: e(
    422,
    'A signature produced for a PSBT input does not verify.',
    'Retry; the signers at fault are blamed in `culprits`.',
  ),
  psbt_no_owned_inputs: e(
    422,
    'The PSBT has no unsigned input the key can sign.',
    "Check the inputs spend the key's outputs (with tapBip32Derivation for derived addresses).",
  ),
  psbt_too_many_inputs: e(422, 'The PSBT has more inputs than one session signs.', 'Split the transaction.'),
  policy_config_invalid: e(
    400,
    'A signer policy configuration is not valid.',
    'Fix the policy section of the signer configuration; `detail` names the setting.',
  ),
  // Nostr events (src/nostr/event.ts)
  event_not_object: e(400, 'The Nostr event is not a JSON object.', 'Send the event as an object (NIP-01).'),
  event_field_unknown: e(
    400,
    'The Nostr event has a field NIP-01 does not define.',
    'Send only kind, content, tags and created_at (the id, pubkey and sig are computed).',
  ),
  event_pubkey_invalid: e(
    400,
    'The event pubkey is not 32 bytes of hex.',
    'Use a 64-character hex x-only key.',
  ),
  event_created_at_invalid: e(
    400,
    'The event created_at is not a valid time (Unix seconds, at most 15 minutes ahead).',
    'Use Unix seconds, or leave it out for now.',
  ),
  event_kind_invalid: e(
    400,
    'The event kind is not an integer from 0 to 65535.',
    'Use a NIP kind (1 is a note).',
  ),
  event_tags_invalid: e(
    400,
    'The event tags are not an array of non-empty arrays of strings.',
    'Send tags like [["t", "floe"]].',
  ),
  event_tags_too_large: e(400, 'The event has too many or too large tags.', 'Send fewer or shorter tags.'),
  event_content_invalid: e(400, 'The event content is not a string.', 'Send content as a string.'),
  event_content_too_large: e(400, 'The event content is larger than 64 KiB.', 'Shorten the content.'),
  event_too_large: e(400, 'The serialized event is too large.', 'Shorten the content or the tags.'),
  event_id_malformed: e(400, 'The event id is not 32 bytes of hex.', 'Use a 64-character hex id.'),
  event_sig_malformed: e(
    400,
    'The event signature is not 64 bytes of hex.',
    'Use a 128-character hex signature.',
  ),
  event_id_mismatch: e(
    400,
    'The event id is not the hash of the event.',
    'Compute the id as NIP-01 says, after the last change to the event.',
  ),
  event_sig_invalid: e(
    400,
    'The event signature does not verify under its pubkey.',
    'Sign the event id with the key of its pubkey (BIP-340).',
  ),
  // approvals (DESIGN §13)
  approval_rejected: e(
    422,
    'The stewards rejected the session.',
    'Nothing to sign: ask the stewards why, and create a new session if they agree.',
  ),
  approval_missing: e(
    403,
    'The key needs steward approvals that are missing or too few.',
    'Collect decisions from a quorum of stewards (floe approve); `detail` names what to sign.',
  ),
  approval_policy_invalid: e(
    400,
    'The approval policy is not valid.',
    'Read `detail`; docs/approvals.md shows a valid policy.',
  ),
  approval_invalid: e(
    422,
    'A steward decision does not count: wrong event, tags, signer, intent or deadline.',
    'Read `reason` and `detail`; `floe approve` builds a valid decision.',
  ),
  approval_duplicate: e(
    409,
    'This steward already decided this session.',
    'Nothing to do: one decision per steward counts.',
  ),
  approval_policy_conflict: e(
    409,
    "A signer cannot apply the policy change at the key's current revision.",
    'Read the key again (GET /v1/keys/<id>) and approve the change against its current policy_hash.',
  ),
  consumed_nonce_replay: e(
    409,
    'The signer already signed this attempt: its nonce is spent and never used twice.',
    'Nothing to do: the coordinator opens a new attempt.',
  ),
  marker_write_failed: e(
    503,
    'The signer could not record that a nonce is spent, so it did not sign.',
    'Check the signer disk (space, permissions); it signs again once it can write.',
  ),
  // coordinator
  key_not_found: e(
    404,
    'No key with this id in your tenant.',
    'List your keys with GET /v1/keys (floe key list); ids start with key_.',
  ),
  session_not_found: e(
    404,
    'No session with this id in your tenant.',
    'List sessions with GET /v1/sessions (floe session list); ids start with ses_.',
  ),
  signer_not_found: e(404, 'No signer with this id in the registry.', 'List signers with GET /v1/signers.'),
  webhook_not_found: e(
    404,
    'No webhook with this id in your tenant.',
    'List webhooks with GET /v1/webhooks.',
  ),
  token_not_found: e(
    404,
    'No API token with this id in your tenant.',
    'List tokens with GET /v1/tokens; an API token floe_<id>_<secret> shows its id.',
  ),
  session_conflict: e(
    409,
    'The session cannot change this way from its current status.',
    'Read the session (GET /v1/sessions/<id>): a completed, failed or cancelled session is final.',
  ),
  session_failed: e(
    422,
    'The session failed.',
    'Read `error_code` and `culprits` on the session; create a new session to try again.',
  ),
  session_expired: e(
    410,
    'The session expired before it completed.',
    'Create a new session; if sessions keep expiring, check the signers are up (floe status).',
  ),
  no_quorum: e(
    503,
    'Too few healthy signers to reach the threshold of the key.',
    'Start or repair the signers named in `detail` (floe status shows them), then retry.',
  ),
  signer_unreachable: e(
    502,
    'A signer did not answer.',
    'Check the signer is running and reachable at its registered URL (floe status).',
  ),
  signer_fault: e(
    502,
    'A signer answered with something wrong; it is blamed.',
    'See `culprits`; a signer that keeps faulting is quarantined (GET /v1/signers).',
  ),
  response_unverified: e(
    502,
    "A signer's answer did not verify against its identity.",
    "Check the signer's registered identity matches the signer at that URL.",
  ),
  nonce_reuse_detected: e(
    409,
    'A signer offered a nonce commitment it had offered before; nothing was signed.',
    'Treat the signer as compromised or broken: quarantine it and investigate.',
  ),
  idempotency_conflict: e(
    409,
    'This Idempotency-Key was used for a different request.',
    'Use a new Idempotency-Key for a new request; resend the same body to get the first answer.',
  ),
  // publishing to Nostr relays (DESIGN §14)
  relay_url_invalid: e(
    400,
    'Not a ws:// or wss:// relay URL.',
    'Give relay URLs like wss://relay.example.com.',
  ),
  publish_no_relays: e(
    400,
    'Publishing was asked but there are no relays to publish to.',
    'Name relays in publish.relays, or set default relays on the key (PATCH /v1/keys/<id>).',
  ),
  publish_not_nostr_event: e(
    400,
    'Only nostr_event sessions can be published.',
    'Leave out publish for message and bitcoin_psbt sessions.',
  ),
  // threshold ECDH, NIP-04 / NIP-44 (DESIGN §14)
  invalid_pubkey: e(
    400,
    'Not an x-only public key on secp256k1.',
    'Give 64 hex characters of a valid x-only key (an npub decodes to one).',
  ),
  ecdh_failed: e(
    502,
    'The signers could not produce the shared secret.',
    'Retry; check the signers are up (floe status); faulty ones are blamed in `culprits`.',
  ),
  // NIP-46 bunkers (src/coordinator/bunkers/)
  bunker_not_found: e(404, 'The key has no bunker.', 'Enable one with POST /v1/keys/<id>/bunker.'),
  bunker_client_not_found: e(
    404,
    'The bunker has no client with this pubkey.',
    'List clients with GET /v1/keys/<id>/bunker/clients.',
  ),
  bunker_approval_not_found: e(
    404,
    'The bunker has no held request with this id.',
    'List held requests with GET /v1/keys/<id>/bunker/approvals; decided and expired ones are not listed.',
  ),
  bunker_disabled: e(409, 'The bunker is disabled.', 'Enable it again with POST /v1/keys/<id>/bunker.'),
  bunker_elsewhere: e(
    409,
    'The bunker runs on another coordinator, which must do this.',
    'Send the request to the coordinator holding its lease (GET /v1/keys/<id>/bunker shows it).',
  ),
  // key creation: the threshold rules of src/domain/threshold-rules.ts, when strict
  threshold_unsafe: e(
    422,
    'The threshold breaks a safety rule (t <= 2n/3, n - t >= 2) and strict thresholds are on.',
    'Choose another threshold or more signers; `detail` names the rule.',
  ),
  // the kill switch and key controls (issue 15 items 7, 8; src/domain/operator-instruction.ts)
  key_frozen: e(
    409,
    'The key is frozen by an operator instruction: the coordinator and every signer that was told refuse to sign or compute ECDH with it.',
    'An operator unfreezes it: `floe key unfreeze <key id>` signs the instruction with the operator key pinned on the signers.',
  ),
  key_disabled: e(
    409,
    'The key is disabled on the coordinator: new sessions with it are refused (its signers were not told).',
    'Enable it again: POST /v1/keys/<id>/enable (admin), or `floe key enable <key id>`.',
  ),
  operator_instruction_invalid: e(
    400,
    'An operator instruction is malformed, or its signature does not verify under a pinned operator key.',
    'Sign it again with the operator key (.floe/operator.key) whose public key every signer pins in `operators`.',
  ),
  operator_instruction_stale: e(
    409,
    'An operator instruction is not newer than the last one applied for this key, or is too old or from the future.',
    'Sign a fresh instruction (`floe key freeze|unfreeze` does); check the clocks of the operator machine and the signers.',
  ),
  operator_not_pinned: e(
    409,
    'This signer pins no operator key, so it cannot verify operator instructions.',
    'Add the operator public key to `operators` in the signer config (floe init / floe up write it) and restart the signer.',
  ),
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export const ERROR_CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

/** code → HTTP status, from the table. */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = Object.fromEntries(
  ERROR_CODES.map((c) => [c, ERROR_TABLE[c].status]),
) as Record<ErrorCode, number>;

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
    this.status = ERROR_TABLE[code].status;
    this.extra = extra;
  }
}

export function isFloeError(e: unknown): e is FloeError {
  return e instanceof FloeError;
}

/** RFC 9457 problem details with Floe's stable `code` and a `hint` (what to do). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  hint: string;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * `type` is `about:blank` (RFC 9457 §4.2.1): the problem means no more than its status, and
 * `title` is then the status phrase; the meaning is in `code`, which docs/errors.md catalogues.
 * A URL of our own would have to resolve wherever a coordinator, signer or address service
 * answers, and none of them is guaranteed to serve the catalogue.
 */
export const PROBLEM_TYPE = 'about:blank';

const STATUS_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function statusPhrase(status: number): string {
  return STATUS_PHRASES[status] ?? `HTTP ${status}`;
}

/** A problem document; `extra.hint` replaces the table's hint for the code. */
export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const status = ERROR_TABLE[code].status;
  const hint = typeof extra.hint === 'string' && extra.hint ? extra.hint : ERROR_TABLE[code].hint;
  return { ...extra, type: PROBLEM_TYPE, title: statusPhrase(status), status, code, detail, hint };
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
