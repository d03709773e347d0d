/**
 * Input fuzzing (fast-check) of key.import, the dealer-share import a signer node accepts,
 * against real signer nodes (test/helpers/fuzz-cluster.ts).
 *
 * Bodies start from a VALID import (a fresh 2-of-3 dealer split, share 1 sealed to the node
 * under test) and get one to three mutations (test/helpers/fuzz-mutate.ts), or ones that pass
 * the schema and reach deep validation: a sealed share that opens to a wrong scalar or is bound
 * to another key / identifier / group key, verifying shares or commitments off the curve or of
 * another key, another threshold, a taproot tweak, an existing key id.
 *
 * Every request: no 5xx; a refusal is a signed RFC 9457 problem with a stable code; the node
 * still answers /healthz; a refused import changes nothing (SQLite tables, live gauges); an
 * accepted one adds exactly one active key and touches no other.
 *
 * Seeds: test/helpers/fuzz-seed.ts (FLOE_FUZZ_SEED, FLOE_FUZZ_PATH, FLOE_FUZZ_SCALE).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  dealerSplit,
  encodePublicKeyPackage,
  fromHex,
  generateIdentityKey,
  groupPublicKey,
  sealBox,
  softwareIdentity,
} from '../../src/crypto/index.js';
import { type RequestOf, SIGNER_MESSAGES } from '../../src/protocol/messages/index.js';
import { IMPORT_BOX_INFO, importBoxAad } from '../../src/protocol/transcript.js';
import { assertUnchanged, FuzzCluster, rid } from '../helpers/fuzz-cluster.js';
import {
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
} from '../helpers/fuzz-mutate.js';
import { type FuzzLimits, fuzz, runs, testTimeout } from '../helpers/fuzz-seed.js';

const IMPORT: FuzzLimits = { numRuns: 60, timeLimitMs: 60_000 };

describe('key.import fuzzing (fast-check, real SQLite stores)', () => {
  let c: FuzzCluster;
  before(async () => {
    c = await FuzzCluster.start();
  });
  after(() => c?.close());

  it('key.import: mutated imports are refused without state change (or import exactly one key)', {
    timeout: testTimeout(IMPORT),
  }, async (t) => {
    const property = fc.asyncProperty(mutsArb, async (muts) => {
      const keyId = rid('ki');
      const { shares, public: pub } = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
      const gk = groupPublicKey(pub);
      const members = c.nodes.map((n, i) => ({ identifier: i + 1, identity: n.identityPub }));
      const sealTo = (plain: Uint8Array, aadKey = keyId, aadId = 1, aadGk = gk) =>
        sealBox(
          softwareIdentity(generateIdentityKey()),
          fromHex(c.T.identityPub, 'id', 32),
          plain,
          importBoxAad(aadKey, aadId, aadGk, pub.tweak, members),
          IMPORT_BOX_INFO,
        );
      const valid: RequestOf<'keyImport'> = {
        key_id: keyId,
        identifier: 1,
        members,
        public_key_package: encodePublicKeyPackage(pub),
        sealed_share: sealTo(shares[0]!.signingShare),
      };
      const ctx: Ctx = { ids: c.knownIds(keyId), schema: SIGNER_MESSAGES.keyImport.request };
      const domain: DomainOp[] = [
        (b, m) => {
          const plains = [
            shares[1]!.signingShare,
            fromHex(hexN(0n), 's', 32),
            fromHex(hexN(N), 's', 32),
            fromHex(hexN(scalarFrom(m.salt)), 's', 32),
            bytesFrom(m.salt, 31),
            new Uint8Array([...shares[0]!.signingShare, 0]),
          ];
          return { ...b, sealed_share: sealTo(plains[m.salt[0]! % plains.length]!) };
        },
        (b, m) => ({
          ...b,
          sealed_share: [
            sealTo(shares[0]!.signingShare, 'k-dkg'),
            sealTo(shares[0]!.signingShare, keyId, 2),
            sealTo(shares[0]!.signingShare, keyId, 1, fromHex(pointFrom(m.salt), 'p', 33)),
          ][m.salt[0]! % 3],
        }),
        (b, m) => {
          const vs = b.public_key_package?.verifying_shares;
          if (vs)
            vs[String(1 + (m.salt[0]! % 3))] = [pointFrom(m.salt), OFF_CURVE[1], INFINITY[2]][m.salt[1]! % 3];
          return b;
        },
        (b, m) => {
          const cs = b.public_key_package?.commitments;
          if (Array.isArray(cs))
            cs[m.salt[0]! % cs.length] = [pointFrom(m.salt), OFF_CURVE[3]][m.salt[1]! % 2];
          return b;
        },
        (b, m) => {
          const p = b.public_key_package;
          if (p) Object.assign(p, [{ threshold: 3 }, { n: 2 }, { threshold: 1 }, { n: 4 }][m.salt[0]! % 4]);
          return b;
        },
        (b, m) => {
          const p = b.public_key_package;
          if (p)
            p.tweak = [
              { kind: 'taproot', internal_key: pointFrom(m.salt), merkle_root: '' },
              { kind: 'taproot', internal_key: OFF_CURVE[4], merkle_root: 'ab'.repeat(32) },
              { kind: 'taproot', internal_key: pointFrom(m.salt), merkle_root: 'ab'.repeat(31) },
            ][m.salt[0]! % 3];
          return b;
        },
        (b, m) => {
          if (b.sealed_share)
            b.sealed_share.sender = [OFF_CURVE[5]!.slice(2), c.T.identityPub, '00'.repeat(32)][
              m.salt[0]! % 3
            ];
          return b;
        },
        (b, m) => ({ ...b, identifier: [2, 3, 4, 0, 256][m.salt[0]! % 5] }),
        (b, m) => ({ ...b, key_id: ['k-dkg', 'k-imp'][m.salt[0]! % 2] }),
      ];
      const body = await mutate(valid, muts, ctx, domain);
      const { r, before, after } = await c.fuzzOne('keyImport', body);
      if (r.status !== 200) return assertUnchanged(before, after, `key.import (${r.code})`);
      // Accepted: exactly one new key, pending until every member's certificate is confirmed.
      assert.equal(Object.keys(after.keys).length, Object.keys(before.keys).length + 1);
      assert.match(after.keys[r.ok.key_id] ?? '', /^pending:/);
      assert.equal(before.keys[r.ok.key_id], undefined);
      const { [r.ok.key_id]: _new, ...others } = after.keys;
      assert.deepStrictEqual(others, before.keys, 'an import touches no other key');
    });
    await fuzz(t, property, IMPORT);
  });

  it('ran the planned number of exchanges', (t) => {
    t.diagnostic(`${c.exchanges} fuzzed exchanges with the node under test`);
    assert.ok(c.exchanges >= runs(IMPORT.numRuns), `only ${c.exchanges} exchanges`);
  });
});
