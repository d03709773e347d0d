/**
 * Node identity keys: secp256k1 keys used for BIP-340 signatures on envelopes and DKG
 * certificates, and (x-only, even Y) for ECDH. Public keys travel as 32-byte x-only hex.
 *
 * A {@link NodeIdentity} is the capability to use a key without holding its bytes: code that
 * signs envelopes or opens boxes takes one, so the secret can live elsewhere (in memory here,
 * in an HSM later).
 */
import { randomBytes } from 'node:crypto';
import { cryptoBackend } from './backend.js';
import { proveEcdh as dleqProveEcdh, type EcdhProof } from './dleq.js';
import { CryptoError } from './errors.js';
import { parseScalar } from './group.js';
import { toHex, wipe } from './hex.js';

export interface NodeIdentity {
  /** 32-byte x-only BIP-340 public key. */
  readonly publicKey: Uint8Array;
  /** Lower-case hex of publicKey. */
  readonly publicKeyHex: string;
  /** BIP-340 signature (fresh aux randomness) over a 32-byte digest. */
  sign(digest: Uint8Array): Uint8Array;
  /** x coordinate (32 bytes) of d·lift_x(peer): ECDH with a peer's x-only key (same x whatever the parity of d). */
  ecdh(peerXOnly: Uint8Array): Uint8Array;
  /**
   * The whole ECDH point S = d·lift_x(peer) (d the even-Y form of this key) with a
   * Chaum–Pedersen proof bound to `context` that it is one (`dleq.ts`), for a complaint third
   * parties can verify (`complaint.ts`). Optional: a key held where it can only sign and agree
   * keys (an HSM) may not offer it; such a member can still complain, unverifiably.
   */
  proveEcdh?(peerXOnly: Uint8Array, context: Uint8Array): EcdhProof;
}

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
  const b = cryptoBackend();
  return b.encode(b.mulBase(secret)).slice(1);
}

function assertDigest(digest: Uint8Array): void {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) {
    throw new CryptoError('invalid_encoding', 'digest: expected 32 bytes');
  }
}

/**
 * BIP-340 signature (with fresh auxiliary randomness) over a 32-byte digest. `publicKey`: the
 * compressed secret·G when the caller holds it (see CurveBackend.schnorrSign).
 */
export function signDigest(secret: Uint8Array, digest: Uint8Array, publicKey?: Uint8Array): Uint8Array {
  assertDigest(digest);
  parseScalar(secret, 'identity key');
  const aux = new Uint8Array(randomBytes(32));
  try {
    return cryptoBackend().schnorrSign(digest, secret, aux, publicKey);
  } finally {
    wipe(aux);
  }
}

export function verifyDigest(sig: Uint8Array, digest: Uint8Array, xOnlyPub: Uint8Array): boolean {
  return (
    sig instanceof Uint8Array &&
    digest instanceof Uint8Array &&
    xOnlyPub instanceof Uint8Array &&
    sig.length === 64 &&
    digest.length === 32 &&
    xOnlyPub.length === 32 &&
    cryptoBackend().schnorrVerify(sig, digest, xOnlyPub)
  );
}

/** A NodeIdentity over a secret held in memory (copied; `dispose()` wipes the copy). */
export function softwareIdentity(secret: Uint8Array): NodeIdentity & { dispose(): void } {
  parseScalar(secret, 'identity key');
  const d = Uint8Array.from(secret);
  const b = cryptoBackend();
  const point = b.encode(b.mulBase(d)); // compressed: the signing key with its Y parity
  const publicKey = point.slice(1);
  const publicKeyHex = toHex(publicKey);
  let disposed = false;
  const live = () => {
    if (disposed) throw new CryptoError('invalid_scalar', 'identity key was disposed');
    return d;
  };
  return {
    get publicKey() {
      return publicKey.slice();
    },
    publicKeyHex,
    sign: (digest) => signDigest(live(), digest, point),
    ecdh(peerXOnly) {
      if (!(peerXOnly instanceof Uint8Array) || peerXOnly.length !== 32) {
        throw new CryptoError('invalid_encoding', 'peer key: expected 32 bytes');
      }
      return cryptoBackend().ecdh(live(), peerXOnly);
    },
    proveEcdh(peerXOnly, context) {
      if (!(peerXOnly instanceof Uint8Array) || peerXOnly.length !== 32) {
        throw new CryptoError('invalid_encoding', 'peer key: expected 32 bytes');
      }
      return dleqProveEcdh(live(), peerXOnly, context);
    },
    dispose() {
      disposed = true;
      wipe(d);
    },
  };
}
