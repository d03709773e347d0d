import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoError } from '../../src/crypto/errors.js';
import { commit, dealerSplit, encodeCommitments, encodeSigningPackage } from '../../src/crypto/index.js';
import {
  ERROR_CODES,
  ERROR_STATUS,
  FloeError,
  isValid,
  parseWith,
  problemOf,
  SIGNER_MESSAGES,
  toProblem,
} from '../../src/protocol/index.js';
import { openRequest } from '../helpers/sign-requests.js';

const hex32 = 'ab'.repeat(32);

describe('message schemas', () => {
  const { shares } = dealerSplit(new Uint8Array(32).fill(7), 2, 3);
  const c1 = commit(shares[0]!);
  const c2 = commit(shares[1]!);
  const msg = new Uint8Array(32).fill(1);
  const open = openRequest({ sessionId: 's1', attempt: 1, included: [1, 2], intent: msg });

  it('accepts valid requests of every signing message', () => {
    parseWith(SIGNER_MESSAGES.signOpen.request, open);
    parseWith(SIGNER_MESSAGES.signOpen.response, {
      session_id: 's1',
      attempt: 1,
      attempt_id: open.attempt_id,
      commitments: encodeCommitments(c1.commitments),
    });
    parseWith(SIGNER_MESSAGES.signRound2.request, {
      key_id: 'k1',
      session_id: 's1',
      attempt_id: open.attempt_id,
      signing_package: encodeSigningPackage({ message: msg, commitments: [c1.commitments, c2.commitments] }),
    });
    parseWith(SIGNER_MESSAGES.signAbort.request, { session_id: 's1' });
  });

  it('refuses extra fields, wrong types and bad hex with the failing path', () => {
    for (const bad of [
      { ...open, extra: true },
      { ...open, attempt: 0 },
      { ...open, attempt: 1.5 },
      { ...open, message: hex32.toUpperCase() },
      { ...open, message: 'ab'.repeat(31) },
      { ...open, included: [0] },
      { ...open, key_id: 'has space' },
      { ...open, intent_hash: 'ab'.repeat(31) },
      { ...open, intent: { type: 'message', message: 'AB'.repeat(32) } },
      { ...open, intent: { type: 'message', message: 'ab'.repeat(32), extra: 1 } },
      {
        ...open,
        intent: { type: 'nostr_event', event: { kind: 70000, content: '', tags: [], created_at: 1 } },
      },
      {
        ...open,
        intent: { type: 'nostr_event', event: { kind: 1, content: '', tags: [[1]], created_at: 1 } },
      },
      {
        ...open,
        intent: { type: 'nostr_event', event: { kind: 1, content: '', tags: [], created_at: 1, id: 'x' } },
      },
      { ...open, intent: { type: 'bitcoin_psbt', psbt: 'not base64!' } },
      { ...open, intent: { type: 'other' } },
    ]) {
      assert.equal(isValid(SIGNER_MESSAGES.signOpen.request, bad), false);
      assert.throws(
        () => parseWith(SIGNER_MESSAGES.signOpen.request, bad),
        (e: unknown) => e instanceof FloeError && e.code === 'invalid_request' && e.status === 400,
      );
    }
    const { key_id: _, ...missing } = open;
    assert.throws(() => parseWith(SIGNER_MESSAGES.signOpen.request, missing), /key_id|required/i);
  });

  it('every message has a distinct type and path', () => {
    const specs = Object.values(SIGNER_MESSAGES);
    assert.equal(new Set(specs.map((s) => s.type)).size, specs.length);
    assert.equal(new Set(specs.map((s) => s.path)).size, specs.length);
  });
});

describe('errors and problem documents', () => {
  it('every code maps to an HTTP status', () => {
    for (const c of ERROR_CODES) assert.ok(ERROR_STATUS[c] >= 400 && ERROR_STATUS[c] < 600, c);
  });

  it('a FloeError becomes problem+json with its code, status and extra members', () => {
    const p = toProblem(new FloeError('consumed_nonce_replay', 'already signed', { attempt_id: 'x' }));
    assert.equal(p.code, 'consumed_nonce_replay');
    assert.equal(p.status, 409);
    assert.equal(p.detail, 'already signed');
    assert.equal(p.attempt_id, 'x');
    assert.equal(problemOf('not_found', 'x').type, 'about:blank');
  });

  it('crypto errors keep their culprits; unknown errors reveal nothing', () => {
    const p = toProblem(new CryptoError('aggregate_failed', 'bad shares from 2', [2]));
    assert.deepEqual(p.culprits, [2]);
    const secret = 'deadbeef'.repeat(8);
    const q = toProblem(new Error(`boom ${secret}`));
    assert.equal(q.code, 'internal');
    assert.ok(!JSON.stringify(q).includes(secret));
  });
});
