/**
 * The fuzz tests' mutation helper (test/helpers/fuzz-mutate.ts): junk put into a body is a copy,
 * so a body never contains itself and the generated values (fast-check hands out the same
 * `{}` of `fc.constant({})` in every run and while it shrinks) never change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Mut, mutate } from '../helpers/fuzz-mutate.js';

const mut = (kind: Mut['kind'], junk: unknown, key: string): Mut => ({
  kind,
  at: 1,
  pick: 0,
  salt: new Uint8Array(8),
  junk,
  key,
});

describe('fuzz mutations', () => {
  it('put a copy of the junk: a member added into it neither loops the body nor changes the junk', async () => {
    const shared = {};
    // the junk replaces `a`; the next mutation adds the same junk as a member of `a`
    const body = await mutate(
      { a: 1 },
      [mut('junk', shared, 'extra'), mut('add', shared, 'certificate')],
      { ids: [] },
      [],
    );
    assert.equal(JSON.stringify(body), '{"a":{"certificate":{}}}');
    assert.deepEqual(shared, {});
    const list: unknown[] = [];
    const again = await mutate({ a: [1] }, [mut('junk', list, 'x'), mut('add', list, 'y')], { ids: [] }, []);
    assert.equal(JSON.stringify(again), '{"a":[[]]}');
    assert.deepEqual(list, []);
  });
});
