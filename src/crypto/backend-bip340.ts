/**
 * BIP-340 signing and verification written over a backend's point operations, for backends
 * whose library has no Schnorr module (secp256k1 5.x bundles a 2019 libsecp256k1 without it).
 */
import type { CurveBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { bytesEqual, concatBytes, wipe } from './hex.js';
import * as S from './scalar.js';
import { taggedHash } from './tagged.js';

type Ops = Pick<CurveBackend, 'mulBase' | 'liftX' | 'encode' | 'hasEvenY' | 'mulBaseAddPublic'>;

/**
 * BIP-340 Sign(sk, m) with auxiliary randomness `aux`; the result is verified before it is
 * returned. `publicKey` (compressed sk·G, when the caller holds it) spares the base
 * multiplication that would compute it; a wrong one fails that verification.
 */
export function bip340Sign(
  ops: Ops,
  msg: Uint8Array,
  secret: Uint8Array,
  aux: Uint8Array,
  publicKey?: Uint8Array,
): Uint8Array {
  if (aux.length !== 32) throw new CryptoError('invalid_encoding', 'aux randomness: expected 32 bytes');
  const d0 = S.parse(secret, 'secret key', true);
  let px: Uint8Array;
  let evenY: boolean;
  if (publicKey) {
    if (publicKey.length !== 33 || (publicKey[0] !== 2 && publicKey[0] !== 3)) {
      throw new CryptoError('invalid_point', 'public key: expected 33 compressed bytes');
    }
    px = publicKey.subarray(1);
    evenY = publicKey[0] === 2;
  } else {
    const P = ops.mulBase(secret);
    px = ops.encode(P).subarray(1);
    evenY = ops.hasEvenY(P);
  }
  const dBytes = S.toBytes(evenY ? d0 : S.neg(d0));
  const t = taggedHash('BIP0340/aux', aux);
  for (let i = 0; i < 32; i++) t[i]! ^= dBytes[i]!;
  const rand = taggedHash('BIP0340/nonce', t, px, msg);
  const k0 = S.mod(S.fromBytes(rand));
  if (k0 === 0n) throw new CryptoError('invalid_signature', 'BIP-340 nonce is zero');
  const kBytes = S.toBytes(k0);
  const R = ops.mulBase(kBytes);
  const k = ops.hasEvenY(R) ? k0 : S.neg(k0);
  const rx = ops.encode(R).subarray(1);
  const e = S.mod(S.fromBytes(taggedHash('BIP0340/challenge', rx, px, msg)));
  const sig = concatBytes(rx, S.toBytes(S.add(k, S.mul(e, S.fromBytes(dBytes)))));
  wipe(dBytes, t, rand, kBytes);
  if (!bip340Verify(ops, sig, msg, px)) {
    throw new CryptoError('invalid_signature', 'BIP-340 signature failed its own verification');
  }
  return sig;
}

/** BIP-340 Verify(pk, m, sig): R = s·G − e·P must have an even Y and x(R) = r. */
export function bip340Verify(ops: Ops, sig: Uint8Array, msg: Uint8Array, xOnlyPub: Uint8Array): boolean {
  try {
    if (sig.length !== 64 || xOnlyPub.length !== 32) return false;
    const P = ops.liftX(xOnlyPub, 'public key');
    const r = sig.subarray(0, 32);
    const s = S.fromBytes(sig.subarray(32));
    if (s >= S.N) return false;
    const e = S.mod(S.fromBytes(taggedHash('BIP0340/challenge', r, xOnlyPub, msg)));
    const R = ops.mulBaseAddPublic(S.toBytes(s), P, S.toBytes(S.neg(e)));
    if (!R || !ops.hasEvenY(R)) return false;
    return bytesEqual(ops.encode(R).subarray(1), r);
  } catch {
    return false;
  }
}
