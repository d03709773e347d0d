/** NIP-19 bech32 encodings of 32-byte keys (npub for public keys, nsec for secret keys). */
import { bech32 } from '@scure/base';
import { CryptoError } from './errors.js';

export function npubEncode(xOnly: Uint8Array): string {
  if (xOnly.length !== 32) throw new CryptoError('invalid_encoding', 'npub: expected a 32-byte key');
  return bech32.encode('npub', bech32.toWords(xOnly));
}

export function npubDecode(npub: string): Uint8Array {
  return decode('npub', npub);
}

/** Decodes an nsec; the error never includes the input. */
export function nsecDecode(nsec: string): Uint8Array {
  return decode('nsec', nsec);
}

function decode(prefix: 'npub' | 'nsec', s: string): Uint8Array {
  try {
    const d = bech32.decode(s as `${string}1${string}`);
    if (d.prefix !== prefix) throw new Error('prefix');
    const bytes = bech32.fromWords(d.words);
    if (bytes.length !== 32) throw new Error('length');
    return bytes;
  } catch {
    throw new CryptoError('invalid_encoding', `${prefix}: not a valid NIP-19 ${prefix}`);
  }
}
