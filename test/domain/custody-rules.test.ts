/**
 * The small rules of Bitcoin custody (DESIGN §14): the seed's threshold rules, the `address`
 * role beside the others, and the coordinator config keys that carry them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCoordinatorConfig } from '../../src/config/coordinator.js';
import { thresholdHint, thresholdWarnings } from '../../src/domain/threshold-rules.js';
import { hasRole, ROLES } from '../../src/domain/vocabulary.js';

const rules = (t: number, n: number) => thresholdWarnings(t, n).map((w) => w.rule);

describe('threshold rules (seed 004: t ≤ 2n/3, n − t ≥ 2)', () => {
  it("the seed's recommended groups keep both rules", () => {
    for (const [t, n] of [
      [3, 5],
      [4, 7],
      [10, 15],
      [2, 4],
      [16, 24],
    ] as const) {
      assert.deepEqual(rules(t, n), [], `${t}-of-${n}`);
    }
  });

  it('2-of-3 has no second spare; 3-of-3 breaks both; 18-of-24 is above 2n/3', () => {
    assert.deepEqual(rules(2, 3), ['two_spare']);
    assert.deepEqual(rules(3, 3), ['two_thirds', 'two_spare']);
    assert.deepEqual(rules(4, 5), ['two_thirds', 'two_spare']);
    assert.deepEqual(rules(18, 24), ['two_thirds']);
    // The seed's own table lists 5-of-7, which its first rule refuses (5 > 14/3).
    assert.deepEqual(rules(5, 7), ['two_thirds']);
    assert.match(thresholdWarnings(2, 3)[0]!.detail, /1 spare signer/);
  });

  it('the hint names the smallest group that keeps both rules', () => {
    for (const t of [2, 3, 5, 10, 18]) {
      const n = Number(/\d+-of-(\d+)/.exec(thresholdHint(t))![1]);
      assert.deepEqual(rules(t, n), [], `${t}-of-${n}`);
      assert.ok(rules(t, n - 1).length > 0, `${t}-of-${n - 1} would break a rule`);
    }
  });
});

describe('the address role', () => {
  it('creates and reads addresses only; admin and operator have its rights, the others do not', () => {
    assert.ok(ROLES.includes('address'));
    for (const need of ['admin', 'operator', 'requester', 'viewer'] as const) {
      assert.equal(hasRole('address', need), false, `address has no ${need} rights`);
    }
    assert.ok(hasRole('address', 'address'));
    assert.ok(hasRole('admin', 'address'));
    assert.ok(hasRole('operator', 'address'));
    assert.ok(!hasRole('requester', 'address'));
    assert.ok(!hasRole('viewer', 'address'));
    // the chain of the other roles is unchanged
    assert.ok(hasRole('admin', 'viewer'));
    assert.ok(!hasRole('viewer', 'requester'));
  });
});

describe('coordinator config: network, strict thresholds, the per-passphrase key group', () => {
  it('defaults: regtest, warnings, 2-of-every-active-signer, 600 DKGs a minute', () => {
    const c = loadCoordinatorConfig(undefined, { FLOE_COORDINATOR_DATA_DIR: '/tmp/x' });
    assert.equal(c.bitcoin_network, 'regtest');
    assert.equal(c.strict_thresholds, false);
    assert.equal(c.address_threshold, 2);
    assert.equal(c.address_signers, undefined);
    assert.equal(c.address_create_limit_per_min, 600);
  });

  it('from the environment', () => {
    const id = (b: string) => b.repeat(64);
    const c = loadCoordinatorConfig(undefined, {
      FLOE_BITCOIN_NETWORK: 'mainnet',
      FLOE_STRICT_THRESHOLDS: 'true',
      FLOE_ADDRESS_THRESHOLD: '3',
      FLOE_ADDRESS_SIGNERS: `${id('a')},${id('b')},${id('c')}`,
      FLOE_ADDRESS_CREATE_LIMIT_PER_MIN: '60',
    });
    assert.equal(c.bitcoin_network, 'mainnet');
    assert.equal(c.strict_thresholds, true);
    assert.equal(c.address_threshold, 3);
    assert.deepEqual(c.address_signers, [id('a'), id('b'), id('c')]);
    assert.equal(c.address_create_limit_per_min, 60);
    assert.equal(
      loadCoordinatorConfig(undefined, { FLOE_STRICT_THRESHOLDS: 'false' }).strict_thresholds,
      false,
    );
    assert.throws(
      () => loadCoordinatorConfig(undefined, { FLOE_BITCOIN_NETWORK: 'litecoin' }),
      /bitcoin_network/,
    );
  });
});
