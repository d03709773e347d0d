/**
 * Authenticated encryption of a payload from one identity key to another, for what the
 * coordinator relays but must not read: DKG round-2 shares (static sender key, so only the
 * sender or the receiver can produce a box that opens: the coordinator cannot forge one and
 * frame the sender) and dealer shares on import (ephemeral sender key).
 *
 * key = HKDF-SHA256(ikm = x(ECDH), salt = sender_pub || recipient_pub, info), then
 * AES-256-GCM with a fresh random 96-bit nonce per box and caller-supplied associated data.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { CryptoError } from './errors.js';
import { parseScalar } from './group.js';
import { concatBytes, fromHex, toHex, wipe } from './hex.js';
import { identityPublicKey } from './identity.js';

export interface SealedBox {
  /** Sender public key (x-only hex). For imports it is an ephemeral key. */
  sender: string;
  nonce: string;
  /** Ciphertext followed by the 16-byte GCM tag. */
  ciphertext: string;
}

function sharedKey(
  secret: Uint8Array,
  peerXOnly: Uint8Array,
  senderPub: Uint8Array,
  recipientPub: Uint8Array,
  info: string,
) {
  if (peerXOnly.length !== 32) throw new CryptoError('invalid_encoding', 'peer key: expected 32 bytes');
  // x-only keys stand for their even-Y point: use the secret whose public point has even Y.
  const d = parseScalar(secret, 'secret key');
  const P = secp256k1.Point.BASE.multiply(d);
  const dEven = P.toAffine().y % 2n === 0n ? d : secp256k1.Point.Fn.neg(d);
  let shared: Uint8Array;
  try {
    shared = secp256k1.getSharedSecret(
      secp256k1.Point.Fn.toBytes(dEven),
      concatBytes(Uint8Array.of(2), peerXOnly),
    );
  } catch {
    throw new CryptoError('invalid_point', 'peer key: not a point on secp256k1');
  }
  const key = new Uint8Array(
    hkdfSync('sha256', shared.subarray(1), concatBytes(senderPub, recipientPub), info, 32),
  );
  wipe(shared);
  return key;
}

export function sealBox(
  senderSecret: Uint8Array,
  recipientPub: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  info: string,
): SealedBox {
  const senderPub = identityPublicKey(senderSecret);
  const key = sharedKey(senderSecret, recipientPub, senderPub, recipientPub, info);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  wipe(key);
  return { sender: toHex(senderPub), nonce: toHex(nonce), ciphertext: toHex(ct) };
}

/** Opens a box; any tampering, a wrong key, wrong AAD or wrong sender gives `invalid_share`. */
export function openBox(
  recipientSecret: Uint8Array,
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
  const recipientPub = identityPublicKey(recipientSecret);
  const key = sharedKey(recipientSecret, senderPub, senderPub, recipientPub, info);
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
