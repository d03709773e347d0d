/**
 * The signing orchestrator (src/coordinator/signing.ts) over production signer engines in
 * memory and a storage port that can lose races or fail on demand: whatever way an attempt
 * is abandoned between round 1 and round 2, the signers' live nonces are aborted at once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { CoordinatorStore, SessionPatch } from '../../src/coordinator/ports.js';
import type { SignerClient } from '../../src/coordinator/signer-client.js';
import { SigningOrchestrator } from '../../src/coordinator/signing.js';
import {
  dealerSplit,
  encodePublicKeyPackage,
  toHex,
  verifySignature,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { resolveIntent } from '../../src/domain/intent.js';
import type { KeyRecord, SessionRecord, SignerRecord } from '../../src/domain/records.js';
import type { SessionStatus } from '../../src/domain/vocabulary.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { RequestOf, ResponseOf, SignerMessageName } from '../../src/protocol/messages/index.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { sessionRecord } from '../helpers/session-record.js';

type Trap = (to: SessionStatus) => 'lose' | 'throw' | undefined;
/** Make a signer's answer to a message fail with this error instead (a refusal, an unverified answer). */
type Refuse = (signer: string, name: SignerMessageName) => FloeError | undefined;

function setup(
  trap: Trap = () => undefined,
  refuse: Refuse = () => undefined,
  /** The session was created in its first attempt (NewSession.firstAttempt), on members 1 and 2. */
  born = false,
) {
  const clock = new FakeClock();
  const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 2);
  const engines = shares.map((k) => {
    const store = new MemoryStore();
    store.putKey({
      keyId: 'k1',
      identifier: k.identifier,
      status: 'active',
      origin: 'dealer',
      keyPackage: k,
      createdAt: 0,
    });
    return new SigningEngine({ store, clock });
  });
  const calls: string[] = [];
  const clientFor = (s: SignerRecord) => {
    const e = engines[Number(s.id.slice(1)) - 1]!;
    const client = {
      async exchange<K extends SignerMessageName>(name: K, body: RequestOf<K>) {
        // In memory there is no envelope: the answers prove nothing (nothing here blames).
        return {
          body: await client.call(name, body),
          evidence: { signer: s.identityPubkey, envelope: '', body: '' },
        };
      },
      async call<K extends SignerMessageName>(name: K, body: RequestOf<K>): Promise<ResponseOf<K>> {
        calls.push(`${s.id}:${name}`);
        const refusal = refuse(s.id, name);
        if (refusal) throw refusal;
        const b = body as never;
        if (name === 'signOpen') return e.open(b) as ResponseOf<K>;
        if (name === 'signRound2') return e.round2(b) as ResponseOf<K>;
        if (name === 'signAbort') return e.abort(b) as ResponseOf<K>;
        throw new Error(`unexpected ${name}`);
      },
    };
    return client as unknown as SignerClient;
  };
  const signers: SignerRecord[] = [1, 2].map((i) => ({
    id: `s${i}`,
    name: null,
    url: `http://s${i}`,
    identityPubkey: '00'.repeat(32),
    status: 'active',
    faultCount: 0,
    quarantined: false,
    quarantinedAt: null,
    quarantineOverride: false,
    lastSeenAt: 1,
    lastLatencyMs: 1,
    createdAt: 0,
  }));
  const key: KeyRecord = {
    id: 'k1',
    tenantId: 't',
    label: null,
    threshold: 2,
    n: 2,
    groupPublicKey: null,
    xOnlyPublicKey: toHex(xOnlyGroupKey(pub)),
    publicKeyPackage: encodePublicKeyPackage(pub),
    members: signers.map((s, i) => ({ identifier: i + 1, signer_id: s.id, identity: s.identityPubkey })),
    origin: 'dealer',
    tweak: null,
    status: 'active',
    createdAt: 0,
    updatedAt: 0,
  };
  const message = toHex(randomBytes(32));
  const intent = { type: 'message' as const, message };
  let session: SessionRecord = sessionRecord({
    sessionId: 'ses_orchestrator_test',
    tenantId: 't',
    keyId: 'k1',
    messageHash: message,
    intentHash: toHex(resolveIntent(intent, { xOnlyKey: new Uint8Array(32) }).intentHash),
    status: born ? 'nonce_collection' : 'pending',
    attempt: born ? 1 : 0,
    participants: born ? [1, 2] : [],
    expiresAt: clock.now() + 60_000,
  });
  const faults: string[] = [];
  const moves: SessionStatus[] = [];
  const store: CoordinatorStore = {
    getKey: async () => key,
    listSigners: async () => signers,
    getSession: async () => session,
    async transitionSession(_t, _id, from, expectAttempt, to, patch: SessionPatch) {
      moves.push(to);
      const t = trap(to);
      if (t === 'throw') throw new FloeError('unavailable', 'the database went away');
      if (t === 'lose' || !from.includes(session.status) || session.attempt !== expectAttempt) return null;
      session = {
        ...session,
        ...patch,
        status: to,
        attempt: to === 'nonce_collection' ? (patch.attempt ?? session.attempt + 1) : session.attempt,
      };
      return session;
    },
    async commitAttempts(t, items) {
      const out = [];
      for (const i of items) {
        out.push(
          await this.transitionSession(t, i.sessionId, ['nonce_collection'], i.attempt, 'signing', i.patch),
        );
      }
      return out;
    },
    async completeAttempts(t, items) {
      const out = [];
      for (const i of items) {
        const agg = await this.transitionSession(
          t,
          i.sessionId,
          ['signing'],
          i.attempt,
          'aggregating',
          i.shares,
        );
        out.push(
          agg &&
            (await this.transitionSession(
              t,
              i.sessionId,
              ['aggregating'],
              i.attempt,
              'completed',
              i.completion,
            )),
        );
      }
      return out;
    },
    async transitionSessions(t, moves) {
      const out = [];
      for (const m of moves) {
        out.push(
          await this.transitionSession(t, m.sessionId, m.from, m.expectAttempt, m.to, m.patch, m.event),
        );
      }
      return out;
    },
    recordSignerFault: async (id, kind) => {
      faults.push(`${id}:${kind}`);
      return { faultCount: faults.length, quarantined: false };
    },
    recordSignerSeen: async () => {},
    audit: async () => {},
  };
  const orchestrator = new SigningOrchestrator({ store, clientFor, now: () => clock.now(), maxAttempts: 1 });
  return { orchestrator, engines, calls, pub, faults, moves, key, session: () => session };
}

