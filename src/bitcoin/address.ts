/**
 * Addresses and output scripts. Floe receives on BIP-86 key-path Taproot outputs: the output key
 * is the internal key tweaked with TapTweak (src/crypto/tweak.ts), the script `OP_1 <32 bytes>`,
 * the address its bech32m encoding (BIP-350). Destinations are parsed back to scripts for one
 * network: an address of another network is refused, and `taprootOnly` refuses every other kind.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bech32, bech32m, createBase58check } from '@scure/base';
import { isCryptoError, parsePoint, scalarToBytes, toHex } from '../crypto/index.js';
import { taprootOutputKey, tapTweakScalar } from '../crypto/tweak.js';
import { bitcoinError } from './errors.js';
import { type BitcoinNetwork, NETWORK_NAMES, NETWORKS, type NetworkName, networksOfHrp } from './network.js';

const base58check = createBase58check(sha256);

const OP_0 = 0x00;
const OP_1 = 0x51;
const OP_16 = 0x60;
const OP_DUP = 0x76;
const OP_HASH160 = 0xa9;
const OP_EQUAL = 0x87;
const OP_EQUALVERIFY = 0x88;
const OP_CHECKSIG = 0xac;

/** BIP-173: a segwit address is at most 90 characters. */
const MAX_ADDRESS_LENGTH = 90;

/** A BIP-86 key-path Taproot output. */
export interface TaprootOutput {
  /** Internal key, 33-byte compressed (an x-only key is read as its even-Y point). */
  internalKey: Uint8Array;
  /** int(TapTweak(x(internal) || merkle_root)), 32 bytes. */
  tapTweak: Uint8Array;
  /** x-only output key Q (32 bytes). */
  outputKey: Uint8Array;
  /** Whether Q has an odd Y (the control-block parity; a key-path signer ignores it). */
  outputKeyOdd: boolean;
  /** `OP_1 <outputKey>` (34 bytes). */
  script: Uint8Array;
  /** bech32m address on the network. */
  address: string;
}

/** 33-byte compressed form of an internal key given as 33 bytes or as a 32-byte x-only key. */
export function internalKeyBytes(key: Uint8Array, what = 'internal key'): Uint8Array {
  if (!(key instanceof Uint8Array)) throw bitcoinError('address_invalid', `${what}: expected bytes`);
  const compressed = key.length === 32 ? Uint8Array.from([2, ...key]) : key;
  if (compressed.length !== 33) {
    throw bitcoinError('address_invalid', `${what}: expected a 33-byte or x-only 32-byte key`);
  }
  try {
    return parsePoint(compressed, what);
  } catch (e) {
    if (!isCryptoError(e)) throw e;
    throw bitcoinError('address_invalid', `${what}: not a point on secp256k1`);
  }
}

/**
 * The Taproot output of an internal key (BIP-341 §"Constructing and spending Taproot outputs"):
 * key path only (BIP-86) with the default empty `merkleRoot`, or committing to a script tree.
 */
export function taprootOutput(
  internalKey: Uint8Array,
  network: BitcoinNetwork,
  merkleRoot: Uint8Array = new Uint8Array(0),
): TaprootOutput {
  const P = internalKeyBytes(internalKey);
  const Q = taprootOutputKey(P, merkleRoot);
  const outputKey = Q.slice(1);
  const script = p2trScript(outputKey);
  return {
    internalKey: Uint8Array.from(P),
    tapTweak: scalarToBytes(tapTweakScalar(P, merkleRoot)),
    outputKey,
    outputKeyOdd: Q[0] === 3,
    script,
    address: encodeSegwitAddress(network, 1, outputKey),
  };
}

/** `OP_1 <32-byte x-only output key>`. */
export function p2trScript(outputKey: Uint8Array): Uint8Array {
  if (!(outputKey instanceof Uint8Array) || outputKey.length !== 32) {
    throw bitcoinError('address_invalid', 'output key: expected 32 bytes (x-only)');
  }
  return Uint8Array.from([OP_1, 32, ...outputKey]);
}

/** The x-only output key of a P2TR script (`OP_1 <32 bytes>`), or null for any other script. */
export function p2trOutputKeyOf(script: Uint8Array): Uint8Array | null {
  return script.length === 34 && script[0] === OP_1 && script[1] === 32 ? script.slice(2) : null;
}

