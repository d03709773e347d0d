/**
 * Drives ceremonies and signings over real SignerClients, as a minimal coordinator would
 * (the coordinator proper adds persistence, retries and blame). For signer-level tests.
 */
import { randomBytes } from 'node:crypto';
import type { SignerClient } from '../../src/coordinator/signer-client.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodePublicKeyPackage,
  decodeSignatureShare,
  encodePublicKeyPackage,
  fromHex,
  generateIdentityKey,
  groupPublicKey,
  type PublicKeyPackage,
  sealBox,
  softwareIdentity,
  toHex,
} from '../../src/crypto/index.js';
import { IMPORT_BOX_INFO, importBoxAad } from '../../src/protocol/transcript.js';
import { openRequest } from './sign-requests.js';

export async function dkgOver(clients: SignerClient[], t: number, keyId: string, ceremonyId = `c-${keyId}`) {
  const participants = clients.map((c, i) => ({ identifier: i + 1, identity: c.signerIdentity }));
  const r1 = await Promise.all(
    clients.map((c, i) =>
      c.call('dkgRound1', {
        ceremony_id: ceremonyId,
        key_id: keyId,
        threshold: t,
        n: clients.length,
        identifier: i + 1,
        participants,
      }),
    ),
  );
  const round1 = r1.map((r) => r.round1);
  const r2 = await Promise.all(clients.map((c) => c.call('dkgRound2', { ceremony_id: ceremonyId, round1 })));
  const r3 = await Promise.all(
    clients.map((c, i) =>
      c.call('dkgRound3', {
        ceremony_id: ceremonyId,
        boxes: r2.flatMap((r) =>
          r.boxes.filter((b) => b.receiver === i + 1).map((b) => ({ sender: r.identifier, box: b.box })),
        ),
      }),
    ),
  );
  const certificates = r3.map((r) => ({
    identifier: r.identifier,
    transcript_hash: r.transcript_hash,
    group_public_key: r.public_key_package.commitments[0]!,
    certificate: r.certificate,
  }));
  await Promise.all(
    clients.map((c) => c.call('dkgCertify', { ceremony_id: ceremonyId, key_id: keyId, certificates })),
  );
  return decodePublicKeyPackage(r3[0]!.public_key_package);
}

export async function importOver(
  clients: SignerClient[],
  t: number,
  keyId: string,
  secret = new Uint8Array(randomBytes(32)),
) {
  const { shares, public: pub } = dealerSplit(secret, t, clients.length);
  const gk = groupPublicKey(pub);
  const members = clients.map((c, i) => ({ identifier: i + 1, identity: c.signerIdentity }));
  const accepted = await Promise.all(
    clients.map((c, i) =>
      c.call('keyImport', {
        key_id: keyId,
        identifier: i + 1,
        members,
        public_key_package: encodePublicKeyPackage(pub),
        sealed_share: sealBox(
          softwareIdentity(generateIdentityKey()),
          fromHex(c.signerIdentity, 'id', 32),
          shares[i]!.signingShare,
          importBoxAad(keyId, i + 1, gk, pub.tweak, members),
          IMPORT_BOX_INFO,
        ),
      }),
    ),
  );
  const certificates = accepted.map((a) => ({
    identifier: a.identifier,
    verifying_share: a.verifying_share,
    certificate: a.certificate,
  }));
  await Promise.all(clients.map((c) => c.call('keyImportConfirm', { key_id: keyId, members, certificates })));
  return { pub, shares };
}

/** Signs with the clients given (their index + 1 is their identifier in `ids`). */
export async function signOver(
  signers: { client: SignerClient; id: number }[],
  pub: PublicKeyPackage,
  keyId: string,
  message = new Uint8Array(randomBytes(32)),
  sessionId = `s-${toHex(randomBytes(6))}`,
  attempt = 1,
) {
  const ids = signers.map((s) => s.id).sort((a, b) => a - b);
  const open = openRequest({ keyId, sessionId, attempt, included: ids, intent: message });
  const opens = await Promise.all(signers.map((s) => s.client.call('signOpen', open)));
  const signing_package = {
    v: 1 as const,
    type: 'signing_package' as const,
    message: toHex(message),
    commitments: opens.map((o) => o.commitments).sort((a, b) => a.identifier - b.identifier),
  };
  const round2 = { key_id: keyId, session_id: sessionId, attempt_id: open.attempt_id, signing_package };
  const shares = await Promise.all(signers.map((s) => s.client.call('signRound2', round2)));
  const sig = aggregate(
    pub,
    { message, commitments: signing_package.commitments.map(decodeCommitments) },
    shares.map((s) => decodeSignatureShare(s.share)),
  );
  return { sig, message, open, round2 };
}
