/**
 * Share backup (issue 16 item 3): one key's share, sealed to an operator key, as a file that only
 * that operator can open and that a signer accepts again only if it is the same member of the same
 * key. Pure logic: the format, seal / open, and the checks (no I/O; the CLI is
 * src/cli/backup-commands.ts, the store side SqliteSignerStore.exportKey / restoreKey).
 *
 * File format `floe-share-backup/v1` (Floe's own, versioned; NOT the age file format, although
 * the operator keys are age's X25519 keys, so `age-keygen` makes usable ones): one JSON document
 *
 *   { format: 'floe-share-backup/v1', key_id, identifier,
 *     kdf: { kind: 'x25519', recipient: 'age1…', ephemeral: hex32 }
 *        | { kind: 'scrypt', log_n: 17…22, r: 8, p: 1, salt: hex16 },
 *     aead: 'chacha20-poly1305', nonce: hex12, ciphertext: base64 }
 *
 * File key: x25519 — HKDF-SHA256(ikm = X25519(ephemeral secret, recipient), salt = ephemeral
 * public ‖ recipient public, info `floe/share-backup/v1/x25519`); scrypt — scrypt(passphrase
 * (UTF-8, NFC), salt, N = 2^log_n ≥ 2^17, r = 8, p = 1). The AEAD's associated data is every
 * header field (length-prefixed), so no field can be changed without the open failing.
 *
 * The plaintext (length-prefixed fields under the tag `floe/share-backup/payload/v1`): key id,
 * identifier, threshold, n, the group public key (33 bytes, commitments[0]), this member's
 * verifying share, origin, created_at, transcript hash, the public key package, the approval
 * policy state, the freeze instruction in force, the member's node identity (public and secret:
 * the roster and the coordinator know the member by it, see docs/backup.md), the secret share,
 * and a checksum (SHA-256 under its own tag over every public field before it). Opening checks
 * the checksum, then recomputes share·G with the backend's constant-time base multiplication and
 * compares it with the stored verifying share, the public package's verifying share of that
 * identifier and the VSS commitments (so a share paired with another key's group key is refused:
 * `invalid_share`), and the identity public key with identity secret·G.
 *
 * Errors never carry key material, the passphrase or plaintext.
 */
import { randomBytes, scrypt } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32 } from '@scure/base';
import { type Static, Type } from '@sinclair/typebox';
import { decodePolicyState, encodePolicyState, type PolicyState } from '../approvals/policy.js';
import { validateKeyPackage } from '../crypto/dealer.js';
import { decodePublicKeyPackage, encodePublicKeyPackage } from '../crypto/encoding.js';
import { isCryptoError } from '../crypto/errors.js';
import { parseScalar } from '../crypto/group.js';
import { lengthPrefixed, taggedFieldsHash, u32be, utf8 } from '../crypto/hash.js';
import { bytesEqual, fromHex, toHex, wipe } from '../crypto/hex.js';
import { identityPublicKey } from '../crypto/identity.js';
import type { KeyPackage } from '../crypto/types.js';
import { SHARE_ORIGINS, type ShareOrigin } from '../domain/vocabulary.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import { SignedOperatorInstructionSchema } from '../protocol/messages/operator.js';
import { Hex, parseWith } from '../protocol/schema.js';
import type { FreezeRecord } from './freeze.js';

export const BACKUP_FORMAT = 'floe-share-backup/v1';
const PAYLOAD_TAG = 'floe/share-backup/payload/v1';
const CHECKSUM_TAG = 'floe/share-backup/checksum/v1';
const HEADER_TAG = 'floe/share-backup/header/v1';
const X25519_INFO = 'floe/share-backup/v1/x25519';
const AEAD = 'chacha20-poly1305';
/** scrypt cost: at least 2^17 (128 MiB, about half a second), at most 2^22 when opening. */
export const BACKUP_SCRYPT_LOG_N = 17;
const SCRYPT_MAX_LOG_N = 22;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
/** A backup file is small (a public package of 255 members is ~40 KB); anything larger is refused. */
export const BACKUP_MAX_BYTES = 1 << 20;
/** age's bech32 prefixes for X25519 recipients and identities. */
const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';

