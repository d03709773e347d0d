/**
 * Refusals of the Bitcoin layer. Each is a FloeError whose code is one of BITCOIN_REASONS (its own
 * stable code in src/protocol/errors.ts) and whose `extra.reason` repeats it (the shape the
 * library had before the codes existed, kept for callers that read it). Messages name the field
 * and the rule, never a secret.
 */
import { type ErrorCode, FloeError } from '../protocol/errors.js';

/** Stable reasons of src/bitcoin, each an error code of its own. */
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
  'psbt_no_owned_inputs',
  'psbt_too_many_inputs',
  'policy_config_invalid',
] as const satisfies readonly ErrorCode[];
export type BitcoinReason = (typeof BITCOIN_REASONS)[number];

/** A FloeError with `reason` as its code (and in `extra`, with any non-secret extra members). */
export function bitcoinError(
  reason: BitcoinReason,
  detail: string,
  extra: Record<string, unknown> = {},
): FloeError {
  return new FloeError(reason, detail, { ...extra, reason });
}
