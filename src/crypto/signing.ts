/**
 * FROST signing: round 1 (commit), round 2 (sign a share), share verification,
 * aggregation with cheater identification, and BIP-340 verification — over the active
 * crypto backend (`backend.ts`), protocol in `frost.ts`.
 */
import { randomBytes } from 'node:crypto';
import { type BackendName, type BPoint, type CurveBackend, cryptoBackend } from './backend.js';
import { assertCompressed } from './backend-util.js';
import { CryptoError, isCryptoError } from './errors.js';
import {
  aggregateCore,
  type CommitmentEntry,
  evenEncoding,
  flipEncoding,
  roundOne,
  type SigningContext,
  signingContext,
  signShareCore,
  verifyShareCore,
} from './frost.js';
import { xOnly } from './group.js';
import { bytesEqual } from './hex.js';
import { sortedUniqueIds } from './identifier.js';
import * as S from './scalar.js';
import type {
  KeyPackage,
  PublicKeyPackage,
  SignatureShare,
  SigningCommitments,
  SigningNonces,
  SigningPackage,
} from './types.js';

/** 33-byte compressed group public key (after any tweak). */
export function groupPublicKey(pub: PublicKeyPackage): Uint8Array {
  return pub.commitments[0]!;
}

/** 32-byte BIP-340 public key the group signs for. */
export function xOnlyGroupKey(pub: PublicKeyPackage): Uint8Array {
  return xOnly(groupPublicKey(pub));
}

// ---------- decoded public packages, cached ----------

/**
 * A public key package's points as the Taproot suite uses them: group key and verifying
 * shares negated when the group key has an odd Y. Decoding (a square root per point) is done
 * once per package object and backend; an entry is re-checked against the package's bytes on
 * every use, so a package changed in place is decoded again.
 */
interface PreparedPublic {
  groupKey: Uint8Array;
  odd: boolean;
  /** 02 || x(group key). */
  evenKey: Uint8Array;
  P: BPoint;
  shares: Map<number, { raw: Uint8Array; point: BPoint }>;
}

const prepared = new Map<BackendName, WeakMap<PublicKeyPackage, PreparedPublic>>();

function preparePublic(b: CurveBackend, pub: PublicKeyPackage): PreparedPublic {
  let cache = prepared.get(b.name);
  if (!cache) {
    cache = new WeakMap();
    prepared.set(b.name, cache);
  }
  const gk = groupPublicKey(pub);
  let e = cache.get(pub);
  if (!e || !bytesEqual(e.groupKey, gk)) {
    assertCompressed(gk, 'group public key');
    const evenKey = evenEncoding(gk);
    e = {
      groupKey: Uint8Array.from(gk),
      odd: gk[0] === 3,
      evenKey,
      P: b.decode(evenKey, 'group public key'),
      shares: new Map(),
    };
    cache.set(pub, e);
  }
  return e;
}

/** Verifying share of `id`, negated when the group key has an odd Y. */
function preparedShare(b: CurveBackend, pub: PublicKeyPackage, p: PreparedPublic, id: number): BPoint {
  const raw = pub.verifyingShares.get(id);
  if (!raw) throw new CryptoError('invalid_package', `identifier ${id} is not a member`);
  const hit = p.shares.get(id);
  if (hit && bytesEqual(hit.raw, raw)) return hit.point;
  assertCompressed(raw, `verifying share of ${id}`);
  const point = b.decode(p.odd ? flipEncoding(raw) : raw, `verifying share of ${id}`);
  p.shares.set(id, { raw: Uint8Array.from(raw), point });
  return point;
}

