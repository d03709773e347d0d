/**
 * Versioned hex-JSON encodings of every FROST object that crosses a process boundary or
 * is stored. Each encoded object carries `v` (format version) and `type`; decoding is
 * strict: exact field set, lengths, points on the curve, scalars in range, identifiers
 * in range. A bad encoding throws a {@link CryptoError} naming the field, never its value.
 */
import { CryptoError } from './errors.js';
import { parseScalar, pointFromHex, scalarFromHex } from './group.js';
import { fromHex, toHex } from './hex.js';
import { assertIdentifier, type Identifier, sortedUniqueIds } from './identifier.js';
import type {
  DkgRound1Package,
  DkgRound2Package,
  KeyPackage,
  KeyTweak,
  PublicKeyPackage,
  SignatureShare,
  SigningCommitments,
  SigningPackage,
} from './types.js';

export const ENCODING_VERSION = 1;

export type Hex = string;

export type KeyTweakJson = { kind: 'none' } | { kind: 'taproot'; internal_key: Hex; merkle_root: Hex };

export interface PublicKeyPackageJson {
  v: 1;
  type: 'public_key_package';
  threshold: number;
  n: number;
  commitments: Hex[];
  verifying_shares: Record<string, Hex>;
  tweak: KeyTweakJson;
}

export interface KeyPackageJson {
  v: 1;
  type: 'key_package';
  identifier: Identifier;
  signing_share: Hex;
  public: PublicKeyPackageJson;
}

export interface SigningCommitmentsJson {
  v: 1;
  type: 'commitments';
  identifier: Identifier;
  hiding: Hex;
  binding: Hex;
}

export interface SigningPackageJson {
  v: 1;
  type: 'signing_package';
  message: Hex;
  commitments: SigningCommitmentsJson[];
}

export interface SignatureShareJson {
  v: 1;
  type: 'signature_share';
  identifier: Identifier;
  share: Hex;
}

export interface DkgRound1PackageJson {
  v: 1;
  type: 'dkg_round1';
  identifier: Identifier;
  commitment: Hex[];
  proof_of_knowledge: Hex;
}

export interface DkgRound2PackageJson {
  v: 1;
  type: 'dkg_round2';
  sender: Identifier;
  receiver: Identifier;
  signing_share: Hex;
}

// ---------- helpers ----------

function obj(x: unknown, what: string, type: string, fields: readonly string[]): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) {
    throw new CryptoError('invalid_encoding', `${what}: expected an object`);
  }
  const o = x as Record<string, unknown>;
  if (o.v !== ENCODING_VERSION) throw new CryptoError('unsupported_version', `${what}: unsupported version`);
  if (o.type !== type) throw new CryptoError('invalid_encoding', `${what}: expected type ${type}`);
  const allowed = new Set(['v', 'type', ...fields]);
  for (const k of Object.keys(o)) {
    if (!allowed.has(k)) throw new CryptoError('invalid_encoding', `${what}: unexpected field ${k}`);
  }
  for (const f of fields) {
    if (!(f in o)) throw new CryptoError('invalid_encoding', `${what}: missing field ${f}`);
  }
  return o;
}

function int(x: unknown, what: string, min: number, max: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new CryptoError('invalid_encoding', `${what}: expected an integer from ${min} to ${max}`);
  }
  return x;
}

function arr(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) throw new CryptoError('invalid_encoding', `${what}: expected an array`);
  return x;
}

function ident(x: unknown, what: string): Identifier {
  assertIdentifier(x, what);
  return x;
}

// ---------- key tweak ----------

function encodeTweak(t: KeyTweak): KeyTweakJson {
  return t.kind === 'none'
    ? { kind: 'none' }
    : { kind: 'taproot', internal_key: toHex(t.internalKey), merkle_root: toHex(t.merkleRoot) };
}

