/**
 * PSBTs as a wallet builds them, with bitcoinjs-lib, for a Floe key: inputs spending the key's
 * own output key (p2tr of x_only_public_key), BIP-86 addresses derived from its root xpub (chain
 * code and BIP-32 steps written here and with @scure/bip32, not with src/bitcoin), and outputs of
 * others. Also the independent checks: bitcoinjs-lib's validateSignaturesOfInput and finalization.
 */
import { createHash, randomBytes } from 'node:crypto';
import { HDKey } from '@scure/bip32';
import * as bitcoin from 'bitcoinjs-lib';
import { ecc } from './independent.js';

bitcoin.initEccLib(ecc);

export const REGTEST = bitcoin.networks.regtest;

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const tagged = (tag: string, ...parts: Uint8Array[]) => {
  const t = sha256(new TextEncoder().encode(tag));
  return sha256(t, t, ...parts);
};

/** A Floe key as a wallet knows it: its 33-byte group key (and, DKG keys, the internal key). */
export interface WalletKey {
  /** `public_key` of the key object (commitments[0]). */
  groupKey: Uint8Array;
  /** `tweak.internal_key` of a DKG key (33 bytes), if known. */
  internalKey?: Uint8Array;
}

export function walletKeyOf(key: {
  public_key: string;
  tweak?: { internal_key?: string } | null;
}): WalletKey {
  const groupKey = new Uint8Array(Buffer.from(key.public_key, 'hex'));
  const ik = key.tweak?.internal_key;
  return { groupKey, ...(ik ? { internalKey: new Uint8Array(Buffer.from(ik, 'hex')) } : {}) };
}

/** The decided chain code: BIP-340 tagged hash `floe/bitcoin/chain-code/v1` of the group key. */
export function chainCode(k: WalletKey): Uint8Array {
  return tagged('floe/bitcoin/chain-code/v1', k.groupKey);
}

/** BIP-32 fingerprint of the root (HASH160 of the group key), as bitcoinjs wants it. */
export function rootFingerprint(k: WalletKey): Uint8Array {
  return new Uint8Array(bitcoin.crypto.hash160(k.groupKey).subarray(0, 4));
}

/** The child key at a non-hardened path, with @scure/bip32 from (group key, chain code). */
export function childKey(k: WalletKey, path: readonly number[]): Uint8Array {
  let hd = new HDKey({ publicKey: k.groupKey, chainCode: chainCode(k) });
  for (const i of path) hd = hd.deriveChild(i);
  return hd.publicKey!;
}

/** p2tr of the key's own x-only key (what a per-passphrase key's address is). */
export function ownPayment(k: WalletKey) {
  return bitcoin.payments.p2tr({ pubkey: k.groupKey.subarray(1), network: REGTEST });
}

/** The BIP-86 address of the child at `path`. */
export function derivedPayment(k: WalletKey, path: readonly number[]) {
  const child = childKey(k, path);
  return {
    child,
    payment: bitcoin.payments.p2tr({ internalPubkey: child.subarray(1), network: REGTEST }),
  };
}

export type InputSpec =
  | { kind: 'own'; value: bigint; withInternalKey?: boolean; sighashType?: number }
  | { kind: 'derived'; value: bigint; path: number[]; sighashType?: number }
  | { kind: 'foreign'; value: bigint };

export type OutputSpec = { address: string; value: bigint } | { script: Uint8Array; value: bigint };

/** A foreign P2WPKH key (not the Floe key's) and its script. */
export function foreignScript(): Uint8Array {
  const priv = randomBytes(32);
  priv[0] = 1;
  const pub = ecc.pointFromScalar(priv, true)!;
  return bitcoin.payments.p2wpkh({ pubkey: pub, network: REGTEST }).output!;
}

/** A fresh regtest address of nobody in particular (P2WPKH). */
export function someAddress(): string {
  const priv = randomBytes(32);
  priv[0] = 1;
  const pub = ecc.pointFromScalar(priv, true)!;
  return bitcoin.payments.p2wpkh({ pubkey: pub, network: REGTEST }).address!;
}

/** A PSBT spending `inputs` (fresh random prevouts) to `outputs`. */
export function buildPsbt(k: WalletKey, inputs: InputSpec[], outputs: OutputSpec[]): bitcoin.Psbt {
  const psbt = new bitcoin.Psbt({ network: REGTEST });
  for (const spec of inputs) {
    const base = { hash: randomBytes(32), index: 0 };
    if (spec.kind === 'foreign') {
      psbt.addInput({ ...base, witnessUtxo: { script: foreignScript(), value: spec.value } });
    } else if (spec.kind === 'own') {
      psbt.addInput({
        ...base,
        witnessUtxo: { script: ownPayment(k).output!, value: spec.value },
        ...(spec.withInternalKey && k.internalKey ? { tapInternalKey: k.internalKey.subarray(1) } : {}),
        ...(spec.sighashType !== undefined ? { sighashType: spec.sighashType } : {}),
      });
    } else {
      const { child, payment } = derivedPayment(k, spec.path);
      psbt.addInput({
        ...base,
        witnessUtxo: { script: payment.output!, value: spec.value },
        tapInternalKey: child.subarray(1),
        tapBip32Derivation: [
          {
            masterFingerprint: rootFingerprint(k),
            pubkey: child.subarray(1),
            path: `m/${spec.path.join('/')}`,
            leafHashes: [],
          },
        ],
        ...(spec.sighashType !== undefined ? { sighashType: spec.sighashType } : {}),
      });
    }
  }
  for (const o of outputs) {
    psbt.addOutput('address' in o ? { address: o.address, value: o.value } : o);
  }
  return psbt;
}

const schnorrValidator = (pubkey: Uint8Array, msghash: Uint8Array, signature: Uint8Array) =>
  ecc.verifySchnorr(msghash, pubkey, signature);

/**
 * bitcoinjs-lib's verdict on input i's key-path signature. Without tapInternalKey (the key's own
 * output key of a dealer key has none) bitcoinjs needs the key to check under: the prevout's.
 */
export function validInput(psbt: bitcoin.Psbt, i: number): boolean {
  const input = psbt.data.inputs[i]!;
  const pubkey = input.tapInternalKey ? undefined : input.witnessUtxo?.script.subarray(2);
  return psbt.validateSignaturesOfInput(i, schnorrValidator, pubkey);
}

export const fromBase64 = (b64: string) => bitcoin.Psbt.fromBase64(b64, { network: REGTEST });