function entries(pkg: SigningPackage): CommitmentEntry[] {
  return pkg.commitments
    .map((c) => ({ id: BigInt(c.identifier), hiding: c.hiding, binding: c.binding }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

function context(b: CurveBackend, p: PreparedPublic, pkg: SigningPackage): SigningContext {
  return signingContext(b, p.evenKey, entries(pkg), pkg.message);
}

// ---------- round 1 ----------

/**
 * Round 1: fresh nonces (RFC 9591 nonce_generate: 32 bytes of OS randomness hashed with
 * the signing share) and their public commitments. The nonces carry their commitments, so
 * round 2 compares instead of recomputing them. `rng` exists only for test vectors.
 */
export function commit(
  key: KeyPackage,
  rng?: (len?: number) => Uint8Array,
): { nonces: SigningNonces; commitments: SigningCommitments } {
  const r = roundOne(
    cryptoBackend(),
    key.signingShare,
    rng ?? ((len = 32) => new Uint8Array(randomBytes(len))),
  );
  const commitments: SigningCommitments = {
    identifier: key.identifier,
    hiding: r.hidingCommitment,
    binding: r.bindingCommitment,
  };
  return {
    nonces: {
      hiding: r.hiding,
      binding: r.binding,
      commitments: {
        identifier: key.identifier,
        hiding: r.hidingCommitment.slice(),
        binding: r.bindingCommitment.slice(),
      },
    },
    commitments,
  };
}

/** Structural checks of a signing package against a key (no secrets involved). */
export function checkSigningPackage(pub: PublicKeyPackage, pkg: SigningPackage): void {
  const ids = sortedUniqueIds(
    pkg.commitments.map((c) => c.identifier),
    'signing package identifiers',
  );
  if (ids.length !== pub.threshold) {
    throw new CryptoError('invalid_package', `signing package needs exactly ${pub.threshold} commitments`);
  }
  for (const id of ids) {
    if (!pub.verifyingShares.has(id))
      throw new CryptoError('invalid_package', `identifier ${id} is not a member`);
  }
}

// ---------- round 2 ----------

const CANNOT_SIGN = 'cannot sign: nonces used or not matching the commitment';

/**
 * Round 2: this member's signature share. `nonces` are zero-filled afterwards, so the same
 * nonce object can never sign twice.
 */
export function signShare(key: KeyPackage, nonces: SigningNonces, pkg: SigningPackage): SignatureShare {
  checkSigningPackage(key.public, pkg);
  const own = pkg.commitments.find((c) => c.identifier === key.identifier);
  if (!own) throw new CryptoError('invalid_package', 'own identifier is not in the signing package');
  const b = cryptoBackend();
  let hiding: bigint;
  let binding: bigint;
  try {
    hiding = S.parse(nonces.hiding, 'hiding nonce', true);
    binding = S.parse(nonces.binding, 'binding nonce', true);
  } catch {
    throw new CryptoError('invalid_package', CANNOT_SIGN); // zero-filled: already used
  }
  // The coordinator must have put this member's own commitments in the package.
  const mine =
    nonces.commitments && nonces.commitments.identifier === key.identifier
      ? nonces.commitments
      : { hiding: b.encode(b.mulBase(nonces.hiding)), binding: b.encode(b.mulBase(nonces.binding)) };
  if (!bytesEqual(mine.hiding, own.hiding) || !bytesEqual(mine.binding, own.binding)) {
    throw new CryptoError('invalid_package', CANNOT_SIGN);
  }
  const p = preparePublic(b, key.public);
  let ctx: SigningContext;
  try {
    ctx = context(b, p, pkg);
  } catch (e) {
    throw new CryptoError(
      'invalid_package',
      `cannot sign: ${isCryptoError(e) ? e.message : 'bad signing package'}`,
    );
  }
  const s = S.parse(key.signingShare, 'signing share', true);
  const z = signShareCore(ctx, BigInt(key.identifier), p.odd ? S.neg(s) : s, hiding, binding);
  nonces.hiding.fill(0);
  nonces.binding.fill(0);
  return { identifier: key.identifier, share: S.toBytes(z) };
}

// ---------- verification and aggregation ----------

export function verifyShare(pub: PublicKeyPackage, pkg: SigningPackage, share: SignatureShare): boolean {
  try {
    checkSigningPackage(pub, pkg);
    const z = S.parse(share.share, 'signature share', false);
    const b = cryptoBackend();
    const p = preparePublic(b, pub);
    return verifyShareCore(
      b,
      context(b, p, pkg),
      BigInt(share.identifier),
      preparedShare(b, pub, p, share.identifier),
      z,
    );
  } catch {
    return false;
  }
}

/**
 * Aggregate shares into a 64-byte BIP-340 signature and verify it. On failure every share
 * is verified on its own and the members whose shares are invalid are named as culprits.
 */
export function aggregate(
  pub: PublicKeyPackage,
  pkg: SigningPackage,
  shares: readonly SignatureShare[],
): Uint8Array {
  checkSigningPackage(pub, pkg);
  const want = pkg.commitments.map((c) => c.identifier);
  const got = sortedUniqueIds(
    shares.map((s) => s.identifier),
    'share identifiers',
  );
  if (got.length !== want.length || got.some((id, i) => id !== want[i])) {
    throw new CryptoError('invalid_package', 'shares must come from exactly the signers in the package');
  }
  const b = cryptoBackend();
  const p = preparePublic(b, pub);
  let ctx: SigningContext;
  try {
    ctx = context(b, p, pkg);
  } catch (e) {
    throw new CryptoError(
      'aggregate_failed',
      `aggregation failed: ${isCryptoError(e) ? e.message : 'bad package'}`,
    );
  }
  const values = shares.map((s) => {
    try {
      return S.parse(s.share, 'signature share', false);
    } catch {
      return undefined;
    }
  });
  const sig = values.every((v) => v !== undefined) ? aggregateCore(b, ctx, p.P, values as bigint[]) : null;
  if (sig) return sig;
  const bad = shares
    .filter((s, i) => {
      const z = values[i];
      if (z === undefined) return true;
      try {
        return !verifyShareCore(b, ctx, BigInt(s.identifier), preparedShare(b, pub, p, s.identifier), z);
      } catch {
        return true;
      }
    })
    .map((s) => s.identifier);
  throw new CryptoError(
    'aggregate_failed',
    bad.length ? `invalid signature shares from ${bad.join(', ')}` : 'aggregate signature does not verify',
    bad,
  );
}

/** BIP-340 verification against a 32-byte x-only key. */
export function verifySignature(sig: Uint8Array, message: Uint8Array, xOnlyKey: Uint8Array): boolean {
  return cryptoBackend().schnorrVerify(sig, message, xOnlyKey);
}
