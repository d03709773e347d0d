/**
 * Coordinator HTTP API: tokens, request validation, signing sessions (synchronous, polled,
 * idempotent, paginated), key objects, signers, docs and metrics, and tenant isolation.
 * One in-process cluster (coordinator + 3 signer processes) for the file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createApiToken, sha256hex } from '../../src/coordinator/auth/tokens.js';
import { DEFAULT_TENANT } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { npubDecode } from '../../src/crypto/bech32.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem, request } from '../helpers/http.js';
import { libsecpVerify } from '../helpers/independent.js';
import { until } from '../helpers/until.js';

let cluster: TestCluster;
let signerIds: string[];
let key: any;

const backend = () => cluster.coordinator!.backend as PgBackend;
const msg = () => randomBytes(32).toString('hex');
const HEX = (bytes: number) => new RegExp(`^[0-9a-f]{${bytes * 2}}$`);

/** Every session of the default tenant, newest first, through the API. */
async function allSessions(): Promise<any[]> {
  const r = await cluster.api('GET', '/v1/sessions?limit=500');
  assert.equal(r.status, 200);
  return r.body.items;
}

function verifies(session: any, k = key): boolean {
  return libsecpVerify(
    fromHex(session.signature, 'signature', 64),
    fromHex(session.message, 'message', 32),
    fromHex(k.x_only_public_key, 'x-only key', 32),
  );
}

before(async () => {
  cluster = await startCluster({ signers: 3 });
  signerIds = await cluster.registerSigners();
  key = await cluster.createKey(2);
});

after(async () => {
  await cluster?.close();
});

