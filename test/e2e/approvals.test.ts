/**
 * Steward approval before signing, over Nostr, enforced by the signers themselves (issue 13):
 * a real cluster (a coordinator, three signer processes), a real relay process, and three
 * stewards as nostr-tools clients on it. They receive the gift-wrapped requests and unwrap them
 * with nostr-tools; their decisions are events nostr-tools signs, sent to the relay or to the
 * API. Everything checked about results is nostr-tools' (event ids, signatures), not Floe's.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ntNip17 from 'nostr-tools/nip17';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { type NostrEvent, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { normalizePolicy, policyStateHashHex } from '../../src/approvals/policy.js';
import { coordinatorIdentity } from '../../src/coordinator/node.js';
import type { PgBackend } from '../../src/coordinator/pg-backend.js';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import { attemptIdHex } from '../../src/protocol/attempt.js';
import { FloeError } from '../../src/protocol/errors.js';
import { decide, decidePolicy, device, type Steward, steward } from '../approvals/helpers.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/until.js';
import { type RelayProcess, spawnRelay } from '../nostr/helpers.js';

useWebSocketImplementation(WebSocket);

const [a, b, c, mallory] = [steward(), steward(), steward(), steward()];
const WAIT = 30_000;

let relay: RelayProcess;
let cluster: TestCluster;
let pool: SimplePool;
/** Every direct message each steward unwrapped (nostr-tools nip17), by steward pubkey. */
const inbox = new Map<string, { rumor: ReturnType<typeof ntNip17.unwrapEvent>; wrap: NostrEvent }[]>();
const closers: (() => void)[] = [];
const backend = () => cluster.coordinator!.backend as PgBackend;

async function createKey(policy: Record<string, unknown>) {
  const r = await cluster.api('POST', '/v1/keys', { threshold: 2, approval_policy: policy, wait: WAIT });
  assert.equal(r.body.status, 'active', JSON.stringify(r.body));
  return r.body;
}

