/**
 * The passphrase key source: data key = scrypt(passphrase, per-directory salt). The
 * passphrase comes from FLOE_SIGNER_PASSPHRASE or a 0600 file (exactly one); it is copied
 * into a private buffer and wiped once the store is open. Nothing here logs, and no error
 * carries the passphrase.
 */
import { randomBytes, scrypt } from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
import { wipe } from '../../crypto/hex.js';
import { FloeError } from '../../protocol/errors.js';
import { DATA_KEY_BYTES, type KeySource } from './key-source.js';

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

  /** A fresh random salt is the stored parameter; the data key is scrypt over it. */
  async init(): Promise<{ params: Uint8Array; dataKey: Uint8Array }> {
    const salt = new Uint8Array(randomBytes(SALT_BYTES));
    return { params: salt, dataKey: await this.unwrap(salt) };
  }

  unwrap(salt: Uint8Array): Promise<Uint8Array> {
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

  /** Overwrite the passphrase copy; later {@link unwrap} calls fail. */
  dispose(): void {
    this.#passphrase?.fill(0);
    this.#passphrase = undefined;
  }
}

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
