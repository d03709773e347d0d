import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import type { SigningPackageJson } from '../../src/crypto/encoding.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  fromHex,
  type KeyPackage,
  sha256,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { SignOpenResponse } from '../../src/protocol/messages/sign.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { FrozenKeysPolicy, type SigningContext } from '../../src/signer/policy.js';
import { libsecpVerify } from '../helpers/independent.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

function refuses(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, `expected ${code}`);
}

interface Node {
  id: number;
  store: MemoryStore;
  engine: SigningEngine;
  policy: FrozenKeysPolicy;
}

function makeCluster(t: number, n: number, opts: { maxLive?: number; clock?: FakeClock } = {}) {
  const clock = opts.clock ?? new FakeClock();
  const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), t, n);
  const nodes: Node[] = shares.map((k: KeyPackage) => {
    const store = new MemoryStore();
    store.putKey({
      keyId: 'k1',
      identifier: k.identifier,
      status: 'active',
      origin: 'dealer',
      keyPackage: k,
      createdAt: 0,
    });
    const policy = new FrozenKeysPolicy();
    const engine = new SigningEngine({
      store,
      clock,
      policy,
      ...(opts.maxLive ? { maxLiveAttempts: opts.maxLive } : {}),
    });
    return { id: k.identifier, store, engine, policy };
  });
  return { nodes, pub, clock, shares };
}

function openReq(session: string, msg: Uint8Array, attempt: number, included: number[], keyId = 'k1') {
  return openRequest({ keyId, sessionId: session, attempt, included, intent: msg });
}

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

describe('signer engine: a complete signing', () => {
  it('two signers sign; the aggregate verifies with libsecp256k1', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const msg = new Uint8Array(randomBytes(32));
    const [a, b] = [nodes[0]!, nodes[2]!];
    const req = openReq('s1', msg, 1, [1, 3]);
    const opens = [a.engine.open(req), b.engine.open(req)];
    const pkg = pkgOf(msg, opens);
    const shares = [a, b].map((nd) =>
      decodeSignatureShare(
        nd.engine.round2({ key_id: 'k1', session_id: 's1', attempt_id: req.attempt_id, signing_package: pkg })
          .share,
      ),
    );
    const sig = aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, shares);
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(pub)));
    assert.equal(a.engine.liveAttempts, 0, 'a consumed attempt frees its slot');
    assert.equal(a.store.markers.length, 1);
    assert.equal(a.store.audit.filter((e) => e.kind === 'sign').length, 1);
  });
});

