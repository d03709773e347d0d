/**
 * The cluster the signer fuzz tests run against: three real signer nodes (HTTP servers with
 * SQLite stores, in this process), a coordinator identity they trust, and a stranger they do
 * not. Node 1 is the node under fuzz: identifier 1 in every key and ceremony.
 *
 * It sends signed requests and checks every answer (no 5xx; a refusal is a signed RFC 9457
 * problem with a stable code whose status matches the code table; the node still answers
 * /healthz), and snapshots the node's state (row counts and content hashes of every SQLite
 * table, read through a separate read-only connection, and the live attempts / ceremonies /
 * keys gauges of /metrics) to check that a refused request changed nothing. Every request has
 * a timeout, so that a property fails instead of waiting forever.
 *
 * Fixtures: DKG ceremonies stopped at any round, live signing attempts, and probes that a
 * fixture survived the refusals (an attempt re-opens with the same commitments and signs a
 * BIP-340 signature; a ceremony completes and is certified by every member).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import {
  aggregate,
  decodeCommitments,
  decodeSignatureShare,
  fromHex,
  generateIdentityKey,
  type NodeIdentity,
  type PublicKeyPackage,
  softwareIdentity,
  toHex,
  verifySignature,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import { type Intent, resolveIntent } from '../../src/domain/intent.js';
import { attemptIdHex } from '../../src/protocol/attempt.js';
import { ENVELOPE_HEADER, encodeEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import { ERROR_STATUS, FloeError, isErrorCode } from '../../src/protocol/errors.js';
import { acceptResponse } from '../../src/protocol/exchange.js';
import {
  type RequestOf,
  type ResponseOf,
  SIGNER_MESSAGES,
  type SignerMessageName,
} from '../../src/protocol/messages/index.js';
import { openSignerStore, type RunningSigner, startSigner } from '../../src/signer/node.js';
import { dkgOver, importOver } from './drive.js';
import type { Body } from './fuzz-mutate.js';
import { openRequest } from './sign-requests.js';

const PASS = 'correct horse battery staple';
/** One request to a signer; far above what any takes, far below a test's limit. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A fresh object id with a recognisable prefix. */
export const rid = (prefix: string) => `${prefix}-${toHex(randomBytes(5))}`;

type Db = {
  prepare(sql: string): { all(...p: unknown[]): unknown[] };
  close(): void;
};
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  o: { readonly: boolean; fileMustExist: boolean },
) => Db;

export interface Snapshot {
  tables: Record<string, { rows: number; sha256: string }>;
  /** key_id → `status:sha256 of the row`, to describe the one change a terminal DKG refusal may make. */
  keys: Record<string, string>;
  live_attempts: number;
  live_ceremonies: number;
  keys_gauge: number;
}

export interface Answer {
  status: number;
  code?: string;
  text: string;
  /** Parsed response when accepted. */
  ok?: any;
}

export interface Ceremony {
  id: string;
  /** Members: the first n nodes. */
  n: number;
  keyId: string;
  round1Req: RequestOf<'dkgRound1'>[];
  round1?: ResponseOf<'dkgRound1'>[];
  round2?: ResponseOf<'dkgRound2'>[];
  round3?: ResponseOf<'dkgRound3'>[];
}

export interface Attempt {
  keyId: string;
  pub: PublicKeyPackage;
  open: RequestOf<'signOpen'>;
  /** Commitments node 1 (the node under test) answered. */
  own: ResponseOf<'signOpen'>['commitments'];
  /** Members whose commitments form the signing package (1 always among them). */
  signers: number[];
  round2: RequestOf<'signRound2'>;
}

/** Mostly 2-of-2 ceremonies (a third of the work of 2-of-3), sometimes 2-of-3. */
export const sizeArb = fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, fc.constant(3));

// ------------------------------------------------------------------------------------------
// sign.open: valid requests come from test/helpers/sign-requests.ts (as a coordinator builds
// them); this derives the dependent fields of a mutated one again, to get past the checks that
// compare them and reach the deeper ones.

/**
 * `body` with the fields that follow from others derived again: `attempt_id` from the rest
 * (`what: 'attempt_id'`), or first `message` and `intent_hash` from the (possibly mutated)
 * intent as `xOnlyKey` would resolve it (`what: 'intent'`). Unchanged where the fields no
 * longer derive anything: then it is sent as mutated.
 */
