/**
 * PSBT signing sessions through a real cluster (issue 14 items 3, 4): PSBTs built by bitcoinjs-lib
 * spending from the key's own output key (x_only_public_key) and from BIP-86 addresses derived from
 * it are signed in one attempt, and bitcoinjs-lib validates, finalizes and extracts them; inputs of
 * others are left alone; malformed PSBTs get their codes and change nothing; each signer's own
 * policy file refuses an over-limit output, a destination off its allowlist, another network and
 * an out-of-hours request, and no signer is blamed for obeying it. A member that releases a bad
 * share on one input is blamed with that input's evidence.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as bitcoin from 'bitcoinjs-lib';
import { DEFAULT_TENANT } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { decodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { newId } from '../../src/domain/ids.js';
import { type Intent, intentKeyOf } from '../../src/domain/intent.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem } from '../helpers/http.js';
import { ecc } from '../helpers/independent.js';
import {
  buildPsbt,
  fromBase64,
  type InputSpec,
  ownPayment,
  someAddress,
  validInput,
  type WalletKey,
  walletKeyOf,
} from '../helpers/psbt.js';
import { openRequest } from '../helpers/sign-requests.js';

const DEST = someAddress();
const DEST2 = someAddress();
const OFF_LIST = someAddress();

/** The policy every signer of the cluster reads from its own file. */
const POLICY = {
  network: 'regtest',
  allowed_destinations: [DEST, DEST2],
  max_output_value_sats: 1_000_000,
  max_outputs: 12,
};

