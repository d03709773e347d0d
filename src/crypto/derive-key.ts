/**
 * Derived keys (DESIGN §12): one DKG key serves any number of addresses by adding a public scalar
 * d to it. The group key K becomes K + d·G; since the Lagrange weights of any t signers sum to 1,
 * adding d to every signing share and d·G to every verifying share (and to the constant-term
 * commitment) gives a package that signs for K + d·G, with no interaction between the members.
 *
 * d itself comes from src/bitcoin/derive.ts (the sum of the BIP-32 IL values along a path). A
 * Taproot (BIP-86) tweak is applied after the derivation, on the derived key:
 * {@link deriveTaprootKeyPackage} = tweakKeyPackage(deriveKeyPackage(key, d)).
 */
import { cryptoBackend } from './backend.js';
import { assertCompressed } from './backend-util.js';
import { CryptoError } from './errors.js';
import { parsePoint, parseScalar, scalarToBytes } from './group.js';
import * as S from './scalar.js';
import { tweakKeyPackage, tweakPublicKeyPackage } from './tweak.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

/** Parse a derivation tweak: 32 bytes, 0 <= d < n. */
export function parseDerivationTweak(tweak: Uint8Array): bigint {
  if (!(tweak instanceof Uint8Array))
    throw new CryptoError('invalid_scalar', 'derivation tweak: expected bytes');
  return parseScalar(tweak, 'derivation tweak', false);
}

/** K + d·G of a 33-byte compressed point (d public, 0 <= d < n); invalid_point for the identity. */
export function derivePublicKey(key: Uint8Array, tweak: Uint8Array): Uint8Array {
  const d = parseDerivationTweak(tweak);
  parsePoint(key, 'public key');
  if (d === 0n) return Uint8Array.from(key);
  const b = cryptoBackend();
  const q = b.add(b.decode(key, 'public key'), b.mulBase(S.toBytes(d)));
  if (!q) throw new CryptoError('invalid_point', 'derived key is the identity');
  return b.encode(q);
}

/**
 * The public package of the key K + d·G: d·G added to the group key (commitments[0]) and to every
 * verifying share; the other commitments are unchanged. The result is a key in its own right
 * (`tweak.kind = 'none'`): whatever tweak the parent carried is folded into its group key, so a
 * BIP-86 tweak can be applied to the derived key with {@link tweakPublicKeyPackage}.
 */
export function derivePublicKeyPackage(pub: PublicKeyPackage, tweak: Uint8Array): PublicKeyPackage {
  const d = parseDerivationTweak(tweak);
  const b = cryptoBackend();
  const dG = d === 0n ? undefined : b.mulBase(S.toBytes(d));
  const shifted = (raw: Uint8Array, what: string) => {
    assertCompressed(raw, what);
    const p = b.decode(raw, what);
    const q = dG ? b.add(p, dG) : p;
    if (!q) throw new CryptoError('invalid_point', `${what}: derived point is the identity`);
    return b.encode(q);
  };
  const commitments = pub.commitments.map((c, i) => {
    if (i === 0) return shifted(c, 'group key');
    parsePoint(c, 'commitment');
    return Uint8Array.from(c);
  });
  const verifyingShares = new Map<number, Uint8Array>();
  for (const [id, vs] of pub.verifyingShares) verifyingShares.set(id, shifted(vs, 'verifying share'));
  return { threshold: pub.threshold, n: pub.n, commitments, verifyingShares, tweak: { kind: 'none' } };
}

/** One member's package for the derived key: signing share s + d, public package as above. */
export function deriveKeyPackage(key: KeyPackage, tweak: Uint8Array): KeyPackage {
  const pub = derivePublicKeyPackage(key.public, tweak);
  const d = parseDerivationTweak(tweak);
  const s = parseScalar(key.signingShare, 'signing share');
  const share = S.add(s, d);
  if (share === 0n) throw new CryptoError('invalid_scalar', 'derived signing share is zero');
  return { identifier: key.identifier, signingShare: scalarToBytes(share), public: pub };
}

/**
 * The public package that signs for the BIP-86 output key of the derived key K + d·G (or for the
 * output committing to `merkleRoot`): derivation first, then the Taproot tweak.
 */
export function deriveTaprootPublicKeyPackage(
  pub: PublicKeyPackage,
  tweak: Uint8Array,
  merkleRoot: Uint8Array = new Uint8Array(0),
): PublicKeyPackage {
  return tweakPublicKeyPackage(derivePublicKeyPackage(pub, tweak), merkleRoot);
}

/**
 * One member's package for the BIP-86 output key of K + d·G. In scalars, with σ = −1 when K + d·G
 * has an odd Y (else +1) and t = int(TapTweak(x(K + d·G) || merkleRoot)): s' = σ·(s + d) + t.
 */
export function deriveTaprootKeyPackage(
  key: KeyPackage,
  tweak: Uint8Array,
  merkleRoot: Uint8Array = new Uint8Array(0),
): KeyPackage {
  return tweakKeyPackage(deriveKeyPackage(key, tweak), merkleRoot);
}

/**
 * How the members turn the key they store into the key that signs one digest (a PSBT input,
 * DESIGN §12): the BIP-86 output (or the output committing to `merkleRoot`) of the derived key
 * K + d·G. A digest signed with the key as stored has none (null).
 */
export interface TaprootDerivation {
  /** d, 32 bytes (0 <= d < n). */
  derivation: Uint8Array;
  /** Empty (BIP-86) or the 32-byte script tree root. */
  merkleRoot: Uint8Array;
}

/** The bytes signing-package hashes and blame bind: d (32) ‖ merkle root (0 or 32). */
export function taprootDerivationBytes(t: TaprootDerivation): Uint8Array {
  parseDerivationTweak(t.derivation);
  if (t.merkleRoot.length !== 0 && t.merkleRoot.length !== 32) {
    throw new CryptoError('invalid_encoding', 'merkle root: expected 0 or 32 bytes');
  }
  const out = new Uint8Array(32 + t.merkleRoot.length);
  out.set(t.derivation, 0);
  out.set(t.merkleRoot, 32);
  return out;
}

/** The inverse of {@link taprootDerivationBytes}: 32 or 64 bytes. */
export function parseTaprootDerivation(bytes: Uint8Array): TaprootDerivation {
  if (!(bytes instanceof Uint8Array) || (bytes.length !== 32 && bytes.length !== 64)) {
    throw new CryptoError('invalid_encoding', 'taproot derivation: expected 32 or 64 bytes');
  }
  const derivation = bytes.slice(0, 32);
  parseDerivationTweak(derivation);
  return { derivation, merkleRoot: bytes.slice(32) };
}
