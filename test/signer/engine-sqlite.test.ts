/**
 * Marker before share (DESIGN §4.4) on the real SQLite store (issue "Trust anchors and
 * provable blame", 8e): when the consumption marker cannot be written, no share is released
 * and no audit row written, the nonces stay live, and a retry releases exactly one share.
 * The write fails for real: a trigger on `markers` raises while a flag row exists, created
 * through the test's own connection to the store's file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { SigningPackageJson } from '../../src/crypto/encoding.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { SignOpenResponse } from '../../src/protocol/messages/sign.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { libsecpVerify } from '../helpers/independent.js';
import { FakeClock } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  opts?: { timeout?: number },
) => any;

const PASS = 'marker test passphrase';

function pkgOf(msg: Uint8Array, opens: SignOpenResponse[]): SigningPackageJson {
  return {
    v: 1,
    type: 'signing_package',
    message: toHex(msg),
    commitments: [...opens]
      .sort((a, b) => a.commitments.identifier - b.commitments.identifier)
      .map((o) => o.commitments),
  };
}

describe('signer engine on the SQLite store: marker before share', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-marker-'));
  const stores: SqliteSignerStore[] = [];
  after(() => {
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a failing marker write releases no share and writes no audit row; a retry releases exactly one', async () => {
    const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
    const clock = new FakeClock();
    const open = async (i: number) => {
      const s = await SqliteSignerStore.open({
        path: join(dir, `s${i}`, 'signer.db'),
        keySource: new PassphraseKeySource(PASS, { N: 1 << 12 }),
        create: true,
      });
      stores.push(s);
      return s;
    };
    const nodes = await Promise.all(
      [0, 1].map(async (i) => {
        const store = await open(i + 1);
        store.putKey({
          keyId: 'k1',
          identifier: shares[i]!.identifier,
          status: 'active',
          origin: 'dealer',
          keyPackage: shares[i]!,
          createdAt: 0,
        });
        return { store, engine: new SigningEngine({ store, clock }) };
      }),
    );
    const [n1, n2] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const msg = new Uint8Array(randomBytes(32));
    const req = openRequest({ sessionId: 's', attempt: 1, included: [1, 2], intent: msg });
    const pkg = pkgOf(msg, [n1.engine.open(req), n2.engine.open(req)]);
    const body = { key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg };
    const live = (n1.engine as unknown as { live: Map<string, { nonces: { hiding: Uint8Array } }> }).live;
    const nonce = live.get('s')!.nonces.hiding;

    // Make marker writes fail for real while the flag row exists.
    const raw = new RawDatabase(n1.store.path, { timeout: 5000 });
    try {
      raw.exec(`
        CREATE TABLE test_fail_markers (x INTEGER);
        CREATE TRIGGER test_fail_marker BEFORE INSERT ON markers
          WHEN EXISTS (SELECT 1 FROM test_fail_markers)
          BEGIN SELECT RAISE(ABORT, 'injected marker failure'); END;
        INSERT INTO test_fail_markers VALUES (1);
      `);
      const released: unknown[] = [];
      for (let i = 0; i < 2; i++) {
        assert.throws(
          () => released.push(n1.engine.round2(body)),
          (e: unknown) => e instanceof FloeError && e.code === 'marker_write_failed',
        );
      }
      assert.deepEqual(released, [], 'no share while the marker cannot be written');
      assert.deepEqual(n1.store.listMarkers(), []);
      assert.deepEqual(
        n1.store.listAudit(100).filter((a) => a.kind === 'sign'),
        [],
        'no audit row for a share that was not released',
      );
      assert.equal(n1.engine.liveAttempts, 1, 'the nonces stay live');
      assert.ok(
        nonce.some((b) => b !== 0),
        'and are not wiped',
      );

      raw.exec('DELETE FROM test_fail_markers');
    } finally {
      raw.close();
    }

    const results: ({ share: unknown } | FloeError)[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        results.push(n1.engine.round2(body));
      } catch (e) {
        results.push(e as FloeError);
      }
    }
    const shares1 = results.filter((r) => !(r instanceof FloeError)) as { share: unknown }[];
    assert.equal(shares1.length, 1, 'exactly one share released');
    assert.ok(results[0] && !(results[0] instanceof FloeError), 'the first retry signs');
    for (const r of results.slice(1)) assert.equal((r as FloeError).code, 'consumed_nonce_replay');
    assert.equal(n1.store.listMarkers().length, 1);
    assert.equal(n1.store.listAudit(100).filter((a) => a.kind === 'sign').length, 1);
    assert.ok(
      nonce.every((b) => b === 0),
      'used nonces are wiped',
    );

    // The one share is a correct one.
    const s1 = decodeSignatureShare(shares1[0]!.share as never);
    const s2 = decodeSignatureShare(n2.engine.round2(body).share);
    const sig = aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, [
      s1,
      s2,
    ]);
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(pub)));

    // After a restart (a new engine, the store reopened) the marker still refuses.
    const path = n1.store.path;
    n1.store.close();
    const reopened = await SqliteSignerStore.open({ path, keySource: new PassphraseKeySource(PASS) });
    stores.push(reopened);
    const restarted = new SigningEngine({ store: reopened, clock });
    assert.throws(
      () => restarted.round2(body),
      (e: unknown) => e instanceof FloeError && e.code === 'consumed_nonce_replay',
    );
    assert.throws(
      () => restarted.open(req),
      (e: unknown) => e instanceof FloeError && e.code === 'consumed_nonce_replay',
    );
  });
});
