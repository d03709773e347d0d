/**
 * The hash chain of the audit log (issue 15 item 10): each row of a tenant carries the hash of
 * the tenant's previous row and its own hash over a canonical encoding of its fields. The
 * database computes it in a BEFORE INSERT trigger (src/db/migrations/017_audit_chain.sql);
 * this module is the same encoding in TypeScript, and the walk that finds the first break.
 * Pure: no I/O.
 *
 *   hash = hex(SHA-256(utf8('floe.audit.v1' || f(prev_hash) || f(id) || f(tenant_id) || f(at)
 *                          || f(actor) || f(kind) || f(subject_type) || f(subject_id) || f(data))))
 *   f(null) = '~';  f(v) = <UTF-8 byte length of v, decimal> ':' v
 *
 * `data` is encoded as Postgres prints jsonb (see jsonbText). A chain proves that no row was
 * changed, removed or inserted in the middle; a cut-off tail is only seen against a head hash
 * kept elsewhere (the last `hash` a verify printed).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** prev_hash of the first row of a tenant. */
export const GENESIS_HASH = '0'.repeat(64);

/** An audit row as the API returns it (GET /v1/audit). */
export interface ChainedAuditRow {
  id: number;
  tenant_id: string;
  at: number;
  actor: string;
  kind: string;
  subject_type: string | null;
  subject_id: string | null;
  data: unknown;
  prev_hash: string;
  hash: string;
}

/** The first place the chain does not hold. */
export interface ChainBreak {
  /** The row where it breaks. */
  id: number;
  /** `prev_hash`: the link to the previous row is wrong (a row removed, inserted or re-hashed);
   *  `hash`: the row's fields do not give its hash (the row was changed). */
  field: 'prev_hash' | 'hash';
  expected: string;
  found: string;
}

const field = (v: string | null): string => (v === null ? '~' : `${utf8ToBytes(v).length}:${v}`);

/** The canonical text of a row after `prevHash` (what is hashed, before UTF-8). */
export function canonicalAuditRow(prevHash: string, r: Omit<ChainedAuditRow, 'prev_hash' | 'hash'>): string {
  return [
    'floe.audit.v1',
    field(prevHash),
    field(String(r.id)),
    field(r.tenant_id),
    field(String(r.at)),
    field(r.actor),
    field(r.kind),
    field(r.subject_type),
    field(r.subject_id),
    field(jsonbText(r.data)),
  ].join('');
}

/** The hash a row must carry after `prevHash` (lowercase hex). */
export function auditRowHash(prevHash: string, r: Omit<ChainedAuditRow, 'prev_hash' | 'hash'>): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalAuditRow(prevHash, r))));
}

/**
 * A walk over one tenant's rows in id order, page by page: `push` each page; the first break
 * stops it (later pages are ignored). `lastHash` is the head reached so far.
 */
export class AuditChainWalk {
  checked = 0;
  lastHash: string;
  broken: ChainBreak | undefined;

  constructor(prevHash: string = GENESIS_HASH) {
    this.lastHash = prevHash;
  }

  push(rows: readonly ChainedAuditRow[]): ChainBreak | undefined {
    for (const r of rows) {
      if (this.broken) break;
      if (r.prev_hash !== this.lastHash) {
        this.broken = { id: r.id, field: 'prev_hash', expected: this.lastHash, found: r.prev_hash };
        break;
      }
      const expected = auditRowHash(this.lastHash, r);
      if (r.hash !== expected) {
        this.broken = { id: r.id, field: 'hash', expected, found: r.hash };
        break;
      }
      this.lastHash = r.hash;
      this.checked++;
    }
    return this.broken;
  }
}

/** Verifies rows of one tenant, in id order, from the start of the chain (or after `prevHash`). */
export function verifyAuditChain(
  rows: readonly ChainedAuditRow[],
  prevHash: string = GENESIS_HASH,
): { ok: true; checked: number; lastHash: string } | { ok: false; checked: number; break: ChainBreak } {
  const w = new AuditChainWalk(prevHash);
  const b = w.push(rows);
  return b
    ? { ok: false, checked: w.checked, break: b }
    : { ok: true, checked: w.checked, lastHash: w.lastHash };
}

/**
 * A JSON value as Postgres prints a jsonb (`data::text`): object keys shortest first, then by
 * bytes; ", " and ": " between items; strings escaped as escape_json does (only `"`, `\` and
 * control characters); numbers in plain decimal notation, as numeric prints them.
 */
export function jsonbText(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return plainNumber(v);
  if (typeof v === 'string') return jsonbString(v);
  if (Array.isArray(v)) return `[${v.map(jsonbText).join(', ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => [k, utf8ToBytes(k), x] as const)
      .sort(([, a], [, b]) => compareKeys(a, b));
    return `{${entries.map(([k, , x]) => `${jsonbString(k)}: ${jsonbText(x)}`).join(', ')}}`;
  }
  throw new TypeError(`jsonbText: not a JSON value (${typeof v})`);
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

const ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

function jsonbString(s: string): string {
  const out = s.replace(/["\\\u0000-\u001f]/g, (c) => {
    const e = ESCAPES[c];
    return e ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return `"${out}"`;
}

/** A finite number in plain decimal notation (1e-7 → 0.0000001, 1e+21 → 1 and 21 zeros). */
function plainNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError('jsonbText: numbers must be finite');
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', exp] = m;
  const digits = int! + frac;
  const point = int!.length + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
