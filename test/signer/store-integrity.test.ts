/**
 * What the signer store guarantees beyond encryption (issue "Trust anchors and provable
 * blame", 6d and 6h): a key row's clear columns are bound by a MAC under the store key, so
 * write access to signer.db cannot activate an uncertified key; stores from before that (and
 * from before N = 2^17) still open, and their keys verify.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  dealerSplit,
  encodeKeyPackage,
  generateIdentityKey,
  type KeyPackage,
  toHex,
} from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import type { StoredKey } from '../../src/signer/ports.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { makeLegacyStore } from './legacy-store.js';

const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  opts?: { timeout?: number },
) => any;

const N = 1 << 12;
const PASS = 'integrity test passphrase';
const source = () => new PassphraseKeySource(PASS, { N });
const deal = dealerSplit(generateIdentityKey(), 2, 3);
const TH = new Uint8Array(32).fill(0xab);

function stored(keyId: string, kp: KeyPackage, over: Partial<StoredKey> = {}): StoredKey {
  return {
    keyId,
    identifier: kp.identifier,
    status: 'pending',
    origin: 'dkg',
    keyPackage: kp,
    transcriptHash: TH,
    createdAt: 1_800_000_000_000,
    ...over,
  };
}

/** Refused as `internal`, naming the key and no value of the row. */
function tampered(keyId: string) {
  return (e: unknown) => {
    assert.ok(e instanceof FloeError && e.code === 'internal', String(e));
    assert.match(e.message, new RegExp(`key ${keyId} failed its integrity check`));
    for (const v of ['active', 'pending', toHex(TH), 'dealer', '1800000000000'])
      assert.ok(!e.message.includes(v), `message names a value: ${e.message}`);
    return true;
  };
}

function sql(path: string, ...statements: string[]): void {
  const raw = new RawDatabase(path, { timeout: 5000 });
  try {
    for (const s of statements) raw.exec(s);
  } finally {
    raw.close();
  }
}

