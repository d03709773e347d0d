import { fromEnginePublic, suite } from './engine.js';
import { CryptoError } from './errors.js';
import { Point, parseScalar } from './group.js';
import { bytesEqual } from './hex.js';
import { fromEngineId, MAX_SIGNERS, toEngineId } from './identifier.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

export function assertThreshold(threshold: number, n: number): void {
  if (!Number.isInteger(n) || n < 2 || n > MAX_SIGNERS) {
    throw new CryptoError('invalid_package', `n must be an integer from 2 to ${MAX_SIGNERS}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) {
    throw new CryptoError('invalid_package', 'threshold must be an integer from 2 to n');
  }
}

/**
 * Trusted-dealer split of a given 32-byte secret into `n` shares (identifiers 1..n), any
 * `threshold` of which sign for secret·G. The output is untweaked (`tweak.kind = 'none'`):
 * an imported Nostr key keeps its public key. Each share is checked against the
 * commitments (RFC 9591 `vss_verify`) before it is returned.
 */
export function dealerSplit(
  secret: Uint8Array,
  threshold: number,
  n: number,
  rng?: (len?: number) => Uint8Array,
): { public: PublicKeyPackage; shares: KeyPackage[] } {
  assertThreshold(threshold, n);
  parseScalar(secret, 'secret');
  const ids = Array.from({ length: n }, (_, i) => toEngineId(i + 1));
  const deal = suite.trustedDealer({ min: threshold, max: n }, ids, secret, rng);
  const pub = fromEnginePublic(deal.public, { kind: 'none' });
  const shares: KeyPackage[] = [];
  for (const [engineId, share] of Object.entries(deal.secretShares)) {
    suite.validateSecret(share, deal.public);
    shares.push({
      identifier: fromEngineId(engineId),
      signingShare: Uint8Array.from(share.signingShare),
      public: pub,
    });
    share.signingShare.fill(0);
  }
  shares.sort((a, b) => a.identifier - b.identifier);
  return { public: pub, shares };
}

/**
 * Check that a share is consistent with its public package: the RFC 9591 `vss_verify`
 * check against the commitments, and its public image equals the recorded verifying share.
 * A Taproot tweak adds t to the polynomial's constant term (and to every share), so
 * tweaked packages pass the same check.
 */
export function validateKeyPackage(key: KeyPackage): void {
  const vs = key.public.verifyingShares.get(key.identifier);
  if (!vs) throw new CryptoError('invalid_package', `no verifying share for identifier ${key.identifier}`);
  const s = parseScalar(key.signingShare, 'signing share');
  if (!bytesEqual(Point.BASE.multiply(s).toBytes(true), vs)) {
    throw new CryptoError(
      'invalid_share',
      `signing share of ${key.identifier} does not match its verifying share`,
    );
  }
  try {
    suite.validateSecret(
      { identifier: toEngineId(key.identifier), signingShare: key.signingShare },
      {
        signers: { min: key.public.threshold, max: key.public.n },
        commitments: key.public.commitments,
        verifyingShares: {},
      },
    );
  } catch {
    throw new CryptoError(
      'invalid_share',
      `signing share of ${key.identifier} does not match the commitments`,
    );
  }
}
