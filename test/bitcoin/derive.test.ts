/**
 * Derived keys: Floe's CKDpub against the BIP-32 vectors and @scure/bip32 on random xpubs; the
 * tweak d with child = root + d·G (checked with libsecp256k1); xpub serialization; hardened and
 * malformed paths; passphrase paths; and the signer side: shares + d, then the BIP-86 tweak, sign
 * with FROST for the child's address (verified by libsecp256k1), for both parities of the child.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { it } from 'node:test';
import { HDKey } from '@scure/bip32';
import {
  applyDerivation,
  applyDerivationToKey,
  chainCodeFromSecret,
  decodeXpub,
  deriveTweak,
  encodeXpub,
  fingerprint,
  formatPath,
  HARDENED,
  MAINNET,
  PASSPHRASE_PATH_LENGTH,
  parsePath,
  passphrasePath,
  passphraseTweak,
  REGTEST,
  rootXpub,
  TESTNET,
  taprootOutput,
} from '../../src/bitcoin/index.js';
import {
  deriveKeyPackage,
  derivePublicKeyPackage,
  deriveTaprootKeyPackage,
  deriveTaprootPublicKeyPackage,
} from '../../src/crypto/derive-key.js';
import {
  aggregate,
  commit,
  dealerSplit,
  type KeyPackage,
  type PublicKeyPackage,
  signShare,
  tweakKeyPackage,
  validateKeyPackage,
} from '../../src/crypto/index.js';
import { describeEachBackend } from '../crypto/backends.js';
import { ecc, libsecpVerify } from '../helpers/independent.js';
import { big, bytes32, hex, N, pub, randomSecret, schnorrSign, tweakSecret, unhex } from './helpers.js';

const isReason = (reason: string) => (e: any) => e?.extra?.reason === reason;

/** HMAC-SHA256(key, tag || 0x00 || data), written with node:crypto. */
const nodeHmac = (key: Uint8Array, tag: string, data: Uint8Array) =>
  new Uint8Array(
    createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(tag), Buffer.of(0), data]))
      .digest(),
  );

/** commit → signShare → aggregate with a random t-subset of `keys`. */
function thresholdSign(keys: KeyPackage[], pkg: PublicKeyPackage, message: Uint8Array): Uint8Array {
  const ids = keys.map((k) => k.identifier);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const chosen = ids
    .slice(0, pkg.threshold)
    .sort((a, b) => a - b)
    .map((id) => keys.find((k) => k.identifier === id)!);
  const round1 = chosen.map((k) => commit(k));
  const signing = { message, commitments: round1.map((r) => r.commitments) };
  const shares = chosen.map((k, i) => signShare(k, round1[i]!.nonces, signing));
  return aggregate(pkg, signing, shares);
}

// BIP-32 test vector 1 (m/0H/1/2H → /2 → /1000000000) and vector 2 (m → /0): public derivation.
const BIP32_PUBLIC_CHAINS: [string, number[], string][] = [
  [
    'xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5',
    [2],
    'xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV',
  ],
  [
    'xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5',
    [2, 1000000000],
    'xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy',
  ],
  [
    'xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB',
    [0],
    'xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH',
  ],
];

function randomRoot(): { secret: bigint; chainCode: Uint8Array; groupKey: Uint8Array } {
  const secret = randomSecret();
  return { secret, chainCode: new Uint8Array(randomBytes(32)), groupKey: pub(secret) };
}

const randomPath = () => Array.from({ length: randomInt(1, 6) }, () => randomInt(0, 2 ** 31));

