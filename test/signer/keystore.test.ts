import assert from 'node:assert/strict';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FloeError } from '../../src/protocol/errors.js';
import {
  encodeScryptParams,
  PassphraseKeySource,
  readPassphrase,
  SCRYPT_DEFAULT_N,
} from '../../src/signer/keys/passphrase.js';
import {
  checkAad,
  identityAad,
  type KeyRowFields,
  KeyRowMac,
  keyRowBytes,
  RecordCipher,
  sealCheck,
  shareAad,
  verifyCheck,
} from '../../src/signer/keystore.js';

const N = 1 << 12;

function rejectsWith(code: string) {
  return (e: unknown) => e instanceof FloeError && e.code === code;
}

const key = () => new Uint8Array(randomBytes(32));
const plain = new TextEncoder().encode('{"signing_share":"00ff"}');

describe('RecordCipher', () => {
  it('seals and opens a record (format 0x01 || nonce || ct || tag)', () => {
    const c = new RecordCipher(key());
    const aad = shareAad('k1', 1);
    const blob = c.seal(plain, aad);
    assert.equal(blob[0], 0x01);
    assert.equal(blob.length, 1 + 12 + plain.length + 16);
    assert.deepEqual(c.open(blob, aad), plain);
  });

  it('uses a fresh nonce for every seal', () => {
    const c = new RecordCipher(key());
    const a = c.seal(plain, identityAad());
    const b = c.seal(plain, identityAad());
    assert.notDeepEqual(a.subarray(1, 13), b.subarray(1, 13));
    assert.notDeepEqual(a, b);
    assert.deepEqual(c.open(a, identityAad()), c.open(b, identityAad()));
  });

  it('does not open under another key id, identifier or record kind', () => {
    const c = new RecordCipher(key());
    const blob = c.seal(plain, shareAad('k1', 1));
    for (const aad of [shareAad('k2', 1), shareAad('k1', 2), identityAad(), checkAad(), new Uint8Array()]) {
      assert.throws(() => c.open(blob, aad), rejectsWith('internal'));
    }
  });

  it('AAD is unambiguous (length-prefixed, distinct tags)', () => {
    assert.notDeepEqual(shareAad('k1', 1), shareAad('k', 1));
    assert.notDeepEqual(identityAad(), checkAad());
    assert.notDeepEqual(shareAad('', 0), identityAad());
  });

  it('refuses a tampered record (any byte) and a truncated one', () => {
    const c = new RecordCipher(key());
    const aad = shareAad('k1', 1);
    const blob = c.seal(plain, aad);
    for (let i = 0; i < blob.length; i++) {
      const t = Uint8Array.from(blob);
      t[i]! ^= 0x01;
      assert.throws(() => c.open(t, aad), rejectsWith('internal'), `byte ${i}`);
    }
    assert.throws(() => c.open(blob.subarray(0, 28), aad), rejectsWith('internal'));
    assert.throws(() => c.open(blob.subarray(0, blob.length - 1), aad), rejectsWith('internal'));
  });

  it('does not open under another data key, and the error carries no key material', () => {
    const k1 = key();
    const k2 = key();
    const blob = new RecordCipher(k1).seal(plain, identityAad());
    assert.throws(
      () => new RecordCipher(k2).open(blob, identityAad()),
      (e: unknown) => {
        assert.ok(e instanceof FloeError && e.code === 'internal');
        assert.match(e.message, /does not decrypt/);
        for (const s of [Buffer.from(k1).toString('hex'), Buffer.from(k2).toString('hex')]) {
          assert.ok(!e.message.includes(s));
          assert.ok(!JSON.stringify(e).includes(s));
        }
        return true;
      },
    );
  });

  it('the caller may wipe the data key after construction', () => {
    const k = key();
    const c = new RecordCipher(k);
    const blob = c.seal(plain, identityAad());
    k.fill(0);
    assert.deepEqual(c.open(blob, identityAad()), plain);
    assert.throws(() => new RecordCipher(new Uint8Array(16)), rejectsWith('internal'));
  });

  it('a destroyed cipher no longer works', () => {
    const c = new RecordCipher(key());
    c.destroy();
    assert.throws(() => c.seal(plain, identityAad()), rejectsWith('internal'));
  });
});

