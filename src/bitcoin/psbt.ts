/**
 * PSBT intents (DESIGN §12): parse a PSBT, find the Taproot key-path inputs that spend outputs of
 * one key group's derived keys, compute each one's BIP-341 sighash and the tweak a signer applies,
 * show policies and people what the transaction does (outputs, fee, change), then put the
 * signatures back and finalize.
 *
 * An input is ours when its spent script is `OP_1 <Q>` with Q the key's own output key (`own`: the
 * x-only key the group signs for as stored, e.g. a per-passphrase key's address; signed without
 * any derivation or further tweak), or Q the BIP-86 output key of a key derived from the group's
 * root xpub (derive.ts) along a path the PSBT names in `tapBip32Derivation` under our root
 * fingerprint, or along a path the caller already knows (`knownPaths`: passphrase paths; the root
 * itself always). An input that also carries
 * `tapInternalKey` and `tapMerkleRoot` for our key is a key-path spend of an output with a script
 * tree, signed with that merkle root. Nothing in the PSBT is trusted: every claim is re-derived.
 *
 * Refused with a clear reason: malformed PSBTs, inputs without the spent output (BIP-341 sighashes
 * commit to every input's amount and script), inputs that name our key but can only be spent by a
 * script path, and hash types other than SIGHASH_DEFAULT and SIGHASH_ALL.
 */
import { base64 } from '@scure/base';
import { Transaction, type TxOpts } from '@scure/btc-signer';
import { bytesEqual, toHex, verifySignature } from '../crypto/index.js';
import { p2trOutputKeyOf, type ScriptKind, scriptKind, scriptToAddress, taprootOutput } from './address.js';
import {
  type DerivedKey,
  deriveTweak,
  type ExtendedPublicKey,
  fingerprint,
  formatPath,
  parsePath,
} from './derive.js';
import { bitcoinError } from './errors.js';
import type { BitcoinNetwork, NetworkName } from './network.js';
import { type Prevout, sighashName, taprootKeySpendSighash } from './sighash.js';

/** Largest PSBT accepted (decoded bytes). */
export const MAX_PSBT_BYTES = 4_000_000;
/** Most inputs or outputs a PSBT may have. */
export const MAX_PSBT_ITEMS = 2_000;
/** Most `tapBip32Derivation` entries under our fingerprint on one input or output. */
export const MAX_OUR_DERIVATIONS = 8;
/** 21 million BTC in satoshis: no amount can exceed it. */
export const MAX_MONEY = 2_100_000_000_000_000;

const PSBT_MAGIC = [0x70, 0x73, 0x62, 0x74, 0xff];
const SIGHASH_DEFAULT = 0x00;
const SIGHASH_ALL = 0x01;

/**
 * How Floe reads PSBTs: outputs of any script (the policy judges them), unknown and proprietary
 * fields kept as they are (a PSBT going back to its creator keeps what it had), script checks on.
 */
const TX_OPTS: TxOpts = { allowUnknownOutputs: true, unknown: 'ignore' };

/** The key group a PSBT is checked against. */
export interface PsbtWallet {
  /** The group's root xpub (derive.ts rootXpub: group key + chain code). */
  xpub: ExtendedPublicKey;
  network: BitcoinNetwork;
  /**
   * Paths of ours the PSBT may not annotate (e.g. passphrase paths); the root (m) is always
   * known. Each costs one derivation per plan.
   */
  knownPaths?: readonly (string | readonly number[])[];
  /**
   * The key's own Taproot output key (x-only, 32 bytes): an input whose script is `OP_1 <it>` is
   * ours and is signed with the key package as stored (no derivation, no further tweak). With
   * `internalKey` (33 bytes) when the stored key is itself the BIP-86 output of that internal key
   * (DKG keys): then recorded as the input's tapInternalKey, and a PSBT naming another is refused.
   */
  own?: { outputKey: Uint8Array; internalKey?: Uint8Array };
}

