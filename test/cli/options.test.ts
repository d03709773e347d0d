import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { integer, port } from '../../src/cli/options.js';
import { cliError, isoTimes, jsonRequested } from '../../src/cli/output.js';
import { coordinatorTarget } from '../../src/cli/target.js';

describe('CLI option values and output', () => {
  it('integer takes decimal whole numbers in range; anything else is a usage error', () => {
    const limit = integer({ min: 1 });
    assert.equal(limit('50'), 50);
    assert.equal(port('65535'), 65_535);
    for (const bad of ['abc', 'two', '', '1.5', '1e3', '0x10', '0', '-1', '99999999999999999999']) {
      assert.throws(() => limit(bad), InvalidArgumentError, bad);
    }
    assert.throws(() => port('65536'), /from 1 to 65535/);
  });

  it('isoTimes: *_at milliseconds become ISO 8601 UTC; a Nostr event keeps its seconds', () => {
    const event = { kind: 1, content: 'x', tags: [], created_at: 1_700_000_000, sig: 'ab' };
    assert.deepEqual(
      isoTimes({
        id: 's',
        created_at: 1_767_225_600_123,
        completed_at: null,
        attempt: 3,
        event,
        items: [{ expires_at: 1_767_225_601_000 }],
      }),
      {
        id: 's',
        created_at: '2026-01-01T00:00:00Z',
        completed_at: null,
        attempt: 3,
        event,
        items: [{ expires_at: '2026-01-01T00:00:01Z' }],
      },
    );
  });

  it('errors: a stable code and a hint; commander errors are usage errors; --json before -- only', () => {
    assert.deepEqual(
      cliError(Object.assign(new Error('no\nway'), { code: 'unreachable', hint: 'use --url' })),
      {
        code: 'unreachable',
        message: 'no way',
        hint: 'use --url',
      },
    );
    assert.equal(cliError(new InvalidArgumentError('bad')).code, 'usage');
    assert.equal(cliError(new Error('x')).code, 'error');
    assert.equal(jsonRequested(['key', 'list', '--json']), true);
    assert.equal(jsonRequested(['sign', '--', '--json']), false);
  });

  it('the coordinator: --url, else FLOE_URL, else the local cluster, else the default; each named', () => {
    assert.deepEqual(coordinatorTarget({ url: 'http://a' }, '/nonexistent', { FLOE_URL: 'http://b' }), {
      url: 'http://a',
      source: 'from --url',
    });
    assert.equal(coordinatorTarget({}, '/nonexistent', { FLOE_URL: 'http://b' }).source, 'from FLOE_URL');
    const d = coordinatorTarget({}, '/nonexistent', {});
    assert.equal(d.url, 'http://127.0.0.1:8080');
    assert.match(d.source, /the default: no --url, FLOE_URL or \/nonexistent\/cluster\.json/);
  });
});