describe('tokens', () => {
  it('shows a new token once and stores only its hash', async () => {
    const r = await cluster.api('POST', '/v1/tokens', { role: 'requester', label: 'ci' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const token: string = r.body.token;
    assert.match(token, /^floe_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(token.split('_')[1], r.body.id);
    assert.equal(r.body.role, 'requester');
    assert.equal(r.body.label, 'ci');
    assert.equal(r.body.expires_at, null);
    assert.equal(r.body.revoked_at, null);
    const secret = token.slice(`floe_${r.body.id}_`.length);

    // The list has the token's metadata, never a secret.
    const list = await cluster.api('GET', '/v1/tokens');
    assert.equal(list.status, 200);
    const text = JSON.stringify(list.body);
    assert.ok(!text.includes(secret), 'the list must not carry the secret');
    assert.doesNotMatch(text, /floe_[0-9a-f]{16}_/);
    const item = list.body.items.find((t: any) => t.id === r.body.id);
    assert.deepEqual(Object.keys(item).sort(), [
      'created_at',
      'expires_at',
      'id',
      'label',
      'revoked_at',
      'role',
    ]);
    assert.ok(list.body.items.length >= 2, 'the bootstrap admin token is listed too');
    assert.equal(list.body.next_cursor, null);

    // The database holds SHA-256(token) only.
    const rows = await backend().db.adminQuery<Record<string, unknown>>('SELECT * FROM api_tokens');
    const row = rows.rows.find((x) => x.id === r.body.id)!;
    assert.equal(row.token_sha256, sha256hex(token));
    const dump = JSON.stringify(rows.rows);
    assert.ok(!dump.includes(secret), 'no token secret in api_tokens');
    // The secret is everything after `floe_<id>_` (base64url: it may itself contain `_`).
    const bootstrapSecret = cluster.adminToken.split('_').slice(2).join('_');
    assert.equal(bootstrapSecret.length, 43);
    assert.ok(!dump.includes(bootstrapSecret), 'not even the bootstrap one');

    // The token works.
    const use = await request(cluster.url, 'GET', '/v1/keys', { token });
    assert.equal(use.status, 200);
  });

  it('validates token requests', async () => {
    const before = (await cluster.api('GET', '/v1/tokens')).body.items.length;
    for (const body of [
      {},
      { role: 'root' },
      { role: 'viewer', scope: 'all' },
      { role: 'viewer', ttl_s: 1 },
    ]) {
      assertProblem(
        await cluster.api('POST', '/v1/tokens', body),
        400,
        'invalid_request',
        JSON.stringify(body),
      );
    }
    assert.equal((await cluster.api('GET', '/v1/tokens')).body.items.length, before);
  });
});

describe('request validation', () => {
  it('refuses bad requests without changing state', async () => {
    const sessionsBefore = (await allSessions()).length;
    const keysBefore = (await cluster.api('GET', '/v1/keys')).body.items.length;
    const auditBefore = (await backend().db.adminQuery('SELECT count(*)::int AS n FROM audit_events'))
      .rows[0];

    const bad: [string, unknown][] = [
      ['unknown field', { key_id: key.id, message: msg(), extra: true }],
      ['missing message', { key_id: key.id }],
      ['missing key_id', { message: msg() }],
      ['31-byte message', { key_id: key.id, message: msg().slice(2) }],
      ['33-byte message', { key_id: key.id, message: `${msg()}00` }],
      ['odd-length message', { key_id: key.id, message: `${msg()}0` }],
      ['non-hex message', { key_id: key.id, message: `${msg().slice(2)}zz` }],
      ['0x prefix', { key_id: key.id, message: `0x${msg().slice(2)}` }],
      ['message as number', { key_id: key.id, message: 1234 }],
      ['bad key id', { key_id: '../etc/passwd', message: msg() }],
      ['negative wait', { key_id: key.id, message: msg(), wait: -1 }],
      ['huge wait', { key_id: key.id, message: msg(), wait: 10_000_000 }],
      ['array body', [{ key_id: key.id, message: msg() }]],
    ];
    for (const [what, body] of bad) {
      assertProblem(await cluster.api('POST', '/v1/sessions', body), 400, 'invalid_request', what);
    }
    assertProblem(
      await cluster.api('POST', '/v1/keys', { threshold: 2, colour: 'blue' }),
      400,
      'invalid_request',
      'unknown key field',
    );
    assertProblem(
      await cluster.api('POST', '/v1/keys', { threshold: 1 }),
      400,
      'invalid_request',
      'threshold 1',
    );
    assertProblem(
      await cluster.api('PATCH', `/v1/signers/${signerIds[0]}`, { quarantined: false }),
      400,
      'invalid_request',
      'unknown signer field',
    );
    assertProblem(await cluster.api('GET', '/v1/sessions?limit=0'), 400, 'invalid_request', 'limit 0');
    assertProblem(
      await cluster.api('GET', '/v1/sessions?limit=1&sort=asc'),
      400,
      'invalid_request',
      'unknown query parameter',
    );

    // Oversized body (> 256 KiB).
    const big = await request(cluster.url, 'POST', '/v1/sessions', {
      token: cluster.adminToken,
      raw: JSON.stringify({ key_id: key.id, message: msg(), pad: 'x'.repeat(300 * 1024) }),
    });
    assertProblem(big, 413, 'payload_too_large', 'oversized body');

    // Not JSON.
    const notJson = await request(cluster.url, 'POST', '/v1/sessions', {
      token: cluster.adminToken,
      raw: `{"key_id": "${key.id}", "message": `,
    });
    assertProblem(notJson, 400, 'invalid_request', 'truncated JSON');
    const text = await request(cluster.url, 'POST', '/v1/sessions', {
      token: cluster.adminToken,
      raw: `key_id=${key.id}&message=${msg()}`,
      contentType: 'application/x-www-form-urlencoded',
    });
    assertProblem(text, 415, 'unsupported_media_type', 'form body');
    const empty = await request(cluster.url, 'POST', '/v1/sessions', { token: cluster.adminToken, raw: '' });
    assert.ok([400, 415].includes(empty.status), `empty body: ${empty.status}`);
    assert.equal(empty.body.status, empty.status);

    // Unknown ids.
    assertProblem(
      await cluster.api('POST', '/v1/sessions', { key_id: 'key_doesnotexist', message: msg(), wait: 1000 }),
      404,
      'key_not_found',
      'unknown key',
    );
    assertProblem(
      await cluster.api('GET', '/v1/keys/key_doesnotexist'),
      404,
      'key_not_found',
      'GET unknown key',
    );
    assertProblem(
      await cluster.api('GET', '/v1/sessions/ses_doesnotexist'),
      404,
      'session_not_found',
      'unknown session',
    );
    assertProblem(
      await cluster.api('POST', '/v1/sessions/ses_doesnotexist/cancel'),
      404,
      'session_not_found',
      'cancel unknown session',
    );
    assertProblem(
      await cluster.api('PATCH', '/v1/signers/sig_doesnotexist', { clear_faults: true }),
      404,
      'signer_not_found',
      'unknown signer',
    );
    assertProblem(await cluster.api('GET', '/v1/nothing-here'), 404, 'not_found', 'unknown route');

    assert.equal((await allSessions()).length, sessionsBefore, 'no session was created');
    assert.equal((await cluster.api('GET', '/v1/keys')).body.items.length, keysBefore, 'no key was created');
    const auditAfter = (await backend().db.adminQuery('SELECT count(*)::int AS n FROM audit_events')).rows[0];
    assert.deepEqual(auditAfter, auditBefore, 'nothing was audited');
  });
});

describe('sessions', () => {
  it('signs synchronously with wait; the signature verifies under x_only_public_key', async () => {
    const m = msg();
    const r = await cluster.sign(key.id, m);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body;
    assert.equal(s.status, 'completed');
    assert.equal(s.key_id, key.id);
    assert.equal(s.message, m);
    assert.match(s.signature, HEX(64));
    assert.ok(verifies(s), 'BIP-340 verification with libsecp256k1');
    assert.equal(s.participants.length, 2);
    assert.equal(s.error_code, null);
    assert.equal(typeof s.completed_at, 'number');
    assert.equal(r.headers.get('location'), `/v1/sessions/${s.id}`);
    // A different message does not verify under the signature (sanity of the check itself).
    assert.equal(verifies({ ...s, message: msg() }), false);

    const got = await cluster.api('GET', `/v1/sessions/${s.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, s);
  });

  it('takes a digest in upper case, as floe sign --message does, and signs it in lower case', async () => {
    const m = msg();
    const r = await cluster.api('POST', '/v1/sessions', {
      key_id: key.id,
      message: m.toUpperCase(),
      wait: 30_000,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'completed');
    assert.equal(r.body.message, m);
    assert.ok(verifies(r.body), 'the signature is over the digest itself');
  });

  it('audits each step of a session, written with the step itself', async () => {
    const r = await cluster.sign(key.id, msg());
    assert.equal(r.body.status, 'completed');
    const events = await backend().db.adminQuery<{ kind: string; data: any }>(
      "SELECT kind, data FROM audit_events WHERE subject_id = $1 AND kind LIKE 'session.%' ORDER BY id",
      [r.body.id],
    );
    const ours = events.rows.filter((e) =>
      ['session.created', 'session.attempt', 'session.completed'].includes(e.kind),
    );
    assert.deepEqual(
      ours.map((e) => [e.kind, e.data]),
      [
        ['session.created', { key_id: key.id, intent_type: 'message' }],
        ['session.attempt', { attempt: 1, participants: r.body.participants }],
        ['session.completed', { attempt: 1 }],
      ],
    );
    // A move that does not happen (the session is terminal) writes no event either.
    const count = async () =>
      (
        await backend().db.adminQuery<{ n: number }>(
          'SELECT count(*)::int AS n FROM audit_events WHERE subject_id = $1',
          [r.body.id],
        )
      ).rows[0]!.n;
    const n = await count();
    const moved = await backend().transitionSession(
      DEFAULT_TENANT,
      r.body.id,
      ['signing'],
      1,
      'aggregating',
      {},
      { kind: 'session.blame', data: { attempt: 1, culprits: [1] } },
    );
    assert.equal(moved, null);
    assert.equal(await count(), n);
  });

  it('a session ready to sign is born in its first attempt: no pending step, one move fewer', async () => {
    const r = await cluster.sign(key.id, msg());
    assert.equal(r.body.status, 'completed');
    const trail = await backend().db.adminQuery<{ from: string | null; to: string }>(
      "SELECT data->>'from' AS from, data->>'to' AS to FROM audit_events WHERE subject_id = $1 AND kind = 'status_change' ORDER BY id",
      [r.body.id],
    );
    assert.deepEqual(
      trail.rows.map((x) => [x.from, x.to]),
      [
        [null, 'nonce_collection'],
        ['nonce_collection', 'signing'],
        ['signing', 'aggregating'],
        ['aggregating', 'completed'],
      ],
    );
    const stored = await backend().getSession(DEFAULT_TENANT, r.body.id);
    assert.equal(stored?.attempt, 1);
    assert.equal(typeof stored?.nonceCollectionStartedAt, 'number');
    assert.equal(r.body.participants.length, 2);
  });

  it('without wait answers 202; GET ?wait returns the finished signature', async () => {
    const m = msg();
    const r = await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: m });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.notEqual(r.body.status, 'completed');
    assert.equal(r.body.signature, null);
    assert.match(r.body.id, /^ses_[0-9a-f]{32}$/);
    const got = await cluster.api('GET', `/v1/sessions/${r.body.id}?wait=10000`);
    assert.equal(got.status, 200);
    assert.equal(got.body.status, 'completed', JSON.stringify(got.body));
    assert.equal(got.body.message, m);
    assert.ok(verifies(got.body));
  });

  it('Idempotency-Key: same request, same session; another request, 409', async () => {
    const before = (await allSessions()).length;
    const m = msg();
    const idem = { 'idempotency-key': `idem-${randomBytes(8).toString('hex')}` };
    const a = await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: m, wait: 30_000 }, idem);
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const b = await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: m, wait: 30_000 }, idem);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.id, a.body.id);
    assert.equal(b.body.signature, a.body.signature);
    assert.equal(b.headers.get('location'), null);
    const c = await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: m }, idem);
    assert.equal(c.status, 200, 'without wait too');
    assert.equal(c.body.id, a.body.id);
    assert.equal((await allSessions()).length, before + 1, 'one session for three requests');

    assertProblem(
      await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: msg() }, idem),
      409,
      'idempotency_conflict',
      'same key, other message',
    );
    assert.equal((await allSessions()).length, before + 1);

    // Another key: a new session.
    const other = { 'idempotency-key': `${idem['idempotency-key']}-2` };
    const d = await cluster.api('POST', '/v1/sessions', { key_id: key.id, message: m }, other);
    assert.equal(d.status, 202);
    assert.notEqual(d.body.id, a.body.id);
    assert.equal((await cluster.api('GET', `/v1/sessions/${d.body.id}?wait=10000`)).body.status, 'completed');
  });

  it('lists newest first with cursor pagination', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await cluster.sign(key.id, msg())).body.status, 'completed');
    const all = await allSessions();
    assert.ok(all.length >= 5);
    for (let i = 1; i < all.length; i++) {
      assert.ok(all[i - 1].created_at >= all[i].created_at, 'newest first');
    }
    const first = await cluster.api('GET', '/v1/sessions');
    assert.deepEqual(Object.keys(first.body).sort(), ['items', 'next_cursor']);

    const paged: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < all.length + 2; pages++) {
      const q: string = `/v1/sessions?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await cluster.api('GET', q);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.items.length <= 1);
      paged.push(...r.body.items.map((s: any) => s.id));
      cursor = r.body.next_cursor;
      if (!cursor) break;
    }
    assert.equal(cursor, null, 'pagination ends');
    assert.deepEqual(
      paged,
      all.map((s) => s.id),
      'pages of one give the whole list, in order',
    );

    const two = await cluster.api('GET', '/v1/sessions?limit=2');
    assert.deepEqual(
      two.body.items.map((s: any) => s.id),
      all.slice(0, 2).map((s) => s.id),
    );
    assert.equal(typeof two.body.next_cursor, 'string');

    const completed = await cluster.api('GET', '/v1/sessions?status=completed&limit=500');
    assert.ok(completed.body.items.length > 0);
    assert.ok(completed.body.items.every((s: any) => s.status === 'completed'));
  });

  it('cancelling a finished session is a conflict', async () => {
    const s = (await cluster.sign(key.id, msg())).body;
    assert.equal(s.status, 'completed');
    assertProblem(
      await cluster.api('POST', `/v1/sessions/${s.id}/cancel`),
      409,
      'session_conflict',
      'cancel',
    );
    const after = await cluster.api('GET', `/v1/sessions/${s.id}`);
    assert.equal(after.body.status, 'completed');
    assert.equal(after.body.signature, s.signature);
  });
});

describe('keys', () => {
  it('key objects carry the public key in every form', async () => {
    const got = await cluster.api('GET', `/v1/keys/${key.id}`);
    assert.equal(got.status, 200);
    const k = got.body;
    assert.equal(k.id, key.id);
    assert.equal(k.threshold, 2);
    assert.equal(k.n, 3);
    assert.equal(k.status, 'active');
    assert.equal(k.origin, 'dkg');
    assert.match(k.public_key, /^0[23][0-9a-f]{64}$/);
    assert.match(k.x_only_public_key, HEX(32));
    assert.equal(toHex(npubDecode(k.npub)), k.x_only_public_key);
    assert.match(k.npub, /^npub1[02-9ac-hj-np-z]{58}$/);
    assert.equal(k.members.length, 3);
    assert.deepEqual(
      k.members.map((m: any) => m.identifier),
      [1, 2, 3],
    );
    assert.deepEqual(new Set(k.members.map((m: any) => m.signer_id)), new Set(signerIds));
    assert.equal(typeof k.created_at, 'number');

    const list = await cluster.api('GET', '/v1/keys');
    assert.deepEqual(Object.keys(list.body).sort(), ['items', 'next_cursor']);
    const listed = list.body.items.find((x: any) => x.id === key.id);
    for (const f of ['id', 'threshold', 'n', 'public_key', 'x_only_public_key', 'npub', 'status']) {
      assert.deepEqual(listed[f], k[f], f);
    }
  });

  it('refuses to sign with a key that is not active', async () => {
    const now = Date.now();
    const base = await backend().getKey(DEFAULT_TENANT, key.id);
    assert.ok(base);
    const disabled = {
      ...base,
      id: `key_disabled_${randomBytes(4).toString('hex')}`,
      status: 'disabled' as const,
    };
    const pending = {
      ...base,
      id: `key_pending_${randomBytes(4).toString('hex')}`,
      status: 'pending' as const,
      groupPublicKey: null,
      xOnlyPublicKey: null,
      publicKeyPackage: null,
      origin: 'dealer' as const,
      createdAt: now,
      updatedAt: now,
    };
    await backend().insertKey(disabled);
    await backend().insertKey(pending);
    const before = (await allSessions()).length;
    for (const k of [disabled, pending]) {
      const shown = await cluster.api('GET', `/v1/keys/${k.id}`);
      assert.equal(shown.body.status, k.status);
      assertProblem(
        await cluster.api('POST', '/v1/sessions', { key_id: k.id, message: msg(), wait: 1000 }),
        409,
        // A disabled key has its own code (issue 15 item 7); a pending one is not active.
        k.status === 'disabled' ? 'key_disabled' : 'key_not_active',
        k.status,
      );
    }
    const p = (await cluster.api('GET', `/v1/keys/${pending.id}`)).body;
    assert.equal(p.public_key, null);
    assert.equal(p.x_only_public_key, null);
    assert.equal(p.npub, null);
    assert.equal((await allSessions()).length, before);
  });
});

describe('signers', () => {
  it('refuses to register the same identity twice', async () => {
    const s = cluster.signers[1]!;
    const before = (await cluster.api('GET', '/v1/signers')).body.items.length;
    assertProblem(
      await cluster.api('POST', '/v1/signers', { url: s.url, identity: s.identity }),
      409,
      'conflict',
      'same identity',
    );
    assertProblem(
      await cluster.api('POST', '/v1/signers', {
        url: 'http://127.0.0.1:1',
        identity: s.identity,
        name: 'x',
      }),
      409,
      'conflict',
      'same identity, other url',
    );
    assertProblem(
      await cluster.api('POST', '/v1/signers', { url: 'ftp://127.0.0.1:1', identity: '00'.repeat(32) }),
      400,
      'invalid_request',
      'bad url',
    );
    assert.equal((await cluster.api('GET', '/v1/signers')).body.items.length, before);
  });

  it('shows health from the probes', async () => {
    const first = await cluster.api('GET', '/v1/signers');
    assert.equal(first.status, 200);
    assert.deepEqual(Object.keys(first.body).sort(), ['items', 'next_cursor']);
    assert.deepEqual(new Set(first.body.items.map((s: any) => s.id)), new Set(signerIds));
    for (const s of first.body.items) {
      assert.equal(typeof s.last_seen_at, 'number', `${s.id} probed at registration`);
      assert.ok(Number.isInteger(s.last_latency_ms) && s.last_latency_ms >= 0);
      assert.equal(s.status, 'active');
      assert.match(s.identity, HEX(32));
    }
    // The periodic job (250 ms in the test cluster) probes again.
    const seen = new Map(first.body.items.map((s: any) => [s.id, s.last_seen_at]));
    const later: any[] = await until(
      'every signer probed again',
      async () => {
        const items: any[] = (await cluster.api('GET', '/v1/signers')).body.items;
        return items.every((s) => s.last_seen_at > (seen.get(s.id) as number)) && items;
      },
      20_000,
    );
    for (const s of later) assert.ok(s.last_seen_at > (seen.get(s.id) as number), `${s.id} probed again`);
  });

  it('PATCH sets the quarantine override and clears faults (admin only)', async () => {
    const id = signerIds[2]!;
    const { token: operator } = await createApiToken(backend(), {
      tenantId: DEFAULT_TENANT,
      role: 'operator',
      now: Date.now(),
    });
    assertProblem(
      await request(cluster.url, 'PATCH', `/v1/signers/${id}`, {
        token: operator,
        json: { quarantine_override: true },
      }),
      403,
      'forbidden',
      'operator',
    );
    assert.equal(
      (await cluster.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === id).quarantine_override,
      false,
    );

    const on = await cluster.api('PATCH', `/v1/signers/${id}`, { quarantine_override: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(on.body.quarantine_override, true);
    assert.equal(on.body.id, id);

    // Give the signer a fault record, then clear it.
    await backend().updateSigner(id, { faultCount: 5, quarantined: true, quarantinedAt: Date.now() });
    const faulty = (await cluster.api('GET', '/v1/signers')).body.items.find((s: any) => s.id === id);
    assert.equal(faulty.fault_count, 5);
    assert.equal(faulty.quarantined, true);
    const cleared = await cluster.api('PATCH', `/v1/signers/${id}`, {
      clear_faults: true,
      quarantine_override: false,
    });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.body.fault_count, 0);
    assert.equal(cleared.body.quarantined, false);
    assert.equal(cleared.body.quarantine_override, false);
    // Signing still works with all signers healthy.
    assert.equal((await cluster.sign(key.id, msg())).body.status, 'completed');
  });
});

describe('docs, health and metrics', () => {
  it('serves an OpenAPI 3 document with the request schemas', async () => {
    const r = await request(cluster.url, 'GET', '/openapi.json');
    assert.equal(r.status, 200);
    const doc = r.body;
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/v1/keys', '/v1/sessions', '/v1/signers', '/v1/auth/token', '/v1/sessions/{id}']) {
      assert.ok(doc.paths[p], `path ${p}`);
    }
    const body = (path: string) => {
      const s = doc.paths[path].post.requestBody.content['application/json'].schema;
      return s.$ref ? doc.components.schemas[s.$ref.split('/').pop()] : s;
    };
    const sessions = body('/v1/sessions');
    assert.equal(sessions.additionalProperties, false);
    // One of message, nostr_event, bitcoin_psbt (the service says which is missing).
    assert.deepEqual([...sessions.required].sort(), ['key_id']);
    // Either case, as `floe sign --message` takes it (lower-cased on arrival).
    assert.equal(sessions.properties.message.pattern, '^[0-9a-fA-F]{64}$');
    assert.equal(sessions.properties.nostr_event.additionalProperties, false);
    assert.deepEqual([...sessions.properties.nostr_event.required].sort(), ['content', 'kind']);
    const keys = body('/v1/keys');
    assert.equal(keys.additionalProperties, false);
    assert.ok(keys.properties.threshold);
    assert.equal(body('/v1/signers').additionalProperties, false);
    const tok = body('/v1/auth/token');
    assert.equal(tok.additionalProperties, false);
    assert.ok(tok.properties.token);
    assert.ok(doc.components.securitySchemes.bearer);
  });

  it('serves the docs UI and health', async () => {
    const docs = await fetch(`${cluster.url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await docs.text(), /swagger/i);

    const h = await request(cluster.url, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.database, backend().kind);
  });

  it('exports Prometheus metrics', async () => {
    assert.equal((await cluster.sign(key.id, msg())).body.status, 'completed');
    const r = await request(cluster.url, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(r.text, /^floe_http_requests_total\{route="\/v1\/sessions",status="201"\} [1-9]/m);
    assert.match(r.text, /^floe_http_requests_total\{route="\/v1\/sessions",status="400"\} [1-9]/m);
    const m = /^floe_sessions_finished_total\{status="completed"\} (\d+)$/m.exec(r.text);
    assert.ok(m, 'floe_sessions_finished_total{status="completed"}');
    assert.ok(Number(m[1]) >= 1);
  });
});

describe('tenants', () => {
  it('another tenant sees none of the default tenant’s keys, sessions or tokens', async () => {
    const now = Date.now();
    await backend().ensureTenant('t2', 'second tenant', now);
    const { token } = await createApiToken(backend(), { tenantId: 't2', role: 'admin', now });
    const t2 = (method: string, path: string, json?: unknown) =>
      request(cluster.url, method, path, { token, ...(json === undefined ? {} : { json }) });
    const mine = (await cluster.sign(key.id, msg())).body;
    assert.equal(mine.status, 'completed');

    const keys = await t2('GET', '/v1/keys');
    assert.equal(keys.status, 200);
    assert.deepEqual(keys.body.items, []);
    assertProblem(await t2('GET', `/v1/keys/${key.id}`), 404, 'key_not_found', 'other tenant key');
    const sessions = await t2('GET', '/v1/sessions');
    assert.deepEqual(sessions.body.items, []);
    assertProblem(
      await t2('GET', `/v1/sessions/${mine.id}`),
      404,
      'session_not_found',
      'other tenant session',
    );
    assertProblem(await t2('POST', `/v1/sessions/${mine.id}/cancel`), 404, 'session_not_found', 'cancel');
    assertProblem(
      await t2('POST', '/v1/sessions', { key_id: key.id, message: msg(), wait: 1000 }),
      404,
      'key_not_found',
      'sign with another tenant key',
    );
    assert.deepEqual((await t2('GET', '/v1/sessions')).body.items, [], 'nothing was created');
    // The shared signer registry belongs to the system tenant's admins.
    const signers = (await t2('GET', '/v1/signers')).body.items;
    assertProblem(
      await t2('PATCH', `/v1/signers/${signers[0].id}`, { status: 'disabled' }),
      403,
      'forbidden',
      'patch',
    );
    assertProblem(
      await t2('POST', '/v1/signers', { url: 'http://127.0.0.1:1', identity: 'ab'.repeat(32) }),
      403,
      'forbidden',
      'register',
    );

    // Tokens are per tenant too.
    const toks = await t2('GET', '/v1/tokens');
    assert.equal(toks.body.items.length, 1);
    const adminId = cluster.adminToken.split('_')[1]!;
    assertProblem(
      await t2('DELETE', `/v1/tokens/${adminId}`),
      404,
      'token_not_found',
      'revoke other tenant token',
    );
    assert.equal((await cluster.api('GET', '/v1/keys')).status, 200, 'the default admin token still works');
    const byDefault = (await cluster.api('GET', '/v1/tokens')).body.items.map((t: any) => t.id);
    assert.ok(!byDefault.includes(toks.body.items[0].id), 'and the default tenant does not see t2 tokens');

    // The exchange keeps the tenant: t2's access token sees t2 only.
    const jwt = (await request(cluster.url, 'POST', '/v1/auth/token', { json: { token } })).body.access_token;
    const viaJwt = await request(cluster.url, 'GET', `/v1/sessions/${mine.id}`, { token: jwt });
    assertProblem(viaJwt, 404, 'session_not_found', 'via access token');
    assert.deepEqual((await request(cluster.url, 'GET', '/v1/keys', { token: jwt })).body.items, []);
  });
});