/** One key-path input to sign: its digest and everything a signer needs to tweak its key. */
export interface KeyPathSpend {
  /**
   * `derived`: the BIP-86 (or script-tree) output of the key at `path`, signed with
   * deriveTaprootKeyPackage(share, derivationTweak, merkleRoot). `own`: the key's own output key,
   * signed with the key package as stored (`path` empty, no tweak).
   */
  kind: 'derived' | 'own';
  inputIndex: number;
  /** BIP-341 sighash: the 32-byte message the group signs. */
  sighash: Uint8Array;
  /** 0 (SIGHASH_DEFAULT: 64-byte signature) or 1 (SIGHASH_ALL: 65 bytes, 0x01 appended). */
  sighashType: 0 | 1;
  /** Non-hardened path from the group's root xpub. */
  path: number[];
  /** d (32 bytes): internalKey = groupKey + d·G. Zero for the root. */
  derivationTweak: Uint8Array;
  /**
   * The derived key K + d·G (33 bytes), the input's Taproot internal key. For an own spend the
   * wallet's internal key, or null when it is not known (a dealer key used as an output key).
   */
  internalKey: Uint8Array | null;
  /** Whether the internal key has an odd Y: the Taproot step then negates (share + d). */
  internalKeyOdd: boolean;
  /** Empty for BIP-86, else the 32-byte script tree root the output commits to (empty: own). */
  merkleRoot: Uint8Array;
  /**
   * The tweak the signers add: t = int(TapTweak(x(internalKey) || merkleRoot)), 32 bytes; zero for
   * an own spend (the stored key already is the output key).
   */
  tapTweak: Uint8Array;
  /** x-only output key Q the signature must verify under (32 bytes). */
  outputKey: Uint8Array;
  /** Amount spent, in satoshis. */
  value: number;
}

export interface PsbtInputView {
  index: number;
  /** `txid:vout` of the spent output. */
  prevout: string;
  value: number;
  /** Hex of the spent script. */
  script: string;
  address: string | null;
  /** Spends an output of ours by key path. */
  ours: boolean;
  /** Path of our key (`m/0/5`) when ours by derivation. */
  path?: string;
  /** Ours as the key's own output key (signed as stored). */
  own?: true;
  /** Already carries a key-path signature or final witness. */
  signed: boolean;
}

export interface PsbtOutputView {
  index: number;
  value: number;
  /** Hex of the output script. */
  script: string;
  kind: ScriptKind;
  address: string | null;
  /** Pays to one of our own derived keys (checked by derivation, never taken from the PSBT). */
  change: boolean;
  /** The PSBT says this output is ours (a derivation under our fingerprint), verified or not. */
  claimsChange: boolean;
  /** Path of our key when change by derivation. */
  path?: string;
  /** Pays to the key's own output key. */
  own?: true;
}

/** What a PSBT does, as a policy or a person reads it. Amounts in satoshis. */
export interface PsbtView {
  network: NetworkName;
  /** Id of the unsigned transaction (display order hex). */
  txid: string;
  version: number;
  locktime: number;
  inputs: PsbtInputView[];
  outputs: PsbtOutputView[];
  totalIn: number;
  totalOut: number;
  fee: number;
  /** Sum of the outputs that are not change: what leaves the key group. */
  sent: number;
  /** Sum of the change outputs. */
  changeTotal: number;
}

export interface PsbtPlan {
  /** The parsed PSBT (btc-signer); insertSignatures works on a copy. */
  tx: Transaction;
  /** Our unsigned key-path inputs, in input order. */
  spends: KeyPathSpend[];
  view: PsbtView;
}

/** The bytes of a base64 PSBT (surrounding whitespace ignored); `psbt_invalid` when not base64. */
export function psbtBytes(psbt: string): Uint8Array {
  if (typeof psbt !== 'string') throw bitcoinError('psbt_invalid', 'PSBT: expected a base64 string');
  const s = psbt.trim();
  if (s.length > (MAX_PSBT_BYTES * 4) / 3 + 4) throw bitcoinError('psbt_invalid', 'PSBT: too large');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw bitcoinError('psbt_invalid', 'PSBT: expected base64');
  }
  try {
    return base64.decode(s);
  } catch {
    throw bitcoinError('psbt_invalid', 'PSBT: expected base64');
  }
}

