/**
 * Share backup format (src/signer/backup.ts): round trips sealed to an X25519 recipient and under
 * a passphrase, refusal of a wrong key, of any altered byte, and of a share paired with another
 * key's group (the checksum and the share·G checks); and the store's export / restore methods.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { x25519 } from '@noble/curves/ed25519.js';
import { bech32 } from '@scure/base';
import { encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { identityPublicKey } from '../../src/crypto/identity.js';
import { dealerSplit, generateIdentityKey, type KeyPackage, toHex } from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import {
  BACKUP_FORMAT,
  encodeSharePayload,
  generateBackupIdentity,
  openShareBackup,
  parseIdentityFile,
  parseRecipient,
  readShareBackupHeader,
  type ShareBackup,
  sealShareBackup,
  sealSharePayload,
} from '../../src/signer/backup.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { SqliteSignerStore } from '../../src/signer/store.js';

const secretOf = (byte: number) => new Uint8Array(32).fill(byte);

function keyPackages(byte: number): KeyPackage[] {
  return dealerSplit(secretOf(byte), 2, 3).shares;
}

function backupOf(kp: KeyPackage, identitySecret: Uint8Array, keyId = 'key_backup_a'): ShareBackup {
  return {
    keyId,
    identifier: kp.identifier,
    origin: 'dealer',
    createdAt: 1_700_000_000_000,
    transcriptHash: new Uint8Array(32).fill(7),
    approvalPolicy: { revision: 0, policy: null },
    keyPackage: { ...kp, signingShare: Uint8Array.from(kp.signingShare) },
    identitySecret: Uint8Array.from(identitySecret),
  };
}

async function rejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FloeError, `a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const encode = (s: string) => new TextEncoder().encode(s);

describe('share backup format', () => {
  const a = keyPackages(0x11);
  const b = keyPackages(0x22);
  const node = generateIdentityKey();
  const operator = generateBackupIdentity();
  const operatorSecret = parseIdentityFile(operator.identityFile);

  it('an operator key: the identity file gives the recipient it prints (age encoding)', () => {
    assert.match(operator.recipient, /^age1[02-9ac-hj-np-z]{58}$/);
    assert.match(operator.identityFile, /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/m);
    assert.deepEqual(parseRecipient(operator.recipient), x25519.getPublicKey(operatorSecret));
    assert.throws(() => parseRecipient('npub1xyz'), /age X25519 recipient/);
    assert.throws(() => parseIdentityFile('# only a comment\n'), /AGE-SECRET-KEY-1/);
  });

  it('round trip sealed to an X25519 recipient: same share, package, identity and metadata', async () => {
    const kp = a[2]!;
    const file = await sealShareBackup(backupOf(kp, node), { recipient: operator.recipient });
    const h = readShareBackupHeader(file);
    assert.equal(h.format, BACKUP_FORMAT);
    assert.deepEqual([h.key_id, h.identifier, h.kdf.kind], ['key_backup_a', 3, 'x25519']);
    // No secret in the clear: neither the share nor the identity key, in hex or base64.
    const text = decode(file);
    for (const s of [kp.signingShare, node]) {
      assert.ok(!text.includes(toHex(s)));
      assert.ok(!text.includes(Buffer.from(s).toString('base64')));
      assert.ok(Buffer.from(file).indexOf(Buffer.from(s)) < 0);
    }
    const got = await openShareBackup(file, { identity: operatorSecret });
    assert.equal(got.keyId, 'key_backup_a');
    assert.equal(got.identifier, 3);
    assert.equal(got.origin, 'dealer');
    assert.equal(got.createdAt, 1_700_000_000_000);
    assert.deepEqual(got.transcriptHash, new Uint8Array(32).fill(7));
    assert.deepEqual(got.approvalPolicy, { revision: 0, policy: null });
    assert.deepEqual(got.keyPackage.signingShare, kp.signingShare);
    assert.deepEqual(encodePublicKeyPackage(got.keyPackage.public), encodePublicKeyPackage(kp.public));
    assert.deepEqual(got.identitySecret, node);
  });

  it("a refreshed share's backup carries its generation; a first-generation one has none", async () => {
    const kp = a[1]!;
    const refreshed = await sealShareBackup(
      { ...backupOf(kp, node), generation: 3 },
      { recipient: operator.recipient },
    );
    assert.equal((await openShareBackup(refreshed, { identity: operatorSecret })).generation, 3);
    const first = await sealShareBackup(backupOf(kp, node), { recipient: operator.recipient });
    assert.equal((await openShareBackup(first, { identity: operatorSecret })).generation, undefined);
  });

  it('round trip under a passphrase (scrypt N=2^17); a wrong passphrase is unauthorized', async () => {
    const kp = a[0]!;
    const file = await sealShareBackup(backupOf(kp, node), { passphrase: 'correct horse battery' });
    const h = readShareBackupHeader(file);
    assert.deepEqual(h.kdf.kind === 'scrypt' && [h.kdf.log_n, h.kdf.r, h.kdf.p], [17, 8, 1]);
    const got = await openShareBackup(file, { passphrase: 'correct horse battery' });
    assert.deepEqual(got.keyPackage.signingShare, kp.signingShare);
    await rejects(
      openShareBackup(file, { passphrase: 'correct horse battery!' }),
      'unauthorized',
      /does not decrypt with this passphrase/,
    );
    // The other kind of key is a usage error, not a decryption attempt.
    await rejects(openShareBackup(file, { identity: operatorSecret }), 'invalid_request', /passphrase/);
    // A weaker scrypt cost is refused when sealing.
    await rejects(sealShareBackup(backupOf(kp, node), { passphrase: 'x', logN: 12 }), 'invalid_request');
  });

  it('another operator key is refused, naming the recipient the file is sealed to', async () => {
    const file = await sealShareBackup(backupOf(a[1]!, node), { recipient: operator.recipient });
    const other = parseIdentityFile(generateBackupIdentity().identityFile);
    await rejects(
      openShareBackup(file, { identity: other }),
      'unauthorized',
      new RegExp(`sealed to ${operator.recipient}, not to this identity key`),
    );
    await rejects(openShareBackup(file, { passphrase: 'p' }), 'invalid_request', /identity key file/);
  });

  it('any altered byte makes the file unusable; altered sealed bytes or header fields are unauthorized', async () => {
    const file = await sealShareBackup(backupOf(a[1]!, node), { recipient: operator.recipient });
    const h = readShareBackupHeader(file);
    const withHeader = (patch: Record<string, unknown>) => encode(JSON.stringify({ ...h, ...patch }));
    // One bit of the ciphertext.
    const ct = Buffer.from(h.ciphertext, 'base64');
    for (const i of [0, 40, ct.length - 1]) {
      const t = Buffer.from(ct);
      t[i]! ^= 1;
      await rejects(
        openShareBackup(withHeader({ ciphertext: t.toString('base64') }), { identity: operatorSecret }),
        'unauthorized',
      );
    }
    // Header fields are under the AEAD.
    await rejects(
      openShareBackup(withHeader({ key_id: 'key_backup_b' }), { identity: operatorSecret }),
      'unauthorized',
    );
    await rejects(
      openShareBackup(withHeader({ identifier: 3 }), { identity: operatorSecret }),
      'unauthorized',
    );
    await rejects(
      openShareBackup(withHeader({ nonce: '00'.repeat(12) }), { identity: operatorSecret }),
      'unauthorized',
    );
    // Every single byte of the file, changed: never opens.
    let refused = 0;
    for (let i = 0; i < file.length; i += 3) {
      const t = Uint8Array.from(file);
      t[i] = t[i] === 0x41 ? 0x42 : 0x41;
      await assert.rejects(openShareBackup(t, { identity: operatorSecret }), FloeError);
      refused++;
    }
    assert.ok(refused > 100);
  });

  it("a share paired with another key's group fails the checks when opened", async () => {
    const mixed: ShareBackup = { ...backupOf(a[0]!, node), keyPackage: { ...a[0]!, public: b[0]!.public } };
    // Sealing checks first.
    await rejects(sealShareBackup(mixed, { recipient: operator.recipient }), 'invalid_share');
    // A file made without that check: opening refuses it (share·G is not B's verifying share).
    const file = await sealSharePayload(
      encodeSharePayload(mixed),
      { keyId: mixed.keyId, identifier: 1 },
      { recipient: operator.recipient },
    );
    await rejects(openShareBackup(file, { identity: operatorSecret }), 'invalid_share', /does not match/);
    // The group key alone replaced inside a consistent payload: the checksum catches it.
    const good = encodeSharePayload(backupOf(a[0]!, node));
    const groupA = Buffer.from(a[0]!.public.commitments[0]!);
    const at = Buffer.from(good).indexOf(groupA);
    assert.ok(at > 0);
    const swapped = Uint8Array.from(good);
    swapped.set(b[0]!.public.commitments[0]!, at);
    const file2 = await sealSharePayload(
      swapped,
      { keyId: mixed.keyId, identifier: 1 },
      { recipient: operator.recipient },
    );
    await rejects(openShareBackup(file2, { identity: operatorSecret }), 'invalid_share', /checksum/);
  });

  it('a share of another member of the same key is refused', async () => {
    const wrongMember: ShareBackup = {
      ...backupOf(a[0]!, node),
      keyPackage: { ...a[0]!, identifier: 2 },
      identifier: 2,
    };
    await rejects(sealShareBackup(wrongMember, { recipient: operator.recipient }), 'invalid_share');
  });

  it('the age recipient encoding is plain bech32 of the X25519 public key', () => {
    const pub = x25519.getPublicKey(operatorSecret);
    assert.equal(bech32.encode('age', bech32.toWords(pub)), operator.recipient);
  });
});

describe('store: export and restore one key', () => {
  let dir: string;
  let store: SqliteSignerStore;
  const kp = dealerSplit(secretOf(0x33), 2, 3).shares[1]!;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'floe-backup-'));
    store = await SqliteSignerStore.open({
      path: join(dir, 'signer.db'),
      keySource: new PassphraseKeySource('store pass', { N: 1 << 12 }),
      create: true,
    });
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restoreKey inserts once (key_exists after), exportKey gives it back, audited', () => {
    const key = {
      keyId: 'key_restored',
      identifier: 2,
      status: 'active' as const,
      origin: 'dkg' as const,
      keyPackage: { ...kp, signingShare: Uint8Array.from(kp.signingShare) },
      transcriptHash: new Uint8Array(32).fill(9),
      createdAt: 42,
    };
    store.restoreKey(key, undefined, 1000);
    assert.throws(
      () => store.restoreKey(key, undefined, 1001),
      (e: FloeError) => e.code === 'key_exists',
    );
    const { key: out, freeze } = store.exportKey('key_restored', 1002);
    assert.equal(freeze, undefined);
    assert.deepEqual(out.keyPackage.signingShare, kp.signingShare);
    assert.deepEqual(out.transcriptHash, new Uint8Array(32).fill(9));
    assert.deepEqual(
      store
        .listAudit(10)
        .filter((e) => e.keyId === 'key_restored')
        .map((e) => e.kind),
      ['key_backup_exported', 'key_restored'],
    );
    assert.throws(
      () => store.exportKey('key_missing', 1),
      (e: FloeError) => e.code === 'unknown_key',
    );
    store.putKey({ ...key, keyId: 'key_pending', status: 'pending' });
    assert.throws(
      () => store.exportKey('key_pending', 1),
      (e: FloeError) => e.code === 'key_not_active',
    );
    // The identity a backup carries is the store's.
    const id = generateIdentityKey();
    store.setIdentity(id);
    assert.deepEqual(identityPublicKey(store.getIdentity()!), identityPublicKey(id));
  });
});
