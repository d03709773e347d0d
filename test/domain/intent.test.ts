/**
 * Signing intents (src/domain/intent.ts): the digest and the intent hash every signer
 * recomputes, checked against nostr-tools (NIP-01 ids) and pinned known answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getEventHash } from 'nostr-tools/pure';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { checkNostrEventTemplate, resolveIntent } from '../../src/domain/intent.js';
import { FloeError } from '../../src/protocol/errors.js';

const KEY = fromHex('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798', 'key', 32);
const event = {
  kind: 1,
  content: 'hello from floe ✓ "quoted" \\ \n\u2028',
  tags: [
    ['t', 'floe'],
    ['p', 'ab'.repeat(32), 'wss://r'],
  ],
  created_at: 1_700_000_000,
};

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof FloeError) return e.code;
    throw e;
  }
  return 'accepted';
}

describe('intents', () => {
  it('a Nostr event intent signs the NIP-01 id under the key (as nostr-tools computes it)', () => {
    const r = resolveIntent({ type: 'nostr_event', event }, { xOnlyKey: KEY });
    assert.equal(r.type, 'nostr_event');
    assert.equal(toHex(r.digest), getEventHash({ ...event, pubkey: toHex(KEY) }));
    assert.equal(r.view.type === 'nostr_event' && r.view.id, toHex(r.digest));
    assert.equal(r.tweak, null);
  });

  it('the intent hash binds the type, the whole intent and the key; known answers pin the format', () => {
    const msg = { type: 'message' as const, message: '11'.repeat(32) };
    const m = resolveIntent(msg, { xOnlyKey: KEY });
    assert.equal(toHex(m.digest), '11'.repeat(32));
    // floe/intent/v1: SHA-256 over length-prefixed tag, "message", digest, empty tweak (computed
    // independently with Python's hashlib; the SQL of migration 008 computes the same).
    assert.equal(toHex(m.intentHash), '163ce688ac8dfc47cc38aef5b5149d64fca61e2bfe75e61e67e98bb5c2283712');
  });

  it('changes in any part of an event change the intent hash', () => {
    const h = (e: typeof event, key = KEY) =>
      toHex(resolveIntent({ type: 'nostr_event', event: e }, { xOnlyKey: key }).intentHash);
    const base = h(event);
    assert.notEqual(h({ ...event, kind: 2 }), base);
    assert.notEqual(h({ ...event, content: `${event.content}.` }), base);
    assert.notEqual(h({ ...event, tags: [] }), base);
    assert.notEqual(h({ ...event, created_at: event.created_at + 1 }), base);
    assert.notEqual(h(event, new Uint8Array(32).fill(2)), base);
    // A message intent over the same digest is another intent.
    const digest = toHex(resolveIntent({ type: 'nostr_event', event }, { xOnlyKey: KEY }).digest);
    assert.notEqual(
      toHex(resolveIntent({ type: 'message', message: digest }, { xOnlyKey: KEY }).intentHash),
      base,
    );
  });

  it('malformed events get a specific code each', () => {
    const now = 1_700_000_000;
    const check = (e: Record<string, unknown>, maxSkewS: number | null = 900) =>
      code(() => checkNostrEventTemplate({ ...event, ...e } as never, { nowS: now, maxSkewS }));
    assert.equal(check({}), 'accepted');
    assert.equal(check({ kind: 65536 }), 'event_kind_invalid');
    assert.equal(check({ kind: -1 }), 'event_kind_invalid');
    assert.equal(check({ kind: 1.5 }), 'event_kind_invalid');
    assert.equal(check({ tags: [['t', 1]] }), 'event_tags_invalid');
    assert.equal(check({ tags: ['t'] }), 'event_tags_invalid');
    assert.equal(check({ tags: [[]] }), 'accepted', 'an empty tag is allowed (NIP-01 does not forbid it)');
    assert.equal(check({ tags: {} }), 'event_tags_invalid');
    assert.equal(check({ content: 'x'.repeat(128 * 1024 + 1) }), 'event_content_too_large');
    assert.equal(check({ content: '€'.repeat(44_000) }), 'event_content_too_large', 'bytes, not characters');
    assert.equal(check({ tags: Array.from({ length: 10_001 }, () => ['t']) }), 'event_tags_too_large');
    assert.equal(check({ content: '\ud800' }), 'event_content_invalid', 'a lone surrogate has no UTF-8 form');
    assert.equal(check({ content: 5 }), 'event_content_invalid');
    assert.equal(check({ created_at: now + 901 }), 'event_created_at_invalid');
    assert.equal(check({ created_at: now - 901 }), 'event_created_at_invalid');
    assert.equal(check({ created_at: now - 10_000 }, null), 'accepted', 'unless allowed');
    assert.equal(check({ created_at: 'now' }), 'event_created_at_invalid');
    const filled = checkNostrEventTemplate({ kind: 1, content: 'x' }, { nowS: now, maxSkewS: 900 });
    assert.deepEqual(filled, { kind: 1, content: 'x', tags: [], created_at: now });
  });

  it('a malformed PSBT intent is refused with psbt_invalid', () => {
    const groupKey = Uint8Array.from([2, ...KEY]);
    assert.equal(
      code(() =>
        resolveIntent(
          { type: 'bitcoin_psbt', psbt: 'cHNidP8=', network: 'regtest' },
          { xOnlyKey: KEY, groupKey },
        ),
      ),
      'psbt_invalid',
    );
  });
});
