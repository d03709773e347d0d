import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Db, openDb, type Tx } from '../../src/db/connection.js';
import { appendAudit } from '../../src/db/queries/audit.js';
import { insertCeremony } from '../../src/db/queries/ceremonies.js';
import { insertCommitments } from '../../src/db/queries/nonces.js';
import { expireSessions, getSession } from '../../src/db/queries/sessions.js';
import {
  findApiTokenByHash,
  insertApiToken,
  insertRefreshToken,
  sha256Hex,
} from '../../src/db/queries/tokens.js';
import { type TestDb, testDb } from '../helpers/db.js';
import {
  commitment,
  DAY,
  hex,
  intentValues,
  NOW,
  seedKeyTx,
  seedSessionTx,
  seedTenant,
  uniq,
} from './fixtures.js';

const TENANT_TABLES = [
  'tenants',
  'api_tokens',
  'refresh_tokens',
  'keys',
  'dkg_ceremonies',
  'signing_sessions',
  'nonce_commitments',
  'audit_events',
];

const tenantCol = (table: string) => (table === 'tenants' ? 'id' : 'tenant_id');
const rlsRefused = (e: unknown) =>
  (e as { code?: string }).code === '42501' && /row-level security/.test((e as Error).message);

interface Seeded {
  tenant: string;
  keyId: string;
  sessionId: string;
  tokenId: string;
  tokenHash: string;
}

/** One row in every tenant table for a fresh tenant. */
async function seedAll(db: Db): Promise<Seeded> {
  const tenant = await seedTenant(db);
  return db.transaction(
    async (tx) => {
      const key = await seedKeyTx(tx);
      const s = await seedSessionTx(tx, { keyId: key.id });
      await tx.query(
        `UPDATE signing_sessions SET status = 'nonce_collection', attempt = 1 WHERE session_id = $1`,
        [s.sessionId],
      );
      await insertCommitments(tx, s.sessionId, 1, [
        { participant: 1, signerId: 's1', commitment: commitment() },
      ]);
      const tokenHash = sha256Hex(hex(32));
      const tok = await insertApiToken(tx, {
        id: uniq('tok'),
        tokenSha256: tokenHash,
        role: 'admin',
        createdAt: NOW,
      });
      await insertRefreshToken(tx, {
        id: uniq('rt'),
        tokenId: tok.id,
        familyId: uniq('fam'),
        tokenSha256: sha256Hex(hex(32)),
        createdAt: NOW,
        expiresAt: NOW + DAY,
      });
      await insertCeremony(tx, {
        id: uniq('cer'),
        keyId: key.id,
        threshold: 2,
        n: 3,
        participants: [],
        createdAt: NOW,
        expiresAt: NOW + DAY,
      });
      await appendAudit(tx, { actor: 'test', kind: 'seed', subjectType: 'session', subjectId: s.sessionId });
      return { tenant, keyId: key.id, sessionId: s.sessionId, tokenId: tok.id, tokenHash };
    },
    { tenantId: tenant },
  );
}

