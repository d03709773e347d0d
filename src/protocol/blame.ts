/**
 * Provable blame (DESIGN §11): a member is blamed only with evidence anyone can check — its
 * own signed answers. Two things prove misbehaviour:
 *
 *   invalid share   its signed round-2 answer binds the share to the exact signing package it
 *                   was computed over (`package_hash`), and the share fails under that package;
 *   equivocation    for one attempt it signed one commitment at open and computed its share
 *                   with another (its round-2 answer names the commitment it used).
 *
 * Nothing else is: a coordinator that showed a member a different package than the one it
 * now presents (for example another member's commitment swapped) gets `other_package`, never
 * a culprit, so it cannot frame an honest signer. Pure: the coordinator runs this before it
 * blames, and an auditor can run it on the evidence stored with the blame (the `session.blame`
 * audit event).
 */
import {
  decodePublicKeyPackage,
  decodeSignatureShare,
  decodeSigningPackage,
  type PublicKeyPackageJson,
  type SigningPackageJson,
} from '../crypto/encoding.js';
import { sha256 } from '../crypto/hash.js';
import { bytesEqual, fromHex, toHex } from '../crypto/hex.js';
import { verifyDigest } from '../crypto/identity.js';
import { verifyShare } from '../crypto/signing.js';
import { envelopeDigest, parseEnvelope } from './envelope.js';
import {
  type MessageSpec,
  type ResponseOf,
  responseType,
  SIGNER_MESSAGES,
  type SignerMessageName,
} from './messages/index.js';
import { isValid } from './schema.js';
import { signingPackageHash } from './transcript.js';

/** A signer's signed answer, as received: whose it is, its envelope, the exact body bytes. */
export interface SignedAnswer {
  /** The signer's identity key, x-only hex. */
  signer: string;
  /** The `floe-envelope` header of the answer. */
  envelope: string;
  /** The answer's body, byte for byte. */
  body: string;
}

/**
 * The body of `a` if it is a signed answer of `a.signer` to a `name` request (signature, type
 * and body hash checked), else undefined. Which request it answers is not checked here: the
 * attempt id inside the body is what the judgments compare.
 */
export function signedBody<K extends SignerMessageName>(a: SignedAnswer, name: K): ResponseOf<K> | undefined {
  const spec: MessageSpec = SIGNER_MESSAGES[name];
  try {
    const env = parseEnvelope(a.envelope);
    const { sig, ...header } = env;
    if (
      env.from !== a.signer ||
      env.type !== responseType(spec.type) ||
      !bytesEqual(sha256(new TextEncoder().encode(a.body)), fromHex(env.body_sha256, 'body', 32)) ||
      !verifyDigest(fromHex(sig, 'sig', 64), envelopeDigest(header), fromHex(env.from, 'from', 32))
    ) {
      return undefined;
    }
    const body: unknown = JSON.parse(a.body);
    return isValid(spec.response, body) ? (body as ResponseOf<K>) : undefined;
  } catch {
    return undefined;
  }
}

export interface ShareClaim {
  /** The member's signed answer to sign.round2. */
  evidence: SignedAnswer;
  sessionId: string;
  /** hex */
  attemptId: string;
  /** hex */
  intentHash: string;
  /** hex, or null: the per-session tweak (none today). */
  tweak: string | null;
  /** The package the share is claimed to be bad under. */
  signingPackage: SigningPackageJson;
  publicKeyPackage: PublicKeyPackageJson;
}

export type ShareVerdict =
  /** Signed by the member over exactly this package, and the share does not verify under it. */
  | 'invalid_share'
  /** Signed by the member over exactly this package, and the share verifies: nothing to blame. */
  | 'valid_share'
  /** Signed by the member, but over another package or attempt: the claim is not about what it signed. */
  | 'other_package'
  /** Not the member's signed round-2 answer: no evidence at all. */
  | 'not_evidence';

/** Whether `claim.evidence` proves its signer released an invalid share for this package. */
export function judgeShare(claim: ShareClaim): ShareVerdict {
  const body = signedBody(claim.evidence, 'signRound2');
  if (!body) return 'not_evidence';
  let pkg: ReturnType<typeof decodeSigningPackage>;
  let expected: string;
  try {
    pkg = decodeSigningPackage(claim.signingPackage);
    expected = toHex(
      signingPackageHash({
        sessionId: claim.sessionId,
        attemptId: fromHex(claim.attemptId, 'attempt id', 32),
        intentHash: fromHex(claim.intentHash, 'intent hash', 32),
        tweak: claim.tweak === null ? null : fromHex(claim.tweak, 'tweak', 32),
        pkg,
      }),
    );
  } catch {
    return 'other_package';
  }
  if (
    body.session_id !== claim.sessionId ||
    body.attempt_id !== claim.attemptId ||
    body.package_hash !== expected
  ) {
    return 'other_package';
  }
  try {
    const share = decodeSignatureShare(body.share);
    if (share.identifier !== body.commitments.identifier) return 'invalid_share';
    return verifyShare(decodePublicKeyPackage(claim.publicKeyPackage), pkg, share)
      ? 'valid_share'
      : 'invalid_share';
  } catch {
    // A share that does not even decode (a scalar out of range), signed over this package.
    return 'invalid_share';
  }
}

export type CommitmentVerdict = 'equivocation' | 'consistent' | 'not_evidence';

/**
 * Whether a member's signed open answer and its signed round-2 answer for the same attempt
 * name different commitments of its own: it committed to one nonce pair and signed with another.
 */
export function judgeCommitments(open: SignedAnswer, round2: SignedAnswer): CommitmentVerdict {
  if (open.signer !== round2.signer) return 'not_evidence';
  const o = signedBody(open, 'signOpen');
  const r = signedBody(round2, 'signRound2');
  if (!o || !r || o.attempt_id !== r.attempt_id || o.session_id !== r.session_id) return 'not_evidence';
  const a = o.commitments;
  const b = r.commitments;
  return a.identifier === b.identifier && a.hiding === b.hiding && a.binding === b.binding
    ? 'consistent'
    : 'equivocation';
}