describeEachBackend('BIP-32 public derivation', () => {
  it('reproduces the BIP-32 vectors from their xpubs', () => {
    for (const [parent, path, child] of BIP32_PUBLIC_CHAINS) {
      const d = deriveTweak(decodeXpub(parent, MAINNET), path);
      assert.equal(encodeXpub(d.xpub, MAINNET), child);
      assert.deepEqual(d.path, path);
      assert.equal(decodeXpub(child, MAINNET).depth, d.xpub.depth);
    }
  });

  it('equals @scure/bip32 on random root xpubs and paths; child = root + d·G (libsecp256k1)', () => {
    for (let i = 0; i < 24; i++) {
      const { chainCode, groupKey } = randomRoot();
      const root = rootXpub(groupKey, chainCode);
      const theirs = new HDKey({ publicKey: groupKey, chainCode });
      assert.equal(encodeXpub(root, MAINNET), theirs.publicExtendedKey);
      const path = randomPath();
      const ours = deriveTweak(root, path);
      const child = theirs.derive(formatPath(path));
      assert.equal(hex(ours.publicKey), hex(child.publicKey!));
      assert.equal(hex(ours.xpub.chainCode), hex(child.chainCode!));
      assert.equal(encodeXpub(ours.xpub, MAINNET), child.publicExtendedKey);
      const viaTweak = ecc.pointAddScalar(groupKey, ours.tweak, true);
      assert.equal(hex(viaTweak!), hex(ours.publicKey));
      assert.equal(hex(applyDerivationToKey(groupKey, ours.tweak)), hex(ours.publicKey));
      // Prefix paths compose: the tweak of a path is the sum of its steps' IL.
      const head = deriveTweak(root, path.slice(0, 1));
      const tail = deriveTweak(head.xpub, path.slice(1));
      assert.equal((big(head.tweak) + big(tail.tweak)) % N, big(ours.tweak));
    }
  });

  it('the root (m) has a zero tweak and is the group key', () => {
    const { chainCode, groupKey } = randomRoot();
    const d = deriveTweak(rootXpub(groupKey, chainCode), 'm');
    assert.deepEqual(d.tweak, new Uint8Array(32));
    assert.equal(hex(d.publicKey), hex(groupKey));
    assert.deepEqual(d.path, []);
  });
});

describeEachBackend('xpub serialization', () => {
  it('round trips on every network (xpub on mainnet, tpub on the test networks)', () => {
    const { chainCode, groupKey } = randomRoot();
    const root = rootXpub(groupKey, chainCode);
    const main = encodeXpub(root, MAINNET);
    const test = encodeXpub(root, TESTNET);
    assert.ok(main.startsWith('xpub'));
    assert.ok(test.startsWith('tpub'));
    assert.deepEqual(decodeXpub(main, MAINNET), root);
    assert.deepEqual(decodeXpub(test, REGTEST), root);
    assert.equal(fingerprint(groupKey), new HDKey({ publicKey: groupKey, chainCode }).fingerprint);
  });

  it('refuses private keys, other networks, bad checksums and inconsistent depth-0 keys', () => {
    const xprv = HDKey.fromMasterSeed(new Uint8Array(randomBytes(32))).privateExtendedKey;
    assert.throws(
      () => decodeXpub(xprv, MAINNET),
      (e: any) => /PRIVATE/.test(e.message) && isReason('xpub_invalid')(e),
    );
    const { chainCode, groupKey } = randomRoot();
    const main = encodeXpub(rootXpub(groupKey, chainCode), MAINNET);
    assert.throws(() => decodeXpub(main, TESTNET), isReason('address_wrong_network'));
    const broken = main.slice(0, -1) + (main.endsWith('a') ? 'b' : 'a');
    assert.throws(() => decodeXpub(broken, MAINNET), isReason('xpub_invalid'));
    assert.throws(() => decodeXpub('', MAINNET), isReason('xpub_invalid'));
    const odd = encodeXpub({ ...rootXpub(groupKey, chainCode), parentFingerprint: 7 }, MAINNET);
    assert.throws(() => decodeXpub(odd, MAINNET), isReason('xpub_invalid'));
    assert.throws(() => rootXpub(groupKey, new Uint8Array(31)), isReason('xpub_invalid'));
    assert.throws(
      () => rootXpub(Uint8Array.of(2, ...new Uint8Array(32).fill(0xff)), chainCode),
      isReason('xpub_invalid'),
    );
  });
});

