/**
 * Threshold ECDH on the signer (src/signer/ecdh.ts): members answer `ecdh.share` and t answers
 * combine to the key's ECDH value (checked with @noble/curves from the dealer's secret); every
 * refusal — key not held or not active, this signer not included, a bad included set, a peer off
 * the curve, the policy, the rate limit — answers nothing and audits nothing; an answer is
 * audited without its point. Through the HTTP server: the envelope rules and signed answers
 * apply to `ecdh.share` as to every signer message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  dealerSplit,
  fromHex,
  generateIdentityKey,
  type KeyPackage,
  softwareIdentity,
  toHex,
  tweakKeyPackage,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import {
  combineEcdhShares,
  type EcdhShare,
  ecdhShareContext,
  verifyEcdhShare,
} from '../../src/crypto/threshold-ecdh.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { FloeError } from '../../src/protocol/errors.js';
import { acceptResponse, prepareRequest } from '../../src/protocol/exchange.js';
import type { EcdhShareRequest, EcdhShareResponse } from '../../src/protocol/messages/ecdh.js';
import { SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { CeremonyParticipant } from '../../src/signer/ceremony.js';
import { EcdhResponder } from '../../src/signer/ecdh.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { SignerMetrics } from '../../src/signer/metrics.js';
import { type EcdhContext, FrozenKeysPolicy, type SigningContext } from '../../src/signer/policy.js';
import { systemClock } from '../../src/signer/ports.js';
import { RefreshParticipant } from '../../src/signer/refresh.js';
import { RepairParticipant } from '../../src/signer/repair.js';
import { buildSignerServer, signerHandlers } from '../../src/signer/server.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

const { Point } = secp256k1;
const N = Point.Fn.ORDER;
const be32 = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));

function randomScalar(): bigint {
  for (;;) {
    const v = BigInt(`0x${randomBytes(32).toString('hex')}`);
    if (v > 0n && v < N) return v;
  }
}
const randomPeerHex = () => Point.BASE.multiply(randomScalar()).toHex(true).slice(2);
/** x = 5 is not on the curve (5³ + 7 is not a square mod p). */
const OFF_CURVE = `${'00'.repeat(31)}05`;

function refuses(fn: () => unknown, code: string, what = code) {
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, `expected ${code}: ${what}`);
}

interface Member {
  id: number;
  store: MemoryStore;
  ecdh: EcdhResponder;
  policy: FrozenKeysPolicy;
}

function makeMembers(
  t: number,
  n: number,
  o: { clock?: FakeClock; rate?: { perSecond: number; burst: number }; tweak?: boolean } = {},
) {
  const clock = o.clock ?? new FakeClock();
  const secret = randomScalar();
  const split = dealerSplit(be32(secret), t, n);
  const keys = o.tweak ? split.shares.map((k) => tweakKeyPackage(k)) : split.shares;
  const members: Member[] = keys.map((k: KeyPackage) => {
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
    const ecdh = new EcdhResponder({ store, clock, policy, ...(o.rate ? { rate: o.rate } : {}) });
    return { id: k.identifier, store, ecdh, policy };
  });
  return { members, pub: keys[0]!.public, secret, clock };
}

function req(over: Partial<EcdhShareRequest> = {}): EcdhShareRequest {
  return {
    key_id: 'k1',
    request_id: 'ecd_1',
    included: [1, 2],
    peer: randomPeerHex(),
    purpose: 'nip44',
    ...over,
  };
}

const toShare = (r: EcdhShareResponse): EcdhShare => ({
  identifier: r.identifier,
  shared: fromHex(r.shared, 'shared', 33),
  proof: fromHex(r.proof, 'proof', 64),
});

const contextOf = (r: EcdhShareRequest) => (identifier: number) =>
  ecdhShareContext({
    keyId: r.key_id,
    requestId: r.request_id,
    peer: fromHex(r.peer, 'peer', 32),
    purpose: r.purpose,
    identifier,
  });

