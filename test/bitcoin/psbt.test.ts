/**
 * PSBTs built by bitcoinjs-lib spending BIP-86 outputs of derived keys of a group held in the
 * test: our sighashes equal bitcoinjs-lib's, signatures made from our sighash and tweak (noble
 * for one input, FROST over the derived and tweaked shares for another) are inserted, and
 * bitcoinjs-lib's validateSignaturesOfInput and finalization accept them. Then every refusal:
 * malformed PSBTs, missing witnessUtxo, script-path-only inputs, unsupported sighash types.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { it } from 'node:test';
import * as bitcoin from 'bitcoinjs-lib';
import {
  checkPolicy,
  decodePsbt,
  deriveTweak,
  type ExtendedPublicKey,
  encodePsbt,
  finalizePsbt,
  fingerprint,
  formatPath,
  insertSignatures,
  type KeyPathSpend,
  loadPolicy,
  type PsbtWallet,
  passphrasePath,
  planPsbt,
  rootXpub,
  scriptToAddress,
  TESTNET,
  taprootOutput,
} from '../../src/bitcoin/index.js';
import { deriveTaprootKeyPackage } from '../../src/crypto/derive-key.js';
import { aggregate, commit, dealerSplit, type KeyPackage, signShare } from '../../src/crypto/index.js';
import { describeEachBackend } from '../crypto/backends.js';
import { ecc } from '../helpers/independent.js';
import {
  big,
  bytes32,
  hex,
  N,
  pub,
  randomSecret,
  schnorrSign,
  tagged,
  tapLeaf,
  tweakSecret,
} from './helpers.js';

bitcoin.initEccLib(ecc);
const NET = bitcoin.networks.testnet;
const isReason = (reason: string) => (e: any) => e?.extra?.reason === reason;

/** A key group held by the test: its secret (for reference signing), shares, root xpub. */
interface Group {
  secret: bigint;
  shares: KeyPackage[];
  xpub: ExtendedPublicKey;
  fp: Uint8Array;
  serviceSecret: Uint8Array;
}

function makeGroup(): Group {
  const secret = randomSecret();
  const deal = dealerSplit(bytes32(secret), 2, 3);
  const xpub = rootXpub(deal.public.commitments[0]!, new Uint8Array(randomBytes(32)));
  const fp = new Uint8Array(4);
  new DataView(fp.buffer).setUint32(0, fingerprint(xpub.publicKey));
  return { secret, shares: deal.shares, xpub, fp, serviceSecret: new Uint8Array(randomBytes(32)) };
}

/** Our BIP-86 output at a path, written with bitcoinjs-lib (independent of address.ts). */
function ours(g: Group, path: string | number[]) {
  const d = deriveTweak(g.xpub, path);
  const p2tr = bitcoin.payments.p2tr({ internalPubkey: d.publicKey.subarray(1), network: NET });
  return { d, script: p2tr.output!, address: p2tr.address!, pathString: formatPath(d.path) };
}

const txid = () => new Uint8Array(randomBytes(32));

/** A foreign P2WPKH key and its bitcoinjs-lib signer. */
function foreignKey() {
  const priv = bytes32(randomSecret());
  const publicKey = Uint8Array.from(ecc.pointFromScalar(priv, true)!);
  const signer = { publicKey, sign: (hash: Uint8Array) => Uint8Array.from(ecc.sign(hash, priv)) };
  return { signer, script: bitcoin.payments.p2wpkh({ pubkey: publicKey, network: NET }).output! };
}

/** The unsigned transaction of a bitcoinjs-lib PSBT, for its own sighash computation. */
function unsignedTx(psbt: bitcoin.Psbt): bitcoin.Transaction {
  return bitcoin.Transaction.fromBuffer((psbt.data.globalMap.unsignedTx as any).toBuffer());
}

const schnorrValidator = (pubkey: Uint8Array, msghash: Uint8Array, signature: Uint8Array) =>
  ecc.verifySchnorr(msghash, pubkey, signature);