describeEachBackend('derivation paths', () => {
  it('hardened steps are refused with a reason a person understands', () => {
    const { chainCode, groupKey } = randomRoot();
    const root = rootXpub(groupKey, chainCode);
    for (const p of ["m/86'/0'/0'", 'm/0h/1', '0/1H', [HARDENED], [0, HARDENED + 5]]) {
      assert.throws(
        () => deriveTweak(root, p),
        (e: any) => isReason('derivation_path_invalid')(e) && /hardened/.test(e.message),
        String(p),
      );
    }
  });

  it('malformed paths are refused', () => {
    for (const p of ['m/', 'm//1', 'm/01', 'm/-1', 'm/1.5', 'x/1', 'm/4294967296', '0/a']) {
      assert.throws(() => parsePath(p), isReason('derivation_path_invalid'), p);
    }
    assert.throws(() => parsePath(Array.from({ length: 17 }, () => 0)), isReason('derivation_path_invalid'));
    assert.throws(() => parsePath([1.5]), isReason('derivation_path_invalid'));
    assert.deepEqual(parsePath('m/0/2147483647'), [0, 2 ** 31 - 1]);
    assert.deepEqual(parsePath('0/5'), [0, 5]);
    assert.deepEqual(parsePath(''), []);
    assert.equal(formatPath([0, 5]), 'm/0/5');
  });
});

describeEachBackend('passphrase paths', () => {
  it('deterministic, non-hardened, keyed by the service secret, never the passphrase alone', () => {
    const secret = new Uint8Array(randomBytes(32));
    const a = passphrasePath(secret, '550e8400-e29b-41d4-a716-446655440000');
    assert.equal(a.length, PASSPHRASE_PATH_LENGTH);
    assert.ok(a.every((i) => Number.isInteger(i) && i >= 0 && i < HARDENED));
    assert.deepEqual(passphrasePath(secret, '550e8400-e29b-41d4-a716-446655440000'), a);
    assert.notDeepEqual(passphrasePath(secret, '550e8400-e29b-41d4-a716-446655440001'), a);
    assert.notDeepEqual(
      passphrasePath(new Uint8Array(randomBytes(32)), '550e8400-e29b-41d4-a716-446655440000'),
      a,
    );
    const { chainCode, groupKey } = randomRoot();
    const root = rootXpub(groupKey, chainCode);
    assert.deepEqual(
      passphraseTweak(secret, 'user-1', root),
      deriveTweak(root, passphrasePath(secret, 'user-1')),
    );
    assert.throws(() => passphrasePath(new Uint8Array(16), 'x'), isReason('derivation_path_invalid'));
    assert.throws(() => passphrasePath(secret, ''), isReason('derivation_path_invalid'));
  });

  it('chainCodeFromSecret: deterministic per (service secret, group key), keyed by the secret', () => {
    const secret = new Uint8Array(randomBytes(32));
    const { groupKey } = randomRoot();
    const c = chainCodeFromSecret(secret, groupKey);
    assert.equal(c.length, 32);
    assert.deepEqual(chainCodeFromSecret(secret, groupKey), c);
    assert.notDeepEqual(chainCodeFromSecret(new Uint8Array(randomBytes(32)), groupKey), c);
    assert.notDeepEqual(chainCodeFromSecret(secret, pub(randomSecret())), c);
    const expected = nodeHmac(secret, 'floe/bitcoin/chain-code/v1', groupKey);
    assert.equal(hex(c), hex(expected));
    assert.throws(() => chainCodeFromSecret(new Uint8Array(31), groupKey), isReason('xpub_invalid'));
  });

  it('a fixed known answer (the mapping must never change: addresses are regenerated from it)', () => {
    const secret = new Uint8Array(32).fill(7);
    assert.deepEqual(passphrasePath(secret, 'alice'), KNOWN_ALICE);
  });
});

// HMAC-SHA256(0x07 × 32, "floe/bitcoin/passphrase-path/v1" || 0x00 || "alice"): its first four
// 32-bit words, each & 0x7fffffff.
const KNOWN_ALICE = [222635419, 596380499, 87002125, 1093286988];