describe('signer engine: open (rule 2)', () => {
  let c: ReturnType<typeof makeCluster>;
  const msg = new Uint8Array(32).fill(5);
  beforeEach(() => {
    c = makeCluster(2, 3);
  });

  it('is idempotent for the same request', () => {
    const e = c.nodes[0]!.engine;
    const r = openReq('s', msg, 1, [1, 2]);
    assert.deepEqual(e.open(r), e.open(r));
    assert.equal(e.liveAttempts, 1);
  });

  it('the same attempt with a different fingerprint is a conflict', () => {
    const nd = c.nodes[0]!;
    nd.store.putKey({ ...nd.store.getKey('k1')!, keyId: 'k2' });
    const r = openReq('s', msg, 1, [1, 2]);
    nd.engine.open(r);
    refuses(() => nd.engine.open({ ...r, key_id: 'k2' }), 'attempt_conflict');
    // Same attempt number, other included set (so another attempt id): conflict too.
    refuses(() => nd.engine.open(openReq('s', msg, 1, [1, 3])), 'attempt_conflict');
  });

  it('a higher attempt replaces the live one; a lower one is refused', () => {
    const e = c.nodes[0]!.engine;
    const r1 = openReq('s', msg, 1, [1, 2]);
    const r2 = openReq('s', msg, 2, [1, 3]);
    const o1 = e.open(r1);
    const o2 = e.open(r2);
    assert.notDeepEqual(o1.commitments, o2.commitments);
    assert.equal(e.liveAttempts, 1);
    refuses(() => e.open(r1), 'attempt_superseded');
    // The replaced attempt can no longer sign.
    const other = c.nodes[1]!.engine.open(r1);
    refuses(
      () =>
        e.round2({
          key_id: 'k1',
          session_id: 's',
          attempt_id: r1.attempt_id,
          signing_package: pkgOf(msg, [o1, other]),
        }),
      'attempt_unknown',
    );
  });

  it('checks the attempt id, membership and own inclusion', () => {
    const e = c.nodes[0]!.engine;
    refuses(
      () => e.open({ ...openReq('s', msg, 1, [1, 2]), attempt_id: 'ab'.repeat(32) }),
      'attempt_id_mismatch',
    );
    refuses(() => e.open(openReq('s', msg, 1, [2, 3])), 'own_identifier_missing');
    refuses(() => e.open(openReq('s', msg, 1, [1, 4])), 'not_a_member');
    refuses(() => e.open(openReq('s', msg, 1, [1])), 'invalid_request');
    refuses(() => e.open({ ...openReq('s', msg, 1, [2, 1]) }), 'invalid_request');
    refuses(() => e.open(openReq('s', msg, 1, [1, 2], 'nope')), 'unknown_key');
    c.nodes[0]!.store.setKeyStatus('k1', 'pending');
    refuses(() => e.open(openReq('s', msg, 1, [1, 2])), 'key_not_active');
  });

  it('policy gates apply at open', () => {
    c.nodes[0]!.policy.frozen.add('k1');
    refuses(() => c.nodes[0]!.engine.open(openReq('s', msg, 1, [1, 2])), 'policy_refused');
  });
});

describe('signer engine: round 2 verifies before consuming (rule 3)', () => {
  it('each bad package is refused without consuming; the same attempt then signs correctly', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const msg = new Uint8Array(randomBytes(32));
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const req = openReq('s', msg, 1, [1, 2]);
    const o1 = n1.engine.open(req);
    const o2 = n2.engine.open(req);
    // A commitment from a member outside the included set.
    const o3 = n3.engine.open(openReq('other', msg, 1, [1, 3]));
    const good = pkgOf(msg, [o1, o2]);
    const r2 = (signing_package: SigningPackageJson) =>
      n1.engine.round2({ key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package });

    refuses(() => r2({ ...good, message: toHex(new Uint8Array(32).fill(9)) }), 'message_mismatch');
    refuses(() => r2(pkgOf(msg, [o1])), 'wrong_commitment_count');
    refuses(() => r2(pkgOf(msg, [o1, o2, o3])), 'wrong_commitment_count');
    refuses(() => r2(pkgOf(msg, [o1, o3])), 'identifier_not_included');
    const altered = structuredClone(good);
    altered.commitments[0]!.hiding = o2.commitments.hiding;
    refuses(() => r2(altered), 'own_commitment_mismatch');
    n1.policy.frozen.add('k1');
    refuses(() => r2(good), 'policy_refused');
    n1.policy.frozen.delete('k1');
    assert.equal(n1.store.markers.length, 0, 'no refusal wrote a marker');
    assert.equal(n1.engine.liveAttempts, 1, 'nonces still live');

    const s1 = decodeSignatureShare(r2(good).share);
    const s2 = decodeSignatureShare(
      n2.engine.round2({ key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: good })
        .share,
    );
    const sig = aggregate(pub, { message: msg, commitments: good.commitments.map(decodeCommitments) }, [
      s1,
      s2,
    ]);
    assert.ok(libsecpVerify(sig, msg, xOnlyGroupKey(pub)));
  });

  it('a package without this signer is refused as own_identifier_missing', () => {
    const { nodes } = makeCluster(2, 3);
    const msg = new Uint8Array(32).fill(1);
    const req = openReq('s', msg, 1, [1, 2, 3]);
    const [o1, o2, o3] = nodes.map((n) => n.engine.open(req));
    refuses(
      () =>
        nodes[0]!.engine.round2({
          key_id: 'k1',
          session_id: 's',
          attempt_id: req.attempt_id,
          signing_package: pkgOf(msg, [o2!, o3!]),
        }),
      'own_identifier_missing',
    );
    void o1;
  });
});

