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
/** A check declared on its column, under the name Postgres gave it. */
const onColumn = (table: string, column: string, pattern: string): Earlier => ({
  table,
  name: `${table}_${column}_check`,
  column,
  pattern,
});
const EARLIER: Earlier[] = [
  onColumn('signing_sessions', 'session_id', '^[A-Za-z0-9_-]{16,128}$'),
  onColumn('signing_sessions', 'message_hash', HEX64),
  onColumn('signing_sessions', 'final_signature', '^[0-9a-f]{128}$'),
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
  onColumn('nonce_commitments', 'nonce_commitment', '^0[23][0-9a-f]{64}0[23][0-9a-f]{64}$'),
  onColumn('used_nonce_points', 'point_sha256', HEX64),
  onColumn('tenants', 'id', '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
  onColumn('api_tokens', 'token_sha256', HEX64),
  onColumn('refresh_tokens', 'token_sha256', HEX64),
  onColumn('signer_nodes', 'identity_pubkey', HEX64),
  onColumn('keys', 'group_public_key', KEY),
  onColumn('keys', 'x_only_public_key', HEX64),
  onColumn('dkg_ceremonies', 'transcript_hash', HEX64),
  onColumn('bunkers', 'remote_signer_pubkey', HEX64),
  onColumn('bunkers', 'seal_key_id', '^[0-9a-f]{16}$'),
  onColumn('bunkers', 'sealed_nonce', '^[0-9a-f]{24}$'),
  onColumn('bunkers', 'sealed_secret', '^[0-9a-f]{96}$'),
  onColumn('bunker_clients', 'pubkey', HEX64),
  onColumn('bunker_secrets', 'secret_sha256', HEX64),
  onColumn('bunker_secrets', 'used_by', HEX64),
  onColumn('bunker_approvals', 'approval_id', '^[0-9a-f]{32}$'),
  onColumn('bunker_approvals', 'client', HEX64),
  onColumn('bunker_approvals', 'method', '^[a-z0-9_]{1,32}$'),
  onColumn('session_approvals', 'event_id', HEX64),
  onColumn('session_approvals', 'steward', HEX64),
  onColumn('passphrase_addresses', 'internal_key', KEY),
  onColumn('passphrase_addresses', 'lookup_id', HEX64),
  onColumn('passphrase_addresses', 'output_key', HEX64),
  onColumn('key_repairs', 'new_identity', HEX64),
  onColumn('key_repairs', 'replaced', HEX64),
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
