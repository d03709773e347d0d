/** The coordinator's memory of active keys (src/coordinator/active-keys.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActiveKeys } from '../../src/coordinator/active-keys.js';
import type { VersionedKey } from '../../src/domain/key-version.js';
import type { KeyRecord } from '../../src/domain/records.js';
import type { KeyStatus } from '../../src/domain/vocabulary.js';

const read = (id: string, status: KeyStatus = 'active', tenantId = 't1', version = '7'): VersionedKey => ({
  key: { id, tenantId, status } as KeyRecord,
  version,
});

describe('active keys kept in memory', () => {
  it('keeps an active key and hands back what it kept', () => {
    const keys = new ActiveKeys();
    const k = read('k1');
    keys.note('t1', 'k1', k);
    assert.equal(keys.get('t1', 'k1'), k);
    assert.equal(keys.get('t1', 'k2'), undefined);
  });

  it('keeps no key that is not active, and a read that is not active forgets the one kept', () => {
    const keys = new ActiveKeys();
    for (const status of ['frozen', 'disabled', 'pending', 'failed'] as KeyStatus[]) {
      keys.note('t1', 'k1', read('k1', status));
      assert.equal(keys.get('t1', 'k1'), undefined, status);
    }
    keys.note('t1', 'k1', read('k1'));
    keys.note('t1', 'k1', read('k1', 'frozen', 't1', '8'));
    assert.equal(keys.get('t1', 'k1'), undefined);
    keys.note('t1', 'k1', read('k1'));
    keys.note('t1', 'k1', undefined);
    assert.equal(keys.get('t1', 'k1'), undefined, 'a key no longer found is forgotten');
  });

  it('a key belongs to the tenant it was read in, under the id it was read by', () => {
    const keys = new ActiveKeys();
    keys.note('t1', 'k1', read('k1', 'active', 't2'));
    assert.equal(keys.get('t1', 'k1'), undefined, 'a record of another tenant');
    keys.note('t1', 'k1', read('k2'));
    assert.equal(keys.get('t1', 'k1'), undefined, 'a record of another key');
    keys.note('t1', 'k1', read('k1'));
    assert.equal(keys.get('t2', 'k1'), undefined);
    assert.equal(keys.get('t1', 'k1')?.key.id, 'k1');
  });

  it('holds at most its size, forgetting the least recently used first', () => {
    const keys = new ActiveKeys(2);
    keys.note('t1', 'a', read('a'));
    keys.note('t1', 'b', read('b'));
    assert.ok(keys.get('t1', 'a')); // a is now the most recently used
    keys.note('t1', 'c', read('c'));
    assert.equal(keys.get('t1', 'b'), undefined);
    assert.ok(keys.get('t1', 'a'));
    assert.ok(keys.get('t1', 'c'));
  });
});
