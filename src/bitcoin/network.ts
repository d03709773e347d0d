/**
 * Bitcoin networks as Floe's address, xpub and PSBT code needs them: bech32 human-readable part
 * (BIP-173), base58 version bytes of legacy addresses, and BIP-32 extended-key versions.
 * signet and regtest share testnet's version bytes; regtest has its own HRP.
 */
import { bitcoinError } from './errors.js';

export const NETWORK_NAMES = ['mainnet', 'testnet', 'signet', 'regtest'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

export interface BitcoinNetwork {
  readonly name: NetworkName;
  /** bech32/bech32m human-readable part of segwit addresses. */
  readonly bech32: 'bc' | 'tb' | 'bcrt';
  /** Base58Check version byte of P2PKH addresses. */
  readonly pubKeyHash: number;
  /** Base58Check version byte of P2SH addresses. */
  readonly scriptHash: number;
  /** WIF private-key version byte (only so a pasted WIF is recognised and refused). */
  readonly wif: number;
  /** BIP-32 version of extended public keys (xpub / tpub). */
  readonly xpub: number;
  /** BIP-32 version of extended private keys (xprv / tprv): recognised only to be refused. */
  readonly xprv: number;
  /** BIP-44 coin type: 0 on mainnet, 1 on every test network. */
  readonly coinType: 0 | 1;
}

export const MAINNET: BitcoinNetwork = Object.freeze({
  name: 'mainnet',
  bech32: 'bc',
  pubKeyHash: 0x00,
  scriptHash: 0x05,
  wif: 0x80,
  xpub: 0x0488b21e,
  xprv: 0x0488ade4,
  coinType: 0,
});

const TEST_VERSIONS = {
  pubKeyHash: 0x6f,
  scriptHash: 0xc4,
  wif: 0xef,
  xpub: 0x043587cf,
  xprv: 0x04358394,
  coinType: 1,
} as const;

export const TESTNET: BitcoinNetwork = Object.freeze({ name: 'testnet', bech32: 'tb', ...TEST_VERSIONS });
export const SIGNET: BitcoinNetwork = Object.freeze({ name: 'signet', bech32: 'tb', ...TEST_VERSIONS });
export const REGTEST: BitcoinNetwork = Object.freeze({ name: 'regtest', bech32: 'bcrt', ...TEST_VERSIONS });

export const NETWORKS: Readonly<Record<NetworkName, BitcoinNetwork>> = Object.freeze({
  mainnet: MAINNET,
  testnet: TESTNET,
  signet: SIGNET,
  regtest: REGTEST,
});

export function isNetworkName(x: unknown): x is NetworkName {
  return typeof x === 'string' && (NETWORK_NAMES as readonly string[]).includes(x);
}

/** The network of a name; `invalid_request` for anything else. */
export function networkByName(name: unknown): BitcoinNetwork {
  if (!isNetworkName(name)) {
    throw bitcoinError('network_unknown', `network: expected one of ${NETWORK_NAMES.join(', ')}`);
  }
  return NETWORKS[name];
}

/**
 * The names of the networks that use `hrp` (bech32) — more than one for `tb` (testnet and
 * signet). Empty when no Bitcoin network uses it.
 */
export function networksOfHrp(hrp: string): NetworkName[] {
  return NETWORK_NAMES.filter((n) => NETWORKS[n].bech32 === hrp);
}

/** Whether two networks share their address and key encodings (testnet and signet do). */
export function sameEncodings(a: BitcoinNetwork, b: BitcoinNetwork): boolean {
  return a.bech32 === b.bech32 && a.pubKeyHash === b.pubKeyHash && a.xpub === b.xpub;
}
