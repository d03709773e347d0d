/**
 * Independent BIP-340 verification with tiny-secp256k1 (libsecp256k1 compiled to WASM),
 * so no signature is judged only by the library that made it.
 */
import * as ecc from 'tiny-secp256k1';

export function libsecpVerify(sig: Uint8Array, msg32: Uint8Array, xOnlyKey: Uint8Array): boolean {
  if (msg32.length !== 32) throw new Error('libsecpVerify needs a 32-byte message');
  return ecc.verifySchnorr(msg32, xOnlyKey, sig);
}

export { ecc };
