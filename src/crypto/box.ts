/**
 * Authenticated encryption of a payload from one identity key to another, for what the
 * coordinator relays but must not read: DKG round-2 shares (static sender key, so only the
 * sender or the receiver can produce a box that opens: the coordinator cannot forge one and
 * frame the sender) and dealer shares on import (ephemeral sender key).
 *
 * key = HKDF-SHA256(ikm = x(ECDH), salt = sender_pub || recipient_pub, info), then
 * AES-256-GCM with a fresh random 96-bit nonce per box and caller-supplied associated data.
 * The identities are capabilities ({@link NodeIdentity}): the secret never passes through here.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { CryptoError } from './errors.js';
import { concatBytes, fromHex, toHex, wipe } from './hex.js';
import type { NodeIdentity } from './identity.js';

export interface SealedBox {
  /** Sender public key (x-only hex). For imports it is an ephemeral key. */
  sender: string;
  nonce: string;
  /** Ciphertext followed by the 16-byte GCM tag. */
  ciphertext: string;
}

/**
 * The box key between `self` and `peer` (x-only keys): HKDF-SHA256 over x(ECDH) with salt
 * sender_pub || recipient_pub, where `self` is the sender when `role` is 'seal'.
 */
export function deriveBoxKey(
  self: NodeIdentity,
  peer: Uint8Array,
  role: 'seal' | 'open',
  info: string,
): Uint8Array {
  if (!(peer instanceof Uint8Array) || peer.length !== 32) {
    throw new CryptoError('invalid_encoding', 'peer key: expected 32 bytes');
  }
  const own = self.publicKey;
  const salt = role === 'seal' ? concatBytes(own, peer) : concatBytes(peer, own);
  const shared = self.ecdh(peer);
  try {
    return new Uint8Array(hkdfSync('sha256', shared, salt, info, 32));
  } finally {
    wipe(shared);
  }
}

export function sealBox(
  sender: NodeIdentity,
  recipientPub: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  info: string,
): SealedBox {
  const key = deriveBoxKey(sender, recipientPub, 'seal', info);
  const nonce = randomBytes(12);
  try {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    return { sender: sender.publicKeyHex, nonce: toHex(nonce), ciphertext: toHex(ct) };
  } finally {
    wipe(key);
  }
}

/** Opens a box; any tampering, a wrong key, wrong AAD or wrong sender gives `invalid_share`. */
export function openBox(
  recipient: NodeIdentity,
  box: SealedBox,
  aad: Uint8Array,
  info: string,
  expectedSender?: Uint8Array,
): Uint8Array {
  const senderPub = fromHex(box.sender, 'box.sender', 32);
  if (expectedSender && toHex(expectedSender) !== box.sender) {
    throw new CryptoError('invalid_share', 'box is not from the expected sender');
  }
  const nonce = fromHex(box.nonce, 'box.nonce', 12);
  const ct = fromHex(box.ciphertext, 'box.ciphertext');
  if (ct.length < 16) throw new CryptoError('invalid_encoding', 'box.ciphertext: too short');
  const key = deriveBoxKey(recipient, senderPub, 'open', info);
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
  } catch {
    throw new CryptoError('invalid_share', 'box does not open (wrong key, sender, context or tampered)');
  } finally {
    wipe(key);
  }
}
