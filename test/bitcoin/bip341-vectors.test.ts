/**
 * BIP-341 wallet test vectors (bitcoin/bips bip-0341/wallet-test-vectors.json): scriptPubKey
 * construction (tweaks, output keys, scripts, bech32m addresses) and key-path spending (every
 * input's sighash, tweaked key and signature), reproduced by src/bitcoin on every backend.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { Transaction } from '@scure/btc-signer';
import { MAINNET, p2trScript, taprootKeySpendSighash, taprootOutput } from '../../src/bitcoin/index.js';
import { describeEachBackend } from '../crypto/backends.js';
import { libsecpVerify } from '../helpers/independent.js';
import { big, hex, N, pub, schnorrSign, tapBranch, tapLeaf, tweakSecret, unhex } from './helpers.js';

type Leaf = { id: number; script: string; leafVersion: number };
type Tree = Leaf | Tree[];

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/bip341-wallet-test-vectors.json', import.meta.url), 'utf8'),
);

// One output of the vector transaction is a 32-byte script with undefined opcodes: parse it as is.
const RAW_OPTS = { allowUnknownOutputs: true, disableScriptCheck: true };

/** Merkle root of a BIP-341 script tree, written from the BIP (TapLeaf / TapBranch). */
function merkleRoot(tree: Tree): Uint8Array {
  if (!Array.isArray(tree)) return tapLeaf(unhex(tree.script), tree.leafVersion);
  assert.equal(tree.length, 2);
  return tapBranch(merkleRoot(tree[0]!), merkleRoot(tree[1]!));
}

describeEachBackend('BIP-341 wallet vectors: scriptPubKey', () => {
  it('reproduces every tweak, output key, script and address', () => {
    assert.ok(vectors.scriptPubKey.length >= 7);
    for (const v of vectors.scriptPubKey) {
      const internal = unhex(v.given.internalPubkey);
      const root = v.given.scriptTree ? merkleRoot(v.given.scriptTree) : new Uint8Array(0);
      assert.equal(v.intermediary.merkleRoot, v.given.scriptTree ? hex(root) : null);
      const out = taprootOutput(internal, MAINNET, root);
      assert.equal(hex(out.tapTweak), v.intermediary.tweak);
      assert.equal(hex(out.outputKey), v.intermediary.tweakedPubkey);
      assert.equal(hex(out.script), v.expected.scriptPubKey);
      assert.equal(hex(p2trScript(out.outputKey)), v.expected.scriptPubKey);
      assert.equal(out.address, v.expected.bip350Address);
      // 33-byte even-Y form of the same internal key: same output.
      assert.equal(
        taprootOutput(Uint8Array.of(2, ...internal), MAINNET, root).address,
        v.expected.bip350Address,
      );
    }
  });
});

describeEachBackend('BIP-341 wallet vectors: key-path spending', () => {
  it('reproduces every sighash, tweaked key and witness', () => {
    for (const spend of vectors.keyPathSpending) {
      const tx = Transaction.fromRaw(unhex(spend.given.rawUnsignedTx), RAW_OPTS);
      const prevouts = spend.given.utxosSpent.map((u: { scriptPubKey: string; amountSats: number }) => ({
        script: unhex(u.scriptPubKey),
        amount: BigInt(u.amountSats),
      }));
      assert.equal(spend.inputSpending.length, 7);
      for (const input of spend.inputSpending) {
        const { txinIndex, hashType, internalPrivkey, merkleRoot: root } = input.given;
        const sighash = taprootKeySpendSighash(tx, txinIndex, prevouts, hashType);
        assert.equal(hex(sighash), input.intermediary.sigHash, `sighash of input ${txinIndex}`);

        // The spent output is the Taproot output of the internal key (with its merkle root).
        const secret = big(unhex(internalPrivkey));
        const internal = pub(secret);
        assert.equal(hex(internal.subarray(1)), input.intermediary.internalPubkey);
        const out = taprootOutput(internal, MAINNET, root ? unhex(root) : new Uint8Array(0));
        assert.equal(hex(out.tapTweak), input.intermediary.tweak);
        assert.equal(hex(out.script), spend.given.utxosSpent[txinIndex].scriptPubKey);

        // Tweaked secret (reference arithmetic) and the witness: BIP-340 with zero aux randomness.
        const tweaked = tweakSecret(secret, root ? unhex(root) : new Uint8Array(0));
        assert.equal(tweaked.toString(16).padStart(64, '0'), input.intermediary.tweakedPrivkey);
        assert.ok(tweaked > 0n && tweaked < N);
        const sig = schnorrSign(sighash, tweaked);
        const suffix = hashType === 0 ? '' : hashType.toString(16).padStart(2, '0');
        assert.equal(hex(sig) + suffix, input.expected.witness[0]);
        assert.ok(libsecpVerify(sig, sighash, out.outputKey));
      }
    }
  });

  it('refuses hash types BIP-341 does not define', () => {
    const spend = vectors.keyPathSpending[0];
    const tx = Transaction.fromRaw(unhex(spend.given.rawUnsignedTx), RAW_OPTS);
    const prevouts = spend.given.utxosSpent.map((u: { scriptPubKey: string; amountSats: number }) => ({
      script: unhex(u.scriptPubKey),
      amount: BigInt(u.amountSats),
    }));
    for (const bad of [0x04, 0x80, 0x84, 0xff]) {
      assert.throws(() => taprootKeySpendSighash(tx, 0, prevouts, bad), {
        code: 'psbt_sighash_unsupported',
        extra: { reason: 'psbt_sighash_unsupported' },
      });
    }
    assert.throws(() => taprootKeySpendSighash(tx, 0, prevouts.slice(1), 0), {
      extra: { reason: 'psbt_missing_utxo' },
    });
  });
});
