import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorLine, fields, table } from '../../src/cli/output.js';
import { clusterLayout, displayPath } from '../../src/cluster/layout.js';
import { SAMPLE_MESSAGE, sampleCurl } from '../../src/cluster/up.js';
import { parseCurl } from '../helpers/e2e-floe.js';

describe('CLI output', () => {
  it('table pads columns, shows missing cells as -, and leaves no trailing spaces', () => {
    const t = table(
      ['ID', 'LABEL', 'STATUS'],
      [
        ['key_1', 'demo', 'active'],
        ['key_22', null, 'pending'],
      ],
    );
    assert.equal(t, ['ID      LABEL  STATUS', 'key_1   demo   active', 'key_22  -      pending'].join('\n'));
  });

  it('fields aligns labels', () => {
    assert.equal(
      fields([
        ['id', 'k'],
        ['threshold', '2-of-3'],
        ['npub', null],
      ]),
      'id         k\nthreshold  2-of-3\nnpub       -',
    );
  });

  it('errorLine is one line', () => {
    assert.equal(errorLine(new Error('a\n  b\tc ')), 'a b c');
  });
});

describe('local cluster layout and the sample curl', () => {
  it('paths below the working directory print relative, others absolute', () => {
    const l = clusterLayout('/srv/x/.floe');
    assert.equal(l.passphraseFile(2), '/srv/x/.floe/signer-2/passphrase');
    assert.equal(displayPath(l.adminTokenFile, '/srv/x'), '.floe/admin.token');
    assert.equal(displayPath(l.adminTokenFile, '/elsewhere'), '/srv/x/.floe/admin.token');
  });

  it('the printed curl is a valid request with the token read from its file', () => {
    const curl = sampleCurl('http://127.0.0.1:8080', '.floe/admin.token', 'key_abc');
    assert.match(curl, /\$\(cat \.floe\/admin\.token\)/);
    const dir = process.cwd();
    const req = { ...parseCurl(curl.replace('.floe/admin.token', 'package.json'), dir) };
    assert.equal(req.method, 'POST');
    assert.equal(req.url, 'http://127.0.0.1:8080/v1/sessions');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.match(req.headers.authorization!, /^Bearer \{/);
    assert.deepEqual(JSON.parse(req.body!), { key_id: 'key_abc', message: SAMPLE_MESSAGE, wait: 10000 });
    // A path with a space is quoted.
    assert.match(
      sampleCurl('http://h', '/tmp/my dir/admin.token', 'k'),
      /\$\(cat '\/tmp\/my dir\/admin\.token'\)/,
    );
  });
});
