/**
 * Input fuzzing (fast-check) of the DKG messages a signer node accepts (dkg.round1, round2,
 * round3, certify, abort), against real signer nodes (test/helpers/fuzz-cluster.ts).
 *
 * Bodies start from a VALID request (a live ceremony at the right round) and get one to three
 * mutations (test/helpers/fuzz-mutate.ts), or message-specific ones that pass the schema and
 * reach deep validation (an off-curve or altered commitment, a package for another threshold,
 * a sealed share that opens to a wrong scalar, boxes from the wrong senders, a certificate of
 * another member, ...).
 *
 * Every request: no 5xx; a refusal is a signed RFC 9457 problem with a stable code; the node
 * still answers /healthz; and a refused request changes nothing (SQLite tables, live gauges),
 * except the documented fail-closed refusals that end a ceremony (`dkg_failed` or a
 * `dkg_complaint` in round 3,
 * `certification_mismatch`), which may drop exactly that ceremony and its pending key. A
 * ceremony that saw refusals still completes and is certified by every member.
 *
 * Seeds: test/helpers/fuzz-seed.ts (FLOE_FUZZ_SEED, FLOE_FUZZ_PATH, FLOE_FUZZ_SCALE).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  dkgRound1 as cryptoDkgRound1,
  encodeDkgRound1,
  fromHex,
  sealBox,
  toHex,
} from '../../src/crypto/index.js';
import { type RequestOf, SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { DKG_BOX_INFO, dkgBoxAad } from '../../src/protocol/transcript.js';
import {
  assertCeremonyDropped,
  assertUnchanged,
  type Ceremony,
  FuzzCluster,
  rid,
  sizeArb,
} from '../helpers/fuzz-cluster.js';
import {
  BAD_SCALARS,
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
  scalarFrom,
  seqArb,
} from '../helpers/fuzz-mutate.js';
import { type FuzzLimits, fuzz, runs, testTimeout } from '../helpers/fuzz-seed.js';

const ROUND1: FuzzLimits = { numRuns: 80, timeLimitMs: 60_000 };
const ROUND2: FuzzLimits = { numRuns: 20, timeLimitMs: 90_000 };
const ROUND3: FuzzLimits = { numRuns: 20, timeLimitMs: 90_000 };
const CERTIFY: FuzzLimits = { numRuns: 20, timeLimitMs: 90_000 };
const ABORT: FuzzLimits = { numRuns: 27, timeLimitMs: 30_000 };

describe('DKG message fuzzing (fast-check, real SQLite stores)', () => {
  let c: FuzzCluster;
  before(async () => {
    c = await FuzzCluster.start();
  });
  after(() => c?.close());

  it('dkg.round1: mutated requests are refused without state change (or start a ceremony)', {
    timeout: testTimeout(ROUND1),
  }, async (t) => {
    let live: Ceremony | undefined;
    const property = fc.asyncProperty(fc.boolean(), mutsArb, async (existing, muts) => {
      live ??= await c.ceremonyAt(1);
      const valid: RequestOf<'dkgRound1'> = existing
        ? structuredClone(live.round1Req[0]!)
        : {
            ceremony_id: rid('c'),
            key_id: rid('k'),
            threshold: 2,
            n: 3,
            identifier: 1,
            participants: c.participants(),
          };
      const ctx: Ctx = { ids: c.knownIds(live.id, live.keyId), schema: SIGNER_MESSAGES.dkgRound1.request };
      const off = OFF_CURVE[0]!.slice(2);
      const body = await mutate(valid, muts, ctx, [
        (b) => ({ ...b, threshold: 4 }),
        (b) => ({ ...b, threshold: 3 }),
        (b) => ({ ...b, n: 4 }),
        (b) => ({ ...b, n: 2 }),
        (b) => ({ ...b, identifier: 2 }),
        (b) => ({ ...b, identifier: 4 }),
        (b) => ({ ...b, key_id: 'k-dkg' }),
        (b) => ({ ...b, ceremony_id: live!.id }),
        (b) => ({
          ...b,
          participants: b.participants?.map?.((p: Body) => ({ ...p, identity: c.T.identityPub })),
        }),
        (b) => ({
          ...b,
          participants: b.participants?.map?.((p: Body, i: number) => ({ ...p, identifier: i + 2 })),
        }),
        (b, m) => ({
          ...b,
          participants: b.participants?.map?.((p: Body, i: number) =>
            i === 1 + (m.salt[0]! % 2)
              ? { ...p, identity: m.salt[1]! % 2 ? off : toHex(bytesFrom(m.salt, 32)) }
              : p,
          ),
        }),
        (b) => ({ ...b, participants: [...(b.participants ?? [])].reverse() }),
      ]);
      const { r, before, after } = await c.fuzzOne('dkgRound1', body);
      if (r.status !== 200) return assertUnchanged(before, after, 'dkg.round1');
      // Accepted: a new ceremony (cleaned up here) or the idempotent repeat of the live one.
      if (r.ok.ceremony_id === live.id) {
        assert.deepStrictEqual(r.ok, live.round1![0], 'a repeated round 1 answers the same package');
        return assertUnchanged(before, after, 'repeated dkg.round1');
      }
      assert.equal(after.live_ceremonies, before.live_ceremonies + 1);
      assert.deepStrictEqual(after.tables, before.tables, 'round 1 writes nothing durable');
      await c.send('dkgAbort', { ceremony_id: r.ok.ceremony_id });
    });
    await fuzz(t, property, ROUND1);
    // The ceremony whose id the fuzzer kept hitting is intact: it completes.
    if (live) await c.completeCeremony(live, 2);
  });

  it('dkg.round2: refusals change nothing and the ceremony still completes', {
    timeout: testTimeout(ROUND2),
  }, async (t) => {
    const property = fc.asyncProperty(sizeArb, seqArb, async (n, seq) => {
      const cer = await c.ceremonyAt(1, n);
      let settled = false;
      try {
        const valid = c.round2Body(cer);
        const ctx: Ctx = { ids: c.knownIds(cer.id, cer.keyId), schema: SIGNER_MESSAGES.dkgRound2.request };
        // A real round-1 package with the wrong number of commitments (threshold 3).
        const wrongT = (id: number) => encodeDkgRound1(cryptoDkgRound1(id, 3, 3).package);
        const domain: DomainOp[] = [
          (b, m) => {
            const pk = b.round1?.[m.salt[0]! % b.round1.length];
            if (pk?.commitment)
              pk.commitment[m.salt[1]! % pk.commitment.length] = OFF_CURVE[m.salt[2]! % OFF_CURVE.length];
            return b;
          },
          (b, m) => {
            const pk = b.round1?.[1 + (m.salt[0]! % (b.round1.length - 1))];
            if (pk?.commitment) pk.commitment[m.salt[1]! % pk.commitment.length] = pointFrom(m.salt);
            return b;
          },
          (b, m) => {
            const pk = b.round1?.[m.salt[0]! % b.round1.length];
            if (typeof pk?.proof_of_knowledge === 'string')
              pk.proof_of_knowledge = `${pk.proof_of_knowledge.slice(0, 64)}${BAD_SCALARS[m.salt[1]! % BAD_SCALARS.length]}`;
            return b;
          },
          (b, m) => {
            if (Array.isArray(b.round1)) {
              const i = 1 + (m.salt[0]! % (b.round1.length - 1));
              b.round1[i] = wrongT(i + 1);
            }
            return b;
          },
          (b, m) => {
            // This signer's own package, altered (a commitment of the same form).
            const pk = b.round1?.[0];
            if (pk?.commitment) pk.commitment[m.salt[0]! % pk.commitment.length] = pointFrom(m.salt);
            return b;
          },
          (b, m) => {
            const pk = b.round1?.[m.salt[0]! % b.round1.length];
            if (pk) pk.identifier = [0, 4, 256, 1, 2, 3][m.salt[1]! % 6];
            return b;
          },
          (b) => {
            const pk = b.round1?.[1];
            if (pk?.commitment) pk.commitment = [...pk.commitment, pk.commitment[0]];
            return b;
          },
          (b) => ({ ...b, ceremony_id: 'c-none' }),
        ];
        const sorted = (b: Body) => [...b.round1].sort((x: Body, y: Body) => x.identifier - y.identifier);
        let first: Body | undefined; // the first accepted round-2 request: the transcript from then on
        for (const muts of seq) {
          const body = await mutate(valid, muts, ctx, domain);
          const { r, before, after } = await c.fuzzOne('dkgRound2', body);
          if (r.status === 200) {
            // Packages this signer cannot tell from real ones (a commitment beyond the first,
            // which the proof of knowledge does not cover) are answered; a repeat answers the
            // cache only for the very same packages.
            if (first) assert.deepStrictEqual(sorted(body), sorted(first), 'repeat of another transcript');
            first ??= body;
            assert.equal(r.ok.ceremony_id, cer.id);
            assert.deepStrictEqual(after.tables, before.tables, 'round 2 writes nothing durable');
            continue;
          }
          assertUnchanged(before, after, 'dkg.round2');
        }
        if (first) assert.equal(c.T.store.getKey(cer.keyId), undefined, 'round 2 stores no key');
        if (first && !isDeepStrictEqual(sorted(first), sorted(valid))) {
          // This signer took another transcript: the real one is refused, not answered from cache.
          const r = await c.send('dkgRound2', valid);
          assert.equal(r.code, 'ceremony_conflict');
          return;
        }
        // Refusals left the ceremony as it was: it completes and every member certifies.
        await c.completeCeremony(cer, 2);
        settled = true;
      } finally {
        if (!settled) await c.abortEverywhere(cer.id);
      }
    });
    await fuzz(t, property, ROUND2);
  });

  it('dkg.round3: refusals change nothing (a fail-closed dkg_failed or complaint only drops the ceremony)', {
    timeout: testTimeout(ROUND3),
  }, async (t) => {
    const property = fc.asyncProperty(sizeArb, seqArb, async (n, seq) => {
      const cer = await c.ceremonyAt(2, n);
      let settled = false;
      try {
        const valid = c.round3Body(cer, 0);
        const ctx: Ctx = { ids: c.knownIds(cer.id, cer.keyId), schema: SIGNER_MESSAGES.dkgRound3.request };
        // A box that opens but holds something else than the sender's share (sealed by the real sender).
        const lie = (sender: number, plain: Uint8Array) =>
          sealBox(
            c.identities[sender - 1]!,
            fromHex(c.T.identityPub, 'id', 32),
            plain,
            dkgBoxAad(cer.id, cer.keyId, sender, 1),
            DKG_BOX_INFO,
          );
        const lies = (salt: Uint8Array) => [
          fromHex(hexN(0n), 's', 32),
          fromHex(hexN(N), 's', 32),
          fromHex(hexN(scalarFrom(salt)), 's', 32),
          bytesFrom(salt, 31),
          bytesFrom(salt, 33),
        ];
        const domain: DomainOp[] = [
          (b, m) => {
            const i = m.salt[0]! % b.boxes.length;
            if (b.boxes?.[i]) b.boxes[i].box = lie(b.boxes[i].sender, lies(m.salt)[m.salt[1]! % 5]!);
            return b;
          },
          (b) => {
            // Boxes attributed to the wrong senders.
            if (b.boxes?.length === 2)
              [b.boxes[0].sender, b.boxes[1].sender] = [b.boxes[1].sender, b.boxes[0].sender];
            return b;
          },
          (b, m) => {
            const i = m.salt[0]! % b.boxes.length;
            if (b.boxes?.[i]) b.boxes[i].sender = [0, 1, 4, 256, 2, 3][m.salt[1]! % 6];
            return b;
          },
          (b, m) => {
            const box = b.boxes?.[m.salt[0]! % 2]?.box;
            if (box) box.ciphertext = box.ciphertext.slice(0, 2 * (m.salt[1]! % 20));
            return b;
          },
          (b, m) => {
            const box = b.boxes?.[m.salt[0]! % 2]?.box;
            if (box)
              box.sender = [c.T.identityPub, OFF_CURVE[2]!.slice(2), c.nodes[2]!.identityPub][m.salt[1]! % 3];
            return b;
          },
          (b, m) => {
            const box = b.boxes?.[m.salt[0]! % 2]?.box;
            if (box) box.nonce = toHex(bytesFrom(m.salt, 12));
            return b;
          },
          (b) => ({ ...b, ceremony_id: 'c-none' }),
        ];
        let dead = false;
        let done = false;
        for (const muts of seq) {
          const body = await mutate(valid, muts, ctx, domain);
          const { r, before, after } = await c.fuzzOne('dkgRound3', body);
          if (r.status === 200) {
            done = true;
            continue;
          }
          if (
            !dead &&
            !done &&
            (r.code === 'dkg_failed' || r.code === 'dkg_complaint') &&
            after.live_ceremonies === before.live_ceremonies - 1
          ) {
            assertCeremonyDropped(before, after, cer.keyId, 'dkg.round3');
            dead = true;
            continue;
          }
          assertUnchanged(before, after, `dkg.round3 (${r.code})`);
        }
        if (dead) {
          assert.equal(c.T.store.getKey(cer.keyId), undefined, 'a failed round 3 leaves no key behind');
          const again = await c.send('dkgRound3', valid);
          assert.equal(again.code, 'ceremony_unknown');
          return; // the other members' ceremony is aborted in finally
        }
        await c.completeCeremony(cer, 3);
        settled = true;
      } finally {
        if (!settled) await c.abortEverywhere(cer.id);
      }
    });
    await fuzz(t, property, ROUND3);
  });

  it('dkg.certify: refusals change nothing (certification_mismatch only drops the ceremony)', {
    timeout: testTimeout(CERTIFY),
  }, async (t) => {
    const property = fc.asyncProperty(sizeArb, seqArb, async (n, seq) => {
      const cer = await c.ceremonyAt(3, n);
      let settled = false;
      try {
        const valid = c.certifyBody(cer);
        const ctx: Ctx = { ids: c.knownIds(cer.id, cer.keyId), schema: SIGNER_MESSAGES.dkgCertify.request };
        const domain: DomainOp[] = [
          (b, m) => {
            const x = b.certificates?.[m.salt[0]! % b.certificates.length];
            if (x) x.certificate = b.certificates[(m.salt[0]! + 1) % b.certificates.length].certificate;
            return b;
          },
          (b, m) => {
            const x = b.certificates?.[m.salt[0]! % b.certificates.length];
            if (x) x.group_public_key = [pointFrom(m.salt), OFF_CURVE[0], INFINITY[2]][m.salt[1]! % 3];
            return b;
          },
          (b, m) => {
            const x = b.certificates?.[m.salt[0]! % b.certificates.length];
            if (x) x.transcript_hash = toHex(bytesFrom(m.salt, 32));
            return b;
          },
          (b, m) => {
            const x = b.certificates?.[m.salt[0]! % b.certificates.length];
            if (x) x.identifier = [0, 4, 256, 1, 2, 3][m.salt[1]! % 6];
            return b;
          },
          (b, m) => ({ ...b, key_id: ['k-dkg', 'k-imp', `${cer.keyId}x`][m.salt[0]! % 3] }),
          (b) => ({ ...b, ceremony_id: 'c-none' }),
        ];
        let dead = false;
        for (const muts of seq) {
          const body = await mutate(valid, muts, ctx, domain);
          const { r, before, after } = await c.fuzzOne('dkgCertify', body);
          if (r.status === 200) {
            assert.equal(r.ok.key_id, cer.keyId);
            assert.equal(c.T.store.getKey(cer.keyId)?.status, 'active');
            dead = true; // certified here; the ceremony is over on this node
            continue;
          }
          if (
            !dead &&
            r.code === 'certification_mismatch' &&
            after.live_ceremonies === before.live_ceremonies - 1
          ) {
            assertCeremonyDropped(before, after, cer.keyId, 'dkg.certify');
            assert.equal(c.T.store.getKey(cer.keyId), undefined, 'the pending key is dropped');
            dead = true;
            continue;
          }
          assertUnchanged(before, after, `dkg.certify (${r.code})`);
        }
        if (dead) return; // aborted on the other members in finally
        await c.completeCeremony(cer, 4);
        settled = true;
      } finally {
        if (!settled) await c.abortEverywhere(cer.id);
      }
    });
    await fuzz(t, property, CERTIFY);
  });

  it('dkg.abort: mutated aborts are refused or abort nothing, except the live ceremony named exactly', {
    timeout: testTimeout(ABORT),
  }, async (t) => {
    let cer: Ceremony | undefined;
    const property = fc.asyncProperty(fc.nat({ max: 1 }), mutsArb, async (which, muts) => {
      cer ??= await c.ceremonyAt(1);
      const valid: RequestOf<'dkgAbort'> = { ceremony_id: which ? `${cer.id}x` : 'c-none' };
      const ctx: Ctx = {
        ids: c.knownIds(cer.id, 's-none', 'c-none'),
        schema: SIGNER_MESSAGES.dkgAbort.request,
      };
      const body = await mutate(valid, muts, ctx, [
        (b) => ({ ...b, ceremony_id: cer!.id.slice(0, -1) }),
        (b) => ({ ...b, ceremony_id: 'x'.repeat(64) }),
        (b) => ({ ...b, session_id: 's-none' }),
        (b) => ({ ...b, ceremony_id: cer!.id.toUpperCase() }),
      ]);
      const { r, before, after } = await c.fuzzOne('dkgAbort', body);
      if (r.status !== 200) return assertUnchanged(before, after, 'dkg.abort');
      if (r.ok.aborted === false) return assertUnchanged(before, after, 'dkg.abort that aborted nothing');
      assert.equal(r.ok.ceremony_id, cer.id, 'only the live ceremony could be aborted');
      assertCeremonyDropped(before, after, cer.keyId, 'dkg.abort');
      await c.abortEverywhere(cer.id);
      cer = undefined;
    });
    await fuzz(t, property, ABORT);
    // The ceremony survived every refused or no-op abort: it completes.
    if (cer) await c.completeCeremony(cer, 2);
  });

  it('example: a round-3 request with boxes from the wrong senders is refused and the ceremony survives', async () => {
    const cer = await c.ceremonyAt(2, 3);
    let settled = false;
    try {
      for (const senders of [
        [2, 4],
        [1, 3],
        [1, 2],
      ]) {
        const body = c.round3Body(cer, 0);
        for (const [i, b] of body.boxes.entries()) b.sender = senders[i]!;
        const { r, before, after } = await c.fuzzOne('dkgRound3', body);
        assert.equal(r.code, 'invalid_request');
        assertUnchanged(before, after, `dkg.round3 with boxes from ${senders.join(', ')}`);
      }
      await c.completeCeremony(cer, 3);
      settled = true;
    } finally {
      if (!settled) await c.abortEverywhere(cer.id);
    }
  });

  it('example: a repeated dkg.round2 is answered from cache only for the very same round-1 packages', async () => {
    const cer = await c.ceremonyAt(1, 2);
    try {
      // A peer package altered where its proof of knowledge does not reach (commitment[1]):
      // this signer cannot tell, and answers.
      const altered = structuredClone(c.round2Body(cer));
      altered.round1[1]!.commitment[1] = altered.round1[1]!.commitment[0]!;
      assert.equal((await c.send('dkgRound2', altered)).status, 200);
      // The real packages are another transcript: refused, not answered from the cache.
      const before = await c.snapshot();
      const r = await c.send('dkgRound2', c.round2Body(cer));
      assert.equal(r.code, 'ceremony_conflict');
      assertUnchanged(before, await c.snapshot(), 'dkg.round2 with other packages');
      // The same altered request again is a repeat.
      assert.equal((await c.send('dkgRound2', altered)).status, 200);
    } finally {
      await c.abortEverywhere(cer.id);
    }
  });

  it('example: aborting one ceremony never deletes the pending key another ceremony stored', async () => {
    // Two ceremonies for one key id both pass round 1 (the key does not exist yet); the first
    // stores its pending key in round 3. Dropping the second must not take that key with it.
    const keyId = rid('k');
    const pair = c.clients.slice(0, 2);
    const r1 = (id: string) =>
      pair.map((_, i) => ({
        ceremony_id: id,
        key_id: keyId,
        threshold: 2,
        n: 2,
        identifier: i + 1,
        participants: c.participants().slice(0, 2),
      }));
    const first: Ceremony = { id: rid('c'), n: 2, keyId, round1Req: [] };
    first.round1Req = r1(first.id);
    const second = rid('c');
    first.round1 = await Promise.all(pair.map((cl, i) => cl.call('dkgRound1', first.round1Req[i]!)));
    await Promise.all(pair.map((cl, i) => cl.call('dkgRound1', r1(second)[i]!)));
    first.round2 = await Promise.all(pair.map((cl) => cl.call('dkgRound2', c.round2Body(first))));
    first.round3 = await Promise.all(pair.map((cl, i) => cl.call('dkgRound3', c.round3Body(first, i))));
    assert.equal(c.T.store.getKey(keyId)?.status, 'pending');

    const before = await c.snapshot();
    const r = await c.send('dkgAbort', { ceremony_id: second });
    assert.equal(r.ok?.aborted, true);
    const after = await c.snapshot();
    assert.equal(after.live_ceremonies, before.live_ceremonies - 1);
    assert.deepStrictEqual(after.tables, before.tables, "another ceremony's key was deleted");
    await c.clients[1]!.call('dkgAbort', { ceremony_id: second });
    await c.completeCeremony(first, 4);
  });

  it('ran the planned number of exchanges', (t) => {
    t.diagnostic(`${c.exchanges} fuzzed exchanges with the node under test`);
    const planned = [ROUND1, ROUND2, ROUND3, CERTIFY, ABORT].reduce((s, l) => s + runs(l.numRuns), 0);
    assert.ok(c.exchanges >= planned, `only ${c.exchanges} exchanges`);
  });
});