describe('signer store: key rows bound by a MAC under the store key', () => {
  let dir: string;
  let n = 0;
  const freshPath = () => join(dir, `d${++n}`, 'signer.db');
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'floe-integrity-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a pending key flipped to active with plain SQL fools neither this store nor a new connection', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    s.putKey(stored('k-uncertified', deal.shares[0]!));
    assert.equal(s.getKey('k-uncertified')!.status, 'pending');
    sql(path, "UPDATE keys SET status = 'active' WHERE key_id = 'k-uncertified'");
    // The running store keeps what it wrote itself (its unsealed keys are cached): still pending.
    assert.equal(s.getKey('k-uncertified')!.status, 'pending');
    // A status change does not launder the altered row.
    assert.throws(() => s.setKeyStatus('k-uncertified', 'active'), tampered('k-uncertified'));
    // Nor does a status change with its audit entry: neither is written.
    const audited = { at: 1, kind: 'dkg_certified', keyId: 'k-uncertified', detail: 'cer_x' };
    assert.throws(() => s.setKeyStatus('k-uncertified', 'active', audited), tampered('k-uncertified'));
    assert.equal(s.hasAudit('dkg_certified', 'k-uncertified', 'cer_x'), false);
    s.close();
    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.throws(() => r.getKey('k-uncertified'), tampered('k-uncertified'));
    // Put back as it was, the row verifies again: the MAC is over the values.
    sql(path, "UPDATE keys SET status = 'pending' WHERE key_id = 'k-uncertified'");
    assert.equal(r.getKey('k-uncertified')!.status, 'pending');
    r.close();
  });

  it('every clear column is bound: transcript hash, origin, created_at, identifier; a removed or borrowed MAC too', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    s.putKey(stored('k1', deal.shares[0]!));
    s.putKey(stored('k2', deal.shares[1]!));
    const cases = [
      "UPDATE keys SET transcript_hash = zeroblob(32) WHERE key_id = 'k1'",
      "UPDATE keys SET transcript_hash = NULL WHERE key_id = 'k1'",
      "UPDATE keys SET origin = 'dealer' WHERE key_id = 'k1'",
      "UPDATE keys SET created_at = created_at + 1 WHERE key_id = 'k1'",
      "UPDATE keys SET mac = NULL WHERE key_id = 'k1'",
      "UPDATE keys SET mac = zeroblob(32) WHERE key_id = 'k1'",
      "UPDATE keys SET mac = (SELECT mac FROM keys WHERE key_id = 'k2') WHERE key_id = 'k1'",
    ];
    const raw = new RawDatabase(path, { timeout: 5000 });
    try {
      const original = raw.prepare("SELECT * FROM keys WHERE key_id = 'k1'").get();
      const restore = raw.prepare(
        `UPDATE keys SET identifier = @identifier, status = @status, origin = @origin, sealed = @sealed,
           transcript_hash = @transcript_hash, created_at = @created_at, mac = @mac WHERE key_id = @key_id`,
      );
      for (const c of cases) {
        raw.exec(c);
        // A store that reads the row (a restart) refuses it.
        const r = await SqliteSignerStore.open({ path, keySource: source() });
        assert.throws(() => r.getKey('k1'), tampered('k1'), c);
        restore.run(original);
        assert.equal(r.getKey('k1')!.keyId, 'k1', `restored after: ${c}`);
        r.close();
      }
    } finally {
      raw.close();
    }
    assert.equal(s.getKey('k2')!.status, 'pending');
    s.close();
  });

  it('status changes through the store keep the row valid', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    s.putKey(stored('k', deal.shares[0]!));
    s.setKeyStatus('k', 'active');
    assert.equal(s.getKey('k')!.status, 'active');
    s.close();
    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.equal(r.getKey('k')!.status, 'active');
    assert.deepEqual(r.getKey('k')!.transcriptHash, TH);
    r.close();
  });

  it('a store created by the old schema (N = 2^15, no MACs) opens with today’s source, its keys verify, and from then on a missing MAC is tampering', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const keys = [
      stored('old-a', deal.shares[0]!, { status: 'active', origin: 'dealer', transcriptHash: undefined }),
      stored('old-b', deal.shares[1]!),
    ];
    await makeLegacyStore(path, PASS, 1 << 15, keys);

    // Today's default source (it creates stores with N = 2^17) opens it with the recorded N.
    const s = await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS) });
    for (const k of keys) {
      const got = s.getKey(k.keyId)!;
      assert.equal(got.status, k.status);
      assert.equal(got.origin, k.origin);
      assert.deepEqual(got.transcriptHash, k.transcriptHash);
      assert.equal(
        JSON.stringify(encodeKeyPackage(got.keyPackage)),
        JSON.stringify(encodeKeyPackage(k.keyPackage)),
      );
    }
    s.close();
    const raw = new RawDatabase(path, { timeout: 5000 });
    try {
      assert.deepEqual(raw.prepare('SELECT key_id, length(mac) AS l FROM keys ORDER BY key_id').all(), [
        { key_id: 'old-a', l: 32 },
        { key_id: 'old-b', l: 32 },
      ]);
      assert.deepEqual(
        raw
          .prepare('SELECT id FROM schema_migrations ORDER BY id')
          .all()
          .map((r: { id: number }) => r.id),
        // every migration of today's source: the approval policy column (3), key freezes (4)
        [1, 2, 3, 4, 5],
      );
      // The store's own parameters are left as they were (a bare salt, N in the kind).
      assert.equal(
        raw.prepare("SELECT v FROM meta WHERE k = 'key_source'").get().v,
        'passphrase-scrypt(N=32768,r=8,p=1)',
      );
      assert.equal(raw.prepare("SELECT length(v) AS l FROM meta WHERE k = 'kdf_salt'").get().l, 16);
    } finally {
      raw.close();
    }

    // The MACs were given once: removing one now is tampering, not a row to adopt.
    sql(path, "UPDATE keys SET status = 'active', mac = NULL WHERE key_id = 'old-b'");
    const r = await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS) });
    assert.throws(() => r.getKey('old-b'), tampered('old-b'));
    assert.equal(r.getKey('old-a')!.status, 'active');
    r.close();
  });

  it('a new store records N = 2^17 in its parameters (and reopens)', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS), create: true });
    s.putKey(stored('k', deal.shares[0]!));
    s.close();
    const raw = new RawDatabase(path, { timeout: 5000 });
    try {
      const params: Buffer = raw.prepare("SELECT v FROM meta WHERE k = 'kdf_salt'").get().v;
      // 0x01 || log2 N || r || p || salt
      assert.deepEqual([...params.subarray(0, 4)], [1, 17, 8, 1]);
      assert.equal(params.length, 20);
      assert.equal(raw.prepare("SELECT v FROM meta WHERE k = 'key_source'").get().v, 'passphrase-scrypt');
    } finally {
      raw.close();
    }
    // Opened by a source configured with another N: the stored N is used.
    const r = await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS, { N }) });
    assert.equal(r.getKey('k')!.status, 'pending');
    r.close();
  });
});
