/**
 * `floe up` end to end: real child processes on loopback. The printed curl signs; a signer
 * killed with -9 does not stop signing and comes back; SIGTERM stops everything with exit
 * code 0; a second start reuses the data.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';
import { generateSecretKey, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { readClusterState } from '../../src/cluster/state.js';
import { fromHex } from '../../src/crypto/hex.js';
import { alive, fetchCurl, parseCurl, spawnUp, startUp, type UpProcess, until } from '../helpers/e2e-floe.js';
import { libsecpVerify } from '../helpers/independent.js';
import { within } from '../nostr/helpers.js';

useWebSocketImplementation(WebSocket);

describe('floe up (local cluster, real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-e2e-up-'));
  const dataDir = join(dir, 'data');
  const stateFile = join(dataDir, 'cluster.json');
  const running: UpProcess[] = [];
  /** nostr-tools clients of the demo key's bunker (closed at the end). */
  const bunkerClients: { signer: BunkerSigner; pool: SimplePool }[] = [];
  after(async () => {
    for (const c of bunkerClients) {
      await c.signer.close();
      c.pool.destroy();
    }
    await Promise.all(running.map((u) => u.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  let ports: string[] = [];
  let url = '';
  let token = '';
  let keyId = '';
  let xOnly: Uint8Array = new Uint8Array();
  let firstUp: UpProcess;
  /** Keys of the per-passphrase addresses made through the address service. */
  const addressKeys: string[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, body: (await r.json()) as any };
  };
  const signAndVerify = async (message: string) => {
    const r = await api('POST', '/v1/sessions', { key_id: keyId, message, wait: 30_000 });
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.ok(libsecpVerify(fromHex(r.body.signature, 'sig', 64), fromHex(message, 'msg', 32), xOnly));
    return r.body;
  };

  it('starts on a fresh data dir with non-default ports; the printed curl returns a valid signature', async () => {
    const started = await startUp(['--data-dir', dataDir], { cwd: dir, signers: 3 });
    firstUp = started.up;
    running.push(firstUp);
    ports = ['--port', String(started.port), '--signer-port-base', String(started.signerPortBase)];
    const out = firstUp.output();
    assert.match(out, /Floe local cluster is ready/);
    assert.match(out, /passphrase files .* are for this local cluster only/);
    assert.match(out, new RegExp(`API docs +http://127\\.0\\.0\\.1:${started.port}/docs`));

    const state = readClusterState(stateFile)!;
    assert.equal(state.signers.length, 3);
    assert.equal(state.supervisor_pid, firstUp.proc.pid);
    keyId = state.demo_key!.id;
    xOnly = fromHex(state.demo_key!.x_only_public_key, 'x', 32);
    url = state.coordinator.url;
    token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    assert.equal(readFileSync(join(dataDir, 'admin.token')).length > 0, true);

    const req = parseCurl(out, dir);
    assert.equal(req.url, `${url}/v1/sessions`);
    assert.equal(req.headers.authorization, `Bearer ${token}`);
    const res = await fetchCurl(req);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.status, 'completed');
    const message = JSON.parse(req.body!).message as string;
    assert.ok(libsecpVerify(fromHex(res.body.signature, 'sig', 64), fromHex(message, 'msg', 32), xOnly));

    const key = await api('GET', `/v1/keys/${keyId}`);
    assert.equal(key.body.label, 'demo');
    assert.equal(key.body.threshold, 2);
    assert.equal(key.body.n, 3);
  });

  it('starts the address service on its own port, printed next to the API; regtest addresses through it', async () => {
    const out = firstUp.output();
    const state = readClusterState(stateFile)!;
    const svc = state.address_service!;
    assert.equal(svc.url, `http://127.0.0.1:${svc.port}`);
    assert.notEqual(svc.port, state.coordinator.port);
    assert.match(out, new RegExp(`Addresses +http://127\\.0\\.0\\.1:${svc.port} `));
    ports.push('--address-port', String(svc.port));
    const viaService = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${svc.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, body: (await r.json()) as any };
    };
    const a = await viaService('POST', '/v1/addresses', { passphrase: 'floe up address' });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.match(a.body.address, /^bcrt1p/);
    addressKeys.push(a.body.key_id);
    const d = await viaService('GET', `/v1/keys/${keyId}/addresses?count=2`);
    assert.equal(d.body.network, 'regtest');
    assert.equal((await viaService('GET', '/v1/sessions')).status, 404, 'no signing API there');
  });

  /** The bunker URL of the banner, with nostr-tools; `sk` connects as a known client again. */
  const bunkerClient = async (bunkerUrl: string, sk: Uint8Array) => {
    const pool = new SimplePool();
    pool.idleTimeout = 0;
    const bp = await parseBunkerInput(bunkerUrl);
    assert.ok(bp, 'nostr-tools parses the printed bunker URL');
    const signer = BunkerSigner.fromBunker(sk, bp, { pool });
    bunkerClients.push({ signer, pool });
    await within(signer.connect(), 20_000, 'connect to the demo bunker');
    return signer;
  };
  const bunkerSk = generateSecretKey();
  let bunkerPubkey = '';

  it('runs a local Nostr relay and prints the demo key’s bunker URL; nostr-tools connects and signs', async () => {
    const out = firstUp.output();
    const state = readClusterState(stateFile)!;
    const relay = state.relay!;
    assert.equal(relay.url, `ws://127.0.0.1:${relay.port}`);
    assert.match(out, new RegExp(`Nostr relay +ws://127\\.0\\.0\\.1:${relay.port} `));
    const printed = out.match(/bunker URL +(bunker:\/\/\S+)/)?.[1];
    assert.ok(printed, 'the banner prints a bunker URL');
    const bp = (await parseBunkerInput(printed))!;
    assert.deepEqual(bp.relays, [relay.url]);
    assert.ok(bp.secret, 'with a secret');
    bunkerPubkey = bp.pubkey;
    assert.notEqual(bunkerPubkey, state.demo_key!.x_only_public_key);
    // the relay is the demo key's relay too
    assert.deepEqual((await api('GET', `/v1/keys/${keyId}`)).body.relays, [relay.url]);
    const signer = await bunkerClient(printed, bunkerSk);
    assert.equal(
      await within(signer.getPublicKey(), 20_000, 'get_public_key'),
      state.demo_key!.x_only_public_key,
    );
    const ev = await within(
      signer.signEvent({
        kind: 1,
        created_at: Math.floor(Date.now() / 1000),
        tags: [],
        content: 'hello from floe up',
      }),
      20_000,
      'sign_event',
    );
    assert.equal(verifyEvent(ev), true);
    assert.equal(ev.pubkey, state.demo_key!.x_only_public_key);
  });

  it('kill -9 of a signer: signing goes on with the other two; the signer is restarted and rejoins', async () => {
    const before = readClusterState(stateFile)!;
    const victim = before.signers[1]!;
    process.kill(victim.pid!, 'SIGKILL');
    await until('victim dead', () => !alive(victim.pid));
    await signAndVerify('11'.repeat(32));

    const restarted = await until('signer-2 restarted', () => {
      const s = readClusterState(stateFile)!.signers[1]!;
      return s.pid !== victim.pid && s.restarts >= 1 && alive(s.pid) ? s : undefined;
    });
    assert.ok(restarted.pid);
    await firstUp.waitFor(/signer-2 \(pid \d+\) exited unexpectedly \(SIGKILL\)/, 20_000);
    await firstUp.waitFor(/signer-2 restarted \(pid \d+, restart 1\)/, 20_000);

    // Take signer 1 out: the next signature needs the restarted signer 2.
    const one = before.signers[0]!.id!;
    assert.equal((await api('PATCH', `/v1/signers/${one}`, { status: 'disabled' })).status, 200);
    const s = await signAndVerify('22'.repeat(32));
    assert.deepEqual(s.participants, [2, 3]);
    assert.equal((await api('PATCH', `/v1/signers/${one}`, { status: 'active' })).status, 200);
  });

  it('SIGTERM stops every child and exits 0', async () => {
    const state = readClusterState(stateFile)!;
    const pids = [state.coordinator.pid, state.address_service!.pid, ...state.signers.map((s) => s.pid)];
    assert.ok(pids.every((p) => alive(p)));
    assert.equal(await firstUp.stop('SIGTERM'), 0);
    for (const p of pids) assert.equal(alive(p), false, `child ${p} still running`);
    const after = readClusterState(stateFile)!;
    assert.equal(after.supervisor_pid, null);
    assert.match(firstUp.output(), /stopped\n$/);
  });

  it('a second start reuses the data (same token, signers, demo key; no new key); kill -9 of it takes the children along', async () => {
    const tokenBefore = readFileSync(join(dataDir, 'admin.token'), 'utf8');
    const second = spawnUp(['--data-dir', dataDir, ...ports], { cwd: dir });
    running.push(second);
    await second.waitFor(/Press Ctrl-C/);
    const out = second.output();
    assert.doesNotMatch(out, /registered signer/);
    assert.doesNotMatch(out, /creating the demo key/);
    assert.equal(readFileSync(join(dataDir, 'admin.token'), 'utf8'), tokenBefore);
    const state = readClusterState(stateFile)!;
    assert.equal(state.demo_key!.id, keyId);
    const keys = await api('GET', '/v1/keys');
    assert.deepEqual(keys.body.items.map((k: { id: string }) => k.id).sort(), [keyId, ...addressKeys].sort());
    const signers = await api('GET', '/v1/signers');
    assert.equal(signers.body.items.length, 3);
    await signAndVerify('33'.repeat(32));

    // a fresh bunker URL for the same bunker; the client from the first run is still known
    const printed = out.match(/bunker URL +(bunker:\/\/\S+)/)?.[1];
    assert.ok(printed);
    const bp = (await parseBunkerInput(printed))!;
    assert.equal(bp.pubkey, bunkerPubkey, 'the same remote-signer key after a restart');
    const known = await bunkerClient(
      `bunker://${bp.pubkey}?relay=${encodeURIComponent(bp.relays[0]!)}`,
      bunkerSk,
    );
    const ev = await within(
      known.signEvent({ kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: 'again' }),
      20_000,
      'sign_event after a restart',
    );
    assert.equal(verifyEvent(ev), true);

    // A second supervisor on the same data dir is refused.
    const third = spawnUp(['--data-dir', dataDir, ...ports], { cwd: dir });
    assert.equal(await third.exited, 1);
    assert.match(third.stderr(), /already running/);

    // A supervisor killed outright takes its children with it (they watch its pipe).
    const pids = [state.coordinator.pid, ...state.signers.map((s) => s.pid)];
    await second.stop('SIGKILL');
    await until('children gone after kill -9 of floe up', () => pids.every((p) => !alive(p)), 20_000);
  });
});
