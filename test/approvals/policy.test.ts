/** Approval policies (src/approvals/policy.ts): normal form, hashes, which intents they cover. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  canonicalPolicyJson,
  creationPolicyHash,
  decodePolicyState,
  encodePolicyState,
  normalizePolicy,
  policyApplies,
  policyState,
  policyStateHashHex,
} from '../../src/approvals/policy.js';
import { FloeError } from '../../src/protocol/errors.js';
import { device, steward } from './helpers.js';

const [a, b, c] = [steward(), steward(), steward()];

function refuses(fn: () => unknown, match: RegExp) {
  assert.throws(
    fn,
    (e: unknown) => e instanceof FloeError && e.code === 'approval_policy_invalid' && match.test(e.message),
  );
}

describe('approval policy: normal form', () => {
  it('an npub and its hex are the same steward; stewards sorted; defaults filled', () => {
    const p = normalizePolicy({ stewards: [c.npub, a.pk], threshold: 2 });
    assert.deepEqual(p.stewards, [c.pk, a.pk].sort());
    assert.equal(p.veto, false);
    assert.equal(p.expires_in_s, 3600);
    assert.equal(p.required_for, null);
    assert.deepEqual(p.devices, {});
    assert.equal(p.require_device, false);
    refuses(() => normalizePolicy({ stewards: [a.npub, a.pk], threshold: 1 }), /listed twice/);
  });

  it('is idempotent, so client, coordinator and signers reach the same bytes', () => {
    const d = device();
    const p = normalizePolicy({
      stewards: [b.npub, a.npub, c.pk],
      threshold: 2,
      veto: true,
      expires_in_s: 600,
      required_for: { nostr_kinds: [30023, 1, 1] },
      devices: { [a.npub]: [d.uncompressed] },
    });
    assert.deepEqual(p.required_for, { nostr_kinds: [1, 30023] });
    assert.deepEqual(p.devices, { [a.pk]: [d.publicKey] }, 'device keys compressed, stewards as hex');
    assert.equal(canonicalPolicyJson(normalizePolicy(p)), canonicalPolicyJson(p));
    assert.equal(
      canonicalPolicyJson(normalizePolicy(JSON.parse(canonicalPolicyJson(p)))),
      canonicalPolicyJson(p),
    );
  });

  it('refuses what cannot be a policy, naming the field', () => {
    refuses(() => normalizePolicy({ stewards: [a.pk], threshold: 2 }), /^threshold/);
    refuses(() => normalizePolicy({ stewards: [], threshold: 1 }), /^stewards/);
    refuses(() => normalizePolicy({ stewards: ['f'.repeat(64)], threshold: 1 }), /not a key on secp256k1/);
    refuses(() => normalizePolicy({ stewards: ['npub1xyz'], threshold: 1 }), /not a valid npub/);
    refuses(() => normalizePolicy({ stewards: [a.pk], threshold: 1, quorum: 1 }), /unknown member/);
    refuses(() => normalizePolicy({ stewards: [a.pk], threshold: 1, expires_in_s: 0 }), /^expires_in_s/);
    refuses(
      () => normalizePolicy({ stewards: [a.pk], threshold: 1, devices: { [b.pk]: [device().publicKey] } }),
      /not a steward/,
    );
    refuses(
      () =>
        normalizePolicy({ stewards: [a.pk], threshold: 1, devices: { [a.pk]: [`02${'01'.repeat(32)}`] } }),
      /not a point on P-256/,
    );
    refuses(
      () =>
        normalizePolicy({
          stewards: [a.pk, b.pk],
          threshold: 2,
          require_device: true,
          devices: { [a.pk]: [device().publicKey] },
        }),
      /fewer stewards with a registered device than the threshold/,
    );
  });
});

describe('approval policy: state hash', () => {
  const p = normalizePolicy({ stewards: [a.pk, b.pk, c.pk], threshold: 2, veto: true });

  it('is SHA-256 over the tag and the length-prefixed key id, revision and canonical JSON', () => {
    const field = (x: Buffer) => {
      const l = Buffer.alloc(4);
      l.writeUInt32BE(x.length);
      return Buffer.concat([l, x]);
    };
    const rev = Buffer.alloc(4);
    rev.writeUInt32BE(3);
    const want = createHash('sha256')
      .update(
        Buffer.concat([
          field(Buffer.from('floe/approval-policy/v1')),
          field(Buffer.from('key_1')),
          field(rev),
          field(Buffer.from(canonicalPolicyJson(p))),
        ]),
      )
      .digest('hex');
    assert.equal(policyStateHashHex('key_1', { revision: 3, policy: p }), want);
  });

  it('binds the key, the revision and the policy; no policy certifies nothing at creation', () => {
    const h = policyStateHashHex('key_1', { revision: 0, policy: p });
    assert.notEqual(policyStateHashHex('key_2', { revision: 0, policy: p }), h);
    assert.notEqual(policyStateHashHex('key_1', { revision: 1, policy: p }), h);
    assert.notEqual(policyStateHashHex('key_1', { revision: 0, policy: { ...p, veto: false } }), h);
    assert.notEqual(policyStateHashHex('key_1', { revision: 0, policy: null }), h);
    assert.equal(creationPolicyHash('key_1', null), undefined);
    assert.equal(creationPolicyHash('key_1', { revision: 0, policy: null }), undefined);
    assert.ok(creationPolicyHash('key_1', { revision: 0, policy: p }));
  });

  it('stored form round-trips; a stored policy not in normal form is refused', () => {
    const s = policyState(2, p);
    assert.deepEqual(decodePolicyState(encodePolicyState(s)), s);
    const bad = JSON.parse(encodePolicyState(s));
    bad.policy.stewards.reverse();
    assert.throws(() => decodePolicyState(JSON.stringify(bad)), /not in normal form/);
  });
});

describe('approval policy: which intents need the stewards', () => {
  const base = { stewards: [a.pk], threshold: 1 };
  const note = (kind: number) => ({
    type: 'nostr_event' as const,
    id: '0'.repeat(64),
    pubkey: '0'.repeat(64),
    kind,
    content: '',
    tags: [],
    created_at: 0,
  });
  const digest = { type: 'message' as const, digest: '0'.repeat(64) };
  const psbt = (outputs?: { value: number; change?: boolean }[]) => ({
    type: 'bitcoin_psbt' as const,
    ...(outputs ? { outputs } : {}),
  });

  it('without required_for: every intent', () => {
    const p = normalizePolicy(base);
    for (const s of [note(1), digest, psbt([{ value: 1 }])]) assert.equal(policyApplies(p, s), true);
  });

  it('nostr_kinds: those kinds only; a bare digest always (it could be any event id)', () => {
    const p = normalizePolicy({ ...base, required_for: { nostr_kinds: [1, 6] } });
    assert.equal(policyApplies(p, note(1)), true);
    assert.equal(policyApplies(p, note(6)), true);
    assert.equal(policyApplies(p, note(7)), false);
    assert.equal(policyApplies(p, digest), true);
    assert.equal(policyApplies(p, psbt([{ value: 10 ** 9 }])), false, 'no PSBT limit given');
  });

  it('bitcoin_output_above_sat: a non-change output above it; change never; unreadable PSBTs always', () => {
    const p = normalizePolicy({ ...base, required_for: { bitcoin_output_above_sat: 100_000 } });
    assert.equal(policyApplies(p, psbt([{ value: 100_000 }])), false, 'at the limit is not above it');
    assert.equal(policyApplies(p, psbt([{ value: 100_001 }])), true);
    assert.equal(policyApplies(p, psbt([{ value: 5_000_000, change: true }, { value: 5 }])), false);
    assert.equal(policyApplies(p, psbt()), true, 'a view without outputs fails closed');
    assert.equal(policyApplies(p, note(1)), false);
  });
});
