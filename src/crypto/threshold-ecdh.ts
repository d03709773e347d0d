/**
 * Threshold ECDH: the x coordinate of d·P for a key d that exists only as FROST shares, and a
 * peer's x-only public key P (NIP-04 and NIP-44 take nothing else; DESIGN §14).
 *
 *   member i   S_i = s_i·P, with a DLEQ proof (`dleq.ts`, {@link proveDleq}) that
 *              log_G(Y_i) = log_P(S_i), Y_i its verifying share, bound to a context
 *              (key, request, peer, purpose, identifier: {@link ecdhShareContext})
 *   combiner   checks every proof against Y_i from the public key package, then
 *              S = Σ λ_i·S_i over the chosen set (λ_i its Lagrange coefficients at 0), x(S)
 *
 * Members return s_i·P rather than λ_i·s_i·P: the λ_i are public, so applying them at the
 * combiner gives the same S, lets the proof be checked against the published Y_i (a bad S_i is
 * provably that member's), and keeps a valid S_i usable with any other set of members.
 *
 * Which secret: the key package's own. Its shares interpolate to d with d·G = the group key
 * (`commitments[0]`), tweaked or not (a Taproot-tweaked DKG key's shares already carry the
 * tweak; `tweak.ts`), and x(d·P) = x(−d·P), so x(S) is the ECDH value of the secret whose
 * BIP-340 key is the group key's x: the key's `x_only_public_key`, its Nostr pubkey, whatever
 * the parity of its Y. {@link combineEcdhShares} checks Σ λ_i·Y_i = group key as well.
 *
 * Secrets reach points only through mulSecret (in `proveDleq`); the combination, whose
 * scalars are the public λ_i, is one variable-time msmPublic.
 */
import { cryptoBackend } from './backend.js';
import { proveDleq, verifyDleq } from './dleq.js';
import { CryptoError } from './errors.js';
import { lengthPrefixed, u32be, utf8 } from './hash.js';
import { bytesEqual } from './hex.js';
import { assertIdentifier, type Identifier, sortedUniqueIds } from './identifier.js';
import * as S from './scalar.js';
import { groupPublicKey } from './signing.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

export const THRESHOLD_ECDH_TAG = 'floe/threshold-ecdh/v1';

/** One member's part of a threshold ECDH. */
export interface EcdhShare {
  identifier: Identifier;
  /** S_i = s_i·P, 33-byte compressed. Secret to everyone but the combiner: t of them give x(d·P). */
  shared: Uint8Array;
  /** DLEQ proof (c ‖ z, 64 bytes) that log_G(Y_i) = log_P(S_i) under the share's context. */
  proof: Uint8Array;
}

/** What a member's proof is bound to. */
export interface EcdhShareContext {
  keyId: string;
  /** The request (one ECDH), chosen by the coordinator. */
  requestId: string;
  /** The peer's x-only public key (32 bytes). */
  peer: Uint8Array;
  /** What the shared x is for (`nip04`, `nip44`, …). */
  purpose: string;
  identifier: Identifier;
}

/**
 * The context bytes of a member's proof: length-prefixed key id, request id, peer, purpose and
 * identifier under {@link THRESHOLD_ECDH_TAG}, so a proof answers one request of one member.
 */
export function ecdhShareContext(c: EcdhShareContext): Uint8Array {
  assertIdentifier(c.identifier);
  assertPeer(c.peer);
  return lengthPrefixed(THRESHOLD_ECDH_TAG, [
    utf8(c.keyId),
    utf8(c.requestId),
    c.peer,
    utf8(c.purpose),
    u32be(c.identifier),
  ]);
}

function assertPeer(peer: Uint8Array): void {
  if (!(peer instanceof Uint8Array) || peer.length !== 32) {
    throw new CryptoError('invalid_encoding', 'peer: expected a 32-byte x-only public key');
  }
}

/** 02 ‖ x: the peer's point as BIP-340 lifts it; refuses an x that is not on the curve. */
export function peerPoint(peerXOnly: Uint8Array): Uint8Array {
  assertPeer(peerXOnly);
  return cryptoBackend().encode(cryptoBackend().liftX(peerXOnly, 'peer'));
}