describe('passphrase check record', () => {
  it('verifies under the same key and refuses another key as unauthorized', () => {
    const k = key();
    const blob = sealCheck(new RecordCipher(k));
    assert.equal(verifyCheck(new RecordCipher(k), blob), 2);
    assert.throws(() => verifyCheck(new RecordCipher(key()), blob), rejectsWith('unauthorized'));
  });

  it('tells a store from before key row MACs (v1) from one with them (v2)', () => {
    const c = new RecordCipher(key());
    // The record stores created before key row MACs hold.
    const v1 = c.seal(new TextEncoder().encode('floe signer data key check v1'), checkAad());
    assert.equal(verifyCheck(c, v1), 1);
    assert.equal(verifyCheck(c, sealCheck(c, 1)), 1);
    assert.equal(verifyCheck(c, sealCheck(c)), 2);
    // Another constant under the right key is not a check record.
    assert.throws(
      () => verifyCheck(c, c.seal(new TextEncoder().encode('x'), checkAad())),
      rejectsWith('unauthorized'),
    );
  });
});

describe('KeyRowMac', () => {
  const row: KeyRowFields = {
    keyId: 'k1',
    identifier: 1,
    status: 'pending',
    origin: 'dkg',
    transcriptHash: new Uint8Array(32).fill(7),
    createdAt: 1_800_000_000_000,
  };

  it('binds every field: any change gives another MAC, which does not verify', () => {
    const m = new KeyRowMac(key());
    const tag = m.mac(row);
    assert.equal(tag.length, 32);
    assert.ok(m.verify(row, tag));
    const changes: Partial<KeyRowFields>[] = [
      { keyId: 'k2' },
      { identifier: 2 },
      { status: 'active' },
      { origin: 'dealer' },
      { transcriptHash: new Uint8Array(32).fill(8) },
      { transcriptHash: null },
      { transcriptHash: new Uint8Array(0) },
      { createdAt: row.createdAt + 1 },
    ];
    for (const c of changes) assert.equal(m.verify({ ...row, ...c }, tag), false, JSON.stringify(c));
    // A null transcript hash and an empty one are different rows.
    assert.notDeepEqual(
      m.mac({ ...row, transcriptHash: null }),
      m.mac({ ...row, transcriptHash: new Uint8Array(0) }),
    );
    assert.equal(m.verify(row, null), false);
    assert.equal(m.verify(row, tag.subarray(0, 31)), false);
  });

  it('is keyed by a key derived from the data key (HKDF), never the data key itself', () => {
    const k = key();
    const m = new KeyRowMac(k);
    const plainHmac = createHmac('sha256', k).update(keyRowBytes(row)).digest();
    assert.notDeepEqual(new Uint8Array(plainHmac), m.mac(row));
    const hk = new Uint8Array(hkdfSync('sha256', k, new Uint8Array(0), 'floe/signer/key-row-mac/v1', 32));
    assert.deepEqual(new Uint8Array(createHmac('sha256', hk).update(keyRowBytes(row)).digest()), m.mac(row));
    // Another data key, another MAC; the caller may wipe the data key.
    const tag = m.mac(row);
    k.fill(0);
    assert.ok(m.verify(row, tag));
    assert.equal(new KeyRowMac(key()).verify(row, tag), false);
  });
});

