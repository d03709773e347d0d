/**
 * Typed errors of the crypto layer. Messages name what was wrong with an input
 * (its field and the rule it broke) and never include secret material.
 */
export type CryptoErrorCode =
  | 'invalid_encoding'
  | 'unsupported_version'
  | 'invalid_point'
  | 'invalid_scalar'
  | 'invalid_identifier'
  | 'invalid_package'
  | 'invalid_share'
  | 'invalid_signature'
  | 'aggregate_failed'
  | 'dkg_failed';

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  /** Identifiers blamed for the failure (aggregation / DKG), if any. */
  readonly culprits: number[];

  constructor(code: CryptoErrorCode, message: string, culprits: number[] = []) {
    super(message);
    this.name = 'CryptoError';
    this.code = code;
    this.culprits = culprits;
  }
}

export function isCryptoError(e: unknown): e is CryptoError {
  return e instanceof CryptoError;
}
