/**
 * Refusals of the Bitcoin layer. Until src/protocol/errors.ts has codes of its own for them, each
 * is a FloeError with an existing code (`invalid_request`, or `intent_not_supported` for inputs
 * Floe cannot sign) and a stable `reason` in `extra`: the code it will get. Messages name the
 * field and the rule, never a secret.
 */
import { FloeError } from '../protocol/errors.js';

/** Stable reasons (future error codes) of src/bitcoin. */
export const BITCOIN_REASONS = [
  'network_unknown',
  'address_invalid',
  'address_wrong_network',
  'address_unsupported',
  'xpub_invalid',
  'derivation_path_invalid',
  'descriptor_checksum_invalid',
  'psbt_invalid',
  'psbt_missing_utxo',
  'psbt_input_unsupported',
  'psbt_sighash_unsupported',
  'psbt_signature_invalid',
  'policy_config_invalid',
] as const;
export type BitcoinReason = (typeof BITCOIN_REASONS)[number];

/** Reasons about what Floe cannot sign (rather than a malformed request). */
const NOT_SUPPORTED: ReadonlySet<BitcoinReason> = new Set([
  'address_unsupported',
  'psbt_input_unsupported',
  'psbt_sighash_unsupported',
]);

/** A FloeError carrying `reason` (and any non-secret extra members). */
export function bitcoinError(
  reason: BitcoinReason,
  detail: string,
  extra: Record<string, unknown> = {},
): FloeError {
  return new FloeError(NOT_SUPPORTED.has(reason) ? 'intent_not_supported' : 'invalid_request', detail, {
    ...extra,
    reason,
  });
}
