/**
 * Digests that bind what signers certify: the DKG transcript (every member sees the same
 * ceremony, members and round-1 packages), the certificate over the transcript and the
 * resulting group key, the dealer-import acknowledgement, and the associated data that
 * binds each sealed box to its place in a ceremony.
 */

import { lengthPrefixed, taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { concatBytes, fromHex } from '../crypto/hex.js';
import type { DkgRound1Package, KeyTweak, PublicKeyPackage, SigningPackage } from '../crypto/types.js';

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

export interface TranscriptInput {
  ceremonyId: string;
  keyId: string;
  threshold: number;
  n: number;
  participants: readonly { identifier: number; identity: string }[];
  round1: readonly DkgRound1Package[];
  /**
   * policyStateHash of the key's approval policy at creation (src/approvals/policy.ts), when it
   * has one: every member certifies it with the transcript (DESIGN §13). Absent: as before.
   */
  approvalPolicyHash?: Uint8Array;
}

export function dkgTranscriptHash(t: TranscriptInput): Uint8Array {
  const parts = [...t.participants].sort((a, b) => a.identifier - b.identifier);
  const r1 = [...t.round1].sort((a, b) => a.identifier - b.identifier);
  return taggedFieldsHash('floe/dkg-transcript/v1', [
    utf8(t.ceremonyId),
    utf8(t.keyId),
    u32be(t.threshold),
    u32be(t.n),
    concatBytes(...parts.map((p) => concatBytes(u16(p.identifier), fromHex(p.identity, 'identity', 32)))),
    ...r1.map((p) => lengthPrefixed('round1', [u16(p.identifier), ...p.commitment, p.proofOfKnowledge])),
    ...(t.approvalPolicyHash ? [lengthPrefixed('approval_policy', [t.approvalPolicyHash])] : []),
  ]);
}

export function dkgCertificateDigest(
  ceremonyId: string,
  keyId: string,
  transcriptHash: Uint8Array,
  groupPublicKey: Uint8Array,
): Uint8Array {
  return taggedFieldsHash('floe/dkg-certificate/v1', [
    utf8(ceremonyId),
    utf8(keyId),
    transcriptHash,
    groupPublicKey,
  ]);
}

export interface Member {
  identifier: number;
  /** x-only identity key, hex. */
  identity: string;
}

/** Binds who the members of a key are (identifier and identity key of each). */
export function membersHash(members: readonly Member[]): Uint8Array {
  const sorted = [...members].sort((a, b) => a.identifier - b.identifier);
  return taggedFieldsHash('floe/key-members/v1', [
    concatBytes(...sorted.map((m) => concatBytes(u16(m.identifier), fromHex(m.identity, 'identity', 32)))),
  ]);
}

/**
 * What a member signs when it accepted an imported share: the key, its identifier, the group
 * key, its verifying share and the member list it was told (v2 adds the members to v1).
 */
export function importCertificateDigest(
  keyId: string,
  identifier: number,
  groupPublicKey: Uint8Array,
  verifyingShare: Uint8Array,
  members: readonly Member[],
  /** policyStateHash of the key's approval policy, when it has one (DESIGN §13). */
  approvalPolicyHash?: Uint8Array,
): Uint8Array {
  return taggedFieldsHash('floe/import-certificate/v2', [
    utf8(keyId),
    u16(identifier),
    groupPublicKey,
    verifyingShare,
    membersHash(members),
    ...(approvalPolicyHash ? [lengthPrefixed('approval_policy', [approvalPolicyHash])] : []),
  ]);
}

export const SIGNING_PACKAGE_TAG = 'floe/signing-package/v1';

/**
 * What a signer signs over when it releases a share (DESIGN §11): the attempt, the intent, the
 * per-session tweak and the exact signing package (message and every commitment). A signed
 * round-2 response carries it, so a share can only ever be judged against the package that
 * signer saw: a coordinator that showed it another package cannot frame it.
 */
export function signingPackageHash(o: {
  sessionId: string;
  attemptId: Uint8Array;
  intentHash: Uint8Array;
  tweak: Uint8Array | null;
  pkg: SigningPackage;
}): Uint8Array {
  const commitments = [...o.pkg.commitments].sort((a, b) => a.identifier - b.identifier);
  return taggedFieldsHash(SIGNING_PACKAGE_TAG, [
    utf8(o.sessionId),
    o.attemptId,
    o.intentHash,
    o.tweak ?? new Uint8Array(0),
    o.pkg.message,
    concatBytes(...commitments.map((c) => concatBytes(u16(c.identifier), c.hiding, c.binding))),
  ]);
}

/** Names one sealed box exactly (sender key, nonce, ciphertext): what a complaint is about. */
export function dkgBoxHash(box: { sender: string; nonce: string; ciphertext: string }): Uint8Array {
  return taggedFieldsHash('floe/dkg-box/v1', [
    fromHex(box.sender, 'box.sender', 32),
    fromHex(box.nonce, 'box.nonce', 12),
    fromHex(box.ciphertext, 'box.ciphertext'),
  ]);
}

export const DKG_BOX_INFO = 'floe/dkg-round2/v1';
export const IMPORT_BOX_INFO = 'floe/dealer-share/v1';

export function dkgBoxAad(ceremonyId: string, keyId: string, sender: number, receiver: number): Uint8Array {
  return lengthPrefixed('floe/dkg-round2-aad/v1', [
    utf8(ceremonyId),
    utf8(keyId),
    u16(sender),
    u16(receiver),
  ]);
}

/** The tweak of a public key package as bytes: empty (none), or internal key ‖ merkle root. */
export function tweakBytes(t: KeyTweak): Uint8Array {
  return t.kind === 'none' ? new Uint8Array(0) : concatBytes(t.internalKey, t.merkleRoot);
}

/**
 * Associated data of a dealer share's box (v2): the key id, the receiver's identifier, the
 * group key, the tweak and the member list the client intended. A coordinator that relays the
 * box with another tweak or other members gets a box that does not open.
 */
export function importBoxAad(
  keyId: string,
  identifier: number,
  groupPublicKey: Uint8Array,
  tweak: KeyTweak,
  members: readonly Member[],
  /**
   * policyStateHash of the key's approval policy, when it has one (v3): a coordinator that
   * drops or changes the policy the client intended gets a box that does not open.
   */
  approvalPolicyHash?: Uint8Array,
): Uint8Array {
  const fields = [utf8(keyId), u16(identifier), groupPublicKey, tweakBytes(tweak), membersHash(members)];
  return approvalPolicyHash
    ? lengthPrefixed('floe/dealer-share-aad/v3', [...fields, approvalPolicyHash])
    : lengthPrefixed('floe/dealer-share-aad/v2', fields);
}

// ---------- share refresh (src/signer/refresh.ts, src/coordinator/refresh.ts) ----------

export const REFRESH_BOX_INFO = 'floe/refresh-round2/v1';

/** Associated data of a refresh sub-share's box: its ceremony, key, generation, sender and receiver. */
export function refreshBoxAad(
  ceremonyId: string,
  keyId: string,
  generation: number,
  sender: number,
  receiver: number,
): Uint8Array {
  return lengthPrefixed('floe/refresh-round2-aad/v1', [
    utf8(ceremonyId),
    utf8(keyId),
    u32be(generation),
    u16(sender),
    u16(receiver),
  ]);
}

/** Binds a whole public key package: threshold, n, commitments, every verifying share, tweak. */
export function publicKeyPackageHash(p: PublicKeyPackage): Uint8Array {
  const ids = [...p.verifyingShares.keys()].sort((a, b) => a - b);
  return taggedFieldsHash('floe/public-key-package/v1', [
    u32be(p.threshold),
    u32be(p.n),
    concatBytes(...p.commitments),
    concatBytes(...ids.map((id) => concatBytes(u16(id), p.verifyingShares.get(id)!))),
    tweakBytes(p.tweak),
  ]);
}

/**
 * What a member signs at the end of a refresh's round 3: the ceremony, the key, the new
 * generation, the members it refreshed with and the new public package it derived. Every member
 * commits only with all n certificates over the same digest.
 */
export function refreshCertificateDigest(
  ceremonyId: string,
  keyId: string,
  generation: number,
  members: readonly Member[],
  publicPackageHash: Uint8Array,
): Uint8Array {
  return taggedFieldsHash('floe/refresh-certificate/v1', [
    utf8(ceremonyId),
    utf8(keyId),
    u32be(generation),
    membersHash(members),
    publicPackageHash,
  ]);
}

// ---------- share repair (src/signer/repair.ts, src/coordinator/repair.ts) ----------

export const REPAIR_DELTA_INFO = 'floe/repair-delta/v1';
export const REPAIR_SIGMA_INFO = 'floe/repair-sigma/v1';

/** Associated data of a repair box (a delta between helpers, or a sigma to the new member). */
export function repairBoxAad(
  ceremonyId: string,
  keyId: string,
  sender: number,
  receiver: string,
): Uint8Array {
  return lengthPrefixed('floe/repair-box-aad/v1', [
    utf8(ceremonyId),
    utf8(keyId),
    u16(sender),
    utf8(receiver),
  ]);
}

/**
 * What helpers sign (and the new member certifies): the repair of `lost` in this key at this
 * generation, the identity it replaces, the members after it, and the public package.
 */
export function repairStatementDigest(o: {
  ceremonyId: string;
  keyId: string;
  generation: number;
  lost: number;
  replaced: string;
  members: readonly Member[];
  publicPackageHash: Uint8Array;
}): Uint8Array {
  return taggedFieldsHash('floe/repair-statement/v1', [
    utf8(o.ceremonyId),
    utf8(o.keyId),
    u32be(o.generation),
    u16(o.lost),
    fromHex(o.replaced, 'replaced', 32),
    membersHash(o.members),
    o.publicPackageHash,
  ]);
}

/** What the new member certifies after a repair: the statement, and the verifying share it holds the share of. */
export function repairCertificateDigest(statement: Uint8Array, verifyingShare: Uint8Array): Uint8Array {
  return taggedFieldsHash('floe/repair-certificate/v1', [statement, verifyingShare]);
}
