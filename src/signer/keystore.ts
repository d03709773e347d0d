/**
 * Encryption at rest for the signer node (issue "Signer node: encrypted key store").
 *
 * Every secret the node persists (key packages, the node identity key) is sealed with
 * AES-256-GCM under one 32-byte data key. The data key comes from a key source
 * (./keys/key-source.ts): a passphrase stretched with scrypt, or a PKCS#11 HSM. Each
 * record's associated data binds it to where it belongs (key id and identifier, or
 * the identity slot), so a record copied to another row does not decrypt.
 *
 * Record format (version 1):  0x01 || nonce (12, fresh random per write) || ciphertext || tag (16).
 * The GCM associated data is the version byte followed by the caller's AAD, so the header
 * is authenticated too. Nonces are drawn from the OS CSPRNG for every seal, never from a
 * counter: several processes (and several cipher instances) seal under one data key, and
 * 96 random bits keep collisions negligible for far more records than a signer ever writes.
 *
 * A key row's clear columns (status, transcript hash, origin, identifier, created_at) are
 * bound by an HMAC-SHA256 under a key derived from the data key ({@link KeyRowMac}).
 *
 * Nothing here logs, and no error message carries key material, plaintext or the passphrase.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { lengthPrefixed, u32be, utf8 } from '../crypto/hash.js';
import { bytesEqual, concatBytes } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';
import { DATA_KEY_BYTES } from './keys/key-source.js';

// ---------- record cipher ----------

export const RECORD_VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const UNDECRYPTABLE = 'stored record does not decrypt (wrong data key, record moved or tampered)';

/** AES-256-GCM sealing of stored records under one data key. */
export class RecordCipher {
  #key: KeyObject | undefined;

  /** Copies the key into a native KeyObject; the caller may (and should) wipe `dataKey`. */
  constructor(dataKey: Uint8Array) {
    if (dataKey.length !== DATA_KEY_BYTES) {
      throw new FloeError('internal', `data key must be ${DATA_KEY_BYTES} bytes`);
    }
    this.#key = createSecretKey(dataKey);
  }

  #k(): KeyObject {
    if (!this.#key) throw new FloeError('internal', 'record cipher was destroyed');
    return this.#key;
  }