/** FROST over the shares, derived (d) and BIP-86 tweaked: the signer side. */
function frostSign(shares: KeyPackage[], spend: KeyPathSpend): Uint8Array {
  const keys = shares.map((k) => deriveTaprootKeyPackage(k, spend.derivationTweak, spend.merkleRoot));
  const chosen = [keys[0]!, keys[2]!];
  const r1 = chosen.map((k) => commit(k));
  const pkg = { message: spend.sighash, commitments: r1.map((r) => r.commitments) };
  const sigShares = chosen.map((k, i) => signShare(k, r1[i]!.nonces, pkg));
  return aggregate(keys[0]!.public, pkg, sigShares);
}

/** The standard scenario: 2 inputs of ours (one annotated, one passphrase-known), 1 foreign. */
function scenario(g: Group) {
  const a = ours(g, [0, randomInt(0, 1000)]);
  const passPath = passphrasePath(g.serviceSecret, `user-${randomInt(1e9)}`);
  const b = ours(g, passPath);
  const change = ours(g, [1, 0]);
  const foreign = foreignKey();
  const external = bitcoin.payments.p2wpkh({ pubkey: pub(randomSecret()), network: NET });

  const psbt = new bitcoin.Psbt({ network: NET });
  psbt.addInput({
    hash: txid(),
    index: 1,
    witnessUtxo: { script: a.script, value: 150_000n },
    tapInternalKey: a.d.publicKey.subarray(1),
    tapBip32Derivation: [
      { masterFingerprint: g.fp, pubkey: a.d.publicKey.subarray(1), path: a.pathString, leafHashes: [] },
    ],
  });
  psbt.addInput({ hash: txid(), index: 0, witnessUtxo: { script: foreign.script, value: 40_000n } });
  psbt.addInput({
    hash: txid(),
    index: 3,
    witnessUtxo: { script: b.script, value: 60_000n },
    sighashType: bitcoin.Transaction.SIGHASH_ALL,
  });
  psbt.addOutput({ address: external.address!, value: 200_000n });
  psbt.addOutput({
    script: change.script,
    value: 49_000n,
    tapInternalKey: change.d.publicKey.subarray(1),
    tapBip32Derivation: [
      { masterFingerprint: g.fp, pubkey: change.d.publicKey.subarray(1), path: 'm/1/0', leafHashes: [] },
    ],
  });
  const wallet: PsbtWallet = { xpub: g.xpub, network: TESTNET, knownPaths: [passPath] };
  return { psbt, wallet, a, b, change, foreign, external, passPath };
}

