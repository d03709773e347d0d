/**
 * Signing intents through a real cluster (DESIGN §12): a Nostr event is signed as an event
 * that nostr-tools accepts, a message session is as before, malformed events get specific
 * codes and change nothing (PSBTs: test/coordinator/psbt.test.ts). Also the approval stage's ways
 * out of `awaiting_approval` with an approval gate that asks for every session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyEvent } from 'nostr-tools/pure';
import { CoordinatorMetrics } from '../../src/coordinator/metrics.js';
import { coordinatorIdentity, DEFAULT_TENANT } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { Coordinator } from '../../src/coordinator/services/index.js';
import type { Principal } from '../../src/domain/records.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { assertProblem } from '../helpers/http.js';
import { until } from '../helpers/until.js';

let cluster: TestCluster;
let key: any;
const backend = () => cluster.coordinator!.backend as PgBackend;

before(async () => {
  cluster = await startCluster({ signers: 3 });
  await cluster.registerSigners();
  key = await cluster.createKey(2);
});
after(async () => {
  await cluster?.close();
});

/** Row counts and hashes of every table (what a refused request must leave unchanged). */
async function snapshot(): Promise<string> {
  const tables = await backend().db.adminQuery<{ t: string }>(
    // Rate-limit counters count every request, refused or not: not state a request may change.
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'rate_limits' ORDER BY 1",
  );
  const out: string[] = [];
  for (const { t } of tables.rows) {
    const r = await backend().db.adminQuery<{ n: number; h: string }>(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(j, '|' ORDER BY j), '')) AS h
         FROM (SELECT (to_jsonb(x) - '{last_used_at,last_seen_at,last_latency_ms,updated_at}'::text[])::text AS j FROM "${t}" x) s`,
    );
    out.push(`${t}=${r.rows[0]!.n}:${r.rows[0]!.h}`);
  }
  return out.join('\n');
}

describe('nostr_event intents', () => {
  it('signs an event that nostr-tools verifies; the id is computed, the pubkey is the key', async () => {
    const nostr_event = { kind: 1, content: 'hello from floe ✓', tags: [['t', 'floe']] };
    const r = await cluster.api('POST', '/v1/sessions', { key_id: key.id, nostr_event, wait: 15_000 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const s = r.body;
    assert.equal(s.status, 'completed');
    assert.equal(s.intent_type, 'nostr_event');
    assert.match(s.intent_hash, /^[0-9a-f]{64}$/);
    const e = s.event;
    assert.deepEqual(Object.keys(e).sort(), ['content', 'created_at', 'id', 'kind', 'pubkey', 'sig', 'tags']);
    assert.equal(e.pubkey, key.x_only_public_key);
    assert.equal(e.kind, 1);
    assert.equal(e.content, nostr_event.content);
    assert.deepEqual(e.tags, nostr_event.tags);
    assert.ok(Math.abs(e.created_at - Date.now() / 1000) < 60, 'created_at defaults to now');
    assert.equal(e.sig, s.signature);
    assert.equal(e.id, s.message);
    assert.equal(s.final_event_id, e.id);
    assert.equal(verifyEvent({ ...e }), true, 'nostr-tools verifyEvent');
    assert.equal(verifyEvent({ ...e, content: `${e.content}!` }), false, 'and the check can fail');
    // Reading it back gives the same event.
    const got = await cluster.api('GET', `/v1/sessions/${s.id}`);
    assert.deepEqual(got.body, s);
  });

  it('an explicit created_at inside the window is kept', async () => {
    const created_at = Math.floor(Date.now() / 1000) - 600;
    const r = await cluster.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: { kind: 7, content: '+', tags: [['e', 'ab'.repeat(32)]], created_at },
      wait: 15_000,
    });
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.equal(r.body.event.created_at, created_at);
    assert.equal(verifyEvent({ ...r.body.event }), true);
  });

  it('malformed events get 400 with a specific code and change nothing', async () => {
    const before = await snapshot();
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, unknown, string][] = [
      ['kind above 65535', { kind: 65536, content: 'x' }, 'event_kind_invalid'],
      ['negative kind', { kind: -1, content: 'x' }, 'event_kind_invalid'],
      ['tag with a number', { kind: 1, content: 'x', tags: [['p', 5]] }, 'event_tags_invalid'],
      ['tag not an array', { kind: 1, content: 'x', tags: ['p'] }, 'event_tags_invalid'],
      ['tags not an array', { kind: 1, content: 'x', tags: 'p' }, 'event_tags_invalid'],
      ['oversized content', { kind: 1, content: 'x'.repeat(140_000) }, 'event_content_too_large'],
      ['created_at far ahead', { kind: 1, content: 'x', created_at: now + 3600 }, 'event_created_at_invalid'],
      [
        'created_at far back',
        { kind: 1, content: 'x', created_at: now - 86_400 },
        'event_created_at_invalid',
      ],
    ];
    for (const [what, nostr_event, code] of cases) {
      assertProblem(
        await cluster.api('POST', '/v1/sessions', { key_id: key.id, nostr_event }),
        400,
        code,
        what,
      );
    }
    for (const [what, body] of [
      ['id supplied', { key_id: key.id, nostr_event: { kind: 1, content: 'x', id: 'ab'.repeat(32) } }],
      [
        'pubkey supplied',
        { key_id: key.id, nostr_event: { kind: 1, content: 'x', pubkey: 'ab'.repeat(32) } },
      ],
      [
        'message and event',
        { key_id: key.id, message: 'ab'.repeat(32), nostr_event: { kind: 1, content: 'x' } },
      ],
      ['no intent', { key_id: key.id }],
    ] as const) {
      assertProblem(await cluster.api('POST', '/v1/sessions', body), 400, 'invalid_request', what);
    }
    assert.equal(await snapshot(), before, 'nothing changed');
  });

  it('a malformed bitcoin_psbt intent is refused with psbt_invalid and changes nothing', async () => {
    const before = await snapshot();
    assertProblem(
      await cluster.api('POST', '/v1/sessions', { key_id: key.id, bitcoin_psbt: 'cHNidP8BAA==' }),
      400,
      'psbt_invalid',
      'psbt',
    );
    assert.equal(await snapshot(), before);
  });

  it('a message session carries its intent and behaves as before', async () => {
    const message = randomBytes(32).toString('hex');
    const r = await cluster.sign(key.id, message);
    assert.equal(r.status, 201);
    assert.equal(r.body.intent_type, 'message');
    assert.deepEqual(r.body.intent, { type: 'message', message });
    assert.equal(r.body.message, message);
    assert.equal(r.body.final_event_id, null);
    assert.equal(r.body.event, undefined);
  });
});

describe('the approval stage', () => {
  /** A second coordinator on the same database whose gate asks stewards for every session. */
  let gated: Coordinator;
  const p: Principal = { tenantId: DEFAULT_TENANT, role: 'requester', tokenId: 'test' };
  before(() => {
    // Another coordinator of the same deployment: same database, same identity (the signers'
    // allowlist), its own approval gate.
    const { identity } = coordinatorIdentity(join(cluster.dir, 'coordinator'));
    gated = new Coordinator({
      backend: backend(),
      identity,
      metrics: new CoordinatorMetrics(),
      sessionTtlMs: 4000,
      approvals: { initialStatus: () => 'awaiting_approval' },
    });
  });

  it('a session under approval waits, and is never driven until approved; approval makes it sign', async () => {
    const { session } = await gated.sessions.create(
      p,
      { key_id: key.id, message: 'cd'.repeat(32) },
      undefined,
    );
    assert.equal(session.status, 'awaiting_approval');
    // Nothing drives it: the job that resumes stale sessions leaves it alone, so does drive().
    assert.equal((await gated.signing.drive(DEFAULT_TENANT, session.id)).status, 'awaiting_approval');
    assert.equal(
      (await backend().claimStaleSessions('test', 0, 1000, 100)).some((s) => s.sessionId === session.id),
      false,
    );
    const approved = await gated.sessions.decideApproval(DEFAULT_TENANT, session.id, {
      decision: 'approved',
    });
    assert.equal(approved?.status, 'pending');
    const done = await gated.sessions.get(p, session.id, 15_000);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    // Deciding again changes nothing.
    assert.equal(
      await gated.sessions.decideApproval(DEFAULT_TENANT, session.id, {
        decision: 'rejected',
        reason: 'late',
      }),
      null,
    );
  });

  it('a rejection fails the session with approval_rejected', async () => {
    const { session } = await gated.sessions.create(
      p,
      { key_id: key.id, message: 'ce'.repeat(32) },
      undefined,
    );
    const r = await gated.sessions.decideApproval(DEFAULT_TENANT, session.id, {
      decision: 'rejected',
      reason: 'a steward vetoed it',
    });
    assert.equal(r?.status, 'failed');
    assert.equal(r?.errorCode, 'approval_rejected');
    assert.equal(r?.errorMessage, 'a steward vetoed it');
    const audit = await backend().db.adminQuery<{ kind: string }>(
      "SELECT kind FROM audit_events WHERE subject_id = $1 AND kind LIKE 'session.%' ORDER BY id",
      [session.id],
    );
    assert.deepEqual(
      audit.rows.map((x) => x.kind),
      ['session.created', 'session.rejected'],
    );
  });

  it('silence expires it', async () => {
    const { session } = await gated.sessions.create(
      p,
      { key_id: key.id, message: 'cf'.repeat(32) },
      undefined,
    );
    // The expiry job of the cluster's coordinator (every 2 s) expires it once its 4 s TTL passed.
    const s = await until(
      'the session expires',
      async () => {
        const x = await gated.sessions.get(p, session.id);
        return x.status === 'expired' && x;
      },
      15_000,
      250,
    );
    assert.equal(s.status, 'expired');
    assert.equal(s.error_code, 'session_expired');
    assert.match(s.error_message ?? '', /stewards/);
  });

  it('a cancel that a drive’s new attempt overtakes reads the session again and cancels it', async () => {
    const { session } = await gated.sessions.create(
      p,
      { key_id: key.id, message: 'd1'.repeat(32) },
      undefined,
    );
    const real = backend();
    let overtaken = false;
    // The same backend, except that just before the cancel's move another coordinator's drive
    // starts attempt 1 (the cancel read attempt 0): its conditional move misses once.
    const racing = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop !== 'transitionSession') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<PgBackend['transitionSession']>) => {
          if (!overtaken && args[1] === session.id && args[4] === 'failed') {
            overtaken = true;
            const now = Date.now();
            assert.ok(
              await target.transitionSession(
                DEFAULT_TENANT,
                session.id,
                ['awaiting_approval'],
                0,
                'pending',
                {},
              ),
            );
            assert.ok(
              await target.transitionSession(DEFAULT_TENANT, session.id, ['pending'], 0, 'nonce_collection', {
                attempt: 1,
                participants: [1, 2],
                nonceCollectionStartedAt: now,
              }),
            );
          }
          return target.transitionSession(...args);
        };
      },
    });
    const { identity } = coordinatorIdentity(join(cluster.dir, 'coordinator'));
    const other = new Coordinator({
      backend: racing,
      identity,
      metrics: new CoordinatorMetrics(),
      approvals: { initialStatus: () => 'awaiting_approval' },
    });
    const c = await other.sessions.cancel(p, session.id);
    assert.ok(overtaken, 'the race happened');
    assert.equal(c.status, 'failed');
    assert.equal(c.error_code, 'cancelled');
    assert.equal(c.attempt, 1);
  });

  it('a cancel works while it waits', async () => {
    const { session } = await gated.sessions.create(
      p,
      { key_id: key.id, message: 'd0'.repeat(32) },
      undefined,
    );
    const c = await gated.sessions.cancel(p, session.id);
    assert.equal(c.status, 'failed');
    assert.equal(c.error_code, 'cancelled');
  });
});
