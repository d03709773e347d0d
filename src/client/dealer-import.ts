/**
 * Client side of a dealer import (DESIGN §8): an existing secret is split HERE, in the
 * client process, and each share is sealed to its signer's identity key from a fresh
 * ephemeral key (sealBox, IMPORT_BOX_INFO, importBoxAad binding key id, identifier and group
 * key). The coordinator relays the sealed shares and the public package; it never sees the
 * secret or a share. The key id is chosen here because the boxes are bound to it.
 */
import { creationPolicyHash, normalizePolicy } from '../approvals/policy.js';
import { type SealedBox, sealBox } from '../crypto/box.js';
import { dealerSplit } from '../crypto/dealer.js';
import {
  decodePublicKeyPackage,
  encodePublicKeyPackage,
  type PublicKeyPackageJson,
} from '../crypto/encoding.js';
import { fromHex, toHex, wipe } from '../crypto/hex.js';
import { generateIdentityKey, softwareIdentity, verifyDigest } from '../crypto/identity.js';
import { groupPublicKey, xOnlyGroupKey } from '../crypto/signing.js';
import { newId } from '../domain/ids.js';
import { IMPORT_BOX_INFO, importBoxAad, importCertificateDigest } from '../protocol/transcript.js';
import type { ImportKeyRequest } from './api-client.js';

export interface ImportRecipient {
  /** Coordinator's signer id. */
  id: string;
  /** Signer identity key, x-only hex. */
  identity: string;
}

export function newKeyId(): string {
  return newId('key');
}

/**
 * Split `secret` into shares for `signers` (identifier i+1 goes to signers[i]) and seal each.
 * Wipes the shares; the caller wipes `secret`.
 */
export function prepareDealerImport(o: {
  secret: Uint8Array;
  threshold: number;
  signers: readonly ImportRecipient[];
  keyId: string;
  label?: string;
  /**
   * The key's steward approval policy (DESIGN §13; npub or hex stewards): normalized here and
   * bound into every sealed share, so a coordinator can neither drop nor change it.
   */
  approvalPolicy?: unknown;
}): { body: ImportKeyRequest & { key_id: string }; xOnlyPublicKey: string } {
  const policy = o.approvalPolicy === undefined ? undefined : normalizePolicy(o.approvalPolicy);
  const policyHash = creationPolicyHash(o.keyId, policy ? { revision: 0, policy } : null);
  const { shares, public: pub } = dealerSplit(o.secret, o.threshold, o.signers.length);
  const members = o.signers.map((s, i) => ({ identifier: i + 1, identity: s.identity }));
  try {
    const gk = groupPublicKey(pub);
    const sealed: SealedBox[] = o.signers.map((s, i) => {
      const share = shares[i]!;
      if (share.identifier !== i + 1) throw new Error('dealer shares out of order');
      // A fresh sender key per share: nobody, not even this process later, can open the box again.
      const secret = generateIdentityKey();
      const ephemeral = softwareIdentity(secret);
      wipe(secret);
      try {
        return sealBox(
          ephemeral,
          fromHex(s.identity, `identity of signer ${s.id}`, 32),
          share.signingShare,
          importBoxAad(o.keyId, i + 1, gk, pub.tweak, members, policyHash),
          IMPORT_BOX_INFO,
        );
      } finally {
        ephemeral.dispose();
      }
    });
    return {
      body: {
        key_id: o.keyId,
        signers: o.signers.map((s) => s.id),
        public_key_package: encodePublicKeyPackage(pub),
        sealed_shares: sealed,
        ...(o.label !== undefined ? { label: o.label } : {}),
        ...(policy ? { approval_policy: policy } : {}),
      },
      xOnlyPublicKey: toHex(xOnlyGroupKey(pub)),
    };
  } finally {
    for (const s of shares) wipe(s.signingShare);
  }
}

/**
 * Accept an import only if every member signed its certificate for what was split here: the
 * key id, its identifier, the group key, its verifying share and the member list — each under
 * the identity key the operator pinned (not one the coordinator says). Throws naming the first
 * member that did not.
 */
export function verifyImportCertificates(o: {
  keyId: string;
  publicKeyPackage: PublicKeyPackageJson;
  /** The members the shares were sealed to, identity keys as pinned by the operator. */
  members: readonly { identifier: number; identity: string }[];
  certificates: readonly {
    identifier: number;
    identity: string;
    verifying_share: string;
    certificate: string;
  }[];
  /** The approval policy the shares were sealed with (prepareDealerImport), if any. */
  approvalPolicy?: unknown;
}): void {
  const pub = decodePublicKeyPackage(o.publicKeyPackage);
  const policyHash = creationPolicyHash(
    o.keyId,
    o.approvalPolicy === undefined ? null : { revision: 0, policy: normalizePolicy(o.approvalPolicy) },
  );
  const gk = groupPublicKey(pub);
  const byId = new Map(o.certificates.map((c) => [c.identifier, c]));
  for (const m of o.members) {
    const c = byId.get(m.identifier);
    const vs = pub.verifyingShares.get(m.identifier)!;
    const ok =
      c !== undefined &&
      c.identity === m.identity &&
      c.verifying_share === toHex(vs) &&
      verifyDigest(
        fromHex(c.certificate, 'certificate', 64),
        importCertificateDigest(o.keyId, m.identifier, gk, vs, o.members, policyHash),
        fromHex(m.identity, 'identity', 32),
      );
    if (!ok) {
      throw new Error(
        `member ${m.identifier} (${m.identity.slice(0, 16)}…) did not certify this import under its pinned identity key; do not use key ${o.keyId}`,
      );
    }
  }
  if (o.certificates.length !== o.members.length)
    throw new Error('the coordinator returned extra certificates');
}