/** Parse a PSBT (base64 or raw bytes); `psbt_invalid` with the parser's reason when malformed. */
export function decodePsbt(psbt: string | Uint8Array): Transaction {
  let bytes: Uint8Array;
  if (typeof psbt === 'string') {
    bytes = psbtBytes(psbt);
  } else if (psbt instanceof Uint8Array) {
    bytes = psbt;
  } else {
    throw bitcoinError('psbt_invalid', 'PSBT: expected a base64 string');
  }
  if (bytes.length > MAX_PSBT_BYTES) throw bitcoinError('psbt_invalid', 'PSBT: too large');
  if (bytes.length < 5 || PSBT_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw bitcoinError('psbt_invalid', 'PSBT: missing the "psbt\\xff" magic bytes');
  }
  let tx: Transaction;
  try {
    tx = Transaction.fromPSBT(bytes, TX_OPTS);
  } catch (e) {
    throw bitcoinError('psbt_invalid', `PSBT: ${parserMessage(e)}`);
  }
  if (tx.inputsLength === 0) throw bitcoinError('psbt_invalid', 'PSBT: no inputs');
  if (tx.inputsLength > MAX_PSBT_ITEMS || tx.outputsLength > MAX_PSBT_ITEMS) {
    throw bitcoinError('psbt_invalid', `PSBT: more than ${MAX_PSBT_ITEMS} inputs or outputs`);
  }
  return tx;
}

/** The parser's message, shortened: it describes public PSBT structure, never a secret. */
function parserMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : 'not a valid PSBT';
  return m.length > 160 ? `${m.slice(0, 160)}…` : m;
}

/** Base64 of a PSBT. */
export function encodePsbt(tx: Transaction): string {
  return base64.encode(tx.toPSBT());
}

function sats(amount: bigint, what: string): number {
  if (typeof amount !== 'bigint' || amount < 0n || amount > BigInt(MAX_MONEY)) {
    throw bitcoinError('psbt_invalid', `${what}: amount out of range`);
  }
  return Number(amount);
}

type Derivations = [Uint8Array, { hashes: Uint8Array[]; der: { fingerprint: number; path: number[] } }][];

/** Derives and caches our keys (and their BIP-86 outputs) for one plan. */
class OurKeys {
  readonly fingerprint: number;
  private readonly byPath = new Map<string, { key: DerivedKey; outputKey: Uint8Array }>();
  /** x-only output key hex → known derived key (the root and knownPaths). */
  private readonly known = new Map<string, DerivedKey>();

  constructor(private readonly wallet: PsbtWallet) {
    this.fingerprint = fingerprint(wallet.xpub.publicKey);
    for (const p of [[], ...(wallet.knownPaths ?? [])]) {
      const d = this.derive(parsePath(p));
      this.known.set(toHex(d.outputKey), d.key);
    }
  }

  derive(path: readonly number[]): { key: DerivedKey; outputKey: Uint8Array } {
    const id = path.join('/');
    let hit = this.byPath.get(id);
    if (!hit) {
      const key = deriveTweak(this.wallet.xpub, path);
      hit = { key, outputKey: taprootOutput(key.publicKey, this.wallet.network).outputKey };
      this.byPath.set(id, hit);
    }
    return hit;
  }

  /** Our derivation entries (fingerprint match) of an input or output, bounded. */
  ours(
    entries: Derivations | undefined,
    what: string,
  ): { pubkey: Uint8Array; path: number[]; leaves: number }[] {
    const mine = (entries ?? []).filter(([, v]) => v.der.fingerprint === this.fingerprint);
    if (mine.length > MAX_OUR_DERIVATIONS) {
      throw bitcoinError('psbt_invalid', `${what}: more than ${MAX_OUR_DERIVATIONS} derivations of our key`);
    }
    return mine.map(([pubkey, v]) => ({ pubkey, path: v.der.path, leaves: v.hashes.length }));
  }

