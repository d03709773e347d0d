import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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
import type { KeySource } from '../../src/signer/keys/key-source.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { MIGRATIONS } from '../../src/signer/migrations.js';
import type { ConsumptionMarker, StoredKey } from '../../src/signer/ports.js';
import { SqliteSignerStore } from '../../src/signer/store.js';

const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  opts?: { timeout?: number },
) => any;

const N = 1 << 12;
const PASS = 'test passphrase for the store';

const source = (pass = PASS) => new PassphraseKeySource(pass, { N });

function code(c: string) {
  return (e: unknown) => e instanceof FloeError && e.code === c;
}

function scalar(): Uint8Array {
  // a valid secp256k1 scalar (the identity key generator rejects out-of-range draws)
  return generateIdentityKey();
}

const deal = dealerSplit(scalar(), 2, 3);
const share1 = deal.shares[0]!;
const share2 = deal.shares[1]!;

function stored(keyId: string, kp: KeyPackage, over: Partial<StoredKey> = {}): StoredKey {
  return {
    keyId,
    identifier: kp.identifier,
    status: 'active',
    origin: 'dealer',
    keyPackage: kp,
    createdAt: 1_800_000_000_000,
    ...over,
  };
}

function marker(over: Partial<ConsumptionMarker> = {}): ConsumptionMarker {
  return {
    keyId: 'key-a',
    sessionId: 'sess-1',
    attemptId: 'aa'.repeat(32),
    identifier: 1,
    messageDigest: 'bb'.repeat(32),
    at: 1_800_000_000_123,
    ...over,
  };
}

const pkJson = (kp: KeyPackage) => JSON.stringify(encodeKeyPackage(kp));