describeEachBackend('PSBT: plan, sign, insert, finalize (bitcoinjs-lib as the independent check)', () => {
  it('finds our key-path inputs, with bitcoinjs-lib’s sighashes and the right tweaks', () => {
    const g = makeGroup();
    const s = scenario(g);
    const plan = planPsbt(s.psbt.toBase64(), s.wallet);
    assert.deepEqual(
      plan.spends.map((p) => p.inputIndex),
      [0, 2],
    );
    const tx = unsignedTx(s.psbt);
    const scripts = [s.a.script, s.foreign.script, s.b.script];
    const values = [150_000n, 40_000n, 60_000n];
    const [sa, sb] = plan.spends as [KeyPathSpend, KeyPathSpend];
    assert.equal(hex(sa.sighash), hex(tx.hashForWitnessV1(0, scripts, values, 0x00)));
    assert.equal(hex(sb.sighash), hex(tx.hashForWitnessV1(2, scripts, values, 0x01)));
    assert.equal(sa.sighashType, 0);
    assert.equal(sb.sighashType, 1);
    for (const [spend, o] of [
      [sa, s.a],
      [sb, s.b],
    ] as const) {
      assert.deepEqual(spend.path, o.d.path);
      assert.deepEqual(spend.derivationTweak, o.d.tweak);
      assert.equal(hex(spend.internalKey!), hex(o.d.publicKey));
      assert.equal(spend.internalKeyOdd, o.d.publicKey[0] === 3);
      assert.equal(spend.merkleRoot.length, 0);
      // Reference: t = TapTweak(x(child)), output key x((±child) + t·G) = the script's key.
      assert.equal(hex(spend.tapTweak), hex(tagged('TapTweak', o.d.publicKey.subarray(1))));
      assert.equal(hex(spend.outputKey), hex(o.script.subarray(2)));
      const childSecret = (g.secret + big(spend.derivationTweak)) % N;
      assert.equal(hex(pub(tweakSecret(childSecret)).subarray(1)), hex(spend.outputKey));
    }
  });

  it('the decoded view: values, fee, change (by derivation), addresses', () => {
    const g = makeGroup();
    const s = scenario(g);
    const { view } = planPsbt(s.psbt.toBase64(), s.wallet);
    assert.equal(view.network, 'testnet');
    assert.equal(view.txid, unsignedTx(s.psbt).getId());
    assert.equal(view.totalIn, 250_000);
    assert.equal(view.totalOut, 249_000);
    assert.equal(view.fee, 1_000);
    assert.equal(view.sent, 200_000);
    assert.equal(view.changeTotal, 49_000);
    assert.deepEqual(
      view.inputs.map((i) => [i.ours, i.path, i.signed]),
      [
        [true, s.a.pathString, false],
        [false, undefined, false],
        [true, s.b.pathString, false],
      ],
    );
    assert.equal(view.inputs[0]!.address, s.a.address);
    assert.equal(view.inputs[1]!.prevout, `${hex(unsignedTx(s.psbt).ins[1]!.hash.slice().reverse())}:0`);
    const [ext, chg] = view.outputs;
    assert.deepEqual(
      { address: ext!.address, change: ext!.change, claims: ext!.claimsChange, kind: ext!.kind },
      { address: s.external.address, change: false, claims: false, kind: 'p2wpkh' },
    );
    assert.deepEqual(
      { address: chg!.address, change: chg!.change, path: chg!.path, kind: chg!.kind },
      { address: s.change.address, change: true, path: 'm/1/0', kind: 'p2tr' },
    );
    assert.equal(scriptToAddress(Buffer.from(chg!.script, 'hex'), TESTNET), s.change.address);
  });

  it('signatures from our sighash and tweak are accepted by bitcoinjs-lib; the transaction finalizes', () => {
    const g = makeGroup();
    const s = scenario(g);
    const plan = planPsbt(s.psbt.toBase64(), s.wallet);
    const [sa, sb] = plan.spends as [KeyPathSpend, KeyPathSpend];
    // Input 0: the reference single key (noble) from our tweak; input 2: FROST over the shares.
    const childSecret = (g.secret + big(sa.derivationTweak)) % N;
    const sigA = schnorrSign(sa.sighash, tweakSecret(childSecret), new Uint8Array(randomBytes(32)));
    const sigB = frostSign(g.shares, sb);
    const signed = insertSignatures(plan, [
      { inputIndex: 0, signature: sigA },
      { inputIndex: 2, signature: sigB },
    ]);
    assert.equal(signed.getInput(2).tapKeySig!.length, 65, 'SIGHASH_ALL appends its type byte');
    assert.equal(plan.tx.getInput(0).tapKeySig, undefined, 'the plan is left untouched');

    const theirs = bitcoin.Psbt.fromBase64(encodePsbt(signed), { network: NET });
    assert.ok(theirs.validateSignaturesOfInput(0, schnorrValidator));
    assert.ok(theirs.validateSignaturesOfInput(2, schnorrValidator));

    // Floe finalizes its own inputs; the foreign one is still open, so no raw transaction yet.
    const partial = finalizePsbt(signed);
    assert.equal(partial.rawTx, null);
    const afterFloe = bitcoin.Psbt.fromBase64(partial.psbt, { network: NET });
    afterFloe.signInput(1, s.foreign.signer);
    afterFloe.finalizeInput(1);
    const final = afterFloe.extractTransaction();
    assert.equal(final.ins[0]!.witness.length, 1);
    assert.equal(final.ins[0]!.witness[0]!.length, 64);
    assert.equal(final.ins[2]!.witness[0]!.length, 65);

    // The other way round: bitcoinjs-lib signs the foreign input, Floe finalizes all and extracts.
    theirs.signInput(1, s.foreign.signer);
    const done = finalizePsbt(decodePsbt(theirs.toBase64()), [0, 1, 2]);
    assert.ok(done.rawTx);
    assert.equal(hex(done.rawTx), final.toHex());
    assert.equal(done.txid, final.getId());
    // bitcoinjs-lib finalizes our inputs itself too, from the inserted tapKeySig.
    theirs.finalizeInput(0).finalizeInput(1).finalizeInput(2);
    assert.equal(theirs.extractTransaction().toHex(), final.toHex());
  });

  it('the policy firewall reads the planned view (change exempt, external output judged)', () => {
    const g = makeGroup();
    const s = scenario(g);
    const { view } = planPsbt(s.psbt.toBase64(), s.wallet);
    const allow = loadPolicy({
      network: 'testnet',
      allowed_destinations: [s.external.address!],
      max_total_value_sats: 200_000,
      max_fee_sats: 1_000,
    });
    assert.deepEqual(checkPolicy(allow, view, Date.now()), { ok: true });
    const tight = loadPolicy({ network: 'testnet', max_total_value_sats: 199_999 });
    assert.deepEqual(checkPolicy(tight, view, Date.now()), {
      ok: false,
      rule: 'max_total_value',
      detail: 'the transaction sends 200000 sats (change excluded); at most 199999',
    });
    const other = loadPolicy({ network: 'testnet', allowed_destinations: [s.change.address] });
    assert.equal((checkPolicy(other, view, Date.now()) as { rule: string }).rule, 'destination_not_allowed');
  });

  it('a wrong signature is refused, never inserted', () => {
    const g = makeGroup();
    const s = scenario(g);
    const plan = planPsbt(s.psbt.toBase64(), s.wallet);
    const sa = plan.spends[0]!;
    // Signed with the untweaked child key: valid BIP-340, wrong key.
    const child = (g.secret + big(sa.derivationTweak)) % N;
    const wrong = schnorrSign(sa.sighash, child);
    assert.throws(
      () => insertSignatures(plan, [{ inputIndex: 0, signature: wrong }]),
      isReason('psbt_signature_invalid'),
    );
    assert.throws(
      () => insertSignatures(plan, [{ inputIndex: 0, signature: new Uint8Array(65) }]),
      isReason('psbt_signature_invalid'),
    );
    assert.throws(
      () => insertSignatures(plan, [{ inputIndex: 1, signature: wrong }]),
      isReason('psbt_invalid'),
    );
  });

  it('inputs already signed are shown as such and not planned again', () => {
    const g = makeGroup();
    const s = scenario(g);
    const plan = planPsbt(s.psbt.toBase64(), s.wallet);
    const sa = plan.spends[0]!;
    const sig = schnorrSign(sa.sighash, tweakSecret((g.secret + big(sa.derivationTweak)) % N));
    const again = planPsbt(insertSignatures(plan, [{ inputIndex: 0, signature: sig }]), s.wallet);
    assert.deepEqual(
      again.spends.map((x) => x.inputIndex),
      [2],
    );
    assert.equal(again.view.inputs[0]!.signed, true);
  });

  it('key path of an output with a script tree (tapInternalKey + tapMerkleRoot of our key)', () => {
    const g = makeGroup();
    const d = deriveTweak(g.xpub, [0, 9]);
    const root = tapLeaf(Uint8Array.of(0x51)); // OP_TRUE leaf, only committed to
    const out = taprootOutput(d.publicKey, TESTNET, root);
    const psbt = new bitcoin.Psbt({ network: NET });
    psbt.addInput({
      hash: txid(),
      index: 0,
      witnessUtxo: { script: out.script, value: 10_000n },
      tapInternalKey: d.publicKey.subarray(1),
      tapMerkleRoot: root,
      tapBip32Derivation: [
        { masterFingerprint: g.fp, pubkey: d.publicKey.subarray(1), path: 'm/0/9', leafHashes: [] },
      ],
    });
    psbt.addOutput({
      address: bitcoin.payments.p2wpkh({ pubkey: pub(randomSecret()), network: NET }).address!,
      value: 9_000n,
    });
    const plan = planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET });
    const spend = plan.spends[0]!;
    assert.equal(hex(spend.merkleRoot), hex(root));
    assert.equal(hex(spend.tapTweak), hex(tagged('TapTweak', d.publicKey.subarray(1), root)));
    const sig = frostSign(g.shares, spend);
    const signed = bitcoin.Psbt.fromBase64(
      encodePsbt(insertSignatures(plan, [{ inputIndex: 0, signature: sig }])),
      {
        network: NET,
      },
    );
    assert.ok(signed.validateSignaturesOfInput(0, schnorrValidator));
    signed.finalizeAllInputs();
    assert.equal(signed.extractTransaction().ins[0]!.witness.length, 1);
  });
});

