import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accessTokenTimes,
  hasRole,
  newApiToken,
  signAccessToken,
  verifyAccessToken,
} from '../../src/coordinator/auth/tokens.js';
import { type Candidate, chooseSubset } from '../../src/coordinator/selection.js';
import { FloeError } from '../../src/protocol/errors.js';

describe('signer selection', () => {
  const c = (identifier: number, o: Partial<Candidate> = {}): Candidate => ({
    identifier,
    signerId: `s${identifier}`,
    status: 'active',
    quarantined: false,
    quarantineOverride: false,
    faultCount: 0,
    lastLatencyMs: 5,
    lastSeenAt: 1,
    ...o,
  });

  it('picks t eligible members, fewest faults first, sorted by identifier', () => {
    const all = [
      c(1, { faultCount: 2 }),
      c(2),
      c(3),
      c(4, { status: 'disabled' }),
      c(5, { quarantined: true }),
    ];
    assert.deepEqual(
      chooseSubset(all, 2, new Set())!.map((x) => x.identifier),
      [2, 3],
    );
    assert.deepEqual(
      chooseSubset(all, 2, new Set([2]))!.map((x) => x.identifier),
      [1, 3],
    );
    assert.equal(chooseSubset(all, 3, new Set([2])), undefined);
  });

  it('signers not seen lately rank after fresh ones', () => {
    const all = [c(1, { lastSeenAt: 100 }), c(2, { lastSeenAt: 5_000 }), c(3, { lastSeenAt: 6_000 })];
    assert.deepEqual(
      chooseSubset(all, 2, new Set(), 1_000)!.map((x) => x.identifier),
      [2, 3],
    );
    assert.deepEqual(
      chooseSubset(all, 3, new Set(), 1_000)!.map((x) => x.identifier),
      [1, 2, 3],
    );
  });

  it('faster signers win across buckets; within one bucket the identifier decides', () => {
    const all = [c(1, { lastLatencyMs: 180 }), c(2, { lastLatencyMs: 40 }), c(3, { lastLatencyMs: 90 })];
    const pick = (bucket: number) => chooseSubset(all, 2, new Set(), 0, bucket)!.map((x) => x.identifier);
    assert.deepEqual(pick(100), [2, 3]); // 180 ms is a slower bucket
    assert.deepEqual(pick(10), [2, 3]);
    assert.deepEqual(pick(1_000), [1, 2]); // all equally fast: lowest identifiers
    // A signer never measured ranks after measured ones within ten buckets.
    const fresh = [c(1, { lastLatencyMs: null }), c(2, { lastLatencyMs: 900 }), c(3)];
    assert.deepEqual(
      chooseSubset(fresh, 2, new Set(), 0, 100)!.map((x) => x.identifier),
      [2, 3],
    );
  });

  it('a random tie-break spreads the load over equally good members, never over worse ones', () => {
    const all = [c(1), c(2), c(3), c(4, { faultCount: 1 }), c(5, { lastLatencyMs: 900 })];
    const seen = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      for (const x of chooseSubset(all, 2, new Set(), 0, 100, () => Math.random())!) {
        seen.set(x.identifier, (seen.get(x.identifier) ?? 0) + 1);
      }
    }
    // 1, 2 and 3 are equal: each is chosen about 2/3 of the time; 4 (a fault) and 5 (slow) never.
    for (const id of [1, 2, 3]) assert.ok(seen.get(id)! > 120, `member ${id} chosen ${seen.get(id)} times`);
    assert.equal(seen.get(4), undefined);
    assert.equal(seen.get(5), undefined);
  });

  it('an admin override lets a quarantined signer take part', () => {
    const all = [c(1, { quarantined: true, quarantineOverride: true }), c(2)];
    assert.deepEqual(
      chooseSubset(all, 2, new Set())!.map((x) => x.identifier),
      [1, 2],
    );
  });
});

describe('auth primitives', () => {
  const secret = new Uint8Array(32).fill(7);
  const principal = { tenantId: 't1', role: 'operator' as const, tokenId: 'abc' };
  const now = 1_800_000_000_000;

  it('access tokens verify until they expire, and not with another secret or after tampering', async () => {
    const jwt = await signAccessToken(secret, principal, now);
    assert.equal((await verifyAccessToken(secret, jwt, now + 14 * 60_000)).tid, 't1');
    const refuse = (p: Promise<unknown>) =>
      assert.rejects(p, (e: unknown) => e instanceof FloeError && e.code === 'unauthorized');
    await refuse(verifyAccessToken(secret, jwt, now + 15 * 60_000));
    await refuse(verifyAccessToken(new Uint8Array(32).fill(8), jwt, now));
    const [h, b, s] = jwt.split('.') as [string, string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(b, 'base64url').toString()), role: 'admin' }),
    ).toString('base64url');
    await refuse(verifyAccessToken(secret, `${h}.${forged}.${s}`, now));
    await refuse(verifyAccessToken(secret, 'x.y', now));
    // Not yet valid (issued in the future: no clock tolerance).
    await refuse(verifyAccessToken(secret, jwt, now - 1000));
  });

  it('an access token expires with its API token', async () => {
    const jwt = await signAccessToken(secret, principal, now, { notAfterMs: now + 60_000 });
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    assert.equal(claims.exp - claims.iat, 60);
    assert.deepEqual(accessTokenTimes(now, now + 60_500), { iat: now / 1000, exp: now / 1000 + 60 });
    assert.deepEqual(accessTokenTimes(now, null), { iat: now / 1000, exp: now / 1000 + 900 });
    assert.deepEqual(accessTokenTimes(now, now + 3_600_000), { iat: now / 1000, exp: now / 1000 + 900 });
    await assert.rejects(verifyAccessToken(secret, jwt, now + 60_000));
  });

  it('API tokens are random and well formed', () => {
    const a = newApiToken();
    const b = newApiToken();
    assert.notEqual(a.token, b.token);
    assert.match(a.token, /^floe_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  });

  it('roles are ordered viewer < requester < operator < admin', () => {
    assert.ok(hasRole('admin', 'operator'));
    assert.ok(hasRole('operator', 'requester'));
    assert.ok(!hasRole('requester', 'operator'));
    assert.ok(!hasRole('viewer', 'requester'));
    assert.ok(hasRole('viewer', 'viewer'));
  });
});