describe('SqliteSignerStore', () => {
  let dir: string;
  let n = 0;
  const freshPath = () => join(dir, `d${++n}`, 'signer.db');

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'floe-store-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a store, and a reopen with the same passphrase returns an identical key package', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    const th = new Uint8Array(32).fill(9);
    s.putKey(stored('key-a', share1, { origin: 'dkg', status: 'pending', transcriptHash: th }));
    s.putKey(stored('key-b', share2));
    assert.equal(s.countKeys(), 2);
    s.close();

    const r = await SqliteSignerStore.open({ path, keySource: source() });
    const a = r.getKey('key-a')!;
    assert.equal(pkJson(a.keyPackage), pkJson(share1));
    assert.deepEqual(a.keyPackage.signingShare, share1.signingShare);
    assert.deepEqual(
      { ...a, keyPackage: undefined },
      {
        keyId: 'key-a',
        identifier: 1,
        status: 'pending',
        origin: 'dkg',
        keyPackage: undefined,
        transcriptHash: th,
        createdAt: 1_800_000_000_000,
      },
    );
    const b = r.getKey('key-b')!;
    assert.equal(pkJson(b.keyPackage), pkJson(share2));
    assert.equal(b.transcriptHash, undefined);
    assert.equal(r.getKey('nope'), undefined);
    r.close();
  });

  it('refuses to open a missing database unless asked to create it', async () => {
    await assert.rejects(
      SqliteSignerStore.open({ path: freshPath(), keySource: source() }),
      code('invalid_request'),
    );
  });

  it('reopen with a wrong passphrase rejects with unauthorized', async () => {
    const path = freshPath();
    (await SqliteSignerStore.open({ path, keySource: source(), create: true })).close();
    await assert.rejects(
      SqliteSignerStore.open({ path, keySource: source('wrong passphrase') }),
      (e: unknown) => {
        assert.ok(e instanceof FloeError && e.code === 'unauthorized');
        assert.equal(e.message, 'wrong passphrase for this data directory');
        return true;
      },
    );
    // create: true does not re-initialise an existing directory either
    await assert.rejects(
      SqliteSignerStore.open({ path, keySource: source('wrong passphrase'), create: true }),
      code('unauthorized'),
    );
    // a source configured with another N opens it: the store's N is in its parameters
    (await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS, { N: N * 2 }) })).close();
    // a source of another kind is reported as such, not as a wrong passphrase
    const other: KeySource = {
      kind: 'pkcs11(test)',
      init: () => Promise.reject(new Error('unused')),
      unwrap: () => Promise.reject(new Error('must not be asked')),
      dispose: () => {},
    };
    await assert.rejects(SqliteSignerStore.open({ path, keySource: other }), code('invalid_request'));
    (await SqliteSignerStore.open({ path, keySource: source() })).close();
  });

  it('no share, identity key or passphrase appears in plaintext in any file of the data directory', async () => {
    const path = freshPath();
    const ddir = join(path, '..');
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    const identity = generateIdentityKey();
    s.putKey(stored('key-plaintext-probe', share1));
    s.putKey(stored('key-b', share2));
    s.setIdentity(identity);
    s.appendAudit({ at: 1, kind: 'key.import', keyId: 'key-b' });

    const secrets: [string, Buffer][] = [];
    for (const sh of [share1, share2]) {
      secrets.push(['share hex', Buffer.from(toHex(sh.signingShare), 'latin1')]);
      secrets.push(['share bytes', Buffer.from(sh.signingShare)]);
    }
    secrets.push(['identity hex', Buffer.from(toHex(identity), 'latin1')]);
    secrets.push(['identity bytes', Buffer.from(identity)]);
    secrets.push(['passphrase', Buffer.from(PASS, 'utf8')]);

    const scan = (phase: string) => {
      const files = readdirSync(ddir);
      let all = Buffer.alloc(0);
      for (const f of files) {
        const raw = readFileSync(join(ddir, f));
        all = Buffer.concat([all, raw]);
        for (const [what, needle] of secrets) {
          assert.equal(raw.indexOf(needle), -1, `${phase}: ${what} found in plaintext in ${f}`);
        }
      }
      // positive control: the scan does see what was written (non-secret columns are in clear)
      assert.notEqual(all.indexOf(Buffer.from('key-plaintext-probe')), -1, `${phase}: scan saw no data`);
      return files;
    };

    const openFiles = scan('while open');
    assert.ok(openFiles.includes('signer.db-wal'), 'WAL file present while open');
    s.close();
    scan('after close');

    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.deepEqual(r.getIdentity(), identity);
    r.close();
  });

  it('identity slot: absent until set, replaced by a later set, survives reopen', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    assert.equal(s.getIdentity(), undefined);
    const id1 = generateIdentityKey();
    const id2 = generateIdentityKey();
    s.setIdentity(id1);
    assert.deepEqual(s.getIdentity(), id1);
    s.setIdentity(id2);
    assert.deepEqual(s.getIdentity(), id2);
    assert.throws(() => s.setIdentity(new Uint8Array(31)), code('invalid_request'));
    s.close();
    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.deepEqual(r.getIdentity(), id2);
    r.close();
  });

  it('uses WAL, synchronous=FULL (2), foreign keys, a busy timeout, a 2 MB page cache; db file 0600, new dir 0700', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    // (the page cache: better-sqlite3's build would give 16,000 KiB, which the markers index
    // of a busy signer fills as it grows; bench/signer-store.ts)
    assert.deepEqual(s.settings(), {
      journalMode: 'wal',
      synchronous: 2,
      foreignKeys: true,
      busyTimeoutMs: 5000,
      pageCacheKib: 2000,
    });
    // journal_mode is persistent: another connection sees it too
    const raw = new RawDatabase(path);
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
    s.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    // settings survive a reopen (they are applied at every open)
    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.equal(r.settings().synchronous, 2);
    assert.equal(r.settings().pageCacheKib, 2000);
    r.close();
  });

  it('migrations are idempotent: one schema_migrations row per migration after several opens', async () => {
    const path = freshPath();
    (await SqliteSignerStore.open({ path, keySource: source(), create: true })).close();
    (await SqliteSignerStore.open({ path, keySource: source() })).close();
    (await SqliteSignerStore.open({ path, keySource: source(), create: true })).close();
    const raw = new RawDatabase(path);
    try {
      const rows = raw.prepare('SELECT id, name FROM schema_migrations ORDER BY id').all();
      assert.deepEqual(
        rows,
        MIGRATIONS.map((m) => ({ id: m.id, name: m.name })),
      );
      assert.equal(rows[0]?.name, '001_init');
      // salt and check written once (the parameters: 0x01 || log2 N || r || p || 16-byte salt)
      assert.equal(raw.prepare("SELECT count(*) AS n FROM meta WHERE k = 'kdf_salt'").get().n, 1);
      assert.equal(raw.prepare("SELECT length(v) AS l FROM meta WHERE k = 'kdf_salt'").get().l, 20);
    } finally {
      raw.close();
    }
  });

  it('refuses a database with a migration newer than this build', async () => {
    const path = freshPath();
    (await SqliteSignerStore.open({ path, keySource: source(), create: true })).close();
    const raw = new RawDatabase(path);
    raw
      .prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)')
      .run(999, '999_future', 0);
    raw.close();
    await assert.rejects(SqliteSignerStore.open({ path, keySource: source() }), code('internal'));
  });

  it('putKey on an existing key id throws key_exists and keeps the first key', async () => {
    const s = await SqliteSignerStore.open({ path: freshPath(), keySource: source(), create: true });
    s.putKey(stored('k', share1));
    assert.throws(() => s.putKey(stored('k', share2)), code('key_exists'));
    assert.equal(pkJson(s.getKey('k')!.keyPackage), pkJson(share1));
    assert.throws(() => s.putKey(stored('m', share1, { identifier: 2 })), code('invalid_request'));
    s.close();
  });

  it('setKeyStatus, deleteKey, countKeys', async () => {
    const s = await SqliteSignerStore.open({ path: freshPath(), keySource: source(), create: true });
    s.putKey(stored('k', share1, { status: 'pending' }));
    s.setKeyStatus('k', 'active');
    assert.equal(s.getKey('k')!.status, 'active');
    assert.throws(() => s.setKeyStatus('missing', 'active'), code('unknown_key'));
    assert.equal(s.countKeys(), 1);
    // With an audit entry: written with the status, and not at all when the change is refused.
    const certified = { at: 7, kind: 'dkg_certified', keyId: 'k', detail: 'cer_1' };
    s.setKeyStatus('k', 'pending', certified);
    assert.equal(s.getKey('k')!.status, 'pending');
    assert.throws(
      () => s.setKeyStatus('missing', 'active', { ...certified, keyId: 'missing' }),
      code('unknown_key'),
    );
    assert.deepEqual(
      s.listAudit().map((e) => [e.kind, e.keyId, e.detail]),
      [['dkg_certified', 'k', 'cer_1']],
    );
    s.deleteKey('k');
    s.deleteKey('k');
    assert.equal(s.countKeys(), 0);
    assert.equal(s.getKey('k'), undefined);
    s.close();
  });

  it('a sealed record copied onto another key id (or identifier) does not decrypt', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    s.putKey(stored('key-a', share1));
    s.putKey(stored('key-b', share2));
    s.putKey(stored('key-c', share1));
    const raw = new RawDatabase(path, { timeout: 5000 });
    try {
      raw.exec(
        "UPDATE keys SET sealed = (SELECT sealed FROM keys WHERE key_id = 'key-a') WHERE key_id = 'key-b'",
      );
      raw.exec("UPDATE keys SET identifier = 2 WHERE key_id = 'key-c'");
    } finally {
      raw.close();
    }
    assert.equal(pkJson(s.getKey('key-a')!.keyPackage), pkJson(share1));
    // key-b: the sealed record is bound to its row by the AEAD; key-c: the identifier column is
    // bound by the row's MAC (checked first) as well as by the AEAD.
    for (const [id, why] of [
      ['key-b', /does not decrypt/],
      ['key-c', /integrity check/],
    ] as const) {
      assert.throws(
        () => s.getKey(id),
        (e: unknown) => {
          assert.ok(e instanceof FloeError && e.code === 'internal');
          assert.match(e.message, why);
          assert.ok(!e.message.includes(toHex(share1.signingShare)));
          return true;
        },
      );
    }
    s.close();
  });

  it('markers: put then has; a second put is a replay; markers survive reopen; audit only with a new marker', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    const m = marker();
    const put = (store: SqliteSignerStore, x: typeof m) =>
      store.putMarkers([{ marker: x, audit: { at: x.at, kind: 'sign', sessionId: x.sessionId } }])[0];
    assert.equal(s.hasMarker(m.keyId, m.sessionId, m.attemptId), false);
    assert.equal(put(s, m), 'ok');
    assert.equal(s.hasMarker(m.keyId, m.sessionId, m.attemptId), true);
    assert.equal(s.hasMarker(m.keyId, m.sessionId, 'cc'.repeat(32)), false);
    assert.equal(s.hasMarker(m.keyId, 'sess-2', m.attemptId), false);
    assert.equal(s.hasMarker('key-b', m.sessionId, m.attemptId), false);
    assert.equal(put(s, m), 'replay');
    assert.equal(put(s, { ...m, at: m.at + 1, messageDigest: 'dd'.repeat(32) }), 'replay');
    // another member of the same attempt (same node hosting two identifiers) is its own marker
    assert.equal(put(s, { ...m, identifier: 2 }), 'ok');
    assert.equal(s.listAudit().filter((e) => e.kind === 'sign').length, 2, 'no audit row for a replay');
    // Several in one transaction: each its own outcome.
    const n3 = { ...m, sessionId: 'sess-3' };
    assert.deepEqual(
      s.putMarkers([
        { marker: n3, audit: { at: 1, kind: 'sign' } },
        { marker: m, audit: { at: 1, kind: 'sign' } },
      ]),
      ['ok', 'replay'],
    );
    s.close();

    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.equal(r.hasMarker(m.keyId, m.sessionId, m.attemptId), true);
    assert.equal(put(r, m), 'replay');
    assert.deepEqual(r.listMarkers(), [m, { ...m, identifier: 2 }, { ...m, sessionId: 'sess-3' }]);
    r.close();
  });

  it('a marker write failure at the SQLite level is an error other than consumed_nonce_replay', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    const raw = new RawDatabase(path, { timeout: 5000 });
    const m = marker();
    try {
      raw.exec("CREATE TRIGGER fail BEFORE INSERT ON markers BEGIN SELECT RAISE(ABORT, 'injected'); END;");
      assert.throws(
        () =>
          s.putMarkers([
            { marker: m, audit: { at: 1, kind: 'sign' } },
            { marker: { ...m, sessionId: 'x' }, audit: { at: 1, kind: 'sign' } },
          ]),
        (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.notEqual((e as { code?: unknown }).code, 'consumed_nonce_replay');
          assert.ok(e instanceof FloeError && e.code === 'marker_write_failed');
          return true;
        },
      );
      assert.equal(s.hasMarker(m.keyId, m.sessionId, m.attemptId), false);
      assert.deepEqual(s.listMarkers(), [], 'all or nothing');
      assert.deepEqual(s.listAudit(), []);
      raw.exec('DROP TRIGGER fail');
    } finally {
      raw.close();
    }
    s.putMarkers([{ marker: m, audit: { at: 1, kind: 'sign' } }]);
    assert.equal(s.hasMarker(m.keyId, m.sessionId, m.attemptId), true);
    s.close();
  });

  it('audit: newest first, limit, optional fields round-trip', async () => {
    const path = freshPath();
    const s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    s.appendAudit({ at: 1, kind: 'key.import', keyId: 'k' });
    s.appendAudit({
      at: 2,
      kind: 'sign.share',
      keyId: 'k',
      sessionId: 's',
      attemptId: 'aa',
      messageDigest: 'bb',
      detail: 'ok',
    });
    s.appendAudit({ at: 2, kind: 'sign.refused' });
    assert.deepEqual(s.listAudit(), [
      { at: 2, kind: 'sign.refused' },
      {
        at: 2,
        kind: 'sign.share',
        keyId: 'k',
        sessionId: 's',
        attemptId: 'aa',
        messageDigest: 'bb',
        detail: 'ok',
      },
      { at: 1, kind: 'key.import', keyId: 'k' },
    ]);
    assert.deepEqual(
      s.listAudit(2).map((e) => e.kind),
      ['sign.refused', 'sign.share'],
    );
    assert.throws(() => s.listAudit(0), code('invalid_request'));
    // hasAudit: kind, key and detail all match, however old the entry.
    for (let i = 0; i < 200; i++) s.appendAudit({ at: 3, kind: 'sign.share', keyId: 'other' });
    assert.equal(s.hasAudit('sign.share', 'k', 'ok'), true);
    assert.equal(s.hasAudit('sign.share', 'k', 'no'), false);
    assert.equal(s.hasAudit('sign.share', 'other', 'ok'), false);
    assert.equal(s.hasAudit('key.import', 'k', 'ok'), false);
    s.close();
    const r = await SqliteSignerStore.open({ path, keySource: source() });
    assert.equal(r.listAudit(1000).length, 203);
    r.close();
  });

  it('secret-free errors: a wrong passphrase error does not carry the passphrase', async () => {
    const path = freshPath();
    (await SqliteSignerStore.open({ path, keySource: source(), create: true })).close();
    const wrong = `wrong-${toHex(new Uint8Array(randomBytes(8)))}`;
    await assert.rejects(SqliteSignerStore.open({ path, keySource: source(wrong) }), (e: unknown) => {
      assert.ok(e instanceof FloeError);
      assert.ok(!e.message.includes(wrong) && !JSON.stringify(e).includes(wrong));
      return true;
    });
  });
});
