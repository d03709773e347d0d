/**
 * NIP-01 events, checked against nostr-tools (an independent implementation) and against
 * serializations written out by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  getEventHash,
  finalizeEvent as ntFinalize,
  serializeEvent as ntSerialize,
  verifyEvent as ntVerify,
} from 'nostr-tools/pure';
import {
  checkEvent,
  checkUnsignedEvent,
  DEFAULT_EVENT_LIMITS,
  EVENT_REJECTIONS,
  type EventRejection,
  eventHash,
  eventId,
  finalizeEvent,
  kindClass,
  type NostrEvent,
  serializeEvent,
  type UnsignedEvent,
  validateEvent,
  verifyEvent,
  withSignature,
} from '../../src/nostr/event.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair } from './helpers.js';

const PK = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';

const TRICKY = [
  '',
  'plain ascii',
  'line\nbreak\r\ttab\b\f',
  'quote " and backslash \\ and slash /',
  'controls \u0000\u0001\u0007\u000b\u000e\u001f and DEL \u007f',
  'separators \u2028 \u2029 and NEL \u0085',
  'emoji 🦄🏳️‍🌈 and astral 𝄞',
  'cjk 漢字 and rtl עברית and combining é',
  'BOM \ufeff and replacement \ufffd and noncharacter \uffff',
  '</script><!-- html -->',
];

function unsigned(content: string, tags: string[][] = []): UnsignedEvent {
  return { pubkey: PK, created_at: 1_700_000_000, kind: 1, tags, content };
}

describe('serialization and id', () => {
  test('matches the NIP-01 array written out by hand (escaping rules pinned)', () => {
    const e = unsigned('a\u2028b\n"\\\u0001é🦄', [['t', 'x\ty']]);
    const expected = `[0,"${PK}",1700000000,1,[["t","x\\ty"]],` + '"a\u2028b\\n\\"\\\\\\u0001é🦄"]';
    assert.equal(serializeEvent(e), expected);
  });

  test('serialization and id equal nostr-tools on tricky content and tags', () => {
    for (const s of TRICKY) {
      const e = unsigned(s, [
        ['t', s],
        ['e', PK, s, 'reply'],
      ]);
      assert.equal(serializeEvent(e), ntSerialize(e), JSON.stringify(s));
      assert.equal(eventId(e), getEventHash(e), JSON.stringify(s));
      assert.equal(Buffer.from(eventHash(e)).toString('hex'), getEventHash(e));
    }
  });

  test('id equals nostr-tools for arbitrary well-formed Unicode (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.array(fc.array(fc.string({ unit: 'binary', maxLength: 10 }), { maxLength: 3 }), { maxLength: 3 }),
        fc.integer({ min: 0, max: 65_535 }),
        (content, tags, kind) => {
          const e = { ...unsigned(content, tags), kind };
          assert.equal(eventId(e), getEventHash(e));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('signing and verification', () => {
  test('our signed events verify in nostr-tools, and nostr-tools events verify here', () => {
    const { sk } = keypair();
    for (const content of TRICKY) {
      const ours = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [['t', 'floe']], content }, sk);
      assert.equal(ntVerify({ ...ours }), true);
      const theirs = ntFinalize({ kind: 1, created_at: 1_700_000_000, tags: [['t', 'floe']], content }, sk);
      assert.equal(verifyEvent(theirs), true);
      assert.equal(theirs.id, ours.id, 'same template and key give the same id');
    }
  });

  test('tampering is caught with the right reason', () => {
    const { sk } = keypair();
    const e = finalizeEvent({ kind: 1, created_at: 1_700_000_000, tags: [], content: 'hello' }, sk);
    const r1 = validateEvent({ ...e, content: 'hellO' });
    assert.equal(r1.ok ? 'ok' : r1.reason, 'event_id_mismatch');
    const other = keypair();
    const forged = finalizeEvent(
      { kind: 1, created_at: 1_700_000_000, tags: [], content: 'hello' },
      other.sk,
    );
    const r2 = validateEvent({ ...e, sig: forged.sig });
    assert.equal(r2.ok ? 'ok' : r2.reason, 'event_sig_invalid');
    const r3 = validateEvent({ ...e, pubkey: other.pk });
    assert.equal(r3.ok ? 'ok' : r3.reason, 'event_id_mismatch');
    assert.equal(verifyEvent(e), true);
    assert.equal(verifyEvent({ ...e, sig: forged.sig }), false);
  });

  test('withSignature attaches an external signature (the FROST path)', () => {
    const { sk } = keypair();
    const signed = ntFinalize({ kind: 7, created_at: 1_700_000_001, tags: [['e', PK]], content: '+' }, sk);
    const { id: _id, sig, ...rest } = signed;
    const e = withSignature(rest, Buffer.from(sig, 'hex'));
    assert.equal(e.id, signed.id);
    assert.equal(verifyEvent(e), true);
  });

  test('validateEvent returns a clean copy with exactly the NIP-01 fields', () => {
    const { sk } = keypair();
    const e = ntFinalize({ kind: 1, created_at: 1, tags: [], content: 'x' }, sk);
    const r = validateEvent(e);
    assert.ok(r.ok);
    assert.deepEqual(Object.keys(r.event).sort(), [
      'content',
      'created_at',
      'id',
      'kind',
      'pubkey',
      'sig',
      'tags',
    ]);
    assert.equal(Object.getOwnPropertySymbols(r.event).length, 0);
  });
});

describe('structural check: each rule has its stable reason', () => {
  const { sk } = keypair();
  const good: NostrEvent = finalizeEvent(
    { kind: 1, created_at: 1_700_000_000, tags: [['t', 'a']], content: 'x' },
    sk,
  );
  const cases: [string, unknown, EventRejection][] = [
    ['not an object', [good], 'event_not_object'],
    ['null', null, 'event_not_object'],
    ['unknown field', { ...good, extra: 1 }, 'event_field_unknown'],
    ['pubkey upper-case', { ...good, pubkey: good.pubkey.toUpperCase() }, 'event_pubkey_invalid'],
    ['pubkey short', { ...good, pubkey: good.pubkey.slice(2) }, 'event_pubkey_invalid'],
    ['created_at float', { ...good, created_at: 1.5 }, 'event_created_at_invalid'],
    ['created_at negative', { ...good, created_at: -1 }, 'event_created_at_invalid'],
    ['created_at string', { ...good, created_at: '1700000000' }, 'event_created_at_invalid'],
    ['created_at unsafe', { ...good, created_at: 2 ** 53 }, 'event_created_at_invalid'],
    ['kind too big', { ...good, kind: 65_536 }, 'event_kind_invalid'],
    ['kind negative', { ...good, kind: -1 }, 'event_kind_invalid'],
    ['kind float', { ...good, kind: 1.1 }, 'event_kind_invalid'],
    ['tags not array', { ...good, tags: {} }, 'event_tags_invalid'],
    ['tag not array', { ...good, tags: ['t'] }, 'event_tags_invalid'],
    ['tag with number', { ...good, tags: [['t', 1]] }, 'event_tags_invalid'],
    ['tag with lone surrogate', { ...good, tags: [['t', '\ud800']] }, 'event_tags_invalid'],
    ['content not string', { ...good, content: 1 }, 'event_content_invalid'],
    ['content lone surrogate', { ...good, content: 'a\udc00b' }, 'event_content_invalid'],
    [
      'content too large',
      { ...good, content: 'é'.repeat(DEFAULT_EVENT_LIMITS.maxContentBytes / 2 + 1) },
      'event_content_too_large',
    ],
    [
      'too many tags',
      { ...good, tags: Array.from({ length: DEFAULT_EVENT_LIMITS.maxTags + 1 }, () => ['t']) },
      'event_tags_too_large',
    ],
    [
      'tag too long',
      { ...good, tags: [Array.from({ length: DEFAULT_EVENT_LIMITS.maxTagElements + 1 }, () => 'x')] },
      'event_tags_too_large',
    ],
    ['id missing', { ...good, id: undefined }, 'event_id_malformed'],
    ['id upper-case', { ...good, id: good.id.toUpperCase() }, 'event_id_malformed'],
    ['sig short', { ...good, sig: good.sig.slice(0, 126) }, 'event_sig_malformed'],
  ];
  for (const [name, input, reason] of cases) {
    test(name, () => {
      const r = checkEvent(input);
      assert.equal(r.ok ? 'ok' : r.reason, reason);
      assert.ok(EVENT_REJECTIONS.includes(reason));
    });
  }

  test('tag bytes and event bytes are bounded by the limits given', () => {
    const limits = { ...DEFAULT_EVENT_LIMITS, maxTagBytes: 10, maxEventBytes: 300 };
    const r1 = checkEvent({ ...good, tags: [['t', 'x'.repeat(11)]] }, limits);
    assert.equal(r1.ok ? 'ok' : r1.reason, 'event_tags_too_large');
    const r2 = checkEvent({ ...good, content: 'x'.repeat(250) }, limits);
    assert.equal(r2.ok ? 'ok' : r2.reason, 'event_too_large');
  });

  test('an unsigned event may not carry id or sig; details never echo content', () => {
    const { id: _i, sig: _s, ...u } = good;
    assert.ok(checkUnsignedEvent(u).ok);
    const r = checkUnsignedEvent(good);
    assert.equal(r.ok ? 'ok' : r.reason, 'event_field_unknown');
    const secret = 'secret-plaintext-value';
    const r2 = checkEvent({ ...good, content: secret, kind: 'x' });
    assert.ok(!r2.ok && !r2.detail.includes(secret));
  });

  test('finalizeEvent refuses an invalid template with a FloeError carrying the reason', () => {
    assert.throws(
      () => finalizeEvent({ kind: 70_000, created_at: 1, tags: [], content: '' }, sk),
      (e: unknown) => isFloeError(e) && e.code === 'event_kind_invalid',
    );
  });
});

test('kind classes follow NIP-01', () => {
  assert.equal(kindClass(0), 'replaceable');
  assert.equal(kindClass(1), 'regular');
  assert.equal(kindClass(3), 'replaceable');
  assert.equal(kindClass(9_999), 'regular');
  assert.equal(kindClass(10_000), 'replaceable');
  assert.equal(kindClass(19_999), 'replaceable');
  assert.equal(kindClass(20_000), 'ephemeral');
  assert.equal(kindClass(29_999), 'ephemeral');
  assert.equal(kindClass(30_000), 'addressable');
  assert.equal(kindClass(39_999), 'addressable');
  assert.equal(kindClass(40_000), 'regular');
});
