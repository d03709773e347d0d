import type { Identifier } from './identifier.js';

/** How a key's group public key relates to the key that was generated or imported. */
export type KeyTweak =
  | { kind: 'none' }
  | {
      /** BIP-341 TapTweak: Q = P_even + H_TapTweak(x(P) || merkle_root)·G. */
      kind: 'taproot';
      /** The untweaked (internal) group key P, 33-byte compressed. */
      internalKey: Uint8Array;
      /** Empty for BIP-86 (key path only), else the 32-byte script tree root. */
      merkleRoot: Uint8Array;
    };

/** Public data shared by every member of a key. */
export interface PublicKeyPackage {
  threshold: number;
  n: number;
  /** VSS commitments (33-byte compressed points); `commitments[0]` is the group public key. */
  commitments: Uint8Array[];
  /** Verifying share (33-byte compressed point) of each member, by identifier. */
  verifyingShares: Map<Identifier, Uint8Array>;
  tweak: KeyTweak;
}

/** One member's secret share with the public package it belongs to. */
export interface KeyPackage {
  identifier: Identifier;
  /** 32-byte scalar. Secret. */
  signingShare: Uint8Array;
  public: PublicKeyPackage;
}

/** Secret round-1 nonces of one member for one attempt. Never serialized. */
export interface SigningNonces {
  hiding: Uint8Array;
  binding: Uint8Array;
  /**
   * The public commitments `commit()` made for these nonces (kept beside them so round 2
   * compares instead of recomputing hiding·G and binding·G). Absent: recomputed.
   */
  commitments?: SigningCommitments;
}

export interface SigningCommitments {
  identifier: Identifier;
  hiding: Uint8Array;
  binding: Uint8Array;
}

/** What round 2 signs: the message and exactly the commitments of the chosen signers. */
export interface SigningPackage {
  message: Uint8Array;
  /** Sorted by identifier, no duplicates. */
  commitments: SigningCommitments[];
}

export interface SignatureShare {
  identifier: Identifier;
  /** 32-byte scalar. */
  share: Uint8Array;
}

/** DKG round 1 broadcast. */
export interface DkgRound1Package {
  identifier: Identifier;
  /** `threshold` compressed points. */
  commitment: Uint8Array[];
  /** 64-byte Schnorr proof of knowledge of the constant term. */
  proofOfKnowledge: Uint8Array;
}

/** DKG round 2 package from `sender` for `receiver`. Secret: sent only encrypted. */
export interface DkgRound2Package {
  sender: Identifier;
  receiver: Identifier;
  signingShare: Uint8Array;
}

/**
 * Proactive refresh round 1 broadcast (`refresh.ts`): commitments to the coefficients
 * a_1..a_{t−1} of a polynomial whose constant term is zero.
 */
export interface RefreshRound1Package {
  identifier: Identifier;
  /** t−1 compressed points: commitments to a_1..a_{t−1} (a_0 = 0 is implicit, not sent). */
  commitment: Uint8Array[];
}

/**
 * Share repair step 1 output of one helper (`repair.ts`): its part λ·share split into one random
 * delta per helper, with each delta's public image so that a bad helper can be named.
 */
export interface RepairDeltas {
  helper: Identifier;
  /** Secret delta for each helper (including itself), keyed by receiving helper. Sent only encrypted. */
  deltas: Map<Identifier, Uint8Array>;
  /** Public δ·G for each delta, keyed by receiving helper. */
  commitments: Map<Identifier, Uint8Array>;
}
