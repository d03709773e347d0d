import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  ATTEMPT_ID_TAG,
  type AttemptContext,
  attemptId,
  CryptoError,
  toHex,
} from '../../src/crypto/index.js';

// ---------- independent reference (node:crypto, Buffer) ----------

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const field = (b: Buffer) => Buffer.concat([u32(b.length), b]);

/** SHA-256(u32be(len tag) || tag || for each field: u32be(len) || field). */
function referenceAttemptId(ctx: AttemptContext): string {
  const tag = Buffer.from('floe/attempt-id/v1', 'utf8');
  const ids = [...ctx.included].sort((a, b) => a - b);
  const idBytes = Buffer.concat(
    ids.map((id) => {
      const b = Buffer.alloc(2);
      b.writeUInt16BE(id);
      return b;
    }),
  );
  return createHash('sha256')
    .update(field(tag))
    .update(field(Buffer.from(ctx.sessionId, 'utf8')))
    .update(field(Buffer.from(ctx.messageDigest)))
    .update(field(u32(ctx.attempt)))
    .update(field(idBytes))
    .digest('hex');
}

const digest = (fill: number) => new Uint8Array(32).fill(fill);

const BASE: AttemptContext = {
  sessionId: 'sess-0001',
  messageDigest: Uint8Array.from({ length: 32 }, (_, i) => i),
  attempt: 1,
  included: [3, 1, 2],
};

const isInvalid = (code: CryptoError['code']) => (e: unknown) => {
  assert.ok(e instanceof CryptoError, `expected a CryptoError, got ${String(e)}`);
  assert.equal(e.code, code);
  return true;
};

// ---------- tests ----------

describe('attemptId', () => {
  it('uses the documented tag', () => {
    assert.equal(ATTEMPT_ID_TAG, 'floe/attempt-id/v1');
  });

  it('matches a fixed value computed independently from the documented encoding', () => {
    // Hand-built byte string for BASE, spelled out field by field.
    const hand = Buffer.concat([
      Buffer.from('00000012', 'hex'),
      Buffer.from('floe/attempt-id/v1'),
      Buffer.from('00000009', 'hex'),
      Buffer.from('sess-0001'),
      Buffer.from('00000020', 'hex'),
      Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'),
      Buffer.from('00000004', 'hex'),
      Buffer.from('00000001', 'hex'),
      Buffer.from('00000006', 'hex'),
      Buffer.from('000100020003', 'hex'),
    ]);
    const expected = createHash('sha256').update(hand).digest('hex');
    assert.equal(referenceAttemptId(BASE), expected);
    assert.equal(toHex(attemptId(BASE)), expected);
  });

  it('matches the reference for varied inputs (multi-byte UTF-8, large ids and attempt numbers)', () => {
    const cases: AttemptContext[] = [
      { sessionId: 'é-会話-🔑', messageDigest: digest(0xab), attempt: 0xffffffff, included: [255, 1] },
      { sessionId: 'x'.repeat(128), messageDigest: digest(0), attempt: 256, included: [10, 200, 7, 42, 9] },
      { sessionId: 'a', messageDigest: digest(1), attempt: 70000, included: [] },
    ];
    for (const c of cases) assert.equal(toHex(attemptId(c)), referenceAttemptId(c));
  });

  it('is deterministic and 32 bytes', () => {
    const a = attemptId(BASE);
    const b = attemptId({ ...BASE, messageDigest: Uint8Array.from(BASE.messageDigest) });
    assert.ok(a instanceof Uint8Array);
    assert.equal(a.length, 32);
    assert.equal(toHex(a), toHex(b));
  });

  it('does not depend on the order of included, and does not reorder the caller array', () => {
    const included = [5, 2, 9, 1];
    const ref = toHex(attemptId({ ...BASE, included }));
    assert.deepEqual(included, [5, 2, 9, 1]);
    for (const perm of [
      [1, 2, 5, 9],
      [9, 5, 2, 1],
      [2, 9, 1, 5],
    ]) {
      assert.equal(toHex(attemptId({ ...BASE, included: perm })), ref);
    }
  });

  it('changes when any field changes', () => {
    const ref = toHex(attemptId(BASE));
    const variants: [string, AttemptContext][] = [
      ['session id', { ...BASE, sessionId: 'sess-0002' }],
      ['session id case', { ...BASE, sessionId: 'SESS-0001' }],
      [
        'digest',
        { ...BASE, messageDigest: Uint8Array.from(BASE.messageDigest, (b, i) => (i === 31 ? b ^ 1 : b)) },
      ],
      ['attempt', { ...BASE, attempt: 2 }],
      ['included (one more)', { ...BASE, included: [1, 2, 3, 4] }],
      ['included (one fewer)', { ...BASE, included: [1, 2] }],
      ['included (other member)', { ...BASE, included: [1, 2, 4] }],
      ['included (empty)', { ...BASE, included: [] }],
    ];
    const seen = new Set([ref]);
    for (const [name, ctx] of variants) {
      const id = toHex(attemptId(ctx));
      assert.notEqual(id, ref, name);
      assert.equal(id, referenceAttemptId(ctx), name);
      seen.add(id);
    }
    assert.equal(seen.size, variants.length + 1, 'all variants distinct');
  });

  it('length prefixes keep fields apart (moving bytes between session id and digest changes the id)', () => {
    const a = attemptId({ ...BASE, sessionId: 'ab' });
    const b = attemptId({ ...BASE, sessionId: 'a' });
    assert.notEqual(toHex(a), toHex(b));
  });

  it('rejects duplicates, attempt 0, bad digests and bad session ids', () => {
    assert.throws(() => attemptId({ ...BASE, included: [1, 2, 2] }), isInvalid('invalid_identifier'));
    assert.throws(() => attemptId({ ...BASE, included: [0, 1] }), isInvalid('invalid_identifier'));
    assert.throws(() => attemptId({ ...BASE, included: [1, 256] }), isInvalid('invalid_identifier'));
    for (const attempt of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => attemptId({ ...BASE, attempt }),
        isInvalid('invalid_encoding'),
        `attempt ${attempt}`,
      );
    }
    for (const len of [0, 31, 33, 64]) {
      assert.throws(
        () => attemptId({ ...BASE, messageDigest: new Uint8Array(len) }),
        isInvalid('invalid_encoding'),
        `digest of ${len} bytes`,
      );
    }
    // Beyond u32 the attempt number cannot be encoded (the error is not a CryptoError today).
    assert.throws(() => attemptId({ ...BASE, attempt: 2 ** 32 }));
    assert.throws(() => attemptId({ ...BASE, sessionId: '' }), isInvalid('invalid_encoding'));
    assert.throws(() => attemptId({ ...BASE, sessionId: 'x'.repeat(129) }), isInvalid('invalid_encoding'));
  });
});