describe('PassphraseKeySource', () => {
  const salt = new Uint8Array(16).fill(7);

  it('derives a deterministic 32-byte key from passphrase and salt', async () => {
    const a = await new PassphraseKeySource('correct horse', { N }).unwrap(salt);
    const b = await new PassphraseKeySource('correct horse', { N }).unwrap(salt);
    assert.equal(a.length, 32);
    assert.deepEqual(a, b);
    const otherSalt = await new PassphraseKeySource('correct horse', { N }).unwrap(new Uint8Array(16));
    const otherPass = await new PassphraseKeySource('correct horse!', { N }).unwrap(salt);
    const otherN = await new PassphraseKeySource('correct horse', { N: N * 2 }).unwrap(salt);
    assert.notDeepEqual(a, otherSalt);
    assert.notDeepEqual(a, otherPass);
    assert.notDeepEqual(a, otherN);
  });

  it('init makes a fresh salt and stores it with N, r, p (its stored parameters); unwrap gives the key back', async () => {
    const src = new PassphraseKeySource('correct horse', { N });
    const a = await src.init();
    const b = await src.init();
    // 0x01 || log2 N || r || p || 16-byte salt
    assert.equal(a.params.length, 20);
    assert.deepEqual([...a.params.subarray(0, 4)], [1, 12, 8, 1]);
    assert.notDeepEqual(a.params.subarray(4), b.params.subarray(4), 'a new salt per data directory');
    assert.deepEqual(await src.unwrap(a.params), a.dataKey);
    assert.notDeepEqual(a.dataKey, b.dataKey);
  });

  it('defaults to N = 2^17, r = 8, p = 1; the parameters live in params, not in the kind', () => {
    assert.equal(SCRYPT_DEFAULT_N, 131072);
    assert.equal(new PassphraseKeySource('x').N, 131072);
    assert.equal(new PassphraseKeySource('x').kind, 'passphrase-scrypt');
    assert.equal(new PassphraseKeySource('x', { N }).kind, 'passphrase-scrypt');
  });

  it('unwrap uses the N stored in params, whatever N the source creates stores with', async () => {
    const salt16 = new Uint8Array(16).fill(3);
    const made = await new PassphraseKeySource('pw', { N }).unwrap(encodeScryptParams(N, salt16));
    // A source configured for another N opens it all the same.
    assert.deepEqual(
      await new PassphraseKeySource('pw', { N: N * 4 }).unwrap(encodeScryptParams(N, salt16)),
      made,
    );
    // ... and it is scrypt with that N over the salt.
    assert.deepEqual(await new PassphraseKeySource('pw', { N }).unwrap(salt16), made);
    // Refused: parameters out of range or other than r = 8, p = 1, and unknown formats.
    const bad = (b: number[]) => Uint8Array.from([...b, ...salt16]);
    for (const p of [
      bad([1, 9, 8, 1]),
      bad([1, 21, 8, 1]),
      bad([1, 200, 8, 1]),
      bad([1, 12, 16, 1]),
      bad([1, 12, 8, 2]),
    ]) {
      await assert.rejects(new PassphraseKeySource('pw', { N }).unwrap(p), rejectsWith('internal'));
    }
    await assert.rejects(
      new PassphraseKeySource('pw', { N }).unwrap(bad([2, 12, 8, 1])),
      rejectsWith('internal'),
    );
  });

  it('opens a legacy directory whose kind string carries N (bare-salt params) with that N', async () => {
    const salt16 = new Uint8Array(16).fill(4);
    const legacy = await new PassphraseKeySource('pw', { N }).unwrap(salt16);
    const src = new PassphraseKeySource('pw'); // creates with 2^17
    assert.equal(src.opensKind('passphrase-scrypt(N=4096,r=8,p=1)'), true);
    assert.deepEqual(await src.unwrap(salt16), legacy);
    for (const k of [
      'passphrase-scrypt(N=5000,r=8,p=1)',
      'passphrase-scrypt(N=4096,r=16,p=1)',
      'passphrase-scrypt(N=4096,r=8,p=2)',
      'passphrase-scrypt(N=512,r=8,p=1)',
      'pkcs11(token=x)',
      'passphrase-scrypt(N=4096,r=8,p=1) ',
    ]) {
      assert.equal(new PassphraseKeySource('pw').opensKind(k), false, k);
    }
  });

  it('normalises the passphrase to NFC', async () => {
    const composed = await new PassphraseKeySource('caf\u00e9', { N }).unwrap(salt);
    const decomposed = await new PassphraseKeySource('cafe\u0301', { N }).unwrap(salt);
    assert.deepEqual(composed, decomposed);
  });

  it('refuses an empty passphrase, a bad N and a bad salt', async () => {
    assert.throws(() => new PassphraseKeySource(''), rejectsWith('invalid_request'));
    assert.throws(() => new PassphraseKeySource('x', { N: 5000 }), rejectsWith('invalid_request'));
    assert.throws(() => new PassphraseKeySource('x', { N: 1 << 8 }), rejectsWith('invalid_request'));
    await assert.rejects(
      new PassphraseKeySource('x', { N }).unwrap(new Uint8Array(8)),
      rejectsWith('internal'),
    );
  });

  it('after dispose the passphrase is gone', async () => {
    const src = new PassphraseKeySource('secret words', { N });
    src.dispose();
    await assert.rejects(src.unwrap(salt), (e: unknown) => {
      assert.ok(e instanceof FloeError && e.code === 'internal');
      assert.ok(!e.message.includes('secret words'));
      return true;
    });
  });
});

