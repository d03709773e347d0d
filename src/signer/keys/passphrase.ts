/**
 * The passphrase key source: data key = scrypt(passphrase, per-directory salt). The
 * passphrase comes from FLOE_SIGNER_PASSPHRASE or a 0600 file (exactly one); it is copied
 * into a private buffer and wiped once the store is open. Nothing here logs, and no error
 * carries the passphrase.
 */
import { randomBytes, scrypt } from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
import { concatBytes, wipe } from '../../crypto/hex.js';
import { FloeError } from '../../protocol/errors.js';
import { DATA_KEY_BYTES, type KeySource } from './key-source.js';

export const SALT_BYTES = 16;

/**
 * scrypt parameters. N = 2^17, r = 8, p = 1 costs 128·N·r = 128 MiB of memory and roughly
 * half a second per derivation, which happens once per process start. Stores created before
 * N = 2^17 was the default (N = 2^15) keep their N: it is read from the store. Tests pass
 * N = 2^12.
 */
export const SCRYPT_DEFAULT_N = 1 << 17;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SCRYPT_MIN_N = 1 << 10;
const SCRYPT_MAX_N = 1 << 20;

/**
 * The kind this source records. The scrypt parameters are not part of it: they are stored
 * beside the salt in `params` (below), so a source opens a directory made with any N, and a
 * new default N changes nothing for existing directories.
 */
export const PASSPHRASE_KIND = 'passphrase-scrypt';
/**
 * The kind recorded by stores created before the parameters moved into `params`: their
 * `params` is the bare 16-byte salt and N, r, p are in the kind string.
 */
const LEGACY_KIND = /^passphrase-scrypt\(N=([0-9]{1,8}),r=([0-9]{1,3}),p=([0-9]{1,3})\)$/;

/**
 * Stored parameters, format 1 (20 bytes): 0x01 || log2(N) || r || p || salt (16 bytes).
 * A bare 16-byte salt is the legacy format (N from the recorded kind).
 */
const PARAMS_FORMAT = 0x01;
const PARAMS_BYTES = 4 + SALT_BYTES;

export interface PassphraseKeySourceOptions {
  /** scrypt cost parameter for new stores, a power of two from 2^10 to 2^20. Default 2^17. */
  N?: number;
}

interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

function validN(N: number): boolean {
  return Number.isInteger(N) && N >= SCRYPT_MIN_N && N <= SCRYPT_MAX_N && (N & (N - 1)) === 0;
}

/** The scrypt parameters are fixed but for N; anything else in a store is refused. */
function checkParams(p: ScryptParams, where: string): ScryptParams {
  if (!validN(p.N) || p.r !== SCRYPT_R || p.p !== SCRYPT_P) {
    throw new FloeError('internal', `${where}: unsupported scrypt parameters`);
  }
  return p;
}

/** Format-1 stored parameters for N and a salt. */
export function encodeScryptParams(N: number, salt: Uint8Array): Uint8Array {
  if (!validN(N) || salt.length !== SALT_BYTES) throw new FloeError('internal', 'bad scrypt parameters');
  return concatBytes(Uint8Array.of(PARAMS_FORMAT, Math.log2(N), SCRYPT_R, SCRYPT_P), salt);
}

/**
 * Data key = scrypt(passphrase (UTF-8, NFC), salt, N, r = 8, p = 1, 32 bytes).
 *
 * New directories get N from the options (default 2^17); an existing directory is opened
 * with the N recorded in it (`params`, or the kind string of a legacy directory, see
 * {@link opensKind}), whatever this source was configured with.
 *
 * The passphrase is copied into a private buffer at construction (the caller's string is
 * not kept); {@link dispose} overwrites that buffer once the store is open.
 */
export class PassphraseKeySource implements KeySource {
  readonly kind = PASSPHRASE_KIND;
  readonly #N: number;
  /** Parameters of a legacy directory's kind string (see {@link opensKind}). */
  #legacy: ScryptParams | undefined;
  #passphrase: Buffer | undefined;

