/**
 * Derived keys (DESIGN §12): BIP-32 public derivation from a key group's extended public key, so
 * one DKG key serves any number of addresses and a watch-only wallet can follow them.
 *
 * Floe's scheme:
 *   - The root extended public key (xpub) is (K, c) at depth 0, parent fingerprint 0, child
 *     number 0: K is the key's group public key exactly as Floe stores it (the 33-byte
 *     `commitments[0]`, parity included), c the key's chain code: keyChainCode(K), a tagged hash
 *     of K that every party recomputes (what signers and coordinator use), or for special uses
 *     chainCodeFromSecret / randomChainCode. c is not a signing secret, but whoever holds it can
 *     link every address of the key (with keyChainCode: whoever knows K).
 *   - Only non-hardened steps (index < 2^31): a hardened step needs the private key, which no
 *     member has. Receive addresses are m/0/i, change m/1/i (descriptor `tr(xpub/0/*)`).
 *   - CKDpub (BIP-32): I = HMAC-SHA512(c, serP(K) || ser32(i)), K_i = K + IL·G, c_i = IR. Along a
 *     path the child is K + d·G with d = Σ IL (mod n), public: every signer recomputes it.
 *   - The child key is the BIP-86 internal key of the address; its output key is
 *     Q = lift_x(x(K + d·G)) + int(TapTweak(x(K + d·G)))·G (address.ts).
 *
 * A signer applies d to its key package with src/crypto/derive-key.ts (share + d, verifying shares
 * and group key + d·G) and then the BIP-86 tweak (src/crypto/tweak.ts); see
 * deriveTaprootKeyPackage there.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { createBase58check } from '@scure/base';
import {
  derivePublicKey as addDerivationTweak,
  deriveKeyPackage,
  derivePublicKeyPackage,
} from '../crypto/derive-key.js';
import {
  CURVE_ORDER,
  isCryptoError,
  parsePoint,
  pointAdd,
  pointFromScalar,
  scalarAdd,
  scalarToBytes,
} from '../crypto/index.js';
import { taggedHash } from '../crypto/tagged.js';
import type { KeyPackage, PublicKeyPackage } from '../crypto/types.js';
import { bitcoinError } from './errors.js';
import { type BitcoinNetwork, NETWORK_NAMES, NETWORKS } from './network.js';

/** First hardened index (BIP-32). */
export const HARDENED = 0x80000000;
/** Longest path Floe derives (a bound on work for paths read from PSBTs). */
export const MAX_PATH_LENGTH = 16;

const base58check = createBase58check(sha256);

/** A BIP-32 extended public key. */
export interface ExtendedPublicKey {
  depth: number;
  /** First 4 bytes of HASH160 of the parent key, as an unsigned 32-bit integer (0 at the root). */
  parentFingerprint: number;
  /** Index of this key under its parent (0 at the root). */
  childIndex: number;
  /** 32 bytes. */
  chainCode: Uint8Array;
  /** 33-byte compressed public key. */
  publicKey: Uint8Array;
}

/** A key derived along a path, with the tweak that takes the root to it. */
export interface DerivedKey {
  /** The non-hardened path from the root xpub. */
  path: number[];
  /** d = Σ IL (32 bytes, big-endian): publicKey = root key + d·G. */
  tweak: Uint8Array;
  /** 33-byte compressed child key (the BIP-86 internal key of its address). */
  publicKey: Uint8Array;
  /** The child's extended public key. */
  xpub: ExtendedPublicKey;
}

function checkChainCode(chainCode: Uint8Array): void {
  if (!(chainCode instanceof Uint8Array) || chainCode.length !== 32) {
    throw bitcoinError('xpub_invalid', 'chain code: expected 32 bytes');
  }
}

