/**
 * A signer's part in a share refresh (src/signer/refresh.ts), in process: three members made a
 * key by DKG, refresh it, and sign with the new generation only; an interrupted refresh leaves
 * the old shares in force; a commit needs every member's certificate; the pending share is
 * durable in the SQLite store and the old sealed record no longer opens after commit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  aggregate,
  commit,
  decodeCommitments,
  decodePublicKeyPackage,
  decodeSignatureShare,
  encodePublicKeyPackage,
  generateIdentityKey,
  groupPublicKey,
  signShare,
  softwareIdentity,
  toHex,
  xOnlyGroupKey,
} from '../../src/crypto/index.js';
import type { KeyPackage } from '../../src/crypto/types.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { RefreshRound3Response } from '../../src/protocol/messages/refresh.js';
import { CeremonyParticipant } from '../../src/signer/ceremony.js';
import { SigningEngine } from '../../src/signer/engine.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import type { SignerStore } from '../../src/signer/ports.js';
import { RefreshParticipant } from '../../src/signer/refresh.js';
import { RepairParticipant } from '../../src/signer/repair.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { libsecpVerify } from '../helpers/independent.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { openRequest } from '../helpers/sign-requests.js';

function refuses(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, `expected ${code}`);
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** n nodes (plus `spare` more, e.g. a signer that will replace a lost one), each on every roster. */
function nodes(n: number, stores?: SignerStore[], spare = 0) {
  const clock = new FakeClock();
  const identities = Array.from({ length: n + spare }, () => softwareIdentity(generateIdentityKey()));
  const roster = identities.map((x) => x.publicKeyHex);
  return identities.map((identity, i) => {
    const store = stores?.[i] ?? new MemoryStore();
    return {
      identifier: i + 1,
      identity,
      store,
      clock,
      dkg: new CeremonyParticipant({ store, clock, identity, roster }),
      refresh: new RefreshParticipant({ store, clock, identity, roster }),
      repair: new RepairParticipant({ store, clock, identity, roster }),
      engine: new SigningEngine({ store, clock }),
    };
  });
}
type Node = ReturnType<typeof nodes>[number];
const members = (ns: Node[]) =>
  ns.map((x) => ({ identifier: x.identifier, identity: x.identity.publicKeyHex }));

function makeKey(ns: Node[], t: number) {
  const participants = members(ns);
  const r1 = ns.map((x) =>
    x.dkg.dkgRound1({
      ceremony_id: 'dkg',
      key_id: 'k1',
      threshold: t,
      n: ns.length,
      identifier: x.identifier,
      participants,
    }),
  );
  const all = r1.map((r) => r.round1);
  const r2 = ns.map((x) => x.dkg.dkgRound2({ ceremony_id: 'dkg', round1: all }));
  const r3 = ns.map((x) =>
    x.dkg.dkgRound3({
      ceremony_id: 'dkg',
      boxes: r2.flatMap((r) =>
        r.boxes.filter((b) => b.receiver === x.identifier).map((b) => ({ sender: r.identifier, box: b.box })),
      ),
    }),
  );
  const certificates = r3.map((r) => ({
    identifier: r.identifier,
    transcript_hash: r.transcript_hash,
    group_public_key: encodePublicKeyPackage(decodePublicKeyPackage(r.public_key_package)).commitments[0]!,
    certificate: r.certificate,
  }));
  for (const x of ns) x.dkg.dkgCertify({ ceremony_id: 'dkg', key_id: 'k1', certificates });
}

/** Rounds 1–3 of a refresh on every member; returns the round-3 answers. */
function refreshRounds(ns: Node[], ceremony: string, generation: number): RefreshRound3Response[] {
  const participants = members(ns);
  const r1 = ns.map((x) =>
    x.refresh.round1({
      ceremony_id: ceremony,
      key_id: 'k1',
      generation,
      identifier: x.identifier,
      participants,
    }),
  );
  const all = r1.map((r) => r.round1);
  const r2 = ns.map((x) => x.refresh.round2({ ceremony_id: ceremony, round1: all }));
  return ns.map((x) =>
    x.refresh.round3({
      ceremony_id: ceremony,
      boxes: r2.flatMap((r) =>
        r.boxes.filter((b) => b.receiver === x.identifier).map((b) => ({ sender: r.identifier, box: b.box })),
      ),
    }),
  );
}

