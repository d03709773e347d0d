import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { newKeyId, prepareDealerImport } from '../../src/client/dealer-import.js';
import {
  aggregate,
  commit,
  decodePublicKeyPackage,
  generateIdentityKey,
  openBox,
  signShare,
  softwareIdentity,
  toHex,
  validateKeyPackage,
} from '../../src/crypto/index.js';
import { IMPORT_BOX_INFO, importBoxAad } from '../../src/protocol/transcript.js';
import { libsecpVerify } from '../helpers/independent.js';

describe('client-side dealer import', () => {
  const signers = [1, 2, 3].map((i) => {
    const secret = softwareIdentity(generateIdentityKey());
    return { id: `sig_${i}`, identity: secret.publicKeyHex, secret };
  });

  it('splits locally and seals share i to signer i, bound to the key id; t shares sign for secret·G', () => {
    const secret = new Uint8Array(32).fill(7);
    const keyId = newKeyId();
    const { body, xOnlyPublicKey } = prepareDealerImport({
      secret: secret.slice(),
      threshold: 2,
      signers,
      keyId,
      label: 'x',
    });
    assert.equal(xOnlyPublicKey, toHex(schnorr.getPublicKey(secret)));
    assert.equal(body.key_id, keyId);
    assert.deepEqual(body.signers, ['sig_1', 'sig_2', 'sig_3']);
    assert.equal(body.label, 'x');
    const pub = decodePublicKeyPackage(body.public_key_package);
    assert.equal(pub.threshold, 2);
    assert.equal(body.public_key_package.tweak.kind, 'none');
    // A fresh ephemeral sender key per share; nothing in the body is the secret.
    assert.equal(new Set(body.sealed_shares.map((b) => b.sender)).size, 3);
    assert.ok(!JSON.stringify(body).includes(toHex(secret)));

    const members = signers.map((s, i) => ({ identifier: i + 1, identity: s.identity }));
    const aad = (key: string, id: number, m = members, tweak = pub.tweak) =>
      importBoxAad(key, id, pub.commitments[0]!, tweak, m);
    const keys = signers.map((s, i) => {
      const share = openBox(s.secret, body.sealed_shares[i]!, aad(keyId, i + 1), IMPORT_BOX_INFO);
      const k = { identifier: i + 1, signingShare: share, public: pub };
      validateKeyPackage(k);
      return k;
    });
    // The wrong signer, another key id, another member list or another tweak cannot open a share.
    assert.throws(() => openBox(signers[1]!.secret, body.sealed_shares[0]!, aad(keyId, 1), IMPORT_BOX_INFO));
    assert.throws(() =>
      openBox(signers[0]!.secret, body.sealed_shares[0]!, aad('key_other', 1), IMPORT_BOX_INFO),
    );
    const swapped = members.map((m) => (m.identifier === 3 ? { ...m, identity: 'ab'.repeat(32) } : m));
    assert.throws(() =>
      openBox(signers[0]!.secret, body.sealed_shares[0]!, aad(keyId, 1, swapped), IMPORT_BOX_INFO),
    );
    const tweaked = {
      kind: 'taproot' as const,
      internalKey: pub.commitments[0]!,
      merkleRoot: new Uint8Array(0),
    };
    assert.throws(() =>
      openBox(signers[0]!.secret, body.sealed_shares[0]!, aad(keyId, 1, members, tweaked), IMPORT_BOX_INFO),
    );

    const message = new Uint8Array(32).fill(9);
    const chosen = [keys[0]!, keys[2]!];
    const rounds = chosen.map((k) => commit(k));
    const pkg = { message, commitments: rounds.map((r) => r.commitments) };
    const shares = chosen.map((k, i) => signShare(k, rounds[i]!.nonces, pkg));
    const sig = aggregate(pub, pkg, shares);
    assert.ok(libsecpVerify(sig, message, schnorr.getPublicKey(secret)));
  });

  it('refuses a bad threshold or a bad signer identity before anything is sent', () => {
    const secret = new Uint8Array(32).fill(1);
    assert.throws(() => prepareDealerImport({ secret, threshold: 4, signers, keyId: newKeyId() }));
    assert.throws(() =>
      prepareDealerImport({
        secret,
        threshold: 2,
        signers: [signers[0]!, { id: 'sig_x', identity: 'zz' }],
        keyId: newKeyId(),
      }),
    );
  });
});
