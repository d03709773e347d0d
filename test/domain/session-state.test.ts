/** The signing session state machine as data (src/domain/session-state.ts): every pair of statuses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canTransition,
  DRIVEN_STATUSES,
  isTerminal,
  legalSources,
  nonTerminalStatuses,
  SESSION_STATUSES,
} from '../../src/domain/session-state.js';

const LIVE = ['awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating'];

describe('session state table', () => {
  it('allows exactly the documented moves, and no other', () => {
    const legal = new Set([
      // the approval stage (DESIGN §13): approved, rejected (failed), or silence (expired)
      'awaiting_approval>pending',
      'pending>nonce_collection',
      'nonce_collection>signing',
      'signing>aggregating',
      'aggregating>completed',
      // a new attempt
      'nonce_collection>nonce_collection',
      'signing>nonce_collection',
      'aggregating>nonce_collection',
      ...LIVE.flatMap((s) => [`${s}>failed`, `${s}>expired`]),
    ]);
    let checked = 0;
    for (const a of SESSION_STATUSES) {
      for (const b of SESSION_STATUSES) {
        assert.equal(canTransition(a, b), legal.has(`${a}>${b}`), `${a} -> ${b}`);
        checked++;
      }
    }
    assert.equal(checked, 64);
  });

  it('a session awaiting approval can only be approved, rejected or expire; it is never signed directly', () => {
    assert.deepEqual(
      SESSION_STATUSES.filter((to) => canTransition('awaiting_approval', to)),
      ['pending', 'failed', 'expired'],
    );
    for (const to of ['nonce_collection', 'signing', 'aggregating', 'completed'] as const)
      assert.equal(canTransition('awaiting_approval', to), false, to);
    // and nothing ever goes back to waiting for approval
    assert.deepEqual(legalSources('awaiting_approval'), []);
  });

  it('names terminal, live and driven statuses consistently', () => {
    assert.deepEqual(legalSources('completed'), ['aggregating']);
    assert.deepEqual(legalSources('pending'), ['awaiting_approval']);
    assert.deepEqual(nonTerminalStatuses(), LIVE);
    assert.deepEqual(
      SESSION_STATUSES.filter((s) => isTerminal(s)),
      ['completed', 'failed', 'expired'],
    );
    for (const s of SESSION_STATUSES) {
      assert.equal(
        isTerminal(s),
        SESSION_STATUSES.every((to) => !canTransition(s, to)),
        s,
      );
    }
    assert.ok(!(DRIVEN_STATUSES as readonly string[]).includes('awaiting_approval'));
    assert.deepEqual(legalSources('failed'), LIVE);
    assert.deepEqual(legalSources('expired'), LIVE);
  });
});