  /** version 0x01 || 12-byte fresh random nonce || ciphertext || 16-byte tag. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: TAG_BYTES });
    c.setAAD(concatBytes(Uint8Array.of(RECORD_VERSION), aad));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return new Uint8Array(Buffer.concat([Uint8Array.of(RECORD_VERSION), nonce, body, c.getAuthTag()]));
  }

  /** The plaintext, or FloeError('internal') if the record is not a valid seal under this key and AAD. */
  open(blob: Uint8Array, aad: Uint8Array): Uint8Array {
    if (blob.length < 1 + NONCE_BYTES + TAG_BYTES) {
      throw new FloeError('internal', `${UNDECRYPTABLE}: record too short`);
    }
    if (blob[0] !== RECORD_VERSION) {
      throw new FloeError('internal', 'stored record has an unsupported format version');
    }
    const nonce = blob.subarray(1, 1 + NONCE_BYTES);
    const tag = blob.subarray(blob.length - TAG_BYTES);
    const body = blob.subarray(1 + NONCE_BYTES, blob.length - TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: TAG_BYTES });
    d.setAAD(concatBytes(Uint8Array.of(RECORD_VERSION), aad));
    d.setAuthTag(tag);
    const out = d.update(body);
    try {
      d.final();
    } catch {
      out.fill(0);
      throw new FloeError('internal', UNDECRYPTABLE);
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  /** Drop the key reference; later seal/open calls fail. */
  destroy(): void {
    this.#key = undefined;
  }
}

// ---------- associated data ----------

const SHARE_TAG = 'floe/signer/record/key-package/v1';
const IDENTITY_TAG = 'floe/signer/record/identity/v1';
const CHECK_TAG = 'floe/signer/record/passphrase-check/v1';

/**
 * AAD of a key package record: binds it to its key id, member identifier and (once a refresh
 * made one above 0) share generation, so a copy of an older generation's record does not open.
 */
export function shareAad(keyId: string, identifier: number, generation = 0): Uint8Array {
  return lengthPrefixed(SHARE_TAG, [
    utf8(keyId),
    u32be(identifier),
    ...(generation > 0 ? [u32be(generation)] : []),
  ]);
}

const REFRESH_TAG = 'floe/signer/record/refreshed-key-package/v1';

/** AAD of a refresh's pending new share: its key, identifier, generation and ceremony. */
export function refreshAad(
  keyId: string,
  identifier: number,
  generation: number,
  ceremonyId: string,
): Uint8Array {
  return lengthPrefixed(REFRESH_TAG, [utf8(keyId), u32be(identifier), u32be(generation), utf8(ceremonyId)]);
}

/** AAD of the node identity secret key record. */
export function identityAad(): Uint8Array {
  return lengthPrefixed(IDENTITY_TAG, []);
}

/** AAD of the passphrase check record. */
export function checkAad(): Uint8Array {
  return lengthPrefixed(CHECK_TAG, []);
}

/**
 * The check record's plaintext also says, under the data key, what the store guarantees:
 *   v1: written before key rows carried MACs (an old store: its rows get them once);
 *   v2: every key row carries a MAC; a row without one was altered outside floe.
 * Being sealed, the version cannot be lowered without a v1 record sealed under the same key,
 * i.e. a copy of this very store from before the upgrade (restoring that is restoring an old
 * backup).
 */
const CHECK_PLAINTEXTS = [utf8('floe signer data key check v1'), utf8('floe signer data key check v2')];
export type CheckVersion = 1 | 2;
export const CHECK_VERSION: CheckVersion = 2;

/** The check record stored at initialisation (and at the upgrade): a constant sealed under the data key. */
export function sealCheck(cipher: RecordCipher, version: CheckVersion = CHECK_VERSION): Uint8Array {
  return cipher.seal(CHECK_PLAINTEXTS[version - 1]!, checkAad());
}

/**
 * The check record's version; throws FloeError('unauthorized') unless `blob` is a check record
 * sealed under this cipher's key.
 */
export function verifyCheck(cipher: RecordCipher, blob: Uint8Array): CheckVersion {
  let plain: Uint8Array;
  try {
    plain = cipher.open(blob, checkAad());
  } catch {
    throw new FloeError('unauthorized', 'wrong passphrase for this data directory');
  }
  const i = CHECK_PLAINTEXTS.findIndex((p) => bytesEqual(plain, p));
  if (i < 0) throw new FloeError('unauthorized', 'wrong passphrase for this data directory');
  return (i + 1) as CheckVersion;
}

// ---------- key row MACs ----------

const KEY_ROW_MAC_INFO = 'floe/signer/key-row-mac/v1';
const KEY_ROW_TAG = 'floe/signer/key-row/v1';
export const KEY_ROW_MAC_BYTES = 32;

/** The clear columns of a key row that its MAC binds. */
export interface KeyRowFields {
  keyId: string;
  identifier: number;
  status: string;
  origin: string;
  transcriptHash: Uint8Array | null;
  createdAt: number;
  /** The approval policy state's canonical JSON (signer migration 3); null or absent: none. */
  approvalPolicy?: string | null;
  /** The share generation (signer migration 5); 0 or absent: the key's first shares. */
  generation?: number;
}

/**
 * The bytes a key row's MAC covers: tag and length-prefixed fields (a null transcript hash
 * differs from an empty one). A row with an approval policy has one more field, its JSON: rows
 * without one keep the bytes (and the MACs) they had, and dropping a policy breaks the MAC.
 */
export function keyRowBytes(f: KeyRowFields): Uint8Array {
  return lengthPrefixed(KEY_ROW_TAG, [
    utf8(f.keyId),
    u32be(f.identifier),
    utf8(f.status),
    utf8(f.origin),
    f.transcriptHash === null ? Uint8Array.of(0) : concatBytes(Uint8Array.of(1), f.transcriptHash),
    utf8(String(f.createdAt)),
    ...(f.approvalPolicy != null ? [utf8(f.approvalPolicy)] : []),
    // Generation 0 keeps the bytes rows had before refresh existed (a policy's JSON starts with '{').
    ...(f.generation ? [utf8(`generation:${f.generation}`)] : []),
  ]);
}

/**
 * HMAC-SHA256 over a key row's clear columns, under HKDF-SHA256(data key, info
 * `floe/signer/key-row-mac/v1`): a key of its own, so the data key only ever keys AES-GCM.
 * Whoever can write signer.db but lacks the passphrase cannot make a MAC, so cannot turn a
 * pending (uncertified) key active or change what it certified.
 */
export class KeyRowMac {
  #key: KeyObject | undefined;

  /** Derives the MAC key; the caller may (and should) wipe `dataKey`. */
  constructor(dataKey: Uint8Array) {
    if (dataKey.length !== DATA_KEY_BYTES) {
      throw new FloeError('internal', `data key must be ${DATA_KEY_BYTES} bytes`);
    }
    const k = new Uint8Array(hkdfSync('sha256', dataKey, new Uint8Array(0), KEY_ROW_MAC_INFO, 32));
    this.#key = createSecretKey(k);
    k.fill(0);
  }

  mac(f: KeyRowFields): Uint8Array {
    if (!this.#key) throw new FloeError('internal', 'key row MAC was destroyed');
    const d = createHmac('sha256', this.#key).update(keyRowBytes(f)).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }

  /** Constant-time comparison of `tag` with the MAC of `f`; false for a missing or short tag. */
  verify(f: KeyRowFields, tag: Uint8Array | null | undefined): boolean {
    const want = this.mac(f);
    return tag != null && tag.length === want.length && timingSafeEqual(want, tag);
  }

  /** MAC of another kind of row (a pending refresh): its own tag and length-prefixed fields. */
  macFields(tag: string, fields: Uint8Array[]): Uint8Array {
    if (!this.#key) throw new FloeError('internal', 'key row MAC was destroyed');
    const d = createHmac('sha256', this.#key).update(lengthPrefixed(tag, fields)).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }

  verifyFields(tag: string, fields: Uint8Array[], mac: Uint8Array | null | undefined): boolean {
    const want = this.macFields(tag, fields);
    return mac != null && mac.length === want.length && timingSafeEqual(want, mac);
  }

  destroy(): void {
    this.#key = undefined;
  }
}
