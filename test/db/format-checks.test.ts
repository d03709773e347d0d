/**
 * The format checks that migration 026 rewrote without counted repetition accept exactly the
 * values their earlier patterns accepted: each constraint, as the database now holds it, is
 * evaluated over boundary and random values next to its earlier pattern. PGlite by default; the
 * Postgres server with FLOE_TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../../src/db/connection.js';
import { type TestDb, testDb } from '../helpers/db.js';

/** A constraint, the column it tests, its pattern before migration 026, and its other columns. */
interface Earlier {
  table: string;
  name: string;
  column: string;
  pattern: string;
  /** The other columns its expression reads, as SQL values that pass. */
  others?: Record<string, string>;
  /** Whether NULL passed before for another reason than the pattern (an explicit IS NULL). */
  orNull?: boolean;
}

const HEX64 = '^[0-9a-f]{64}$';
const KEY = '^0[23][0-9a-f]{64}$';
const EARLIER: Earlier[] = [
  {
    table: 'signing_sessions',
    name: 'signing_sessions_session_id_check',
    column: 'session_id',
    pattern: '^[A-Za-z0-9_-]{16,128}$',
  },
  {
    table: 'signing_sessions',
    name: 'signing_sessions_message_hash_check',
    column: 'message_hash',
    pattern: HEX64,
  },
  {
    table: 'signing_sessions',
    name: 'signing_sessions_final_signature_check',
    column: 'final_signature',
    pattern: '^[0-9a-f]{128}$',
  },
  {
    table: 'signing_sessions',
    name: 'valid_final_event_id',
    column: 'final_event_id',
    pattern: HEX64,
    orNull: true,
  },
  {
    table: 'signing_sessions',
    name: 'valid_intent',
    column: 'intent_hash',
    pattern: HEX64,
    others: { intent_type: "'message'", intent: `'{"type":"message"}'::jsonb` },
  },
  {
    table: 'audit_events',
    name: 'audit_events_chain_hex',
    column: 'prev_hash',
    pattern: HEX64,
    others: { hash: `repeat('ab', 32)` },
  },
  {
    table: 'audit_events',
    name: 'audit_events_chain_hex',
    column: 'hash',
    pattern: HEX64,
    others: { prev_hash: `repeat('0', 64)` },
  },
  {
    table: 'nonce_commitments',
    name: 'nonce_commitments_nonce_commitment_check',
    column: 'nonce_commitment',
    pattern: '^0[23][0-9a-f]{64}0[23][0-9a-f]{64}$',
  },
  {
    table: 'used_nonce_points',
    name: 'used_nonce_points_point_sha256_check',
    column: 'point_sha256',
    pattern: HEX64,
  },
  { table: 'tenants', name: 'tenants_id_check', column: 'id', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' },
  { table: 'api_tokens', name: 'api_tokens_token_sha256_check', column: 'token_sha256', pattern: HEX64 },
  {
    table: 'refresh_tokens',
    name: 'refresh_tokens_token_sha256_check',
    column: 'token_sha256',
    pattern: HEX64,
  },
  {
    table: 'signer_nodes',
    name: 'signer_nodes_identity_pubkey_check',
    column: 'identity_pubkey',
    pattern: HEX64,
  },
  { table: 'keys', name: 'keys_group_public_key_check', column: 'group_public_key', pattern: KEY },
  { table: 'keys', name: 'keys_x_only_public_key_check', column: 'x_only_public_key', pattern: HEX64 },
  {
    table: 'dkg_ceremonies',
    name: 'dkg_ceremonies_transcript_hash_check',
    column: 'transcript_hash',
    pattern: HEX64,
  },
  {
    table: 'bunkers',
    name: 'bunkers_remote_signer_pubkey_check',
    column: 'remote_signer_pubkey',
    pattern: HEX64,
  },
  { table: 'bunkers', name: 'bunkers_seal_key_id_check', column: 'seal_key_id', pattern: '^[0-9a-f]{16}$' },
  { table: 'bunkers', name: 'bunkers_sealed_nonce_check', column: 'sealed_nonce', pattern: '^[0-9a-f]{24}$' },
  {
    table: 'bunkers',
    name: 'bunkers_sealed_secret_check',
    column: 'sealed_secret',
    pattern: '^[0-9a-f]{96}$',
  },
  { table: 'bunker_clients', name: 'bunker_clients_pubkey_check', column: 'pubkey', pattern: HEX64 },
  {
    table: 'bunker_secrets',
    name: 'bunker_secrets_secret_sha256_check',
    column: 'secret_sha256',
    pattern: HEX64,
  },
  { table: 'bunker_secrets', name: 'bunker_secrets_used_by_check', column: 'used_by', pattern: HEX64 },
  {
    table: 'bunker_approvals',
    name: 'bunker_approvals_approval_id_check',
    column: 'approval_id',
    pattern: '^[0-9a-f]{32}$',
  },
  { table: 'bunker_approvals', name: 'bunker_approvals_client_check', column: 'client', pattern: HEX64 },
  {
    table: 'bunker_approvals',
    name: 'bunker_approvals_method_check',
    column: 'method',
    pattern: '^[a-z0-9_]{1,32}$',
  },
  {
    table: 'session_approvals',
    name: 'session_approvals_event_id_check',
    column: 'event_id',
    pattern: HEX64,
  },
  { table: 'session_approvals', name: 'session_approvals_steward_check', column: 'steward', pattern: HEX64 },
  {
    table: 'passphrase_addresses',
    name: 'passphrase_addresses_internal_key_check',
    column: 'internal_key',
    pattern: KEY,
  },
  {
    table: 'passphrase_addresses',
    name: 'passphrase_addresses_lookup_id_check',
    column: 'lookup_id',
    pattern: HEX64,
  },
  {
    table: 'passphrase_addresses',
    name: 'passphrase_addresses_output_key_check',
    column: 'output_key',
    pattern: HEX64,
  },
  { table: 'key_repairs', name: 'key_repairs_new_identity_check', column: 'new_identity', pattern: HEX64 },
  { table: 'key_repairs', name: 'key_repairs_replaced_check', column: 'replaced', pattern: HEX64 },
];

const pick = (s: string) => s[randomInt(s.length)]!;
const HEX = '0123456789abcdef';
const hex = (n: number) => Array.from({ length: n }, () => pick(HEX)).join('');

/** Values at and around every length and shape the patterns allow, and random ones. */
function candidates(): string[] {
  const out = new Set<string>(['', '\n']);
  const lengths = [
    1, 2, 15, 16, 17, 23, 24, 25, 31, 32, 33, 63, 64, 65, 66, 67, 95, 96, 97, 127, 128, 129, 131, 132, 133,
  ];
  for (const n of lengths) {
    const h = hex(n);
    out.add(h);
    out.add(`${h.slice(0, -1)}A`); // one uppercase letter
    out.add(`${h.slice(0, -1)}g`); // one letter past f
    out.add(`${h.slice(0, -1)}é`); // one more octet than characters
    out.add(`${h.slice(0, -2)}é`); // as many octets as the length asks
    out.add(`${h}\n`);
    out.add(`\n${h}`);
    out.add(`_${h.slice(1)}`);
    out.add(`A${h.slice(1)}`);
    for (const p of ['00', '02', '03', '04']) out.add(p + h.slice(2));
  }
  for (const a of ['02', '03', '04', '0g', '12']) {
    for (const b of ['02', '03', '04', '0A', '20']) out.add(a + hex(64) + b + hex(64));
  }
  for (let i = 0; i < 400; i++) {
    const n = randomInt(1, 140);
    const alphabet = [HEX, `${HEX}ABCXYZ_-.:`, 'abcdefghijklmnopqrstuvwxyz0123456789_-'][i % 3]!;
    out.add(Array.from({ length: n }, () => pick(alphabet)).join(''));
  }
  return [...out];
}

describe('format checks without counted repetition (migration 026)', () => {
  let t: TestDb;
  let db: Db;
  before(async () => {
    t = await testDb();
    db = t.db;
  });
  after(() => t.cleanup());

  async function definition(table: string, name: string): Promise<string> {
    const r = await db.adminQuery<{ d: string }>(
      'SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2',
      [table, name],
    );
    assert.equal(r.rows.length, 1, `${table}.${name} exists`);
    return r.rows[0]!.d.replace(/^CHECK /, '');
  }

  it('every rewritten check accepts what its earlier pattern accepted, and refuses the rest', async () => {
    const values = candidates();
    for (const e of EARLIER) {
      const expr = await definition(e.table, e.name);
      const others = Object.entries(e.others ?? {})
        .map(([c, v]) => `, ${v} AS ${c}`)
        .join('');
      const r = await db.adminQuery<{ v: string | null; now: boolean; before: boolean }>(
        `SELECT v,
                coalesce((SELECT ${expr} FROM (SELECT v AS ${e.column}${others}) s), true) AS now,
                coalesce(${e.orNull ? 'v IS NULL OR ' : ''}v ~ $2, true) AS before
           FROM unnest($1::text[] || ARRAY[NULL::text]) AS u(v)`,
        [values, e.pattern],
      );
      const differ = r.rows.filter((x) => x.now !== x.before).map((x) => JSON.stringify(x.v));
      assert.deepEqual(differ, [], `${e.table}.${e.name} on ${e.column}: ${expr}`);
      const accepted = r.rows.filter((x) => x.v !== null && x.now).length;
      assert.ok(
        accepted > 0 && accepted < values.length,
        `${e.name}: the values test both ways (${accepted})`,
      );
    }
  });

  it('no check in the schema bounds a repetition', async () => {
    const r = await db.adminQuery<{ c: string }>(
      `SELECT conrelid::regclass::text || '.' || conname AS c FROM pg_constraint
        WHERE contype = 'c' AND pg_get_constraintdef(oid) ~ '[{][0-9]' ORDER BY 1`,
    );
    assert.deepEqual(
      r.rows.map((x) => x.c),
      [],
    );
  });
});
