/**
 * DKG complaints a third party can verify (DESIGN §11: blame only what is proven).
 *
 * A receiver whose round-2 box from a sender does not open, or opens to a share that does not
 * match the sender's round-1 commitments, reveals the pairwise ECDH point S = d_receiver·P_sender
 * with a Chaum–Pedersen proof (`dleq.ts`) bound to the box's context. Anyone holding the box as
 * the sender's signed round-2 response carried it can then derive the box key (`box.ts`),
 * decrypt, and check the share with vss_verify:
 *
 *   sender_at_fault   the proof holds, and the box does not open, opens to something that is
 *                     not a scalar in [1, n), or to a share that fails vss_verify
 *   complaint_false   the proof holds and the box opens to a share that verifies
 *   unverifiable      the proof does not hold, or the complaint is malformed or does not match
 *                     the ceremony: nobody can be blamed (the ceremony aborts)
 *
 * What revealing S costs: box keys come from the static identity keys, so x(S) opens every box
 * between these two identities, in either direction, in any ceremony that used the same info
 * string. A receiver should complain only about a box that really fails, and only once.
 */
import { cryptoBackend } from './backend.js';
import { openBoxWithShared, type SealedBox } from './box.js';
import { type EcdhProof, verifyEcdhProof } from './dleq.js';
import { CryptoError } from './errors.js';
import { vssVerify } from './frost.js';
import { lengthPrefixed, u32be, utf8 } from './hash.js';
import { bytesEqual, toHex, wipe } from './hex.js';
import { assertIdentifier, type Identifier } from './identifier.js';
import type { NodeIdentity } from './identity.js';
import * as S from './scalar.js';
import type { DkgRound1Package } from './types.js';

/** A receiver's complaint about the round-2 box `sender` sealed to it. */
export interface DkgComplaint {
  /** The accused sender. */
  sender: Identifier;
  /** The complaining receiver. */
  receiver: Identifier;
  /** The sender's identity key (x-only, 32 bytes). */
  senderKey: Uint8Array;
  /** The receiver's identity key (x-only, 32 bytes): the prover. */
  receiverKey: Uint8Array;
  /** S = d_receiver·lift_x(senderKey), 33-byte compressed. */
  shared: Uint8Array;
  /** DLEQ proof (64 bytes) under {@link dkgComplaintContext}. */
  proof: Uint8Array;
}

export type ComplaintVerdict = 'sender_at_fault' | 'complaint_false' | 'unverifiable';

export interface ComplaintJudgement {
  verdict: ComplaintVerdict;
  /** Why, for logs and the ceremony's failure record (names no secret). */
  reason: string;
}

/** What a judge needs besides the complaint. All of it must come from the ceremony, not the complainer. */
export interface ComplaintEvidence {
  complaint: DkgComplaint;
  /**
   * The identity keys the ceremony's participant list gives to `complaint.sender` and
   * `complaint.receiver`; a complaint naming other keys is unverifiable (else a member could
   * complain with its own key in another member's name and have the sender blamed).
   */
  identityKeys: { sender: Uint8Array; receiver: Uint8Array };
  /**
   * The box exactly as the sender's signed round-2 response carried it (the caller checks the
   * signature): that is what makes a box that does not open the sender's fault.
   */
  box: SealedBox;
  /** The box's associated data and HKDF info, as the sender had to seal it. */
  aad: Uint8Array;
  info: string;
  /** The sender's round-1 package (its commitments), as the ceremony accepted it. */
  senderRound1: DkgRound1Package;
  /** The key's threshold: when given, the commitment must have that many points. */
  threshold?: number;
}

/**
 * The context a complaint's proof is bound to: the box's info and AAD (which name the
 * ceremony, key, sender and receiver) and the two identifiers.
 */
export function dkgComplaintContext(
  info: string,
  aad: Uint8Array,
  sender: Identifier,
  receiver: Identifier,
): Uint8Array {
  assertIdentifier(sender, 'sender');
  assertIdentifier(receiver, 'receiver');
  return lengthPrefixed('floe/dkg-complaint/v1', [utf8(info), aad, u32be(sender), u32be(receiver)]);
}

/**
 * The complaint of `identity` (the receiver) about the box from `sender`. Throws `dkg_failed`
 * when the identity cannot prove its ECDH (no `proveEcdh`, e.g. an HSM-held key).
 */