describe('row-level security', () => {
  let t: TestDb;
  let db: Db;
  let A: Seeded;
  let B: Seeded;

  before(async () => {
    t = await testDb();
    db = t.db;
    A = await seedAll(db);
    B = await seedAll(db);
  });
  after(() => t.cleanup());

  const asA = <T>(fn: (tx: Tx) => Promise<T>) => db.transaction(fn, { tenantId: A.tenant });

  it('with tenant A set, a raw SELECT of any tenant table returns only A’s rows', async () => {
    for (const table of TENANT_TABLES) {
      const r = await asA((tx) => tx.query<Record<string, unknown>>(`SELECT * FROM ${table}`));
      assert.ok(r.rows.length >= 1, `${table}: A sees its own rows`);
      for (const row of r.rows) assert.equal(row[tenantCol(table)], A.tenant, `${table}: only A's rows`);
      const b = await asA((tx) =>
        tx.query(`SELECT * FROM ${table} WHERE ${tenantCol(table)} = $1`, [B.tenant]),
      );
      assert.equal(b.rows.length, 0, `${table}: B's rows are invisible`);
      // the owner sees both (sanity: B's rows do exist)
      const all = await db.adminQuery(`SELECT 1 FROM ${table} WHERE ${tenantCol(table)} = $1`, [B.tenant]);
      assert.ok(all.rows.length >= 1, `${table}: B has rows`);
    }
    assert.equal(await asA((tx) => getSession(tx, B.sessionId)), null);
  });

  it('with no tenant set, no tenant row is visible', async () => {
    for (const table of TENANT_TABLES) {
      const r = await db.transaction((tx) => tx.query(`SELECT * FROM ${table}`));
      assert.equal(r.rows.length, 0, `${table} (transaction, no tenant)`);
      const q = await db.query(`SELECT count(*)::int AS n FROM ${table}`);
      assert.equal(q.rows[0]!.n, 0, `${table} (db.query)`);
    }
    // an empty setting is no tenant either
    const r = await db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('floe.tenant_id', '', true)`);
      return tx.query('SELECT * FROM signing_sessions');
    });
    assert.equal(r.rows.length, 0);
  });

  it('B’s rows are unwritable from A: UPDATE and DELETE affect 0 rows', async () => {
    const before = await db.adminQuery('SELECT * FROM signing_sessions WHERE session_id = $1', [B.sessionId]);
    const u = await asA((tx) =>
      tx.query(`UPDATE signing_sessions SET error_message = 'hijacked' WHERE session_id = $1`, [B.sessionId]),
    );
    assert.equal(u.rowCount, 0);
    const all = await asA((tx) =>
      tx.query(`UPDATE keys SET label = 'hijacked' WHERE tenant_id = $1`, [B.tenant]),
    );
    assert.equal(all.rowCount, 0);
    const tok = await asA((tx) =>
      tx.query('UPDATE api_tokens SET revoked_at = 1 WHERE id = $1', [B.tokenId]),
    );
    assert.equal(tok.rowCount, 0);
    const after = await db.adminQuery('SELECT * FROM signing_sessions WHERE session_id = $1', [B.sessionId]);
    assert.deepEqual(after.rows, before.rows);
    const k = await db.adminQuery<{ label: string | null }>('SELECT label FROM keys WHERE id = $1', [
      B.keyId,
    ]);
    assert.notEqual(k.rows[0]!.label, 'hijacked');
  });

  it('an INSERT with tenant B’s id fails from tenant A, in every tenant table', async () => {
    const attempts: [string, string, unknown[]][] = [
      ['tenants', 'INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, 1)', [uniq('t'), 'x']],
      [
        'api_tokens',
        `INSERT INTO api_tokens (id, tenant_id, token_sha256, role, created_at) VALUES ($1, $2, $3, 'admin', 1)`,
        [uniq('tok'), B.tenant, hex(32)],
      ],
      [
        'refresh_tokens',
        `INSERT INTO refresh_tokens (id, tenant_id, token_id, family_id, token_sha256, created_at, expires_at)
         VALUES ($1, $2, $3, 'f', $4, 1, 2)`,
        [uniq('rt'), B.tenant, B.tokenId, hex(32)],
      ],
      [
        'keys',
        `INSERT INTO keys (id, tenant_id, threshold, n, origin, created_at, updated_at) VALUES ($1, $2, 1, 1, 'dkg', 1, 1)`,
        [uniq('key'), B.tenant],
      ],
      [
        'dkg_ceremonies',
        `INSERT INTO dkg_ceremonies (id, tenant_id, key_id, threshold, n, participants, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, 1, 1, '[]', 1, 1, 2)`,
        [uniq('cer'), B.tenant, B.keyId],
      ],
      [
        'signing_sessions',
        `INSERT INTO signing_sessions (session_id, tenant_id, key_id, message_hash, intent_type, intent, intent_hash,
           threshold, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, $4, 'message', $5::jsonb, $6, 1, 1, 1, 2)`,
        [`ses_${hex(12)}`, B.tenant, B.keyId, ...intentValues()],
      ],
      [
        'nonce_commitments',
        `INSERT INTO nonce_commitments (tenant_id, session_id, attempt, participant, signer_id, nonce_commitment, created_at)
         VALUES ($1, $2, 1, 2, 's2', $3, 1)`,
        [B.tenant, B.sessionId, commitment()],
      ],
      [
        'audit_events',
        `INSERT INTO audit_events (tenant_id, at, actor, kind) VALUES ($1, 1, 'x', 'forged')`,
        [B.tenant],
      ],
    ];
    assert.deepEqual(attempts.map((a) => a[0]).sort(), [...TENANT_TABLES].sort());
    for (const [table, sql, params] of attempts) {
      await assert.rejects(
        asA((tx) => tx.query(sql, params)),
        rlsRefused,
        `${table}`,
      );
    }
  });

  it('a row cannot be moved to another tenant, nor point at another tenant’s rows', async () => {
    await assert.rejects(asA((tx) => tx.query('UPDATE audit_events SET tenant_id = $1', [B.tenant])));
    await assert.rejects(
      asA((tx) => tx.query('UPDATE api_tokens SET tenant_id = $1', [B.tenant])),
      rlsRefused,
    );
    // A session of A naming B's key: the composite foreign key refuses it although the id exists.
    await assert.rejects(
      asA((tx) =>
        tx.query(
          `INSERT INTO signing_sessions (session_id, key_id, message_hash, intent_type, intent, intent_hash,
             threshold, created_at, updated_at, expires_at)
           VALUES ($1, $2, $3, 'message', $4::jsonb, $5, 1, 1, 1, 2)`,
          [`ses_${hex(12)}`, B.keyId, ...intentValues()],
        ),
      ),
      (e) => (e as { code?: string }).code === '23503',
    );
  });

  it('the service role is not a superuser, has no BYPASSRLS and owns nothing', async () => {
    const r = await db.adminQuery<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean }>(
      `SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'floe_app'`,
    );
    assert.deepEqual(r.rows, [{ rolsuper: false, rolbypassrls: false, rolcanlogin: false }]);
    const who = await db.transaction((tx) =>
      tx.query<{ u: string; su: string }>(`SELECT current_user AS u, current_setting('is_superuser') AS su`),
    );
    assert.deepEqual(who.rows[0], { u: 'floe_app', su: 'off' });
    const owned = await db.adminQuery(
      `SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'floe_app'`,
    );
    assert.equal(owned.rows.length, 0);
    // it is granted no other role's rights
    const member = await db.adminQuery(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'floe_app'`,
    );
    assert.equal(member.rows.length, 0);
  });

  it('connected as a non-superuser login role, even raw SQL cannot leave floe_app or the tenant', async (tc) => {
    // SET ROLE is checked against the session user: when the service connects as a superuser,
    // SQL inside a transaction could RESET ROLE. Deployments that want a hard boundary connect
    // as a login role that is only a member of floe_app (and migrate through migrateUrl).
    if (!t.url) return tc.skip('Postgres only (PGlite has one, superuser, connection)');
    const role = `floe_test_svc_${hex(4)}`;
    await db.adminQuery(`CREATE ROLE ${role} LOGIN IN ROLE floe_app`);
    const u = new URL(t.url);
    u.username = role;
    const svc = await openDb({ url: u.toString(), migrateUrl: t.url, poolSize: 2 });
    try {
      const rows = await svc.transaction((tx) => tx.query('SELECT tenant_id FROM signing_sessions'), {
        tenantId: A.tenant,
      });
      assert.ok(rows.rows.length >= 1);
      assert.ok(rows.rows.every((r) => r.tenant_id === A.tenant));
      await assert.rejects(
        svc.transaction((tx) => tx.query('SET LOCAL ROLE postgres')),
        (e) => (e as { code?: string }).code === '42501',
      );
      const reset = await svc.transaction(async (tx) => {
        await tx.query('RESET ROLE');
        return tx.query<{ n: number }>('SELECT count(*)::int AS n FROM signing_sessions');
      });
      assert.equal(reset.rows[0]!.n, 0, 'back to the login role: still under RLS, no tenant');
      await assert.rejects(
        svc.adminQuery('UPDATE audit_events SET kind = kind'),
        (e) => (e as { code?: string }).code === '42501',
      );
    } finally {
      await svc.close();
      await db.adminQuery(`DROP ROLE ${role}`);
    }
  });

  it('the narrow cross-tenant paths: token lookup by hash and the expiry job', async () => {
    const found = await db.transaction((tx) => findApiTokenByHash(tx, B.tokenHash));
    assert.equal(found?.tenantId, B.tenant);
    assert.equal(found?.id, B.tokenId);
    assert.equal(await db.transaction((tx) => findApiTokenByHash(tx, sha256Hex('nope'))), null);
    // a plain SELECT with no tenant still sees nothing
    const plain = await db.transaction((tx) =>
      tx.query('SELECT * FROM api_tokens WHERE token_sha256 = $1', [B.tokenHash]),
    );
    assert.equal(plain.rows.length, 0);
    assert.equal(typeof (await db.transaction((tx) => expireSessions(tx))), 'number');
  });

  it('audit_events is append-only, for the service and for the owner', async () => {
    const u = await asA((tx) => tx.query(`SELECT id FROM audit_events WHERE kind = 'seed' LIMIT 1`));
    const id = u.rows[0]!.id;
    await assert.rejects(
      asA((tx) => tx.query(`UPDATE audit_events SET kind = 'edited' WHERE id = $1`, [id])),
      (e) => (e as { code?: string }).code === '42501',
    );
    await assert.rejects(
      asA((tx) => tx.query('DELETE FROM audit_events WHERE id = $1', [id])),
      (e) => (e as { code?: string }).code === '42501',
    );
    await assert.rejects(
      db.adminQuery(`UPDATE audit_events SET kind = 'edited' WHERE id = $1`, [id]),
      /append-only/,
    );
    await assert.rejects(db.adminQuery('DELETE FROM audit_events WHERE id = $1', [id]), /append-only/);
    await assert.rejects(db.adminQuery('TRUNCATE audit_events'), /append-only/);
    const still = await db.adminQuery<{ kind: string }>('SELECT kind FROM audit_events WHERE id = $1', [id]);
    assert.equal(still.rows[0]!.kind, 'seed');
  });
});
