/** NIP-19 entities: the spec's examples, round trips against nostr-tools, strict refusals. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bech32 } from '@scure/base';
import { nip19 as nt } from 'nostr-tools';
import {
  decode,
  naddrDecode,
  naddrEncode,
  neventDecode,
  neventEncode,
  noteDecode,
  noteEncode,
  nprofileDecode,
  nprofileEncode,
  npubDecode,
  npubEncode,
  nsecDecode,
  nsecEncode,
} from '../../src/nostr/nip19.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair } from './helpers.js';

const refused = (e: unknown) => isFloeError(e) && e.code === 'invalid_encoding';

function tlv(entries: [number, Uint8Array][]): Uint8Array {
  return Uint8Array.from(entries.flatMap(([t, v]) => [t, v.length, ...v]));
}
const enc = (prefix: string, bytes: Uint8Array) => bech32.encode(prefix, bech32.toWords(bytes), 5000);
// nostr-tools sets absent optional fields to undefined; compare present fields only
const defined = (x: unknown) => JSON.parse(JSON.stringify(x));
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

describe('NIP-19 examples from the specification', () => {
  test('npub and nsec', () => {
    const npub = 'npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg';
    const pk = '7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e';
    assert.equal(npubDecode(npub), pk);
    assert.equal(npubEncode(pk), npub);
    const nsec = 'nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5';
    const sk = '67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa';
    assert.equal(Buffer.from(nsecDecode(nsec)).toString('hex'), sk);
    assert.equal(nsecEncode(hex(sk)), nsec);
  });

  test('nprofile', () => {
    const s =
      'nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69uhkg6nzv9ejuumpv34kytnrdaksjlyr9p';
    const p = nprofileDecode(s);
    assert.deepEqual(p, {
      pubkey: '3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d',
      relays: ['wss://r.x.com', 'wss://djbas.sadkb.com'],
    });
    assert.equal(nprofileEncode(p), s);
  });
});

describe('round trips against nostr-tools', () => {
  test('npub, nsec, note', () => {
    for (let i = 0; i < 20; i++) {
      const { sk, pk } = keypair();
      assert.equal(npubEncode(pk), nt.npubEncode(pk));
      assert.equal(npubDecode(nt.npubEncode(pk)), pk);
      assert.equal(nsecEncode(sk), nt.nsecEncode(sk));
      assert.deepEqual(nsecDecode(nt.nsecEncode(sk)), sk);
      assert.equal(noteEncode(pk), nt.noteEncode(pk));
      assert.equal(noteDecode(nt.noteEncode(pk)), pk);
      assert.deepEqual(nt.decode(npubEncode(pk)), { type: 'npub', data: pk });
    }
  });

  // TLV order is not fixed by NIP-19 (nostr-tools writes relays first, we follow the spec's
  // example), so these compare what each side decodes from the other's encoding
  test('nprofile, nevent, naddr (with and without optional TLVs)', () => {
    const { pk } = keypair();
    const id = keypair().pk;
    const relays = ['wss://relay.example.com', 'ws://127.0.0.1:7777', 'wss://ünïcode.example/path?x=1'];
    for (const p of [
      { pubkey: pk, relays: [] },
      { pubkey: pk, relays },
    ]) {
      assert.deepEqual(nprofileDecode(nt.nprofileEncode(p)), p);
      assert.deepEqual(defined(nt.decode(nprofileEncode(p)).data), p);
    }
    const events = [
      { id, relays: [] },
      { id, relays, author: pk },
      { id, relays, author: pk, kind: 30_078 },
      { id, relays: [], kind: 0 },
    ];
    for (const e of events) {
      assert.deepEqual(neventDecode(nt.neventEncode(e)), e);
      assert.deepEqual(defined(nt.decode(neventEncode(e)).data), e);
    }
    for (const a of [
      { identifier: 'floe-approval:abc', pubkey: pk, kind: 30_078, relays },
      { identifier: '', pubkey: pk, kind: 30_000, relays: [] },
    ]) {
      assert.deepEqual(naddrDecode(nt.naddrEncode(a)), a);
      assert.deepEqual(defined(nt.decode(naddrEncode(a)).data), a);
    }
  });

  test('decode gives a tagged union', () => {
    const { pk } = keypair();
    assert.deepEqual(decode(npubEncode(pk)), { type: 'npub', data: pk });
    assert.equal(decode(noteEncode(pk)).type, 'note');
  });
});

describe('strict decoding', () => {
  const { pk } = keypair();
  const pkBytes = hex(pk);

  test('wrong entity type, checksum, length, prefix', () => {
    assert.throws(() => npubDecode(noteEncode(pk)), refused);
    const good = npubEncode(pk);
    // another last character (the checksum's), never the same one (1 in 32 keys end in q)
    assert.throws(() => npubDecode(`${good.slice(0, -1)}${good.endsWith('q') ? 'p' : 'q'}`), refused);
    assert.throws(() => npubDecode(enc('npub', pkBytes.subarray(1))), refused);
    assert.throws(() => decode(enc('nfoo', pkBytes)), refused);
    assert.throws(() => decode('not bech32 at all'), refused);
    assert.throws(() => decode(`npub1${'q'.repeat(5001)}`), refused);
    // mixed case is invalid bech32; all upper-case is the same string
    const s = npubEncode(pk);
    assert.throws(() => decode(s.slice(0, 10) + s.slice(10).toUpperCase()), refused);
    assert.equal(npubDecode(s.toUpperCase()), pk);
  });

  test('nsec must be a valid secret scalar, and errors never echo it', () => {
    assert.throws(() => nsecDecode(enc('nsec', new Uint8Array(32))), refused);
    const n = hex('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
    assert.throws(() => nsecDecode(enc('nsec', n)), refused);
    assert.throws(() => nsecEncode(n), refused);
    const { sk } = keypair();
    // A changed last character breaks the checksum (replace it with another one, never itself).
    const good = nsecEncode(sk);
    const bad = `${good.slice(0, -1)}${good.endsWith('q') ? 'p' : 'q'}`;
    assert.throws(
      () => nsecDecode(bad),
      (e: unknown) =>
        refused(e) && !(e as Error).message.includes(bad) && !(e as Error).message.includes(bad.slice(5, 40)),
    );
  });

  test('TLV: required entry once, lengths exact, no truncation, unknown types skipped', () => {
    const relay = new TextEncoder().encode('wss://r.example');
    // missing pubkey
    assert.throws(() => nprofileDecode(enc('nprofile', tlv([[1, relay]]))), refused);
    // pubkey twice
    assert.throws(
      () =>
        nprofileDecode(
          enc(
            'nprofile',
            tlv([
              [0, pkBytes],
              [0, pkBytes],
            ]),
          ),
        ),
      refused,
    );
    // short pubkey
    assert.throws(() => nprofileDecode(enc('nprofile', tlv([[0, pkBytes.subarray(2)]]))), refused);
    // truncated entry
    const t = tlv([[0, pkBytes]]);
    assert.throws(() => nprofileDecode(enc('nprofile', Uint8Array.from([...t, 1, 10, 1, 2]))), refused);
    // relay not UTF-8
    assert.throws(
      () =>
        nprofileDecode(
          enc(
            'nprofile',
            tlv([
              [0, pkBytes],
              [1, Uint8Array.of(0xff, 0xfe)],
            ]),
          ),
        ),
      refused,
    );
    // nevent kind must be 4 bytes, author 32
    assert.throws(
      () =>
        neventDecode(
          enc(
            'nevent',
            tlv([
              [0, pkBytes],
              [3, Uint8Array.of(0, 1)],
            ]),
          ),
        ),
      refused,
    );
    assert.throws(
      () =>
        neventDecode(
          enc(
            'nevent',
            tlv([
              [0, pkBytes],
              [2, pkBytes.subarray(1)],
            ]),
          ),
        ),
      refused,
    );
    // naddr needs identifier, author and kind
    assert.throws(
      () =>
        naddrDecode(
          enc(
            'naddr',
            tlv([
              [2, pkBytes],
              [3, Uint8Array.of(0, 0, 0x75, 0x4e)],
            ]),
          ),
        ),
      refused,
    );
    // unknown TLV type 9 is ignored (NIP-19)
    assert.deepEqual(
      nprofileDecode(
        enc(
          'nprofile',
          tlv([
            [9, Uint8Array.of(1, 2, 3)],
            [0, pkBytes],
          ]),
        ),
      ),
      {
        pubkey: pk,
        relays: [],
      },
    );
  });

  test('encoding refuses bad input', () => {
    assert.throws(() => npubEncode(pk.toUpperCase()), refused);
    assert.throws(() => nprofileEncode({ pubkey: pk, relays: ['x'.repeat(256)] }), refused);
    assert.throws(() => neventEncode({ id: pk, kind: -1 }), refused);
    assert.throws(() => nsecEncode(new Uint8Array(31)), refused);
  });
});