export function rederiveOpen(body: Body, what: 'attempt_id' | 'intent', xOnlyKey?: Uint8Array): Body {
  let b = body;
  try {
    if (what === 'intent') {
      const r = resolveIntent(b.intent as Intent, { xOnlyKey: xOnlyKey ?? new Uint8Array(32) });
      b = { ...b, message: toHex(r.digest), intent_hash: toHex(r.intentHash) };
    }
    return {
      ...b,
      attempt_id: attemptIdHex({
        sessionId: b.session_id,
        digest: fromHex(b.message, 'message', 32),
        intentHash: fromHex(b.intent_hash, 'intent_hash', 32),
        attempt: b.attempt,
        included: b.included,
      }),
    };
  } catch {
    return b;
  }
}

// ------------------------------------------------------------------------------------------

export class FuzzCluster {
  readonly coordinator = softwareIdentity(generateIdentityKey());
  readonly coordinatorPub = this.coordinator.publicKeyHex;
  /** An identity no node trusts. */
  readonly stranger = softwareIdentity(generateIdentityKey());
  nodes: RunningSigner[] = [];
  clients: SignerClient[] = [];
  /** The nodes' identities (to seal boxes as a real sender would). */
  identities: NodeIdentity[] = [];
  /** Keys held by every node: `k-dkg` (2-of-3 by DKG) and `k-imp` (2-of-3 by dealer import), as started. */
  readonly keys: Record<string, PublicKeyPackage> = {};
  /** Fuzzed exchanges with the node under test. */
  exchanges = 0;
  private db!: Db;
  private readonly dir = mkdtempSync(join(tmpdir(), 'floe-fuzz-signer-'));

  /** The node under fuzz. */
  get T(): RunningSigner {
    return this.nodes[0]!;
  }

  /**
   * Start three nodes and create `keys` on all of them (default both; a DKG key costs about
   * half a second, an imported one a fifth).
   */
  static async start(o: { keys?: ('k-dkg' | 'k-imp')[] } = {}): Promise<FuzzCluster> {
    const c = new FuzzCluster();
    const dirs = [1, 2, 3].map((i) => join(c.dir, `s${i}`));
    // Each node's roster: the three of them (their identities, created in their stores first).
    const peers = await Promise.all(
      dirs.map(async (data_dir) => {
        const { store, identity } = await openSignerStore(
          { data_dir },
          { FLOE_SIGNER_PASSPHRASE: PASS },
          {
            scryptN: 1 << 12,
          },
        );
        store.close();
        return identity.publicKeyHex;
      }),
    );
    c.nodes = await Promise.all(
      dirs.map((data_dir) =>
        startSigner(
          {
            data_dir,
            listen: '127.0.0.1:0',
            coordinators: [c.coordinatorPub],
            peers,
            max_live_attempts: 1024,
            attempt_ttl_s: 600,
            log_level: 'fatal',
          },
          { FLOE_SIGNER_PASSPHRASE: PASS },
          { scryptN: 1 << 12, logger: false },
        ),
      ),
    );
    c.clients = c.nodes.map(
      (n) =>
        new SignerClient({
          url: n.url,
          signerIdentity: n.identityPub,
          identity: c.coordinator,
          timeoutMs: REQUEST_TIMEOUT_MS,
        }),
    );
    c.identities = c.nodes.map((n) => softwareIdentity(n.store.getIdentity()!));
    c.db = new Database(c.T.store.path, { readonly: true, fileMustExist: true });
    const keys = o.keys ?? ['k-dkg', 'k-imp'];
    if (keys.includes('k-dkg')) c.keys['k-dkg'] = await dkgOver(c.clients, 2, 'k-dkg');
    if (keys.includes('k-imp')) c.keys['k-imp'] = (await importOver(c.clients, 2, 'k-imp')).pub;
    return c;
  }

