/**
 * Approval proofs (src/approvals/proof.ts), checked against events signed by nostr-tools and
 * device signatures made by node:crypto over bytes built here independently.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finalizeEvent } from 'nostr-tools/pure';
import { normalizePolicy } from '../../src/approvals/policy.js';
import {
  checkDecision,
  decisionTemplate,
  deviceMessage,
  proveQuorum,
  signerWindow,
  tally,
  verifyDeviceSignature,
} from '../../src/approvals/proof.js';
import { decide, decidePolicy, device, deviceBytes, deviceSign, sha256hex, steward } from './helpers.js';

const [a, b, c, mallory] = [steward(), steward(), steward(), steward()];
const sessionId = 'ses_0123456789abcdef0123456789abcdef';
const intentHash = sha256hex('the intent');
const now = 1_800_000_000;
const window = { notBefore: now - 600, notAfter: now + 600 };
const policy = normalizePolicy({ stewards: [a.npub, b.npub, c.npub], threshold: 2, veto: true });
const subject = { kind: 'session' as const, sessionId, intentHash };
const ctx = { policy, subject, window };

type Ctx = Parameters<typeof checkDecision>[1];
const check = (e: unknown, o: Partial<Ctx> = {}) => checkDecision(e, { ...ctx, ...o });
const reason = (e: unknown, o: Partial<Ctx> = {}) => {
  const r = check(e, o);
  return r.ok ? 'ok' : r.reason;
};

describe('approval proofs: one decision', () => {
  it("a steward's approve, signed with nostr-tools, counts as that steward's approval", () => {
    const r = check(decide(a, { sessionId, intentHash, createdAt: now, content: 'ok by me' }));
    assert.ok(r.ok);
    assert.equal(r.value.steward, a.pk);
    assert.equal(r.value.decision, 'approve');
    assert.equal(r.value.createdAt, now);
  });

  it('a reject counts as a rejection', () => {
    const r = check(decide(b, { sessionId, intentHash, createdAt: now, decision: 'reject' }));
    assert.ok(r.ok);
    assert.equal(r.value.decision, 'reject');
  });

  it('is refused when signed by a non-steward, for another session, another intent, outside the window', () => {
    assert.equal(reason(decide(mallory, { sessionId, intentHash, createdAt: now })), 'not_steward');
    assert.equal(
      reason(decide(a, { sessionId: 'ses_other0000000000000000000000000', intentHash, createdAt: now })),
      'wrong_session',
    );
    assert.equal(
      reason(decide(a, { sessionId, intentHash: sha256hex('another'), createdAt: now })),
      'wrong_intent',
    );
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now + 601 })), 'outside_deadline');
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now - 601 })), 'outside_deadline');
  });

  it('a d tag of one session with the session tag of another is not about this session', () => {
    const tags = [
      ['d', `floe-approval:${sessionId}`],
      ['session', 'ses_other0000000000000000000000000'],
      ['intent', intentHash],
      ['decision', 'approve'],
    ];
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now, tags })), 'wrong_session');
  });

  it('only exactly "approve" or "reject" decides (the seed counted any non-"rejected" reply as approval)', () => {
    for (const word of ['approved', 'yes', 'APPROVE', 'approve ', '']) {
      assert.equal(
        reason(decide(a, { sessionId, intentHash, createdAt: now, decision: word })),
        'not_a_decision',
      );
    }
    const two = [
      ['d', `floe-approval:${sessionId}`],
      ['session', sessionId],
      ['intent', intentHash],
      ['decision', 'approve'],
      ['decision', 'reject'],
    ];
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now, tags: two })), 'not_a_decision');
    const none = two.slice(0, 3);
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now, tags: none })), 'not_a_decision');
  });

  it('a changed event, another kind or a malformed object is refused', () => {
    const e = decide(a, { sessionId, intentHash, createdAt: now });
    assert.equal(reason({ ...e, content: 'edited' }), 'bad_signature');
    assert.equal(reason({ ...e, sig: 'ab'.repeat(64) }), 'bad_signature');
    assert.equal(reason({ ...e, extra: 1 }), 'malformed');
    assert.equal(reason('approve'), 'malformed');
    const kind1 = finalizeEvent({ kind: 1, created_at: now, tags: e.tags, content: '' }, a.sk);
    assert.equal(reason(kind1), 'wrong_kind');
  });

  it('decisionTemplate gives the tags of the docs', () => {
    assert.deepEqual(decisionTemplate(subject, 'reject', { createdAt: now, content: 'no' }), {
      kind: 30078,
      created_at: now,
      tags: [
        ['d', `floe-approval:${sessionId}`],
        ['session', sessionId],
        ['intent', intentHash],
        ['decision', 'reject'],
      ],
      content: 'no',
    });
  });
});

describe('approval proofs: the second factor (P-256 device)', () => {
  const d = device();
  const other = device();
  const withDevice = normalizePolicy({
    stewards: [a.pk, b.pk, c.pk],
    threshold: 2,
    devices: { [a.pk]: [d.publicKey], [b.pk]: [other.uncompressed] },
    require_device: true,
  });
  const o = { policy: withDevice };

  it('the device message is the documented bytes, and node:crypto signatures over it verify', () => {
    const m = deviceMessage(subject, 'approve', now);
    assert.deepEqual(Buffer.from(m), deviceBytes(sessionId, intentHash, 'approve', now));
    assert.ok(verifyDeviceSignature(d.publicKey, m, deviceSign(d, m)));
    assert.ok(verifyDeviceSignature(d.uncompressed, m, deviceSign(d, m)));
    assert.equal(verifyDeviceSignature(other.publicKey, m, deviceSign(d, m)), false);
    assert.equal(verifyDeviceSignature(d.publicKey, m, 'zz'), false);
  });

  it('accepts a registered device signature over this decision', () => {
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now, device: { d } }), o), 'ok');
  });

  it('refuses: missing device when required, an unregistered device, a signature over another decision, a stale tap', () => {
    assert.equal(reason(decide(a, { sessionId, intentHash, createdAt: now }), o), 'device_missing');
    assert.equal(
      reason(decide(a, { sessionId, intentHash, createdAt: now, device: { d: other } }), o),
      'device_unregistered',
      "another steward's registered device is not this steward's",
    );
    const stranger = device();
    assert.equal(
      reason(decide(c, { sessionId, intentHash, createdAt: now, device: { d: stranger } }), o),
      'device_unregistered',
    );
    assert.equal(
      reason(decide(a, { sessionId, intentHash, createdAt: now, device: { d, decision: 'reject' } }), o),
      'device_bad_signature',
    );
    assert.equal(
      reason(decide(a, { sessionId, intentHash, createdAt: now, device: { d, createdAt: now - 10_000 } }), o),
      'device_outside_deadline',
    );
  });

  it('a device tag is checked even when the policy does not require one (an unregistered key is refused)', () => {
    assert.equal(
      reason(decide(a, { sessionId, intentHash, createdAt: now, device: { d } })),
      'device_unregistered',
    );
  });
});

describe('approval proofs: counting', () => {
  it('the first decision of each steward counts; veto fails on one rejection', () => {
    const t = tally(policy, [
      { steward: a.pk, decision: 'approve' },
      { steward: a.pk, decision: 'reject' },
      { steward: b.pk, decision: 'approve' },
    ]);
    assert.deepEqual(t, { approvers: [a.pk, b.pk], rejecters: [], outcome: 'approved' });
    assert.equal(tally(policy, [{ steward: c.pk, decision: 'reject' }]).outcome, 'rejected');
    assert.equal(tally(policy, [{ steward: mallory.pk, decision: 'approve' }]).outcome, 'waiting');
  });

  it('without veto, rejections fail it only once the quorum is out of reach', () => {
    const p = { ...policy, veto: false };
    assert.equal(tally(p, [{ steward: c.pk, decision: 'reject' }]).outcome, 'waiting');
    assert.equal(
      tally(p, [
        { steward: c.pk, decision: 'reject' },
        { steward: b.pk, decision: 'reject' },
      ]).outcome,
      'rejected',
    );
  });

  it('proveQuorum: two distinct valid approvals prove 2-of-3; one steward twice does not', () => {
    const ea = decide(a, { sessionId, intentHash, createdAt: now });
    const eb = decide(b, { sessionId, intentHash, createdAt: now });
    assert.deepEqual(proveQuorum([ea, eb], ctx), { ok: true, approvers: [a.pk, b.pk] });
    const twice = proveQuorum([ea, decide(a, { sessionId, intentHash, createdAt: now - 1 })], ctx);
    assert.equal(twice.ok, false);
    const forged = proveQuorum([ea, decide(mallory, { sessionId, intentHash, createdAt: now })], ctx);
    assert.ok(!forged.ok);
    assert.deepEqual(forged.refused, [{ index: 1, reason: 'not_steward' }]);
    const vetoed = proveQuorum(
      [ea, eb, decide(c, { sessionId, intentHash, createdAt: now, decision: 'reject' })],
      ctx,
    );
    assert.ok(!vetoed.ok);
    assert.match(vetoed.detail, /rejected/);
  });

  it("a signer's window: the policy's expiry plus the signing grace back, five minutes ahead", () => {
    assert.deepEqual(signerWindow({ ...policy, expires_in_s: 3600 }, now), {
      notBefore: now - 3600 - 600,
      notAfter: now + 300,
    });
  });
});

describe('approval proofs: policy changes', () => {
  const from = sha256hex('current');
  const to = sha256hex('next');
  const ps = { kind: 'policy' as const, keyId: 'key_1', from, to };

  it('approvals of exactly this change count; of another change, or another key, not', () => {
    const o = { policy, subject: ps, window };
    assert.ok(
      proveQuorum(
        [
          decidePolicy(a, { keyId: 'key_1', from, to, createdAt: now }),
          decidePolicy(c, { keyId: 'key_1', from, to, createdAt: now }),
        ],
        o,
      ).ok,
    );
    assert.equal(
      reason(decidePolicy(a, { keyId: 'key_1', from: to, to: from, createdAt: now }), { subject: ps }),
      'wrong_policy',
    );
    assert.equal(
      reason(decidePolicy(a, { keyId: 'key_2', from, to, createdAt: now }), { subject: ps }),
      'wrong_key',
    );
    assert.equal(
      reason(decide(a, { sessionId, intentHash, createdAt: now }), { subject: ps }),
      'wrong_key',
      'a session approval is not a policy approval',
    );
  });
});