/** A fresh random chain code for a key group's root xpub (back it up: spending needs it). */
export function randomChainCode(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

const CHAIN_CODE_TAG = new TextEncoder().encode('floe/bitcoin/chain-code/v1');

/**
 * A chain code regenerable after total loss: HMAC-SHA256(serviceSecret, "floe/bitcoin/chain-code/v1"
 * || 0x00 || groupKey). Spending any derived address needs the chain code, so it must survive
 * whatever the shares survive; derived from the (backed-up) service secret it needs no backup of
 * its own, and unlike a hash of the group key alone it does not let whoever knows the group key
 * (a Nostr npub, say) enumerate the key's addresses.
 */
export function chainCodeFromSecret(serviceSecret: Uint8Array, groupKey: Uint8Array): Uint8Array {
  if (!(serviceSecret instanceof Uint8Array) || serviceSecret.length < 32) {
    throw bitcoinError('xpub_invalid', 'service secret: expected at least 32 bytes');
  }
  checkKey(groupKey, 'group key');
  const h = createHmac('sha256', serviceSecret)
    .update(CHAIN_CODE_TAG)
    .update(new Uint8Array([0]))
    .update(groupKey);
  return new Uint8Array(h.digest());
}

/**
 * THE chain code of a Floe key (issue 14): c = BIP-340 tagged hash, tag `floe/bitcoin/chain-code/v1`,
 * of the key's stored 33-byte group key (`commitments[0]` of its public key package as stored; for
 * a DKG key the BIP-86-tweaked key whose x is `x_only_public_key`). Signers, coordinator and the
 * address service all compute it from the key alone, so nothing needs backing up and no party can
 * hand a signer another chain code. The trade-off, stated in docs/custody.md: whoever knows the
 * group key (it is the key's own Taproot output key, an npub for a Nostr key) can compute every
 * derived address and link them; per-passphrase keys, whose root key is never published, do not
 * leak anything this way. Use {@link chainCodeFromSecret} for a key whose derived addresses must
 * not be linkable from its public key.
 */
export function keyChainCode(groupKey: Uint8Array): Uint8Array {
  checkKey(groupKey, 'group key');
  return Uint8Array.from(taggedHash('floe/bitcoin/chain-code/v1', groupKey));
}

/** The root xpub every party uses for a Floe key: rootXpub(K, keyChainCode(K)). */
export function keyRootXpub(groupKey: Uint8Array): ExtendedPublicKey {
  return rootXpub(groupKey, keyChainCode(groupKey));
}

/** Floe's root xpub of a key: its 33-byte group key and chain code, depth 0. */
export function rootXpub(groupKey: Uint8Array, chainCode: Uint8Array): ExtendedPublicKey {
  checkChainCode(chainCode);
  checkKey(groupKey, 'group key');
  return {
    depth: 0,
    parentFingerprint: 0,
    childIndex: 0,
    chainCode: Uint8Array.from(chainCode),
    publicKey: Uint8Array.from(groupKey),
  };
}

function checkKey(key: Uint8Array, what: string): void {
  try {
    if (!(key instanceof Uint8Array) || key.length !== 33) throw new Error('length');
    parsePoint(key, what);
  } catch {
    throw bitcoinError('xpub_invalid', `${what}: expected a 33-byte compressed secp256k1 point`);
  }
}

/** HASH160 (RIPEMD-160 of SHA-256). */
export function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

/** BIP-32 key fingerprint: the first 4 bytes of HASH160(key), big-endian. */
export function fingerprint(publicKey: Uint8Array): number {
  const h = hash160(publicKey);
  return new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(0);
}

/** BIP-32 serialization (Base58Check, 78 bytes) with the network's xpub/tpub version. */
export function encodeXpub(xpub: ExtendedPublicKey, network: BitcoinNetwork): string {
  checkChainCode(xpub.chainCode);
  checkKey(xpub.publicKey, 'xpub key');
  const out = new Uint8Array(78);
  const v = new DataView(out.buffer);
  v.setUint32(0, network.xpub);
  if (!Number.isInteger(xpub.depth) || xpub.depth < 0 || xpub.depth > 255) {
    throw bitcoinError('xpub_invalid', 'xpub depth must be 0..255');
  }
  out[4] = xpub.depth;
  v.setUint32(5, xpub.parentFingerprint >>> 0);
  v.setUint32(9, xpub.childIndex >>> 0);
  out.set(xpub.chainCode, 13);
  out.set(xpub.publicKey, 45);
  return base58check.encode(out);
}

/**
 * Parse a BIP-32 extended public key for `network`. Refused: bad checksum or length, extended
 * private keys (never pasted into Floe), keys of another network, invalid points, and a depth-0 key
 * with a parent fingerprint or child number.
 */
export function decodeXpub(s: string, network: BitcoinNetwork): ExtendedPublicKey {
  let b: Uint8Array;
  try {
    if (typeof s !== 'string' || s.length > 120) throw new Error('length');
    b = base58check.decode(s);
  } catch {
    throw bitcoinError('xpub_invalid', 'xpub: not a Base58Check extended key');
  }
  if (b.length !== 78) throw bitcoinError('xpub_invalid', 'xpub: expected 78 bytes');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = v.getUint32(0);
  if (NETWORK_NAMES.some((n) => NETWORKS[n].xprv === version)) {
    throw bitcoinError('xpub_invalid', 'xpub: this is an extended PRIVATE key; give the xpub instead');
  }
  if (version !== network.xpub) {
    const theirs = NETWORK_NAMES.filter((n) => NETWORKS[n].xpub === version);
    throw bitcoinError(
      theirs.length ? 'address_wrong_network' : 'xpub_invalid',
      theirs.length
        ? `xpub: an extended key for ${theirs.join(' or ')}, not ${network.name}`
        : 'xpub: unknown version bytes',
    );
  }
  const depth = b[4]!;
  const parentFingerprint = v.getUint32(5);
  const childIndex = v.getUint32(9);
  if (depth === 0 && (parentFingerprint !== 0 || childIndex !== 0)) {
    throw bitcoinError('xpub_invalid', 'xpub: a depth-0 key has no parent fingerprint or child number');
  }
  const publicKey = b.slice(45, 78);
  checkKey(publicKey, 'xpub key');
  return { depth, parentFingerprint, childIndex, chainCode: b.slice(13, 45), publicKey };
}

/**
 * A non-hardened derivation path: `m/0/5`, `0/5`, `m` or `` (the root), or an array of indices.
 * Hardened steps (`0'`, `0h`, index >= 2^31) are refused: they cannot be derived from an xpub.
 */
export function parsePath(path: string | readonly number[]): number[] {
  let steps: number[];
  if (typeof path === 'string') {
    const parts = path === '' || path === 'm' ? [] : path.replace(/^m\//, '').split('/');
    steps = parts.map((p) => {
      if (/^[0-9]+['hH]$/.test(p)) {
        throw bitcoinError(
          'derivation_path_invalid',
          `path step ${p} is hardened: a hardened key cannot be derived from the group's xpub`,
        );
      }
      if (!/^(0|[1-9][0-9]{0,9})$/.test(p)) {
        throw bitcoinError(
          'derivation_path_invalid',
          'path: expected m/<index>/<index>… with decimal indices',
        );
      }
      return Number(p);
    });
  } else if (Array.isArray(path)) {
    steps = [...path];
  } else {
    throw bitcoinError('derivation_path_invalid', 'path: expected a string or an array of indices');
  }
  if (steps.length > MAX_PATH_LENGTH) {
    throw bitcoinError('derivation_path_invalid', `path: at most ${MAX_PATH_LENGTH} steps`);
  }
  for (const i of steps) {
    if (!Number.isInteger(i) || i < 0) throw bitcoinError('derivation_path_invalid', 'path: bad index');
    if (i >= HARDENED) {
      throw bitcoinError(
        'derivation_path_invalid',
        `path index ${i - HARDENED}' is hardened: a hardened key cannot be derived from the group's xpub`,
      );
    }
  }
  return steps;
}

/** `m/0/5` form of a path. */
export function formatPath(path: readonly number[]): string {
  return ['m', ...path.map((i) => (i >= HARDENED ? `${i - HARDENED}'` : String(i)))].join('/');
}

/** CKDpub: one non-hardened step; IL is the scalar added to the parent key. */
function childStep(parent: ExtendedPublicKey, index: number): { xpub: ExtendedPublicKey; il: bigint } {
  const data = new Uint8Array(37);
  data.set(parent.publicKey, 0);
  new DataView(data.buffer).setUint32(33, index);
  const I = createHmac('sha512', parent.chainCode).update(data).digest();
  const ilBytes = new Uint8Array(I.subarray(0, 32));
  const il = BigInt(`0x${I.subarray(0, 32).toString('hex')}`);
  // BIP-32: IL >= n or an infinite child makes the index invalid (probability < 2^-127).
  if (il >= CURVE_ORDER) {
    throw bitcoinError(
      'derivation_path_invalid',
      `path index ${index} gives no valid key; use the next index`,
    );
  }
  let publicKey: Uint8Array;
  try {
    publicKey =
      il === 0n ? Uint8Array.from(parent.publicKey) : pointAdd(parent.publicKey, pointFromScalar(ilBytes));
  } catch (e) {
    if (!isCryptoError(e)) throw e;
    throw bitcoinError(
      'derivation_path_invalid',
      `path index ${index} gives no valid key; use the next index`,
    );
  }
  return {
    xpub: {
      depth: parent.depth + 1,
      parentFingerprint: fingerprint(parent.publicKey),
      childIndex: index,
      chainCode: new Uint8Array(I.subarray(32, 64)),
      publicKey,
    },
    il,
  };
}

/**
 * The key at a non-hardened `path` below `xpub`, and the tweak d with child = key + d·G: what
 * every signer applies to its key package (src/crypto/derive-key.ts) to sign for the child.
 */
export function deriveTweak(xpub: ExtendedPublicKey, path: string | readonly number[]): DerivedKey {
  const steps = parsePath(path);
  if (xpub.depth + steps.length > 255) throw bitcoinError('derivation_path_invalid', 'path: depth above 255');
  checkChainCode(xpub.chainCode);
  checkKey(xpub.publicKey, 'xpub key');
  let node = xpub;
  let d = 0n;
  for (const index of steps) {
    const step = childStep(node, index);
    node = step.xpub;
    d = scalarAdd(d, step.il);
  }
  return { path: steps, tweak: scalarToBytes(d), publicKey: node.publicKey, xpub: node };
}

/** Apply a derivation tweak d to a key package (share + d) or a public key package (+ d·G). */
export function applyDerivation(key: KeyPackage, tweak: Uint8Array): KeyPackage;
export function applyDerivation(pub: PublicKeyPackage, tweak: Uint8Array): PublicKeyPackage;
export function applyDerivation(
  pkg: KeyPackage | PublicKeyPackage,
  tweak: Uint8Array,
): KeyPackage | PublicKeyPackage {
  return 'signingShare' in pkg ? deriveKeyPackage(pkg, tweak) : derivePublicKeyPackage(pkg, tweak);
}

/** root key + d·G (the child key of a tweak, without the path). */
export function applyDerivationToKey(groupKey: Uint8Array, tweak: Uint8Array): Uint8Array {
  return addDerivationTweak(groupKey, tweak);
}

const PASSPHRASE_TAG = new TextEncoder().encode('floe/bitcoin/passphrase-path/v1');
/** Steps of a passphrase path: 4 × 31 bits, so 50 000 users collide with probability ~2^-93. */
export const PASSPHRASE_PATH_LENGTH = 4;

/**
 * The derivation path of a passphrase (seed 004: one address per user passphrase, regenerable
 * after total loss from the passphrase and the service secret alone):
 * h = HMAC-SHA256(serviceSecret, "floe/bitcoin/passphrase-path/v1" || 0x00 || utf8(passphrase)),
 * path = the four 31-bit big-endian words of h[0..16] (each & 0x7fffffff: non-hardened).
 * Only the path (or its tweak) is ever stored or sent; never the passphrase. Without the
 * service secret a path reveals nothing about the passphrase, and a low-entropy passphrase
 * cannot be enumerated from the addresses.
 */
export function passphrasePath(serviceSecret: Uint8Array, passphrase: string): number[] {
  if (!(serviceSecret instanceof Uint8Array) || serviceSecret.length < 32) {
    throw bitcoinError('derivation_path_invalid', 'service secret: expected at least 32 bytes');
  }
  if (typeof passphrase !== 'string' || passphrase.length === 0 || passphrase.length > 1024) {
    throw bitcoinError('derivation_path_invalid', 'passphrase: expected 1..1024 characters');
  }
  const h = createHmac('sha256', serviceSecret)
    .update(PASSPHRASE_TAG)
    .update(new Uint8Array([0]))
    .update(passphrase, 'utf8')
    .digest();
  return Array.from({ length: PASSPHRASE_PATH_LENGTH }, (_, i) => h.readUInt32BE(4 * i) & 0x7fffffff);
}

/** The derived key (path, tweak, child key) of a passphrase under a key group's xpub. */
export function passphraseTweak(
  serviceSecret: Uint8Array,
  passphrase: string,
  xpub: ExtendedPublicKey,
): DerivedKey {
  return deriveTweak(xpub, passphrasePath(serviceSecret, passphrase));
}