  /** Our key whose BIP-86 output key is `outputKey`, by the entries' paths or the known paths. */
  match(
    outputKey: Uint8Array,
    entries: { pubkey: Uint8Array; path: number[]; leaves: number }[],
    what: string,
  ): DerivedKey | null {
    const known = this.known.get(toHex(outputKey));
    if (known) return known;
    for (const e of entries) {
      if (e.leaves !== 0) continue; // a script-path entry: its key sits in a leaf, not the key path
      let path: number[];
      try {
        path = parsePath(e.path);
      } catch (err) {
        throw bitcoinError(
          'psbt_input_unsupported',
          `${what}: derivation ${formatPath(e.path)} under our fingerprint cannot be derived from the group's xpub`,
          { cause: err instanceof Error ? err.message : undefined },
        );
      }
      const d = this.derive(path);
      if (bytesEqual(d.outputKey, outputKey)) {
        if (!bytesEqual(e.pubkey, d.key.publicKey.subarray(1))) {
          throw bitcoinError('psbt_invalid', `${what}: tapBip32Derivation key does not match its path`);
        }
        return d.key;
      }
    }
    return null;
  }

  /** Our key (root or derived along `entries`) whose x-only key is `xOnly`, if any. */
  internal(xOnly: Uint8Array, entries: { path: number[] }[]): DerivedKey | null {
    for (const p of [[], ...entries.map((e) => e.path)]) {
      let path: number[];
      try {
        path = parsePath(p);
      } catch {
        continue;
      }
      const d = this.derive(path);
      if (bytesEqual(d.key.publicKey.subarray(1), xOnly)) return d.key;
    }
    for (const k of this.known.values()) if (bytesEqual(k.publicKey.subarray(1), xOnly)) return k;
    return null;
  }
}

/** The hash type of an input Floe signs: SIGHASH_DEFAULT (absent) or SIGHASH_ALL, else refused. */
function sighashTypeOf(sighashType: number | undefined, what: string, i: number): 0 | 1 {
  const type = sighashType ?? SIGHASH_DEFAULT;
  if (type !== SIGHASH_DEFAULT && type !== SIGHASH_ALL) {
    throw bitcoinError(
      'psbt_sighash_unsupported',
      `${what}: ${sighashName(type)} is not supported; Floe signs SIGHASH_DEFAULT or SIGHASH_ALL`,
      { input: i, sighash_type: type },
    );
  }
  return type;
}

/** The output spent by input `i` (witnessUtxo, else the nonWitnessUtxo output it names). */
function prevoutOf(tx: Transaction, i: number): Prevout | null {
  const input = tx.getInput(i);
  if (input.witnessUtxo) return { script: input.witnessUtxo.script, amount: input.witnessUtxo.amount };
  const prev = input.nonWitnessUtxo;
  if (prev && input.index !== undefined) {
    const out = prev.outputs[input.index];
    if (out) return { script: out.script, amount: out.amount };
  }
  return null;
}

/**
 * Read a PSBT against a key group: our key-path inputs with their sighashes and tweaks, and the
 * decoded view. Throws (with `reason`) on anything Floe will not sign; an input that neither
 * spends nor names our key is left alone.
 */