  constructor(passphrase: string | Uint8Array, opts: PassphraseKeySourceOptions = {}) {
    const N = opts.N ?? SCRYPT_DEFAULT_N;
    if (!validN(N)) {
      throw new FloeError('invalid_request', 'scrypt N must be a power of two from 2^10 to 2^20');
    }
    const bytes =
      typeof passphrase === 'string'
        ? Buffer.from(passphrase.normalize('NFC'), 'utf8')
        : Buffer.from(passphrase);
    if (bytes.length === 0) throw new FloeError('invalid_request', 'passphrase is empty');
    this.#N = N;
    this.#passphrase = bytes;
  }

  /** The N new directories are created with. */
  get N(): number {
    return this.#N;
  }

  /**
   * Whether this source opens a directory recorded under `recorded`, a kind other than its
   * own: a legacy passphrase directory, whose kind string carries its scrypt parameters
   * (`passphrase-scrypt(N=32768,r=8,p=1)`); they are used for its bare-salt `params`. The
   * store asks this before {@link unwrap} when the recorded kind differs from {@link kind}.
   */
  opensKind(recorded: string): boolean {
    const m = LEGACY_KIND.exec(recorded);
    if (!m) return false;
    const p = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
    if (!validN(p.N) || p.r !== SCRYPT_R || p.p !== SCRYPT_P) return false;
    this.#legacy = p;
    return true;
  }

  /** A fresh random salt and this source's N are the stored parameters; the data key is scrypt over them. */
  async init(): Promise<{ params: Uint8Array; dataKey: Uint8Array }> {
    const params = encodeScryptParams(this.#N, new Uint8Array(randomBytes(SALT_BYTES)));
    return { params, dataKey: await this.unwrap(params) };
  }

  /**
   * The data key for stored `params`: format 1 (N, r, p and the salt), or a bare 16-byte salt
   * (legacy: the parameters of the recorded kind, else this source's N).
   */
  unwrap(params: Uint8Array): Promise<Uint8Array> {
    const pass = this.#passphrase;
    if (!pass) return Promise.reject(new FloeError('internal', 'passphrase key source was disposed'));
    let cost: ScryptParams;
    let salt: Uint8Array;
    try {
      if (params.length === PARAMS_BYTES && params[0] === PARAMS_FORMAT) {
        const log2N = params[1]!;
        cost = checkParams(
          { N: log2N < 31 ? 2 ** log2N : 0, r: params[2]!, p: params[3]! },
          'stored key parameters',
        );
        salt = params.subarray(4);
      } else if (params.length === SALT_BYTES) {
        cost = this.#legacy ?? { N: this.#N, r: SCRYPT_R, p: SCRYPT_P };
        salt = params;
      } else {
        throw new FloeError('internal', `data key salt must be ${SALT_BYTES} bytes`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      scrypt(
        pass,
        salt,
        DATA_KEY_BYTES,
        // scrypt needs about 128·N·r bytes (128 MiB at N = 2^17); leave twice that as headroom
        // (node's default maxmem, 32 MiB, would refuse it).
        { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r },
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
const MAX_SECRET_FILE_BYTES = 4096;

/**
 * The signer passphrase, from the environment variable FLOE_SIGNER_PASSPHRASE or from a
 * passphrase file (exactly one of the two), read by {@link readSecretFile}. An empty
 * passphrase is refused. Errors are FloeError('invalid_request') and name the source, never
 * its content.
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
  return readSecretFile(file, 'passphrase file');
}

/**
 * A small secret file (the passphrase file, the metrics token file): a regular file of at
 * most 4 KiB that neither group nor others can access (mode & 0o077 = 0); one trailing
 * newline is removed; empty is refused. Errors are FloeError('invalid_request') naming
 * `what` and the path, never the content.
 */
export async function readSecretFile(file: string, what: string): Promise<string> {
  let fh: Awaited<ReturnType<typeof openFile>>;
  try {
    fh = await openFile(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new FloeError('invalid_request', `${what} ${file} cannot be opened (${code})`);
  }
  let raw: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FloeError('invalid_request', `${what} ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new FloeError(
        'invalid_request',
        `${what} ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    if (st.size > MAX_SECRET_FILE_BYTES) {
      throw new FloeError('invalid_request', `${what} ${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    }
    raw = await fh.readFile();
  } finally {
    await fh.close();
  }
  const text = raw.toString('utf8').replace(/\r?\n$/, '');
  wipe(raw);
  if (text.length === 0) throw new FloeError('invalid_request', `${what} ${file} is empty`);
  return text;
}
