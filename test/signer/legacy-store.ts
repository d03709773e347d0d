/**
 * A signer store as the first release of the store wrote it (schema 001 only; key source kind
 * `passphrase-scrypt(N=…,r=8,p=1)` with the bare 16-byte salt as its parameters; check record
 * `floe signer data key check v1`; key rows without MACs), built byte for byte from the
 * published formats. Cross-checked once against a store made by that release's code
 * (store.ts at commit 2f0a2b0): both open the same way.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { encodeKeyPackage } from '../../src/crypto/index.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { checkAad, RecordCipher, shareAad } from '../../src/signer/keystore.js';
import { MIGRATIONS, SCHEMA_MIGRATIONS_DDL } from '../../src/signer/migrations.js';
import type { StoredKey } from '../../src/signer/ports.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  opts?: { timeout?: number },
) => {
  exec(sql: string): void;
  pragma(s: string): unknown;
  prepare(sql: string): { run(...a: unknown[]): unknown };
  close(): void;
};

export async function makeLegacyStore(
  path: string,
  passphrase: string,
  N: number,
  keys: StoredKey[],
): Promise<void> {
  const salt = new Uint8Array(randomBytes(16));
  // A bare salt: the source derives with its own N, as the first release did.
  const dataKey = await new PassphraseKeySource(passphrase, { N }).unwrap(salt);
  const cipher = new RecordCipher(dataKey);
  dataKey.fill(0);
  const db = new Database(path, { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA_MIGRATIONS_DDL);
    const init = MIGRATIONS.find((m) => m.id === 1)!;
    db.exec(init.sql);
    db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(1, init.name, 1);
    const put = db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
    put.run('kdf_salt', salt);
    put.run(
      'passphrase_check',
      cipher.seal(new TextEncoder().encode('floe signer data key check v1'), checkAad()),
    );
    put.run('key_source', `passphrase-scrypt(N=${N},r=8,p=1)`);
    const insert = db.prepare(
      `INSERT INTO keys (key_id, identifier, status, origin, sealed, transcript_hash, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const k of keys) {
      const plain = new TextEncoder().encode(JSON.stringify(encodeKeyPackage(k.keyPackage)));
      insert.run(
        k.keyId,
        k.identifier,
        k.status,
        k.origin,
        cipher.seal(plain, shareAad(k.keyId, k.identifier)),
        k.transcriptHash ?? null,
        k.createdAt,
      );
    }
  } finally {
    db.close();
    cipher.destroy();
  }
}
