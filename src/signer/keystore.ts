/**
 * Encryption at rest for the signer node (issue "Signer node: encrypted key store").
 *
 * Every secret the node persists (key packages, the node identity key) is sealed with
 * AES-256-GCM under one 32-byte data key. The data key comes from a {@link KeySource}: today
 * a passphrase stretched with scrypt over a random per-data-directory salt; later a PKCS#11
 * HSM. Each record's associated data binds it to where it belongs (key id and identifier, or
 * the identity slot), so a record copied to another row does not decrypt.
 *
 * Record format (version 1):  0x01 || nonce (12, fresh random per write) || ciphertext || tag (16).
 * The GCM associated data is the version byte followed by the caller's AAD, so the header
 * is authenticated too.
 *
 * Nothing here logs, and no error message carries key material, plaintext or the passphrase.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
  scrypt,
} from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
import { lengthPrefixed, u32be, utf8 } from '../crypto/hash.js';
import { bytesEqual, concatBytes, wipe } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';

// ---------- key sources ----------

/** Where the 32-byte data key comes from. A PKCS#11 HSM provider will implement this later. */
export interface KeySource {
  /**
   * Stable description of the source and its parameters. The store records it when a data
   * directory is created and refuses to open that directory with a source of another kind,
   * so a parameter mismatch is reported as such and not as a wrong passphrase.
   */
  readonly kind: string;
  /** Derive (or unwrap) the 32-byte data key for a data directory's salt. The caller wipes it. */
  dataKey(salt: Uint8Array): Promise<Uint8Array>;
}

export const DATA_KEY_BYTES = 32;
export const SALT_BYTES = 16;

/**
 * scrypt parameters. N = 2^15, r = 8, p = 1 costs 128·N·r = 32 MiB of memory and roughly
 * 100 ms per derivation, which happens once per process start. Tests pass N = 2^12.
 */
export const SCRYPT_DEFAULT_N = 1 << 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SCRYPT_MIN_N = 1 << 10;
const SCRYPT_MAX_N = 1 << 20;

export interface PassphraseKeySourceOptions {
  /** scrypt cost parameter, a power of two from 2^10 to 2^20. Default 2^15. */
  N?: number;
}

/**
 * Data key = scrypt(passphrase (UTF-8, NFC), salt, N, r = 8, p = 1, 32 bytes).
 *
 * The passphrase is copied into a private buffer at construction (the caller's string is
 * not kept); {@link dispose} overwrites that buffer once the store is open.
 */
export class PassphraseKeySource implements KeySource {
  readonly kind: string;
  readonly #N: number;
  #passphrase: Buffer | undefined;

  constructor(passphrase: string | Uint8Array, opts: PassphraseKeySourceOptions = {}) {
    const N = opts.N ?? SCRYPT_DEFAULT_N;
    if (!Number.isInteger(N) || N < SCRYPT_MIN_N || N > SCRYPT_MAX_N || (N & (N - 1)) !== 0) {
      throw new FloeError('invalid_request', 'scrypt N must be a power of two from 2^10 to 2^20');
    }
    const bytes =
      typeof passphrase === 'string'
        ? Buffer.from(passphrase.normalize('NFC'), 'utf8')
        : Buffer.from(passphrase);
    if (bytes.length === 0) throw new FloeError('invalid_request', 'passphrase is empty');
    this.#N = N;
    this.#passphrase = bytes;
    this.kind = `passphrase-scrypt(N=${N},r=${SCRYPT_R},p=${SCRYPT_P})`;
  }

  dataKey(salt: Uint8Array): Promise<Uint8Array> {
    const pass = this.#passphrase;
    if (!pass) return Promise.reject(new FloeError('internal', 'passphrase key source was disposed'));
    if (salt.length !== SALT_BYTES) {
      return Promise.reject(new FloeError('internal', `data key salt must be ${SALT_BYTES} bytes`));
    }
    const N = this.#N;
    return new Promise((resolve, reject) => {
      scrypt(
        pass,
        salt,
        DATA_KEY_BYTES,
        // scrypt needs about 128·N·r bytes; leave twice that as headroom.
        { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * N * SCRYPT_R },
        (err, key) => {
          if (err) reject(new FloeError('internal', 'data key derivation failed'));
          else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
        },
      );
    });
  }

