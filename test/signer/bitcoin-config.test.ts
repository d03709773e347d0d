/**
 * The signer's own Bitcoin settings (src/config/signer.ts): its network and its PSBT policy,
 * from its config file or environment only, checked when the config loads so that a signer with
 * a bad policy does not start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadSignerConfig, signerBitcoinPolicy } from '../../src/config/signer.js';
import { FloeError } from '../../src/protocol/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'floe-btc-config-'));
const base = {
  FLOE_SIGNER_DATA_DIR: join(dir, 'data'),
  FLOE_SIGNER_COORDINATORS: 'ab'.repeat(32),
};
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const code = (fn: () => unknown) => {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    if (e instanceof FloeError) return e.code;
    throw e;
  }
};

describe('signer config: bitcoin_network and the PSBT policy', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to regtest with no policy: only the network and change rules', () => {
    const cfg = loadSignerConfig(undefined, base);
    assert.equal(cfg.bitcoin_network, 'regtest');
    const p = signerBitcoinPolicy(cfg);
    assert.equal(p.network, 'regtest');
    assert.equal(p.allowedScripts, undefined);
    assert.equal(p.changeOnlyToOwn, true);
    assert.equal(
      loadSignerConfig(undefined, { ...base, FLOE_SIGNER_BITCOIN_NETWORK: 'signet' }).bitcoin_network,
      'signet',
    );
  });

  it('a policy file (environment) sets the policy and, unless given, the network', () => {
    const p = file(
      'ok.json',
      JSON.stringify({ network: 'testnet', max_output_value_sats: 5000, max_outputs: 3 }),
    );
    const cfg = loadSignerConfig(undefined, { ...base, FLOE_SIGNER_BITCOIN_POLICY_FILE: p });
    assert.equal(cfg.bitcoin_network, 'testnet');
    assert.equal(cfg.bitcoin_policy_file, p);
    assert.equal(signerBitcoinPolicy(cfg).config.max_output_value_sats, 5000);
  });

  it('an inline policy in the config file', () => {
    const cfgFile = file(
      'signer.json',
      JSON.stringify({ bitcoin_policy: { network: 'regtest', allowed_hours_utc: { start: 8, end: 18 } } }),
    );
    const cfg = loadSignerConfig(cfgFile, base);
    assert.deepEqual(signerBitcoinPolicy(cfg).config.allowed_hours_utc, { start: 8, end: 18 });
  });

  it('a bad policy stops the signer at load, with policy_config_invalid', () => {
    const cases: [string, string][] = [
      ['not JSON', '{'],
      ['unknown member', JSON.stringify({ network: 'regtest', max_value: 1 })],
      [
        'an address of another network',
        JSON.stringify({
          network: 'regtest',
          allowed_destinations: ['bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq'],
        }),
      ],
      [
        'an empty hour window',
        JSON.stringify({ network: 'regtest', allowed_hours_utc: { start: 3, end: 3 } }),
      ],
    ];
    for (const [what, content] of cases) {
      const p = file('bad.json', content);
      assert.equal(
        code(() => loadSignerConfig(undefined, { ...base, FLOE_SIGNER_BITCOIN_POLICY_FILE: p })),
        'policy_config_invalid',
        what,
      );
    }
    assert.equal(
      code(() =>
        loadSignerConfig(undefined, { ...base, FLOE_SIGNER_BITCOIN_POLICY_FILE: join(dir, 'missing.json') }),
      ),
      'policy_config_invalid',
    );
  });

  it('sign_intents: the intent types this signer signs', () => {
    const cfg = loadSignerConfig(undefined, { ...base, FLOE_SIGNER_SIGN_INTENTS: 'bitcoin_psbt' });
    assert.deepEqual(cfg.sign_intents, ['bitcoin_psbt']);
    assert.equal(loadSignerConfig(undefined, base).sign_intents, undefined, 'default: all');
    assert.equal(
      code(() => loadSignerConfig(undefined, { ...base, FLOE_SIGNER_SIGN_INTENTS: 'bitcoin_psbt,sighash' })),
      'invalid_request',
    );
  });

  it("a network that is not the policy's is refused", () => {
    const p = file('testnet.json', JSON.stringify({ network: 'testnet' }));
    assert.equal(
      code(() =>
        loadSignerConfig(undefined, {
          ...base,
          FLOE_SIGNER_BITCOIN_POLICY_FILE: p,
          FLOE_SIGNER_BITCOIN_NETWORK: 'mainnet',
        }),
      ),
      'policy_config_invalid',
    );
  });
});
