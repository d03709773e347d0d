/**
 * A compromised coordinator (DESIGN §11, docs/threat-model.md): real signer processes, and a
 * coordinator written by the attacker in this file — it holds the allowlisted coordinator
 * identity and talks to the signers directly. It must not learn a key (through an import or
 * a DKG with members of its choosing), and must not frame an honest signer for a bad share.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import { encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import {
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  decodeSigningPackage,
  encodeCommitments,
  generateIdentityKey,
  identityPublicKey,
  type PublicKeyPackage,
  softwareIdentity,
  toHex,
  verifyShare,
} from '../../src/crypto/index.js';
import { judgeCommitments, judgeShare, type SignedAnswer } from '../../src/protocol/blame.js';
import { FloeError } from '../../src/protocol/errors.js';
import { importOver } from '../helpers/drive.js';
import { runFloe } from '../helpers/e2e-floe.js';
import {
  type SignerProcess,
  signerIdentities,
  startSignerProcess,
  TEST_SCRYPT_N,
} from '../helpers/processes.js';
import { openRequest } from '../helpers/sign-requests.js';

const coordinator = softwareIdentity(generateIdentityKey());
const PASS = 'attack test passphrase';

function refusedWith(code: string) {
  return (e: unknown) => e instanceof FloeError && e.code === code;
}

/** `n` real signer processes that pin each other as peers; the attacker's identity is their coordinator. */
async function signers(dir: string, n: number, faults: Record<number, string> = {}) {
  const dirs = Array.from({ length: n }, (_, i) => join(dir, `s${i + 1}`));
  const peers = await signerIdentities(dirs, PASS, { scryptN: TEST_SCRYPT_N });
  const procs = await Promise.all(
    dirs.map((dataDir, i) =>
      startSignerProcess({
        dataDir,
        coordinators: [coordinator.publicKeyHex],
        passphrase: PASS,
        peers,
        ...(faults[i] ? { faults: faults[i] } : {}),
      }),
    ),
  );
  const clients = procs.map(
    (p) => new SignerClient({ url: p.url, signerIdentity: p.identity, identity: coordinator }),
  );
  return { procs, clients };
}

describe('a compromised coordinator choosing the members', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-attack-members-'));
  let procs: SignerProcess[] = [];
  let clients: SignerClient[] = [];
  before(async () => {
    ({ procs, clients } = await signers(dir, 2));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('cannot run a DKG with a member of its own: every honest signer refuses round 1', async () => {
    // With a 2-of-3 key whose member 3 is the attacker, the attacker plus one share would be a
    // quorum; worse, with t fake members it rebuilds the key. The roster stops it at round 1.
    const participants = [
      { identifier: 1, identity: procs[0]!.identity },
      { identifier: 2, identity: procs[1]!.identity },
      { identifier: 3, identity: toHex(identityPublicKey(generateIdentityKey())) },
    ];
    for (const [i, c] of clients.entries()) {
      await assert.rejects(
        c.call('dkgRound1', {
          ceremony_id: 'cer_attack',
          key_id: 'key_attack',
          threshold: 2,
          n: 3,
          identifier: i + 1,
          participants,
        }),
        refusedWith('not_on_roster'),
      );
    }
  });

  it('cannot get an imported share accepted for a member list with itself in it', async () => {
    const outsider = toHex(identityPublicKey(generateIdentityKey()));
    const members = [
      { identifier: 1, identity: procs[0]!.identity },
      { identifier: 2, identity: outsider },
    ];
    await assert.rejects(
      clients[0]!.call('keyImport', {
        key_id: 'key_attack_import',
        identifier: 1,
        members,
        public_key_package: encodePublicKeyPackage(dealerSplit(new Uint8Array(randomBytes(32)), 2, 2).public),
        sealed_share: { sender: '00'.repeat(32), nonce: '00'.repeat(12), ciphertext: '00'.repeat(48) },
      }),
      refusedWith('not_on_roster'),
    );
  });
});

describe('floe key import against a coordinator that lists its own keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-attack-import-'));
  let server: Server;
  let url = '';
  const imports: unknown[] = [];
  const pinned = [1, 2, 3].map(() => toHex(identityPublicKey(generateIdentityKey())));
  const attacker = [1, 2, 3].map(() => toHex(identityPublicKey(generateIdentityKey())));
  let listed = attacker;

  before(async () => {
    // The roster the operator pinned (as `floe init` writes deployment.json).
    writeFileSync(
      join(dir, 'deployment.json'),
      JSON.stringify({ signers: pinned.map((identity) => ({ identity })) }),
    );
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET' && req.url === '/v1/signers') {
          const items = listed.map((identity, i) => ({
            id: `sig_${i + 1}`,
            name: null,
            url: 'http://127.0.0.1:1',
            identity,
            status: 'active',
            fault_count: 0,
            quarantined: false,
            quarantine_override: false,
            last_seen_at: null,
            last_latency_ms: null,
            created_at: i,
          }));
          res.end(JSON.stringify({ items, next_cursor: null }));
        } else if (req.method === 'POST' && req.url === '/v1/keys/import') {
          imports.push(JSON.parse(body));
          // Claims success without any signer having certified anything.
          const b = JSON.parse(body);
          res.statusCode = 201;
          res.end(
            JSON.stringify({
              id: b.key_id,
              x_only_public_key: b.public_key_package.commitments[0].slice(2),
              import_certificates: [],
            }),
          );
        } else {
          res.statusCode = 404;
          res.end('{}');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const importKey = () =>
    runFloe(
      ['key', 'import', '--secret-hex', '-', '--threshold', '2', '--roster', join(dir, 'deployment.json')],
      {
        cwd: dir,
        env: {
          FLOE_URL: url,
          FLOE_TOKEN: 'floe_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        },
        input: toHex(randomBytes(32)),
      },
    );

  it('refuses to seal a share to an identity outside the pinned roster: nothing reaches the coordinator', async () => {
    listed = attacker;
    const r = await importKey();
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not in your roster; refusing to seal a share/);
    assert.equal(imports.length, 0, 'no sealed share was ever sent');
  });

  it('with the pinned identities listed, refuses a key whose members did not certify it', async () => {
    listed = pinned;
    const r = await importKey();
    assert.equal(imports.length, 1, 'the shares were sealed to the pinned identities and sent');
    const sealedTo = (imports[0] as { sealed_shares: { sender: string }[] }).sealed_shares.length;
    assert.equal(sealedTo, 3);
    assert.notEqual(r.code, 0, 'but the coordinator cannot make the client accept the key');
    assert.match(r.stderr, /member 1 .* did not certify this import under its pinned identity key/);
  });
});

