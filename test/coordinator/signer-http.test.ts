/**
 * The coordinator's POST to a signer (src/coordinator/signer-http.ts), against a real HTTP
 * server on loopback: the answer read whole with its headers, connections kept alive and
 * reused, and every way it can go wrong rejecting: silence past the timeout, a connection
 * cut mid-answer, an answer over the size limit, nobody listening.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_ANSWER_BYTES, postToSigner, SignerTimeoutError } from '../../src/coordinator/signer-http.js';

describe('postToSigner', () => {
  let server: http.Server;
  let base: string;
  const connections = new Set<unknown>();
  let received: { body: string; headers: http.IncomingHttpHeaders }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        if (req.url === '/echo') {
          res.setHeader('floe-envelope', 'env-of-answer');
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ got: Buffer.concat(chunks).toString('utf8') }));
        } else if (req.url === '/refuse') {
          res.statusCode = 409;
          res.end('{"code":"conflict"}');
        } else if (req.url === '/silent') {
          // never answers
        } else if (req.url === '/cut') {
          res.writeHead(200, { 'content-length': '1000' });
          res.write('partial');
          setTimeout(() => res.destroy(), 20);
        } else if (req.url === '/huge') {
          res.writeHead(200);
          const block = Buffer.alloc(1024 * 1024, 0x61);
          let sent = 0;
          const push = () => {
            while (sent <= MAX_ANSWER_BYTES && res.write(block)) sent += block.length;
            if (sent <= MAX_ANSWER_BYTES) res.once('drain', push);
            else res.end();
          };
          push();
        }
      });
    });
    server.on('connection', (s) => connections.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends the body and headers, and reads the answer whole with its headers', async () => {
    received = [];
    const body = JSON.stringify({ message: 'é'.repeat(100) });
    const a = await postToSigner(
      `${base}/echo`,
      { 'content-type': 'application/json', 'floe-envelope': 'e1' },
      body,
      5000,
    );
    assert.equal(a.status, 200);
    assert.equal(a.headers['floe-envelope'], 'env-of-answer');
    assert.deepEqual(JSON.parse(a.text), { got: body });
    assert.equal(received[0]!.body, body);
    assert.equal(received[0]!.headers['floe-envelope'], 'e1');
    assert.equal(received[0]!.headers['content-length'], String(Buffer.byteLength(body)));
  });

  it('an error status is an answer, not a failure', async () => {
    const a = await postToSigner(`${base}/refuse`, {}, '{}', 5000);
    assert.equal(a.status, 409);
    assert.equal(a.text, '{"code":"conflict"}');
  });

  it('keeps the connection alive: consecutive requests share one', async () => {
    await postToSigner(`${base}/echo`, {}, '{}', 5000);
    const before = connections.size;
    for (let i = 0; i < 5; i++) await postToSigner(`${base}/echo`, {}, '{}', 5000);
    assert.equal(connections.size, before);
  });

  it('silence past the timeout rejects with SignerTimeoutError', async () => {
    const t0 = Date.now();
    await assert.rejects(postToSigner(`${base}/silent`, {}, '{}', 150), SignerTimeoutError);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('a connection cut mid-answer rejects (not a timeout)', async () => {
    await assert.rejects(postToSigner(`${base}/cut`, {}, '{}', 5000), (e: unknown) => {
      assert.ok(e instanceof Error && !(e instanceof SignerTimeoutError), String(e));
      return true;
    });
  });

  it('an answer over the size limit rejects', async () => {
    await assert.rejects(postToSigner(`${base}/huge`, {}, '{}', 30_000), /too large/);
  });

  it('nobody listening, or a URL that is not http(s), rejects', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(postToSigner(`http://127.0.0.1:${port}/x`, {}, '{}', 5000));
    await assert.rejects(postToSigner('ftp://127.0.0.1/x', {}, '{}', 5000), /unsupported protocol/);
  });
});
