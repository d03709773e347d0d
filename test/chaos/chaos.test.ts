/**
 * A reduced chaos run (bench/chaos.ts): a cluster of real processes under signing load while
 * signers and the coordinator are kill -9'd and restarted, then the safety invariants — no
 * session left in flight, no nonce used twice, no second share for one attempt, no invalid
 * signature — checked over the coordinator's database and the signers' marker tables. Plus a
 * byzantine variant, and the invariant checks themselves fed a planted violation of each kind
 * (a check that can never fire would pass every run).
 *
 * Runs on PGlite, or on the Postgres server when FLOE_TEST_DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { type ChaosReport, databaseChoice, runChaos } from '../../bench/chaos.js';
import { type CheckInput, checkInvariants } from '../../bench/chaos-checks.js';
import { openRequest } from '../helpers/sign-requests.js';

const database = databaseChoice(process.env.FLOE_TEST_DATABASE_URL ? 'postgres' : 'pglite');
const seed = randomBytes(4).readUInt32BE(0);

function assertClean(r: ChaosReport, lines: string[]) {
  const why = `seed ${seed}\n${lines.join('\n')}`;
  assert.equal(r.not_terminal, 0, why);
  assert.equal(r.nonce_reuse, 0, why);
  assert.equal(r.double_release, 0, why);
  assert.equal(r.invalid_signatures, 0, why);
  assert.ok(r.completed > 0, `some sessions complete\n${why}`);
  assert.equal(r.completed + r.failed, r.sessions, why);
  assert.match(
    r.summary,
    /^chaos: sessions=\d+ completed=\d+ failed=\d+ not_terminal=0 nonce_reuse=0 double_release=0 invalid_signatures=0$/,
  );
}

describe('chaos: kill -9 of signers and the coordinator under signing load', () => {
  it('30 sessions, 3 kills: every session terminal, no nonce reuse, no double release, no invalid signature', {
    timeout: 150_000,
  }, async () => {
    const lines: string[] = [];
    const r = await runChaos({
      sessions: 30,
      clients: 3,
      signers: 3,
      threshold: 2,
      kills: 3,
      database,
      seed,
      ttlS: 30,
      quarantineAfter: 3,
      log: (l) => lines.push(l),
    });
    assertClean(r, lines);
    assert.equal(r.kills.length, 3, lines.join('\n'));
    assert.ok(
      r.kills.some((k) => k.startsWith('coordinator')),
      'the coordinator was killed',
    );
    assert.ok(
      r.kills.some((k) => k.startsWith('signer')),
      'a signer was killed',
    );
    assert.equal(r.sessions, 30, lines.join('\n'));
  });

  it('a byzantine signer (all four faults) is blamed, never an honest one, and no invalid signature is returned', {
    timeout: 120_000,
  }, async () => {
    const lines: string[] = [];
    const r = await runChaos({
      sessions: 15,
      clients: 3,
      signers: 4,
      threshold: 2,
      kills: 1,
      byzantine: 'all',
      database,
      seed: seed + 1,
      ttlS: 30,
      quarantineAfter: 3,
      log: (l) => lines.push(l),
    });
    assertClean(r, lines);
    assert.ok(r.byzantine, lines.join('\n'));
    assert.ok(r.byzantine.fault_count > 0, lines.join('\n'));
    assert.ok(r.byzantine.blamed_attempts > 0, lines.join('\n'));
    assert.equal(r.byzantine.misblamed, 0, lines.join('\n'));
  });

  it('share refreshes and a repair under kills: every signature verifies under the one key, no generation mix, every member on the generation it is counted on', {
    timeout: 240_000,
  }, async () => {
    const lines: string[] = [];
    const r = await runChaos({
      sessions: 30,
      clients: 3,
      signers: 3,
      threshold: 2,
      kills: 2,
      refreshes: 2,
      repair: true,
      database,
      seed: seed + 2,
      ttlS: 30,
      quarantineAfter: 3,
      log: (l) => lines.push(l),
    });
    const why = `seed ${seed + 2}\n${lines.join('\n')}`;
    assert.equal(r.not_terminal, 0, why);
    assert.equal(r.nonce_reuse, 0, why);
    assert.equal(r.double_release, 0, why);
    assert.equal(r.invalid_signatures, 0, why);
    assert.ok(r.lifecycle, why);
    assert.equal(r.lifecycle.generation_mismatch, 0, why);
    assert.equal(r.lifecycle.group_key_changed, 0, why);
    assert.equal(r.lifecycle.open, 0, why);
    assert.equal(r.lifecycle.repair, 'completed', why);
    assert.equal(
      Object.values(r.lifecycle.refreshes).reduce((a, b) => a + b, 0),
      2,
      why,
    );
    assert.ok(r.completed > 0, why);
    assert.match(r.summary, / generation_mismatch=0 group_key_changed=0 open_ceremonies=0$/);
  });
});

describe('chaos invariant checks catch planted violations', () => {
  const sk = randomBytes(32);
  const xonly = schnorr.getPublicKey(sk);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const point = () => `02${randomBytes(32).toString('hex')}`;
  const msg = randomBytes(32);

  /** Two clean completed sessions with one attempt each, members 1 and 2. */
  function clean(): CheckInput {
    const input: CheckInput = {
      sessions: [],
      nonces: [],
      attempts: [],
      keys: [
        {
          id: 'key_1',
          threshold: 2,
          x_only_public_key: hex(xonly),
          members: [1, 2, 3].map((i) => ({ identifier: i, signer_id: `sig_${i}` })),
        },
      ],
      markers: [],
      clientSignatures: new Map(),
      maxAttempts: 5,
    };
    for (const sid of ['ses_aaaaaaaaaaaaaaaa', 'ses_bbbbbbbbbbbbbbbb']) {
      const commitments: Record<string, { hiding: string; binding: string }> = {};
      for (const id of [1, 2]) {
        const c = { hiding: point(), binding: point() };
        commitments[id] = c;
        input.nonces.push({
          session_id: sid,
          attempt: 1,
          participant: id,
          nonce_commitment: c.hiding + c.binding,
          nonce_used: true,
        });
        input.markers.push({
          store: id,
          key_id: 'key_1',
          session_id: sid,
          attempt_id: openRequest({ sessionId: sid, attempt: 1, included: [1, 2], intent: msg }).attempt_id,
          identifier: id,
          message_digest: hex(msg),
        });
      }
      input.attempts.push({ session_id: sid, attempt: 1, participants: [1, 2] });
      const sig = hex(schnorr.sign(msg, sk));
      input.sessions.push({
        session_id: sid,
        key_id: 'key_1',
        message_hash: hex(msg),
        intent_hash: openRequest({ sessionId: sid, attempt: 1, included: [1, 2], intent: msg }).intent_hash,
        status: 'completed',
        attempt: 1,
        nonce_commitments: { 1: commitments },
        partial_signatures: { 1: { 1: { share: '00' }, 2: { share: '00' } } },
        final_signature: sig,
        culprits: [],
        error_code: null,
      });
      input.clientSignatures.set(sid, sig);
    }
    return input;
  }

  it('a clean record has no violation', () => {
    const r = checkInvariants(clean());
    assert.deepEqual(
      [r.nonce_reuse, r.double_release, r.invalid_signatures],
      [0, 0, 0],
      r.violations.join('\n'),
    );
    assert.equal(r.detail.markers_mapped_by_audit, 4);
    assert.equal(r.detail.shares_recorded, 4);
  });

  it('counts a nonce point used in two sessions', () => {
    const x = clean();
    const a = x.sessions[0]!.nonce_commitments[1]![1]!;
    const b = x.sessions[1]!.nonce_commitments[1]![1]!;
    b.hiding = a.hiding; // the second session signed against the first one's hiding nonce
    const r = checkInvariants(x);
    assert.ok(r.nonce_reuse >= 1, JSON.stringify(r.detail));
    assert.equal(r.double_release, 0);
  });

  it('counts duplicate rows of one commitment', () => {
    const x = clean();
    x.nonces.push({ ...x.nonces[0]!, session_id: 'ses_cccccccccccccccc' });
    assert.ok(checkInvariants(x).detail.duplicate_rows >= 1);
  });

  it('counts a recorded share whose signer holds no marker', () => {
    const x = clean();
    x.markers.splice(1, 1);
    const r = checkInvariants(x);
    assert.equal(r.detail.shares_without_marker, 1);
    assert.equal(r.double_release, 1);
  });

  it('counts two releases under one attempt number (two attempt ids)', () => {
    const x = clean();
    const sid = x.sessions[0]!.session_id;
    // member 1 also signed "attempt 1" with another included set: found by search, a conflict
    x.markers.push({
      ...x.markers[0]!,
      attempt_id: openRequest({ sessionId: sid, attempt: 1, included: [1, 3], intent: msg }).attempt_id,
    });
    const r = checkInvariants(x);
    assert.equal(r.detail.markers_mapped_by_search, 1);
    assert.equal(r.detail.attempt_number_conflicts, 1);
    assert.equal(r.double_release, 1);
  });

  it('counts a marker of an attempt nobody started', () => {
    const x = clean();
    x.markers.push({ ...x.markers[0]!, attempt_id: 'ff'.repeat(32) });
    assert.equal(checkInvariants(x).detail.orphan_markers, 1);
  });

  it('counts a stored or returned signature that does not verify', () => {
    const x = clean();
    x.sessions[0]!.final_signature = hex(schnorr.sign(randomBytes(32), sk)); // another message's
    x.clientSignatures.set(x.sessions[1]!.session_id, '00'.repeat(64));
    assert.equal(checkInvariants(x).invalid_signatures, 2);
  });
});