/** A segwit address (BIP-173 bech32 for version 0, BIP-350 bech32m for 1..16). */
export function encodeSegwitAddress(network: BitcoinNetwork, version: number, program: Uint8Array): string {
  checkWitnessProgram(version, program, 'witness program');
  const words = [version, ...bech32.toWords(program)];
  return version === 0 ? bech32.encode(network.bech32, words) : bech32m.encode(network.bech32, words);
}

function checkWitnessProgram(version: number, program: Uint8Array, what: string): void {
  if (!Number.isInteger(version) || version < 0 || version > 16) {
    throw bitcoinError('address_invalid', `${what}: witness version must be 0..16`);
  }
  if (program.length < 2 || program.length > 40) {
    throw bitcoinError('address_invalid', `${what}: program must be 2..40 bytes`);
  }
  if (version === 0 && program.length !== 20 && program.length !== 32) {
    throw bitcoinError('address_invalid', `${what}: a version 0 program is 20 or 32 bytes`);
  }
}

/** What kind of output script an address (or a script) is. */
export type ScriptKind = 'p2tr' | 'p2wpkh' | 'p2wsh' | 'p2pkh' | 'p2sh' | 'witness_unknown' | 'nonstandard';

export interface DecodedAddress {
  kind: Exclude<ScriptKind, 'nonstandard'>;
  /** The output script the address pays to. */
  script: Uint8Array;
}

/** The script of a witness program: `OP_n <program>`. */
function witnessScript(version: number, program: Uint8Array): Uint8Array {
  return Uint8Array.from([version === 0 ? OP_0 : OP_1 + version - 1, program.length, ...program]);
}

/**
 * Parse an address to the script it pays to on `network`. Refused: malformed addresses (bad
 * checksum, mixed case, wrong length, bech32 where BIP-350 requires bech32m and back), addresses
 * of another network (`address_wrong_network`, naming it), and with `taprootOnly` anything but a
 * version-1 32-byte program (`address_unsupported`).
 */
export function decodeAddress(
  address: string,
  network: BitcoinNetwork,
  opts: { taprootOnly?: boolean; what?: string } = {},
): DecodedAddress {
  const what = opts.what ?? 'address';
  if (typeof address !== 'string' || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) {
    throw bitcoinError('address_invalid', `${what}: not a Bitcoin address`);
  }
  const decoded = decodeSegwit(address, network, what) ?? decodeBase58(address, network, what);
  if (opts.taprootOnly && decoded.kind !== 'p2tr') {
    throw bitcoinError('address_unsupported', `${what}: only Taproot (bc1p…) addresses are accepted here`, {
      kind: decoded.kind,
    });
  }
  return decoded;
}

function wrongNetwork(what: string, network: BitcoinNetwork, theirs: readonly NetworkName[]) {
  return bitcoinError(
    'address_wrong_network',
    `${what}: an address for ${theirs.join(' or ')}, not ${network.name}`,
    { network: network.name, address_network: theirs.join('|') },
  );
}

/** Segwit (bech32 or bech32m) address, or null when the string is not bech32 at all. */
function decodeSegwit(address: string, network: BitcoinNetwork, what: string): DecodedAddress | null {
  const sep = address.lastIndexOf('1');
  if (sep < 1) return null;
  const hrp = address.slice(0, sep).toLowerCase();
  const known = networksOfHrp(hrp);
  if (known.length === 0) return null;
  if (address !== address.toLowerCase() && address !== address.toUpperCase()) {
    throw bitcoinError('address_invalid', `${what}: mixed upper and lower case`);
  }
  if (hrp !== network.bech32) throw wrongNetwork(what, network, known);
  const str = address.toLowerCase() as `${string}1${string}`;
  const m = bech32m.decodeUnsafe(str, MAX_ADDRESS_LENGTH);
  const b = m ? undefined : bech32.decodeUnsafe(str, MAX_ADDRESS_LENGTH);
  const d = m ?? b;
  if (!d || d.words.length === 0) throw bitcoinError('address_invalid', `${what}: bad bech32 checksum`);
  const version = d.words[0]!;
  if (version > 16) throw bitcoinError('address_invalid', `${what}: witness version must be 0..16`);
  // BIP-350: version 0 uses bech32, every later version bech32m.
  if ((version === 0) !== (b !== undefined)) {
    throw bitcoinError(
      'address_invalid',
      `${what}: witness version ${version} must use ${version === 0 ? 'bech32' : 'bech32m'}`,
    );
  }
  let program: Uint8Array;
  try {
    program = bech32.fromWords(d.words.slice(1));
  } catch {
    throw bitcoinError('address_invalid', `${what}: bad witness program padding`);
  }
  checkWitnessProgram(version, program, what);
  return { kind: witnessKind(version, program.length), script: witnessScript(version, program) };
}