const certs = (r3: RefreshRound3Response[]) =>
  r3.map((r) => ({ identifier: r.identifier, certificate: r.certificate }));

let session = 0;
/** Sign with `ns` at `generation`; the signature, message and public package of the first member. */
function signWith(ns: Node[], generation: number) {
  const msg = new Uint8Array(randomBytes(32));
  const ids = ns.map((x) => x.identifier);
  const sessionId = `s${++session}`;
  const open = {
    ...openRequest({ keyId: 'k1', sessionId, attempt: 1, included: ids, intent: msg }),
    ...(generation ? { generation } : {}),
  };
  const opens = ns.map((x) => x.engine.open(open));
  const pkg = {
    v: 1 as const,
    type: 'signing_package' as const,
    message: toHex(msg),
    commitments: opens.map((o) => o.commitments),
  };
  const shares = ns.map((x) =>
    decodeSignatureShare(
      x.engine.round2({
        key_id: 'k1',
        session_id: sessionId,
        attempt_id: open.attempt_id,
        signing_package: pkg,
      }).share,
    ),
  );
  const pub = ns[0]!.store.getKey('k1')!.keyPackage.public;
  const sig = aggregate(pub, { message: msg, commitments: pkg.commitments.map(decodeCommitments) }, shares);
  return { sig, msg, pub };
}