describe('readPassphrase', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'floe-pass-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function passFile(name: string, content: string, mode: number): Promise<string> {
    const p = join(dir, name);
    await writeFile(p, content, { mode });
    await chmod(p, mode);
    return p;
  }

  it('reads FLOE_SIGNER_PASSPHRASE', async () => {
    assert.equal(await readPassphrase({ FLOE_SIGNER_PASSPHRASE: 'from env\n' }), 'from env\n');
  });

  it('reads a 0600 file and trims exactly one trailing newline', async () => {
    assert.equal(await readPassphrase({}, await passFile('a', 'from file\n', 0o600)), 'from file');
    assert.equal(await readPassphrase({}, await passFile('b', 'crlf\r\n', 0o600)), 'crlf');
    assert.equal(await readPassphrase({}, await passFile('c', 'two\n\n', 0o600)), 'two\n');
    assert.equal(await readPassphrase({}, await passFile('d', ' spaces ', 0o400)), ' spaces ');
  });

  it('refuses a file readable by group or others, without echoing its content', async () => {
    for (const [name, mode] of [
      ['g', 0o644],
      ['h', 0o640],
      ['i', 0o604],
    ] as const) {
      const p = await passFile(name, 'hunter2-secret\n', mode);
      await assert.rejects(readPassphrase({}, p), (e: unknown) => {
        assert.ok(e instanceof FloeError && e.code === 'invalid_request');
        assert.match(e.message, /group or others/);
        assert.ok(!e.message.includes('hunter2'));
        return true;
      });
    }
  });

  it('refuses an empty passphrase (env or file)', async () => {
    await assert.rejects(readPassphrase({ FLOE_SIGNER_PASSPHRASE: '' }), rejectsWith('invalid_request'));
    await assert.rejects(readPassphrase({}, await passFile('e', '', 0o600)), rejectsWith('invalid_request'));
    await assert.rejects(
      readPassphrase({}, await passFile('f', '\n', 0o600)),
      rejectsWith('invalid_request'),
    );
  });

  it('refuses when neither is given, when both are, and a missing file or a directory', async () => {
    await assert.rejects(readPassphrase({}), (e: unknown) => {
      assert.ok(e instanceof FloeError && e.code === 'invalid_request');
      assert.match(e.message, /FLOE_SIGNER_PASSPHRASE/);
      return true;
    });
    const p = await passFile('j', 'x', 0o600);
    await assert.rejects(readPassphrase({ FLOE_SIGNER_PASSPHRASE: 'y' }, p), rejectsWith('invalid_request'));
    await assert.rejects(readPassphrase({}, join(dir, 'missing')), rejectsWith('invalid_request'));
    await assert.rejects(readPassphrase({}, dir), rejectsWith('invalid_request'));
  });
});