describe('signer engine: consumption markers (rules 4 and 7)', () => {
  it('a second sign for a consumed attempt is consumed_nonce_replay, also after a restart', () => {
    const { nodes, clock } = makeCluster(2, 3);
    const msg = new Uint8Array(32).fill(3);
    const [n1, n2] = nodes as [Node, Node];
    const req = openReq('s', msg, 1, [1, 2]);
    const pkg = pkgOf(msg, [n1.engine.open(req), n2.engine.open(req)]);
    const body = { key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg };
    n1.engine.round2(body);
    refuses(() => n1.engine.round2(body), 'consumed_nonce_replay');
    refuses(() => n1.engine.open(req), 'consumed_nonce_replay');
    // Restart: a new engine on the same store has no live nonce, but the marker remains.
    const restarted = new SigningEngine({ store: n1.store, clock });
    assert.equal(restarted.liveAttempts, 0);
    refuses(() => restarted.round2(body), 'consumed_nonce_replay');
    refuses(() => restarted.open(req), 'consumed_nonce_replay');
    assert.equal(n1.store.markers.length, 1);
  });

  it('a failed marker write returns an error, keeps the nonces live, and a retry releases exactly one share', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const msg = new Uint8Array(32).fill(4);
    const [n1, n2] = nodes as [Node, Node];
    const req = openReq('s', msg, 1, [1, 2]);
    const pkg = pkgOf(msg, [n1.engine.open(req), n2.engine.open(req)]);
    const body = { key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg };
    n1.store.failMarkers = true;
    refuses(() => n1.engine.round2(body), 'marker_write_failed');
    assert.equal(n1.engine.liveAttempts, 1);
    assert.equal(n1.store.markers.length, 0);
    n1.store.failMarkers = false;
    const released: unknown[] = [n1.engine.round2(body)];
    try {
      released.push(n1.engine.round2(body));
    } catch (e) {
      assert.equal((e as FloeError).code, 'consumed_nonce_replay');
    }
    assert.equal(released.length, 1, 'exactly one share released');
    // And the released share is a correct one.
    const s1 = decodeSignatureShare((released[0] as { share: unknown }).share);
    const s2 = decodeSignatureShare(n2.engine.round2(body).share);
    aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, [s1, s2]);
  });
});

describe('signer engine: expiry, cap and abort (rules 5, 6)', () => {
  it('attempts expire after the TTL', () => {
    const { nodes, clock } = makeCluster(2, 3);
    const msg = new Uint8Array(32).fill(6);
    const [n1, n2] = nodes as [Node, Node];
    const req = openReq('s', msg, 1, [1, 2]);
    const pkg = pkgOf(msg, [n1.engine.open(req), n2.engine.open(req)]);
    clock.advance(599_999);
    assert.equal(n1.engine.sweep(), 0);
    clock.advance(1);
    refuses(
      () =>
        n1.engine.round2({ key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg }),
      'attempt_unknown',
    );
    assert.equal(n1.engine.liveAttempts, 0);
    assert.equal(n1.store.markers.length, 0);
  });

  it('the live-attempt cap refuses explicitly; replacing a live session is still allowed', () => {
    const { nodes } = makeCluster(2, 3, { maxLive: 2 });
    const e = nodes[0]!.engine;
    const msg = new Uint8Array(32).fill(7);
    e.open(openReq('a', msg, 1, [1, 2]));
    e.open(openReq('b', msg, 1, [1, 2]));
    refuses(() => e.open(openReq('c', msg, 1, [1, 2])), 'attempt_cap_reached');
    e.open(openReq('b', msg, 2, [1, 3]));
    assert.equal(e.abort({ session_id: 'a' }).aborted, 1);
    e.open(openReq('c', msg, 1, [1, 2]));
    assert.equal(e.liveAttempts, 2);
  });

  it('abort wipes only the named attempt', () => {
    const { nodes } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    const msg = new Uint8Array(32).fill(8);
    const r = openReq('a', msg, 1, [1, 2]);
    e.open(r);
    assert.equal(e.abort({ session_id: 'a', attempt_id: 'cd'.repeat(32) }).aborted, 0);
    assert.equal(e.abort({ session_id: 'a', attempt_id: r.attempt_id }).aborted, 1);
    assert.equal(e.liveAttempts, 0);
    // A never-consumed attempt may be opened again with fresh nonces.
    e.open(r);
  });
});

