/**
 * NIP-04 / NIP-44 over an ECDH value (src/nostr/conversation.ts): what nostr-tools writes passes
 * the key-free checks and decrypts; what those checks refuse is refused with the codes the API
 * documents; the limits sit exactly where they are said to.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as ntNip04 from 'nostr-tools/nip04';
import * as ntNip44 from 'nostr-tools/nip44';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import {
  checkPayload,
  checkPlaintext,
  decryptWith,
  encryptWith,
  MAX_PLAINTEXT_BYTES,
} from '../../src/nostr/conversation.js';
import { FloeError } from '../../src/protocol/errors.js';

const refused = (fn: () => unknown, code: string, what: string) =>
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, what);

/** Two parties and the ECDH x between them (noble), as threshold ECDH would give it to one side. */
function pair() {
  const a = generateSecretKey();
  const b = generateSecretKey();
  const x = secp256k1
    .getSharedSecret(a, Uint8Array.from(Buffer.from(`02${getPublicKey(b)}`, 'hex')))
    .slice(1);
  return { b, x, pa: getPublicKey(a) };
}

describe('nostr conversation over a shared x', () => {
  it('round trips with nostr-tools both ways, both schemes', () => {
    const { b, x, pa } = pair();
    const ck = ntNip44.v2.utils.getConversationKey(b, pa);
    for (const text of ['hi', 'ünïcödé 🔐', 'y'.repeat(70_000)]) {
      if (Buffer.byteLength(text) <= MAX_PLAINTEXT_BYTES.nip44) {
        assert.equal(ntNip44.v2.decrypt(encryptWith('nip44', x, text), ck), text);
        const theirs = ntNip44.v2.encrypt(text, ck);
        checkPayload('nip44', theirs);
        assert.equal(decryptWith('nip44', x, theirs), text);
      }
      assert.equal(ntNip04.decrypt(b, pa, encryptWith('nip04', x, text)), text);
      const theirs04 = ntNip04.encrypt(b, pa, text);
      checkPayload('nip04', theirs04);
      assert.equal(decryptWith('nip04', x, theirs04), text);
    }
  });

  it('plaintext limits: NIP-44 1..65535 bytes, NIP-04 up to 128 KiB; surrogates refused', () => {
    checkPlaintext('nip44', 'a'.repeat(65_535));
    refused(() => checkPlaintext('nip44', 'a'.repeat(65_536)), 'payload_too_large', 'nip44 + 1');
    // bytes, not characters: 21846 three-byte characters are 65538 bytes
    refused(() => checkPlaintext('nip44', '€'.repeat(21_846)), 'payload_too_large', 'nip44 bytes');
    refused(() => checkPlaintext('nip44', ''), 'invalid_request', 'nip44 empty');
    checkPlaintext('nip04', '');
    checkPlaintext('nip04', 'a'.repeat(128 * 1024));
    refused(() => checkPlaintext('nip04', 'a'.repeat(128 * 1024 + 1)), 'payload_too_large', 'nip04 + 1');
    refused(() => checkPlaintext('nip44', 'a\udc00'), 'invalid_request', 'lone surrogate');
    refused(() => checkPlaintext('nip04', 7), 'invalid_request', 'not a string');
  });

  it('malformed payloads are refused without a key; a well-formed one under another key fails its MAC', () => {
    const { b, pa } = pair();
    const good = ntNip44.v2.encrypt('hello', ntNip44.v2.utils.getConversationKey(b, pa));
    const raw = Buffer.from(good, 'base64');
    for (const [what, p] of [
      ['short', good.slice(0, 131)],
      ['# version', `#${good.slice(1)}`],
      ['not base64', `${good.slice(0, -4)}!!!!`],
      ['version 1', Buffer.from([1, ...raw.subarray(1)]).toString('base64')],
      ['huge', 'A'.repeat(3_000_000)],
    ] as const) {
      refused(() => checkPayload('nip44', p), 'invalid_encoding', what);
    }
    const other = pair();
    checkPayload('nip44', good);
    refused(() => decryptWith('nip44', other.x, good), 'invalid_encoding', 'MAC under another key');
    for (const [what, p] of [
      ['no iv', 'AAAAAAAAAAAAAAAAAAAAAA=='],
      ['two ivs', 'AAAAAAAAAAAAAAAAAAAAAA==?iv=AAAAAAAAAAAAAAAAAAAAAA==?iv=AA'],
      ['iv 3 bytes', 'AAAAAAAAAAAAAAAAAAAAAA==?iv=AAAA'],
      ['not blocks', 'AAAAAAAA?iv=AAAAAAAAAAAAAAAAAAAAAA=='],
      ['empty', '?iv=AAAAAAAAAAAAAAAAAAAAAA=='],
      ['bad base64', '***?iv=AAAAAAAAAAAAAAAAAAAAAA=='],
    ] as const) {
      refused(() => checkPayload('nip04', p), 'invalid_encoding', what);
    }
  });
});
