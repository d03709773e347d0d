/**
 * Attempt ids v2 (src/protocol/attempt.ts): what binds an attempt's nonces to its session,
 * digest, intent and signers, checked against an independent reference (node:crypto, Buffer).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.js';
import { toHex } from '../../src/crypto/hex.js';
import { ATTEMPT_ID_V2_TAG, type AttemptFields, attemptId } from '../../src/protocol/attempt.js';
import { FloeError } from '../../src/protocol/errors.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const field = (b: Buffer) => Buffer.concat([u32(b.length), b]);

/** SHA-256(u32be(len tag) || tag || for each field: u32be(len) || field). */
function reference(f: AttemptFields): string {
  const ids = [...f.included].sort((a, b) => a - b);
  const idBytes = Buffer.concat(ids.map((id) => Buffer.from([id >> 8, id & 0xff])));
  return createHash('sha256')
    .update(field(Buffer.from('floe/attempt-id/v2', 'utf8')))
    .update(field(Buffer.from(f.sessionId, 'utf8')))
    .update(field(Buffer.from(f.digest)))
    .update(field(Buffer.from(f.intentHash)))
    .update(field(u32(f.attempt)))
    .update(field(idBytes))
    .digest('hex');
}

const BASE: AttemptFields = {
  sessionId: 'ses_test',
  digest: new Uint8Array(32).fill(0x11),
  intentHash: new Uint8Array(32).fill(0x22),
  attempt: 3,
  included: [3, 1],
};

describe('attempt id v2', () => {
  it('uses the documented tag and matches a known answer (computed with Python hashlib)', () => {
    assert.equal(ATTEMPT_ID_V2_TAG, 'floe/attempt-id/v2');
    assert.equal(toHex(attemptId(BASE)), '1357127b58b22d52b2ddf2264f2719bf25ed3b4bc76aba45abf78a792fa7c872');
    assert.equal(reference(BASE), toHex(attemptId(BASE)));
  });

  it('matches the reference for varied inputs (multi-byte UTF-8, large ids and attempt numbers)', () => {
    const cases: AttemptFields[] = [
      { ...BASE, sessionId: 'é-会話-🔑', attempt: 0xffffffff, included: [255, 1] },
      { ...BASE, sessionId: 'x'.repeat(128), attempt: 256, included: [10, 200, 7, 42, 9] },
      { ...BASE, sessionId: 'a', attempt: 70000, included: [] },
    ];
    for (const c of cases) assert.equal(toHex(attemptId(c)), reference(c));
  });

  it('binds every field; the order of the included identifiers does not matter', () => {
    const id = toHex(attemptId(BASE));
    assert.equal(toHex(attemptId({ ...BASE, included: [1, 3] })), id);
    const variants: [string, Partial<AttemptFields>][] = [
      ['session id', { sessionId: 'ses_tesu' }],
      ['digest', { digest: new Uint8Array(32).fill(0x12) }],
      ['intent hash', { intentHash: new Uint8Array(32).fill(0x23) }],
      ['digest and intent hash swapped', { digest: BASE.intentHash, intentHash: BASE.digest }],
      ['attempt', { attempt: 4 }],
      ['one member other', { included: [1, 2] }],
      ['one member more', { included: [1, 2, 3] }],
    ];
    const seen = new Set([id]);
    for (const [what, change] of variants) {
      const v = toHex(attemptId({ ...BASE, ...change }));
      assert.notEqual(v, id, what);
      assert.equal(v, reference({ ...BASE, ...change }), what);
      seen.add(v);
    }
    assert.equal(seen.size, variants.length + 1);
  });

  it('refuses malformed fields', () => {
    const bad: [string, Partial<AttemptFields>][] = [
      ['empty session id', { sessionId: '' }],
      ['long session id', { sessionId: 'x'.repeat(129) }],
      ['short digest', { digest: new Uint8Array(31) }],
      ['long intent hash', { intentHash: new Uint8Array(33) }],
      ['attempt 0', { attempt: 0 }],
      ['attempt 1.5', { attempt: 1.5 }],
      ['attempt 2^32', { attempt: 2 ** 32 }],
      ['duplicate member', { included: [1, 1] }],
      ['member 0', { included: [0, 1] }],
    ];
    for (const [what, change] of bad) {
      assert.throws(
        () => attemptId({ ...BASE, ...change }),
        (e: unknown) => e instanceof FloeError || e instanceof CryptoError,
        what,
      );
    }
  });
});