describe('a compromised coordinator framing an honest signer (package swap)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-attack-frame-'));
  let procs: SignerProcess[] = [];
  let clients: SignerClient[] = [];
  let pub: PublicKeyPackage;
  before(async () => {
    // Signer 3 corrupts its shares, signer 4 reports commitments it has no nonces for.
    ({ procs, clients } = await signers(dir, 4, { 2: 'corrupt_shares', 3: 'wrong_commitments' }));
    ({ pub } = await importOver(clients, 2, 'key_frame'));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Open an attempt with members `ids` (1-based) and return their commitments and open answers. */
  async function open(sessionId: string, ids: number[]) {
    const req = openRequest({
      keyId: 'key_frame',
      sessionId,
      attempt: 1,
      included: ids,
      intent: new Uint8Array(randomBytes(32)),
    });
    const answers = await Promise.all(ids.map((id) => clients[id - 1]!.exchange('signOpen', req)));
    return { req, answers, commitments: answers.map((a) => a.body.commitments) };
  }

  function pkgOf(req: { message: string }, commitments: ReturnType<typeof encodeCommitments>[]) {
    return { v: 1 as const, type: 'signing_package' as const, message: req.message, commitments };
  }

  async function round2(
    id: number,
    req: { session_id: string; attempt_id: string },
    pkg: ReturnType<typeof pkgOf>,
  ) {
    return clients[id - 1]!.exchange('signRound2', {
      key_id: 'key_frame',
      session_id: req.session_id,
      attempt_id: req.attempt_id,
      signing_package: pkg,
    });
  }

  const claim = (
    evidence: SignedAnswer,
    req: { session_id: string; attempt_id: string; intent_hash: string },
    pkg: ReturnType<typeof pkgOf>,
  ) =>
    judgeShare({
      evidence,
      sessionId: req.session_id,
      attemptId: req.attempt_id,
      intentHash: req.intent_hash,
      tweak: null,
      signingPackage: pkg,
      publicKeyPackage: encodePublicKeyPackage(pub),
    });

  it('signer 1 shown a fake commitment for signer 2 signs; its genuine share cannot be pinned on it', async () => {
    const { req, commitments } = await open('ses_frame_1', [1, 2]);
    const real = pkgOf(req, commitments);
    const fakeFor2 = encodeCommitments({
      ...decodeCommitments(commitments[1]!),
      binding: decodeCommitments(commitments[0]!).binding,
    });
    const shown = pkgOf(req, [commitments[0]!, fakeFor2]);
    const s1 = await round2(1, req, shown);
    // The naive check — verify signer 1's share under the real package — would blame it:
    const share = decodeSignatureShare(s1.body.share);
    assert.equal(
      verifyShare(pub, decodeSigningPackage(real), share),
      false,
      'the share fails under the real package',
    );
    // But its signed answer says which package it signed: the claim is not about that one.
    assert.equal(claim(s1.evidence, req, real), 'other_package');
    assert.equal(claim(s1.evidence, req, shown), 'valid_share', 'under what it was shown, the share is good');
    // Nor does tampering with the evidence help: another signer's identity, or an edited body.
    assert.equal(claim({ ...s1.evidence, signer: procs[1]!.identity }, req, shown), 'not_evidence');
    assert.equal(
      claim(
        { ...s1.evidence, body: s1.evidence.body.replace(s1.body.share.share, '00'.repeat(32)) },
        req,
        shown,
      ),
      'not_evidence',
    );
  });

  it('a signer that really releases a bad share is proven at fault by its own signed answer', async () => {
    const { req, commitments } = await open('ses_frame_2', [1, 3]);
    const pkg = pkgOf(req, commitments);
    const [, s3] = await Promise.all([round2(1, req, pkg), round2(3, req, pkg)]);
    assert.equal(claim(s3.evidence, req, pkg), 'invalid_share');
  });

  it('a signer that signs with other nonces than it committed to is proven to equivocate', async () => {
    const { req, answers, commitments } = await open('ses_frame_3', [1, 4]);
    const pkg = pkgOf(req, commitments);
    const [r1, r4] = await Promise.all([round2(1, req, pkg), round2(4, req, pkg)]);
    assert.equal(judgeCommitments(answers[1]!.evidence, r4.evidence), 'equivocation');
    assert.equal(
      judgeCommitments(answers[0]!.evidence, r1.evidence),
      'consistent',
      'an honest signer is consistent',
    );
    // Its answer names another package than the one it was sent (its real commitment inside).
    assert.equal(claim(r4.evidence, req, pkg), 'other_package');
  });
});