/**
 * The live attempt's nonce buffers, reached at runtime through the engine's private `live`
 * map (production code has no test hook for this).
 */
function liveNonces(engine: SigningEngine, sessionId: string): Uint8Array[] {
  const live = (
    engine as unknown as { live: Map<string, { nonces: { hiding: Uint8Array; binding: Uint8Array } }> }
  ).live;
  const a = live.get(sessionId);
  assert.ok(a, `a live attempt for session ${sessionId}`);
  const bufs = [a.nonces.hiding, a.nonces.binding];
  for (const b of bufs) {
    assert.ok(b instanceof Uint8Array && b.length === 32, 'a 32-byte nonce buffer');
    assert.ok(
      b.some((x) => x !== 0),
      'a live nonce is not zero',
    );
  }
  return bufs;
}

function assertWiped(bufs: Uint8Array[], when: string) {
  for (const b of bufs)
    assert.ok(
      b.every((x) => x === 0),
      `nonce buffer overwritten after ${when}`,
    );
}

describe('signer engine: nonce buffers are overwritten, not only dropped (rule 5)', () => {
  const msg = new Uint8Array(32).fill(0x21);

  it('after abort', () => {
    const { nodes } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    e.open(openReq('s', msg, 1, [1, 2]));
    const bufs = liveNonces(e, 's');
    assert.equal(e.abort({ session_id: 's' }).aborted, 1);
    assertWiped(bufs, 'abort');
  });

  it('after replacement by a higher attempt (the new attempt has fresh, live nonces)', () => {
    const { nodes } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    e.open(openReq('s', msg, 1, [1, 2]));
    const old = liveNonces(e, 's');
    e.open(openReq('s', msg, 2, [1, 3]));
    assertWiped(old, 'replacement');
    const now = liveNonces(e, 's');
    assert.notEqual(now[0], old[0]);
  });

  it('after expiry (the sweep at any entry point, and the timer sweep)', () => {
    const { nodes, clock } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    e.open(openReq('a', msg, 1, [1, 2]));
    e.open(openReq('b', msg, 1, [1, 2]));
    const a = liveNonces(e, 'a');
    const b = liveNonces(e, 'b');
    clock.advance(600_000);
    // An entry point for another session sweeps first.
    e.abort({ session_id: 'unrelated' });
    assertWiped(a, 'expiry (lazy sweep)');
    assertWiped(b, 'expiry (lazy sweep)');
    e.open(openReq('c', msg, 1, [1, 2]));
    const c = liveNonces(e, 'c');
    clock.advance(600_000);
    assert.equal(e.sweep(), 1);
    assertWiped(c, 'expiry (timer sweep)');
  });

  it('after use, and at shutdown', () => {
    const { nodes } = makeCluster(2, 3);
    const [n1, n2] = nodes as [Node, Node];
    const req = openReq('s', msg, 1, [1, 2]);
    const pkg = pkgOf(msg, [n1.engine.open(req), n2.engine.open(req)]);
    const used = liveNonces(n1.engine, 's');
    n1.engine.round2({ key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg });
    assertWiped(used, 'use');
    const held = liveNonces(n2.engine, 's');
    n2.engine.wipeAll();
    assertWiped(held, 'wipeAll');
  });
});