export function planPsbt(psbt: string | Uint8Array | Transaction, wallet: PsbtWallet): PsbtPlan {
  const tx = psbt instanceof Transaction ? psbt : decodePsbt(psbt);
  const keys = new OurKeys(wallet);
  const network = wallet.network;

  const prevouts: Prevout[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const p = prevoutOf(tx, i);
    if (!p) {
      throw bitcoinError(
        'psbt_missing_utxo',
        `input ${i}: missing witnessUtxo (the spent output's script and amount, which the BIP-341 sighash commits to)`,
        { input: i },
      );
    }
    prevouts.push(p);
  }

  const spends: KeyPathSpend[] = [];
  const inputs: PsbtInputView[] = [];
  let totalIn = 0;
  for (let i = 0; i < tx.inputsLength; i++) {
    const what = `input ${i}`;
    const input = tx.getInput(i);
    const prev = prevouts[i]!;
    const value = sats(prev.amount, what);
    totalIn += value;
    const entries = keys.ours(input.tapBip32Derivation as Derivations | undefined, what);
    const outputKey = p2trOutputKeyOf(prev.script);
    const merkleRoot = input.tapMerkleRoot ?? new Uint8Array(0);
    // The key's own output key: a key-path signature under it is all it takes (a merkle root the
    // PSBT claims changes nothing about that).
    const own = !!(outputKey && wallet.own && bytesEqual(outputKey, wallet.own.outputKey));
    let key: DerivedKey | null = null;
    if (outputKey && !own && merkleRoot.length === 0) key = keys.match(outputKey, entries, what);
    if (outputKey && !own && !key && input.tapInternalKey && merkleRoot.length === 32) {
      // Key path of an output with a script tree: our internal key, the tree's root as tweak.
      const internal = keys.internal(input.tapInternalKey, entries);
      if (
        internal &&
        bytesEqual(taprootOutput(internal.publicKey, network, merkleRoot).outputKey, outputKey)
      ) {
        key = internal;
      }
    }
    const signed = !!(input.tapKeySig || input.finalScriptWitness || input.finalScriptSig);
    const view: PsbtInputView = {
      index: i,
      prevout: `${input.txid ? toHex(input.txid) : ''}:${input.index ?? ''}`,
      value,
      script: toHex(prev.script),
      address: scriptToAddress(prev.script, network),
      ours: key !== null || own,
      signed,
    };
    if (own) {
      view.own = true;
      inputs.push(view);
      const internal = wallet.own!.internalKey;
      if (input.tapInternalKey && internal && !bytesEqual(input.tapInternalKey, internal.subarray(1))) {
        throw bitcoinError('psbt_invalid', `${what}: tapInternalKey is not the internal key of its output`);
      }
      if (signed) continue;
      const type = sighashTypeOf(input.sighashType, what, i);
      spends.push({
        kind: 'own',
        inputIndex: i,
        sighash: taprootKeySpendSighash(tx, i, prevouts, type),
        sighashType: type,
        path: [],
        derivationTweak: new Uint8Array(32),
        internalKey: internal ? Uint8Array.from(internal) : null,
        internalKeyOdd: internal ? internal[0] === 3 : false,
        merkleRoot: new Uint8Array(0),
        tapTweak: new Uint8Array(32),
        outputKey: Uint8Array.from(wallet.own!.outputKey),
        value,
      });
      continue;
    }
    if (!key) {
      const namesOurs =
        entries.length > 0 ||
        (input.tapInternalKey !== undefined && keys.internal(input.tapInternalKey, entries));
      if (namesOurs && !signed) {
        const scriptPath = input.tapLeafScript?.length || entries.some((e) => e.leaves > 0);
        throw bitcoinError(
          'psbt_input_unsupported',
          scriptPath
            ? `${what}: names our key only in a script path; Floe signs Taproot key-path spends only`
            : `${what}: names our key, but its script is not the Taproot output of that key`,
          { input: i },
        );
      }
      inputs.push(view);
      continue;
    }
    view.path = formatPath(key.path);
    inputs.push(view);
    if (input.tapInternalKey && !bytesEqual(input.tapInternalKey, key.publicKey.subarray(1))) {
      throw bitcoinError('psbt_invalid', `${what}: tapInternalKey is not the internal key of its output`);
    }
    if (signed) continue;
    const type = sighashTypeOf(input.sighashType, what, i);
    const out = taprootOutput(key.publicKey, network, merkleRoot);
    spends.push({
      kind: 'derived',
      inputIndex: i,
      sighash: taprootKeySpendSighash(tx, i, prevouts, type),
      sighashType: type,
      path: [...key.path],
      derivationTweak: Uint8Array.from(key.tweak),
      internalKey: Uint8Array.from(key.publicKey),
      internalKeyOdd: key.publicKey[0] === 3,
      merkleRoot: Uint8Array.from(merkleRoot),
      tapTweak: out.tapTweak,
      outputKey: out.outputKey,
      value,
    });
  }

  const outputs: PsbtOutputView[] = [];
  let totalOut = 0;
  let changeTotal = 0;
  for (let o = 0; o < tx.outputsLength; o++) {
    const what = `output ${o}`;
    const output = tx.getOutput(o);
    if (!output.script || output.amount === undefined)
      throw bitcoinError('psbt_invalid', `${what}: incomplete`);
    const value = sats(output.amount, what);
    totalOut += value;
    const entries = keys.ours(output.tapBip32Derivation as Derivations | undefined, what);
    const outputKey = p2trOutputKeyOf(output.script);
    const own = !!(outputKey && wallet.own && bytesEqual(outputKey, wallet.own.outputKey));
    let key: DerivedKey | null = null;
    if (outputKey && !own) {
      try {
        key = keys.match(outputKey, entries, what);
      } catch {
        key = null; // an output that misstates its derivation is simply not change
      }
    }
    const claimsChange =
      entries.length > 0 ||
      (output.tapInternalKey !== undefined && keys.internal(output.tapInternalKey, []) !== null);
    if (key || own) changeTotal += value;
    outputs.push({
      index: o,
      value,
      script: toHex(output.script),
      kind: scriptKind(output.script),
      address: scriptToAddress(output.script, network),
      change: key !== null || own,
      claimsChange,
      ...(key ? { path: formatPath(key.path) } : {}),
      ...(own ? { own: true as const } : {}),
    });
  }
  if (totalOut > totalIn) throw bitcoinError('psbt_invalid', 'PSBT: outputs spend more than the inputs');

  return {
    tx,
    spends,
    view: {
      network: network.name,
      txid: tx.id,
      version: tx.version,
      locktime: tx.lockTime,
      inputs,
      outputs,
      totalIn,
      totalOut,
      fee: totalIn - totalOut,
      sent: totalOut - changeTotal,
      changeTotal,
    },
  };
}