/** True when `peerXOnly` is 32 bytes and the x coordinate of a point of secp256k1. */
export function isEcdhPeer(peerXOnly: Uint8Array): boolean {
  try {
    peerPoint(peerXOnly);
    return true;
  } catch {
    return false;
  }
}

function verifyingShare(pub: PublicKeyPackage, id: Identifier): Uint8Array {
  const y = pub.verifyingShares.get(id);
  if (!y) throw new CryptoError('invalid_identifier', `identifier ${id} is not a member of the key`);
  return y;
}

/**
 * Member side: S_i = s_i·lift_x(peer) with its proof under `context` (see
 * {@link ecdhShareContext}). Refuses a share that does not match its own verifying share.
 */
export function ecdhShare(
  key: KeyPackage,
  peerXOnly: Uint8Array,
  context: Uint8Array,
  rng?: (len?: number) => Uint8Array,
): EcdhShare {
  const P = peerPoint(peerXOnly);
  const y = verifyingShare(key.public, key.identifier);
  const r = proveDleq(key.signingShare, P, context, rng);
  if (!bytesEqual(r.publicKey, y)) {
    throw new CryptoError('invalid_package', 'signing share does not match its verifying share');
  }
  return { identifier: key.identifier, shared: r.shared, proof: r.proof };
}

/** Combiner side: does `share`'s proof show S_i = s_i·P for the member's Y_i, under `context`? */
export function verifyEcdhShare(
  pub: PublicKeyPackage,
  peerXOnly: Uint8Array,
  share: EcdhShare,
  context: Uint8Array,
): boolean {
  try {
    const y = verifyingShare(pub, share.identifier);
    return verifyDleq(y, peerPoint(peerXOnly), share.shared, share.proof, context);
  } catch {
    return false;
  }
}

/**
 * Combiner side: check every share's proof (its context from `contextOf(identifier)`), then
 * x(Σ λ_i·S_i) over exactly these members: the 32-byte ECDH value of the key with `peerXOnly`.
 * A share whose proof fails is a CryptoError `invalid_share` naming every such member
 * (`culprits`); fewer than `threshold` distinct members, or a member not in the key, is
 * `invalid_package`.
 */
export function combineEcdhShares(
  pub: PublicKeyPackage,
  peerXOnly: Uint8Array,
  shares: readonly EcdhShare[],
  contextOf: (identifier: Identifier) => Uint8Array,
): Uint8Array {
  let ids: Identifier[];
  try {
    ids = sortedUniqueIds(
      shares.map((s) => s.identifier),
      'ECDH shares',
    );
  } catch {
    throw new CryptoError('invalid_package', 'ECDH shares: one per member, each identifier once');
  }
  if (ids.length < pub.threshold) {
    throw new CryptoError('invalid_package', `ECDH shares: at least ${pub.threshold} members`);
  }
  for (const id of ids) verifyingShare(pub, id);
  const culprits = shares
    .filter((s) => !verifyEcdhShare(pub, peerXOnly, s, contextOf(s.identifier)))
    .map((s) => s.identifier)
    .sort((a, b) => a - b);
  if (culprits.length) {
    throw new CryptoError('invalid_share', `invalid ECDH share from ${culprits.join(', ')}`, culprits);
  }
  const b = cryptoBackend();
  const xs = ids.map(BigInt);
  const lambdas = ids.map((id) => S.toBytes(S.lagrange(xs, BigInt(id))));
  // The set must interpolate to the group key (it does for any valid package: checked anyway,
  // as the combined point is only the key's ECDH value if it does).
  const Y = b.msmPublic(
    ids.map((id) => verifyingShare(pub, id)),
    lambdas,
    'verifying share',
  );
  if (!Y || !bytesEqual(b.encode(Y), groupPublicKey(pub))) {
    throw new CryptoError('invalid_package', 'verifying shares do not interpolate to the group key');
  }
  const byId = new Map(shares.map((s) => [s.identifier, s.shared]));
  const sum = b.msmPublic(
    ids.map((id) => byId.get(id)!),
    lambdas,
    'ECDH share',
  );
  if (!sum) throw new CryptoError('invalid_point', 'combined ECDH point is the identity');
  return b.encode(sum).slice(1);
}
