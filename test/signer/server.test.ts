import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import {
  generateIdentityKey,
  type NodeIdentity,
  softwareIdentity,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { FloeError } from '../../src/protocol/errors.js';
import { openSignerStore, type RunningSigner, startSigner } from '../../src/signer/node.js';
import { dkgOver, importOver, signOver } from '../helpers/drive.js';
import { libsecpVerify } from '../helpers/independent.js';

const coordinator = softwareIdentity(generateIdentityKey());
const coordinatorPub = coordinator.publicKeyHex;
const PASS = 'correct horse battery staple';

describe('signer HTTP API with real SQLite stores', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-signer-'));
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  // Record the randomness each node's engine draws for nonces; the nonces themselves are
  // H3(randomness || share) (RFC 9591 nonce_generate), recomputed below.
  const drawn: { node: number; rand: Uint8Array }[] = [];
  let nodes: RunningSigner[] = [];
  let clients: SignerClient[] = [];

  before(async () => {
    // Each node's roster (DESIGN §11): the three of them, whose identities their stores hold.
    const peers = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const { store, identity } = await openSignerStore(
          { data_dir: join(dir, `s${i}`) },
          { FLOE_SIGNER_PASSPHRASE: PASS },
          { scryptN: 1 << 12 },
        );
        store.close();
        identity.dispose();
        return identity.publicKeyHex;
      }),
    );
    nodes = await Promise.all(
      [1, 2, 3].map((i) =>
        startSigner(
          {
            data_dir: join(dir, `s${i}`),
            listen: '127.0.0.1:0',
            coordinators: [coordinatorPub],
            peers,
            max_live_attempts: 1024,
            attempt_ttl_s: 600,
            log_level: 'trace',
          },
          { FLOE_SIGNER_PASSPHRASE: PASS },
          {
            scryptN: 1 << 12,
            logger: { level: 'trace', stream: logStream },
            rng: (len = 32) => {
              const r = new Uint8Array(randomBytes(len));
              drawn.push({ node: i, rand: r.slice() });
              return r;
            },
          },
        ),
      ),
    );
    clients = nodes.map(
      (n) => new SignerClient({ url: n.url, signerIdentity: n.identityPub, identity: coordinator }),
    );
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a DKG and signs; the signature verifies with libsecp256k1; logs and files hold no secret', async () => {
    const pub = await dkgOver(clients, 2, 'k-dkg');
    for (const pair of [
      [0, 1],
      [1, 2],
      [0, 2],
    ]) {
      const { sig, message } = await signOver(
        pair.map((i) => ({ client: clients[i]!, id: i + 1 })),
        pub,
        'k-dkg',
      );
      assert.ok(libsecpVerify(sig, message, xOnlyGroupKey(pub)));
    }
    const imported = await importOver(clients, 2, 'k-imp');
    const { sig, message } = await signOver(
      [
        { client: clients[2]!, id: 3 },
        { client: clients[0]!, id: 1 },
      ],
      imported.pub,
      'k-imp',
    );
    assert.ok(libsecpVerify(sig, message, xOnlyGroupKey(imported.pub)));

    // Secrets: every share, every identity key.
    const secrets: string[] = [];
    for (const n of nodes) {
      for (const k of ['k-dkg', 'k-imp']) secrets.push(toHex(n.store.getKey(k)!.keyPackage.signingShare));
      secrets.push(toHex(n.store.getIdentity()!));
    }
    for (const s of imported.shares) secrets.push(toHex(s.signingShare));
    assert.ok(drawn.length >= 16, 'nonce randomness was drawn through the recorder');
    const H3 = { DST: new TextEncoder().encode('FROST-secp256k1-SHA256-TR-v1nonce') };
    for (const d of drawn) {
      secrets.push(toHex(d.rand));
      for (const k of ['k-dkg', 'k-imp']) {
        const share = nodes[d.node - 1]!.store.getKey(k)!.keyPackage.signingShare;
        const nonce = secp256k1_hasher.hashToScalar(new Uint8Array([...d.rand, ...share]), H3);
        secrets.push(nonce.toString(16).padStart(64, '0'));
      }
    }
    const logs = logLines.join('');
    assert.ok(logs.length > 1000, 'trace logging captured requests');
    for (const s of secrets) {
      assert.ok(!logs.includes(s), 'a secret appeared in the logs');
      for (const f of readdirSync(dir, { recursive: true }) as string[]) {
        const p = join(dir, f);
        let buf: Buffer;
        try {
          buf = readFileSync(p);
        } catch {
          continue;
        }
        assert.ok(!buf.includes(Buffer.from(s, 'hex')), `raw secret bytes found in ${f}`);
        assert.ok(!buf.toString('latin1').includes(s), `secret hex found in ${f}`);
      }
    }
  });

  it('every response is signed by the signer and bound to its request', async () => {
    const res = await clients[0]!.call('nodeInfo', {});
    assert.equal(res.identity, nodes[0]!.identityPub);
    // A client expecting another signer identity rejects the answer.
    const wrong = new SignerClient({
      url: nodes[0]!.url,
      signerIdentity: nodes[1]!.identityPub,
      identity: coordinator,
    });
    await assert.rejects(
      wrong.call('nodeInfo', {}),
      (e: unknown) => e instanceof FloeError && e.code === 'response_unverified',
    );
  });

  async function raw(envelope: string | undefined, body: string, path = '/v1/sign/abort') {
    const res = await fetch(`${nodes[0]!.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(envelope ? { [ENVELOPE_HEADER]: envelope } : {}) },
      body,
    });
    return {
      status: res.status,
      body: (await res.json()) as { code: string },
      signed: res.headers.has(ENVELOPE_HEADER),
    };
  }

  it('refuses forged, replayed, stale, future, mis-addressed, unknown-sender and body-swapped requests', async () => {
    const body = JSON.stringify({ session_id: 'x' });
    const seal = (
      o: Partial<{ identity: NodeIdentity; to: string; now: number; type: string; body: string }> = {},
    ) =>
      sealEnvelope({
        identity: o.identity ?? coordinator,
        to: o.to ?? nodes[0]!.identityPub,
        type: o.type ?? 'sign.abort',
        body: o.body ?? body,
        now: o.now ?? Date.now(),
      });
    const ok = seal();
    assert.equal((await raw(encodeEnvelope(ok), body)).status, 200);
    const replay = await raw(encodeEnvelope(ok), body);
    // Unsigned: the replayed request is not authenticated, so nothing signed may answer it.
    assert.deepEqual([replay.status, replay.body.code, replay.signed], [409, 'envelope_replay', false]);

    const forged = { ...seal(), sig: seal().sig };
    assert.equal((await raw(encodeEnvelope(forged), body)).body.code, 'envelope_bad_signature');
    assert.equal(
      (await raw(encodeEnvelope(seal({ now: Date.now() - 120_000 })), body)).body.code,
      'envelope_stale',
    );
    assert.equal(
      (await raw(encodeEnvelope(seal({ now: Date.now() + 120_000 })), body)).body.code,
      'envelope_future',
    );
    assert.equal(
      (await raw(encodeEnvelope(seal({ to: nodes[1]!.identityPub })), body)).body.code,
      'envelope_wrong_recipient',
    );
    const stranger = softwareIdentity(generateIdentityKey());
    assert.equal(
      (await raw(encodeEnvelope(seal({ identity: stranger })), body)).body.code,
      'envelope_unknown_sender',
    );
    assert.equal(
      (await raw(encodeEnvelope(seal()), JSON.stringify({ session_id: 'y' }))).body.code,
      'envelope_body_mismatch',
    );
    assert.equal(
      (await raw(encodeEnvelope(seal({ type: 'sign.open' })), body)).body.code,
      'envelope_wrong_type',
    );
    assert.equal((await raw(undefined, body)).body.code, 'envelope_malformed');
  });

  it('refuses invalid bodies with invalid_request and no state change', async () => {
    await assert.rejects(
      clients[0]!.call('signOpen', {
        key_id: 'k-dkg',
        session_id: 's',
        attempt: 1,
        included: [1, 2],
        message: 'zz',
        attempt_id: '00',
      } as never),
      (e: unknown) => e instanceof FloeError && e.code === 'invalid_request',
    );
    assert.equal((await clients[0]!.call('nodeInfo', {})).live_attempts, 0);
  });

  it('serves health and Prometheus metrics without secrets', async () => {
    const h = (await (await fetch(`${nodes[0]!.url}/healthz`)).json()) as {
      status: string;
      identity: string;
    };
    assert.deepEqual([h.status, h.identity], ['ok', nodes[0]!.identityPub]);
    const m = await (await fetch(`${nodes[0]!.url}/metrics`)).text();
    assert.match(m, /floe_signer_requests_total\{type="sign.round2",outcome="ok"\} \d+/);
    assert.match(m, /floe_signer_refusals_total\{code="envelope_replay"\} 1/);
    assert.match(m, /floe_signer_live_attempts 0/);
    // Every session here was signed at its first attempt: nothing to fence.
    assert.match(m, /floe_signer_fenced_sessions 0/);
    assert.match(m, /floe_signer_round_seconds_bucket/);
  });

  it('records what it signed in the audit log', () => {
    const audit = nodes[0]!.store.listAudit(100);
    assert.ok(audit.some((a) => a.kind === 'sign' && a.keyId === 'k-dkg' && a.messageDigest?.length === 64));
  });
});