describeEachBackend('derived key packages (signer side)', () => {
  it('shares + d and the BIP-86 tweak sign for the child address, both child parities', () => {
    const seen = new Set<number>();
    for (let round = 0; round < 64 && (seen.size < 2 || round < 4); round++) {
      const { secret, chainCode, groupKey } = randomRoot();
      const deal = dealerSplit(bytes32(secret), 2, 3);
      assert.equal(hex(deal.public.commitments[0]!), hex(groupKey));
      const root = rootXpub(groupKey, chainCode);
      const child = deriveTweak(root, [0, randomInt(0, 1000)]);
      seen.add(child.publicKey[0]!);
      const address = taprootOutput(child.publicKey, MAINNET);

      // Derivation alone: a key for the child, consistent with its commitments.
      const derived = deal.shares.map((k) => deriveKeyPackage(k, child.tweak));
      for (const k of derived) validateKeyPackage(k);
      assert.equal(hex(derived[0]!.public.commitments[0]!), hex(child.publicKey));
      assert.deepEqual(derivePublicKeyPackage(deal.public, child.tweak), derived[0]!.public);
      assert.deepEqual(applyDerivation(deal.public, child.tweak), derived[0]!.public);
      assert.deepEqual(applyDerivation(deal.shares[0]!, child.tweak), derived[0]);
      // Reference: the child secret is secret + d.
      const childSecret = (secret + big(child.tweak)) % N;
      assert.equal(hex(pub(childSecret)), hex(child.publicKey));

      // Then BIP-86: the group signs for the address's output key.
      const keys = deal.shares.map((k) => deriveTaprootKeyPackage(k, child.tweak));
      for (const k of keys) validateKeyPackage(k);
      const pkg = keys[0]!.public;
      assert.deepEqual(deriveTaprootPublicKeyPackage(deal.public, child.tweak), pkg);
      assert.equal(hex(pkg.commitments[0]!.subarray(1)), hex(address.outputKey));
      const msg = new Uint8Array(randomBytes(32));
      const sig = thresholdSign(keys, pkg, msg);
      assert.ok(libsecpVerify(sig, msg, address.outputKey), 'FROST signature verifies under the address key');
      // The reference single-key signature verifies under the same key.
      assert.ok(libsecpVerify(schnorrSign(msg, tweakSecret(childSecret)), msg, address.outputKey));
    }
    assert.equal(seen.size, 2, 'both parities of the child key were exercised');
  });

  it('derives from a DKG-style (already Taproot-tweaked) group key as stored', () => {
    const deal = dealerSplit(bytes32(randomSecret()), 2, 3);
    const stored = deal.shares.map((k) => tweakKeyPackage(k)); // what a Floe DKG key package looks like
    const groupKey = stored[0]!.public.commitments[0]!;
    const child = deriveTweak(rootXpub(groupKey, new Uint8Array(randomBytes(32))), 'm/0/7');
    const keys = stored.map((k) => deriveTaprootKeyPackage(k, child.tweak));
    for (const k of keys) validateKeyPackage(k);
    const outputKey = taprootOutput(child.publicKey, MAINNET).outputKey;
    const msg = new Uint8Array(randomBytes(32));
    assert.ok(libsecpVerify(thresholdSign(keys, keys[0]!.public, msg), msg, outputKey));
  });

  it('refuses malformed tweaks', () => {
    const deal = dealerSplit(bytes32(randomSecret()), 2, 3);
    assert.throws(() => deriveKeyPackage(deal.shares[0]!, new Uint8Array(31)), { code: 'invalid_scalar' });
    assert.throws(() => deriveKeyPackage(deal.shares[0]!, unhex('ff'.repeat(32))), {
      code: 'invalid_scalar',
    });
    // A zero tweak is the identity derivation.
    assert.deepEqual(
      deriveKeyPackage(deal.shares[0]!, new Uint8Array(32)).signingShare,
      deal.shares[0]!.signingShare,
    );
  });
});
