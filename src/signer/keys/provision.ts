/**
 * Provisioning a PKCS#11 token for a signer (./pkcs11.ts): the AES-256 key that encrypts the
 * store's data key and the HMAC key of the deterministic secret, both generated inside the
 * token, sensitive, not extractable, not modifiable, with fixed labels. `floe init --hsm` runs
 * {@link provisionToken} per signer; on a token initialised by the HSM's own tools,
 * {@link provisionKeys} adds the keys.
 *
 * Idempotent: a key that is already there (and fit: right type and use, sensitive, not
 * extractable) is kept, so running it again, or against a token restored from an HSM backup,
 * changes nothing. It never overwrites a key unless asked (`replace`), and refuses a key that
 * carries the label but is unfit.
 *
 * No PIN is logged or put in an error.
 */
import { utf8 } from '../../crypto/hash.js';
import { FloeError } from '../../protocol/errors.js';
import {
  type Attribute,
  acquireModule,
  CKA_CLASS,
  CKA_DECRYPT,
  CKA_DERIVE,
  CKA_ENCRYPT,
  CKA_EXTRACTABLE,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKA_MODIFIABLE,
  CKA_PRIVATE,
  CKA_SENSITIVE,
  CKA_SIGN,
  CKA_TOKEN,
  CKA_UNWRAP,
  CKA_VALUE_LEN,
  CKA_VERIFY,
  CKA_WRAP,
  CKF_TOKEN_INITIALIZED,
  CKK_AES,
  CKK_GENERIC_SECRET,
  CKM_AES_KEY_GEN,
  CKM_GENERIC_SECRET_KEY_GEN,
  CKO_SECRET_KEY,
  ckrName,
  DEFAULT_HMAC_KEY_LABEL,
  DEFAULT_WRAP_KEY_LABEL,
  findTokenSlot,
  type KeyRole,
  keyProblem,
  type Mechanism,
  slotId,
  type TokenSelector,
  TokenSession,
  trimLabel,
} from './pkcs11.js';

export interface ProvisionKeysOptions extends TokenSelector {
  /** Path of the PKCS#11 library. */
  module: string;
  /** The token's user PIN. */
  userPin: string;
  /** Default floe-data-key-wrap. */
  wrapKeyLabel?: string;
  /** Default floe-deterministic-hmac. */
  hmacKeyLabel?: string;
  /**
   * Destroy keys that carry the labels and make new ones. Destroying the wrap key makes every
   * store sealed under it unopenable; destroying the HMAC key changes every deterministic
   * output (keys derived from it cannot be regenerated). Default false: existing fit keys are
   * kept, unfit ones refused.
   */
  replace?: boolean;
}

export type KeyOutcome = 'created' | 'existing' | 'replaced';

export interface ProvisionResult {
  /** The token label (trimmed). */
  tokenLabel: string;
  /** Its slot id, decimal. */
  slot: string;
  /** Whether this call initialised the token (provisionToken on a free slot). */
  tokenInitialized: boolean;
  wrapKey: KeyOutcome;
  hmacKey: KeyOutcome;
}

const KEY_BYTES = 32;

/** Generation template of a role's key: a token object, private, sensitive, never extractable, fixed. */
function template(role: KeyRole, label: string): { mechanism: Mechanism; attrs: Attribute[] } {
  const common: Attribute[] = [
    { type: CKA_CLASS, value: CKO_SECRET_KEY },
    { type: CKA_VALUE_LEN, value: KEY_BYTES },
    { type: CKA_TOKEN, value: true },
    { type: CKA_PRIVATE, value: true },
    { type: CKA_SENSITIVE, value: true },
    { type: CKA_EXTRACTABLE, value: false },
    { type: CKA_MODIFIABLE, value: false },
    { type: CKA_DERIVE, value: false },
    { type: CKA_LABEL, value: label },
  ];
  if (role === 'wrap') {
    return {
      mechanism: { mechanism: CKM_AES_KEY_GEN },
      attrs: [
        ...common,
        { type: CKA_KEY_TYPE, value: CKK_AES },
        { type: CKA_ENCRYPT, value: true },
        { type: CKA_DECRYPT, value: true },
        { type: CKA_WRAP, value: false },
        { type: CKA_UNWRAP, value: false },
        { type: CKA_SIGN, value: false },
        { type: CKA_VERIFY, value: false },
      ],
    };
  }
  return {
    mechanism: { mechanism: CKM_GENERIC_SECRET_KEY_GEN },
    attrs: [
      ...common,
      { type: CKA_KEY_TYPE, value: CKK_GENERIC_SECRET },
      { type: CKA_SIGN, value: true },
      { type: CKA_VERIFY, value: false },
    ],
  };
}

function checkLabel(label: string): string {
  const n = utf8(label).length;
  if (n === 0 || n > 255) throw new FloeError('invalid_request', 'PKCS#11 key label must be 1 to 255 bytes');
  return label;
}

