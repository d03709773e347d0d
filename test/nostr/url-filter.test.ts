/** Relay URL normalization and NIP-01 filter checks. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeURL } from 'nostr-tools/utils';
import type { NostrEvent } from '../../src/nostr/event.js';
import { checkFilter, checkFilters, matchFilter } from '../../src/nostr/filter.js';
import { normalizeRelayUrl, sameRelay } from '../../src/nostr/url.js';
import { isFloeError } from '../../src/protocol/errors.js';

const refused = (e: unknown) => isFloeError(e) && e.code === 'invalid_request';

test('relay URLs: ws/wss only, normalized, no credentials', () => {
  assert.equal(normalizeRelayUrl('WSS://Relay.Example.COM:443/'), 'wss://relay.example.com');
  assert.equal(normalizeRelayUrl('ws://127.0.0.1:7777//a//b/'), 'ws://127.0.0.1:7777/a/b');
  assert.equal(normalizeRelayUrl('ws://h:80/#frag'), 'ws://h');
  assert.equal(normalizeRelayUrl('wss://h/path?x=1'), 'wss://h/path?x=1');
  for (const bad of [
    'http://h',
    'https://h',
    'file:///x',
    'h:7777',
    'wss://user:pw@h',
    '',
    'x'.repeat(3000),
  ]) {
    assert.throws(() => normalizeRelayUrl(bad), refused, bad.slice(0, 20));
  }
  // the same relay as nostr-tools sees it (it adds a trailing slash on the root)
  for (const u of ['ws://127.0.0.1:7777', 'wss://relay.example.com/', 'wss://r.example/nostr']) {
    assert.ok(sameRelay(u, normalizeURL(u)), u);
  }
  assert.equal(sameRelay('ws://a', 'ws://b'), false);
  assert.equal(sameRelay('ws://a', 'http://a'), false);
});

test('filters: exact field set, typed values, bounded lists', () => {
  const pk = 'a'.repeat(64);
  assert.deepEqual(
    checkFilter({ ids: [pk], kinds: [1], '#e': [pk], '#T': ['x'], since: 1, until: 2, limit: 0 }),
    {
      ids: [pk],
      kinds: [1],
      '#e': [pk],
      '#T': ['x'],
      since: 1,
      until: 2,
      limit: 0,
    },
  );
  for (const bad of [
    null,
    [],
    { ids: [pk.toUpperCase()] },
    { ids: ['abcd'] },
    { authors: 'x' },
    { kinds: [65_536] },
    { since: -1 },
    { until: 1.5 },
    { limit: -1 },
    { '#ee': ['x'] },
    { search: 'x' },
    { '#t': [1] },
    { '#t': ['x'.repeat(2000)] },
    { kinds: Array.from({ length: 1001 }, () => 1) },
  ]) {
    assert.throws(() => checkFilter(bad), refused, JSON.stringify(bad)?.slice(0, 40));
  }
  assert.throws(() => checkFilters([], 4), refused);
  assert.throws(() => checkFilters([{}, {}, {}], 2), refused);
});

test('matchFilter: every present condition must hold; tag values match the second element', () => {
  const e: NostrEvent = {
    id: '1'.repeat(64),
    pubkey: '2'.repeat(64),
    created_at: 100,
    kind: 7,
    tags: [['e', '3'.repeat(64)], ['t'], ['d', 'x', 'extra']],
    content: '',
    sig: '4'.repeat(128),
  };
  assert.ok(matchFilter({}, e));
  assert.ok(matchFilter({ kinds: [1, 7], since: 100, until: 100 }, e));
  assert.ok(matchFilter({ '#e': ['3'.repeat(64)], '#d': ['x'] }, e));
  assert.equal(matchFilter({ '#t': [''] }, e), false, 'a tag without a value matches nothing');
  assert.equal(matchFilter({ '#d': ['extra'] }, e), false);
  assert.equal(matchFilter({ since: 101 }, e), false);
  assert.equal(matchFilter({ authors: ['5'.repeat(64)] }, e), false);
  assert.equal(matchFilter({ kinds: [1], '#e': ['3'.repeat(64)] }, e), false);
});
