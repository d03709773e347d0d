/**
 * NIP-46, the pure protocol: strict request parsing (every refusal a stable code), URIs
 * checked against nostr-tools' own builders and parsers in both directions, `method[:kind]`
 * permissions (NIP-98 never under a wildcard), and request encryption against nostr-tools'
 * NIP-44 and NIP-04.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ntNip04 from 'nostr-tools/nip04';
import * as ntNip44 from 'nostr-tools/nip44';
import { createNostrConnectURI, parseBunkerInput, toBunkerURL } from 'nostr-tools/nip46';
import {
  authUrlResponse,
  checkPermission,
  decryptContent,
  detectEncryption,
  encryptContent,
  errorResponse,
  formatPermissions,
  intersectPermissions,
  NIP46_KIND,
  nip46Template,
  parseBunkerUrl,
  parseNostrConnectUri,
  parsePermission,
  parsePermissions,
  parsePermissionsLenient,
  parseRequest,
  parseResponse,
  parseSignEventParam,
  resultResponse,
  serializeRequest,
  serializeResponse,
  toBunkerUrl,
  toNostrConnectUri,
  validatePermission,
} from '../../src/nostr/nip46.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { keypair, sharedX } from './helpers.js';

const signer = keypair();
const client = keypair();
const user = keypair();

function refusal(x: string): { code: string; detail: string } {
  const r = parseRequest(x);
  assert.equal(r.ok, false, `expected a refusal of ${x.slice(0, 80)}`);
  if (r.ok) throw new Error('unreachable');
  return { code: r.error.code, detail: r.error.message };
}

function throwsCode(fn: () => unknown, code: string, detail?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isFloeError(e), `expected a FloeError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}

describe('requests', () => {
  test('a well-formed request parses; params are copied', () => {
    const r = parseRequest(JSON.stringify({ id: 'abc-1', method: 'sign_event', params: ['{}'] }));
    assert.deepEqual(r, { ok: true, request: { id: 'abc-1', method: 'sign_event', params: ['{}'] } });
    const back = parseRequest(serializeRequest({ id: 'x', method: 'ping', params: [] }));
    assert.deepEqual(back, { ok: true, request: { id: 'x', method: 'ping', params: [] } });
  });

  test('malformed requests are refused with invalid_request naming the rule', () => {
    assert.deepEqual(refusal('not json'), { code: 'invalid_request', detail: 'request: not valid JSON' });
    assert.equal(refusal('[1,2]').code, 'invalid_request');
    assert.match(refusal('{"method":"ping","params":[]}').detail, /request\.id/);
    assert.match(refusal('{"id":"a b","method":"ping","params":[]}').detail, /request\.id/);
    assert.match(
      refusal(JSON.stringify({ id: 'x'.repeat(65), method: 'ping', params: [] })).detail,
      /request\.id/,
    );
    assert.match(refusal('{"id":"1","method":"ping","params":[],"jsonrpc":"2.0"}').detail, /unknown field/);
    assert.match(refusal('{"id":"1","method":"ping","params":[1]}').detail, /array of strings/);
    assert.match(refusal('{"id":"1","method":"ping","params":"x"}').detail, /array of strings/);
    assert.match(refusal('{"id":"1","method":"sign_event","params":[]}').detail, /takes 1 parameters/);
    assert.match(refusal('{"id":"1","method":"nip44_encrypt","params":["a"]}').detail, /takes 2 parameters/);
    assert.match(refusal('{"id":"1","method":"connect","params":["a","b","c","d","e"]}').detail, /1 to 4/);
  });

  test('the id of a refused request is kept so the error answer can name it', () => {
    const r = parseRequest('{"id":"k1","method":"get_relays","params":[]}');
    assert.ok(!r.ok);
    assert.equal(r.id, 'k1');
    assert.equal(r.error.message, 'request.method: unknown method "get_relays"');
  });

  test('an unknown method is named only when it looks like a method name', () => {
    assert.equal(
      refusal('{"id":"1","method":"<script>","params":[]}').detail,
      'request.method: unknown method',
    );
  });

  test('an oversized request is payload_too_large before it is parsed', () => {
    const big = JSON.stringify({ id: '1', method: 'ping', params: [], pad: 'x'.repeat(300_000) });
    assert.equal(refusal(big).code, 'payload_too_large');
    const r = parseRequest(JSON.stringify({ id: '1', method: 'ping', params: ['x'.repeat(100)] }), {
      maxRequestBytes: 64,
      maxIdLength: 64,
    });
    assert.ok(!r.ok && r.error.code === 'payload_too_large');
  });
});

describe('responses', () => {
  test('result, error and auth_url answers serialize as NIP-46 says', () => {
    assert.equal(serializeResponse(resultResponse('1', 'pong')), '{"id":"1","result":"pong"}');
    assert.equal(
      serializeResponse(authUrlResponse('2', 'https://floe.example/approve/x')),
      '{"id":"2","result":"auth_url","error":"https://floe.example/approve/x"}',
    );
    const e = errorResponse('3', new Error('secret detail that must not leak'));
    assert.deepEqual(e, { id: '3', error: 'internal: internal error' });
  });

  test('parseResponse reads ours and the forms other signers send', () => {
    assert.deepEqual(parseResponse('{"id":"1","result":"ack"}'), { id: '1', result: 'ack' });
    // NDK's backend sends result "error" beside the error
    assert.deepEqual(parseResponse('{"id":"1","result":"error","error":"nope"}'), {
      id: '1',
      result: 'error',
      error: 'nope',
    });
    assert.deepEqual(parseResponse('{"id":"1","result":null,"error":""}'), { id: '1' });
    throwsCode(() => parseResponse('{"result":"x"}'), 'invalid_request');
    throwsCode(() => parseResponse('{"id":"1","result":5}'), 'invalid_request');
  });
});

describe('sign_event parameter', () => {
  const t = { kind: 1, content: 'hi', tags: [['t', 'x']], created_at: 1_700_000_000 };

  test('a template parses; pubkey may be the user or empty; id and sig are ignored', () => {
    assert.deepEqual(parseSignEventParam(JSON.stringify(t), user.pk), t);
    assert.deepEqual(
      parseSignEventParam(JSON.stringify({ ...t, pubkey: user.pk, id: 'x', sig: '' }), user.pk),
      t,
    );
    assert.deepEqual(parseSignEventParam(JSON.stringify({ ...t, pubkey: '' }), user.pk), t);
  });

  test('another pubkey is forbidden; NIP-01 rules hold; unknown fields are refused', () => {
    throwsCode(() => parseSignEventParam(JSON.stringify({ ...t, pubkey: client.pk }), user.pk), 'forbidden');
    throwsCode(
      () => parseSignEventParam(JSON.stringify({ ...t, kind: 70_000 }), user.pk),
      'event_kind_invalid',
    );
    throwsCode(
      () => parseSignEventParam(JSON.stringify({ ...t, tags: [[1]] }), user.pk),
      'event_tags_invalid',
    );
    throwsCode(() => parseSignEventParam(JSON.stringify({ ...t, extra: 1 }), user.pk), 'invalid_request');
    throwsCode(() => parseSignEventParam('{', user.pk), 'invalid_request');
    throwsCode(() => parseSignEventParam('[]', user.pk), 'invalid_request');
  });
});

describe('bunker:// URLs', () => {
  const relays = ['wss://relay.example.com', 'ws://127.0.0.1:7777'];

  test('toBunkerUrl builds exactly what nostr-tools toBunkerURL builds', () => {
    for (const secret of [null, 'a1b2c3']) {
      const p = { pubkey: signer.pk, relays, secret };
      assert.equal(toBunkerUrl(p), toBunkerURL(p));
    }
  });

  test('nostr-tools parses ours, and we parse nostr-tools', async () => {
    const p = { pubkey: signer.pk, relays, secret: 'f00d' };
    assert.deepEqual(await parseBunkerInput(toBunkerUrl(p)), p);
    assert.deepEqual(parseBunkerUrl(toBunkerURL(p)), p);
    assert.deepEqual(parseBunkerUrl(`bunker://${signer.pk}?relay=wss://relay.example.com/`), {
      pubkey: signer.pk,
      relays: ['wss://relay.example.com'],
      secret: null,
    });
  });

  test('bad bunker URLs are refused naming the rule', () => {
    throwsCode(
      () => parseBunkerUrl(`nostrconnect://${signer.pk}?relay=wss://r.example`),
      'invalid_request',
      /bunker:\/\//,
    );
    throwsCode(
      () => parseBunkerUrl(`bunker://${signer.pk.toUpperCase()}?relay=wss://r.example`),
      'invalid_request',
    );
    throwsCode(() => parseBunkerUrl(`bunker://${signer.pk}`), 'invalid_request', /names no relay/);
    throwsCode(
      () => parseBunkerUrl(`bunker://${signer.pk}?relay=https://r.example`),
      'invalid_request',
      /ws or wss/,
    );
    throwsCode(
      () => parseBunkerUrl(`bunker://${signer.pk}?relay=wss://r.example&secret=${'s'.repeat(300)}`),
      'invalid_request',
    );
  });
});

describe('nostrconnect:// URIs', () => {
  const base = {
    clientPubkey: client.pk,
    relays: ['wss://relay.example.com'],
    secret: 'xyz123',
    perms: ['sign_event:1', 'nip44_encrypt'],
    name: 'My App',
    url: 'https://app.example.com',
    image: 'https://app.example.com/logo.png',
  };

  test('toNostrConnectUri builds exactly what nostr-tools createNostrConnectURI builds', () => {
    assert.equal(toNostrConnectUri(base), createNostrConnectURI(base));
    const bare = { clientPubkey: client.pk, relays: base.relays, secret: 's', perms: [] };
    assert.equal(toNostrConnectUri(bare), createNostrConnectURI(bare));
  });

  test('we parse what nostr-tools creates, and its URL parser reads ours', () => {
    assert.deepEqual(parseNostrConnectUri(createNostrConnectURI(base)), base);
    const u = new URL(toNostrConnectUri(base));
    assert.equal(u.searchParams.get('secret'), base.secret);
    assert.equal(u.searchParams.get('perms'), 'sign_event:1,nip44_encrypt');
    assert.deepEqual(u.searchParams.getAll('relay'), base.relays);
  });

  test("NDK's form (empty name/url/image/perms, relay last) parses with the empties absent", () => {
    const ndk = `nostrconnect://${client.pk}?image=&url=&name=&perms=&secret=abc&relay=${encodeURIComponent('wss://r.example/')}`;
    assert.deepEqual(parseNostrConnectUri(ndk), {
      clientPubkey: client.pk,
      relays: ['wss://r.example'],
      secret: 'abc',
      perms: [],
    });
  });

  test('a URI without a secret, or with a non-http link, is refused', () => {
    throwsCode(
      () => parseNostrConnectUri(`nostrconnect://${client.pk}?relay=wss://r.example`),
      'invalid_request',
      /no secret/,
    );
    throwsCode(
      () =>
        parseNostrConnectUri(
          `nostrconnect://${client.pk}?relay=wss://r.example&secret=s&url=javascript:alert(1)`,
        ),
      'invalid_request',
      /http/,
    );
    throwsCode(
      () => parseNostrConnectUri(`nostrconnect://${client.pk}?secret=s`),
      'invalid_request',
      /no relay/,
    );
  });
});

describe('permissions', () => {
  const now = 1_700_000_000;

  test('method[:kind] parses and formats; only sign_event takes a kind', () => {
    assert.deepEqual(parsePermission('sign_event:1'), { method: 'sign_event', kind: 1 });
    assert.deepEqual(parsePermission('nip44_encrypt'), { method: 'nip44_encrypt' });
    assert.equal(
      formatPermissions(parsePermissions('sign_event:1, nip44_encrypt,sign_event:1')),
      'sign_event:1,nip44_encrypt',
    );
    throwsCode(() => parsePermission('nip44_encrypt:1'), 'invalid_request', /only sign_event/);
    throwsCode(() => parsePermission('sign_event:x'), 'invalid_request');
    throwsCode(() => parsePermission('sign_event:70000'), 'invalid_request');
    throwsCode(() => parsePermission('sign_event:-1'), 'invalid_request');
    throwsCode(() => parsePermission('get_relays'), 'invalid_request', /unknown method/);
    assert.deepEqual(parsePermissionsLenient(['sign_event:4', 'bogus', 'nip04_decrypt', '']), {
      permissions: [{ method: 'sign_event', kind: 4 }, { method: 'nip04_decrypt' }],
      ignored: ['bogus'],
    });
  });

  test('permissions given as objects are checked field by field', () => {
    assert.deepEqual(validatePermission({ method: 'sign_event', kind: 1, expiresAt: 5 }), {
      method: 'sign_event',
      kind: 1,
      expiresAt: 5,
    });
    throwsCode(() => validatePermission({ method: 'get_relays' }), 'invalid_request', /permission\.method/);
    throwsCode(
      () => validatePermission({ method: 'nip44_encrypt', kind: 1 }),
      'invalid_request',
      /only sign_event/,
    );
    throwsCode(() => validatePermission({ method: 'sign_event', kind: 1.5 }), 'invalid_request', /kind/);
    throwsCode(() => validatePermission({ method: 'ping', expiresAt: '1' }), 'invalid_request', /expiresAt/);
    throwsCode(() => validatePermission(null), 'invalid_request');
  });

  test('a bare sign_event covers every kind but NIP-98 27235, which needs sign_event:27235', () => {
    const bare = [parsePermission('sign_event')];
    assert.equal(checkPermission(bare, { method: 'sign_event', kind: 1 }, now).allowed, true);
    assert.equal(checkPermission(bare, { method: 'sign_event', kind: 30_023 }, now).allowed, true);
    assert.deepEqual(checkPermission(bare, { method: 'sign_event', kind: 27_235 }, now), {
      allowed: false,
      reason: 'not_granted',
    });
    const explicit = [parsePermission('sign_event:27235')];
    assert.equal(checkPermission(explicit, { method: 'sign_event', kind: 27_235 }, now).allowed, true);
    assert.equal(checkPermission(explicit, { method: 'sign_event', kind: 1 }, now).allowed, false);
    assert.equal(checkPermission(bare, { method: 'nip44_encrypt' }, now).allowed, false);
  });

  test('an expired grant is refused as expired; another live grant still counts', () => {
    const perms = [{ method: 'sign_event' as const, kind: 1, expiresAt: now }];
    assert.deepEqual(checkPermission(perms, { method: 'sign_event', kind: 1 }, now), {
      allowed: false,
      reason: 'expired',
    });
    assert.equal(checkPermission(perms, { method: 'sign_event', kind: 1 }, now - 1).allowed, true);
    const both = [...perms, { method: 'sign_event' as const }];
    assert.equal(checkPermission(both, { method: 'sign_event', kind: 1 }, now).allowed, true);
  });

  test('intersection narrows requests to what the operator allows, NIP-98 only when both say so', () => {
    const allow = parsePermissions('sign_event,nip44_encrypt');
    assert.equal(
      formatPermissions(
        intersectPermissions(
          parsePermissions('sign_event:1,sign_event:27235,nip04_encrypt,nip44_encrypt'),
          allow,
        ),
      ),
      'sign_event:1,nip44_encrypt',
    );
    assert.equal(
      formatPermissions(
        intersectPermissions(
          parsePermissions('sign_event'),
          parsePermissions('sign_event:1,sign_event:27235'),
        ),
      ),
      'sign_event:1',
    );
    assert.equal(
      formatPermissions(
        intersectPermissions(parsePermissions('sign_event:27235'), parsePermissions('sign_event:27235')),
      ),
      'sign_event:27235',
    );
    const timed = intersectPermissions(parsePermissions('sign_event:1'), [
      { method: 'sign_event', expiresAt: now },
    ]);
    assert.deepEqual(timed, [{ method: 'sign_event', kind: 1, expiresAt: now }]);
  });
});

describe('encryption of requests and answers', () => {
  const x = sharedX(signer.sk, client.pk);
  const msg = JSON.stringify({ id: '1', method: 'ping', params: [] });

  test('NIP-44 both ways with nostr-tools', () => {
    const ours = encryptContent(msg, x, 'nip44');
    assert.equal(detectEncryption(ours), 'nip44');
    assert.equal(ntNip44.decrypt(ours, ntNip44.getConversationKey(client.sk, signer.pk)), msg);
    const theirs = ntNip44.encrypt(msg, ntNip44.getConversationKey(client.sk, signer.pk));
    assert.deepEqual(decryptContent(theirs, x), { plaintext: msg, scheme: 'nip44' });
  });

  test('NIP-04 both ways with nostr-tools (NDK fallback), told apart by its form', () => {
    const ours = encryptContent(msg, x, 'nip04');
    assert.equal(detectEncryption(ours), 'nip04');
    assert.equal(ntNip04.decrypt(client.sk, signer.pk, ours), msg);
    const theirs = ntNip04.encrypt(client.sk, signer.pk, msg);
    assert.deepEqual(decryptContent(theirs, x), { plaintext: msg, scheme: 'nip04' });
  });

  test('oversized content is payload_too_large before decryption; a wrong key is invalid_encoding', () => {
    const big = ntNip44.encrypt('x'.repeat(5000), ntNip44.getConversationKey(client.sk, signer.pk));
    throwsCode(() => decryptContent(big, x, 1024), 'payload_too_large');
    throwsCode(() => decryptContent(big, sharedX(user.sk, client.pk)), 'invalid_encoding', /invalid MAC/);
    throwsCode(() => decryptContent(`${'A'.repeat(40)}?iv=${'A'.repeat(24)}`, x), 'invalid_encoding');
  });

  test('a request template is kind 24133 p-tagging the recipient', () => {
    const t = nip46Template('c', signer.pk, 5);
    assert.deepEqual(t, { kind: NIP46_KIND, created_at: 5, tags: [['p', signer.pk]], content: 'c' });
    throwsCode(() => nip46Template('c', 'nothex'), 'invalid_request');
  });
});