/** One member's share of one key, with what its signer needs to accept it again. Secret fields: wipe them. */
export interface ShareBackup {
  keyId: string;
  identifier: number;
  origin: ShareOrigin;
  createdAt: number;
  transcriptHash?: Uint8Array;
  approvalPolicy?: PolicyState;
  /** The operator instruction (freeze / unfreeze) in force for the key on the exporting signer. */
  freeze?: FreezeRecord;
  /** The secret share and the key's public package. */
  keyPackage: KeyPackage;
  /** The member's node identity secret key (32 bytes). Secret. */
  identitySecret: Uint8Array;
  /**
   * The share generation (src/signer/refresh.ts); 0 or absent: the key's first shares. A backup of
   * an older generation restores a share the members no longer sign with (refused as
   * `generation_mismatch`): back up again after every refresh.
   */
  generation?: number;
}

/** Wipe a backup's secrets (the share and the identity key). */
export function wipeShareBackup(b: ShareBackup): void {
  wipe(b.keyPackage.signingShare, b.identitySecret);
}

// ---------- operator keys (age's X25519 key encoding) ----------

/** `age1…` of an X25519 secret. */
export function recipientOf(identitySecret: Uint8Array): string {
  return bech32.encode(RECIPIENT_HRP, bech32.toWords(x25519.getPublicKey(identitySecret)));
}

/** A new operator key: the identity file's text (0600 it) and its recipient. */
export function generateBackupIdentity(): { identityFile: string; recipient: string } {
  const secret = x25519.utils.randomSecretKey();
  try {
    const recipient = recipientOf(secret);
    const key = bech32.encode(IDENTITY_HRP, bech32.toWords(secret)).toUpperCase();
    return {
      identityFile: `# floe share backup key (X25519, age format)\n# public key: ${recipient}\n${key}\n`,
      recipient,
    };
  } finally {
    wipe(secret);
  }
}

/** The 32-byte X25519 public key of an `age1…` recipient; invalid_request otherwise. */
export function parseRecipient(s: string): Uint8Array {
  try {
    const d = bech32.decode(s.trim() as `${string}1${string}`);
    const bytes = bech32.fromWords(d.words);
    if (d.prefix !== RECIPIENT_HRP || bytes.length !== 32) throw new Error('form');
    return bytes;
  } catch {
    throw new FloeError('invalid_request', 'recipient: expected an age X25519 recipient (age1…)', {
      hint: 'give the public key printed by floe signer backup-keygen (or age-keygen)',
    });
  }
}

/**
 * The X25519 secret in an identity file's text: the first `AGE-SECRET-KEY-1…` line (lines
 * starting with # are comments). The error never carries the file's content.
 */
export function parseIdentityFile(text: string): Uint8Array {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const l of lines) {
    if (!l.toUpperCase().startsWith('AGE-SECRET-KEY-1')) continue;
    try {
      const d = bech32.decode(l as `${string}1${string}`);
      const bytes = bech32.fromWords(d.words);
      if (d.prefix === IDENTITY_HRP && bytes.length === 32) return bytes;
      wipe(bytes);
    } catch {
      // reported below, without the line
    }
    break;
  }
  throw new FloeError('invalid_request', 'identity key file: no valid AGE-SECRET-KEY-1… line', {
    hint: 'give the file floe signer backup-keygen (or age-keygen) wrote',
  });
}

// ---------- payload ----------

function readFields(bytes: Uint8Array, tag: string): Uint8Array[] {
  const fields: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const next = (): Uint8Array => {
    if (at + 4 > bytes.length) throw new Error('short');
    const len = view.getUint32(at);
    at += 4;
    if (at + len > bytes.length) throw new Error('short');
    const f = bytes.subarray(at, at + len);
    at += len;
    return f;
  };
  if (new TextDecoder().decode(next()) !== tag) throw new Error('tag');
  while (at < bytes.length) fields.push(next());
  return fields;
}

const text = (b: Uint8Array) => new TextDecoder('utf-8', { fatal: true }).decode(b);
const u32 = (b: Uint8Array): number => {
  if (b.length !== 4) throw new Error('u32');
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
};

function groupKeyOf(k: KeyPackage): Uint8Array {
  return k.public.commitments[0]!;
}

