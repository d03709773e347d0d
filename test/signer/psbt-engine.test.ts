/**
 * Multi-digest attempts in the signer engine (issue 14): a PSBT built by bitcoinjs-lib with inputs
 * of the key's own output key and of BIP-86 addresses derived from it is signed in ONE attempt —
 * one nonce pair per input, one marker per attempt, every share or none — and bitcoinjs-lib
 * validates and finalizes the result. Then the custody rules for several digests (each input's
 * nonces used once, a replay refused, a marker failure leaves every nonce live, every package
 * checked before anything is consumed) and the PSBT policy firewall at open and at round 2.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { loadPolicy } from '../../src/bitcoin/policy.js';
import { toHex } from '../../src/crypto/index.js';
import { intentKeyOf } from '../../src/domain/intent.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { SignRound2Request } from '../../src/protocol/messages/sign.js';
import { BitcoinSigningPolicy } from '../../src/signer/bitcoin-policy.js';
import type { SigningEngine } from '../../src/signer/engine.js';
import type { SigningPolicy } from '../../src/signer/policy.js';
import { FakeClock } from '../helpers/memory-store.js';
import {
  buildPsbt,
  type InputSpec,
  type OutputSpec,
  ownPayment,
  someAddress,
  validInput,
} from '../helpers/psbt.js';
import { finish, openPsbt, pay, psbtIntent, round2Of, setup } from '../helpers/psbt-attempt.js';
import { openRequest } from '../helpers/sign-requests.js';

function refuses(fn: () => unknown, code: string, rule?: string) {
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof FloeError && e.code === code && (rule === undefined || e.extra.rule === rule),
    `expected ${code}${rule ? ` (${rule})` : ''}`,
  );
}

describe('PSBT attempts: one attempt signs every input of the key', () => {
  for (const dkgLike of [true, false]) {
    it(`own output key and derived inputs (${dkgLike ? 'DKG-like key' : 'dealer key'}): bitcoinjs-lib validates and finalizes`, () => {
      const { nodes, pub, wallet } = setup({ dkgLike });
      const inputs: InputSpec[] = [
        { kind: 'own', value: 50_000n, withInternalKey: dkgLike },
        { kind: 'derived', value: 70_000n, path: [0, 7] },
        { kind: 'derived', value: 30_000n, path: [1, 3], sighashType: 1 },
      ];
      const psbt = buildPsbt(wallet, inputs, [pay(100_000n), pay(49_000n)]);
      const req = openPsbt(pub, 'ses_psbt_1', psbt.toBase64());
      const [a, b] = [nodes[0]!, nodes[1]!];
      const opens = [a.engine.open(req), b.engine.open(req)];
      for (const o of opens) {
        assert.deepEqual(
          o.inputs!.map((x) => x.input),
          [0, 1, 2],
          'one commitment per input, in input order',
        );
        assert.deepEqual(o.inputs![0]!.commitments, o.commitments, 'the first is the attempt commitment');
      }
      const r2 = round2Of(pub, req, opens);
      const answers = [a.engine.round2(r2), b.engine.round2(r2)];
      for (const ans of answers) {
        assert.equal(ans.inputs!.length, 3);
        assert.equal(ans.share.share, ans.inputs![0]!.share.share);
        assert.equal(ans.package_hash, ans.inputs![0]!.package_hash);
        assert.equal(
          new Set(ans.inputs!.map((x) => x.package_hash)).size,
          3,
          'each share bound to its package',
        );
      }
      const signed = finish(pub, req, r2, answers, psbt);
      for (const i of signed) {
        assert.equal(validInput(psbt, i), true, `bitcoinjs-lib validates input ${i}`);
      }
      psbt.finalizeAllInputs();
      const tx = psbt.extractTransaction();
      assert.equal(tx.ins.length, 3);
      assert.equal(tx.ins[2]!.witness[0]!.length, 65, 'SIGHASH_ALL: 65-byte signature');
      // One marker per attempt on each member, whatever the number of inputs.
      assert.equal(a.store.markers.length, 1);
      assert.equal(b.store.markers.length, 1);
      assert.equal(a.engine.liveAttempts, 0);
    });
  }

  it('ten inputs: ten distinct nonce pairs, each used once and wiped; a replayed round 2 is refused', () => {
    const { nodes, pub, wallet } = setup();
    const inputs: InputSpec[] = Array.from({ length: 10 }, (_, i) =>
      i % 3 === 0 ? { kind: 'own', value: 20_000n } : { kind: 'derived', value: 20_000n, path: [0, i] },
    );
    const psbt = buildPsbt(wallet, inputs, [pay(150_000n), pay(49_000n)]);
    const req = openPsbt(pub, 'ses_psbt_10', psbt.toBase64(), [2, 3]);
    const [a, b] = [nodes[1]!, nodes[2]!];
    const opens = [a.engine.open(req), b.engine.open(req)];
    const points = opens.flatMap((o) =>
      o.inputs!.flatMap((x) => [x.commitments.hiding, x.commitments.binding]),
    );
    assert.equal(points.length, 40);
    assert.equal(new Set(points).size, 40, 'no nonce point repeats, across inputs or members');
    // The nonces of every input, as the engine keeps them (test-only look inside).
    const live = (e: SigningEngine) => (e as unknown as { live: Map<string, any> }).live.get('ses_psbt_10');
    const nonces = live(a.engine).parts.map((p: any) => p.nonces);
    assert.equal(nonces.length, 10);
    assert.ok(nonces.every((n: any) => n.hiding.some((x: number) => x !== 0)));
    const r2 = round2Of(pub, req, opens);
    const answers = [a.engine.round2(r2), b.engine.round2(r2)];
    assert.ok(
      nonces.every(
        (n: any) => n.hiding.every((x: number) => x === 0) && n.binding.every((x: number) => x === 0),
      ),
      'every input nonce wiped after use',
    );
    finish(pub, req, r2, answers, psbt);
    for (let i = 0; i < 10; i++) assert.equal(validInput(psbt, i), true, `input ${i}`);
    refuses(() => a.engine.round2(r2), 'consumed_nonce_replay');
    refuses(() => a.engine.open(req), 'consumed_nonce_replay');
    assert.equal(a.store.markers.length, 1, 'still one marker');
  });

  it('a marker failure leaves every input nonce live; the retry signs them all', () => {
    const { nodes, pub, wallet } = setup();
    const psbt = buildPsbt(
      wallet,
      [
        { kind: 'derived', value: 40_000n, path: [0, 1] },
        { kind: 'own', value: 40_000n },
        { kind: 'derived', value: 40_000n, path: [0, 2] },
      ],
      [pay(119_000n)],
    );
    const req = openPsbt(pub, 'ses_psbt_m', psbt.toBase64());
    const [a, b] = [nodes[0]!, nodes[1]!];
    const opens = [a.engine.open(req), b.engine.open(req)];
    const r2 = round2Of(pub, req, opens);
    a.store.failMarkers = true;
    refuses(() => a.engine.round2(r2), 'marker_write_failed');
    assert.equal(a.engine.liveAttempts, 1);
    const parts = (a.engine as unknown as { live: Map<string, any> }).live.get('ses_psbt_m').parts;
    assert.ok(
      parts.every((p: any) => p.nonces.hiding.some((x: number) => x !== 0)),
      'nonces live',
    );
    a.store.failMarkers = false;
    const answers = [a.engine.round2(r2), b.engine.round2(r2)];
    finish(pub, req, r2, answers, psbt);
    for (let i = 0; i < 3; i++) assert.equal(validInput(psbt, i), true);
  });

  it('round 2 checks the package of every input before consuming anything', () => {
    const { nodes, pub, wallet } = setup();
    const psbt = buildPsbt(
      wallet,
      [
        { kind: 'own', value: 40_000n },
        { kind: 'derived', value: 40_000n, path: [0, 9] },
        { kind: 'derived', value: 40_000n, path: [0, 10] },
      ],
      [pay(119_000n)],
    );
    const req = openPsbt(pub, 'ses_psbt_c', psbt.toBase64());
    const [a, b] = [nodes[0]!, nodes[1]!];
    const opens = [a.engine.open(req), b.engine.open(req)];
    const good = round2Of(pub, req, opens);
    const inputs = good.inputs!;
    const bad: [string, SignRound2Request, string][] = [
      ['a package missing', { ...good, inputs: inputs.slice(0, 2) }, 'invalid_package'],
      ['no packages at all', { ...good, inputs: undefined } as SignRound2Request, 'invalid_package'],
      [
        'inputs in another order',
        { ...good, inputs: [inputs[1]!, inputs[0]!, inputs[2]!] },
        'invalid_package',
      ],
      [
        "input 1's package with input 2's digest",
        {
          ...good,
          inputs: inputs.map((x, i) =>
            i === 1
              ? {
                  ...x,
                  signing_package: { ...x.signing_package, message: inputs[2]!.signing_package.message },
                }
              : x,
          ),
        },
        'message_mismatch',
      ],
      [
        "input 2 carries this signer's commitment of input 1",
        {
          ...good,
          inputs: inputs.map((x, i) =>
            i === 2
              ? {
                  ...x,
                  signing_package: {
                    ...x.signing_package,
                    commitments: x.signing_package.commitments.map((c) =>
                      c.identifier === 1 ? inputs[1]!.signing_package.commitments[0]! : c,
                    ),
                  },
                }
              : x,
          ),
        },
        'own_commitment_mismatch',
      ],
      [
        'signing_package differs from the first input',
        { ...good, signing_package: inputs[1]!.signing_package },
        'invalid_package',
      ],
    ];
    for (const [what, r2, code] of bad) {
      assert.throws(
        () => a.engine.round2(r2),
        (e: unknown) => e instanceof FloeError && e.code === code,
        what,
      );
      assert.equal(a.engine.liveAttempts, 1, `${what}: still live`);
      assert.equal(a.store.markers.length, 0, `${what}: no marker`);
    }
    // A single-digest request shape for a multi-digest attempt is refused too, and the real one signs.
    const answers = [a.engine.round2(good), b.engine.round2(good)];
    finish(pub, req, good, answers, psbt);
    for (let i = 0; i < 3; i++) assert.equal(validInput(psbt, i), true);
  });

  it('inputs of others are left alone; a PSBT with none of the key is refused', () => {
    const { nodes, pub, wallet } = setup();
    const psbt = buildPsbt(
      wallet,
      [
        { kind: 'foreign', value: 60_000n },
        { kind: 'derived', value: 40_000n, path: [0, 4] },
        { kind: 'foreign', value: 10_000n },
      ],
      [pay(109_000n)],
    );
    const req = openPsbt(pub, 'ses_psbt_f', psbt.toBase64());
    const open = nodes[0]!.engine.open(req);
    assert.deepEqual(
      open.inputs!.map((x) => x.input),
      [1],
      'only the input of the key',
    );
    const none = buildPsbt(wallet, [{ kind: 'foreign', value: 60_000n }], [pay(59_000n)]);
    assert.throws(
      () => openPsbt(pub, 'ses_psbt_n', none.toBase64()),
      (e: unknown) => e instanceof FloeError && e.code === 'psbt_no_owned_inputs',
    );
  });

  it('the signer resolves the PSBT itself: a digest or intent hash of the coordinator that differs is refused', () => {
    const { nodes, pub, wallet } = setup();
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 40_000n }], [pay(39_000n)]);
    const req = openPsbt(pub, 'ses_psbt_r', psbt.toBase64());
    refuses(() => nodes[0]!.engine.open({ ...req, message: toHex(new Uint8Array(32)) }), 'intent_mismatch');
    refuses(() => nodes[0]!.engine.open({ ...req, intent_hash: 'ab'.repeat(32) }), 'intent_mismatch');
    // Another PSBT under the same message and intent hash: the signer's own reading differs.
    const other = buildPsbt(wallet, [{ kind: 'own', value: 40_000n }], [pay(38_000n)]);
    refuses(() => nodes[0]!.engine.open({ ...req, intent: psbtIntent(other.toBase64()) }), 'intent_mismatch');
    assert.equal(nodes[0]!.engine.liveAttempts, 0);
  });
});

describe('PSBT policy firewall on the signer', () => {
  const dest = someAddress();
  const other = someAddress();
  const firewall =
    (config: Record<string, unknown>) =>
    (clock: FakeClock): SigningPolicy =>
      new BitcoinSigningPolicy({ policy: loadPolicy({ network: 'regtest', ...config }), clock });

  it('at open: an over-limit output, a destination off the allowlist, out of hours, another network', () => {
    const cases: [string, Record<string, unknown>, OutputSpec[], string, 'regtest' | 'testnet'][] = [
      [
        'over-limit output',
        { max_output_value_sats: 50_000 },
        [{ address: dest, value: 60_000n }],
        'max_output_value',
        'regtest',
      ],
      [
        'not allowlisted',
        { allowed_destinations: [dest] },
        [{ address: other, value: 10_000n }],
        'destination_not_allowed',
        'regtest',
      ],
      // 12:00 UTC on the fake clock
      [
        'out of hours',
        { allowed_hours_utc: { start: 1, end: 6 } },
        [{ address: dest, value: 10_000n }],
        'outside_allowed_hours',
        'regtest',
      ],
      ['another network', {}, [{ address: dest, value: 10_000n }], 'network_mismatch', 'testnet'],
    ];
    for (const [what, config, outputs, rule, network] of cases) {
      const { nodes, pub, wallet } = setup({ policy: firewall(config) });
      const psbt = buildPsbt(wallet, [{ kind: 'own', value: 70_000n }], outputs);
      // Every signer refuses on its own (each is asked in an attempt that includes it).
      for (const n of nodes) {
        const req = openRequest({
          keyId: 'k1',
          sessionId: 'ses_pol',
          attempt: 1,
          included: [n.id, n.id === 1 ? 2 : 1].sort((x, y) => x - y),
          intent: psbtIntent(psbt.toBase64(), network),
          intentKey: intentKeyOf(pub),
        });
        refuses(() => n.engine.open(req), 'policy_refused', rule);
        assert.equal(n.engine.liveAttempts, 0, `${what}: nothing opened`);
      }
    }
  });

  it('within the policy: signed; the policy sees the decoded outputs', () => {
    const { nodes, pub, wallet } = setup({
      policy: firewall({ allowed_destinations: [dest], max_output_value_sats: 100_000, max_outputs: 3 }),
    });
    // Change back to the key's own output key is not a destination.
    const change = ownPayment(wallet).output!;
    const psbt = buildPsbt(
      wallet,
      [{ kind: 'derived', value: 500_000n, path: [0, 1] }],
      [
        { address: dest, value: 90_000n },
        { script: change, value: 400_000n },
      ],
    );
    const req = openPsbt(pub, 'ses_ok', psbt.toBase64());
    const [a, b] = [nodes[0]!, nodes[1]!];
    const opens = [a.engine.open(req), b.engine.open(req)];
    const r2 = round2Of(pub, req, opens);
    const answers = [a.engine.round2(r2), b.engine.round2(r2)];
    finish(pub, req, r2, answers, psbt);
    assert.equal(validInput(psbt, 0), true);
  });

  it('at round 2, before the marker: the hour ended between open and round 2', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 15, 10, 59, 59));
    const { nodes, pub, wallet } = setup({
      clock,
      policy: firewall({ allowed_hours_utc: { start: 9, end: 11 } }),
    });
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 40_000n }], [pay(39_000n)]);
    const req = openPsbt(pub, 'ses_hour', psbt.toBase64());
    const [a, b] = [nodes[0]!, nodes[1]!];
    const opens = [a.engine.open(req), b.engine.open(req)];
    const r2 = round2Of(pub, req, opens);
    clock.advance(2_000); // 11:00:01 UTC
    for (const n of [a, b]) {
      refuses(() => n.engine.round2(r2), 'policy_refused', 'outside_allowed_hours');
      assert.equal(n.store.markers.length, 0, 'no marker');
      assert.equal(n.engine.liveAttempts, 1, 'the nonces stay live (until aborted or expired)');
    }
  });

  it('at round 2: signatures per minute, counted when round 2 passes', () => {
    const { nodes, pub, wallet } = setup({ policy: firewall({ max_signatures_per_minute: 3 }) });
    const [a, b] = [nodes[0]!, nodes[1]!];
    // Two sessions of two inputs each: both may open (nothing signed yet), only one may sign.
    const s1 = buildPsbt(
      wallet,
      [
        { kind: 'own', value: 40_000n },
        { kind: 'derived', value: 1_000n, path: [0, 1] },
      ],
      [pay(40_000n)],
    );
    const s2 = buildPsbt(
      wallet,
      [
        { kind: 'own', value: 50_000n },
        { kind: 'derived', value: 1_000n, path: [0, 2] },
      ],
      [pay(50_000n)],
    );
    const req1 = openPsbt(pub, 'ses_rate_1', s1.toBase64());
    const req2 = openPsbt(pub, 'ses_rate_2', s2.toBase64());
    const o1 = [a.engine.open(req1), b.engine.open(req1)];
    const o2 = [a.engine.open(req2), b.engine.open(req2)];
    const r1 = round2Of(pub, req1, o1);
    const r2 = round2Of(pub, req2, o2);
    a.engine.round2(r1);
    b.engine.round2(r1);
    refuses(() => a.engine.round2(r2), 'policy_refused', 'rate_limit');
    assert.equal(a.store.markers.length, 1);
    // A message intent is not the Bitcoin policy's business.
    const msg = new Uint8Array(randomBytes(32));
    const m = openRequest({ keyId: 'k1', sessionId: 'ses_msg', attempt: 1, included: [1, 2], intent: msg });
    assert.ok(a.engine.open(m).commitments);
  });

  it('sign_intents: a custody signer refuses message intents (a digest could be any sighash)', () => {
    const { nodes, pub, wallet } = setup({
      policy: (clock) =>
        new BitcoinSigningPolicy({
          policy: loadPolicy({ network: 'regtest' }),
          clock,
          intents: ['bitcoin_psbt'],
        }),
    });
    const psbt = buildPsbt(wallet, [{ kind: 'own', value: 40_000n }], [pay(39_000n)]);
    const req = openPsbt(pub, 'ses_only', psbt.toBase64());
    assert.ok(nodes[0]!.engine.open(req).inputs);
    // The sighash of that very input, asked for as a bare message: refused.
    const r = openRequest({
      keyId: 'k1',
      sessionId: 'ses_sighash',
      attempt: 1,
      included: [1, 2],
      intent: new Uint8Array(randomBytes(32)),
    });
    refuses(() => nodes[0]!.engine.open(r), 'policy_refused', 'intent_not_allowed');
  });
});
