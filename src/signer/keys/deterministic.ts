/**
 * The signer's deterministic secret: a keyed HMAC-SHA256 that the deterministic DKG (Bitcoin
 * custody, DESIGN §14) calls per signer to draw its randomness from a passphrase, so that the
 * same signers with the same secret and passphrase regenerate the same key after a total loss.
 *
 * Two implementations:
 *   - an HSM (./pkcs11.ts Pkcs11KeySource): the key is a non-extractable, sensitive
 *     CKK_GENERIC_SECRET in the token and CKM_SHA256_HMAC runs inside it; the key leaves the
 *     token only through the HSM's own backup mechanism, so a signer can be rebuilt from an HSM
 *     backup;
 *   - a stand-in when no HSM is configured ({@link StoreDeterministicSecret}): a 32-byte secret
 *     that exists only in the signer's encrypted store. Lose the store (or its passphrase) and
 *     the secret is gone; no HSM backup can regenerate what was derived from it.
 *
 * Both compute HMAC-SHA256(key, {@link deterministicMessage}(label, data)), so the output for a
 * label and data depends on the key alone, and the label separates uses (a DKG polynomial, a
 * nonce, ...) from each other.
 *
 * Nothing here logs; no error carries the key, the label's data or an output.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { parseScalar } from '../../crypto/group.js';
import { lengthPrefixed, u32be, utf8 } from '../../crypto/hash.js';
import { FloeError } from '../../protocol/errors.js';
import { DATA_KEY_BYTES, type KeySource } from './key-source.js';

export interface DeterministicSecret {
  /**
   * Where the key lives: `hsm` (a token key, restorable from the HSM's backups) or `store`
   * (the stand-in in the signer's store: it cannot be regenerated from HSM backups).
   */
  readonly origin: 'hsm' | 'store';
  /** Human-readable: which token and key, or that it is the store stand-in. Never secret. */
  readonly description: string;
  /**
   * HMAC-SHA256 under the secret key of {@link deterministicMessage}(label, data): 32 bytes,
   * the same for the same key, label and data. `label` names the use (1 to 256 bytes of
   * UTF-8); `data` is at most 64 KiB.
   */
  hmac(label: string, data: Uint8Array): Promise<Uint8Array>;
  /** Forget the key (or close the HSM session); later {@link hmac} calls fail. */
  dispose(): void;
}

export const DETERMINISTIC_TAG = 'floe/signer/deterministic-secret/hmac/v1';
export const DETERMINISTIC_OUTPUT_BYTES = 32;
const MAX_LABEL_BYTES = 256;
const MAX_DATA_BYTES = 64 * 1024;

/**
 * The bytes HMAC'd for (label, data): length-prefixed tag, label and data
 * (u32be(len(tag)) || tag || u32be(len(label)) || label || u32be(len(data)) || data), so no
 * two (label, data) pairs share an input.
 */
export function deterministicMessage(label: string, data: Uint8Array): Uint8Array {
  const l = utf8(label);
  if (l.length === 0 || l.length > MAX_LABEL_BYTES) {
    throw new FloeError(
      'invalid_request',
      `deterministic secret label must be 1 to ${MAX_LABEL_BYTES} bytes`,
    );
  }
  if (!(data instanceof Uint8Array) || data.length > MAX_DATA_BYTES) {
    throw new FloeError(
      'invalid_request',
      `deterministic secret input must be at most ${MAX_DATA_BYTES} bytes`,
    );
  }
  return lengthPrefixed(DETERMINISTIC_TAG, [l, data]);
}

/** Label of the HMAC that gives a signer its identity key from an HSM (src/signer/node.ts). */
export const IDENTITY_KEY_LABEL = 'floe/signer/identity-key/v1';

/**
 * A signer identity key (a secp256k1 scalar, 0 < k < n) from the deterministic secret:
 * HMAC(label {@link IDENTITY_KEY_LABEL}, u32be(counter)) for the first counter whose output is
 * in range (the first, but for a probability of about 2^-128). The caller wipes it.
 */