function decodeTweak(x: unknown): KeyTweak {
  if (typeof x !== 'object' || x === null)
    throw new CryptoError('invalid_encoding', 'tweak: expected an object');
  const o = x as Record<string, unknown>;
  if (o.kind === 'none' && Object.keys(o).length === 1) return { kind: 'none' };
  if (o.kind === 'taproot' && Object.keys(o).length === 3) {
    const merkleRoot = fromHex(o.merkle_root, 'tweak.merkle_root');
    if (merkleRoot.length !== 0 && merkleRoot.length !== 32) {
      throw new CryptoError('invalid_encoding', 'tweak.merkle_root: expected 0 or 32 bytes');
    }
    return { kind: 'taproot', internalKey: pointFromHex(o.internal_key, 'tweak.internal_key'), merkleRoot };
  }
  throw new CryptoError(
    'invalid_encoding',
    'tweak: expected {kind:none} or {kind:taproot,internal_key,merkle_root}',
  );
}

// ---------- public key package ----------

export function encodePublicKeyPackage(p: PublicKeyPackage): PublicKeyPackageJson {
  const verifying_shares: Record<string, Hex> = {};
  for (const id of [...p.verifyingShares.keys()].sort((a, b) => a - b)) {
    verifying_shares[String(id)] = toHex(p.verifyingShares.get(id)!);
  }
  return {
    v: 1,
    type: 'public_key_package',
    threshold: p.threshold,
    n: p.n,
    commitments: p.commitments.map(toHex),
    verifying_shares,
    tweak: encodeTweak(p.tweak),
  };
}

export function decodePublicKeyPackage(x: unknown): PublicKeyPackage {
  const o = obj(x, 'public_key_package', 'public_key_package', [
    'threshold',
    'n',
    'commitments',
    'verifying_shares',
    'tweak',
  ]);
  const n = int(o.n, 'n', 2, 255);
  const threshold = int(o.threshold, 'threshold', 2, n);
  const commitments = arr(o.commitments, 'commitments').map((c, i) => pointFromHex(c, `commitments[${i}]`));
  if (commitments.length !== threshold) {
    throw new CryptoError('invalid_encoding', `commitments: expected ${threshold} points`);
  }
  if (
    typeof o.verifying_shares !== 'object' ||
    o.verifying_shares === null ||
    Array.isArray(o.verifying_shares)
  ) {
    throw new CryptoError('invalid_encoding', 'verifying_shares: expected an object');
  }
  const verifyingShares = new Map<Identifier, Uint8Array>();
  for (const [k, v] of Object.entries(o.verifying_shares as Record<string, unknown>)) {
    if (!/^[1-9][0-9]{0,2}$/.test(k))
      throw new CryptoError('invalid_encoding', 'verifying_shares: bad identifier key');
    const id = ident(Number(k), 'verifying_shares key');
    if (id > n) throw new CryptoError('invalid_encoding', 'verifying_shares: identifier above n');
    verifyingShares.set(id, pointFromHex(v, `verifying_shares[${k}]`));
  }
  if (verifyingShares.size !== n)
    throw new CryptoError('invalid_encoding', `verifying_shares: expected ${n} entries`);
  return { threshold, n, commitments, verifyingShares, tweak: decodeTweak(o.tweak) };
}

// ---------- key package ----------

export function encodeKeyPackage(k: KeyPackage): KeyPackageJson {
  return {
    v: 1,
    type: 'key_package',
    identifier: k.identifier,
    signing_share: toHex(k.signingShare),
    public: encodePublicKeyPackage(k.public),
  };
}

export function decodeKeyPackage(x: unknown): KeyPackage {
  const o = obj(x, 'key_package', 'key_package', ['identifier', 'signing_share', 'public']);
  const pub = decodePublicKeyPackage(o.public);
  const identifier = ident(o.identifier, 'identifier');
  if (!pub.verifyingShares.has(identifier))
    throw new CryptoError('invalid_encoding', 'identifier is not a member');
  return { identifier, signingShare: scalarFromHex(o.signing_share, 'signing_share'), public: pub };
}

