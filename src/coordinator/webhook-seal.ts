/**
 * Webhook signing secrets at rest: AES-256-GCM under a key derived with HKDF-SHA256 from the
 * coordinator's `jwt.key` (which every coordinator of one database already shares, for the
 * same reason: any of them must be able to use it), a fresh 96-bit nonce per seal, and the
 * tenant and webhook id as associated data, so a sealed secret opens only in the row it was
 * written for. The database holds `v1.<key id>.<nonce>.<ciphertext‖tag>` (hex), never the
 * secret: reading the database is not enough to forge a delivery.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { toHex } from '../crypto/hex.js';
import { FloeError } from '../protocol/errors.js';

/** What a sealed secret is bound to. */
export interface WebhookSealContext {
  tenantId: string;
  webhookId: string;
}

const ENC_INFO = 'floe/webhook/seal/v1';
const ID_INFO = 'floe/webhook/seal-key-id/v1';
const TAG_BYTES = 16;

const aad = (c: WebhookSealContext) => Buffer.from(`floe/webhook/v1\0${c.tenantId}\0${c.webhookId}`, 'utf8');

export class WebhookSealer {
  /** Names the sealing key in stored values; reveals nothing about it. */
  readonly keyId: string;
  readonly #key: Uint8Array;

  /** `master`: 32 secret bytes (the coordinator's `jwt.key`); copied through HKDF. */
  constructor(master: Uint8Array) {
    if (!(master instanceof Uint8Array) || master.length !== 32) {
      throw new FloeError('invalid_request', 'webhook sealing key: expected 32 bytes');
    }
    this.#key = new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), ENC_INFO, 32));
    this.keyId = toHex(new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), ID_INFO, 8)));
  }

  seal(secret: string, c: WebhookSealContext): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(c));
    const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${this.keyId}.${nonce.toString('hex')}.${ct.toString('hex')}`;
  }

  /** The secret; refuses a value sealed under another key, for another row, or altered. */
  open(sealed: string, c: WebhookSealContext): string {
    const [v, keyId, nonceHex, ctHex] = sealed.split('.');
    if (
      v !== 'v1' ||
      !keyId ||
      !nonceHex ||
      !ctHex ||
      nonceHex.length !== 24 ||
      ctHex.length <= TAG_BYTES * 2
    ) {
      throw new FloeError(
        'unavailable',
        `webhook ${c.webhookId}: its stored secret is not in the sealed format`,
      );
    }
    if (keyId !== this.keyId) {
      throw new FloeError(
        'unavailable',
        `webhook ${c.webhookId}: its secret is sealed under key ${keyId}, this coordinator has ${this.keyId}`,
        { hint: 'every coordinator of one database needs the same <data_dir>/jwt.key' },
      );
    }
    const ct = Buffer.from(ctHex, 'hex');
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(nonceHex, 'hex'), {
        authTagLength: TAG_BYTES,
      });
      d.setAAD(aad(c));
      d.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
      return Buffer.concat([d.update(ct.subarray(0, ct.length - TAG_BYTES)), d.final()]).toString('utf8');
    } catch {
      throw new FloeError(
        'unavailable',
        `webhook ${c.webhookId}: its sealed secret does not open here (altered?)`,
      );
    }
  }
}