describe('signer share refresh', () => {
  it('gives every member a new share of the same key; only the new generation signs', () => {
    const ns = nodes(3);
    makeKey(ns, 2);
    const before = ns.map((x) => x.store.getKey('k1')!.keyPackage);
    const groupKey = toHex(groupPublicKey(before[0]!.public));
    const r3 = refreshRounds(ns, 'r1', 1);
    assert.equal(
      new Set(r3.map((r) => JSON.stringify(r.public_key_package))).size,
      1,
      'one new public package',
    );
    const next = decodePublicKeyPackage(r3[0]!.public_key_package);
    assert.equal(toHex(groupPublicKey(next)), groupKey, 'same group key');
    assert.notEqual(toHex(next.verifyingShares.get(1)!), toHex(before[0]!.public.verifyingShares.get(1)!));
    // Before commit: the old share is still the one in force, generation 0.
    for (const x of ns) assert.equal(x.store.getKey('k1')!.generation ?? 0, 0);
    const old = signWith([ns[0]!, ns[1]!], 0);
    assert.ok(libsecpVerify(old.sig, old.msg, xOnlyGroupKey(old.pub)));

    for (const x of ns) {
      const r = x.refresh.commit({ ceremony_id: 'r1', key_id: 'k1', generation: 1, certificates: certs(r3) });
      assert.equal(r.status, 'committed');
      // A repeat (lost answer) changes nothing and answers the same.
      assert.deepEqual(
        x.refresh.commit({ ceremony_id: 'r1', key_id: 'k1', generation: 1, certificates: certs(r3) }),
        r,
      );
    }
    for (const [i, x] of ns.entries()) {
      const k = x.store.getKey('k1')!;
      assert.equal(k.generation, 1);
      assert.notEqual(toHex(k.keyPackage.signingShare), toHex(before[i]!.signingShare), 'the share changed');
      assert.equal(x.store.getPendingRefresh('k1'), undefined);
    }
    for (const pair of [
      [0, 1],
      [1, 2],
      [0, 2],
    ] as const) {
      const s = signWith([ns[pair[0]]!, ns[pair[1]]!], 1);
      assert.equal(toHex(groupPublicKey(s.pub)), groupKey);
      assert.ok(
        libsecpVerify(s.sig, s.msg, xOnlyGroupKey(s.pub)),
        `members ${pair} sign with the new shares`,
      );
    }
    // A request for the old generation is refused: no signature mixes generations.
    const msg = new Uint8Array(32);
    refuses(
      () =>
        ns[0]!.engine.open(
          openRequest({ keyId: 'k1', sessionId: 'old', attempt: 1, included: [1, 2], intent: msg }),
        ),
      'generation_mismatch',
    );
    // An old share mixed with a new one does not make a valid signature (shares computed directly,
    // as a signer that kept an old share would).
    const now = ns.map((x) => x.store.getKey('k1')!.keyPackage);
    const mixes: [KeyPackage, KeyPackage][] = [
      [before[0]!, now[1]!],
      [now[0]!, before[1]!],
    ];
    for (const [a, b] of mixes) {
      const m = new Uint8Array(randomBytes(32));
      const ca = commit(a);
      const cb = commit(b);
      const pkg = { message: m, commitments: [ca.commitments, cb.commitments] };
      const shares = [signShare(a, ca.nonces, pkg), signShare(b, cb.nonces, pkg)];
      let valid = false;
      try {
        valid = libsecpVerify(aggregate(now[0]!.public, pkg, shares), m, xOnlyGroupKey(now[0]!.public));
      } catch {
        valid = false; // aggregate names the bad share
      }
      assert.equal(valid, false, 'a mix of generations never signs');
    }
  });

  it('commits only with every member certificate over the same package', () => {
    const ns = nodes(3);
    makeKey(ns, 2);
    const r3 = refreshRounds(ns, 'r1', 1);
    refuses(
      () =>
        ns[0]!.refresh.commit({
          ceremony_id: 'r1',
          key_id: 'k1',
          generation: 1,
          certificates: certs(r3).slice(0, 2),
        }),
      'certification_mismatch',
    );
    const forged = certs(r3);
    forged[2] = { identifier: 3, certificate: forged[1]!.certificate };
    refuses(
      () => ns[0]!.refresh.commit({ ceremony_id: 'r1', key_id: 'k1', generation: 1, certificates: forged }),
      'certification_mismatch',
    );
    refuses(
      () =>
        ns[0]!.refresh.commit({ ceremony_id: 'other', key_id: 'k1', generation: 1, certificates: certs(r3) }),
      'ceremony_unknown',
    );
    assert.equal(ns[0]!.store.getKey('k1')!.generation ?? 0, 0, 'nothing committed');
  });

  it('an interrupted refresh leaves the old shares in force; abort clears the way for the next', () => {
    const ns = nodes(3);
    makeKey(ns, 2);
    // Round 3 done on every member, but the commit never comes (coordinator killed).
    refreshRounds(ns, 'r1', 1);
    const s = signWith([ns[1]!, ns[2]!], 0);
    assert.ok(libsecpVerify(s.sig, s.msg, xOnlyGroupKey(s.pub)), 'the old generation still signs');
    // A new refresh is refused while that one's share is pending…
    refuses(
      () =>
        ns[0]!.refresh.round1({
          ceremony_id: 'r2',
          key_id: 'k1',
          generation: 1,
          identifier: 1,
          participants: members(ns),
        }),
      'refresh_pending',
    );
    // …until the failed one is aborted; then a refresh runs through.
    for (const x of ns) assert.equal(x.refresh.abort({ ceremony_id: 'r1', key_id: 'k1' }).aborted, true);
    const r3 = refreshRounds(ns, 'r2', 1);
    for (const x of ns)
      x.refresh.commit({ ceremony_id: 'r2', key_id: 'k1', generation: 1, certificates: certs(r3) });
    const after1 = signWith([ns[0]!, ns[2]!], 1);
    assert.ok(libsecpVerify(after1.sig, after1.msg, xOnlyGroupKey(after1.pub)));
  });

  it('refuses a wrong generation, an outsider and a member at another identifier', () => {
    const ns = nodes(3);
    makeKey(ns, 2);
    const participants = members(ns);
    const req = { ceremony_id: 'r1', key_id: 'k1', generation: 1, identifier: 1, participants };
    refuses(() => ns[0]!.refresh.round1({ ...req, generation: 2 }), 'generation_mismatch');
    refuses(() => ns[0]!.refresh.round1({ ...req, identifier: 2 }), 'not_a_member');
    const outsider = softwareIdentity(generateIdentityKey()).publicKeyHex;
    refuses(
      () =>
        ns[0]!.refresh.round1({
          ...req,
          participants: participants.map((p) => (p.identifier === 3 ? { ...p, identity: outsider } : p)),
        }),
      'not_on_roster',
    );
    refuses(() => ns[0]!.refresh.round1({ ...req, key_id: 'nope' }), 'unknown_key');
  });

  it('on SQLite: the pending share survives a restart and commits; the old record is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floe-refresh-'));
    dirs.push(dir);
    const keySource = () => new PassphraseKeySource('correct horse battery staple', { N: 1024 });
    const open = (i: number, create = false) =>
      SqliteSignerStore.open({ path: join(dir, `s${i}.db`), keySource: keySource(), create });
    const stores = await Promise.all([1, 2, 3].map((i) => open(i, true)));
    const ns = nodes(3, stores);
    makeKey(ns, 2);
    const r3 = refreshRounds(ns, 'r1', 1);
    // Member 3 restarts between round 3 and commit.
    stores[2]!.close();
    const reopened = await open(3);
    const n3 = { ...ns[2]!, store: reopened };
    n3.refresh = new RefreshParticipant({
      store: reopened,
      clock: n3.clock,
      identity: n3.identity,
      roster: members(ns).map((m) => m.identity),
    });
    n3.engine = new SigningEngine({ store: reopened, clock: n3.clock });
    const all = [ns[0]!, ns[1]!, n3];
    assert.equal(reopened.getPendingRefresh('k1')?.generation, 1, 'the pending share is durable');
    for (const x of all)
      x.refresh.commit({ ceremony_id: 'r1', key_id: 'k1', generation: 1, certificates: certs(r3) });
    const s = signWith([ns[0]!, n3], 1);
    assert.ok(libsecpVerify(s.sig, s.msg, xOnlyGroupKey(s.pub)));
    // After a restart the committed generation is what the store holds (row MAC and AAD bind it).
    reopened.close();
    const again = await open(3);
    assert.equal(again.getKey('k1')!.generation, 1);
    assert.equal(again.getPendingRefresh('k1'), undefined);
    assert.ok(again.listAudit().some((a) => a.kind === 'key_refreshed' && a.keyId === 'k1'));
    again.close();
    for (const st of stores.slice(0, 2)) st.close();
  });
});

