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
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from './identity.js';

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
  const shared = self.ecdh(peer);
  try {
    return role === 'seal'
      ? boxKeyFromShared(shared, own, peer, info)
      : boxKeyFromShared(shared, peer, own, info);
  } finally {
    wipe(shared);
  }
}

/**
 * The box key from x(ECDH) itself (32 bytes), as {@link deriveBoxKey} derives it: for a third
 * party given the shared x by a verified complaint (`complaint.ts`). Keys are x-only.
 */
export function boxKeyFromShared(
  sharedX: Uint8Array,
  senderPub: Uint8Array,
  recipientPub: Uint8Array,
  info: string,
): Uint8Array {
  for (const [k, what] of [
    [sharedX, 'shared x'],
    [senderPub, 'sender key'],
    [recipientPub, 'recipient key'],
  ] as const) {
    if (!(k instanceof Uint8Array) || k.length !== 32) {
      throw new CryptoError('invalid_encoding', `${what}: expected 32 bytes`);
    }
  }
  return new Uint8Array(hkdfSync('sha256', sharedX, concatBytes(senderPub, recipientPub), info, 32));
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
  const { nonce, ct } = boxParts(box);
  const key = deriveBoxKey(recipient, senderPub, 'open', info);
  try {
    return decrypt(key, nonce, ct, aad);
  } finally {
    wipe(key);
  }
}

/**
 * Opens a box with x(ECDH) of its sender and recipient given directly (a third party after a
 * verified complaint revealed it, `complaint.ts`): the key is derived with salt
 * box.sender || recipientPub, as the recipient would. Errors as {@link openBox}.
 */
export function openBoxWithShared(
  sharedX: Uint8Array,
  recipientPub: Uint8Array,
  box: SealedBox,
  aad: Uint8Array,
  info: string,
): Uint8Array {
  const senderPub = fromHex(box.sender, 'box.sender', 32);
  const { nonce, ct } = boxParts(box);
  const key = boxKeyFromShared(sharedX, senderPub, recipientPub, info);
  try {
    return decrypt(key, nonce, ct, aad);
  } finally {
    wipe(key);
  }
}

function boxParts(box: SealedBox): { nonce: Uint8Array; ct: Uint8Array } {
  const nonce = fromHex(box.nonce, 'box.nonce', 12);
  const ct = fromHex(box.ciphertext, 'box.ciphertext');
  if (ct.length < 16) throw new CryptoError('invalid_encoding', 'box.ciphertext: too short');
  return { nonce, ct };
}

function decrypt(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, aad: Uint8Array): Uint8Array {
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
  } catch {
    throw new CryptoError('invalid_share', 'box does not open (wrong key, sender, context or tampered)');
  }
}

/**
 * Seal under a one-time sender key, wiped at once: the box alone says nothing about who sent it
 * (the signed answer carrying it does), and revealing its ECDH in a complaint opens this box only.
 */
export function sealBoxOneTime(
  receiver: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  info: string,
): SealedBox {
  const secret = generateIdentityKey();
  const sender = softwareIdentity(secret);
  wipe(secret);
  try {
    return sealBox(sender, receiver, plaintext, aad, info);
  } finally {
    sender.dispose();
  }
}