describe('signer: threshold ECDH answers', () => {
  it('t members answer; their shares combine to noble’s ECDH of the secret (plain and taproot-tweaked keys)', () => {
    for (const tweak of [false, true]) {
      const { members, pub, secret } = makeMembers(2, 3, { tweak });
      const r = req({ included: [1, 3] });
      const answers = [members[0]!, members[2]!].map((m) => m.ecdh.share(r));
      assert.deepEqual(
        answers.map((a) => [a.key_id, a.request_id, a.identifier]),
        [
          ['k1', 'ecd_1', 1],
          ['k1', 'ecd_1', 3],
        ],
      );
      const x = combineEcdhShares(pub, fromHex(r.peer, 'peer', 32), answers.map(toShare), contextOf(r));
      if (!tweak) {
        // An untweaked dealer key: the dealer's own secret.
        assert.equal(
          toHex(x),
          toHex(secp256k1.getSharedSecret(be32(secret), fromHex(`02${r.peer}`, 'peer', 33)).subarray(1)),
        );
      }
      // Whatever the tweak: the value is the ECDH of the secret behind the key's x-only pubkey,
      // which the peer computes from its own secret and that pubkey.
      const peerSecret = randomScalar();
      const peer = Point.BASE.multiply(peerSecret).toHex(true).slice(2);
      const r2 = req({ request_id: 'ecd_2', peer, included: [2, 3] });
      const x2 = combineEcdhShares(
        pub,
        fromHex(peer, 'peer', 32),
        [members[1]!, members[2]!].map((m) => toShare(m.ecdh.share(r2))),
        contextOf(r2),
      );
      const theirs = secp256k1.getSharedSecret(be32(peerSecret), Uint8Array.of(2, ...xOnlyGroupKey(pub)));
      assert.equal(toHex(x2), toHex(theirs.subarray(1)), `tweak=${tweak}`);
    }
  });

  it('each answer is audited (kind ecdh, key, request, peer, purpose) and the audit never holds the point', () => {
    const { members } = makeMembers(2, 2);
    const r = req({ tenant_id: 'acme' });
    const a = members[0]!.ecdh.share(r);
    const audit = members[0]!.store.audit;
    assert.equal(audit.length, 1);
    const e = audit[0]!;
    assert.equal(e.kind, 'ecdh');
    assert.equal(e.keyId, 'k1');
    const detail = JSON.parse(e.detail!);
    assert.deepEqual(detail, {
      request_id: 'ecd_1',
      peer: r.peer,
      purpose: 'nip44',
      included: [1, 2],
      tenant_id: 'acme',
    });
    const text = JSON.stringify(audit);
    assert.ok(!text.includes(a.shared) && !text.includes(a.shared.slice(2)), 'S_i is not audited');
    assert.ok(!text.includes(a.proof));
  });

  it('the proof is bound to the request: a share presented for another request, peer or purpose fails', () => {
    const { members, pub } = makeMembers(2, 3);
    const r = req();
    const s = toShare(members[0]!.ecdh.share(r));
    const peer = fromHex(r.peer, 'peer', 32);
    assert.ok(verifyEcdhShare(pub, peer, s, contextOf(r)(1)));
    for (const other of [{ request_id: 'ecd_9' }, { purpose: 'nip04' as const }, { key_id: 'k2' }]) {
      assert.equal(
        verifyEcdhShare(pub, peer, s, contextOf({ ...r, ...other })(1)),
        false,
        JSON.stringify(other),
      );
    }
  });
});