describe('signing orchestrator', () => {
  it('signs over real engines (the harness works)', async () => {
    const { orchestrator, pub, session } = setup();
    const s = await orchestrator.drive('t', 'ses_orchestrator_test');
    assert.equal(s.status, 'completed');
    assert.ok(
      verifySignature(
        Buffer.from(s.finalSignature!, 'hex'),
        Buffer.from(session().messageHash, 'hex'),
        xOnlyGroupKey(pub),
      ),
    );
  });

  it('a race lost after round 1 aborts the attempt on every signer', async () => {
    const { orchestrator, engines, calls } = setup((to) => (to === 'signing' ? 'lose' : undefined));
    await orchestrator.drive('t', 'ses_orchestrator_test');
    assert.deepEqual(calls.filter((c) => c.endsWith('signAbort')).sort(), ['s1:signAbort', 's2:signAbort']);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      engines.map((e) => e.liveAttempts),
      [0, 0],
    );
  });

  it('an error after round 1 aborts the attempt too', async () => {
    const { orchestrator, engines } = setup((to) => (to === 'signing' ? 'throw' : undefined));
    await assert.rejects(orchestrator.drive('t', 'ses_orchestrator_test'), /database went away/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      engines.map((e) => e.liveAttempts),
      [0, 0],
    );
  });

  it('a session born in its first attempt signs in it, with no move of its own (even with one attempt allowed)', async () => {
    const { orchestrator, moves, key, session } = setup(undefined, undefined, true);
    const started = await orchestrator.choose(key, new Set());
    assert.ok(started);
    const s = await orchestrator.drive('t', 'ses_orchestrator_test', { session: session(), key, started });
    assert.equal(s.status, 'completed');
    assert.equal(s.attempt, 1);
    assert.deepEqual(moves, ['signing', 'aggregating', 'completed']);
  });

  it('without its members, such a session is driven as any: a new attempt (none left here)', async () => {
    const { orchestrator, moves, key, session } = setup(undefined, undefined, true);
    const s = await orchestrator.drive('t', 'ses_orchestrator_test', { session: session(), key });
    assert.equal(s.status, 'failed');
    assert.equal(s.errorCode, 'session_failed');
    assert.deepEqual(moves, ['failed']);
  });

  it('no abort once round 2 was sent', async () => {
    const { orchestrator, calls } = setup();
    await orchestrator.drive('t', 'ses_orchestrator_test');
    assert.equal(calls.filter((c) => c.endsWith('signAbort')).length, 0);
  });

  it('refusals, restarts, clock skew and unsigned answers exclude a signer but are never counted against it', async () => {
    for (const [name, err] of [
      ['signRound2', new FloeError('attempt_unknown', 'restarted')],
      ['signOpen', new FloeError('envelope_stale', 'clock skew')],
      ['signOpen', new FloeError('response_unverified', 'unsigned answer')],
      ['signOpen', new FloeError('signer_unreachable', 'down')],
      ['signRound2', new FloeError('policy_refused', 'not allowed')],
    ] as const) {
      const { orchestrator, faults } = setup(undefined, (id, n) =>
        id === 's2' && n === name ? err : undefined,
      );
      const s = await orchestrator.drive('t', 'ses_orchestrator_test');
      assert.equal(s.status, 'failed', `${err.code}: no other subset of a 2-of-2 key`);
      assert.deepEqual(faults, [], `${err.code} is not a fault`);
    }
  });
});