describe('signer share repair', () => {
  /** Repair member `lost` of the key held by ns[0..n) onto `fresh`, with `helpers`. */
  function repair(ns: Node[], fresh: Node, lost: number, helpers: number[], ceremony = 'p1') {
    const old = ns[lost - 1]!;
    const pub = ns[helpers[0]! - 1]!.store.getKey('k1')!.keyPackage.public;
    const members = members3(ns).map((m) =>
      m.identifier === lost ? { ...m, identity: fresh.identity.publicKeyHex } : m,
    );
    const subject = {
      ceremony_id: ceremony,
      key_id: 'k1',
      generation: ns[helpers[0]! - 1]!.store.getKey('k1')!.generation ?? 0,
      lost,
      replaced: old.identity.publicKeyHex,
      helpers,
      members,
    };
    const help = helpers.map((h) => ns[h - 1]!.repair.help(subject));
    const commitments = help.flatMap((r) =>
      r.commitments.map((c) => ({ helper: r.identifier, receiver: c.receiver, commitment: c.commitment })),
    );
    const combined = helpers.map((h) =>
      ns[h - 1]!.repair.combine({
        ceremony_id: ceremony,
        commitments,
        boxes: help.flatMap((r) =>
          r.boxes.filter((b) => b.receiver === h).map((b) => ({ sender: r.identifier, box: b.box })),
        ),
      }),
    );
    const statements = combined.map((c) => ({ identifier: c.identifier, statement: c.statement }));
    const enrolled = fresh.repair.enroll({
      ...subject,
      public_key_package: encodePublicKeyPackage(pub),
      origin: 'dkg',
      commitments,
      sigmas: combined.map((c) => ({ helper: c.identifier, box: c.box })),
      statements,
    });
    const commit = {
      ...subject,
      public_key_package: encodePublicKeyPackage(pub),
      statements,
      certificate: enrolled.certificate,
    };
    return { subject, enrolled, commit, old };
  }
  const members3 = (ns: Node[]) => members(ns.slice(0, 3));

  it('t helpers give a new signer the lost member share; it signs, and the lost identity is revoked', () => {
    const all = nodes(3, undefined, 1);
    const ns = all.slice(0, 3);
    const fresh = all[3]!;
    makeKey(ns, 2);
    const lostShare = toHex(ns[2]!.store.getKey('k1')!.keyPackage.signingShare);
    const { enrolled, commit, old } = repair(ns, fresh, 3, [1, 2]);
    const k = fresh.store.getKey('k1')!;
    assert.equal(k.status, 'pending', 'not usable before the commit');
    assert.equal(toHex(k.keyPackage.signingShare), lostShare, 'the very share the lost member had');
    assert.equal(enrolled.identifier, 3);
    for (const x of [ns[0]!, ns[1]!, fresh]) assert.equal(x.repair.commit(commit).status, 'committed');
    assert.equal(fresh.store.getKey('k1')!.status, 'active');
    // A repeat changes nothing.
    assert.equal(ns[0]!.repair.commit(commit).status, 'committed');
    const s = signWith([ns[0]!, { ...fresh, identifier: 3 }], 0);
    assert.ok(libsecpVerify(s.sig, s.msg, xOnlyGroupKey(s.pub)), 'the repaired member signs');
    // The replaced identity can never take part in the key's ceremonies again.
    refuses(
      () =>
        ns[0]!.refresh.round1({
          ceremony_id: 'r9',
          key_id: 'k1',
          generation: 1,
          identifier: 1,
          participants: members3(ns),
        }),
      'member_revoked',
    );
    assert.ok(ns[0]!.store.isRevoked('k1', old.identity.publicKeyHex));
    // The repaired set refreshes: old identity out, new one in.
    const after = [ns[0]!, ns[1]!, { ...fresh, identifier: 3 }];
    const r3 = refreshRounds(after, 'r10', 1);
    for (const x of after)
      x.refresh.commit({ ceremony_id: 'r10', key_id: 'k1', generation: 1, certificates: certs(r3) });
    const s2 = signWith([ns[1]!, { ...fresh, identifier: 3 }], 1);
    assert.ok(libsecpVerify(s2.sig, s2.msg, xOnlyGroupKey(s2.pub)));
  });

  it('an aborted repair drops the share it enrolled, however busy the audit was since; another ceremony id drops nothing', () => {
    const all = nodes(3, undefined, 1);
    const ns = all.slice(0, 3);
    const fresh = all[3]!;
    makeKey(ns, 2);
    repair(ns, fresh, 3, [1, 2], 'p7');
    assert.equal(fresh.store.getKey('k1')!.status, 'pending');
    // The new signer goes on working (other keys' signatures) before the abort reaches it.
    for (let i = 0; i < 120; i++)
      fresh.store.appendAudit({ at: i, kind: 'share_released', keyId: 'k-other' });
    assert.equal(fresh.repair.abort({ ceremony_id: 'p8', key_id: 'k1' }).aborted, false);
    assert.equal(fresh.store.getKey('k1')!.status, 'pending', 'not the share of another repair');
    assert.equal(fresh.repair.abort({ ceremony_id: 'p7', key_id: 'k1' }).aborted, true);
    assert.equal(fresh.store.getKey('k1'), undefined, 'the pending share is gone');
    // A helper drops its parts and holds its share as before.
    assert.equal(ns[0]!.repair.abort({ ceremony_id: 'p7', key_id: 'k1' }).aborted, true);
    assert.equal(ns[0]!.store.getKey('k1')!.status, 'active');
  });

  it('a helper that cheats is named; a new signer off the roster is refused', () => {
    const all = nodes(3, undefined, 1);
    const ns = all.slice(0, 3);
    const fresh = all[3]!;
    makeKey(ns, 2);
    const subjectOf = (identity: string) => ({
      ceremony_id: 'p2',
      key_id: 'k1',
      generation: 0,
      lost: 3,
      replaced: ns[2]!.identity.publicKeyHex,
      helpers: [1, 2],
      members: members3(ns).map((m) => (m.identifier === 3 ? { ...m, identity } : m)),
    });
    const stranger = softwareIdentity(generateIdentityKey()).publicKeyHex;
    refuses(() => ns[0]!.repair.help(subjectOf(stranger)), 'not_on_roster');
    const subject = subjectOf(fresh.identity.publicKeyHex);
    const h1 = ns[0]!.repair.help(subject);
    const h2 = ns[1]!.repair.help(subject);
    // Helper 2 publishes points that do not add up to its λ·VS: named by helper 1.
    const commitments = [
      ...h1.commitments.map((c) => ({ helper: 1, ...c })),
      ...h2.commitments.map((c) => ({ helper: 2, ...c })),
    ];
    const lie = commitments.map((c) =>
      c.helper === 2 && c.receiver === 2 ? { ...c, commitment: h1.commitments[0]!.commitment } : c,
    );
    assert.throws(
      () =>
        ns[0]!.repair.combine({
          ceremony_id: 'p2',
          commitments: lie,
          boxes: h2.boxes.filter((b) => b.receiver === 1).map((b) => ({ sender: 2, box: b.box })),
        }),
      (e: unknown) =>
        e instanceof FloeError && e.code === 'repair_failed' && JSON.stringify(e.extra.culprits) === '[2]',
    );
    assert.equal(fresh.store.getKey('k1'), undefined, 'nothing reached the new signer');
  });
});
