/**
 * Provable blame (DESIGN §11): a member is blamed only with evidence anyone can check — its
 * own signed answers. Two things prove misbehaviour:
 *
 *   invalid share   its signed round-2 answer binds the share to the exact signing package it
 *                   was computed over (`package_hash`), and the share fails under that package
 *                   (in a multi-digest attempt, each digest's share is bound to its own package
 *                   and key tweak: a bad share on any input is the member's fault);
 *   equivocation    for one attempt it signed one commitment at open and computed its share
 *                   with another (its round-2 answer names the commitment it used).
 *
 * Nothing else is: a coordinator that showed a member a different package than the one it
 * now presents (for example another member's commitment swapped) gets `other_package`, never
 * a culprit, so it cannot frame an honest signer. Pure: the coordinator runs this before it
 * blames, and an auditor can run it on the evidence stored with the blame (the `session.blame`
 * audit event).
 */
import { deriveTaprootPublicKeyPackage, parseTaprootDerivation } from '../crypto/derive-key.js';
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
  /**
   * hex, or null: the key tweak of the digest judged; for a PSBT input of a derived key the
   * Taproot derivation d ‖ merkle root (src/crypto/derive-key.ts), applied to the key here.
   */
  tweak: string | null;
  /**
   * Multi-digest attempts: which digest is judged, the position in the answer's `inputs`
   * (whose package, share and package hash are then the ones compared). Absent: the answer's
   * single share.
   */
  index?: number;
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
  const signed = signedBody(claim.evidence, 'signRound2');
  if (!signed) return 'not_evidence';
  let body: { session_id: string; attempt_id: string; package_hash: string } & Pick<
    typeof signed,
    'share' | 'commitments'
  > = signed;
  if (claim.index !== undefined) {
    const item = signed.inputs?.[claim.index];
    if (!item) return 'other_package';
    body = { ...item, session_id: signed.session_id, attempt_id: signed.attempt_id };
  }
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
    return verifyShare(keyOfClaim(claim), pkg, share) ? 'valid_share' : 'invalid_share';
  } catch {
    // A share that does not even decode (a scalar out of range), signed over this package.
    return 'invalid_share';
  }
}

/** The public package the judged share signs under: the key's, or its derived Taproot key. */
function keyOfClaim(claim: ShareClaim) {
  const pub = decodePublicKeyPackage(claim.publicKeyPackage);
  if (claim.tweak === null) return pub;
  const t = parseTaprootDerivation(fromHex(claim.tweak, 'tweak'));
  return deriveTaprootPublicKeyPackage(pub, t.derivation, t.merkleRoot);
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
  const same = (a: typeof o.commitments, b: typeof o.commitments) =>
    a.identifier === b.identifier && a.hiding === b.hiding && a.binding === b.binding;
  if (!same(o.commitments, r.commitments)) return 'equivocation';
  // Multi-digest attempts: each input's commitment at open against the one its share used.
  for (const x of r.inputs ?? []) {
    const opened = o.inputs?.find((y) => y.input === x.input);
    if (opened && !same(opened.commitments, x.commitments)) return 'equivocation';
  }
  return 'consistent';
}