export function makeDkgComplaint(
  identity: NodeIdentity,
  o: { sender: Identifier; receiver: Identifier; senderKey: Uint8Array; aad: Uint8Array; info: string },
): DkgComplaint {
  if (!identity.proveEcdh) {
    throw new CryptoError(
      'dkg_failed',
      'this identity cannot prove its ECDH: the complaint cannot be verified',
    );
  }
  const r: EcdhProof = identity.proveEcdh(
    o.senderKey,
    dkgComplaintContext(o.info, o.aad, o.sender, o.receiver),
  );
  return {
    sender: o.sender,
    receiver: o.receiver,
    senderKey: Uint8Array.from(o.senderKey),
    receiverKey: identity.publicKey,
    shared: r.shared,
    proof: r.proof,
  };
}

const judged = (verdict: ComplaintVerdict, reason: string): ComplaintJudgement => ({ verdict, reason });

const isBytes = (x: unknown, len?: number): x is Uint8Array =>
  x instanceof Uint8Array && (len === undefined || x.length === len);

/**
 * Decides a complaint (pure and deterministic; the active backend's arithmetic). See the
 * module comment for the three verdicts.
 */
export function judgeDkgComplaint(e: ComplaintEvidence): ComplaintJudgement {
  const c = e.complaint;
  const b = cryptoBackend();
  // 1. The complaint is well-formed and about this ceremony's members and box.
  let commitments: ReturnType<typeof b.decode>[];
  let context: Uint8Array;
  try {
    assertIdentifier(c.sender, 'sender');
    assertIdentifier(c.receiver, 'receiver');
    if (c.sender === c.receiver) return judged('unverifiable', 'sender and receiver are the same member');
    if (
      !isBytes(c.senderKey, 32) ||
      !isBytes(c.receiverKey, 32) ||
      !isBytes(c.shared, 33) ||
      !isBytes(c.proof, 64) ||
      !isBytes(e.identityKeys?.sender, 32) ||
      !isBytes(e.identityKeys?.receiver, 32) ||
      !isBytes(e.aad) ||
      typeof e.info !== 'string'
    ) {
      return judged('unverifiable', 'malformed complaint');
    }
    if (
      !bytesEqual(c.senderKey, e.identityKeys.sender) ||
      !bytesEqual(c.receiverKey, e.identityKeys.receiver)
    ) {
      return judged('unverifiable', "the complaint's identity keys are not the members'");
    }
    const r1 = e.senderRound1;
    if (r1?.identifier !== c.sender || !Array.isArray(r1.commitment) || r1.commitment.length === 0) {
      return judged('unverifiable', "not the sender's round-1 package");
    }
    if (e.threshold !== undefined && r1.commitment.length !== e.threshold) {
      return judged('unverifiable', "the sender's round-1 commitment does not have threshold points");
    }
    commitments = r1.commitment.map((p, i) => b.decode(p, `commitment ${i}`));
    context = dkgComplaintContext(e.info, e.aad, c.sender, c.receiver);
  } catch {
    return judged('unverifiable', 'malformed complaint or round-1 package');
  }
  // 2. The revealed point is the receiver's ECDH with the sender.
  if (!verifyEcdhProof(c.receiverKey, c.senderKey, c.shared, c.proof, context)) {
    return judged('unverifiable', 'the ECDH proof does not verify');
  }
  // 3. The sender's box, opened with the revealed key.
  const box = e.box;
  if (
    typeof box !== 'object' ||
    box === null ||
    typeof box.sender !== 'string' ||
    typeof box.nonce !== 'string' ||
    typeof box.ciphertext !== 'string'
  ) {
    return judged('sender_at_fault', 'the box is malformed');
  }
  if (box.sender !== toHex(c.senderKey)) {
    return judged('sender_at_fault', "the box does not name the sender's identity key");
  }
  let plain: Uint8Array;
  try {
    plain = openBoxWithShared(c.shared.subarray(1), c.receiverKey, box, e.aad, e.info);
  } catch {
    return judged('sender_at_fault', 'the box does not open with the proven key');
  }
  try {
    if (plain.length !== 32) return judged('sender_at_fault', 'the box does not hold a 32-byte share');
    try {
      S.parse(plain, 'share', true);
    } catch {
      return judged('sender_at_fault', 'the share is not a scalar in [1, n)');
    }
    // 4. The share against the sender's commitments.
    return vssVerify(b, BigInt(c.receiver), plain, commitments)
      ? judged('complaint_false', "the box opens to a share that matches the sender's commitments")
      : judged('sender_at_fault', "the share does not match the sender's commitments");
  } finally {
    wipe(plain);
  }
}