/** The public fields (0..13), in order; the identity secret, the share and the checksum follow. */
function publicFields(b: ShareBackup, identityPub: Uint8Array): Uint8Array[] {
  const vs = b.keyPackage.public.verifyingShares.get(b.identifier) ?? new Uint8Array(0);
  return [
    utf8(BACKUP_FORMAT),
    utf8(b.keyId),
    u32be(b.identifier),
    u32be(b.keyPackage.public.threshold),
    u32be(b.keyPackage.public.n),
    groupKeyOf(b.keyPackage),
    vs,
    utf8(b.origin),
    utf8(String(b.createdAt)),
    b.transcriptHash ?? new Uint8Array(0),
    utf8(JSON.stringify(encodePublicKeyPackage(b.keyPackage.public))),
    utf8(b.approvalPolicy ? encodePolicyState(b.approvalPolicy) : ''),
    utf8(b.freeze ? JSON.stringify(b.freeze) : ''),
    identityPub,
    // Only for refreshed shares: a generation-0 backup keeps the 14 fields it always had.
    ...(b.generation ? [u32be(b.generation)] : []),
  ];
}

const PUBLIC_FIELDS = 14;

/**
 * The plaintext of a backup (secret: wipe it). No check: {@link sealShareBackup} checks first;
 * exported so tests can build inconsistent payloads.
 */
export function encodeSharePayload(b: ShareBackup): Uint8Array {
  const pub = publicFields(b, identityPublicKey(b.identitySecret));
  const checksum = taggedFieldsHash(CHECKSUM_TAG, pub);
  return lengthPrefixed(PAYLOAD_TAG, [...pub, b.identitySecret, b.keyPackage.signingShare, checksum]);
}

function checksumMismatch(): FloeError {
  return new FloeError(
    'invalid_share',
    'share backup: the checksum does not match (wrong group key, or a corrupted backup)',
    { hint: 'use the backup of this key made by this member; a backup is never edited by hand' },
  );
}

function malformedPayload(): FloeError {
  return new FloeError('invalid_encoding', 'share backup: the decrypted content is malformed', {
    hint: 'the file was made by an incompatible version of floe, or damaged',
  });
}

function decodeFreeze(json: string, keyId: string): FreezeRecord {
  const o = JSON.parse(json) as Record<string, unknown>;
  if (
    typeof o !== 'object' ||
    o === null ||
    o.keyId !== keyId ||
    typeof o.frozen !== 'boolean' ||
    !Number.isSafeInteger(o.appliedAt)
  ) {
    throw new Error('freeze');
  }
  const instruction = parseWith(SignedOperatorInstructionSchema, o.instruction, 'freeze instruction');
  if (instruction.key_id !== keyId) throw new Error('freeze');
  return { keyId, frozen: o.frozen, instruction, appliedAt: o.appliedAt as number };
}

/**
 * Decode a plaintext and check its checksum and consistency ({@link checkShareBackup}).
 * The returned share and identity secret are copies: the caller wipes them (and `bytes`).
 */
