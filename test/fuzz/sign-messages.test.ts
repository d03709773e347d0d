/**
 * Input fuzzing (fast-check) of the signing messages a signer node accepts (sign.open,
 * sign.round2, sign.abort), against real signer nodes (test/helpers/fuzz-cluster.ts).
 *
 * Bodies start from a VALID request (a held key, a live signing attempt) and get one to three
 * mutations (test/helpers/fuzz-mutate.ts), or message-specific ones that pass the schema and
 * reach deep validation (an altered own commitment, a package of another attempt, a re-derived
 * attempt_id, ...).
 *
 * Every request: no 5xx; a refusal is a signed RFC 9457 problem with a stable code; the node
 * still answers /healthz; and a refused request changes nothing (SQLite tables, live gauges).
 * Live attempts are probed after refusals: they re-open with the same commitments, and then
 * sign (the aggregate verifies under BIP-340); a consumed attempt never signs again.
 *
 * Seeds: test/helpers/fuzz-seed.ts (FLOE_FUZZ_SEED, FLOE_FUZZ_PATH, FLOE_FUZZ_SCALE).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { toHex, xOnlyGroupKey } from '../../src/crypto/index.js';
import { type RequestOf, SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { type Attempt, assertUnchanged, FuzzCluster, rederiveOpen, rid } from '../helpers/fuzz-cluster.js';
import {
  type Body,
  bytesFrom,
  type Ctx,
  type DomainOp,
  hexN,
  INFINITY,
  mutate,
  mutsArb,
  N,
  OFF_CURVE,
  pointFrom,
} from '../helpers/fuzz-mutate.js';
import { type FuzzLimits, fuzz, runs, testTimeout } from '../helpers/fuzz-seed.js';
import { openRequest } from '../helpers/sign-requests.js';

const OPEN: FuzzLimits = { numRuns: 100, timeLimitMs: 60_000 };
const ROUND2: FuzzLimits = { numRuns: 35, timeLimitMs: 90_000 };
const ABORT: FuzzLimits = { numRuns: 40, timeLimitMs: 30_000 };

describe('signing message fuzzing (fast-check, real SQLite stores)', () => {
  let c: FuzzCluster;
  before(async () => {
    c = await FuzzCluster.start();
  });
  after(() => c?.close());

  it('sign.open: mutated opens for held keys and live attempts are refused without state change', {
    timeout: testTimeout(OPEN),
  }, async (t) => {
    let live: Attempt | undefined;
    const pending = await c.ceremonyAt(3); // a key that exists but is not active on this node
    // After mutating: send as is, or derive attempt_id (or the intent's digest and hash, then
    // attempt_id) again, to get past the checks that compare them to the deeper ones.
    const fixArb = fc.constantFrom('none' as const, 'attempt_id' as const, 'intent' as const);
    const property = fc.asyncProperty(fc.nat({ max: 3 }), fixArb, mutsArb, async (base, fix, muts) => {
      live ??= await c.openAttempt(0);
      const valid =
        base === 0
          ? structuredClone(live.open)
          : openRequest({
              keyId: base === 3 ? 'k-imp' : 'k-dkg',
              sessionId: rid('s'),
              attempt: 1,
              included: base === 3 ? [1, 3] : [1, 2],
              intent: new Uint8Array(randomBytes(32)),
            });
      const ctx: Ctx = {
        ids: c.knownIds(live.open.session_id, pending.keyId),
        schema: SIGNER_MESSAGES.signOpen.request,
      };
      const domain: DomainOp[] = [
        (b, m) => ({
          ...b,
          included: [[2, 3], [1, 4], [1], [2, 1], [1, 1], [1, 2, 3], [0, 1], [1, 256], [], [1, 2, 2, 3]][
            m.salt[0]! % 10
          ],
        }),
        (b, m) => ({ ...b, attempt: [0, 2, 1_000_000, 1_000_001, -1, 1.5][m.salt[0]! % 6] }),
        (b, m) => ({ ...b, key_id: [pending.keyId, 'nope', 'k-imp', 'k-dkg'][m.salt[0]! % 4] }),
        (b) => ({ ...b, session_id: live!.open.session_id }),
        (b, m) => ({
          ...b,
          message: [toHex(bytesFrom(m.salt, 31)), toHex(bytesFrom(m.salt, 33)), ''][m.salt[0]! % 3],
        }),
        (b) => ({ ...b, attempt_id: live!.open.attempt_id }),
        // Another intent: another message, a Nostr event (valid, or past a limit), a PSBT.
        (b, m) => ({ ...b, intent: { type: 'message', message: toHex(bytesFrom(m.salt, 32)) } }),
        (b, m) => ({
          ...b,
          intent: {
            type: 'nostr_event',
            event: {
              kind: [1, 0, 65535, 30023][m.salt[0]! % 4],
              content: ['gm', '', 'é'.repeat(1000), '\u0000'][m.salt[1]! % 4],
              tags: [[], [['t', 'floe']], [['p', c.T.identityPub, 'wss://relay.example']], [[]]][
                m.salt[2]! % 4
              ],
              created_at: [Math.floor(Date.now() / 1000), 0, 0xffffffff][m.salt[3]! % 3],
            },
          },
        }),
        (b) => ({ ...b, intent: { type: 'bitcoin_psbt', psbt: 'cHNidP8BAA==', network: 'regtest' } }),
      ];
      let body = await mutate(valid, muts, ctx, domain);
      if (fix !== 'none') {
        // (key_id may be junk by now: a null-prototype object cannot even index a record)
        const key = typeof body?.key_id === 'string' ? c.keys[body.key_id] : undefined;
        body = rederiveOpen(body, fix, key && xOnlyGroupKey(key));
      }
      const { r, before, after } = await c.fuzzOne('signOpen', body);
      if (r.status !== 200) {
        assertUnchanged(before, after, `sign.open (${r.code})`);
        return c.assertStillOpen(live, `sign.open (${r.code})`);
      }
      if (r.ok.session_id === live.open.session_id) {
        if (r.ok.attempt_id === live.open.attempt_id) {
          assert.deepStrictEqual(r.ok.commitments, live.own, 'a repeated open answers the same commitments');
          return assertUnchanged(before, after, 'repeated sign.open');
        }
        // A higher attempt number replaced the live attempt (its nonces are gone).
        assert.ok(r.ok.attempt > live.open.attempt, 'only a higher attempt replaces the live one');
        assert.equal(after.live_attempts, before.live_attempts);
        await c.send('signAbort', { session_id: r.ok.session_id });
        await c.clients[1]!.call('signAbort', { session_id: r.ok.session_id });
        live = undefined;
        return;
      }
      assert.equal(after.live_attempts, before.live_attempts + 1);
      assert.deepStrictEqual(after.tables, before.tables, 'open writes nothing durable');
      await c.send('signAbort', { session_id: r.ok.session_id });
    });
    await fuzz(t, property, OPEN);
    if (live) {
      await c.assertStillOpen(live, 'after the open fuzz');
      await c.signAttempt(live);
    }
    await c.abortEverywhere(pending.id);
  });

  it('sign.round2: refused packages consume nothing; the same attempt then signs a valid signature', {
    timeout: testTimeout(ROUND2),
  }, async (t) => {
    let other: Attempt | undefined; // another live attempt, for cross-attempt mix-ups (kept across runs)
    const property = fc.asyncProperty(
      fc.nat({ max: 2 }),
      fc.array(mutsArb, { minLength: 1, maxLength: 4 }),
      async (variant, sequence) => {
        const a = await c.openAttempt(variant);
        other ??= await c.openAttempt(variant + 1);
        const o = other;
        const ctx: Ctx = {
          ids: c.knownIds(a.open.session_id, o.open.session_id),
          schema: SIGNER_MESSAGES.signRound2.request,
        };
        const own = (b: Body) => b.signing_package?.commitments?.find?.((x: Body) => x?.identifier === 1);
        const peer = (b: Body) => b.signing_package?.commitments?.find?.((x: Body) => x?.identifier !== 1);
        const domain: DomainOp[] = [
          (b, m) => {
            const x = own(b);
            if (x) x[m.salt[0]! % 2 ? 'hiding' : 'binding'] = OFF_CURVE[m.salt[1]! % OFF_CURVE.length];
            return b;
          },
          (b, m) => {
            const x = own(b);
            if (x) x[m.salt[0]! % 2 ? 'hiding' : 'binding'] = pointFrom(m.salt);
            return b;
          },
          (b) => {
            const x = own(b);
            if (x) [x.hiding, x.binding] = [x.binding, x.hiding];
            return b;
          },
          (b, m) => {
            const x = [own(b), peer(b)][m.salt[0]! % 2];
            if (x) x[m.salt[1]! % 2 ? 'hiding' : 'binding'] = INFINITY[m.salt[2]! % INFINITY.length];
            return b;
          },
          (b, m) => {
            const x = peer(b);
            if (x) x.hiding = OFF_CURVE[m.salt[0]! % OFF_CURVE.length];
            return b;
          },
          (b, m) => {
            const x = peer(b);
            if (x) x.identifier = [0, 1, 2, 3, 4, 256][m.salt[0]! % 6];
            return b;
          },
          (b, m) => {
            const cs = b.signing_package?.commitments;
            if (Array.isArray(cs))
              cs.push({
                v: 1,
                type: 'commitments',
                identifier: 3,
                hiding: pointFrom(m.salt),
                binding: pointFrom(m.salt.slice().reverse()),
              });
            return b;
          },
          (b) => {
            const cs = b.signing_package?.commitments;
            if (Array.isArray(cs))
              b.signing_package.commitments = cs.filter((x: Body) => x?.identifier === 1);
            return b;
          },
          (b) => {
            const cs = b.signing_package?.commitments;
            if (Array.isArray(cs)) cs.reverse();
            return b;
          },
          (b, m) => {
            if (b.signing_package)
              b.signing_package.message = [
                toHex(bytesFrom(m.salt, 32)),
                toHex(bytesFrom(m.salt, 33)),
                '',
                o.open.message,
              ][m.salt[0]! % 4];
            return b;
          },
          (b, m) => ({
            ...b,
            attempt_id: [o.open.attempt_id, toHex(bytesFrom(m.salt, 32))][m.salt[0]! % 2],
          }),
          (b, m) => ({ ...b, session_id: [o.open.session_id, 's-none'][m.salt[0]! % 2] }),
          (b, m) => ({ ...b, key_id: [a.keyId === 'k-dkg' ? 'k-imp' : 'k-dkg', 'nope'][m.salt[0]! % 2] }),
          (b) => ({ ...b, signing_package: structuredClone(o.round2.signing_package) }),
          (b, m) => {
            const x = own(b);
            if (x) Object.assign(x, [{ v: 2 }, { type: 'commitment' }, { identifier: 1.5 }][m.salt[0]! % 3]);
            return b;
          },
        ];
        const consumed = new Set<Attempt>();
        for (const muts of sequence) {
          const body = await mutate(a.round2, muts, ctx, domain);
          const { r, before, after } = await c.fuzzOne('signRound2', body);
          if (r.status === 200) {
            // Accepted only for a live attempt and under the commitment this signer issued for it.
            const which = [a, o].find((x) => x.open.attempt_id === r.ok.attempt_id);
            assert.ok(which, 'a share is released only for a live attempt');
            assert.deepStrictEqual(
              own(body),
              which.own,
              'a share is released only under the issued commitment',
            );
            assert.equal(body.signing_package.message, which.open.message, 'and only for its message');
            assert.equal(after.live_attempts, before.live_attempts - 1, 'the attempt is consumed');
            assert.equal(after.tables.markers!.rows, before.tables.markers!.rows + 1, 'marker written');
            consumed.add(which);
            break;
          }
          assertUnchanged(before, after, `sign.round2 (${r.code})`);
          await c.assertStillOpen(a, `sign.round2 (${r.code})`);
        }
        for (const x of consumed) {
          const again = await c.send('signRound2', x.round2);
          assert.equal(again.code, 'consumed_nonce_replay', 'a consumed attempt never signs again');
          for (const id of x.open.included.slice(1))
            await c.clients[id - 1]!.call('signAbort', { session_id: x.open.session_id });
        }
        // Every refusal left the attempt intact: it signs, and the signature verifies.
        if (!consumed.has(a)) await c.signAttempt(a);
        if (consumed.has(o)) other = undefined;
        else await c.assertStillOpen(o, 'the other live attempt');
      },
    );
    await fuzz(t, property, ROUND2);
    if (other) await c.signAttempt(other);
  });

  it('sign.abort: mutated aborts are refused or abort nothing, except the live session named exactly', {
    timeout: testTimeout(ABORT),
  }, async (t) => {
    let live: Attempt | undefined;
    const property = fc.asyncProperty(fc.nat({ max: 2 }), mutsArb, async (which, muts) => {
      live ??= await c.openAttempt(0);
      const wrongAttempt = toHex(randomBytes(32));
      const valid: RequestOf<'signAbort'>[] = [
        { session_id: live.open.session_id, attempt_id: wrongAttempt },
        { session_id: 's-none' },
        { session_id: live.open.session_id, attempt_id: wrongAttempt },
      ];
      const ctx: Ctx = {
        ids: c.knownIds(live.open.session_id, 's-none', 'c-none'),
        schema: SIGNER_MESSAGES.signAbort.request,
      };
      const body = await mutate(valid[which], muts, ctx, [
        (b) => ({ ...b, session_id: live!.open.session_id }),
        (b) => ({ ...b, attempt_id: live!.open.attempt_id.toUpperCase() }),
        (b) => ({ ...b, ceremony_id: 'c-none' }),
        (b) => ({ ...b, session_id: 'x'.repeat(64) }),
      ]);
      const { r, before, after } = await c.fuzzOne('signAbort', body);
      if (r.status !== 200) return assertUnchanged(before, after, 'sign.abort');
      if (r.ok.aborted === 0) return assertUnchanged(before, after, 'sign.abort that aborted nothing');
      assert.equal(r.ok.session_id, live.open.session_id, 'only the live session could be aborted');
      assert.equal(after.live_attempts, before.live_attempts - 1);
      await c.clients[1]!.call('signAbort', { session_id: live.open.session_id });
      live = undefined;
    });
    await fuzz(t, property, ABORT);
    // The live attempt survived every refused or no-op abort: it still signs.
    if (live) {
      await c.assertStillOpen(live, 'after the abort fuzz');
      await c.signAttempt(live);
    }
  });

  it('example: after refused round-2 requests (off-curve, altered own commitment, scalar-sized junk) the attempt signs', async () => {
    const a = await c.openAttempt(0);
    const bad = (f: (b: Body) => void) => {
      const b = structuredClone(a.round2) as Body;
      f(b);
      return b;
    };
    const ownC = (b: Body) => b.signing_package.commitments.find((x: Body) => x.identifier === 1);
    const requests = [
      bad((b) => {
        ownC(b).hiding = OFF_CURVE[0];
      }),
      bad((b) => {
        ownC(b).binding = pointFrom(new Uint8Array(32).fill(7));
      }),
      bad((b) => {
        b.signing_package.commitments[1].binding = INFINITY[2];
      }),
      bad((b) => {
        b.signing_package.message = hexN(N);
      }),
      bad((b) => {
        b.signing_package.commitments.pop();
      }),
      bad((b) => {
        b.signing_package.commitments.reverse();
      }),
    ];
    const before = await c.snapshot();
    const codes: string[] = [];
    for (const body of requests) {
      const r = await c.send('signRound2', body);
      assert.ok(r.status >= 400 && r.status < 500, `refused with a 4xx, got ${r.status}`);
      codes.push(r.code!);
    }
    assert.deepStrictEqual(codes, [
      'invalid_encoding',
      'own_commitment_mismatch',
      'invalid_encoding',
      'message_mismatch',
      'wrong_commitment_count',
      'invalid_encoding',
    ]);
    assertUnchanged(before, await c.snapshot(), 'refused round 2');
    await c.assertStillOpen(a, 'refused round 2');
    await c.signAttempt(a);
    const replay = await c.send('signRound2', a.round2);
    assert.equal(replay.code, 'consumed_nonce_replay');
  });

  it('ran the planned number of exchanges', (t) => {
    t.diagnostic(`${c.exchanges} fuzzed exchanges with the node under test`);
    const planned = runs(OPEN.numRuns) + runs(ROUND2.numRuns) + runs(ABORT.numRuns);
    assert.ok(c.exchanges >= planned, `only ${c.exchanges} exchanges`);
  });
});
