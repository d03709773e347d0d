/**
 * The error catalogue (issue 15, friction 6): docs/errors.md is generated from ERROR_TABLE
 * (src/protocol/errors.ts) and must match it; every code has a status, a meaning and a hint;
 * every problem document carries a hint and a `type` that resolves (about:blank).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS_DOC, renderErrorsDoc } from '../../scripts/gen-errors-doc.js';
import {
  ERROR_CODES,
  ERROR_STATUS,
  ERROR_TABLE,
  FloeError,
  fromProblem,
  PROBLEM_TYPE,
  problemOf,
  toProblem,
} from '../../src/protocol/errors.js';

describe('error catalogue', () => {
  it('docs/errors.md is what `npm run docs:errors` writes from the table', () => {
    const onDisk = readFileSync(ERRORS_DOC, 'utf8');
    assert.ok(
      onDisk === renderErrorsDoc(),
      'docs/errors.md is out of date with ERROR_TABLE in src/protocol/errors.ts: run `npm run docs:errors`',
    );
  });

  it('lists every code once, with an anchor, its status, meaning and what to do', () => {
    const doc = renderErrorsDoc();
    for (const code of ERROR_CODES) {
      const { status, meaning, hint } = ERROR_TABLE[code];
      const rows = doc.split('\n').filter((l) => l.startsWith(`| <a id="${code}"></a>`));
      assert.equal(rows.length, 1, code);
      assert.ok(rows[0]!.includes(` ${status} `), `${code}: status`);
      assert.ok(meaning.length >= 10 && /[.!?)]$/.test(meaning), `${code}: meaning is a sentence`);
      assert.ok(hint.length >= 10, `${code}: hint`);
    }
  });

  it('statuses are HTTP error statuses, and ERROR_STATUS follows the table', () => {
    for (const code of ERROR_CODES) {
      assert.ok(ERROR_TABLE[code].status >= 400 && ERROR_TABLE[code].status < 600, code);
      assert.equal(ERROR_STATUS[code], ERROR_TABLE[code].status, code);
      assert.match(code, /^[a-z][a-z0-9_]*$/, code);
    }
  });

  it('a problem has type about:blank, the status phrase as title, and a hint (the table’s by default)', () => {
    const p = problemOf('key_not_found', 'no key key_x');
    assert.deepEqual(p, {
      type: PROBLEM_TYPE,
      title: 'Not Found',
      status: 404,
      code: 'key_not_found',
      detail: 'no key key_x',
      hint: ERROR_TABLE.key_not_found.hint,
    });
    assert.equal(PROBLEM_TYPE, 'about:blank');
    const own = toProblem(new FloeError('bunker_not_found', 'key k has no bunker', { hint: 'enable it' }));
    assert.equal(own.hint, 'enable it', 'a thrown hint wins');
    assert.equal(toProblem(new Error('secret stuff')).hint, ERROR_TABLE.internal.hint);
    assert.doesNotMatch(JSON.stringify(toProblem(new Error('secret stuff'))), /secret stuff/);
    // A peer's problem comes back as the same error.
    const back = fromProblem(problemOf('session_not_found', 'no session s'));
    assert.equal(back.code, 'session_not_found');
    assert.equal(back.message, 'no session s');
  });
});