export function decodeSharePayload(bytes: Uint8Array): ShareBackup {
  let f: Uint8Array[];
  let b: ShareBackup;
  try {
    f = readFields(bytes, PAYLOAD_TAG);
    if ((f.length !== PUBLIC_FIELDS + 3 && f.length !== PUBLIC_FIELDS + 4) || text(f[0]!) !== BACKUP_FORMAT) {
      throw new Error('fields');
    }
  } catch {
    throw malformedPayload();
  }
  // A refreshed share's backup has one more public field, its generation.
  const nPublic = f.length - 3;
  // The checksum first: a payload of another key (or a damaged one) is named as such.
  if (!bytesEqual(taggedFieldsHash(CHECKSUM_TAG, f.slice(0, nPublic)), f[nPublic + 2]!)) {
    throw checksumMismatch();
  }
  try {
    const keyId = text(f[1]!);
    const origin = text(f[7]!) as ShareOrigin;
    if (!SHARE_ORIGINS.includes(origin)) throw new Error('origin');
    const createdAt = Number(text(f[8]!));
    if (!Number.isSafeInteger(createdAt) || createdAt < 0) throw new Error('created_at');
    if (f[9]!.length !== 0 && f[9]!.length !== 32) throw new Error('transcript');
    const policy = text(f[11]!);
    const freeze = text(f[12]!);
    const identitySecret = Uint8Array.from(f[nPublic]!);
    const signingShare = Uint8Array.from(f[nPublic + 1]!);
    const generation = nPublic > PUBLIC_FIELDS ? u32(f[PUBLIC_FIELDS]!) : 0;
    if (nPublic > PUBLIC_FIELDS && generation < 1) throw new Error('generation');
    b = {
      keyId,
      identifier: u32(f[2]!),
      origin,
      createdAt,
      ...(f[9]!.length ? { transcriptHash: Uint8Array.from(f[9]!) } : {}),
      ...(policy ? { approvalPolicy: decodePolicyState(policy) } : {}),
      ...(freeze ? { freeze: decodeFreeze(freeze, keyId) } : {}),
      keyPackage: {
        identifier: u32(f[2]!),
        signingShare,
        public: decodePublicKeyPackage(JSON.parse(text(f[10]!))),
      },
      identitySecret,
      ...(generation ? { generation } : {}),
    };
  } catch (e) {
    if (isFloeError(e) && e.code === 'invalid_share') throw e;
    throw malformedPayload();
  }
  try {
    // The stored public fields are what this payload's own fields say (threshold, n, group key,
    // verifying share, identity), then the share against them all.
    const p = b.keyPackage.public;
    if (
      u32(f[3]!) !== p.threshold ||
      u32(f[4]!) !== p.n ||
      !bytesEqual(f[5]!, groupKeyOf(b.keyPackage)) ||
      !bytesEqual(f[6]!, p.verifyingShares.get(b.identifier) ?? new Uint8Array(0))
    ) {
      throw checksumMismatch();
    }
    checkShareBackup(b, f[13]);
    return b;
  } catch (e) {
    wipeShareBackup(b);
    throw e;
  }
}

/**
 * The consistency of a backup: the identifier is a member; share·G (constant time) is the
 * member's verifying share and agrees with the VSS commitments, whose constant term is the
 * group key (validateKeyPackage); the identity secret is a valid key (and its public key
 * `identityPub`, when given). invalid_share otherwise.
 */
export function checkShareBackup(b: ShareBackup, identityPub?: Uint8Array): void {
  if (!Number.isInteger(b.identifier) || b.identifier < 1 || b.identifier > 255) {
    throw new FloeError('invalid_share', 'share backup: identifier out of range');
  }
  if (b.keyPackage.identifier !== b.identifier) {
    throw new FloeError('invalid_share', 'share backup: the key package is of another identifier');
  }
  try {
    validateKeyPackage(b.keyPackage);
  } catch (e) {
    if (isCryptoError(e)) {
      throw new FloeError(
        'invalid_share',
        `share backup: the secret share of member ${b.identifier} does not match the key's public package (share of another key?)`,
        { hint: 'use the backup of this key made by this member' },
      );
    }
    throw e;
  }
  try {
    parseScalar(b.identitySecret, 'identity key');
  } catch {
    throw new FloeError('invalid_share', 'share backup: the identity key is not a valid secret key');
  }
  if (identityPub && !bytesEqual(identityPublicKey(b.identitySecret), identityPub)) {
    throw checksumMismatch();
  }
}

// ---------- envelope ----------

const X25519Kdf = Type.Object(
  { kind: Type.Literal('x25519'), recipient: Type.String({ maxLength: 100 }), ephemeral: Hex(32) },
  { additionalProperties: false },
);
const ScryptKdf = Type.Object(
  {
    kind: Type.Literal('scrypt'),
    log_n: Type.Integer({ minimum: BACKUP_SCRYPT_LOG_N, maximum: SCRYPT_MAX_LOG_N }),
    r: Type.Literal(SCRYPT_R),
    p: Type.Literal(SCRYPT_P),
    salt: Hex(16),
  },
  { additionalProperties: false },
);
export const ShareBackupFileSchema = Type.Object(
  {
    format: Type.Literal(BACKUP_FORMAT),
    key_id: Type.String({ minLength: 1, maxLength: 200 }),
    identifier: Type.Integer({ minimum: 1, maximum: 255 }),
    kdf: Type.Union([X25519Kdf, ScryptKdf]),
    aead: Type.Literal(AEAD),
    nonce: Hex(12),
    ciphertext: Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: BACKUP_MAX_BYTES }),
  },
  { additionalProperties: false },
);
export type ShareBackupFile = Static<typeof ShareBackupFileSchema>;

