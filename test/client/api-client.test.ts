import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiClient, ApiError } from '../../src/client/api-client.js';

describe('ApiClient', () => {
  let server: Server;
  let url = '';
  const seen: { method: string; url: string; auth: string | undefined; body: string }[] = [];
  let reply: (req: IncomingMessage, res: ServerResponse) => void = () => {};

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        reply(req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the bearer token, JSON bodies and query strings', async () => {
    reply = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[],"next_cursor":null}');
    const c = new ApiClient({ url: `${url}/`, token: 'floe_t' });
    await c.listSessions({ limit: 5, status: 'completed' });
    await c.createSession({ key_id: 'k', message: '00'.repeat(32), wait: 10 }, 'idem-1');
    const [list, create] = seen.slice(-2);
    assert.equal(list!.url, '/v1/sessions?limit=5&status=completed');
    assert.equal(list!.auth, 'Bearer floe_t');
    assert.equal(create!.method, 'POST');
    assert.deepEqual(JSON.parse(create!.body), { key_id: 'k', message: '00'.repeat(32), wait: 10 });
  });

  it('turns problem+json into one line with the code', async () => {
    reply = (_req, res) =>
      res.writeHead(403, { 'content-type': 'application/problem+json' }).end(
        JSON.stringify({
          type: 'x',
          title: 'forbidden',
          status: 403,
          code: 'forbidden',
          detail: 'this needs\nthe admin role',
        }),
      );
    const c = new ApiClient({ url, token: 'floe_t' });
    await assert.rejects(c.listKeys(), (e) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 403);
      assert.equal(e.code, 'forbidden');
      assert.equal(e.message, 'this needs the admin role (forbidden, HTTP 403)');
      return true;
    });
  });

  it('an error without a problem body still gives one line', async () => {
    reply = (_req, res) => res.writeHead(502).end('<html>bad gateway</html>');
    await assert.rejects(new ApiClient({ url, token: 't' }).listKeys(), /Bad Gateway \(http_502, HTTP 502\)/);
  });

  it('no token, or nobody listening: a clear line, no request or stack', async () => {
    await assert.rejects(new ApiClient({ url }).listKeys(), /no API token: pass --token, set FLOE_TOKEN/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(
      new ApiClient({ url: `http://127.0.0.1:${port}`, token: 't' }).listKeys(),
      (e) =>
        e instanceof ApiError &&
        e.message ===
          `cannot reach the coordinator at http://127.0.0.1:${port}: connection refused (is it running?)`,
    );
    // /healthz needs no token
    reply = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    assert.equal((await new ApiClient({ url }).health()).status, 'ok');
  });
});