/** Row counts and hashes of every table (what a refused request must leave unchanged). */
async function snapshot(backend: PgBackend): Promise<string> {
  const tables = await backend.db.adminQuery<{ t: string }>(
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'rate_limits' ORDER BY 1",
  );
  const out: string[] = [];
  for (const { t } of tables.rows) {
    const r = await backend.db.adminQuery<{ n: number; h: string }>(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(j, '|' ORDER BY j), '')) AS h
         FROM (SELECT (to_jsonb(x) - '{last_used_at,last_seen_at,last_latency_ms,updated_at}'::text[])::text AS j FROM "${t}" x) s`,
    );
    out.push(`${t}=${r.rows[0]!.n}:${r.rows[0]!.h}`);
  }
  return out.join('\n');
}

/** Every key-path signature in a raw transaction checks out against bitcoinjs-lib's own sighash. */
function checkRawTx(rawHex: string, psbt: bitcoin.Psbt, signed: number[]) {
  const tx = bitcoin.Transaction.fromHex(rawHex);
  const prev = psbt.data.inputs.map((i) => i.witnessUtxo!);
  for (const i of signed) {
    const w = tx.ins[i]!.witness;
    assert.equal(w.length, 1, `input ${i}: a key-path witness`);
    const sig = w[0]!;
    const type = sig.length === 65 ? sig[64]! : bitcoin.Transaction.SIGHASH_DEFAULT;
    const hash = tx.hashForWitnessV1(
      i,
      prev.map((p) => p.script),
      prev.map((p) => p.value),
      type,
    );
    assert.ok(
      ecc.verifySchnorr(hash, prev[i]!.script.subarray(2), sig.subarray(0, 64)),
      `input ${i} verifies`,
    );
  }
  return tx;
}

describe('PSBT sessions on a cluster whose signers hold a bitcoin policy', () => {
  let cluster: TestCluster;
  let key: any;
  let wallet: WalletKey;
  const dir = mkdtempSync(join(tmpdir(), 'floe-psbt-'));
  const policyFile = join(dir, 'bitcoin-policy.json');
  const backend = () => cluster.coordinator!.backend as PgBackend;
  const sign = (bitcoin_psbt: string, extra: Record<string, unknown> = {}) =>
    cluster.api('POST', '/v1/sessions', { key_id: key.id, bitcoin_psbt, wait: 30_000, ...extra });

  before(async () => {
    writeFileSync(policyFile, JSON.stringify(POLICY));
    cluster = await startCluster({
      signers: 3,
      signerEnv: () => ({ FLOE_SIGNER_BITCOIN_POLICY_FILE: policyFile }),
    });
    await cluster.registerSigners();
    key = await cluster.createKey(2);
    wallet = walletKeyOf(key);
  });
  after(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** sign.open sent straight to signer i (0-based), as the coordinator would send it. */
  async function openOn(i: number, intent: Intent) {
    const c = cluster.coordinator!.coordinator;
    const rec = (await c.backend.listSigners()).find((s) => s.url === cluster.signers[i]!.url)!;
    const k = (await c.backend.getKey(DEFAULT_TENANT, key.id))!;
    const me = k.members.find((m) => m.signer_id === rec.id)!.identifier;
    const other = k.members.find((m) => m.identifier !== me)!.identifier;
    const req = openRequest({
      keyId: key.id,
      sessionId: newId('session'),
      attempt: 1,
      included: [me, other].sort((a, b) => a - b),
      intent,
      intentKey: intentKeyOf(decodePublicKeyPackage(k.publicKeyPackage as never)),
    });
    try {
      await c.registry.clientFor(rec).call('signOpen', req, 10_000);
      await c.registry.clientFor(rec).call('signAbort', { session_id: req.session_id }, 10_000);
      return { ok: true as const };
    } catch (e) {
      if (!isFloeError(e)) throw e;
      return { ok: false as const, code: e.code, rule: e.extra.rule };
    }
  }

  async function assertNobodyBlamed() {
    const signers = (await cluster.api('GET', '/v1/signers')).body.items;
    for (const s of signers) {
      assert.equal(s.fault_count, 0, `signer ${s.id} has no fault`);
      assert.equal(s.quarantined, false);
    }
  }

  it("one input of the key's own output key: signed, validated by bitcoinjs-lib, finalized", async () => {
    assert.equal(Buffer.from(ownPayment(wallet).pubkey!).toString('hex'), key.x_only_public_key);
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 100_000n }], [{ address: DEST, value: 99_000n }]);
    const r = await sign(psbt.toBase64());
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body;
    assert.equal(s.status, 'completed');
    assert.equal(s.intent_type, 'bitcoin_psbt');
    assert.equal(s.intent.network, 'regtest');
    assert.equal(s.attempt, 1);
    assert.equal(s.raw_tx, undefined, 'not asked to finalize');
    // bitcoinjs-lib reads the signed PSBT and validates the signature (Floe added tapInternalKey).
    const signed = fromBase64(s.psbt);
    assert.ok(signed.data.inputs[0]!.tapKeySig);
    assert.equal(
      Buffer.from(signed.data.inputs[0]!.tapInternalKey!).toString('hex'),
      key.tweak.internal_key.slice(2),
    );
    assert.equal(validInput(signed, 0), true);
    signed.finalizeAllInputs();
    const tx = signed.extractTransaction();
    assert.equal(s.txid, tx.getId());
    // What an operator reads: the summary.
    assert.deepEqual(s.bitcoin.inputs_signed, [0]);
    assert.equal(s.bitcoin.fee, 1000);
    assert.equal(s.bitcoin.outputs[0].address, DEST);
    assert.equal(s.bitcoin.outputs[0].value, 99_000);
    assert.equal(s.bitcoin.outputs[0].change, false);
    assert.equal(s.bitcoin.inputs[0].own, true);
    assert.equal(s.signature.length, 128);
    const got = await cluster.api('GET', `/v1/sessions/${s.id}`);
    assert.deepEqual(got.body, s, 'read back the same');
  });

  it('ten inputs, own and derived, signed in one attempt; finalize returns the raw transaction', async () => {
    const inputs: InputSpec[] = Array.from({ length: 10 }, (_, i) =>
      i % 4 === 0
        ? { kind: 'own', value: 30_000n, withInternalKey: i === 4 }
        : { kind: 'derived', value: 30_000n, path: [i % 2, 100 + i], ...(i === 5 ? { sighashType: 1 } : {}) },
    );
    const psbt = buildPsbt(wallet, inputs, [
      { address: DEST, value: 200_000n },
      { script: ownPayment(wallet).output!, value: 99_000n },
    ]);
    const r = await sign(psbt.toBase64(), { finalize: true });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body;
    assert.equal(s.attempt, 1, 'all ten inputs in one attempt');
    assert.deepEqual(s.bitcoin.inputs_signed, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(s.bitcoin.outputs[1].change, true);
    assert.equal(s.bitcoin.sent, 200_000);
    assert.equal(s.bitcoin.finalize_error, undefined);
    const tx = checkRawTx(s.raw_tx, psbt, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(tx.getId(), s.txid);
    assert.equal(tx.ins[5]!.witness[0]!.length, 65, 'SIGHASH_ALL kept');
    // bitcoinjs-lib finalizes the same PSBT from Floe's signatures to the same transaction.
    const finalized = fromBase64(s.psbt);
    assert.equal(finalized.extractTransaction().toHex(), s.raw_tx);
    // Every commitment recorded, one per member and input.
    const rows = await backend().db.adminQuery<{ participant: number; input_index: number }>(
      'SELECT participant, input_index FROM nonce_commitments WHERE session_id = $1 ORDER BY 1, 2',
      [s.id],
    );
    assert.equal(rows.rows.length, 20);
    assert.deepEqual(
      rows.rows.filter((x) => x.participant === s.participants[0]).map((x) => x.input_index),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  it('an input of someone else is left unsigned; finalize then says why there is no raw_tx', async () => {
    const psbt = buildPsbt(
      wallet,
      [
        { kind: 'derived', value: 80_000n, path: [0, 42] },
        { kind: 'foreign', value: 20_000n },
      ],
      [{ address: DEST2, value: 99_000n }],
    );
    const r = await sign(psbt.toBase64(), { finalize: true });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body;
    assert.deepEqual(s.bitcoin.inputs_signed, [0]);
    assert.equal(s.bitcoin.inputs[1].ours, false);
    assert.equal(s.raw_tx, undefined);
    assert.match(s.bitcoin.finalize_error, /input 1/);
    const out = fromBase64(s.psbt);
    assert.ok(out.data.inputs[0]!.finalScriptWitness, 'ours finalized');
    assert.equal(out.data.inputs[1]!.tapKeySig, undefined);
    assert.equal(out.data.inputs[1]!.finalScriptWitness, undefined, 'theirs left alone');
    // Without finalize, bitcoinjs-lib validates our input's signature.
    const r2 = await sign(psbt.toBase64());
    const plain = fromBase64(r2.body.psbt);
    assert.equal(validInput(plain, 0), true);
    assert.equal(plain.data.inputs[1]!.tapKeySig, undefined);
  });

  it('malformed PSBTs are refused at creation with their codes and write nothing', async () => {
    const before = await snapshot(backend());
    const own = (extra: Partial<InputSpec> = {}) =>
      buildPsbt(
        wallet,
        [{ kind: 'own', value: 10_000n, ...extra } as InputSpec],
        [{ address: DEST, value: 9_000n }],
      );
    const noUtxo = own();
    delete (noUtxo.data.inputs[0] as { witnessUtxo?: unknown }).witnessUtxo;
    const scriptPath = buildPsbt(
      wallet,
      [{ kind: 'foreign', value: 10_000n }],
      [{ address: DEST, value: 9_000n }],
    );
    // Our key named only in a leaf of a script tree: not a key-path spend Floe can sign.
    scriptPath.updateInput(0, {
      tapBip32Derivation: [
        {
          masterFingerprint: bitcoin.crypto.hash160(wallet.groupKey).subarray(0, 4),
          pubkey: wallet.groupKey.subarray(1),
          path: 'm/0/1',
          leafHashes: [new Uint8Array(32).fill(7)],
        },
      ],
    });
    const cases: [string, string, number, string][] = [
      ['not base64', 'not a psbt!', 400, 'psbt_invalid'],
      ['not a PSBT', Buffer.from('hello world, not a psbt').toString('base64'), 400, 'psbt_invalid'],
      ['truncated', own().toBase64().slice(0, 40), 400, 'psbt_invalid'],
      ['no witnessUtxo', noUtxo.toBase64(), 400, 'psbt_missing_utxo'],
      ['SIGHASH_NONE', own({ sighashType: 2 } as never).toBase64(), 422, 'psbt_sighash_unsupported'],
      ['script path only', scriptPath.toBase64(), 422, 'psbt_input_unsupported'],
      [
        'no input of the key',
        buildPsbt(
          wallet,
          [{ kind: 'foreign', value: 10_000n }],
          [{ address: DEST, value: 9_000n }],
        ).toBase64(),
        422,
        'psbt_no_owned_inputs',
      ],
    ];
    for (const [what, b64, status, code] of cases) {
      assertProblem(await sign(b64), status, code, what);
    }
    assertProblem(
      await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: 'ab'.repeat(32), finalize: true }),
      400,
      'invalid_request',
      'finalize without a PSBT',
    );
    assertProblem(
      await cluster.api('POST', '/v1/sessions/batch', {
        key_id: key.id,
        items: [{ bitcoin_psbt: own().toBase64() }],
      }),
      422,
      'intent_not_supported',
      'PSBT in a batch',
    );
    assert.equal(await snapshot(backend()), before, 'nothing written');
  });

  for (const [what, outputs, rule] of [
    ['an over-limit output', [{ address: DEST, value: 1_500_000n }], 'max_output_value'],
    ['a destination off the allowlist', [{ address: OFF_LIST, value: 10_000n }], 'destination_not_allowed'],
  ] as const) {
    it(`${what}: refused by every signer's policy (${rule}), and nobody is blamed`, async () => {
      const psbt = buildPsbt(
        wallet,
        [{ kind: 'derived', value: 2_000_000n, path: [0, 1] }],
        [...outputs, { script: ownPayment(wallet).output!, value: 400_000n }],
      );
      const r = await sign(psbt.toBase64());
      // Terminal (failed) sessions are answered 201, never 202 (issue 15, friction 2).
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const s = r.body;
      assert.equal(s.status, 'failed');
      assert.equal(s.error_code, 'policy_refused');
      assert.match(s.error_message, new RegExp(rule));
      assert.deepEqual(s.culprits, []);
      assert.ok(s.policy_refusals.length >= 2);
      for (const x of s.policy_refusals) assert.equal(x.rule, rule);
      assert.equal(s.psbt, undefined);
      await assertNobodyBlamed();
      // The coordinator asked only the first two: the third refuses just the same.
      for (let i = 0; i < 3; i++) {
        const got = await openOn(i, { type: 'bitcoin_psbt', psbt: psbt.toBase64(), network: 'regtest' });
        assert.deepEqual(got, { ok: false, code: 'policy_refused', rule }, `signer ${i + 1}`);
      }
    });
  }

  it('a PSBT of another network is refused by every signer (network_mismatch)', async () => {
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 10_000n }], [{ address: DEST, value: 9_000n }]);
    for (let i = 0; i < 3; i++) {
      const got = await openOn(i, { type: 'bitcoin_psbt', psbt: psbt.toBase64(), network: 'testnet' });
      assert.deepEqual(got, { ok: false, code: 'policy_refused', rule: 'network_mismatch' });
    }
    // Within the policy, the same path opens.
    assert.deepEqual(await openOn(0, { type: 'bitcoin_psbt', psbt: psbt.toBase64(), network: 'regtest' }), {
      ok: true,
    });
  });

  it('out of hours: every signer refuses once its policy says so (new policy file, restarted)', async () => {
    const hour = new Date().getUTCHours();
    // A two-hour window that ends before now (wrapping past midnight when it must).
    const start = (hour + 20) % 24;
    writeFileSync(
      policyFile,
      JSON.stringify({ ...POLICY, allowed_hours_utc: { start, end: (start + 2) % 24 } }),
    );
    for (let i = 0; i < 3; i++) await cluster.restartSigner(i);
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 10_000n }], [{ address: DEST, value: 9_000n }]);
    const r = await sign(psbt.toBase64());
    assert.equal(r.body.status, 'failed', JSON.stringify(r.body));
    assert.equal(r.body.error_code, 'policy_refused');
    assert.ok(r.body.policy_refusals.every((x: any) => x.rule === 'outside_allowed_hours'));
    await assertNobodyBlamed();
    for (let i = 0; i < 3; i++) {
      const got = await openOn(i, { type: 'bitcoin_psbt', psbt: psbt.toBase64(), network: 'regtest' });
      assert.deepEqual(got, { ok: false, code: 'policy_refused', rule: 'outside_allowed_hours' });
    }
    // A message session is no business of the Bitcoin policy.
    const m = await cluster.sign(key.id, 'cd'.repeat(32));
    assert.equal(m.body.status, 'completed');
  });
});