describe('signer engine: the high-water fence (rule 2)', () => {
  const msg = new Uint8Array(32).fill(0x22);

  it('after attempt 2 was aborted, attempt 1 of the session is refused', () => {
    const { nodes } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    e.open(openReq('s', msg, 2, [1, 3]));
    e.abort({ session_id: 's' });
    assert.equal(e.liveAttempts, 0, 'nothing live any more: only the fence remembers attempt 2');
    refuses(() => e.open(openReq('s', msg, 1, [1, 2])), 'attempt_superseded');
    // Other sessions and later attempts are not fenced.
    e.open(openReq('other', msg, 1, [1, 2]));
    e.open(openReq('s', msg, 3, [1, 2]));
  });

  it('after attempt 2 was signed, attempt 1 of the session is refused', () => {
    const { nodes } = makeCluster(2, 3);
    const [n1, n2] = nodes as [Node, Node];
    const r2 = openReq('s', msg, 2, [1, 2]);
    const pkg = pkgOf(msg, [n1.engine.open(r2), n2.engine.open(r2)]);
    n1.engine.round2({ key_id: 'k1', session_id: 's', attempt_id: r2.attempt_id, signing_package: pkg });
    assert.equal(n1.engine.liveAttempts, 0);
    refuses(() => n1.engine.open(openReq('s', msg, 1, [1, 2])), 'attempt_superseded');
    refuses(() => n1.engine.open(openReq('s', msg, 1, [1, 3])), 'attempt_superseded');
  });

  it('holds nothing for sessions signed at their first attempt (there is no attempt before it)', () => {
    const { nodes } = makeCluster(2, 3);
    const [n1, n2] = nodes as [Node, Node];
    for (const sid of ['a', 'b', 'c']) {
      const r = openReq(sid, msg, 1, [1, 2]);
      const pkg = pkgOf(msg, [n1.engine.open(r), n2.engine.open(r)]);
      n1.engine.round2({ key_id: 'k1', session_id: sid, attempt_id: r.attempt_id, signing_package: pkg });
    }
    assert.equal(n1.engine.liveAttempts, 0);
    assert.equal(n1.engine.fencedSessions, 0, 'the fence stays empty');
    n1.engine.open(openReq('d', msg, 2, [1, 3]));
    assert.equal(n1.engine.fencedSessions, 1, 'a second attempt is fenced');
  });
});

