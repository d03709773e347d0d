/**
 * Bitcoin addresses through the coordinator API (DESIGN §14), on a real cluster (signer
 * processes, coordinator as a child process so its logs can be searched):
 *
 * - per passphrase: a deterministic DKG key of its own, made once (a repeat, even a concurrent
 *   one, answers from the database without another DKG); its address is BIP-86 of the key;
 * - derived: m/<branch>/<index> of a key, equal to @scure/bip32 from the descriptor's xpub and to
 *   bitcoinjs-lib's p2tr addresses; descriptors with a BIP-380 checksum computed here from the BIP;
 * - a passphrase mapped to a derivation path;
 * - the passphrase appears in no response, database file, signer store or log;
 * - the `address` role creates addresses and does nothing else;
 * - the threshold rules: warnings by default, `threshold_unsafe` when strict.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HDKey } from '@scure/bip32';
import * as bitcoin from 'bitcoinjs-lib';
import pg from 'pg';
import * as ecc from 'tiny-secp256k1';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { request } from '../helpers/http.js';

bitcoin.initEccLib(ecc);

/** Distinctive, so that a plain search of every file finds a leak. */
const PASSPHRASE = `floe-test-passphrase-${randomBytes(8).toString('hex')}`;
const REGTEST_VERSIONS = { private: 0x04358394, public: 0x043587cf };

/** BIP-380 descriptor checksum, transcribed from the BIP's reference code (not src/bitcoin). */
function bip380Checksum(desc: string): string {
  const INPUT =
    '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
  const CHECKSUM = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const GEN = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];
  const polymod = (c: bigint, val: number) => {
    const c0 = c >> 35n;
    let r = ((c & 0x7ffffffffn) << 5n) ^ BigInt(val);
    for (let i = 0; i < 5; i++) if ((c0 >> BigInt(i)) & 1n) r ^= GEN[i]!;
    return r;
  };
  let c = 1n;
  let cls = 0;
  let clscount = 0;
  for (const ch of desc) {
    const pos = INPUT.indexOf(ch);
    assert.ok(pos >= 0, 'descriptor character in the BIP-380 set');
    c = polymod(c, pos & 31);
    cls = cls * 3 + (pos >> 5);
    if (++clscount === 3) {
      c = polymod(c, cls);
      cls = 0;
      clscount = 0;
    }
  }
  if (clscount > 0) c = polymod(c, cls);
  for (let j = 0; j < 8; j++) c = polymod(c, 0);
  c ^= 1n;
  let out = '';
  for (let j = 0; j < 8; j++) out += CHECKSUM[Number((c >> BigInt(5 * (7 - j))) & 31n)];
  return out;
}

/** bitcoinjs-lib's BIP-86 address of a 33-byte internal key on regtest. */
const p2tr = (internalKey: Uint8Array) =>
  bitcoin.payments.p2tr({ internalPubkey: internalKey.subarray(1), network: bitcoin.networks.regtest })
    .address!;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

