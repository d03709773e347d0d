/**
 * Digests that bind what signers certify: the DKG transcript (every member sees the same
 * ceremony, members and round-1 packages), the certificate over the transcript and the
 * resulting group key, the dealer-import acknowledgement, and the associated data that
 * binds each sealed box to its place in a ceremony.
 */

import { lengthPrefixed, taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { concatBytes, fromHex } from '../crypto/hex.js';
import type { DkgRound1Package } from '../crypto/types.js';

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

export interface TranscriptInput {
  ceremonyId: string;
  keyId: string;
  threshold: number;
  n: number;
  participants: readonly { identifier: number; identity: string }[];
  round1: readonly DkgRound1Package[];
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

export function importCertificateDigest(
  keyId: string,
  identifier: number,
  groupPublicKey: Uint8Array,
  verifyingShare: Uint8Array,
): Uint8Array {
  return taggedFieldsHash('floe/import-certificate/v1', [
    utf8(keyId),
    u16(identifier),
    groupPublicKey,
    verifyingShare,
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

export function importBoxAad(keyId: string, identifier: number, groupPublicKey: Uint8Array): Uint8Array {
  return lengthPrefixed('floe/dealer-share-aad/v1', [utf8(keyId), u16(identifier), groupPublicKey]);
}