describe('signer engine: intents (DESIGN §12)', () => {
  const event = { kind: 1, content: 'hello from floe', tags: [['t', 'floe']], created_at: 1_700_000_000 };

  it('signs the id of a Nostr event it computes itself under its own key', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const [n1, n2] = nodes as [Node, Node];
    const xOnlyKey = xOnlyGroupKey(pub);
    const req = openRequest({
      sessionId: 's',
      attempt: 1,
      included: [1, 2],
      intent: { type: 'nostr_event', event },
      xOnlyKey,
    });
    // The id is NIP-01's: sha256 of [0, pubkey, created_at, kind, tags, content].
    const id = sha256(
      new TextEncoder().encode(
        JSON.stringify([0, toHex(xOnlyKey), event.created_at, event.kind, event.tags, event.content]),
      ),
    );
    assert.equal(req.message, toHex(id));
    const pkg = pkgOf(id, [n1.engine.open(req), n2.engine.open(req)]);
    const body = { key_id: 'k1', session_id: 's', attempt_id: req.attempt_id, signing_package: pkg };
    const shares = [n1, n2].map((n) => decodeSignatureShare(n.engine.round2(body).share));
    const sig = aggregate(pub, { message: id, commitments: pkg.commitments.map(decodeCommitments) }, shares);
    assert.ok(libsecpVerify(sig, id, xOnlyKey));
  });

  it('refuses a coordinator whose digest or intent hash is not what the intent resolves to', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const e = nodes[0]!.engine;
    const xOnlyKey = xOnlyGroupKey(pub);
    const req = openRequest({
      sessionId: 's',
      attempt: 1,
      included: [1, 2],
      intent: { type: 'nostr_event', event },
      xOnlyKey,
    });
    const other = toHex(new Uint8Array(32).fill(9));
    refuses(() => e.open({ ...req, message: other }), 'intent_mismatch');
    refuses(() => e.open({ ...req, intent_hash: other }), 'intent_mismatch');
    // An event resolved under another pubkey (a coordinator lying about the key) is refused too.
    const wrongKey = openRequest({
      sessionId: 's',
      attempt: 1,
      included: [1, 2],
      intent: { type: 'nostr_event', event },
      xOnlyKey: new Uint8Array(32).fill(3),
    });
    refuses(() => e.open(wrongKey), 'intent_mismatch');
    // The same digest as a message intent has another intent hash, hence another attempt id.
    const asMessage = openRequest({
      sessionId: 's',
      attempt: 1,
      included: [1, 2],
      intent: fromHex(req.message, 'm', 32),
    });
    refuses(() => e.open({ ...asMessage, attempt_id: req.attempt_id }), 'attempt_id_mismatch');
    assert.equal(e.liveAttempts, 0, 'nothing was opened');
  });

  it('a malformed PSBT intent is refused at open (psbt_invalid), nothing opened', () => {
    const { nodes } = makeCluster(2, 3);
    const req = openRequest({ sessionId: 's', attempt: 1, included: [1, 2], intent: new Uint8Array(32) });
    refuses(
      () =>
        nodes[0]!.engine.open({
          ...req,
          intent: { type: 'bitcoin_psbt', psbt: 'cHNidP8=', network: 'regtest' },
        }),
      'psbt_invalid',
    );
    assert.equal(nodes[0]!.engine.liveAttempts, 0);
  });

  it('the policy sees the decoded intent at open and again at round 2', () => {
    const seen: SigningContext[] = [];
    let refuseKind: number | null = null;
    const policy = {
      check(ctx: SigningContext) {
        seen.push(ctx);
        if (ctx.intent.type === 'nostr_event' && ctx.intent.kind === refuseKind)
          throw new FloeError('policy_refused', `kind ${refuseKind} is not allowed`);
      },
    };
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
      return new SigningEngine({ store, clock: new FakeClock(), policy });
    });
    const xOnlyKey = xOnlyGroupKey(pub);
    const req = openRequest({
      sessionId: 's',
      attempt: 1,
      included: [1, 2],
      intent: { type: 'nostr_event', event },
      xOnlyKey,
    });
    const opens = engines.map((e) => e.open(req));
    const first = seen[0]!;
    assert.equal(first.phase, 'open');
    assert.equal(first.digest, req.message);
    assert.deepEqual(first.intent, {
      type: 'nostr_event',
      id: req.message,
      pubkey: toHex(xOnlyKey),
      ...event,
    });
    // The operator tightens the policy between the rounds: round 2 checks again and refuses.
    refuseKind = 1;
    const body = {
      key_id: 'k1',
      session_id: 's',
      attempt_id: req.attempt_id,
      signing_package: pkgOf(fromHex(req.message, 'm', 32), opens),
    };
    refuses(() => engines[0]!.round2(body), 'policy_refused');
    assert.equal(seen.at(-1)!.phase, 'round2');
    assert.equal(engines[0]!.liveAttempts, 1, 'a refusal leaves the nonces live');
    refuses(
      () =>
        engines[1]!.open({
          ...req,
          session_id: 's2',
          attempt_id: openRequest({
            sessionId: 's2',
            attempt: 1,
            included: [1, 2],
            intent: req.intent,
            xOnlyKey,
          }).attempt_id,
        }),
      'policy_refused',
    );
  });
});