  async close(): Promise<void> {
    this.db?.close();
    await Promise.all(this.nodes.map((n) => n.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Ids a string may be replaced by: the held keys, an unknown one, and `extra`. */
  knownIds(...extra: string[]): string[] {
    return ['k-dkg', 'k-imp', 'nope', ...extra];
  }

  participants(): { identifier: number; identity: string }[] {
    return this.nodes.map((n, i) => ({ identifier: i + 1, identity: n.identityPub }));
  }

  // ----------------------------------------------------------------------------------------
  // Requests and checks

  /** fetch() to the node under test with the request timeout; counts as a fuzzed exchange. */
  async fetch(path: string, init: RequestInit): Promise<Response> {
    this.exchanges++;
    try {
      return await fetch(`${this.T.url}${path}`, {
        ...init,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      if (e instanceof Error && e.name === 'TimeoutError')
        throw new Error(`${init.method ?? 'GET'} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`);
      throw e;
    }
  }

  /** The live gauges, from the node's /metrics route (injected: the socket is /healthz's to prove). */
  async metrics(): Promise<{ live_attempts: number; live_ceremonies: number; keys_gauge: number }> {
    const res = await this.T.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200, '/metrics answers');
    const text = res.body;
    const g = (name: string) => {
      const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
      assert.ok(m, `gauge ${name} in /metrics`);
      return Number(m[1]);
    };
    return {
      live_attempts: g('floe_signer_live_attempts'),
      live_ceremonies: g('floe_signer_live_ceremonies'),
      keys_gauge: g('floe_signer_keys'),
    };
  }

  /** The stored part of the last snapshot, and the SQLite data_version it was read at. */
  private stored?: { version: number; tables: Snapshot['tables']; keys: Snapshot['keys'] };

  async snapshot(): Promise<Snapshot> {
    return { ...this.storedState(), ...(await this.metrics()) };
  }

  /**
   * Every table hashed, and the key rows. Re-read only when `PRAGMA data_version` says another
   * connection (the node's) committed since the last read: otherwise the bytes are the same.
   */
  private storedState(): { tables: Snapshot['tables']; keys: Snapshot['keys'] } {
    const [{ data_version: version }] = this.db.prepare('PRAGMA data_version').all() as [
      { data_version: number },
    ];
    if (this.stored?.version === version) return { tables: this.stored.tables, keys: this.stored.keys };
    const tables: Snapshot['tables'] = {};
    const names = this.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all() as { name: string }[];
    for (const { name } of names) {
      const rows = this.db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all();
      const h = createHash('sha256');
      for (const r of rows)
        h.update(JSON.stringify(r, (_k, v) => (Buffer.isBuffer(v) ? `b:${v.toString('hex')}` : v)));
      tables[name] = { rows: rows.length, sha256: h.digest('hex') };
    }
    const keyRows = this.db.prepare('SELECT * FROM keys ORDER BY key_id').all() as {
      key_id: string;
      status: string;
      sealed: Buffer;
    }[];
    const rowHash = (r: { sealed: Buffer }) =>
      createHash('sha256')
        .update(JSON.stringify({ ...r, sealed: r.sealed.toString('hex') }))
        .digest('hex');
    const keys = Object.fromEntries(keyRows.map((r) => [r.key_id, `${r.status}:${rowHash(r)}`]));
    this.stored = { version, tables, keys };
    return { tables, keys };
  }

  async healthy(): Promise<void> {
    const res = await fetch(`${this.T.url}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(res.status, 200, 'the node still serves /healthz');
    await res.body?.cancel();
  }

  /** Send `body` (any JSON value; undefined: empty body) in a valid envelope to the node under test. */
  async send(name: SignerMessageName, body: Body): Promise<Answer> {
    const spec = SIGNER_MESSAGES[name];
    const text = body === undefined ? '' : JSON.stringify(body);
    const env = sealEnvelope({
      identity: this.coordinator,
      to: this.T.identityPub,
      type: spec.type,
      body: text,
      now: Date.now(),
    });
    const res = await this.fetch(spec.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ENVELOPE_HEADER]: encodeEnvelope(env) },
      body: text,
    });
    const out = await res.text();
    const code = checkShape(res.status, res.headers.get('content-type') ?? '', out, spec.type);
    if (res.status === 413) return { status: res.status, code: code!, text: out };
    // Every answer to a well-formed envelope is signed by the node and bound to the request.
    try {
      const ok = acceptResponse(
        spec,
        { status: res.status, envelope: res.headers.get(ENVELOPE_HEADER) ?? undefined, text: out },
        { self: this.coordinatorPub, peer: this.T.identityPub, re: env.nonce, now: Date.now() },
      );
      assert.equal(res.status, 200);
      return { status: 200, text: out, ok };
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof FloeError, `${spec.type}: unexpected ${String(e)}`);
      assert.equal(e.code, code, `${spec.type}: the refusal is signed and bound (${e.code})`);
      return { status: res.status, code: code!, text: out };
    }
  }

  /** One fuzzed request with the common checks; returns the answer and both snapshots. */
  async fuzzOne(name: SignerMessageName, body: Body) {
    const before = await this.snapshot();
    const r = await this.send(name, body);
    await this.healthy();
    const after = await this.snapshot();
    return { r, before, after };
  }

  // ----------------------------------------------------------------------------------------
  // DKG fixtures

  round2Body(c: Ceremony): RequestOf<'dkgRound2'> {
    return { ceremony_id: c.id, round1: c.round1!.map((r) => r.round1) };
  }

  /** The round-3 request of member `i` (0-based): the boxes addressed to it. */
  round3Body(c: Ceremony, i: number): RequestOf<'dkgRound3'> {
    return {
      ceremony_id: c.id,
      boxes: c.round2!.flatMap((r) =>
        r.boxes.filter((b) => b.receiver === i + 1).map((b) => ({ sender: r.identifier, box: b.box })),
      ),
    };
  }

  certifyBody(c: Ceremony): RequestOf<'dkgCertify'> {
    return {
      ceremony_id: c.id,
      key_id: c.keyId,
      certificates: c.round3!.map((r) => ({
        identifier: r.identifier,
        transcript_hash: r.transcript_hash,
        group_public_key: r.public_key_package.commitments[0]!,
        certificate: r.certificate,
      })),
    };
  }

  /** A 2-of-n ceremony of the first n nodes, run on every member up to (and including) `stage`. */
  async ceremonyAt(stage: 1 | 2 | 3, n = 3): Promise<Ceremony> {
    const c: Ceremony = { id: rid('c'), n, keyId: rid('k'), round1Req: [] };
    const members = this.clients.slice(0, n);
    c.round1Req = members.map((_, i) => ({
      ceremony_id: c.id,
      key_id: c.keyId,
      threshold: 2,
      n,
      identifier: i + 1,
      participants: this.participants().slice(0, n),
    }));
    c.round1 = await Promise.all(members.map((cl, i) => cl.call('dkgRound1', c.round1Req[i]!)));
    if (stage >= 2)
      c.round2 = await Promise.all(members.map((cl) => cl.call('dkgRound2', this.round2Body(c))));
    if (stage >= 3)
      c.round3 = await Promise.all(members.map((cl, i) => cl.call('dkgRound3', this.round3Body(c, i))));
    return c;
  }

  /** Complete a ceremony from `stage` on every member; the key becomes active everywhere. */
  async completeCeremony(c: Ceremony, stage: 2 | 3 | 4): Promise<void> {
    const members = this.clients.slice(0, c.n);
    if (stage <= 2)
      c.round2 = await Promise.all(members.map((cl) => cl.call('dkgRound2', this.round2Body(c))));
    if (stage <= 3)
      c.round3 = await Promise.all(members.map((cl, i) => cl.call('dkgRound3', this.round3Body(c, i))));
    const cert = await Promise.all(members.map((cl) => cl.call('dkgCertify', this.certifyBody(c))));
    assert.ok(
      cert.every((x) => x.status === 'active'),
      'every member certifies',
    );
    assert.equal(this.T.store.getKey(c.keyId)?.status, 'active');
  }

  async abortEverywhere(ceremonyId: string): Promise<void> {
    await Promise.all(this.clients.map((cl) => cl.call('dkgAbort', { ceremony_id: ceremonyId })));
  }

  // ----------------------------------------------------------------------------------------
  // Signing fixtures

  /** A live attempt, opened on every included member; the package uses `signers`. */
  async openAttempt(variant: number): Promise<Attempt> {
    const v = [
      { keyId: 'k-dkg', included: [1, 2], signers: [1, 2] },
      { keyId: 'k-imp', included: [1, 3], signers: [1, 3] },
      { keyId: 'k-dkg', included: [1, 2, 3], signers: [1, 3] },
    ][variant % 3]!;
    const open = openRequest({
      keyId: v.keyId,
      sessionId: rid('s'),
      attempt: 1,
      included: v.included,
      intent: new Uint8Array(randomBytes(32)),
    });
    const message = open.message;
    const opened = await Promise.all(v.included.map((id) => this.clients[id - 1]!.call('signOpen', open)));
    const commitments = opened.map((o) => o.commitments).filter((c) => v.signers.includes(c.identifier));
    return {
      keyId: v.keyId,
      pub: this.keys[v.keyId]!,
      open,
      own: opened[0]!.commitments,
      signers: v.signers,
      round2: {
        key_id: v.keyId,
        session_id: open.session_id,
        attempt_id: open.attempt_id,
        signing_package: { v: 1, type: 'signing_package', message, commitments },
      },
    };
  }

  /** The attempt is still live on the node under test with the very commitments it issued. */
  async assertStillOpen(a: Attempt, what: string): Promise<void> {
    const again = await this.clients[0]!.call('signOpen', a.open);
    assert.deepStrictEqual(again.commitments, a.own, `${what}: the live attempt was altered`);
  }

  /** Sign the attempt with its valid package on every signer; the aggregate verifies (BIP-340). */
  async signAttempt(a: Attempt): Promise<void> {
    const shares = await Promise.all(
      a.signers.map((id) => this.clients[id - 1]!.call('signRound2', a.round2)),
    );
    const pkg = {
      message: fromHex(a.round2.signing_package.message, 'message', 32),
      commitments: a.round2.signing_package.commitments.map(decodeCommitments),
    };
    const sig = aggregate(
      a.pub,
      pkg,
      shares.map((s) => decodeSignatureShare(s.share)),
    );
    assert.ok(verifySignature(sig, pkg.message, xOnlyGroupKey(a.pub)), 'the attempt signs a valid signature');
    for (const id of a.open.included.filter((x) => !a.signers.includes(x))) {
      await this.clients[id - 1]!.call('signAbort', { session_id: a.open.session_id });
    }
  }
}

// ------------------------------------------------------------------------------------------
// Checks

/** A refusal must be an RFC 9457 problem with a stable code, never a 5xx; returns the code. */
export function checkShape(
  status: number,
  contentType: string,
  text: string,
  what: string,
): string | undefined {
  assert.ok(status < 500, `${what}: HTTP ${status} (${text.slice(0, 200)})`);
  if (status === 200) return undefined;
  assert.ok(status >= 400, `${what}: HTTP ${status}`);
  assert.match(contentType, /^application\/problem\+json/, `${what}: problem content type`);
  const p = JSON.parse(text) as Record<string, unknown>;
  assert.ok(isErrorCode(p.code), `${what}: stable code, got ${String(p.code)}`);
  assert.notEqual(p.code, 'internal', what);
  assert.equal(p.status, status, `${what}: problem status`);
  assert.equal(ERROR_STATUS[p.code], status, `${what}: status of ${p.code}`);
  assert.equal(p.type, 'about:blank', what);
  assert.equal(typeof p.title, 'string', what);
  assert.equal(typeof p.detail, 'string', what);
  return p.code;
}

/** A refused request changed nothing: every table, every key row and the live gauges. */
export function assertUnchanged(before: Snapshot, after: Snapshot, what: string): void {
  assert.deepStrictEqual(after, before, `${what}: a refused request changed the signer's state`);
}

/** A fail-closed DKG refusal may drop exactly one ceremony and that ceremony's pending key. */
export function assertCeremonyDropped(before: Snapshot, after: Snapshot, keyId: string, what: string): void {
  assert.equal(after.live_ceremonies, before.live_ceremonies - 1, `${what}: the ceremony is dropped`);
  assert.equal(after.live_attempts, before.live_attempts, what);
  const expected = { ...before.keys };
  if (expected[keyId]?.startsWith('pending:')) delete expected[keyId];
  assert.deepStrictEqual(after.keys, expected, `${what}: only the ceremony's pending key may go`);
  for (const [t, v] of Object.entries(before.tables)) {
    if (t !== 'keys') assert.deepStrictEqual(after.tables[t], v, `${what}: table ${t} changed`);
  }
}
