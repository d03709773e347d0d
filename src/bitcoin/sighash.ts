/**
 * BIP-341 signature hashes (SigMsg under the TapSighash tag) of key-path spends, computed by
 * `@scure/btc-signer` from the unsigned transaction and every spent output (the digest commits to
 * all input amounts and scripts, so none can be left out or misstated).
 */
import type { Transaction } from '@scure/btc-signer';
import { bitcoinError } from './errors.js';

/** BIP-341 hash types: DEFAULT (0x00), ALL, NONE, SINGLE, each of the last three with ANYONECANPAY. */
export const TAPROOT_SIGHASH_TYPES = [0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83] as const;

const NAMES: Record<number, string> = {
  0: 'DEFAULT',
  1: 'ALL',
  2: 'NONE',
  3: 'SINGLE',
  129: 'ALL|ANYONECANPAY',
  130: 'NONE|ANYONECANPAY',
  131: 'SINGLE|ANYONECANPAY',
};

/** `SIGHASH_ALL|ANYONECANPAY (0x81)`-style name of a hash type, for messages. */
export function sighashName(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, '0')}`;
  const name = NAMES[type];
  return name ? `SIGHASH_${name} (${hex})` : `unknown sighash type ${hex}`;
}

/** A spent output: its script and amount in satoshis. */
export interface Prevout {
  script: Uint8Array;
  amount: bigint;
}

/**
 * The 32-byte BIP-341 key-path sighash of input `inputIndex` (no annex, no script path).
 * `prevouts` lists the output spent by every input, in input order.
 */
export function taprootKeySpendSighash(
  tx: Transaction,
  inputIndex: number,
  prevouts: readonly Prevout[],
  hashType: number,
): Uint8Array {
  if (!(TAPROOT_SIGHASH_TYPES as readonly number[]).includes(hashType)) {
    throw bitcoinError(
      'psbt_sighash_unsupported',
      `input ${inputIndex}: ${sighashName(hashType)} is not a BIP-341 hash type`,
    );
  }
  if (!Number.isInteger(inputIndex) || inputIndex < 0 || inputIndex >= tx.inputsLength) {
    throw bitcoinError('psbt_invalid', `input ${inputIndex}: no such input`);
  }
  if (prevouts.length !== tx.inputsLength) {
    throw bitcoinError('psbt_missing_utxo', 'the sighash needs the output spent by every input');
  }
  try {
    return tx.preimageWitnessV1(
      inputIndex,
      prevouts.map((p) => p.script),
      hashType,
      prevouts.map((p) => p.amount),
    );
  } catch {
    // e.g. SIGHASH_SINGLE without a matching output: BIP-341 defines no digest then.
    throw bitcoinError(
      'psbt_invalid',
      `input ${inputIndex}: no BIP-341 sighash for ${sighashName(hashType)}`,
    );
  }
}
