/**
 * The remote-signer keys of bunkers at rest (DESIGN §14): AES-256-GCM under a key derived with
 * HKDF-SHA256 from the coordinator's `bunker.key` (32 random bytes in its data dir, 0600, like
 * `identity.key` and `jwt.key`), a fresh 96-bit nonce per seal, and the tenant, key id and
 * remote-signer pubkey as associated data, so a sealed key opens only in the row it was
 * written for. Every coordinator of one database that should run bunkers holds the same
 * `bunker.key`; `keyId` (a derived fingerprint, nothing about the key) names it in each row,
 * so a coordinator only claims the bunkers it can open.
 *
 * Never the user key: that one is split over the signers and never leaves them.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadOrCreateSecret } from '../../config/secret-file.js';
import { fromHex, toHex, wipe } from '../../crypto/hex.js';
import { softwareIdentity } from '../../crypto/identity.js';
import { FloeError } from '../../protocol/errors.js';

/** A sealed remote-signer key as stored (hex). */
export interface SealedSignerKey {
  /** Fingerprint of the sealing key (16 hex characters). */
  sealKeyId: string;
  nonce: string;
  /** 32-byte key then the 16-byte tag. */
  ciphertext: string;
}

/** What the seal is bound to. */
export interface SealContext {
  tenantId: string;
  keyId: string;
  remoteSignerPubkey: string;
}

const ENC_INFO = 'floe/bunker/seal/v1';
const ID_INFO = 'floe/bunker/seal-key-id/v1';
const TAG_BYTES = 16;

function aad(c: SealContext): Buffer {
  return Buffer.from(['floe/bunker/v1', c.tenantId, c.keyId, c.remoteSignerPubkey].join('\0'), 'utf8');
}

export class BunkerSealer {
  /** Names the sealing key in stored rows; reveals nothing about it. */
  readonly keyId: string;
  #key: Uint8Array;

  /** `master`: the 32 bytes of `bunker.key` (copied; the caller wipes its own). */
  constructor(master: Uint8Array) {
    if (!(master instanceof Uint8Array) || master.length !== 32) {
      throw new FloeError('invalid_request', 'bunker.key: expected 32 bytes');
    }
    this.#key = new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), ENC_INFO, 32));
    this.keyId = toHex(new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), ID_INFO, 8)));
  }

  seal(secret: Uint8Array, c: SealContext): SealedSignerKey {
    if (!(secret instanceof Uint8Array) || secret.length !== 32) {
      throw new FloeError('invalid_request', 'remote-signer key: expected 32 bytes');
    }
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(c));
    const ct = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
    return { sealKeyId: this.keyId, nonce: nonce.toString('hex'), ciphertext: ct.toString('hex') };
  }

  /**
   * The remote-signer secret key (the caller wipes it), checked against the pubkey it was
   * sealed for. Refuses a row sealed under another `bunker.key`, or altered, with a sentence
   * that names the fingerprints and never a secret.
   */
  open(s: SealedSignerKey, c: SealContext): Uint8Array {
    if (s.sealKeyId !== this.keyId) {
      throw new FloeError(
        'unavailable',
        `bunker of key ${c.keyId}: sealed under bunker.key ${s.sealKeyId}, this coordinator has ${this.keyId}`,
        { hint: 'every coordinator that runs bunkers needs the same <data_dir>/bunker.key' },
      );
    }
    const ct = Buffer.from(s.ciphertext, 'hex');
    if (ct.length !== 32 + TAG_BYTES || !/^[0-9a-f]{24}$/.test(s.nonce)) {
      throw new FloeError('internal', `bunker of key ${c.keyId}: the sealed key is malformed`);
    }
    const d = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(s.nonce, 'hex'), {
      authTagLength: TAG_BYTES,
    });
    d.setAAD(aad(c));
    d.setAuthTag(ct.subarray(32));
    const secret = new Uint8Array(32);
    try {
      const head = d.update(ct.subarray(0, 32));
      const tail = d.final();
      secret.set(head);
      secret.set(tail, head.length);
      wipe(head, tail);
    } catch {
      wipe(secret);
      throw new FloeError('internal', `bunker of key ${c.keyId}: the sealed key does not open (altered?)`);
    }
    const id = softwareIdentity(secret);
    const ok = id.publicKeyHex === c.remoteSignerPubkey;
    id.dispose();
    if (!ok) {
      wipe(secret);
      throw new FloeError(
        'internal',
        `bunker of key ${c.keyId}: the sealed key is not its remote-signer key`,
      );
    }
    return secret;
  }

  dispose(): void {
    wipe(this.#key);
  }
}

/** File name of the sealing key in the coordinator's data dir. */
export const BUNKER_KEY_FILE = 'bunker.key';

/**
 * The sealer of `<dataDir>/bunker.key` (created on first use: 32 random bytes as hex, 0600;
 * refused when group or others can read it). Coordinators sharing a database copy this file.
 */
export function loadBunkerSealer(dataDir: string): BunkerSealer {
  const hex = loadOrCreateSecret(join(dataDir, BUNKER_KEY_FILE), 'bunker sealing key', () =>
    toHex(randomBytes(32)),
  );
  const master = fromHex(hex, 'bunker.key', 32);
  try {
    return new BunkerSealer(master);
  } finally {
    wipe(master);
  }
}