/** A BIP-340 signature for one planned input. */
export interface InputSignature {
  inputIndex: number;
  /** 64 bytes (the sighash type byte is added here when the input uses SIGHASH_ALL). */
  signature: Uint8Array;
}

/**
 * A copy of the plan's PSBT with each signature as the input's `tapKeySig` (and its
 * `tapInternalKey` when missing). Every signature is checked first (BIP-340, under the input's
 * output key and sighash): a wrong one is refused, never inserted.
 */
export function insertSignatures(plan: PsbtPlan, signatures: readonly InputSignature[]): Transaction {
  const tx = plan.tx.clone();
  for (const { inputIndex, signature } of signatures) {
    const spend = plan.spends.find((s) => s.inputIndex === inputIndex);
    if (!spend)
      throw bitcoinError('psbt_invalid', `input ${inputIndex}: not one of the planned key-path inputs`);
    if (!(signature instanceof Uint8Array) || signature.length !== 64) {
      throw bitcoinError(
        'psbt_signature_invalid',
        `input ${inputIndex}: expected a 64-byte BIP-340 signature`,
      );
    }
    if (!verifySignature(signature, spend.sighash, spend.outputKey)) {
      throw bitcoinError('psbt_signature_invalid', `input ${inputIndex}: signature does not verify`, {
        input: inputIndex,
      });
    }
    const tapKeySig =
      spend.sighashType === SIGHASH_DEFAULT
        ? Uint8Array.from(signature)
        : Uint8Array.from([...signature, SIGHASH_ALL]);
    // tapInternalKey too (BIP-371), when the PSBT lacked it: checked above, it helps other tools.
    const internal =
      tx.getInput(inputIndex).tapInternalKey || !spend.internalKey
        ? {}
        : { tapInternalKey: spend.internalKey.slice(1) };
    tx.updateInput(inputIndex, { tapKeySig, ...internal });
  }
  return tx;
}

/** A finalized PSBT and, when every input is final, the raw transaction. */
export interface Finalized {
  psbt: string;
  /** The network serialization (with witnesses), or null while some input is not final. */
  rawTx: Uint8Array | null;
  txid: string;
}

/**
 * Finalize inputs and extract the transaction once every input is final. By default the inputs
 * carrying a `tapKeySig` (what Floe signed); `inputs` names others too (e.g. a co-spender's input
 * already signed in the PSBT), each finalized by btc-signer or refused.
 */
export function finalizePsbt(tx: Transaction, inputs?: readonly number[]): Finalized {
  const out = tx.clone();
  const which =
    inputs ?? Array.from({ length: out.inputsLength }, (_, i) => i).filter((i) => out.getInput(i).tapKeySig);
  for (const i of which) {
    if (!Number.isInteger(i) || i < 0 || i >= out.inputsLength) {
      throw bitcoinError('psbt_invalid', `input ${i}: no such input`);
    }
    try {
      out.finalizeIdx(i);
    } catch (e) {
      throw bitcoinError('psbt_invalid', `input ${i}: cannot finalize: ${parserMessage(e)}`);
    }
  }
  return { psbt: encodePsbt(out), rawTx: out.isFinal ? out.extract() : null, txid: out.id };
}