/** A one-input PSBT spending our output at `path`, with extra input fields. */
function single(g: Group, input: Partial<bitcoin.PsbtTxInput & Record<string, unknown>> = {}, path = [0, 1]) {
  const o = ours(g, path);
  const psbt = new bitcoin.Psbt({ network: NET });
  psbt.addInput({
    hash: txid(),
    index: 0,
    witnessUtxo: { script: o.script, value: 10_000n },
    ...input,
  } as any);
  psbt.addOutput({ script: foreignKey().script, value: 9_000n });
  return { psbt, o };
}

describeEachBackend('PSBT refusals', () => {
  it('malformed PSBTs: psbt_invalid with a reason', () => {
    const g = makeGroup();
    const wallet = { xpub: g.xpub, network: TESTNET };
    const good = single(g).psbt.toBase64();
    for (const bad of [
      'not base64!',
      '',
      Buffer.from('hello world').toString('base64'),
      Buffer.concat([Buffer.from('psbt'), Buffer.of(0xff), randomBytes(40)]).toString('base64'),
      Buffer.from(good, 'base64').subarray(0, 60).toString('base64'),
      good.slice(0, -4),
    ]) {
      assert.throws(
        () => planPsbt(bad, wallet),
        (e: any) => e.code === 'psbt_invalid' && isReason('psbt_invalid')(e),
      );
    }
    assert.throws(() => planPsbt(123 as any, wallet), isReason('psbt_invalid'));
  });

  it('missing witnessUtxo: psbt_missing_utxo naming the input', () => {
    const g = makeGroup();
    const { psbt } = single(g);
    psbt.addInput({ hash: txid(), index: 0 });
    assert.throws(
      () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET }),
      (e: any) => isReason('psbt_missing_utxo')(e) && e.extra.input === 1 && /witnessUtxo/.test(e.message),
    );
  });

  it('script-path-only inputs naming our key: psbt_input_unsupported', () => {
    const g = makeGroup();
    const d = deriveTweak(g.xpub, [0, 4]);
    const script = Uint8Array.of(0x20, ...d.publicKey.subarray(1), 0xac); // pk(our key) as a leaf
    const leafHash = tapLeaf(script);
    const foreignInternal = pub(randomSecret());
    const out = taprootOutput(foreignInternal, TESTNET, leafHash);
    const controlBlock = Uint8Array.of(0xc0 | (out.outputKeyOdd ? 1 : 0), ...foreignInternal.subarray(1));
    const psbt = new bitcoin.Psbt({ network: NET });
    psbt.addInput({
      hash: txid(),
      index: 0,
      witnessUtxo: { script: out.script, value: 10_000n },
      tapInternalKey: foreignInternal.subarray(1),
      tapMerkleRoot: leafHash,
      tapLeafScript: [{ leafVersion: 0xc0, script, controlBlock }],
      tapBip32Derivation: [
        { masterFingerprint: g.fp, pubkey: d.publicKey.subarray(1), path: 'm/0/4', leafHashes: [leafHash] },
      ],
    });
    psbt.addOutput({ script: foreignKey().script, value: 9_000n });
    assert.throws(
      () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET }),
      (e: any) =>
        e.code === 'psbt_input_unsupported' &&
        isReason('psbt_input_unsupported')(e) &&
        /script path/.test(e.message),
    );
  });

  it('unsupported sighash types: psbt_sighash_unsupported', () => {
    const g = makeGroup();
    for (const type of [0x02, 0x03, 0x81, 0x83]) {
      const { psbt } = single(g, { sighashType: type });
      assert.throws(
        () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET, knownPaths: ['m/0/1'] }),
        (e: any) =>
          isReason('psbt_sighash_unsupported')(e) &&
          e.extra.sighash_type === type &&
          /SIGHASH_/.test(e.message),
      );
    }
  });

  it('a hardened derivation under our fingerprint cannot be ours', () => {
    const g = makeGroup();
    const o = ours(g, [0, 1]);
    const { psbt } = single(g, {
      tapBip32Derivation: [
        {
          masterFingerprint: g.fp,
          pubkey: o.d.publicKey.subarray(1),
          path: "m/86'/1'/0'/0/1",
          leafHashes: [],
        },
      ],
    });
    assert.throws(
      () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET }),
      isReason('psbt_input_unsupported'),
    );
  });

  it('a tapInternalKey that is not the output’s internal key: psbt_invalid', () => {
    const g = makeGroup();
    const { psbt } = single(g, { tapInternalKey: pub(randomSecret()).subarray(1) });
    assert.throws(
      () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET, knownPaths: ['m/0/1'] }),
      isReason('psbt_invalid'),
    );
  });

  it('inputs that neither spend nor name our key are left alone; unannotated unknown paths are not ours', () => {
    const g = makeGroup();
    const { psbt } = single(g); // our m/0/1, but nothing says so and it is not a known path
    const plan = planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET });
    assert.equal(plan.spends.length, 0);
    assert.equal(plan.view.inputs[0]!.ours, false);
    const known = planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET, knownPaths: ['m/0/1'] });
    assert.equal(known.spends.length, 1);
  });

  it('an output that claims to be our change but pays elsewhere is not change', () => {
    const g = makeGroup();
    const { psbt } = single(g, {}, [0, 1]);
    const claimed = ours(g, [1, 5]);
    const elsewhere = bitcoin.payments.p2tr({
      internalPubkey: pub(randomSecret()).subarray(1),
      network: NET,
    });
    psbt.addOutput({
      script: elsewhere.output!,
      value: 500n,
      tapBip32Derivation: [
        { masterFingerprint: g.fp, pubkey: claimed.d.publicKey.subarray(1), path: 'm/1/5', leafHashes: [] },
      ],
    });
    const { view } = planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET, knownPaths: ['m/0/1'] });
    const out = view.outputs[1]!;
    assert.deepEqual([out.change, out.claimsChange], [false, true]);
    assert.equal(view.sent, 9_500);
  });

  it('outputs above the inputs: psbt_invalid', () => {
    const g = makeGroup();
    const { psbt } = single(g);
    psbt.addOutput({ script: foreignKey().script, value: 5_000n });
    assert.throws(
      () => planPsbt(psbt.toBase64(), { xpub: g.xpub, network: TESTNET, knownPaths: ['m/0/1'] }),
      isReason('psbt_invalid'),
    );
  });
});
