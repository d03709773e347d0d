/**
 * Node identity keys: secp256k1 keys used for BIP-340 signatures on envelopes and DKG
 * certificates, and (x-only, even Y) for ECDH. Public keys travel as 32-byte x-only hex.
 */
import { randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { CryptoError } from './errors.js';
import { parseScalar } from './group.js';

export function generateIdentityKey(): Uint8Array {
  for (;;) {
    const k = new Uint8Array(randomBytes(32));
    try {
      parseScalar(k, 'identity key');
      return k;
    } catch {
      // out of range: draw again (probability ~2^-128)
    }
  }
}

/** 32-byte x-only public key of an identity secret. */
export function identityPublicKey(secret: Uint8Array): Uint8Array {
  parseScalar(secret, 'identity key');
  return schnorr.getPublicKey(secret);
}

/** BIP-340 signature (with fresh auxiliary randomness) over a 32-byte digest. */
export function signDigest(secret: Uint8Array, digest: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new CryptoError('invalid_encoding', 'digest: expected 32 bytes');
  return schnorr.sign(digest, secret, randomBytes(32));
}

export function verifyDigest(sig: Uint8Array, digest: Uint8Array, xOnlyPub: Uint8Array): boolean {
  try {
    return (
      sig.length === 64 &&
      digest.length === 32 &&
      xOnlyPub.length === 32 &&
      schnorr.verify(sig, digest, xOnlyPub)
    );
  } catch {
    return false;
  }
}