describe('addresses through the coordinator API (real cluster)', () => {
  let c: TestCluster;
  let keyId: string;
  const responses: string[] = [];
  const api = async (method: string, path: string, body?: unknown, token?: string) => {
    const r = token
      ? await request(c.url, method, path, { token, ...(body === undefined ? {} : { json: body }) })
      : await c.api(method, path, body);
    responses.push(JSON.stringify(r.body));
    return r;
  };
  const ceremoniesStarted = async () => {
    const r = await fetch(`${c.url}/metrics`);
    const m = /floe_ceremonies_total\{status="started"\} (\d+)/.exec(await r.text());
    return Number(m?.[1] ?? 0);
  };

  before(async () => {
    c = await startCluster({
      signers: 3,
      coordinatorProcess: true,
      // Every request logged, so the log search below means something.
      env: { FLOE_LOG_LEVEL: 'debug' },
    });
    await c.registerSigners();
    keyId = (await c.createKey(2)).id;
  });
  after(async () => {
    await c?.close();
  });

  it('POST /v1/addresses: a deterministic DKG key of its own; its address is the BIP-86 output of the key', async () => {
    const before = await ceremoniesStarted();
    const r = await api('POST', '/v1/addresses', { passphrase: PASSPHRASE });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const a = r.body;
    assert.equal(a.created, true);
    assert.equal(a.status, 'active');
    assert.equal(a.network, 'regtest');
    assert.match(a.address, /^bcrt1p[0-9a-z]{58}$/);
    assert.deepEqual(
      a.warnings.map((w: { rule: string }) => w.rule),
      ['two_spare'],
      '2-of-3 breaks n - t >= 2',
    );
    const key = (await api('GET', `/v1/keys/${a.key_id}`)).body;
    assert.equal(key.status, 'active');
    assert.equal(key.threshold, 2);
    assert.equal(key.n, 3);
    assert.equal(a.output_key, key.x_only_public_key, 'the DKG key is already the output key');
    assert.equal(a.internal_key, key.tweak.internal_key);
    assert.equal(p2tr(Buffer.from(a.internal_key, 'hex')), a.address, 'bitcoinjs-lib agrees');
    assert.equal(await ceremoniesStarted(), before + 1);
  });

  it('a repeated passphrase returns the stored address without a new DKG, also when requests race', async () => {
    const first = (await api('POST', '/v1/addresses', { passphrase: PASSPHRASE })).body;
    const before = await ceremoniesStarted();
    const keysBefore = (await api('GET', '/v1/keys?limit=500')).body.items.length;
    const again = await api('POST', '/v1/addresses', { passphrase: PASSPHRASE });
    assert.equal(again.status, 200);
    assert.equal(again.body.created, false);
    assert.equal(again.body.address, first.address);
    assert.equal(again.body.key_id, first.key_id);
    assert.equal(await ceremoniesStarted(), before, 'no ceremony');
    assert.equal((await api('GET', '/v1/keys?limit=500')).body.items.length, keysBefore, 'no key');

    // Five at once for a new passphrase: one DKG, one address.
    const fresh = `${PASSPHRASE}-racing`;
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => api('POST', '/v1/addresses', { passphrase: fresh })),
    );
    const addresses = new Set(racing.map((x) => x.body.address));
    assert.equal(addresses.size, 1, JSON.stringify(racing.map((x) => x.body)));
    assert.equal(new Set(racing.map((x) => x.body.key_id)).size, 1);
    assert.equal(racing.filter((x) => x.body.created).length, 1);
    assert.equal(await ceremoniesStarted(), before + 1, 'exactly one DKG ran');
    assert.notEqual([...addresses][0], first.address, 'another passphrase, another address');
  });

  it('another tenant with the same passphrase gets another key (the tenant is in the HMACs)', async () => {
    const t = await api('POST', '/v1/tenants', { id: `t-${randomBytes(4).toString('hex')}` });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const mine = (await api('POST', '/v1/addresses', { passphrase: PASSPHRASE })).body;
    const theirs = await api('POST', '/v1/addresses', { passphrase: PASSPHRASE }, t.body.admin_token.token);
    assert.equal(theirs.status, 201, JSON.stringify(theirs.body));
    assert.notEqual(theirs.body.address, mine.address);
    assert.notEqual(theirs.body.key_id, mine.key_id);
    // and neither tenant sees the other's key
    const cross = await api('GET', `/v1/keys/${mine.key_id}/descriptor`, undefined, t.body.admin_token.token);
    assert.equal(cross.status, 404);
  });

  it('derived addresses m/0/i and m/1/i equal @scure/bip32 from the xpub and bitcoinjs-lib p2tr', async () => {
    const d = (await api('GET', `/v1/keys/${keyId}/descriptor`)).body;
    const key = (await api('GET', `/v1/keys/${keyId}`)).body;
    const root = HDKey.fromExtendedKey(d.xpub, REGTEST_VERSIONS);
    assert.equal(
      Buffer.from(root.publicKey!).toString('hex'),
      key.public_key,
      'the xpub is the stored group key',
    );
    for (const branch of [0, 1]) {
      const r = await api('GET', `/v1/keys/${keyId}/addresses?branch=${branch}&from=7&count=25`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.items.length, 25);
      for (const [j, item] of r.body.items.entries()) {
        const index = 7 + j;
        const child = root.derive(`m/${branch}/${index}`);
        assert.equal(item.index, index);
        assert.equal(item.path, `m/${branch}/${index}`);
        assert.equal(item.internal_key, Buffer.from(child.publicKey!).toString('hex'));
        assert.equal(item.address, p2tr(child.publicKey!));
      }
    }
    // The default page: receive addresses from 0, 20 of them.
    const page = (await api('GET', `/v1/keys/${keyId}/addresses`)).body;
    assert.equal(page.branch, 0);
    assert.deepEqual(
      page.items.map((x: { index: number }) => x.index),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal((await api('GET', `/v1/keys/${keyId}/addresses?count=1000`)).body.items.length, 1000);
    assert.equal((await api('GET', `/v1/keys/${keyId}/addresses?count=1001`)).status, 400);
    assert.equal((await api('GET', `/v1/keys/${keyId}/addresses?branch=2`)).status, 400);
    assert.equal((await api('GET', '/v1/keys/key_nope/addresses')).status, 404);
  });

  it('descriptors: tr(xpub/0/*), tr(xpub/1/*) and the multipath form, each with its BIP-380 checksum', async () => {
    const d = (await api('GET', `/v1/keys/${keyId}/descriptor`)).body;
    assert.match(d.xpub, /^tpub/);
    for (const [field, suffix] of [
      ['receive', '/0/*'],
      ['change', '/1/*'],
      ['multipath', '/<0;1>/*'],
    ] as const) {
      const [body, checksum] = (d[field] as string).split('#') as [string, string];
      assert.equal(body, `tr(${d.xpub}${suffix})`);
      assert.equal(checksum, bip380Checksum(body), field);
    }
  });

  it('a passphrase mapped to a derivation of a key: four non-hardened steps, stable, per passphrase', async () => {
    const a = await api('POST', `/v1/keys/${keyId}/addresses`, { passphrase: PASSPHRASE });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.match(a.body.path, /^m(\/\d+){4}$/);
    const d = (await api('GET', `/v1/keys/${keyId}/descriptor`)).body;
    const child = HDKey.fromExtendedKey(d.xpub, REGTEST_VERSIONS).derive(a.body.path);
    assert.equal(a.body.internal_key, Buffer.from(child.publicKey!).toString('hex'));
    assert.equal(a.body.address, p2tr(child.publicKey!));
    const b = await api('POST', `/v1/keys/${keyId}/addresses`, { passphrase: PASSPHRASE });
    assert.deepEqual(b.body, a.body);
    const other = await api('POST', `/v1/keys/${keyId}/addresses`, { passphrase: `${PASSPHRASE}!` });
    assert.notEqual(other.body.address, a.body.address);
  });

  it('the address role creates and reads addresses, and nothing else; viewers read derived addresses only', async () => {
    const token = (await api('POST', '/v1/tokens', { role: 'address', label: 'address tier' })).body.token;
    const viewer = (await api('POST', '/v1/tokens', { role: 'viewer' })).body.token;
    assert.equal((await api('POST', '/v1/addresses', { passphrase: PASSPHRASE }, token)).status, 200);
    assert.equal((await api('GET', `/v1/keys/${keyId}/addresses?count=2`, undefined, token)).status, 200);
    assert.equal((await api('GET', `/v1/keys/${keyId}/descriptor`, undefined, token)).status, 200);
    assert.equal((await api('POST', `/v1/keys/${keyId}/addresses`, { passphrase: 'x' }, token)).status, 200);
    const message = '00'.repeat(32);
    for (const [method, path, body] of [
      ['POST', '/v1/sessions', { key_id: keyId, message }],
      ['GET', '/v1/sessions', undefined],
      ['GET', '/v1/keys', undefined],
      ['GET', `/v1/keys/${keyId}`, undefined],
      ['POST', '/v1/keys', { threshold: 2 }],
      ['GET', '/v1/signers', undefined],
      ['POST', '/v1/tokens', { role: 'address' }],
      ['POST', '/v1/tokens', { role: 'admin' }],
    ] as const) {
      const r = await api(method, path, body, token);
      assert.equal(r.status, 403, `${method} ${path} with an address token: ${JSON.stringify(r.body)}`);
    }
    assert.equal((await api('GET', `/v1/keys/${keyId}/addresses`, undefined, viewer)).status, 200);
    assert.equal((await api('POST', '/v1/addresses', { passphrase: PASSPHRASE }, viewer)).status, 403);
    // and admins sign (what the address role may not)
    assert.equal((await c.sign(keyId, message)).body.status, 'completed');
  });

  it('the threshold rules: warnings on POST /v1/keys, threshold_unsafe with strict_thresholds', async () => {
    const warned = await api('POST', '/v1/keys', { threshold: 3, wait: 30_000 });
    assert.equal(warned.status, 201, JSON.stringify(warned.body));
    assert.deepEqual(
      warned.body.warnings.map((w: { rule: string }) => w.rule),
      ['two_thirds', 'two_spare'],
    );
    const keysBefore = (await api('GET', '/v1/keys?limit=500')).body.items.length;
    const refused = await api('POST', '/v1/keys', { threshold: 2, strict_thresholds: true });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'threshold_unsafe');
    assert.deepEqual(refused.body.rules, ['two_spare']);
    assert.match(refused.body.hint, /2-of-4/);
    assert.equal((await api('GET', '/v1/keys?limit=500')).body.items.length, keysBefore, 'nothing created');
  });

  it('the passphrase is in no response, database file, signer store or log', async () => {
    // Let the coordinator and signers write what they buffer.
    await new Promise((r) => setTimeout(r, 500));
    const needle = Buffer.from(PASSPHRASE);
    const leaks: string[] = [];
    for (const f of filesUnder(c.dir)) {
      if (readFileSync(f).includes(needle)) leaks.push(f);
    }
    for (const [i, s] of c.signers.entries()) {
      if ([...s.stdout, ...s.stderr].join('\n').includes(PASSPHRASE)) leaks.push(`signer ${i + 1} log`);
    }
    const p = c.coordinatorProcess!;
    const log = [...p.stdout, ...p.stderr].join('\n');
    assert.ok(log.includes('"reqId"'), 'the coordinator logged requests (the search means something)');
    if (log.includes(PASSPHRASE)) leaks.push('coordinator log');
    if (responses.some((r) => r.includes(PASSPHRASE))) leaks.push('a response');
    if (c.databaseUrl) {
      // On the Postgres server the database is not under the cluster's directory: search every
      // row of every table, as text.
      const db = new pg.Client({ connectionString: c.databaseUrl });
      await db.connect();
      try {
        const tables = await db.query<{ t: string }>(
          "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        );
        assert.ok(
          tables.rows.some((r) => r.t === 'passphrase_addresses'),
          'the database was searched',
        );
        for (const { t } of tables.rows) {
          const r = await db.query(
            `SELECT count(*)::int AS n FROM "${t}" x WHERE x::text LIKE '%' || $1 || '%'`,
            [PASSPHRASE],
          );
          if (r.rows[0].n > 0) leaks.push(`table ${t}`);
        }
      } finally {
        await db.end();
      }
    } else {
      assert.ok(
        filesUnder(join(c.dir, 'coordinator')).some((f) => f.includes('pgdata')),
        'the database was searched',
      );
    }
    assert.deepEqual(leaks, []);
  });
});