  /** Overwrite the passphrase copy; later {@link dataKey} calls fail. */
  dispose(): void {
    this.#passphrase?.fill(0);
    this.#passphrase = undefined;
  }
}

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

/** AAD of a key package record: binds it to its key id and member identifier. */
export function shareAad(keyId: string, identifier: number): Uint8Array {
  return lengthPrefixed(SHARE_TAG, [utf8(keyId), u32be(identifier)]);
}

/** AAD of the node identity secret key record. */
export function identityAad(): Uint8Array {
  return lengthPrefixed(IDENTITY_TAG, []);
}

/** AAD of the passphrase check record. */
export function checkAad(): Uint8Array {
  return lengthPrefixed(CHECK_TAG, []);
}

const CHECK_PLAINTEXT = utf8('floe signer data key check v1');

/** The check record stored at initialisation: a fixed constant sealed under the data key. */
export function sealCheck(cipher: RecordCipher): Uint8Array {
  return cipher.seal(CHECK_PLAINTEXT, checkAad());
}

/** Throws FloeError('unauthorized') unless `blob` is the check record sealed under this cipher's key. */
export function verifyCheck(cipher: RecordCipher, blob: Uint8Array): void {
  let plain: Uint8Array;
  try {
    plain = cipher.open(blob, checkAad());
  } catch {
    throw new FloeError('unauthorized', 'wrong passphrase for this data directory');
  }
  if (!bytesEqual(plain, CHECK_PLAINTEXT)) {
    throw new FloeError('unauthorized', 'wrong passphrase for this data directory');
  }
}

// ---------- reading the passphrase ----------

export const PASSPHRASE_ENV = 'FLOE_SIGNER_PASSPHRASE';
const MAX_PASSPHRASE_FILE_BYTES = 4096;

/**
 * The signer passphrase, from the environment variable FLOE_SIGNER_PASSPHRASE or from a
 * passphrase file (exactly one of the two). A file must be a regular file of at most 4 KiB
 * that neither group nor others can access (mode & 0o077 = 0); one trailing newline is
 * removed. An empty passphrase is refused. Errors are FloeError('invalid_request') and name
 * the source, never its content.
 */
export async function readPassphrase(
  env: Readonly<Record<string, string | undefined>>,
  file?: string,
): Promise<string> {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && file !== undefined) {
    throw new FloeError(
      'invalid_request',
      `both ${PASSPHRASE_ENV} and a passphrase file are given; use exactly one`,
    );
  }
  if (fromEnv !== undefined) {
    if (fromEnv.length === 0) throw new FloeError('invalid_request', `${PASSPHRASE_ENV} is empty`);
    return fromEnv;
  }
  if (file === undefined) {
    throw new FloeError(
      'invalid_request',
      `no signer passphrase: set ${PASSPHRASE_ENV} or give a passphrase file`,
    );
  }
  let fh: Awaited<ReturnType<typeof openFile>>;
  try {
    fh = await openFile(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new FloeError('invalid_request', `passphrase file ${file} cannot be opened (${code})`);
  }
  let raw: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FloeError('invalid_request', `passphrase file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new FloeError(
        'invalid_request',
        `passphrase file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    if (st.size > MAX_PASSPHRASE_FILE_BYTES) {
      throw new FloeError(
        'invalid_request',
        `passphrase file ${file} is larger than ${MAX_PASSPHRASE_FILE_BYTES} bytes`,
      );
    }
    raw = await fh.readFile();
  } finally {
    await fh.close();
  }
  const text = raw.toString('utf8').replace(/\r?\n$/, '');
  wipe(raw);
  if (text.length === 0) throw new FloeError('invalid_request', `passphrase file ${file} is empty`);
  return text;
}
