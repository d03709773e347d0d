/**
 * Output script descriptors for watch-only wallets: the BIP-380 checksum and Floe's BIP-386
 * descriptor `tr(<xpub>/0/*)` (receive) or `tr(<xpub>/1/*)` (change), which Bitcoin Core and
 * other descriptor wallets import to follow every address of a key without any private data.
 */

import { type ExtendedPublicKey, encodeXpub } from './derive.js';
import { bitcoinError } from './errors.js';
import type { BitcoinNetwork } from './network.js';

const INPUT_CHARSET =
  '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

function polymod(symbols: readonly number[]): bigint {
  let chk = 1n;
  for (const value of symbols) {
    const top = chk >> 35n;
    chk = ((chk & 0x7ffffffffn) << 5n) ^ BigInt(value);
    for (let i = 0; i < 5; i++) if ((top >> BigInt(i)) & 1n) chk ^= GENERATOR[i]!;
  }
  return chk;
}

/** BIP-380 character → symbol expansion; null when a character is outside the set. */
function expand(s: string): number[] | null {
  const symbols: number[] = [];
  let groups: number[] = [];
  for (const c of s) {
    const v = INPUT_CHARSET.indexOf(c);
    if (v < 0) return null;
    symbols.push(v & 31);
    groups.push(v >> 5);
    if (groups.length === 3) {
      symbols.push(groups[0]! * 9 + groups[1]! * 3 + groups[2]!);
      groups = [];
    }
  }
  if (groups.length === 1) symbols.push(groups[0]!);
  else if (groups.length === 2) symbols.push(groups[0]! * 3 + groups[1]!);
  return symbols;
}

/** The 8-character BIP-380 checksum of a descriptor (without any `#…`). */
export function descriptorChecksum(descriptor: string): string {
  const symbols = expand(descriptor);
  if (!symbols) {
    throw bitcoinError('descriptor_checksum_invalid', 'descriptor: character outside the BIP-380 set');
  }
  const c = polymod([...symbols, 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1n;
  let out = '';
  for (let i = 0; i < 8; i++) out += CHECKSUM_CHARSET[Number((c >> BigInt(5 * (7 - i))) & 31n)];
  return out;
}

/** `descriptor#checksum`. */
export function addChecksum(descriptor: string): string {
  return `${descriptor}#${descriptorChecksum(descriptor)}`;
}

/**
 * Check `descriptor#checksum` and return the descriptor without it. A descriptor without any `#`
 * is returned as is unless `require` is set; a `#` with anything but a correct 8-character
 * checksum is refused.
 */
export function checkDescriptorChecksum(s: string, opts: { require?: boolean } = {}): string {
  const at = s.lastIndexOf('#');
  if (at < 0) {
    if (opts.require) throw bitcoinError('descriptor_checksum_invalid', 'descriptor: checksum missing');
    if (!expand(s)) {
      throw bitcoinError('descriptor_checksum_invalid', 'descriptor: character outside the BIP-380 set');
    }
    return s;
  }
  const payload = s.slice(0, at);
  const checksum = s.slice(at + 1);
  if (checksum.length !== 8) {
    throw bitcoinError(
      'descriptor_checksum_invalid',
      `descriptor: expected an 8-character checksum, got ${checksum.length}`,
    );
  }
  const symbols = expand(payload);
  if (!symbols) {
    throw bitcoinError('descriptor_checksum_invalid', 'descriptor: character outside the BIP-380 set');
  }
  const tail = [...checksum].map((c) => CHECKSUM_CHARSET.indexOf(c));
  if (tail.some((v) => v < 0) || polymod([...symbols, ...tail]) !== 1n) {
    throw bitcoinError('descriptor_checksum_invalid', 'descriptor: checksum does not match');
  }
  return payload;
}

/**
 * Floe's watch-only descriptor of a key: `tr(<xpub>/<branch>/*)#checksum` (BIP-386, key path
 * only), branch 0 for receive addresses and 1 for change.
 */
export function taprootDescriptor(
  xpub: ExtendedPublicKey,
  network: BitcoinNetwork,
  branch: 0 | 1 = 0,
): string {
  if (branch !== 0 && branch !== 1) throw bitcoinError('derivation_path_invalid', 'branch: expected 0 or 1');
  return addChecksum(`tr(${encodeXpub(xpub, network)}/${branch}/*)`);
}