/** How to seal: to an operator's X25519 recipient (`age1…`), or under a passphrase (scrypt). */
export type BackupSealTo = { recipient: string } | { passphrase: string; logN?: number };
/** How to open: the operator's X25519 identity (32-byte secret), or the passphrase. */
export type BackupOpenWith = { identity: Uint8Array } | { passphrase: string };

function headerAad(h: Omit<ShareBackupFile, 'ciphertext'>): Uint8Array {
  const kdf =
    h.kdf.kind === 'x25519'
      ? [utf8(h.kdf.kind), utf8(h.kdf.recipient), fromHex(h.kdf.ephemeral, 'ephemeral', 32)]
      : [
          utf8(h.kdf.kind),
          u32be(h.kdf.log_n),
          u32be(h.kdf.r),
          u32be(h.kdf.p),
          fromHex(h.kdf.salt, 'salt', 16),
        ];
  return lengthPrefixed(HEADER_TAG, [
    utf8(h.format),
    utf8(h.key_id),
    u32be(h.identifier),
    ...kdf,
    utf8(h.aead),
    fromHex(h.nonce, 'nonce', 12),
  ]);
}

function x25519FileKey(shared: Uint8Array, ephemeralPub: Uint8Array, recipientPub: Uint8Array): Uint8Array {
  if (shared.every((x) => x === 0)) {
    throw new FloeError('invalid_request', 'recipient: not a valid X25519 public key');
  }
  return hkdf(sha256, shared, Uint8Array.from([...ephemeralPub, ...recipientPub]), utf8(X25519_INFO), 32);
}

function scryptKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Uint8Array> {
  const N = 2 ** logN;
  const pass = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  if (pass.length === 0) {
    return Promise.reject(new FloeError('invalid_request', 'backup passphrase is empty'));
  }
  return new Promise((resolve, reject) => {
    scrypt(pass, salt, 32, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * N * SCRYPT_R }, (err, key) => {
      pass.fill(0);
      if (err) reject(new FloeError('internal', 'backup key derivation failed'));
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
    });
  });
}

/**
 * Seal a payload (from {@link encodeSharePayload}) into the file's bytes. No consistency check:
 * use {@link sealShareBackup}; exported for tests that need a file with inconsistent content.
 */
export async function sealSharePayload(
  payload: Uint8Array,
  who: { keyId: string; identifier: number },
  to: BackupSealTo,
): Promise<Uint8Array> {
  const nonce = new Uint8Array(randomBytes(12));
  let fileKey: Uint8Array;
  let kdf: ShareBackupFile['kdf'];
  if ('recipient' in to) {
    const recipientPub = parseRecipient(to.recipient);
    const eph = x25519.utils.randomSecretKey();
    const ephPub = x25519.getPublicKey(eph);
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(eph, recipientPub);
    } catch {
      throw new FloeError('invalid_request', 'recipient: not a valid X25519 public key');
    } finally {
      wipe(eph);
    }
    try {
      fileKey = x25519FileKey(shared, ephPub, recipientPub);
    } finally {
      wipe(shared);
    }
    kdf = {
      kind: 'x25519',
      recipient: bech32.encode(RECIPIENT_HRP, bech32.toWords(recipientPub)),
      ephemeral: toHex(ephPub),
    };
  } else {
    const logN = to.logN ?? BACKUP_SCRYPT_LOG_N;
    if (!Number.isInteger(logN) || logN < BACKUP_SCRYPT_LOG_N || logN > SCRYPT_MAX_LOG_N) {
      throw new FloeError(
        'invalid_request',
        `scrypt cost: log2(N) must be from ${BACKUP_SCRYPT_LOG_N} to ${SCRYPT_MAX_LOG_N}`,
      );
    }
    const salt = new Uint8Array(randomBytes(16));
    fileKey = await scryptKey(to.passphrase, salt, logN);
    kdf = { kind: 'scrypt', log_n: logN, r: SCRYPT_R, p: SCRYPT_P, salt: toHex(salt) };
  }
  const header = {
    format: BACKUP_FORMAT,
    key_id: who.keyId,
    identifier: who.identifier,
    kdf,
    aead: AEAD,
    nonce: toHex(nonce),
  } as const;
  let ct: Uint8Array;
  try {
    ct = chacha20poly1305(fileKey, nonce, headerAad(header)).encrypt(payload);
  } finally {
    wipe(fileKey);
  }
  const file: ShareBackupFile = { ...header, ciphertext: Buffer.from(ct).toString('base64') };
  return utf8(`${JSON.stringify(file, null, 2)}\n`);
}

