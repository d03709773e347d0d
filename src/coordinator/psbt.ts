/**
 * PSBT sessions on the coordinator (DESIGN §12, §14; issue 14 item 3): what a `bitcoin_psbt`
 * session shows (the transaction as decoded here), the key each of its digests is signed under,
 * and the signed PSBT at the end. The signers decode and check the PSBT again themselves; nothing
 * here is trusted by them.
 */
import { encodePsbt, finalizePsbt, insertSignatures, type PsbtPlan, type PsbtView } from '../bitcoin/psbt.js';
import { deriveTaprootPublicKeyPackage, taprootDerivationBytes } from '../crypto/derive-key.js';
import { decodePublicKeyPackage } from '../crypto/encoding.js';
import { toHex } from '../crypto/hex.js';
import type { PublicKeyPackage } from '../crypto/types.js';
import { intentKeyOf, type ResolvedIntent, resolveIntent, type SigningDigest } from '../domain/intent.js';
import type { KeyRecord, SessionBitcoin, SessionRecord } from '../domain/records.js';
import { FloeError, isFloeError } from '../protocol/errors.js';

/** A session's intent resolved against its key, when it signs several digests (a PSBT). */
export interface MultiDigest {
  digests: SigningDigest[];
  /** The public package each digest's shares and signature verify under, in order. */
  keys: PublicKeyPackage[];
  /** Hex of each digest's key tweak (src/crypto/derive-key.ts), or null: what package hashes bind. */
  tweaks: (string | null)[];
  plan: PsbtPlan;
}

/** The key a resolving party (signer or coordinator) sees: from the key's public package. */
export function resolveForKey(intent: SessionRecord['intent'], key: KeyRecord): ResolvedIntent {
  return resolveIntent(intent, intentKeyOf(decodePublicKeyPackage(key.publicKeyPackage as never)));
}

/** The digests of a session and their keys; undefined for a single-digest intent. */
export function multiDigestOf(
  s: SessionRecord,
  key: KeyRecord,
  /** The intent as already resolved for this key (at creation), to skip reading the PSBT again. */
  resolved?: ResolvedIntent,
): MultiDigest | undefined {
  if (s.intent.type !== 'bitcoin_psbt') return undefined;
  const pub = decodePublicKeyPackage(key.publicKeyPackage as never);
  const r =
    resolved && toHex(resolved.intentHash) === s.intentHash
      ? resolved
      : resolveIntent(s.intent, intentKeyOf(pub));
  if (!r.digests || !r.psbt) throw new FloeError('internal', 'a PSBT intent resolved to a single digest');
  const byTweak = new Map<string, PublicKeyPackage>();
  const keys: PublicKeyPackage[] = [];
  const tweaks: (string | null)[] = [];
  for (const d of r.digests) {
    if (!d.key) {
      keys.push(pub);
      tweaks.push(null);
      continue;
    }
    const t = toHex(taprootDerivationBytes(d.key));
    let k = byTweak.get(t);
    if (!k) {
      k = deriveTaprootPublicKeyPackage(pub, d.key.derivation, d.key.merkleRoot);
      byTweak.set(t, k);
    }
    keys.push(k);
    tweaks.push(t);
  }
  return { digests: r.digests, keys, tweaks, plan: r.psbt };
}

/** What a PSBT session shows and stores from its creation (amounts in satoshis). */
export function psbtSummary(view: PsbtView, signs: readonly number[], finalize: boolean): SessionBitcoin {
  return {
    network: view.network,
    txid: view.txid,
    finalize,
    fee: view.fee,
    total_in: view.totalIn,
    total_out: view.totalOut,
    sent: view.sent,
    change: view.changeTotal,
    inputs_signed: [...signs],
    inputs: view.inputs.map((i) => ({
      index: i.index,
      prevout: i.prevout,
      value: i.value,
      address: i.address,
      ours: i.ours,
      ...(i.path ? { path: i.path } : {}),
      ...(i.own ? { own: true as const } : {}),
      signed: i.signed,
    })),
    outputs: view.outputs.map((o) => ({
      index: o.index,
      value: o.value,
      address: o.address,
      script: o.script,
      change: o.change,
      ...(o.path ? { path: o.path } : {}),
      ...(o.own ? { own: true as const } : {}),
    })),
  };
}

/**
 * The result of a completed PSBT session: the signatures inserted as tapKeySig (each verified
 * under its input's output key first), and, when the request asked to finalize, every input
 * finalized and the raw transaction extracted. Inputs of others that cannot be finalized leave
 * the PSBT without `raw_tx`, with the reason in `finalize_error`.
 */
export function signedPsbt(
  plan: PsbtPlan,
  signatures: readonly { inputIndex: number; signature: Uint8Array }[],
  summary: SessionBitcoin,
): SessionBitcoin {
  const tx = insertSignatures(plan, signatures);
  const out: SessionBitcoin = { ...summary, psbt: encodePsbt(tx) };
  if (!summary.finalize) return out;
  const pending = Array.from({ length: tx.inputsLength }, (_, i) => i).filter((i) => {
    const input = tx.getInput(i);
    return !input.finalScriptWitness && !input.finalScriptSig;
  });
  try {
    const f = finalizePsbt(tx, pending);
    out.psbt = f.psbt;
    if (f.rawTx) out.raw_tx = toHex(f.rawTx);
    else out.finalize_error = 'some inputs are not final';
  } catch (e) {
    // Another party's input without its signature: finalize ours, leave theirs as they are.
    const f = finalizePsbt(tx);
    out.psbt = f.psbt;
    out.finalize_error = isFloeError(e) ? e.message : 'an input cannot be finalized';
  }
  return out;
}
