/** Small helpers shared by the query modules. */
import { FloeError } from '../../protocol/errors.js';

/** snake_case row → camelCase object (shallow; JSONB values are left as they are). */
export function camelize<T>(row: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const k in row) out[camelName(k)] = row[k];
  return out as T;
}

/** Column names are few and come back with every row: each is converted once. */
const camelNames = new Map<string, string>();
function camelName(column: string): string {
  let name = camelNames.get(column);
  if (name === undefined) {
    name = column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (camelNames.size < 4096) camelNames.set(column, name);
  }
  return name;
}

/** Serialize a JSONB parameter. Always pass JSON text with a `::jsonb` cast: `pg` would turn a JS array into a Postgres array. */
export function json(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) throw new TypeError('db: value is not JSON-serializable');
  return s;
}

/** Opaque keyset cursor over (created_at, id), newest first. */
export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') {
      return { createdAt: v[0] as number, id: v[1] };
    }
  } catch {
    // fall through
  }
  throw new FloeError('invalid_request', 'invalid cursor');
}

export function clampLimit(limit: number | undefined, dflt = 50, max = 500): number {
  if (limit === undefined) return dflt;
  if (!Number.isInteger(limit) || limit < 1)
    throw new FloeError('invalid_request', 'limit must be a positive integer');
  return Math.min(limit, max);
}

/** SQLSTATE and constraint of a database error from either driver. */
export function dbError(e: unknown): { code?: string; constraint?: string } {
  if (typeof e !== 'object' || e === null) return {};
  const o = e as { code?: unknown; constraint?: unknown };
  return {
    ...(typeof o.code === 'string' ? { code: o.code } : {}),
    ...(typeof o.constraint === 'string' ? { constraint: o.constraint } : {}),
  };
}

export const SQLSTATE = {
  uniqueViolation: '23505',
  checkViolation: '23514',
  foreignKeyViolation: '23503',
  notNullViolation: '23502',
  insufficientPrivilege: '42501',
} as const;

export function isUniqueViolation(e: unknown, constraints?: readonly string[]): boolean {
  const d = dbError(e);
  return (
    d.code === SQLSTATE.uniqueViolation &&
    (constraints === undefined || (d.constraint !== undefined && constraints.includes(d.constraint)))
  );
}

/**
 * Builds `col = $n` assignments from a camelCase patch with a column map; undefined members
 * are skipped. Pushes values onto `params`.
 */
export function assignments(
  patch: Record<string, unknown>,
  columns: Record<string, { col: string; json?: boolean }>,
  params: unknown[],
): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const c = columns[k];
    if (!c) throw new TypeError(`db: unknown patch field ${k}`);
    params.push(c.json && v !== null ? json(v) : v);
    out.push(`${c.col} = $${params.length}${c.json ? '::jsonb' : ''}`);
  }
  return out;
}
