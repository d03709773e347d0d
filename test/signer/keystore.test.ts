import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FloeError } from '../../src/protocol/errors.js';
import { PassphraseKeySource, readPassphrase, SCRYPT_DEFAULT_N } from '../../src/signer/keys/passphrase.js';
import {
  checkAad,
  identityAad,
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
    verifyCheck(new RecordCipher(k), blob);
    assert.throws(() => verifyCheck(new RecordCipher(key()), blob), rejectsWith('unauthorized'));
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

  it('init makes a fresh salt (its stored parameter) and the key unwrap gives for it', async () => {
    const src = new PassphraseKeySource('correct horse', { N });
    const a = await src.init();
    const b = await src.init();
    assert.equal(a.params.length, 16);
    assert.notDeepEqual(a.params, b.params, 'a new salt per data directory');
    assert.deepEqual(await src.unwrap(a.params), a.dataKey);
    assert.notDeepEqual(a.dataKey, b.dataKey);
  });

  it('defaults to N = 2^15, r = 8, p = 1 and records them in its kind', () => {
    assert.equal(SCRYPT_DEFAULT_N, 32768);
    assert.equal(new PassphraseKeySource('x').kind, 'passphrase-scrypt(N=32768,r=8,p=1)');
    assert.equal(new PassphraseKeySource('x', { N }).kind, 'passphrase-scrypt(N=4096,r=8,p=1)');
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