function witnessKind(version: number, length: number): DecodedAddress['kind'] {
  if (version === 1 && length === 32) return 'p2tr';
  if (version === 0) return length === 20 ? 'p2wpkh' : 'p2wsh';
  return 'witness_unknown';
}

/** Legacy Base58Check P2PKH / P2SH address. */
function decodeBase58(address: string, network: BitcoinNetwork, what: string): DecodedAddress {
  let payload: Uint8Array;
  try {
    payload = base58check.decode(address);
  } catch {
    throw bitcoinError('address_invalid', `${what}: not a Bitcoin address`);
  }
  if (payload.length !== 21) throw bitcoinError('address_invalid', `${what}: not a Bitcoin address`);
  const version = payload[0]!;
  const hash = payload.subarray(1);
  if (version === network.pubKeyHash) {
    return {
      kind: 'p2pkh',
      script: Uint8Array.from([OP_DUP, OP_HASH160, 20, ...hash, OP_EQUALVERIFY, OP_CHECKSIG]),
    };
  }
  if (version === network.scriptHash) {
    return { kind: 'p2sh', script: Uint8Array.from([OP_HASH160, 20, ...hash, OP_EQUAL]) };
  }
  const theirs = NETWORK_NAMES.filter(
    (n) => NETWORKS[n].pubKeyHash === version || NETWORKS[n].scriptHash === version,
  );
  if (theirs.length > 0) throw wrongNetwork(what, network, theirs);
  throw bitcoinError('address_invalid', `${what}: unknown address version`);
}

/** The kind of an output script. */
export function scriptKind(script: Uint8Array): ScriptKind {
  const n = script.length;
  if (n === 25 && script[0] === OP_DUP && script[1] === OP_HASH160 && script[2] === 20) {
    if (script[23] === OP_EQUALVERIFY && script[24] === OP_CHECKSIG) return 'p2pkh';
  }
  if (n === 23 && script[0] === OP_HASH160 && script[1] === 20 && script[22] === OP_EQUAL) return 'p2sh';
  const w = witnessProgramOf(script);
  if (w) return witnessKind(w.version, w.program.length);
  return 'nonstandard';
}

function witnessProgramOf(script: Uint8Array): { version: number; program: Uint8Array } | null {
  const n = script.length;
  if (n < 4 || n > 42 || script[1] !== n - 2) return null;
  const op = script[0]!;
  if (op !== OP_0 && (op < OP_1 || op > OP_16)) return null;
  const version = op === OP_0 ? 0 : op - OP_1 + 1;
  const program = script.slice(2);
  if (version === 0 && program.length !== 20 && program.length !== 32) return null;
  return { version, program };
}

/** The address of an output script on `network`, or null when it has none (OP_RETURN, bare scripts). */
export function scriptToAddress(script: Uint8Array, network: BitcoinNetwork): string | null {
  switch (scriptKind(script)) {
    case 'p2pkh':
      return base58check.encode(Uint8Array.from([network.pubKeyHash, ...script.subarray(3, 23)]));
    case 'p2sh':
      return base58check.encode(Uint8Array.from([network.scriptHash, ...script.subarray(2, 22)]));
    case 'nonstandard':
      return null;
    default: {
      const w = witnessProgramOf(script)!;
      return encodeSegwitAddress(network, w.version, w.program);
    }
  }
}

/** Hex of a script, for views and allowlists. */
export function scriptHex(script: Uint8Array): string {
  return toHex(script);
}