describe('signer: threshold ECDH refusals answer nothing and audit nothing', () => {
  it('unknown key, inactive key, another share generation, not included, bad included sets, a peer off the curve', () => {
    const { members } = makeMembers(2, 3);
    const m = members[0]!;
    const cases: [string, EcdhShareRequest, string][] = [
      ['unknown key', req({ key_id: 'k-none' }), 'unknown_key'],
      ['not included', req({ included: [2, 3] }), 'own_identifier_missing'],
      ['fewer than t', req({ included: [1] }), 'invalid_request'],
      ['unsorted', req({ included: [2, 1] }), 'invalid_request'],
      ['duplicate', req({ included: [1, 1] }), 'invalid_request'],
      ['a non-member', req({ included: [1, 4] }), 'not_a_member'],
      ['peer off the curve', req({ peer: OFF_CURVE }), 'invalid_pubkey'],
      ['peer x ≥ p', req({ peer: 'ff'.repeat(32) }), 'invalid_pubkey'],
      // The coordinator counts this key on a refreshed generation; this share is of generation 0.
      ['another share generation', req({ generation: 1 }), 'generation_mismatch'],
    ];
    for (const [what, r, code] of cases) refuses(() => m.ecdh.share(r), code, what);
    // A key that is not active: a pending import.
    m.store.setKeyStatus('k1', 'pending');
    refuses(() => m.ecdh.share(req()), 'key_not_active', 'pending');
    assert.equal(m.store.audit.length, 0, 'no refusal is audited as an ECDH use');
  });

  it('the policy: a frozen key refuses ECDH as it refuses signing; a policy without checkEcdh refuses', () => {
    const { members } = makeMembers(2, 2);
    const m = members[0]!;
    m.policy.frozen.add('k1');
    refuses(() => m.ecdh.share(req()), 'policy_refused', 'frozen: ecdh');
    const engine = new SigningEngine({ store: m.store, clock: new FakeClock(), policy: m.policy });
    refuses(
      () =>
        engine.open(
          openRequest({ sessionId: 's', attempt: 1, included: [1, 2], intent: new Uint8Array(32) }),
        ),
      'policy_refused',
      'frozen: signing',
    );
    m.policy.frozen.delete('k1');
    assert.equal(m.ecdh.share(req()).identifier, 1, 'thawed');

    // A signing-only policy (written before ECDH existed) refuses ECDH and still allows signing.
    const signingOnly = { check: (_: SigningContext) => {} };
    const strict = new EcdhResponder({ store: m.store, clock: new FakeClock(), policy: signingOnly });
    refuses(() => strict.share(req()), 'policy_refused', 'no checkEcdh');

    // A policy sees what the request is for, and may refuse by peer or purpose.
    const seen: EcdhContext[] = [];
    const banned = randomPeerHex();
    const picky = new EcdhResponder({
      store: m.store,
      clock: new FakeClock(),
      policy: {
        check: () => {},
        checkEcdh(ctx) {
          seen.push(ctx);
          if (ctx.purpose === 'nip04' || ctx.peer === banned)
            throw new FloeError('policy_refused', 'not this one');
        },
      },
    });
    refuses(() => picky.share(req({ purpose: 'nip04' })), 'policy_refused', 'purpose');
    refuses(() => picky.share(req({ peer: banned })), 'policy_refused', 'peer');
    const ok = req({ tenant_id: 't1' });
    picky.share(ok);
    assert.deepEqual(seen.at(-1), {
      keyId: 'k1',
      phase: 'ecdh',
      requestId: 'ecd_1',
      peer: ok.peer,
      purpose: 'nip44',
      tenantId: 't1',
    });
    assert.equal(m.store.audit.filter((e) => e.kind === 'ecdh').length, 2, 'only the two answers');
  });

  it('a per-key rate limit: the burst, then one per refill; other keys are not affected', () => {
    const clock = new FakeClock();
    const { members } = makeMembers(2, 2, { clock, rate: { perSecond: 2, burst: 3 } });
    const m = members[0]!;
    m.store.putKey({ ...m.store.getKey('k1')!, keyId: 'k2' });
    for (let i = 0; i < 3; i++) m.ecdh.share(req());
    const limited = () => m.ecdh.share(req());
    assert.throws(
      limited,
      (e: unknown) => e instanceof FloeError && e.code === 'rate_limited' && e.status === 429,
    );
    assert.equal(m.ecdh.share(req({ key_id: 'k2' })).key_id, 'k2', 'another key has its own bucket');
    clock.advance(499);
    refuses(limited, 'rate_limited', 'not yet refilled');
    clock.advance(1);
    limited();
    refuses(limited, 'rate_limited', 'spent again');
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) m.ecdh.share(req());
    refuses(limited, 'rate_limited', 'refills up to the burst only');
    assert.equal(m.store.audit.length, 3 + 1 + 1 + 3);
  });
});

