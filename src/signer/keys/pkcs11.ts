/**
 * The PKCS#11 key source (issue "Bitcoin custody: keys under a PKCS#11 HSM"): the store's
 * 32-byte data key is encrypted under a non-extractable AES-256 key inside a token, and the
 * deterministic DKG secret is a non-extractable HMAC key in the same token (./deterministic.ts).
 * Without the token (or its keys, or the PIN) the store does not open.
 *
 * Mechanism: CKM_AES_GCM through C_Encrypt/C_Decrypt with a fresh random 96-bit IV and a
 * 128-bit tag, the associated data binding the blob to its purpose and the key's label. Chosen
 * over CKM_AES_KEY_WRAP_PAD (C_WrapKey/C_UnwrapKey) because
 *   - the data key never becomes a token object: key wrap would need it created in the token
 *     as an extractable, non-sensitive session key (and unwrapped back into one), an object
 *     class that hardened HSM policies rightly forbid;
 *   - GCM's 128-bit tag authenticates the blob and its context (KWP has a 64-bit integrity
 *     value and no associated data); a wrong token or a replaced key is reported as such;
 *   - every PKCS#11 v2.40+ token (SoftHSM2 included) has CKM_AES_GCM for C_Encrypt.
 * One IV per store creation, drawn from the OS CSPRNG, so IV reuse under the token key is
 * negligible. `init` decrypts what it encrypted before returning, so a token that ignores the
 * caller's IV (some FIPS-mode HSMs generate their own) is refused at creation, not discovered
 * at the next start. The parameters record the mechanism, so another (e.g. KWP) can be added
 * without touching existing stores.
 *
 * Stored parameters (format 1): 0x01 || 0x01 (AES-256-GCM) || u8 len(label) || wrap key label
 * (UTF-8) || IV (12) || ciphertext (32) || tag (16). Nothing secret: the label names the key,
 * the rest is ciphertext.
 *
 * The PIN comes from a 0600 file or FLOE_SIGNER_HSM_PIN ({@link readHsmPin}); it is kept in a
 * private buffer until the first login and wiped after it. Nothing here logs, and no error
 * carries the PIN: errors name the token, the key label and the PKCS#11 return code.
 *
 * pkcs11js is an optional dependency (a native addon built with node-gyp against the PKCS#11
 * headers it bundles; no HSM library is needed to build it). It is loaded on first use only.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { lengthPrefixed, utf8 } from '../../crypto/hash.js';
import { concatBytes, wipe } from '../../crypto/hex.js';
import { FloeError } from '../../protocol/errors.js';
import { type DeterministicSecret, deterministicMessage } from './deterministic.js';
import { DATA_KEY_BYTES, type KeySource } from './key-source.js';
import { readSecretFile } from './passphrase.js';

// ---------- the slice of pkcs11js used here (loaded lazily: it is an optional dependency) ----------

/** A slot, session or object handle (a CK_ULONG in a Buffer). */
export type Handle = Buffer;

export interface Attribute {
  type: number;
  value?: number | boolean | string | Buffer;
}

export interface AttributeResult {
  type: number;
  value: Buffer;
}

export interface Mechanism {
  mechanism: number;
  parameter?: Buffer | number | { type: number; [k: string]: unknown };
}

export interface TokenInfo {
  label: string;
  serialNumber: string;
  flags: number;
}

export interface Pkcs11Lib {
  load(path: string): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): TokenInfo;
  C_InitToken(slot: Handle, pin: string, label: string): string;
  C_InitPIN(session: Handle, pin: string): void;
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): AttributeResult[];
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Attribute[]): Handle;
  C_CreateObject(session: Handle, template: Attribute[]): Handle;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_EncryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Encrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_DecryptInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Decrypt(session: Handle, inData: Buffer, outData: Buffer): Buffer;
  C_SignInit(session: Handle, mechanism: Mechanism, key: Handle): void;
  C_Sign(session: Handle, inData: Buffer, outData: Buffer): Buffer;
}

interface Pkcs11js {
  PKCS11: new () => Pkcs11Lib;
  CK_PARAMS_AES_GCM_v240: number;
}

let pkcs11js: Pkcs11js | undefined;