function ensureKey(s: TokenSession, role: KeyRole, label: string, replace: boolean): KeyOutcome {
  const found = s.findSecretKeys(label);
  if (found.length > 0 && !replace) {
    if (found.length > 1) {
      throw new FloeError('invalid_request', `PKCS#11 ${s.token} has several keys labelled "${label}"`);
    }
    const problem = keyProblem(s, found[0]!, role, false);
    if (problem) {
      throw new FloeError(
        'invalid_request',
        `PKCS#11 ${s.token} key "${label}" ${problem}; it is not replaced unless asked (replace)`,
      );
    }
    return 'existing';
  }
  for (const k of found) {
    try {
      s.lib.C_DestroyObject(s.handle, k);
    } catch (e) {
      throw new FloeError(
        'invalid_request',
        `PKCS#11 ${s.token}: key "${label}" cannot be destroyed (${ckrName(e)})`,
      );
    }
  }
  const t = template(role, label);
  try {
    s.lib.C_GenerateKey(s.handle, t.mechanism, t.attrs);
  } catch (e) {
    throw new FloeError(
      'invalid_request',
      `PKCS#11 ${s.token} did not generate key "${label}" (${ckrName(e)})`,
    );
  }
  return found.length > 0 ? 'replaced' : 'created';
}

/**
 * On an initialised token with a user PIN: create the wrap key and the HMAC key unless they
 * exist (see {@link ProvisionKeysOptions.replace}).
 */
export async function provisionKeys(o: ProvisionKeysOptions): Promise<ProvisionResult> {
  const wrapLabel = checkLabel(o.wrapKeyLabel ?? DEFAULT_WRAP_KEY_LABEL);
  const hmacLabel = checkLabel(o.hmacKeyLabel ?? DEFAULT_HMAC_KEY_LABEL);
  if (wrapLabel === hmacLabel)
    throw new FloeError('invalid_request', 'the wrap and HMAC keys need different labels');
  const s = TokenSession.open(o.module, o, o.userPin, { rw: true });
  try {
    const wrapKey = ensureKey(s, 'wrap', wrapLabel, o.replace === true);
    const hmacKey = ensureKey(s, 'hmac', hmacLabel, o.replace === true);
    return {
      tokenLabel: trimLabel(s.lib.C_GetTokenInfo(s.slot).label),
      slot: slotId(s.slot).toString(),
      tokenInitialized: false,
      wrapKey,
      hmacKey,
    };
  } finally {
    s.close();
  }
}

export interface ProvisionTokenOptions extends Omit<ProvisionKeysOptions, 'slot' | 'tokenLabel'> {
  tokenLabel: string;
  /** The Security Officer PIN the token is initialised with (unused if the token exists). */
  soPin: string;
}

/**
 * The token labelled `tokenLabel`, with its keys: if no token carries the label, initialise
 * one in the first slot holding an uninitialised token (SoftHSM always offers one; a real HSM's
 * tokens are usually initialised by its own tools) with `soPin` and the label, set its user
 * PIN, then {@link provisionKeys}. An existing token is only given its keys (with `userPin`).
 */
export async function provisionToken(o: ProvisionTokenOptions): Promise<ProvisionResult> {
  if (!o.soPin || !o.userPin) throw new FloeError('invalid_request', 'SO PIN and user PIN must not be empty');
  const labelBytes = utf8(o.tokenLabel).length;
  if (labelBytes === 0 || labelBytes > 32)
    throw new FloeError('invalid_request', 'PKCS#11 token label must be 1 to 32 bytes');
  // Hold the library across the steps, so it is not finalized (and re-read) between them.
  const mod = acquireModule(o.module);
  try {
    const sel = { tokenLabel: o.tokenLabel };
    let exists = true;
    try {
      findTokenSlot(mod.lib, sel, o.module);
    } catch (e) {
      if ((e as FloeError).code !== 'invalid_request' || /several/.test((e as Error).message)) throw e;
      exists = false;
    }
    if (!exists) {
      const free = mod.lib.C_GetSlotList(true).find((s) => {
        try {
          return (mod.lib.C_GetTokenInfo(s).flags & CKF_TOKEN_INITIALIZED) === 0;
        } catch {
          return false;
        }
      });
      if (!free) {
        throw new FloeError(
          'invalid_request',
          `no PKCS#11 token "${o.tokenLabel}" in ${o.module}, and no uninitialised token to create it in` +
            ' (SoftHSM: is SOFTHSM2_CONF set, and its tokendir writable?)',
        );
      }
      try {
        mod.lib.C_InitToken(free, o.soPin, o.tokenLabel + ' '.repeat(32 - labelBytes));
      } catch (e) {
        throw new FloeError(
          'invalid_request',
          `PKCS#11 token "${o.tokenLabel}" could not be initialised (${ckrName(e)})`,
        );
      }
      const so = TokenSession.open(o.module, sel, o.soPin, { rw: true, so: true });
      try {
        so.lib.C_InitPIN(so.handle, o.userPin);
      } catch (e) {
        throw new FloeError(
          'invalid_request',
          `PKCS#11 token "${o.tokenLabel}": the user PIN could not be set (${ckrName(e)})`,
        );
      } finally {
        so.close();
      }
    }
    const r = await provisionKeys({ ...o, tokenLabel: o.tokenLabel });
    return { ...r, tokenInitialized: !exists };
  } finally {
    mod.release();
  }
}