export async function deriveIdentityKey(secret: DeterministicSecret): Promise<Uint8Array> {
  for (let counter = 0; counter < 16; counter++) {
    const k = await secret.hmac(IDENTITY_KEY_LABEL, u32be(counter));
    try {
      parseScalar(k, 'identity key');
      return k;
    } catch {
      k.fill(0);
    }
  }
  throw new FloeError('internal', 'the deterministic secret gave no identity key');
}

/** HKDF info of the stand-in key: a key of its own, separate from the record cipher and the row MAC. */
export const STAND_IN_INFO = 'floe/signer/deterministic-secret/stand-in/v1';

/**
 * The stand-in for an HSM's HMAC key when none is configured: a 32-byte secret kept in the
 * signer's encrypted store. It is HKDF-SHA256(data key, info {@link STAND_IN_INFO}): the data
 * key is fixed when the store is created (random salt, or a random key wrapped by the source)
 * and only the store's key source gets it back, so the secret exists exactly where the store
 * and its passphrase do, needs no record of its own, and no other key the store uses is
 * derivable from it or it from them.
 *
 * It cannot be regenerated from anything but the store: keep backups of the store (and the
 * passphrase) or lose what was derived from it.
 */
export class StoreDeterministicSecret implements DeterministicSecret {
  readonly origin = 'store' as const;
  readonly description = 'stand-in secret in the signer store (no HSM configured)';
  #key: KeyObject | undefined;

  /** Derives the key from a data key; the caller may (and should) wipe `dataKey`. */
  constructor(dataKey: Uint8Array) {
    if (dataKey.length !== DATA_KEY_BYTES) {
      throw new FloeError('internal', `data key must be ${DATA_KEY_BYTES} bytes`);
    }
    const k = new Uint8Array(hkdfSync('sha256', dataKey, new Uint8Array(0), STAND_IN_INFO, 32));
    this.#key = createSecretKey(k);
    k.fill(0);
  }

  hmac(label: string, data: Uint8Array): Promise<Uint8Array> {
    try {
      if (!this.#key) throw new FloeError('internal', 'deterministic secret was disposed');
      const d = createHmac('sha256', this.#key).update(deterministicMessage(label, data)).digest();
      return Promise.resolve(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  dispose(): void {
    this.#key = undefined;
  }
}

/**
 * A key source that behaves as `inner` and, at the open, also keeps the store's stand-in
 * deterministic secret (derived from the data key as it passes through; the copy it reads is
 * the store's to wipe). {@link take} hands it over once the store is open.
 */
export class StandInCapture implements KeySource {
  readonly #inner: KeySource;
  #secret: StoreDeterministicSecret | undefined;

  constructor(inner: KeySource) {
    this.#inner = inner;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  opensKind(recorded: string): boolean {
    return this.#inner.opensKind?.(recorded) === true;
  }

  async init(): Promise<{ params: Uint8Array; dataKey: Uint8Array }> {
    const r = await this.#inner.init();
    this.#keep(r.dataKey);
    return r;
  }

  async unwrap(params: Uint8Array): Promise<Uint8Array> {
    const dataKey = await this.#inner.unwrap(params);
    this.#keep(dataKey);
    return dataKey;
  }

  #keep(dataKey: Uint8Array): void {
    this.#secret?.dispose();
    this.#secret = new StoreDeterministicSecret(dataKey);
  }

  /**
   * The stand-in secret of the store just opened. Only call after the store opened (a data key
   * that failed the store's check never reaches the caller through a successful open).
   */
  take(): StoreDeterministicSecret {
    const s = this.#secret;
    if (!s) throw new FloeError('internal', 'no data key passed through this key source');
    this.#secret = undefined;
    return s;
  }

  dispose(): void | Promise<void> {
    this.#secret?.dispose();
    this.#secret = undefined;
    return this.#inner.dispose();
  }
}