/** The pkcs11js module, or FloeError('invalid_request') saying it is not installed. */
export function loadPkcs11js(): Pkcs11js {
  if (pkcs11js) return pkcs11js;
  try {
    pkcs11js = createRequire(import.meta.url)('pkcs11js') as Pkcs11js;
  } catch {
    throw new FloeError(
      'invalid_request',
      'the PKCS#11 key source needs the optional package pkcs11js, which is not installed or did not build ' +
        '(npm install pkcs11js; it needs a C++ compiler and python for node-gyp)',
    );
  }
  return pkcs11js;
}

// ---------- PKCS#11 constants (the standard values, PKCS#11 v2.40) ----------

export const CKO_SECRET_KEY = 0x04;
export const CKK_GENERIC_SECRET = 0x10;
export const CKK_AES = 0x1f;
export const CKK_SHA256_HMAC = 0x2b;
export const CKA_CLASS = 0x00;
export const CKA_TOKEN = 0x01;
export const CKA_PRIVATE = 0x02;
export const CKA_LABEL = 0x03;
export const CKA_VALUE = 0x11;
export const CKA_KEY_TYPE = 0x100;
export const CKA_SENSITIVE = 0x103;
export const CKA_ENCRYPT = 0x104;
export const CKA_DECRYPT = 0x105;
export const CKA_WRAP = 0x106;
export const CKA_UNWRAP = 0x107;
export const CKA_SIGN = 0x108;
export const CKA_VERIFY = 0x10a;
export const CKA_DERIVE = 0x10c;
export const CKA_VALUE_LEN = 0x161;
export const CKA_EXTRACTABLE = 0x162;
export const CKA_NEVER_EXTRACTABLE = 0x164;
export const CKA_ALWAYS_SENSITIVE = 0x165;
export const CKA_MODIFIABLE = 0x170;
export const CKM_GENERIC_SECRET_KEY_GEN = 0x350;
export const CKM_SHA256_HMAC = 0x251;
export const CKM_AES_KEY_GEN = 0x1080;
export const CKM_AES_GCM = 0x1087;
export const CKU_SO = 0;
export const CKU_USER = 1;
export const CKF_RW_SESSION = 0x02;
export const CKF_SERIAL_SESSION = 0x04;
export const CKF_USER_PIN_INITIALIZED = 0x08;
export const CKF_TOKEN_INITIALIZED = 0x400;

const CKR_NAMES: Record<number, string> = {
  5: 'CKR_GENERAL_ERROR',
  6: 'CKR_FUNCTION_FAILED',
  17: 'CKR_ATTRIBUTE_SENSITIVE',
  48: 'CKR_DEVICE_ERROR',
  50: 'CKR_DEVICE_REMOVED',
  64: 'CKR_ENCRYPTED_DATA_INVALID',
  65: 'CKR_ENCRYPTED_DATA_LEN_RANGE',
  96: 'CKR_KEY_HANDLE_INVALID',
  104: 'CKR_KEY_FUNCTION_NOT_PERMITTED',
  112: 'CKR_MECHANISM_INVALID',
  113: 'CKR_MECHANISM_PARAM_INVALID',
  130: 'CKR_OBJECT_HANDLE_INVALID',
  160: 'CKR_PIN_INCORRECT',
  161: 'CKR_PIN_INVALID',
  162: 'CKR_PIN_LEN_RANGE',
  164: 'CKR_PIN_LOCKED',
  179: 'CKR_SESSION_HANDLE_INVALID',
  224: 'CKR_TOKEN_NOT_PRESENT',
  256: 'CKR_USER_ALREADY_LOGGED_IN',
  257: 'CKR_USER_NOT_LOGGED_IN',
  258: 'CKR_USER_PIN_NOT_INITIALIZED',
  401: 'CKR_CRYPTOKI_ALREADY_INITIALIZED',
};
const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_INVALID = 0xa1;
const CKR_PIN_LEN_RANGE = 0xa2;
const CKR_PIN_LOCKED = 0xa4;
const CKR_USER_ALREADY_LOGGED_IN = 0x100;
const CKR_USER_PIN_NOT_INITIALIZED = 0x102;
const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;

