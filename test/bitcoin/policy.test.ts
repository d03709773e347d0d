/**
 * The signer-side policy firewall: every rule refuses what it should, with its stable name, and
 * allows what it should; the config is validated (TypeBox schema, addresses of its network).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BitcoinPolicySchema,
  checkPolicy,
  loadPolicy,
  POLICY_RULES,
  type PolicyDecision,
  type PsbtOutputView,
  type PsbtView,
  policyRefusal,
  RATE_WINDOW_MS,
  recordSignatures,
  TESTNET,
  taprootOutput,
} from '../../src/bitcoin/index.js';
import { hex, pub, randomSecret } from './helpers.js';

const isReason = (reason: string) => (e: any) => e?.extra?.reason === reason;

const dest = () => taprootOutput(pub(randomSecret()), TESTNET);
const ALICE = dest();
const BOB = dest();
const CAROL = dest();
const OWN = dest();

function output(
  index: number,
  to: { script: Uint8Array; address: string },
  value: number,
  change = false,
): PsbtOutputView {
  return {
    index,
    value,
    script: hex(to.script),
    kind: 'p2tr',
    address: to.address,
    change,
    claimsChange: change,
    ...(change ? { path: 'm/1/0' } : {}),
  };
}

/** A view: one input of ours (100 000 sats), the given outputs, fee = the rest. */
function view(
  outputs: PsbtOutputView[],
  opts: { network?: 'testnet' | 'mainnet'; inputs?: number } = {},
): PsbtView {
  const totalIn = 100_000 * (opts.inputs ?? 1);
  const totalOut = outputs.reduce((a, o) => a + o.value, 0);
  const changeTotal = outputs.filter((o) => o.change).reduce((a, o) => a + o.value, 0);
  return {
    network: opts.network ?? 'testnet',
    txid: '00'.repeat(32),
    version: 2,
    locktime: 0,
    inputs: Array.from({ length: opts.inputs ?? 1 }, (_, i) => ({
      index: i,
      prevout: `${'11'.repeat(32)}:${i}`,
      value: 100_000,
      script: hex(OWN.script),
      address: OWN.address,
      ours: true,
      path: 'm/0/0',
      signed: false,
    })),
    outputs,
    totalIn,
    totalOut,
    fee: totalIn - totalOut,
    sent: totalOut - changeTotal,
    changeTotal,
  };
}

const NOON = Date.UTC(2025, 0, 15, 12, 30);
const at = (hour: number) => Date.UTC(2025, 0, 15, hour, 5);

function refused(d: PolicyDecision, rule: string): void {
  assert.equal(d.ok, false, `expected a refusal by ${rule}`);
  if (!d.ok) {
    assert.equal(d.rule, rule);
    assert.ok(d.detail.length > 10);
  }
}

