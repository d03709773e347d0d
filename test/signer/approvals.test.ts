/**
 * The signer's own check of the stewards (DESIGN §13, issue 13): a key under an approval policy
 * commits and releases a share only with a quorum of steward-signed decisions for this session
 * and intent; a policy changes only at its next revision with the current stewards' quorum; the
 * policy is kept under the key row's MAC. Decisions are signed with nostr-tools.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { normalizePolicy, type PolicyState, policyStateHashHex } from '../../src/approvals/policy.js';
import type { SigningPackageJson } from '../../src/crypto/encoding.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  type KeyPackage,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import type { Intent } from '../../src/domain/intent.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { SignOpenResponse } from '../../src/protocol/messages/sign.js';
import { changeApprovalPolicy } from '../../src/signer/approvals.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { decide, decidePolicy, steward } from '../approvals/helpers.js';
import { libsecpVerify } from '../helpers/independent.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

const [a, b, c, mallory] = [steward(), steward(), steward(), steward()];
const policy = normalizePolicy({
  stewards: [a.npub, b.npub, c.npub],
  threshold: 2,
  veto: true,
  expires_in_s: 600,
  required_for: { nostr_kinds: [1] },
});
const state: PolicyState = { revision: 0, policy };

function refuses(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, `expected ${code}`);
}

function cluster(keyPolicy: PolicyState | null = state) {
  const clock = new FakeClock();
  const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
  const nodes = shares.map((k: KeyPackage) => {
    const store = new MemoryStore();
    store.putKey({
      keyId: 'k1',
      identifier: k.identifier,
      status: 'active',
      origin: 'dealer',
      keyPackage: k,
      createdAt: 0,
      ...(keyPolicy ? { approvalPolicy: keyPolicy } : {}),
    });
    return { store, engine: new SigningEngine({ store, clock }) };
  });
  return { nodes, pub, clock, xOnly: xOnlyGroupKey(pub) };
}

const nowS = (clock: FakeClock) => Math.floor(clock.now() / 1000);

function pkgOf(message: string, opens: SignOpenResponse[]): SigningPackageJson {
  return {
    v: 1,
    type: 'signing_package',
    message,
    commitments: [...opens]
      .sort((x, y) => x.commitments.identifier - y.commitments.identifier)
      .map((o) => o.commitments),
  };
}

describe('signer: approvals before a share (DESIGN §13)', () => {
  const note: Intent = {
    type: 'nostr_event',
    event: { kind: 1, content: 'the family sells the car', tags: [], created_at: 1_700_000_000 },
  };

  it('refuses to open without a proven quorum: none, one, a forged second, the wrong session or intent', () => {
    const { nodes, clock, xOnly } = cluster();
    const req = openRequest({
      sessionId: 'ses_a',
      attempt: 1,
      included: [1, 2],
      intent: note,
      xOnlyKey: xOnly,
    });
    const e = nodes[0]!.engine;
    const at = nowS(clock);
    const ok = (s: typeof a) => decide(s, { sessionId: 'ses_a', intentHash: req.intent_hash, createdAt: at });
    refuses(() => e.open(req), 'approval_missing');
    refuses(() => e.open({ ...req, approvals: [ok(a)] }), 'approval_missing');
    refuses(() => e.open({ ...req, approvals: [ok(a), ok(mallory)] }), 'approval_missing');
    refuses(() => e.open({ ...req, approvals: [ok(a), ok(a)] }), 'approval_missing');
    refuses(
      () =>
        e.open({
          ...req,
          approvals: [ok(a), decide(b, { sessionId: 'ses_b', intentHash: req.intent_hash, createdAt: at })],
        }),
      'approval_missing',
    );
    refuses(
      () =>
        e.open({
          ...req,
          approvals: [ok(a), decide(b, { sessionId: 'ses_a', intentHash: 'ab'.repeat(32), createdAt: at })],
        }),
      'approval_missing',
    );
    // With veto, a rejection among them refuses even a quorum of approvals.
    refuses(
      () =>
        e.open({
          ...req,
          approvals: [
            ok(a),
            ok(b),
            decide(c, { sessionId: 'ses_a', intentHash: req.intent_hash, createdAt: at, decision: 'reject' }),
          ],
        }),
      'approval_missing',
    );
    assert.equal(e.liveAttempts, 0, 'no nonce was drawn for a refused open');
  });

  it('with two stewards approving, two signers sign; round 2 checks the approvals again', () => {
    const { nodes, clock, xOnly, pub } = cluster();
    const req = openRequest({
      sessionId: 'ses_a',
      attempt: 1,
      included: [1, 3],
      intent: note,
      xOnlyKey: xOnly,
    });
    const at = nowS(clock);
    const approvals = [a, c].map((s) =>
      decide(s, { sessionId: 'ses_a', intentHash: req.intent_hash, createdAt: at }),
    );
    const signers = [nodes[0]!, nodes[2]!];
    const opens = signers.map((n) => n.engine.open({ ...req, approvals }));
    const pkg = pkgOf(req.message, opens);
    const r2 = { key_id: 'k1', session_id: 'ses_a', attempt_id: req.attempt_id, signing_package: pkg };
    refuses(() => signers[0]!.engine.round2(r2), 'approval_missing');
    refuses(() => signers[0]!.engine.round2({ ...r2, approvals: approvals.slice(0, 1) }), 'approval_missing');
    assert.equal(signers[0]!.engine.liveAttempts, 1, 'a refused round 2 leaves the nonces live');
    assert.equal(signers[0]!.store.markers.length, 0, 'and writes no marker');
    const shares = signers.map((n) => decodeSignatureShare(n.engine.round2({ ...r2, approvals }).share));
    const msg = Buffer.from(req.message, 'hex');
    const sig = aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, shares);
    assert.ok(libsecpVerify(sig, msg, xOnly));
  });

  it('approvals too old for the policy (expiry plus the signing grace) no longer count', () => {
    const { nodes, clock, xOnly } = cluster();
    const req = openRequest({
      sessionId: 'ses_a',
      attempt: 1,
      included: [1, 2],
      intent: note,
      xOnlyKey: xOnly,
    });
    const at = nowS(clock);
    const approvals = [a, b].map((s) =>
      decide(s, { sessionId: 'ses_a', intentHash: req.intent_hash, createdAt: at }),
    );
    clock.advance((600 + 600 + 1) * 1000);
    refuses(() => nodes[0]!.engine.open({ ...req, approvals }), 'approval_missing');
  });

  it('intents the policy does not cover sign without approvals; keys without a policy as before', () => {
    const { nodes, xOnly } = cluster();
    const reaction: Intent = {
      type: 'nostr_event',
      event: { kind: 7, content: '+', tags: [], created_at: 1_700_000_000 },
    };
    nodes[0]!.engine.open(
      openRequest({ sessionId: 'ses_r', attempt: 1, included: [1, 2], intent: reaction, xOnlyKey: xOnly }),
    );
    refuses(
      () =>
        nodes[0]!.engine.open(
          openRequest({ sessionId: 'ses_d', attempt: 1, included: [1, 2], intent: new Uint8Array(32) }),
        ),
      'approval_missing',
    );
    const plain = cluster(null);
    plain.nodes[0]!.engine.open(
      openRequest({ sessionId: 'ses_p', attempt: 1, included: [1, 2], intent: note, xOnlyKey: plain.xOnly }),
    );
  });

  it('a batch refuses each item without its quorum on its own', () => {
    const { nodes, clock, xOnly } = cluster();
    const one = openRequest({
      sessionId: 'ses_1',
      attempt: 1,
      included: [1, 2],
      intent: note,
      xOnlyKey: xOnly,
    });
    const two = openRequest({
      sessionId: 'ses_2',
      attempt: 1,
      included: [1, 2],
      intent: note,
      xOnlyKey: xOnly,
    });
    const at = nowS(clock);
    const approvals = [a, b].map((s) =>
      decide(s, { sessionId: 'ses_1', intentHash: one.intent_hash, createdAt: at }),
    );
    const r = nodes[0]!.engine.openBatch({
      items: [
        { ...one, approvals },
        { ...two, approvals },
      ],
    });
    assert.ok(!('error' in r.items[0]!));
    assert.equal((r.items[1] as { error: { code: string } }).error.code, 'approval_missing');
  });
});

describe('signer: approval policy changes', () => {
  const key = (s: PolicyState | null) => {
    const c = cluster(s);
    return { store: c.nodes[0]!.store, clock: c.clock };
  };
  const next = normalizePolicy({ stewards: [a.pk, b.pk], threshold: 2 });

  it('a key without a policy takes one without approvals (a policy only restricts)', () => {
    const o = key(null);
    const r = changeApprovalPolicy(o, { key_id: 'k1', revision: 1, policy: next, approvals: [] });
    assert.equal(r.revision, 1);
    assert.deepEqual(o.store.getKey('k1')!.approvalPolicy, { revision: 1, policy: next });
  });

  it('a key with a policy changes only with a quorum of its current stewards over exactly this change', () => {
    const o = key(state);
    const at = nowS(o.clock);
    const from = policyStateHashHex('k1', state);
    const to = policyStateHashHex('k1', { revision: 1, policy: next });
    const req = { key_id: 'k1', revision: 1, policy: next, approvals: [] as unknown[] };
    refuses(() => changeApprovalPolicy(o, req as never), 'approval_missing');
    const approve = (s: typeof a, t = to) => decidePolicy(s, { keyId: 'k1', from, to: t, createdAt: at });
    refuses(() => changeApprovalPolicy(o, { ...req, approvals: [approve(a)] } as never), 'approval_missing');
    refuses(
      () => changeApprovalPolicy(o, { ...req, approvals: [approve(a), approve(mallory)] } as never),
      'approval_missing',
    );
    refuses(
      () =>
        changeApprovalPolicy(o, { ...req, approvals: [approve(a), approve(b, 'ab'.repeat(32))] } as never),
      'approval_missing',
    );
    refuses(
      () => changeApprovalPolicy(o, { ...req, revision: 2, approvals: [approve(a), approve(b)] } as never),
      'approval_policy_conflict',
    );
    const approvals = [approve(a), approve(c)];
    const r = changeApprovalPolicy(o, { ...req, approvals } as never);
    assert.deepEqual(r, { key_id: 'k1', revision: 1, policy_hash: to });
    assert.deepEqual(changeApprovalPolicy(o, { ...req, approvals } as never), r, 'a retry answers the same');
    // Back to the first policy: a new revision, so the old approvals prove nothing for it.
    refuses(
      () => changeApprovalPolicy(o, { key_id: 'k1', revision: 2, policy: policy, approvals } as never),
      'approval_missing',
    );
  });
});

describe('signer store: the approval policy under the key row MAC', () => {
  const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (
    path: string,
    o?: { timeout?: number },
  ) => { exec(s: string): void; close(): void };
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'floe-approvals-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const source = () => new PassphraseKeySource('approvals test', { N: 1 << 12 });

  it('round-trips, changes through the store, and cannot be dropped or changed with plain SQL', async () => {
    const path = join(dir, 'signer.db');
    const { shares } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
    let s = await SqliteSignerStore.open({ path, keySource: source(), create: true });
    const k = {
      identifier: 1,
      status: 'active' as const,
      origin: 'dealer' as const,
      keyPackage: shares[0]!,
      createdAt: 1,
    };
    s.putKey({ ...k, keyId: 'k1', approvalPolicy: state });
    s.putKey({ ...k, keyId: 'k2', approvalPolicy: state });
    s.putKey({ ...k, keyId: 'k3' });
    s.setApprovalPolicy('k2', { revision: 1, policy: null });
    s.close();
    s = await SqliteSignerStore.open({ path, keySource: source() });
    assert.deepEqual(s.getKey('k1')!.approvalPolicy, state);
    assert.deepEqual(s.getKey('k2')!.approvalPolicy, { revision: 1, policy: null });
    assert.equal(s.getKey('k3')!.approvalPolicy, undefined);
    s.close();
    const raw = new RawDatabase(path, { timeout: 5000 });
    raw.exec("UPDATE keys SET approval_policy = NULL WHERE key_id = 'k1'");
    raw.exec(`UPDATE keys SET approval_policy = '{"revision":0,"policy":null}' WHERE key_id = 'k3'`);
    raw.close();
    s = await SqliteSignerStore.open({ path, keySource: source() });
    for (const id of ['k1', 'k3']) {
      assert.throws(
        () => s.getKey(id),
        (e: unknown) => e instanceof FloeError && /failed its integrity check/.test(e.message),
      );
    }
    assert.equal(toHex(s.getKey('k2')!.keyPackage.signingShare), toHex(shares[0]!.signingShare));
    s.close();
  });
});