/** The PKCS#11 return value of a pkcs11js error, if it is one. */
export function ckrCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code > 0 ? code : undefined;
}

/**
 * What went wrong, for an error message: the CKR_ name (or the error class for a non-PKCS#11
 * failure). Never the error's own message, which could in principle quote an argument.
 */
export function ckrName(e: unknown): string {
  const code = ckrCode(e);
  if (code !== undefined) return CKR_NAMES[code] ?? `CKR 0x${code.toString(16)}`;
  const m = /\b(CKR_[A-Z0-9_]+)\b/.exec(String((e as { message?: unknown } | null)?.message ?? ''));
  if (m) return m[1]!;
  return (e as { name?: unknown } | null)?.name === 'TypeError' ? 'bad argument' : 'native error';
}

function hsmError(
  code: 'invalid_request' | 'unauthorized' | 'internal',
  what: string,
  e: unknown,
): FloeError {
  return new FloeError(code, `${what} (${ckrName(e)})`);
}

// ---------- modules: one load and one C_Initialize per library per process ----------

interface ModuleEntry {
  lib: Pkcs11Lib;
  refs: number;
  /** Whether this process's C_Initialize is ours to finalize. */
  ownsInit: boolean;
  /** Our open sessions per slot (hex of the slot handle): a logout logs all of them out. */
  sessions: Map<string, number>;
}

const modules = new Map<string, ModuleEntry>();

/** A reference to an initialised PKCS#11 library; {@link release} it when done. */
export interface Pkcs11Module {
  readonly path: string;
  readonly lib: Pkcs11Lib;
  release(): void;
}