describe('bitcoin policy rules', () => {
  it('an empty policy allows everything on its network', () => {
    const p = loadPolicy({ network: 'testnet' });
    assert.deepEqual(checkPolicy(p, view([output(0, ALICE, 90_000)]), NOON), { ok: true });
    refused(
      checkPolicy(p, view([output(0, ALICE, 90_000)], { network: 'mainnet' }), NOON),
      'network_mismatch',
    );
  });

  it('max_outputs counts every output, change included', () => {
    const p = loadPolicy({ network: 'testnet', max_outputs: 2 });
    assert.ok(checkPolicy(p, view([output(0, ALICE, 1_000), output(1, OWN, 1_000, true)]), NOON).ok);
    refused(
      checkPolicy(
        p,
        view([output(0, ALICE, 1_000), output(1, BOB, 1_000), output(2, OWN, 1_000, true)]),
        NOON,
      ),
      'max_outputs',
    );
  });

  it('destination_not_allowed: non-change outputs must be on the allowlist (addresses or scripts)', () => {
    const p = loadPolicy({
      network: 'testnet',
      allowed_destinations: [ALICE.address, `script:${hex(BOB.script)}`],
    });
    assert.ok(checkPolicy(p, view([output(0, ALICE, 1_000), output(1, BOB, 1_000)]), NOON).ok);
    // Change to our own key needs no allowlist entry.
    assert.ok(checkPolicy(p, view([output(0, ALICE, 1_000), output(1, OWN, 50_000, true)]), NOON).ok);
    refused(
      checkPolicy(p, view([output(0, ALICE, 1_000), output(1, CAROL, 1_000)]), NOON),
      'destination_not_allowed',
    );
    // An upper-case bech32 address in the allowlist is the same script.
    const upper = loadPolicy({ network: 'testnet', allowed_destinations: [CAROL.address.toUpperCase()] });
    assert.ok(checkPolicy(upper, view([output(0, CAROL, 1_000)]), NOON).ok);
  });

  it('max_output_value bounds each non-change output', () => {
    const p = loadPolicy({ network: 'testnet', max_output_value_sats: 10_000 });
    assert.ok(checkPolicy(p, view([output(0, ALICE, 10_000), output(1, OWN, 80_000, true)]), NOON).ok);
    refused(checkPolicy(p, view([output(0, ALICE, 10_001)]), NOON), 'max_output_value');
  });

  it('max_total_value bounds the sum of non-change outputs', () => {
    const p = loadPolicy({ network: 'testnet', max_total_value_sats: 15_000 });
    assert.ok(
      checkPolicy(
        p,
        view([output(0, ALICE, 7_500), output(1, BOB, 7_500), output(2, OWN, 80_000, true)]),
        NOON,
      ).ok,
    );
    refused(checkPolicy(p, view([output(0, ALICE, 7_500), output(1, BOB, 7_501)]), NOON), 'max_total_value');
  });

  it('max_fee', () => {
    const p = loadPolicy({ network: 'testnet', max_fee_sats: 2_000 });
    assert.ok(checkPolicy(p, view([output(0, ALICE, 98_000)]), NOON).ok);
    refused(checkPolicy(p, view([output(0, ALICE, 97_999)]), NOON), 'max_fee');
  });

  it('change_not_own: an output claiming to be ours must be (on by default; can be turned off)', () => {
    const fake = { ...output(1, CAROL, 5_000), claimsChange: true };
    const v = view([output(0, ALICE, 1_000), fake]);
    refused(checkPolicy(loadPolicy({ network: 'testnet' }), v, NOON), 'change_not_own');
    assert.ok(checkPolicy(loadPolicy({ network: 'testnet', change_only_to_own: false }), v, NOON).ok);
  });

  it('outside_allowed_hours: [start, end) in UTC, wrapping past midnight', () => {
    const day = loadPolicy({ network: 'testnet', allowed_hours_utc: { start: 8, end: 18 } });
    const v = view([output(0, ALICE, 1_000)]);
    for (const h of [8, 12, 17]) assert.ok(checkPolicy(day, v, at(h)).ok, `hour ${h}`);
    for (const h of [0, 7, 18, 23]) refused(checkPolicy(day, v, at(h)), 'outside_allowed_hours');
    const night = loadPolicy({ network: 'testnet', allowed_hours_utc: { start: 22, end: 6 } });
    for (const h of [22, 23, 0, 5]) assert.ok(checkPolicy(night, v, new Date(at(h))).ok, `hour ${h}`);
    for (const h of [6, 12, 21]) refused(checkPolicy(night, v, at(h)), 'outside_allowed_hours');
  });

  it('rate_limit: a sliding 60-second window over injected state, counting the signatures asked', () => {
    const p = loadPolicy({ network: 'testnet', max_signatures_per_minute: 3 });
    const one = view([output(0, ALICE, 1_000)]);
    const two = view([output(0, ALICE, 1_000)], { inputs: 2 });
    let state = { signatures: [] as number[] };
    for (let i = 0; i < 3; i++) {
      assert.ok(checkPolicy(p, one, NOON + i * 1_000, state).ok);
      state = recordSignatures(state, NOON + i * 1_000) as { signatures: number[] };
    }
    refused(checkPolicy(p, one, NOON + 3_000, state), 'rate_limit');
    // The window slides: the first signature leaves it after 60 s.
    assert.ok(checkPolicy(p, one, NOON + RATE_WINDOW_MS + 1, state).ok);
    refused(checkPolicy(p, two, NOON + RATE_WINDOW_MS + 1, state), 'rate_limit');
    assert.ok(checkPolicy(p, two, NOON + RATE_WINDOW_MS + 1_001, state).ok);
    // Recording prunes what left the window.
    assert.equal(recordSignatures(state, NOON + 10 * RATE_WINDOW_MS, 2).signatures.length, 2);
  });

  it('the first failing rule wins, in POLICY_RULES order; refusals become policy_refused with the rule', () => {
    const p = loadPolicy({ network: 'testnet', max_outputs: 1, max_output_value_sats: 1 });
    const d = checkPolicy(p, view([output(0, ALICE, 5_000), output(1, BOB, 5_000)]), NOON);
    refused(d, 'max_outputs');
    if (d.ok) return;
    const e = policyRefusal(d);
    assert.equal(e.code, 'policy_refused');
    assert.equal(e.status, 403);
    assert.deepEqual(e.extra, { rule: 'max_outputs' });
    assert.ok(POLICY_RULES.includes(d.rule));
  });
});

describe('bitcoin policy config', () => {
  it('is validated by its TypeBox schema, naming the field', () => {
    assert.equal(BitcoinPolicySchema.additionalProperties, false);
    for (const bad of [
      {},
      { network: 'bitcoin' },
      { network: 'testnet', max_fee_sats: -1 },
      { network: 'testnet', max_output_value_sats: 1.5 },
      { network: 'testnet', max_total_value_sats: 2_100_000_000_000_001 },
      { network: 'testnet', max_outputs: 0 },
      { network: 'testnet', allowed_hours_utc: { start: 8 } },
      { network: 'testnet', allowed_hours_utc: { start: 24, end: 3 } },
      { network: 'testnet', unknown_rule: true },
      { network: 'testnet', allowed_destinations: 'tb1…' },
      null,
    ]) {
      assert.throws(() => loadPolicy(bad), isReason('policy_config_invalid'), JSON.stringify(bad));
    }
  });

  it('refuses destinations that are not addresses of its network, and empty hour windows', () => {
    const mainnet = taprootOutput(pub(randomSecret()), { ...TESTNET, bech32: 'bc' }).address;
    assert.throws(
      () => loadPolicy({ network: 'testnet', allowed_destinations: [mainnet] }),
      (e: any) =>
        isReason('policy_config_invalid')(e) &&
        /mainnet/.test(e.message) &&
        /allowed_destinations\/0/.test(e.message),
    );
    assert.throws(
      () => loadPolicy({ network: 'testnet', allowed_destinations: ['nope'] }),
      isReason('policy_config_invalid'),
    );
    assert.throws(
      () => loadPolicy({ network: 'testnet', allowed_destinations: ['script:ABCD'] }),
      isReason('policy_config_invalid'),
    );
    assert.throws(
      () => loadPolicy({ network: 'testnet', allowed_hours_utc: { start: 9, end: 9 } }),
      isReason('policy_config_invalid'),
    );
  });
});