describe('signer: ecdh.share over HTTP (envelopes and signed answers, as every message)', () => {
  const coordinator = softwareIdentity(generateIdentityKey());
  const stranger = softwareIdentity(generateIdentityKey());
  const identity = softwareIdentity(generateIdentityKey());
  const store = new MemoryStore();
  const policy = new FrozenKeysPolicy();
  const { shares, public: pub } = dealerSplit(be32(randomScalar()), 2, 2);
  let app: Awaited<ReturnType<typeof buildSignerServer>>;
  const spec = SIGNER_MESSAGES.ecdhShare;

  before(async () => {
    store.putKey({
      keyId: 'k1',
      identifier: 1,
      status: 'active',
      origin: 'dealer',
      keyPackage: shares[0]!,
      createdAt: 0,
    });
    const engine = new SigningEngine({ store, clock: systemClock, policy });
    const ceremonies = new CeremonyParticipant({ store, clock: systemClock, identity, roster: [] });
    const ecdh = new EcdhResponder({ store, clock: systemClock, policy });
    app = await buildSignerServer({
      handlers: signerHandlers({
        engine,
        ceremonies,
        refresh: new RefreshParticipant({ store, clock: systemClock, identity, roster: [] }),
        repair: new RepairParticipant({ store, clock: systemClock, identity, roster: [] }),
        store,
        identity,
        ecdh,
      }),
      engine,
      ceremonies,
      store,
      identity,
      allowlist: new Set([coordinator.publicKeyHex]),
      clock: systemClock,
      metrics: new SignerMetrics(),
      logger: false,
    });
  });
  after(() => app?.close());

  async function send(body: EcdhShareRequest, from = coordinator) {
    const p = prepareRequest(spec, body, { identity: from, to: identity.publicKeyHex, now: Date.now() });
    const res = await app.inject({ method: 'POST', url: p.path, headers: p.headers, payload: p.body });
    const envelope = res.headers[ENVELOPE_HEADER] as string | undefined;
    return {
      status: res.statusCode,
      envelope,
      accept: () =>
        acceptResponse(
          spec,
          { status: res.statusCode, envelope, text: res.body },
          { self: from.publicKeyHex, peer: identity.publicKeyHex, re: p.nonce, now: Date.now() },
        ),
      code: (JSON.parse(res.body) as { code?: string }).code,
    };
  }

  it('an allowlisted coordinator gets a signed answer whose proof verifies', async () => {
    const body = req({ included: [1, 2] });
    const r = await send(body);
    assert.equal(r.status, 200);
    assert.ok(r.envelope);
    const answer = r.accept();
    assert.ok(verifyEcdhShare(pub, fromHex(body.peer, 'peer', 32), toShare(answer), contextOf(body)(1)));
  });

  it('a stranger, a forged or missing envelope: unsigned refusals, nothing computed or audited', async () => {
    const before = store.audit.length;
    const body = req();
    const strangerAnswer = await send(body, stranger);
    assert.equal(strangerAnswer.code, 'envelope_unknown_sender');
    assert.equal(strangerAnswer.envelope, undefined);
    const text = JSON.stringify(body);
    const forged = sealEnvelope({
      identity: coordinator,
      to: identity.publicKeyHex,
      type: 'sign.abort',
      body: text,
      now: Date.now(),
    });
    for (const [what, env, code] of [
      ['wrong type', encodeEnvelope(forged), 'envelope_wrong_type'],
      ['missing', undefined, 'envelope_malformed'],
    ] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/ecdh/share',
        headers: { 'content-type': 'application/json', ...(env ? { [ENVELOPE_HEADER]: env } : {}) },
        payload: text,
      });
      assert.equal(JSON.parse(res.body).code, code, what);
      assert.equal(res.headers[ENVELOPE_HEADER], undefined, what);
    }
    assert.equal(store.audit.length, before);
  });

  it('a refusal of an authenticated request is signed: the coordinator reads it as this signer’s word', async () => {
    policy.frozen.add('k1');
    try {
      const r = await send(req());
      assert.equal(r.status, 403);
      assert.ok(r.envelope, 'signed');
      assert.throws(r.accept, (e: unknown) => e instanceof FloeError && e.code === 'policy_refused');
      const off = await send(req({ peer: OFF_CURVE }));
      assert.throws(off.accept, (e: unknown) => e instanceof FloeError && e.code === 'invalid_pubkey');
      // The schema: a peer that is not 32 bytes of lower-case hex never reaches the responder.
      const bad = await send({ ...req(), peer: 'AB'.repeat(32) } as EcdhShareRequest).catch((e) => e);
      assert.ok(bad instanceof FloeError && bad.code === 'invalid_request', 'refused before sending');
    } finally {
      policy.frozen.delete('k1');
    }
  });
});
