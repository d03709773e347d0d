/**
 * AES-GCM nonces never repeat under one store key (issue "Trust anchors and provable blame",
 * 8d): neither across RecordCipher instances nor across processes sealing into one data
 * directory. A repeated (key, nonce) pair would leak the XOR of two plaintexts and the GHASH
 * key; a per-instance counter or a constant nonce fails these tests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateIdentityKey } from '../../src/crypto/index.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { checkAad, identityAad, RecordCipher, shareAad } from '../../src/signer/keystore.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { ROOT, spawnScript } from '../helpers/processes.js';

const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  opts?: { readonly?: boolean },
) => any;

/** The 12-byte nonce of a stored record: 0x01 || nonce || ciphertext || tag. */
function nonceOf(blob: Uint8Array): string {
  assert.equal(blob[0], 0x01, 'record format 1');
  return Buffer.from(blob.subarray(1, 13)).toString('hex');
}

function assertDistinct(nonces: string[], what: string) {
  const seen = new Map<string, number>();
  for (const n of nonces) seen.set(n, (seen.get(n) ?? 0) + 1);
  const repeated = [...seen].filter(([, c]) => c > 1);
  assert.deepEqual(repeated, [], `${what}: ${repeated.length} nonces repeat among ${nonces.length}`);
}

describe('AES-GCM nonces under one store key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-nonces-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('never repeat across RecordCipher instances sharing a data key', () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const nonces: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = new RecordCipher(dataKey);
      for (let j = 0; j < 64; j++) {
        const aad = j % 3 === 0 ? identityAad() : j % 3 === 1 ? checkAad() : shareAad(`k${j}`, 1);
        nonces.push(nonceOf(c.seal(new Uint8Array([i, j]), aad)));
      }
      c.destroy();
    }
    assert.equal(nonces.length, 512);
    assertDistinct(nonces, 'instances');
  });

  it('never repeat across processes (each with two stores open) sealing into one data directory', async () => {
    const PASS = 'nonce test passphrase';
    const path = join(dir, 'shared', 'signer.db');
    const s = await SqliteSignerStore.open({
      path,
      keySource: new PassphraseKeySource(PASS, { N: 1 << 12 }),
      create: true,
    });
    s.setIdentity(generateIdentityKey());
    s.close();

    const COUNT = 60;
    const script = join(ROOT, 'test', 'signer', 'fixtures', 'seal-records.ts');
    const children = ['a', 'b', 'c'].map((tag) =>
      spawnScript(script, [path, tag, String(COUNT)], { SEAL_PASSPHRASE: PASS }),
    );
    await Promise.all(children.map((c) => c.waitFor('sealed', 60_000)));
    assert.deepEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0]);

    const db = new RawDatabase(path, { readonly: true });
    let blobs: Uint8Array[];
    try {
      blobs = [
        ...db
          .prepare('SELECT sealed FROM keys')
          .all()
          .map((r: { sealed: Buffer }) => r.sealed),
        ...db
          .prepare('SELECT sealed FROM identity')
          .all()
          .map((r: { sealed: Buffer }) => r.sealed),
        db.prepare("SELECT v FROM meta WHERE k = 'passphrase_check'").get().v,
      ];
    } finally {
      db.close();
    }
    // 3 processes × 2 stores × COUNT keys, the identity and the check record.
    assert.equal(blobs.length, 3 * 2 * COUNT + 2);
    assertDistinct(blobs.map(nonceOf), 'processes');
  });
});