describe('PSBT sessions: a bad share on one input is blamed on its member', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({ signers: 3, faults: { 0: 'corrupt_input_share' } });
    await cluster.registerSigners();
  });
  after(async () => {
    await cluster?.close();
  });

  it('member 1 corrupts its share of the last input: blamed with that evidence, the others sign', async () => {
    const key = await cluster.createKey(2);
    const wallet = walletKeyOf(key);
    const psbt = buildPsbt(
      wallet,
      [
        { kind: 'own', value: 30_000n },
        { kind: 'derived', value: 30_000n, path: [0, 3] },
        { kind: 'derived', value: 30_000n, path: [1, 3] },
      ],
      [{ address: someAddress(), value: 89_000n }],
    );
    const r = await cluster.api('POST', '/v1/sessions', {
      key_id: key.id,
      bitcoin_psbt: psbt.toBase64(),
      wait: 30_000,
    });
    const s = r.body;
    assert.equal(s.status, 'completed', JSON.stringify(s));
    assert.equal(s.culprits.length, 1, 'one culprit');
    assert.equal(s.attempt, 2, 'signed by the others in the next attempt');
    assert.ok(!s.participants.includes(s.culprits[0]));
    const signers = (await cluster.api('GET', '/v1/signers')).body.items;
    const culpritSigner = key.members.find((m: any) => m.identifier === s.culprits[0]).signer_id;
    assert.equal(signers.find((x: any) => x.id === culpritSigner).fault_count, 1);
    assert.equal(signers.find((x: any) => x.url === cluster.signers[0]!.url).id, culpritSigner, 'the liar');
    const signed = fromBase64(s.psbt);
    for (let i = 0; i < 3; i++) assert.equal(validInput(signed, i), true);
    // The blame names the input, with the member's signed answer as evidence.
    const audit = await (cluster.coordinator!.backend as PgBackend).db.adminQuery<{ data: any }>(
      "SELECT data FROM audit_events WHERE kind = 'session.blame' AND subject_id = $1",
      [s.id],
    );
    assert.equal(audit.rows.length, 1);
    const ev = audit.rows[0]!.data.evidence[s.culprits[0]];
    assert.equal(ev.input, 2);
    assert.ok(ev.answer.envelope);
  });
});