/** Check a backup and seal it to `to`: the file's bytes (write them 0600). */
export async function sealShareBackup(b: ShareBackup, to: BackupSealTo): Promise<Uint8Array> {
  checkShareBackup(b);
  const payload = encodeSharePayload(b);
  try {
    return await sealSharePayload(payload, { keyId: b.keyId, identifier: b.identifier }, to);
  } finally {
    wipe(payload);
  }
}

/** The header of a backup file (public: key id, identifier, how it is sealed); invalid_encoding if it is not one. */
export function readShareBackupHeader(file: Uint8Array): ShareBackupFile {
  if (file.length > BACKUP_MAX_BYTES) {
    throw new FloeError('payload_too_large', `share backup: larger than ${BACKUP_MAX_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text(file));
  } catch {
    throw new FloeError('invalid_encoding', `share backup: not a ${BACKUP_FORMAT} file (not JSON)`);
  }
  try {
    return parseWith(ShareBackupFileSchema, json, 'share backup');
  } catch (e) {
    throw new FloeError('invalid_encoding', isFloeError(e) ? e.message : 'share backup: malformed', {
      hint: `a ${BACKUP_FORMAT} file as floe signer backup writes it`,
    });
  }
}

function undecryptable(what: string): FloeError {
  return new FloeError(
    'unauthorized',
    `share backup does not decrypt with this ${what} (wrong ${what}, or the file was altered)`,
    { hint: `give the ${what} the backup was made with; a file that was altered cannot be opened` },
  );
}

/**
 * Open a backup file: decrypt, then decode and check it ({@link decodeSharePayload}).
 * The result's secrets are the caller's to wipe ({@link wipeShareBackup}).
 */
export async function openShareBackup(file: Uint8Array, withKey: BackupOpenWith): Promise<ShareBackup> {
  const h = readShareBackupHeader(file);
  const { ciphertext, ...header } = h;
  let fileKey: Uint8Array;
  let what: string;
  if (h.kdf.kind === 'x25519') {
    if (!('identity' in withKey)) {
      throw new FloeError(
        'invalid_request',
        'this backup is sealed to an X25519 recipient: open it with its identity key file',
      );
    }
    what = 'identity key';
    const recipientPub = parseRecipient(h.kdf.recipient);
    if (!bytesEqual(x25519.getPublicKey(withKey.identity), recipientPub)) {
      throw new FloeError(
        'unauthorized',
        `share backup is sealed to ${h.kdf.recipient}, not to this identity key`,
        { hint: 'give the identity key file of that recipient' },
      );
    }
    const ephPub = fromHex(h.kdf.ephemeral, 'ephemeral', 32);
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(withKey.identity, ephPub);
    } catch {
      throw undecryptable(what);
    }
    try {
      fileKey = x25519FileKey(shared, ephPub, recipientPub);
    } catch {
      throw undecryptable(what);
    } finally {
      wipe(shared);
    }
  } else {
    if (!('passphrase' in withKey)) {
      throw new FloeError(
        'invalid_request',
        'this backup is sealed under a passphrase: open it with the passphrase',
      );
    }
    what = 'passphrase';
    fileKey = await scryptKey(withKey.passphrase, fromHex(h.kdf.salt, 'salt', 16), h.kdf.log_n);
  }
  const sealed = Buffer.from(ciphertext, 'base64');
  let payload: Uint8Array;
  try {
    // Canonical base64 only: the decoder ignores the unused bits of the last character, and a
    // file is either exactly as written or refused.
    if (sealed.toString('base64') !== ciphertext) throw new Error('non-canonical base64');
    payload = chacha20poly1305(fileKey, fromHex(h.nonce, 'nonce', 12), headerAad(header)).decrypt(sealed);
  } catch {
    throw undecryptable(what);
  } finally {
    wipe(fileKey);
  }
  try {
    const b = decodeSharePayload(payload);
    if (b.keyId !== h.key_id || b.identifier !== h.identifier) {
      wipeShareBackup(b);
      throw checksumMismatch();
    }
    return b;
  } finally {
    wipe(payload);
  }
}