function moduleKey(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Load (once per process) and C_Initialize (once while referenced) the PKCS#11 library at
 * `path`. Every acquire needs one release; the last release calls C_Finalize. Sharing matters:
 * a library has one state per process, and finalizing it under another user would close that
 * user's sessions.
 */
export function acquireModule(path: string): Pkcs11Module {
  const key = moduleKey(path);
  let entry = modules.get(key);
  if (!entry) {
    const { PKCS11 } = loadPkcs11js();
    const lib = new PKCS11();
    try {
      lib.load(key);
    } catch (e) {
      throw hsmError('invalid_request', `PKCS#11 library ${path} cannot be loaded`, e);
    }
    entry = { lib, refs: 0, ownsInit: false, sessions: new Map() };
    modules.set(key, entry);
  }
  if (entry.refs === 0) {
    try {
      entry.lib.C_Initialize();
      entry.ownsInit = true;
    } catch (e) {
      if (ckrCode(e) !== CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        throw hsmError('invalid_request', `PKCS#11 library ${path} did not initialise`, e);
      }
      entry.ownsInit = false;
    }
  }
  entry.refs++;
  const e = entry;
  let released = false;
  return {
    path,
    lib: e.lib,
    release() {
      if (released) return;
      released = true;
      e.refs--;
      if (e.refs === 0 && e.ownsInit) {
        e.sessions.clear();
        try {
          e.lib.C_Finalize();
        } catch {
          // nothing useful to do: the process is letting go of the library
        }
      }
    },
  };
}

/** References to PKCS#11 libraries held in this process: 0 once every source and session is disposed. */
export function pkcs11References(): number {
  let n = 0;
  for (const e of modules.values()) n += e.refs;
  return n;
}

// ---------- tokens and sessions ----------

/** Which token: by label (the usual) or by slot id. Exactly one. */
export interface TokenSelector {
  tokenLabel?: string;
  slot?: number;
}

/** A token label as PKCS#11 returns it (32 bytes, padded with spaces or, by some writers, NULs). */
export function trimLabel(label: string): string {
  return label.replace(/[\s\0]+$/, '');
}

/** A CK_SLOT_ID from its handle buffer. */
export function slotId(h: Handle): bigint {
  return h.length >= 8 ? h.readBigUInt64LE(0) : BigInt(h.readUInt32LE(0));
}

export function describeToken(sel: TokenSelector): string {
  return sel.tokenLabel !== undefined ? `token "${sel.tokenLabel}"` : `slot ${sel.slot}`;
}

function checkSelector(sel: TokenSelector): void {
  if ((sel.tokenLabel === undefined) === (sel.slot === undefined)) {
    throw new FloeError('invalid_request', 'PKCS#11: give exactly one of a token label and a slot');
  }
  if (sel.tokenLabel !== undefined && (sel.tokenLabel.length === 0 || utf8(sel.tokenLabel).length > 32)) {
    throw new FloeError('invalid_request', 'PKCS#11 token label must be 1 to 32 bytes');
  }
  if (sel.slot !== undefined && (!Number.isSafeInteger(sel.slot) || sel.slot < 0)) {
    throw new FloeError('invalid_request', 'PKCS#11 slot must be a non-negative integer');
  }
}

/** The slot holding the selected token; FloeError('invalid_request') if none (or several) match. */
export function findTokenSlot(lib: Pkcs11Lib, sel: TokenSelector, modulePath: string): Handle {
  checkSelector(sel);
  let slots: Handle[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (e) {
    throw hsmError('invalid_request', `PKCS#11 library ${modulePath} lists no slots`, e);
  }
  const found = slots.filter((s) => {
    if (sel.slot !== undefined) return slotId(s) === BigInt(sel.slot);
    try {
      const info = lib.C_GetTokenInfo(s);
      return (info.flags & CKF_TOKEN_INITIALIZED) !== 0 && trimLabel(info.label) === sel.tokenLabel;
    } catch {
      return false;
    }
  });
  if (found.length === 0) {
    throw new FloeError(
      'invalid_request',
      `no PKCS#11 ${describeToken(sel)} in ${modulePath} (is the token present and initialised?)`,
    );
  }
  if (found.length > 1) {
    throw new FloeError(
      'invalid_request',
      `several PKCS#11 tokens match ${describeToken(sel)}; give the slot`,
    );
  }
  return found[0]!;
}

export type KeyRole = 'wrap' | 'hmac';

/**
 * A session on one token, logged in as the user (or the SO). The PIN is used for C_Login and
 * not kept. {@link close} logs out (when it is this process's last session on the token) and
 * closes the session, and releases the module.
 */
export class TokenSession {
  readonly module: Pkcs11Module;
  readonly slot: Handle;
  readonly handle: Handle;
  readonly token: string;
  #open = true;

  private constructor(module: Pkcs11Module, slot: Handle, handle: Handle, token: string) {
    this.module = module;
    this.slot = slot;
    this.handle = handle;
    this.token = token;
  }

  get lib(): Pkcs11Lib {
    return this.module.lib;
  }

  /**
   * Open a session on the selected token of `modulePath` and log in with `pin` (as the user,
   * unless `so`). Login failures are FloeError('unauthorized') naming the token and the
   * return code, never the PIN.
   */
  static open(
    modulePath: string,
    sel: TokenSelector,
    pin: string | undefined,
    opts: { rw?: boolean; so?: boolean } = {},
  ): TokenSession {
    const module = acquireModule(modulePath);
    let session: Handle | undefined;
    let slot: Handle | undefined;
    try {
      slot = findTokenSlot(module.lib, sel, modulePath);
      const token = describeToken(sel);
      try {
        session = module.lib.C_OpenSession(slot, CKF_SERIAL_SESSION | (opts.rw ? CKF_RW_SESSION : 0));
      } catch (e) {
        throw hsmError('invalid_request', `cannot open a session on PKCS#11 ${token}`, e);
      }
      const s = new TokenSession(module, slot, session, token);
      s.#count(+1);
      if (pin !== undefined) {
        try {
          module.lib.C_Login(session, opts.so ? CKU_SO : CKU_USER, pin);
        } catch (e) {
          const code = ckrCode(e);
          if (code !== CKR_USER_ALREADY_LOGGED_IN) {
            s.close();
            if (
              code === CKR_PIN_INCORRECT ||
              code === CKR_PIN_INVALID ||
              code === CKR_PIN_LEN_RANGE ||
              code === CKR_PIN_LOCKED
            ) {
              throw hsmError('unauthorized', `PKCS#11 ${token} refused the ${opts.so ? 'SO ' : ''}PIN`, e);
            }
            if (code === CKR_USER_PIN_NOT_INITIALIZED) {
              throw hsmError(
                'invalid_request',
                `PKCS#11 ${token} has no user PIN set (provision it first)`,
                e,
              );
            }
            throw hsmError('unauthorized', `login to PKCS#11 ${token} failed`, e);
          }
        }
      }
      return s;
    } catch (e) {
      if (session === undefined) module.release();
      throw e;
    }
  }

  #count(d: number): number {
    const sessions = (modules.get(moduleKey(this.module.path)) ?? { sessions: new Map<string, number>() })
      .sessions;
    const k = this.slot.toString('hex');
    const n = (sessions.get(k) ?? 0) + d;
    if (n <= 0) sessions.delete(k);
    else sessions.set(k, n);
    return n;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Handles of the secret keys labelled `label`. */
  findSecretKeys(label: string): Handle[] {
    const lib = this.lib;
    try {
      lib.C_FindObjectsInit(this.handle, [
        { type: CKA_CLASS, value: CKO_SECRET_KEY },
        { type: CKA_LABEL, value: label },
      ]);
      try {
        const out: Handle[] = [];
        for (;;) {
          const batch = lib.C_FindObjects(this.handle, 16);
          if (batch.length === 0) break;
          out.push(...batch);
        }
        return out;
      } finally {
        lib.C_FindObjectsFinal(this.handle);
      }
    } catch (e) {
      throw hsmError('internal', `cannot search PKCS#11 ${this.token} for key "${label}"`, e);
    }
  }

  /** Boolean and integer attributes of an object (by type). */
  attributes(object: Handle, types: number[]): Map<number, Buffer> {
    const r = this.lib.C_GetAttributeValue(
      this.handle,
      object,
      types.map((type) => ({ type })),
    );
    return new Map(r.map((a) => [a.type, a.value]));
  }

  /**
   * The one key labelled `label` for `role`, checked: a secret key of the right type, usable
   * for the role, and (unless `allowExtractable`) sensitive and never extractable.
   * FloeError('invalid_request') when missing, ambiguous or unfit.
   */
  key(label: string, role: KeyRole, opts: { allowExtractable?: boolean } = {}): Handle {
    const found = this.findSecretKeys(label);
    if (found.length === 0) {
      throw new FloeError(
        'invalid_request',
        `PKCS#11 ${this.token} has no key "${label}" (provision it: floe init --hsm, or provisionKeys)`,
      );
    }
    if (found.length > 1) {
      throw new FloeError('invalid_request', `PKCS#11 ${this.token} has several keys labelled "${label}"`);
    }
    const k = found[0]!;
    const problem = keyProblem(this, k, role, opts.allowExtractable === true);
    if (problem) throw new FloeError('invalid_request', `PKCS#11 ${this.token} key "${label}" ${problem}`);
    return k;
  }

  /** Log out if this is our last session on the token, close the session, release the module. Idempotent. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    const left = this.#count(-1);
    try {
      if (left === 0) this.lib.C_Logout(this.handle);
    } catch {
      // not logged in, or the token is gone: closing is all that is left
    }
    try {
      this.lib.C_CloseSession(this.handle);
    } catch {
      // the session is gone already
    }
    this.module.release();
  }
}

function attrBool(v: Buffer | undefined): boolean | undefined {
  return v === undefined || v.length === 0 ? undefined : v[0] !== 0;
}

function attrUlong(v: Buffer | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v.length >= 8) return Number(v.readBigUInt64LE(0));
  if (v.length >= 4) return v.readUInt32LE(0);
  return undefined;
}

/** Why key `k` is unfit for `role`, or undefined if it is fit. */
export function keyProblem(
  s: TokenSession,
  k: Handle,
  role: KeyRole,
  allowExtractable: boolean,
): string | undefined {
  const use = role === 'wrap' ? [CKA_ENCRYPT, CKA_DECRYPT] : [CKA_SIGN];
  let a: Map<number, Buffer>;
  try {
    a = s.attributes(k, [CKA_KEY_TYPE, CKA_SENSITIVE, CKA_EXTRACTABLE, ...use]);
  } catch (e) {
    return `cannot be inspected (${ckrName(e)})`;
  }
  const type = attrUlong(a.get(CKA_KEY_TYPE));
  if (role === 'wrap' && type !== CKK_AES) return 'is not an AES key';
  if (role === 'hmac' && type !== CKK_GENERIC_SECRET && type !== CKK_SHA256_HMAC) {
    return 'is not a generic secret or SHA-256 HMAC key';
  }
  for (const u of use) {
    if (attrBool(a.get(u)) !== true)
      return role === 'wrap' ? 'may not encrypt and decrypt' : 'may not sign (HMAC)';
  }
  if (!allowExtractable) {
    if (attrBool(a.get(CKA_SENSITIVE)) !== true)
      return 'is not sensitive (CKA_SENSITIVE is false); refusing it';
    if (attrBool(a.get(CKA_EXTRACTABLE)) !== false)
      return 'is extractable (CKA_EXTRACTABLE is true); refusing it';
  }
  return undefined;
}

// ---------- the key source ----------

export const PKCS11_KIND = 'pkcs11(aes-256-gcm)';
export const DEFAULT_WRAP_KEY_LABEL = 'floe-data-key-wrap';
export const DEFAULT_HMAC_KEY_LABEL = 'floe-deterministic-hmac';

const PARAMS_FORMAT = 0x01;
const MECH_AES_GCM = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_AAD_TAG = 'floe/signer/pkcs11-data-key/v1';

/** The GCM associated data: purpose and the wrap key's label. */
function dataKeyAad(wrapLabel: string): Buffer {
  return Buffer.from(lengthPrefixed(DATA_KEY_AAD_TAG, [utf8(wrapLabel)]));
}

function gcm(iv: Uint8Array, aad: Buffer): Mechanism {
  return {
    mechanism: CKM_AES_GCM,
    parameter: {
      type: loadPkcs11js().CK_PARAMS_AES_GCM_v240,
      iv: Buffer.from(iv),
      aad,
      ivBits: IV_BYTES * 8,
      tagBits: TAG_BYTES * 8,
    },
  };
}

export function encodePkcs11Params(wrapLabel: string, iv: Uint8Array, sealed: Uint8Array): Uint8Array {
  const l = utf8(wrapLabel);
  if (l.length === 0 || l.length > 255)
    throw new FloeError('invalid_request', 'PKCS#11 key label must be 1 to 255 bytes');
  if (iv.length !== IV_BYTES || sealed.length !== DATA_KEY_BYTES + TAG_BYTES) {
    throw new FloeError('internal', 'bad wrapped data key');
  }
  return concatBytes(Uint8Array.of(PARAMS_FORMAT, MECH_AES_GCM, l.length), l, iv, sealed);
}

export function decodePkcs11Params(params: Uint8Array): {
  wrapLabel: string;
  iv: Uint8Array;
  sealed: Uint8Array;
} {
  const bad = () => new FloeError('internal', 'stored PKCS#11 key parameters are malformed');
  if (params.length < 3 || params[0] !== PARAMS_FORMAT) throw bad();
  if (params[1] !== MECH_AES_GCM) {
    throw new FloeError('internal', `stored PKCS#11 key parameters use an unknown mechanism (${params[1]})`);
  }
  const n = params[2]!;
  if (n === 0 || params.length !== 3 + n + IV_BYTES + DATA_KEY_BYTES + TAG_BYTES) throw bad();
  let wrapLabel: string;
  try {
    wrapLabel = new TextDecoder('utf-8', { fatal: true }).decode(params.subarray(3, 3 + n));
  } catch {
    throw bad();
  }
  return {
    wrapLabel,
    iv: params.subarray(3 + n, 3 + n + IV_BYTES),
    sealed: params.subarray(3 + n + IV_BYTES),
  };
}

export interface Pkcs11KeySourceOptions extends TokenSelector {
  /** Path of the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  module: string;
  /** The user PIN (copied into a private buffer, wiped after the first login). */
  pin: string | Uint8Array;
  /** Label of the AES-256 key that encrypts new stores' data keys. Default floe-data-key-wrap. */
  wrapKeyLabel?: string;
  /** Label of the HMAC key of the deterministic secret. Default floe-deterministic-hmac. */
  hmacKeyLabel?: string;
}

/**
 * Data key under a token's non-extractable AES-256 key (CKM_AES_GCM), and the deterministic
 * secret as CKM_SHA256_HMAC under a token's non-extractable HMAC key. One session, opened and
 * logged in at first use; {@link dispose} logs out, closes it and (last user) finalizes.
 *
 * `init` refuses a wrap key that is extractable or not sensitive; {@link checkKeys} applies
 * the same to both keys (the signer calls it at start). {@link hmac} itself uses whatever key
 * carries the label, so a test can check the mechanism against a key it imported.
 */
export class Pkcs11KeySource implements KeySource, DeterministicSecret {
  readonly kind = PKCS11_KIND;
  readonly origin = 'hsm' as const;
  readonly module: string;
  readonly selector: TokenSelector;
  readonly wrapKeyLabel: string;
  readonly hmacKeyLabel: string;
  #pin: Buffer | undefined;
  #session: TokenSession | undefined;
  #hmacKey: Handle | undefined;
  #disposed = false;

  constructor(opts: Pkcs11KeySourceOptions) {
    checkSelector(opts);
    if (!opts.module) throw new FloeError('invalid_request', 'PKCS#11 module path is empty');
    const pin = typeof opts.pin === 'string' ? Buffer.from(opts.pin, 'utf8') : Buffer.from(opts.pin);
    if (pin.length === 0) throw new FloeError('invalid_request', 'HSM PIN is empty');
    this.module = opts.module;
    this.selector = opts.tokenLabel !== undefined ? { tokenLabel: opts.tokenLabel } : { slot: opts.slot! };
    this.wrapKeyLabel = opts.wrapKeyLabel ?? DEFAULT_WRAP_KEY_LABEL;
    this.hmacKeyLabel = opts.hmacKeyLabel ?? DEFAULT_HMAC_KEY_LABEL;
    this.#pin = pin;
  }

  get description(): string {
    return `HMAC key "${this.hmacKeyLabel}" in PKCS#11 ${describeToken(this.selector)}`;
  }

  /** The logged-in session, opened at first use. The PIN copy is wiped after that login attempt. */
  #s(): TokenSession {
    if (this.#disposed) throw new FloeError('internal', 'PKCS#11 key source was disposed');
    if (this.#session?.isOpen) return this.#session;
    const pin = this.#pin;
    if (!pin) {
      throw new FloeError(
        'internal',
        `the session with PKCS#11 ${describeToken(this.selector)} was lost and the PIN is no longer held; restart`,
      );
    }
    try {
      this.#session = TokenSession.open(this.module, this.selector, pin.toString('utf8'));
    } finally {
      pin.fill(0);
      this.#pin = undefined;
    }
    return this.#session;
  }

  /**
   * Both keys are present and fit: the wrap key AES, the HMAC key generic secret or SHA-256
   * HMAC, each sensitive and not extractable. FloeError('invalid_request') otherwise.
   */
  checkKeys(): void {
    const s = this.#s();
    s.key(this.wrapKeyLabel, 'wrap');
    this.#hmacKey = s.key(this.hmacKeyLabel, 'hmac');
  }

  /** A fresh random data key, encrypted under the wrap key; decrypted once to check the token round-trips. */
  async init(): Promise<{ params: Uint8Array; dataKey: Uint8Array }> {
    const s = this.#s();
    const key = s.key(this.wrapKeyLabel, 'wrap');
    const dataKey = new Uint8Array(randomBytes(DATA_KEY_BYTES));
    const iv = new Uint8Array(randomBytes(IV_BYTES));
    const aad = dataKeyAad(this.wrapKeyLabel);
    let sealed: Buffer;
    try {
      s.lib.C_EncryptInit(s.handle, gcm(iv, aad), key);
      sealed = s.lib.C_Encrypt(s.handle, Buffer.from(dataKey), Buffer.alloc(DATA_KEY_BYTES + TAG_BYTES + 16));
    } catch (e) {
      wipe(dataKey);
      throw hsmError('internal', `PKCS#11 ${s.token} did not encrypt under key "${this.wrapKeyLabel}"`, e);
    }
    let params: Uint8Array;
    try {
      params = encodePkcs11Params(this.wrapKeyLabel, iv, sealed);
      const back = await this.unwrap(params);
      const same = Buffer.compare(Buffer.from(back), Buffer.from(dataKey)) === 0;
      wipe(back);
      if (!same) throw new FloeError('internal', `PKCS#11 ${s.token} does not decrypt what it encrypted`);
    } catch (e) {
      wipe(dataKey);
      throw e;
    }
    return { params, dataKey };
  }

  /** The data key from stored parameters: C_Decrypt under the key they name. */
  async unwrap(params: Uint8Array): Promise<Uint8Array> {
    const { wrapLabel, iv, sealed } = decodePkcs11Params(params);
    const s = this.#s();
    const key = s.key(wrapLabel, 'wrap');
    let out: Buffer;
    try {
      s.lib.C_DecryptInit(s.handle, gcm(iv, dataKeyAad(wrapLabel)), key);
      out = s.lib.C_Decrypt(s.handle, Buffer.from(sealed), Buffer.alloc(sealed.length));
    } catch (e) {
      throw hsmError(
        'unauthorized',
        `the store's data key does not decrypt under key "${wrapLabel}" of PKCS#11 ${s.token} (another token, or the key was replaced)`,
        e,
      );
    }
    if (out.length !== DATA_KEY_BYTES) {
      out.fill(0);
      throw new FloeError('internal', 'the unwrapped data key has the wrong length');
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  /** CKM_SHA256_HMAC inside the token under the HMAC key, of deterministicMessage(label, data). */
  async hmac(label: string, data: Uint8Array): Promise<Uint8Array> {
    const msg = Buffer.from(deterministicMessage(label, data));
    const s = this.#s();
    this.#hmacKey ??= s.key(this.hmacKeyLabel, 'hmac', { allowExtractable: true });
    let mac: Buffer;
    try {
      s.lib.C_SignInit(s.handle, { mechanism: CKM_SHA256_HMAC }, this.#hmacKey);
      mac = s.lib.C_Sign(s.handle, msg, Buffer.alloc(64));
    } catch (e) {
      throw hsmError(
        'internal',
        `PKCS#11 ${s.token} did not compute the HMAC under key "${this.hmacKeyLabel}"`,
        e,
      );
    }
    if (mac.length !== 32) throw new FloeError('internal', 'the HSM returned an HMAC of the wrong length');
    return new Uint8Array(mac.buffer, mac.byteOffset, mac.byteLength);
  }

  /** Wipe the PIN copy; log out, close the session, and finalize the library if it was the last user. */
  dispose(): void {
    this.#disposed = true;
    this.#pin?.fill(0);
    this.#pin = undefined;
    this.#hmacKey = undefined;
    this.#session?.close();
    this.#session = undefined;
  }
}

// ---------- the PIN ----------

export const HSM_PIN_ENV = 'FLOE_SIGNER_HSM_PIN';

/**
 * The HSM user PIN, from FLOE_SIGNER_HSM_PIN or a PIN file (exactly one), the file read with
 * the passphrase file's checks (regular file, 0600 or stricter, at most 4 KiB, one trailing
 * newline removed, not empty). Errors name the source, never its content.
 */
export async function readHsmPin(
  env: Readonly<Record<string, string | undefined>>,
  file?: string,
): Promise<string> {
  const fromEnv = env[HSM_PIN_ENV];
  if (fromEnv !== undefined && file !== undefined) {
    throw new FloeError(
      'invalid_request',
      `both ${HSM_PIN_ENV} and an HSM PIN file are given; use exactly one`,
    );
  }
  if (fromEnv !== undefined) {
    if (fromEnv.length === 0) throw new FloeError('invalid_request', `${HSM_PIN_ENV} is empty`);
    return fromEnv;
  }
  if (file === undefined) {
    throw new FloeError(
      'invalid_request',
      `no HSM PIN: set ${HSM_PIN_ENV} or give a PIN file (key_source.pin_file, FLOE_SIGNER_HSM_PIN_FILE)`,
    );
  }
  return readSecretFile(file, 'HSM PIN file');
}
