/**
 * Addresses: BIP-86 vectors (the BIP's mnemonic-derived keys → output keys → bech32m addresses,
 * the account xpub derived with Floe's own CKDpub), BIP-350 segwit address vectors, network and
 * kind refusals, and agreement with bitcoinjs-lib on every script kind.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { HDKey } from '@scure/bip32';
import * as bitcoin from 'bitcoinjs-lib';
import {
  type BitcoinNetwork,
  decodeAddress,
  decodeXpub,
  deriveTweak,
  MAINNET,
  networkByName,
  REGTEST,
  SIGNET,
  scriptKind,
  scriptToAddress,
  TESTNET,
  taprootOutput,
} from '../../src/bitcoin/index.js';
import { describeEachBackend } from '../crypto/backends.js';
import { ecc } from '../helpers/independent.js';
import { hex, mnemonicSeed, pub, randomSecret, unhex } from './helpers.js';

bitcoin.initEccLib(ecc);

const MNEMONIC =
  'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const BIP86_ACCOUNT_XPUB =
  'xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ';
const BIP86 = [
  {
    path: '0/0',
    internal: 'cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115',
    output: 'a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c',
    address: 'bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr',
  },
  {
    path: '0/1',
    internal: '83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145',
    output: 'a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb',
    address: 'bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh',
  },
  {
    path: '1/0',
    internal: '399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef',
    output: '882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc',
    address: 'bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7',
  },
];

describeEachBackend('BIP-86 test vectors', () => {
  it('x-only internal key → output key, script and address', () => {
    for (const v of BIP86) {
      const out = taprootOutput(unhex(v.internal), MAINNET);
      assert.equal(hex(out.outputKey), v.output);
      assert.equal(hex(out.script), `5120${v.output}`);
      assert.equal(out.address, v.address);
      assert.deepEqual(decodeAddress(v.address, MAINNET, { taprootOnly: true }), {
        kind: 'p2tr',
        script: out.script,
      });
    }
  });

  it("mnemonic → account xpub (m/86'/0'/0', the hardened part outside Floe) → Floe CKDpub → addresses", () => {
    const account = HDKey.fromMasterSeed(mnemonicSeed(MNEMONIC)).derive("m/86'/0'/0'");
    assert.equal(account.publicExtendedKey, BIP86_ACCOUNT_XPUB);
    const xpub = decodeXpub(BIP86_ACCOUNT_XPUB, MAINNET);
    for (const v of BIP86) {
      const child = deriveTweak(xpub, v.path);
      assert.equal(hex(child.publicKey.subarray(1)), v.internal);
      // The 33-byte child key (its parity included) gives the same address.
      assert.equal(taprootOutput(child.publicKey, MAINNET).address, v.address);
    }
  });
});

const VALID_SEGWIT: [string, BitcoinNetwork, string][] = [
  ['BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4', MAINNET, '0014751e76e8199196d454941c45d1b3a323f1433bd6'],
  [
    'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7',
    TESTNET,
    '00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262',
  ],
  [
    'bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y',
    MAINNET,
    '5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6',
  ],
  ['BC1SW50QGDZ25J', MAINNET, '6002751e'],
  ['bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs', MAINNET, '5210751e76e8199196d454941c45d1b3a323'],
  [
    'tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy',
    TESTNET,
    '0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433',
  ],
  [
    'tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c',
    SIGNET,
    '5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433',
  ],
  [
    'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0',
    MAINNET,
    '512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798',
  ],
];

const INVALID_SEGWIT = [
  'tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut', // unknown HRP
  'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd', // bech32 instead of bech32m
  'BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL', // bech32 instead of bech32m
  'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh', // bech32m instead of bech32
  'bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4', // invalid checksum character
  'BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R', // witness version 17
  'bc1pw5dgrnzv', // 1-byte program
  'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav', // 41-byte program
  'BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P', // 16-byte v0 program
  'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf', // more than 4 bits of padding
  'bc1gmk9yu', // empty data
  '',
  'not an address',
];
const INVALID_TESTNET = [
  'tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf', // bech32 instead of bech32m
  'tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47', // bech32m instead of bech32
  'tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq', // mixed case
  'tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j', // non-zero padding
];

describeEachBackend('address parsing', () => {
  it('BIP-350 valid segwit addresses parse to their scripts and back', () => {
    for (const [address, network, script] of VALID_SEGWIT) {
      const d = decodeAddress(address, network);
      assert.equal(hex(d.script), script, address);
      assert.equal(scriptToAddress(d.script, network), address.toLowerCase());
      assert.equal(d.kind, scriptKind(d.script));
    }
  });

  it('BIP-350 invalid addresses are refused (address_invalid)', () => {
    for (const a of INVALID_SEGWIT) {
      assert.throws(
        () => decodeAddress(a, MAINNET),
        (e: any) => e.code === 'address_invalid' && e.extra.reason === 'address_invalid',
        a,
      );
    }
    for (const a of INVALID_TESTNET) {
      assert.throws(
        () => decodeAddress(a, TESTNET),
        (e: any) => e.extra.reason === 'address_invalid',
        a,
      );
    }
  });

  it('an address of another network is refused, naming it', () => {
    const mainnetP2tr = BIP86[0]!.address;
    assert.throws(() => decodeAddress(mainnetP2tr, TESTNET), {
      extra: { reason: 'address_wrong_network', network: 'testnet', address_network: 'mainnet' },
    });
    const testnetP2tr = taprootOutput(unhex(BIP86[0]!.internal), TESTNET).address;
    assert.throws(() => decodeAddress(testnetP2tr, MAINNET), {
      extra: { reason: 'address_wrong_network', network: 'mainnet', address_network: 'testnet|signet' },
    });
    assert.throws(
      () => decodeAddress(testnetP2tr, REGTEST),
      (e: any) => e.extra.reason === 'address_wrong_network',
    );
    const regtest = taprootOutput(unhex(BIP86[0]!.internal), REGTEST).address;
    assert.ok(regtest.startsWith('bcrt1p'));
    assert.throws(() => decodeAddress(regtest, TESTNET), {
      extra: { reason: 'address_wrong_network', network: 'testnet', address_network: 'regtest' },
    });
    // Legacy: a mainnet P2PKH on testnet.
    assert.throws(
      () => decodeAddress('1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2', TESTNET),
      (e: any) => e.extra.reason === 'address_wrong_network' && e.extra.address_network === 'mainnet',
    );
    assert.throws(
      () => networkByName('bitcoin'),
      (e: any) => e.extra.reason === 'network_unknown',
    );
  });

  it('taprootOnly refuses every other kind (v0, v2+, legacy)', () => {
    for (const [address, network] of VALID_SEGWIT) {
      const kind = decodeAddress(address, network).kind;
      if (kind === 'p2tr') continue;
      assert.throws(() => decodeAddress(address, network, { taprootOnly: true }), {
        code: 'address_unsupported',
        extra: { reason: 'address_unsupported', kind },
      });
    }
    assert.throws(() => decodeAddress('3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy', MAINNET, { taprootOnly: true }), {
      extra: { reason: 'address_unsupported', kind: 'p2sh' },
    });
  });

  it('agrees with bitcoinjs-lib on every script kind, all networks', () => {
    const nets: [BitcoinNetwork, bitcoin.Network][] = [
      [MAINNET, bitcoin.networks.bitcoin],
      [TESTNET, bitcoin.networks.testnet],
      [REGTEST, bitcoin.networks.regtest],
    ];
    for (let i = 0; i < 6; i++) {
      const key = pub(randomSecret());
      for (const [ours, theirs] of nets) {
        const payments = [
          bitcoin.payments.p2pkh({ pubkey: key, network: theirs }),
          bitcoin.payments.p2wpkh({ pubkey: key, network: theirs }),
          bitcoin.payments.p2sh({
            redeem: bitcoin.payments.p2wpkh({ pubkey: key, network: theirs }),
            network: theirs,
          }),
          bitcoin.payments.p2wsh({
            redeem: bitcoin.payments.p2pk({ pubkey: key, network: theirs }),
            network: theirs,
          }),
          bitcoin.payments.p2tr({ internalPubkey: key.subarray(1), network: theirs }),
        ];
        for (const p of payments) {
          const d = decodeAddress(p.address!, ours);
          assert.equal(hex(d.script), hex(p.output!));
          assert.equal(scriptToAddress(d.script, ours), p.address);
        }
        // Floe's BIP-86 output of the same internal key is bitcoinjs-lib's p2tr.
        assert.equal(taprootOutput(key, ours).address, payments[4]!.address);
      }
    }
  });

  it('scripts without an address', () => {
    assert.equal(scriptToAddress(unhex('6a0568656c6c6f'), MAINNET), null); // OP_RETURN
    assert.equal(scriptKind(unhex('6a0568656c6c6f')), 'nonstandard');
    assert.equal(scriptToAddress(new Uint8Array(0), MAINNET), null);
  });

  it('internal keys: 32-byte x-only or 33-byte compressed, valid points only', () => {
    const x = unhex(BIP86[0]!.internal);
    assert.throws(
      () => taprootOutput(new Uint8Array(31), MAINNET),
      (e: any) => e.extra.reason === 'address_invalid',
    );
    const bad = (e: any) => e.code === 'address_invalid' && e.extra.reason === 'address_invalid';
    assert.throws(() => taprootOutput(Uint8Array.of(4, ...x), MAINNET), bad);
    // x = 5 is not on secp256k1.
    assert.throws(() => taprootOutput(unhex('05'.padStart(64, '0')), MAINNET), bad);
  });
});