async function newSession(keyId: string, content: string, extra: Record<string, unknown> = {}) {
  const r = await cluster.api('POST', '/v1/sessions', {
    key_id: keyId,
    nostr_event: { kind: 1, content, tags: [['t', 'family']] },
    ...extra,
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.status, 'awaiting_approval');
  return r.body;
}

const session = async (id: string) => (await cluster.api('GET', `/v1/sessions/${id}`)).body;
const submit = (id: string, event: unknown) => cluster.api('POST', `/v1/sessions/${id}/approvals`, { event });

/** The request a steward received for a session (waits for it). */
function requestFor(s: Steward, sessionId: string) {
  return until(
    `steward ${s.npub.slice(0, 12)} receives the request for ${sessionId}`,
    () =>
      inbox.get(s.pk)?.find((m) => m.rumor.tags.some((t) => t[0] === 'floe-session' && t[1] === sessionId)),
    WAIT,
  );
}

/** Row counts and hashes of every table (what a refused decision must leave unchanged). */
async function snapshot(): Promise<string> {
  const tables = await backend().db.adminQuery<{ t: string }>(
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

function refused(r: { status: number; body: any }, status: number, code: string, reason?: string) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.code, code, JSON.stringify(r.body));
  if (reason) assert.equal(r.body.reason, reason, JSON.stringify(r.body));
}

/**
 * `sign.open` sent straight to every signer, as a coordinator that skips the approval stage
 * would: signed with the coordinator's own identity key (the signers allowlist it).
 */
async function openOnEverySigner(s: any, approvals: unknown[] | undefined) {
  const { identity } = coordinatorIdentity(join(cluster.dir, 'coordinator'));
  try {
    const signers = (await cluster.api('GET', '/v1/signers')).body.items;
    const included = [1, 2, 3];
    const open = {
      key_id: s.key_id,
      session_id: s.id,
      attempt: 1,
      included,
      intent: s.intent,
      message: s.message,
      intent_hash: s.intent_hash,
      attempt_id: attemptIdHex({
        sessionId: s.id,
        digest: Buffer.from(s.message, 'hex'),
        intentHash: Buffer.from(s.intent_hash, 'hex'),
        attempt: 1,
        included,
      }),
    };
    return await Promise.allSettled(
      signers.map((sg: any) =>
        new SignerClient({ url: sg.url, signerIdentity: sg.identity, identity }).call(
          'signOpen',
          (approvals ? { ...open, approvals } : open) as never,
        ),
      ),
    );
  } finally {
    identity.dispose();
  }
}

before(async () => {
  relay = await spawnRelay();
  cluster = await startCluster({ signers: 3, env: { FLOE_APPROVAL_RELAYS: relay.url } });
  await cluster.registerSigners();
  pool = new SimplePool();
  pool.idleTimeout = 0;
  // Each steward listens for gift wraps addressed to it, as a NIP-17 client does.
  for (const s of [a, b, c]) {
    inbox.set(s.pk, []);
    const sub = pool.subscribeMany(
      [relay.url],
      { kinds: [1059], '#p': [s.pk] },
      {
        onevent: (wrap) => {
          try {
            inbox.get(s.pk)!.push({ rumor: ntNip17.unwrapEvent(wrap, s.sk), wrap });
          } catch {
            // not for this steward's key: not a message it can read
          }
        },
      },
    );
    closers.push(() => sub.close());
  }
});

after(async () => {
  for (const close of closers) close();
  pool?.destroy();
  await cluster?.close();
  await relay?.kill();
});

describe('steward approvals end to end (3 stewards, 2 to approve, veto)', () => {
  let key: any;
  before(async () => {
    key = await createKey({
      stewards: [a.npub, b.npub, c.pk],
      threshold: 2,
      veto: true,
      expires_in_s: 120,
      required_for: { nostr_kinds: [1] },
    });
  });

  it('the key carries the policy every member certified', () => {
    const p = key.approval_policy;
    assert.deepEqual(p.stewards, [a.pk, b.pk, c.pk].sort());
    assert.deepEqual(p.stewards_npub.slice().sort(), [a.npub, b.npub, c.npub].sort());
    assert.equal(p.threshold, 2);
    assert.equal(p.veto, true);
    assert.equal(p.revision, 0);
    assert.equal(
      p.policy_hash,
      policyStateHashHex(key.id, {
        revision: 0,
        policy: normalizePolicy({
          stewards: [a.pk, b.pk, c.pk],
          threshold: 2,
          veto: true,
          expires_in_s: 120,
          required_for: { nostr_kinds: [1] },
        }),
      }),
    );
  });

  it('an intent the policy does not cover signs at once', async () => {
    const r = await cluster.api('POST', '/v1/sessions', {
      key_id: key.id,
      nostr_event: { kind: 7, content: '+' },
      wait: WAIT,
    });
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
  });

  it('stewards get the request by NIP-17; two approve (relay and API); the event is signed and published', async () => {
    const s = await newSession(key.id, 'we sell the old car', { publish: { relays: [relay.url] } });
    assert.deepEqual(s.approvals, []);
    // Every steward unwraps its request with nostr-tools: from the coordinator, naming the session,
    // the intent hash, the deadline and what is signed.
    for (const st of [a, b, c]) {
      const { rumor } = await requestFor(st, s.id);
      assert.equal(rumor.kind, 14);
      assert.equal(rumor.pubkey, cluster.coordinatorIdentity);
      assert.ok(rumor.tags.some((t) => t[0] === 'p' && t[1] === st.pk));
      assert.ok(rumor.tags.some((t) => t[0] === 'floe-intent' && t[1] === s.intent_hash));
      assert.ok(
        rumor.tags.some((t) => t[0] === 'floe-deadline' && Number(t[1]) === Math.floor(s.expires_at / 1000)),
      );
      for (const part of [
        s.id,
        s.intent_hash,
        'kind 1',
        'we sell the old car',
        new Date(s.expires_at).toISOString(),
      ]) {
        assert.ok(rumor.content.includes(part), `the request mentions ${part}`);
      }
    }
    const pending = (await cluster.api('GET', `/v1/approvals?status=pending&steward=${a.npub}`)).body;
    const item = pending.items.find((x: any) => x.session_id === s.id);
    assert.ok(item, 'listed for steward a');
    assert.deepEqual(item.waiting_for.slice().sort(), [a.pk, b.pk, c.pk].sort());
    assert.match(item.summary, /kind 1/);

    // Steward a answers on the relay; the coordinator reads it from there.
    const fromA = decide(a, { sessionId: s.id, intentHash: s.intent_hash, content: 'fine by me' });
    await Promise.any(pool.publish([relay.url], fromA));
    const one = await until(
      'a’s decision read from the relay',
      async () => {
        const x = await session(s.id);
        return x.approvals.length === 1 && x;
      },
      WAIT,
    );
    assert.equal(one.status, 'awaiting_approval', 'one approval is not a quorum');
    assert.deepEqual(
      one.approvals.map((d: any) => [d.steward, d.decision, d.event_id]),
      [[a.pk, 'approve', fromA.id]],
    );
    const forA = (await cluster.api('GET', `/v1/approvals?status=pending&steward=${a.npub}`)).body;
    assert.ok(!forA.items.some((x: any) => x.session_id === s.id), 'a decided: no longer waits for a');

    // Steward b answers through the API.
    const r = await submit(s.id, decide(b, { sessionId: s.id, intentHash: s.intent_hash }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const done = await until(
      'the approved session completes',
      async () => {
        const x = await session(s.id);
        return x.status === 'completed' && x;
      },
      WAIT,
    );
    assert.ok(verifyEvent(done.event), 'nostr-tools verifies the signed event');
    assert.equal(done.event.pubkey, key.x_only_public_key);
    assert.equal(done.final_event_id, done.event.id);
    assert.deepEqual(done.approvals.map((d: any) => d.steward).sort(), [a.pk, b.pk].sort());
    // Published once signed (services/publish.ts), like any session with `publish`.
    assert.ok(done.publish, 'the session asked to be published');
    // (What the session says of its publishing, for the message if the event never shows up.)
    let publishing: unknown = done.publish;
    const onRelay = await until(
      () => `the signed event is on the relay (the session's publish: ${JSON.stringify(publishing)})`,
      async () => {
        const got = await pool.querySync([relay.url], { ids: [done.event.id] });
        if (got.length > 0) return got[0];
        publishing = (await session(s.id)).publish;
        return undefined;
      },
      WAIT,
    );
    assert.ok(verifyEvent(onRelay));
    // Every decision is audited with the session (who, what, which event, how it came).
    const audit = await backend().db.adminQuery<{ data: any }>(
      `SELECT data FROM audit_events WHERE subject_id = $1 AND kind = 'session.approval_recorded' ORDER BY id`,
      [s.id],
    );
    assert.deepEqual(
      audit.rows.map((x) => [x.data.steward, x.data.decision, x.data.event_id, x.data.via]),
      [
        [a.pk, 'approve', fromA.id, 'relay'],
        [b.pk, 'approve', done.approvals.find((d: any) => d.steward === b.pk).event_id, 'api'],
      ],
    );
    // c's late decision finds nothing to decide.
    refused(
      await submit(s.id, decide(c, { sessionId: s.id, intentHash: s.intent_hash })),
      409,
      'session_conflict',
    );
  });

  it('one rejection with veto fails the session (approval_rejected)', async () => {
    const s = await newSession(key.id, 'we buy a boat');
    await submit(s.id, decide(a, { sessionId: s.id, intentHash: s.intent_hash }));
    const r = await submit(
      s.id,
      decide(c, { sessionId: s.id, intentHash: s.intent_hash, decision: 'reject' }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'failed');
    assert.equal(r.body.error_code, 'approval_rejected');
    assert.equal(r.body.signature, null);
    assert.deepEqual(
      r.body.approvals.map((d: any) => [d.steward, d.decision]).sort(),
      [
        [a.pk, 'approve'],
        [c.pk, 'reject'],
      ].sort(),
    );
  });

  it('decisions that do not count are refused with their reason and change nothing', async () => {
    const s = await newSession(key.id, 'a new roof');
    const other = await newSession(key.id, 'a new door');
    const valid = decide(a, { sessionId: s.id, intentHash: s.intent_hash });
    assert.equal((await submit(s.id, valid)).status, 200);
    const before = await snapshot();
    const at = Math.floor(Date.now() / 1000);
    refused(
      await submit(s.id, decide(mallory, { sessionId: s.id, intentHash: s.intent_hash })),
      422,
      'approval_invalid',
      'not_steward',
    );
    refused(
      await submit(s.id, decide(b, { sessionId: other.id, intentHash: other.intent_hash })),
      422,
      'approval_invalid',
      'wrong_session',
    );
    refused(
      await submit(s.id, decide(b, { sessionId: s.id, intentHash: other.intent_hash })),
      422,
      'approval_invalid',
      'wrong_intent',
    );
    refused(
      await submit(
        s.id,
        decide(b, {
          sessionId: s.id,
          intentHash: s.intent_hash,
          createdAt: Math.floor(s.expires_at / 1000) + 10,
        }),
      ),
      422,
      'approval_invalid',
      'outside_deadline',
    );
    refused(
      await submit(s.id, decide(b, { sessionId: s.id, intentHash: s.intent_hash, decision: 'approved' })),
      422,
      'approval_invalid',
      'not_a_decision',
    );
    refused(
      await submit(s.id, { ...decide(b, { sessionId: s.id, intentHash: s.intent_hash }), content: 'edited' }),
      422,
      'approval_invalid',
      'bad_signature',
    );
    refused(await submit(s.id, valid), 409, 'approval_duplicate', 'replayed');
    refused(
      await submit(
        s.id,
        decide(a, { sessionId: s.id, intentHash: s.intent_hash, decision: 'reject', createdAt: at }),
      ),
      409,
      'approval_duplicate',
      'already_decided',
    );
    assert.equal(await snapshot(), before, 'refused decisions changed nothing');
    assert.equal((await session(s.id)).status, 'awaiting_approval');
  });

  it('a coordinator that skips the stewards gets approval_missing from every signer, and no share', async () => {
    const s = await newSession(key.id, 'skip the family');
    const fromA = decide(a, { sessionId: s.id, intentHash: s.intent_hash });
    assert.equal((await submit(s.id, fromA)).status, 200);
    const forged = [fromA, decide(mallory, { sessionId: s.id, intentHash: s.intent_hash })];
    const fake = { ...decide(b, { sessionId: s.id, intentHash: s.intent_hash }), pubkey: c.pk };
    for (const approvals of [undefined, [fromA], forged, [fromA, fake]]) {
      const answers = await openOnEverySigner(s, approvals);
      for (const x of answers) {
        assert.equal(x.status, 'rejected');
        const e = (x as PromiseRejectedResult).reason;
        assert.ok(e instanceof FloeError && e.code === 'approval_missing', String(e));
      }
    }
    // A coordinator whose gate let the session through (here: moved by hand) gets no signature.
    await backend().db.adminQuery(
      "UPDATE signing_sessions SET status = 'pending' WHERE session_id = $1 AND status = 'awaiting_approval'",
      [s.id],
    );
    const after = await cluster.coordinator!.coordinator.sessions.drive('default', s.id);
    assert.equal(after.status, 'failed');
    assert.equal(after.finalSignature, null);
    assert.equal(after.errorCode, 'no_quorum', 'every signer refused');
  });
});

describe('steward approvals: deadline', () => {
  let key: any;
  before(async () => {
    key = await createKey({ stewards: [a.pk, b.pk, c.pk], threshold: 2, veto: true, expires_in_s: 2 });
  });

  it('silence until the deadline expires the session; a decision after it is refused', async () => {
    const s = await newSession(key.id, 'nobody answers');
    assert.ok(s.expires_at - s.created_at <= 2000);
    const done = await until(
      'the unanswered session expires',
      async () => {
        const x = await session(s.id);
        return x.status === 'expired' && x;
      },
      WAIT,
    );
    assert.equal(done.error_code, 'session_expired');
    assert.equal(done.signature, null);
    refused(
      await submit(s.id, decide(a, { sessionId: s.id, intentHash: s.intent_hash })),
      410,
      'session_expired',
    );
  });
});

describe('steward approvals: second factor (registered P-256 devices)', () => {
  const [da, db, stranger] = [device(), device(), device()];
  let key: any;
  before(async () => {
    key = await createKey({
      stewards: [a.npub, b.npub, c.npub],
      threshold: 2,
      expires_in_s: 120,
      devices: { [a.npub]: [da.uncompressed], [b.pk]: [db.publicKey] },
      require_device: true,
    });
  });

  it('a registered device counts; an unregistered device or none is refused; the signers check devices too', async () => {
    assert.deepEqual(key.approval_policy.devices, { [a.pk]: [da.publicKey], [b.pk]: [db.publicKey] });
    const s = await newSession(key.id, 'tap to sign');
    const d = (st: Steward, dev?: typeof da) =>
      decide(st, { sessionId: s.id, intentHash: s.intent_hash, ...(dev ? { device: { d: dev } } : {}) });
    assert.equal((await submit(s.id, d(a, da))).status, 200);
    refused(await submit(s.id, d(b, stranger)), 422, 'approval_invalid', 'device_unregistered');
    refused(await submit(s.id, d(b, da)), 422, 'approval_invalid', 'device_unregistered');
    refused(await submit(s.id, d(b)), 422, 'approval_invalid', 'device_missing');
    assert.equal((await submit(s.id, d(b, db))).status, 200);
    const done = await until(
      'signed with both device approvals',
      async () => {
        const x = await session(s.id);
        return x.status === 'completed' && x;
      },
      WAIT,
    );
    assert.ok(verifyEvent(done.event));
  });
});

describe('steward approvals: changing the policy takes the stewards’ quorum', () => {
  let key: any;
  before(async () => {
    key = await createKey({ stewards: [a.pk, b.pk, c.pk], threshold: 2, veto: false, expires_in_s: 120 });
  });

  it('refused without a quorum of the current stewards; applied by every member with it', async () => {
    const next = { stewards: [a.pk, b.pk, c.pk], threshold: 3, veto: true, expires_in_s: 120 };
    const path = `/v1/keys/${key.id}/approval-policy`;
    const none = await cluster.api('PUT', path, { approval_policy: next });
    refused(none, 403, 'approval_missing');
    const { from, policy_hash: to, revision, tags } = none.body;
    assert.equal(from, key.approval_policy.policy_hash);
    assert.equal(revision, 1);
    assert.deepEqual(tags, [
      ['d', `floe-policy:${key.id}`],
      ['key', key.id],
      ['from', from],
      ['policy', to],
      ['decision', 'approve'],
    ]);
    const yes = (st: Steward) => decidePolicy(st, { keyId: key.id, from, to });
    refused(
      await cluster.api('PUT', path, { approval_policy: next, approvals: [yes(a)] }),
      403,
      'approval_missing',
    );
    refused(
      await cluster.api('PUT', path, { approval_policy: next, approvals: [yes(a), yes(mallory)] }),
      403,
      'approval_missing',
    );
    const ok = await cluster.api('PUT', path, { approval_policy: next, approvals: [yes(a), yes(c)] });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.approval_policy.revision, 1);
    assert.equal(ok.body.approval_policy.threshold, 3);
    assert.equal(ok.body.approval_policy.policy_hash, to);
    // The same approvals again ask for revision 2: they prove nothing for it.
    refused(
      await cluster.api('PUT', path, { approval_policy: next, approvals: [yes(a), yes(c)] }),
      403,
      'approval_missing',
    );

    // The signers hold the new policy: two approvals no longer sign, three do.
    const s = await newSession(key.id, 'under the new policy');
    const two = [a, b].map((st) => decide(st, { sessionId: s.id, intentHash: s.intent_hash }));
    for (const e of two) assert.equal((await submit(s.id, e)).status, 200);
    assert.equal((await session(s.id)).status, 'awaiting_approval', 'three are needed now');
    for (const x of await openOnEverySigner(s, two)) {
      assert.equal(x.status, 'rejected', 'two approvals prove the old quorum, not the new one');
      assert.equal(((x as PromiseRejectedResult).reason as FloeError).code, 'approval_missing');
    }
    assert.equal((await submit(s.id, decide(c, { sessionId: s.id, intentHash: s.intent_hash }))).status, 200);
    const done = await until(
      'signed with three approvals',
      async () => {
        const x = await session(s.id);
        return x.status === 'completed' && x;
      },
      WAIT,
    );
    assert.ok(verifyEvent(done.event));
  });
});