describe('signer engine: batches', () => {
  const isErr = (x: object): x is { error: { code: string } } => 'error' in x;

  it('opens and signs many sessions in one batch: one marker transaction, every aggregate verifies', () => {
    const { nodes, pub } = makeCluster(2, 3);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const msgs = Array.from({ length: 5 }, () => new Uint8Array(randomBytes(32)));
    const reqs = msgs.map((m, i) => openReq(`s${i}`, m, 1, [1, 2]));
    const oa = a.engine.openBatch({ items: reqs }).items as SignOpenResponse[];
    const ob = b.engine.openBatch({ items: reqs }).items as SignOpenResponse[];
    assert.equal(a.engine.liveAttempts, 5);
    let calls = 0;
    const put = a.store.putMarkers.bind(a.store);
    a.store.putMarkers = (e) => {
      calls++;
      return put(e);
    };
    const round2 = (n: Node) =>
      n.engine.round2Batch({
        items: reqs.map((r, i) => ({
          key_id: 'k1',
          session_id: r.session_id,
          attempt_id: oa[i]!.attempt_id,
          signing_package: pkgOf(msgs[i]!, [oa[i]!, ob[i]!]),
        })),
      }).items;
    const sa = round2(a);
    const sb = round2(b);
    assert.equal(calls, 1, 'all markers in one transaction');
    assert.equal(a.store.listMarkers().length, 5);
    for (const [i, m] of msgs.entries()) {
      const sig = aggregate(
        pub,
        { message: m, commitments: [oa[i]!, ob[i]!].map((o) => decodeCommitments(o.commitments)) },
        [sa[i]!, sb[i]!].map((s) => decodeSignatureShare((s as { share: any }).share)),
      );
      assert.ok(libsecpVerify(sig, m, xOnlyGroupKey(pub)));
    }
    assert.equal(a.engine.liveAttempts, 0);
    // The same batch again: every item is a replay, nothing is signed twice.
    const again = round2(a);
    assert.ok(again.every((x) => isErr(x) && x.error.code === 'consumed_nonce_replay'));
  });

  it('a refused item is answered with its error and the others go on', () => {
    const { nodes } = makeCluster(2, 3);
    const a = nodes[0]!;
    const good = openReq('s1', new Uint8Array(randomBytes(32)), 1, [1, 2]);
    const bad = { ...openReq('s2', new Uint8Array(randomBytes(32)), 1, [1, 2]), attempt_id: '00'.repeat(32) };
    const [g, x] = a.engine.openBatch({ items: [good, bad] }).items;
    assert.ok(!isErr(g!));
    assert.ok(isErr(x!) && x.error.code === 'attempt_id_mismatch', JSON.stringify(x));
    assert.equal(a.engine.liveAttempts, 1);
  });

  it('a batch naming a session twice is refused whole; a failed marker write signs nothing', () => {
    const { nodes } = makeCluster(2, 3);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const m = new Uint8Array(randomBytes(32));
    const r = openReq('s1', m, 1, [1, 2]);
    refuses(() => a.engine.openBatch({ items: [r, r] }), 'invalid_request');
    const [oa] = a.engine.openBatch({ items: [r] }).items as SignOpenResponse[];
    const [ob] = b.engine.openBatch({ items: [r] }).items as SignOpenResponse[];
    a.store.failMarkers = true;
    const req = {
      items: [
        { key_id: 'k1', session_id: 's1', attempt_id: oa!.attempt_id, signing_package: pkgOf(m, [oa!, ob!]) },
      ],
    };
    const [x] = a.engine.round2Batch(req).items;
    assert.ok(isErr(x!) && x.error.code === 'marker_write_failed');
    assert.equal(a.engine.liveAttempts, 1, 'the nonces stay live');
    a.store.failMarkers = false;
    const [y] = a.engine.round2Batch(req).items;
    assert.ok(!isErr(y!));
  });
});