// ---------- commitments / signing package / share ----------

export function encodeCommitments(c: SigningCommitments): SigningCommitmentsJson {
  return {
    v: 1,
    type: 'commitments',
    identifier: c.identifier,
    hiding: toHex(c.hiding),
    binding: toHex(c.binding),
  };
}

export function decodeCommitments(x: unknown): SigningCommitments {
  const o = obj(x, 'commitments', 'commitments', ['identifier', 'hiding', 'binding']);
  return {
    identifier: ident(o.identifier, 'commitments.identifier'),
    hiding: pointFromHex(o.hiding, 'commitments.hiding'),
    binding: pointFromHex(o.binding, 'commitments.binding'),
  };
}

export function encodeSigningPackage(p: SigningPackage): SigningPackageJson {
  return {
    v: 1,
    type: 'signing_package',
    message: toHex(p.message),
    commitments: [...p.commitments].sort((a, b) => a.identifier - b.identifier).map(encodeCommitments),
  };
}

export function decodeSigningPackage(x: unknown): SigningPackage {
  const o = obj(x, 'signing_package', 'signing_package', ['message', 'commitments']);
  const message = fromHex(o.message, 'message');
  if (message.length > 1 << 20) throw new CryptoError('invalid_encoding', 'message: too long');
  const commitments = arr(o.commitments, 'commitments').map(decodeCommitments);
  const ids = commitments.map((c) => c.identifier);
  const sorted = sortedUniqueIds(ids, 'signing package identifiers');
  if (ids.some((id, i) => id !== sorted[i])) {
    throw new CryptoError('invalid_encoding', 'signing package: commitments must be sorted by identifier');
  }
  return { message, commitments };
}

export function encodeSignatureShare(s: SignatureShare): SignatureShareJson {
  return { v: 1, type: 'signature_share', identifier: s.identifier, share: toHex(s.share) };
}

export function decodeSignatureShare(x: unknown): SignatureShare {
  const o = obj(x, 'signature_share', 'signature_share', ['identifier', 'share']);
  const share = fromHex(o.share, 'share', 32);
  parseScalar(share, 'share', false);
  return { identifier: ident(o.identifier, 'identifier'), share };
}

// ---------- DKG ----------

export function encodeDkgRound1(p: DkgRound1Package): DkgRound1PackageJson {
  return {
    v: 1,
    type: 'dkg_round1',
    identifier: p.identifier,
    commitment: p.commitment.map(toHex),
    proof_of_knowledge: toHex(p.proofOfKnowledge),
  };
}

export function decodeDkgRound1(x: unknown): DkgRound1Package {
  const o = obj(x, 'dkg_round1', 'dkg_round1', ['identifier', 'commitment', 'proof_of_knowledge']);
  const commitment = arr(o.commitment, 'commitment').map((c, i) => pointFromHex(c, `commitment[${i}]`));
  if (commitment.length < 2 || commitment.length > 255) {
    throw new CryptoError('invalid_encoding', 'commitment: expected 2 to 255 points');
  }
  return {
    identifier: ident(o.identifier, 'identifier'),
    commitment,
    proofOfKnowledge: fromHex(o.proof_of_knowledge, 'proof_of_knowledge', 64),
  };
}

export function encodeDkgRound2(p: DkgRound2Package): DkgRound2PackageJson {
  return {
    v: 1,
    type: 'dkg_round2',
    sender: p.sender,
    receiver: p.receiver,
    signing_share: toHex(p.signingShare),
  };
}

export function decodeDkgRound2(x: unknown): DkgRound2Package {
  const o = obj(x, 'dkg_round2', 'dkg_round2', ['sender', 'receiver', 'signing_share']);
  return {
    sender: ident(o.sender, 'sender'),
    receiver: ident(o.receiver, 'receiver'),
    signingShare: scalarFromHex(o.signing_share, 'signing_share'),
  };
}
