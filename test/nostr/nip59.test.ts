/**
 * NIP-59 gift wraps and NIP-17 direct messages, cross-checked with nostr-tools' `nip59` and
 * `nip17` in both directions, with the checks that make a wrap's authorship mean something
 * (the seal's signature, the rumor claiming the seal's author).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ntNip17 from 'nostr-tools/nip17';
import * as ntNip44 from 'nostr-tools/nip44';
import * as ntNip59 from 'nostr-tools/nip59';
import { finalizeEvent as ntFinalize } from 'nostr-tools/pure';
import { softwareIdentity } from '../../src/crypto/identity.js';
import { nowSeconds } from '../../src/nostr/event.js';
import {
  DIRECT_MESSAGE_KIND,
  DM_RELAYS_KIND,
  dmRelaysOf,
  dmRelaysTemplate,
  unwrapDirectMessage,
  wrapDirectMessage,
} from '../../src/nostr/nip17.js';
import {
  createRumor,
  createSeal,
  createWrap,
  GIFT_WRAP_KIND,
  SEAL_KIND,
  TIMESTAMP_WINDOW_SECONDS,
  unwrapEvent,
  wrapEvent,
} from '../../src/nostr/nip59.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair } from './helpers.js';

const alice = keypair();
const bob = keypair();
const carol = keypair();
const mallory = keypair();

function throwsCode(fn: () => unknown, code: string, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFloeError(e), `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}

const template = () => ({ kind: 1, created_at: nowSeconds(), tags: [['t', 'x']], content: 'hello 🌊' });

describe('NIP-59 gift wrap', () => {
  test('nostr-tools unwraps ours: rumor intact, seal and wrap shaped as NIP-59 says', () => {
    const t = template();
    const wrap = wrapEvent(t, alice.sk, bob.pk);
    const now = nowSeconds();
    assert.equal(wrap.kind, GIFT_WRAP_KIND);
    assert.deepEqual(wrap.tags, [['p', bob.pk]]);
    assert.notEqual(wrap.pubkey, alice.pk);
    assert.ok(wrap.created_at <= now && wrap.created_at >= now - TIMESTAMP_WINDOW_SECONDS - 1);
    const rumor = ntNip59.unwrapEvent(wrap as any, bob.sk);
    assert.equal(rumor.pubkey, alice.pk);
    assert.deepEqual(
      { kind: rumor.kind, created_at: rumor.created_at, tags: rumor.tags, content: rumor.content },
      t,
    );
    const seal = JSON.parse(ntNip44.decrypt(wrap.content, ntNip44.getConversationKey(bob.sk, wrap.pubkey)));
    assert.equal(seal.kind, SEAL_KIND);
    assert.deepEqual(seal.tags, []);
    assert.equal(seal.pubkey, alice.pk);
  });

  test('we unwrap nostr-tools: the rumor and its id', () => {
    const wrap = ntNip59.wrapEvent(template(), alice.sk, bob.pk);
    const rumor = unwrapEvent(wrap as any, bob.sk);
    assert.equal(rumor.pubkey, alice.pk);
    assert.equal(rumor.content, 'hello 🌊');
    assert.equal(rumor.id, (ntNip59.unwrapEvent(wrap, bob.sk) as { id: string }).id);
  });

  test('identities work in place of secrets (an HSM-held key would too)', () => {
    const a = softwareIdentity(alice.sk);
    const b = softwareIdentity(bob.sk);
    const wrap = wrapEvent(template(), a, bob.pk);
    assert.equal(unwrapEvent(wrap, b).pubkey, alice.pk);
    a.dispose();
    b.dispose();
  });

  test('each wrap is signed by a fresh one-time key', () => {
    const wraps = Array.from({ length: 4 }, () => wrapEvent(template(), alice.sk, bob.pk));
    assert.equal(new Set(wraps.map((w) => w.pubkey)).size, 4);
  });

  test('a rumor claiming someone other than the seal author is refused', () => {
    // mallory seals a rumor that says it is from alice
    const rumor = ntNip59.createRumor(template(), alice.sk);
    const seal = ntNip59.createSeal(rumor, mallory.sk, bob.pk);
    const wrap = ntNip59.createWrap(seal, bob.pk);
    throwsCode(() => unwrapEvent(wrap as any, bob.sk), 'invalid_request', /not the seal's author/);
  });

  test('a seal with a broken signature, a wrong kind, or a signed rumor is refused', () => {
    const rumor = createRumor(template(), alice.pk);
    const seal = createSeal(rumor, alice.sk, bob.pk);
    const forged = { ...seal, sig: seal.sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    throwsCode(() => unwrapEvent(createWrap(forged, bob.pk), bob.sk), 'event_sig_invalid');
    const notSeal = ntFinalize({ kind: 1, created_at: 1, tags: [], content: seal.content }, alice.sk);
    throwsCode(() => unwrapEvent(createWrap(notSeal as any, bob.pk), bob.sk), 'invalid_request', /seal/);
    const signedRumor = ntFinalize(template(), alice.sk);
    const sealOfSigned = ntFinalize(
      {
        kind: SEAL_KIND,
        created_at: 1,
        tags: [],
        content: ntNip44.encrypt(JSON.stringify(signedRumor), ntNip44.getConversationKey(alice.sk, bob.pk)),
      },
      alice.sk,
    );
    throwsCode(
      () => unwrapEvent(createWrap(sealOfSigned as any, bob.pk), bob.sk),
      'invalid_request',
      /unsigned/,
    );
  });

  test('a rumor whose id is not its hash is refused', () => {
    const rumor = { ...createRumor(template(), alice.pk), id: 'ab'.repeat(32) };
    const wrap = createWrap(createSeal(rumor, alice.sk, bob.pk), bob.pk);
    throwsCode(() => unwrapEvent(wrap, bob.sk), 'invalid_request', /rumor\.id/);
  });

  test('someone else cannot open it; a tampered wrap fails its signature', () => {
    const wrap = wrapEvent(template(), alice.sk, bob.pk);
    throwsCode(() => unwrapEvent(wrap, carol.sk), 'invalid_encoding', /invalid MAC/);
    throwsCode(() => unwrapEvent({ ...wrap, created_at: wrap.created_at + 1 }, bob.sk), 'event_id_mismatch');
    throwsCode(() => unwrapEvent({ ...wrap, kind: 1 }, bob.sk), 'event_id_mismatch');
  });

  test('a seal can only be made by the rumor author', () => {
    const rumor = createRumor(template(), alice.pk);
    throwsCode(() => createSeal(rumor, mallory.sk, bob.pk), 'invalid_request', /sealing key/);
  });
});

describe('NIP-17 direct messages', () => {
  test('nostr-tools opens every wrap of ours; one rumor id for all receivers and the self copy', () => {
    const m = wrapDirectMessage(
      alice.sk,
      [{ pubkey: bob.pk, relayUrl: 'wss://bob.example/' }, { pubkey: carol.pk }],
      'hi',
      {
        subject: 'plans',
        replyTo: { id: 'cd'.repeat(32) },
      },
    );
    assert.deepEqual(
      m.wraps.map((w) => w.recipient),
      [bob.pk, carol.pk, alice.pk],
    );
    const keys: Record<string, Uint8Array> = { [bob.pk]: bob.sk, [carol.pk]: carol.sk, [alice.pk]: alice.sk };
    for (const { recipient, wrap } of m.wraps) {
      assert.deepEqual(wrap.tags, [['p', recipient]]);
      const r = ntNip17.unwrapEvent(wrap as any, keys[recipient]!) as any;
      assert.equal(r.id, m.rumor.id);
      assert.equal(r.kind, DIRECT_MESSAGE_KIND);
      assert.equal(r.content, 'hi');
      assert.deepEqual(r.tags, [
        ['p', bob.pk, 'wss://bob.example'],
        ['p', carol.pk],
        ['e', 'cd'.repeat(32), '', 'reply'],
        ['subject', 'plans'],
      ]);
    }
  });

  test('we open what nostr-tools nip17 wraps, for each receiver and its sender', () => {
    const wraps = ntNip17.wrapManyEvents(alice.sk, [{ publicKey: bob.pk }], 'yo', 'title');
    const mine = unwrapDirectMessage(wraps[0] as any, alice.sk);
    const bobs = unwrapDirectMessage(wraps[1] as any, bob.sk);
    assert.equal(bobs.content, 'yo');
    assert.equal(bobs.pubkey, alice.pk);
    assert.deepEqual(bobs.tags, [
      ['p', bob.pk],
      ['subject', 'title'],
    ]);
    assert.equal(mine.content, 'yo');
  });

  test('a gift wrap of another kind is not a direct message', () => {
    throwsCode(
      () => unwrapDirectMessage(wrapEvent(template(), alice.sk, bob.pk), bob.sk),
      'invalid_request',
      /kind 14/,
    );
  });

  test('no self copy when asked; receivers are checked', () => {
    const m = wrapDirectMessage(alice.sk, [{ pubkey: bob.pk }], 'x', { selfCopy: false });
    assert.equal(m.wraps.length, 1);
    throwsCode(() => wrapDirectMessage(alice.sk, [], 'x'), 'invalid_request');
    throwsCode(() => wrapDirectMessage(alice.sk, [{ pubkey: 'nothex' }], 'x'), 'invalid_request');
  });

  test('kind-10050 DM relay lists round-trip; bad entries are skipped', () => {
    const t = dmRelaysTemplate(['wss://a.example/', 'wss://b.example'], 7);
    assert.deepEqual(t, {
      kind: DM_RELAYS_KIND,
      created_at: 7,
      tags: [
        ['relay', 'wss://a.example'],
        ['relay', 'wss://b.example'],
      ],
      content: '',
    });
    assert.deepEqual(dmRelaysOf({ ...t, tags: [...t.tags, ['relay', 'https://x'], ['r', 'wss://c']] }), [
      'wss://a.example',
      'wss://b.example',
    ]);
    assert.deepEqual(dmRelaysOf({ kind: 1, tags: t.tags }), []);
  });
});
