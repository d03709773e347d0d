import { randomBytes } from 'node:crypto';
import { cryptoBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { polyEval, secretPolynomial, vssEval, vssVerify } from './frost.js';
import { parseScalar } from './group.js';
import { bytesEqual, wipe } from './hex.js';
import { MAX_SIGNERS } from './identifier.js';
import * as S from './scalar.js';
import type { KeyPackage, PublicKeyPackage } from './types.js';

export function assertThreshold(threshold: number, n: number): void {
  if (!Number.isInteger(n) || n < 2 || n > MAX_SIGNERS) {
    throw new CryptoError('invalid_package', `n must be an integer from 2 to ${MAX_SIGNERS}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > n) {
    throw new CryptoError('invalid_package', 'threshold must be an integer from 2 to n');
  }
}

const defaultRng = (len = 32) => new Uint8Array(randomBytes(len));

/**
 * Trusted-dealer split of a given 32-byte secret into `n` shares (identifiers 1..n), any
 * `threshold` of which sign for secret·G. The output is untweaked (`tweak.kind = 'none'`):
 * an imported Nostr key keeps its public key. Each share is checked against the
 * commitments (RFC 9591 `vss_verify`) before it is returned. With the same `rng`, the same
 * polynomial as noble's `schnorr_FROST.trustedDealer`.
 */
export function dealerSplit(
  secret: Uint8Array,
  threshold: number,
  n: number,
  rng: (len?: number) => Uint8Array = defaultRng,
): { public: PublicKeyPackage; shares: KeyPackage[] } {
  assertThreshold(threshold, n);
  const b = cryptoBackend();
  const poly = secretPolynomial(b, threshold, parseScalar(secret, 'secret'), rng);
  const commitments = poly.commitment.map((c) => b.encode(c));
  const verifyingShares = new Map<number, Uint8Array>();
  const secrets: Uint8Array[] = [];
  try {
    for (let id = 1; id <= n; id++) {
      const share = S.toBytes(polyEval(poly.coefficients, BigInt(id)));
      secrets.push(share);
      if (!vssVerify(b, BigInt(id), share, poly.commitment)) {
        throw new CryptoError('invalid_share', `dealer share ${id} does not match the commitments`);
      }
      verifyingShares.set(id, b.encode(b.mulBase(share)));
    }
  } catch (e) {
    wipe(...secrets);
    throw e;
  } finally {
    poly.coefficients.fill(0n);
  }
  const pub: PublicKeyPackage = { threshold, n, commitments, verifyingShares, tweak: { kind: 'none' } };
  return {
    public: pub,
    shares: secrets.map((signingShare, i) => ({ identifier: i + 1, signingShare, public: pub })),
  };
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
  parseScalar(key.signingShare, 'signing share');
  const b = cryptoBackend();
  const image = b.mulBase(key.signingShare);
  if (!bytesEqual(b.encode(image), vs)) {
    throw new CryptoError(
      'invalid_share',
      `signing share of ${key.identifier} does not match its verifying share`,
    );
  }
  const commitments = key.public.commitments.map((c, i) => b.decode(c, `commitment ${i}`));
  const expected = vssEval(b, BigInt(key.identifier), commitments);
  if (!expected || !b.equals(expected, image)) {
    throw new CryptoError(
      'invalid_share',
      `signing share of ${key.identifier} does not match the commitments`,
    );
  }
}
