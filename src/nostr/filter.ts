/**
 * NIP-01 subscription filters: strict validation (exact field set, hex ids and keys, bounded
 * lists) and matching. Shared by the relay client (to drop events a relay should not have
 * sent) and the relay server.
 */
import { FloeError } from '../protocol/errors.js';
import type { NostrEvent } from './event.js';

/** A NIP-01 filter. Tag filters are `#<single letter>`. */
export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  [tag: `#${string}`]: string[] | undefined;
}

export interface FilterLimits {
  /** Entries in any one list (ids, authors, kinds, a tag's values). */
  maxListEntries: number;
  /** Bytes of one tag value. */
  maxTagValueBytes: number;
}

export const DEFAULT_FILTER_LIMITS: Readonly<FilterLimits> = Object.freeze({
  maxListEntries: 1000,
  maxTagValueBytes: 1024,
});

const HEX32 = /^[0-9a-f]{64}$/;
const TAG_KEY = /^#[a-zA-Z]$/;

function invalid(detail: string): FloeError {
  return new FloeError('invalid_request', detail);
}

function checkList<T>(
  v: unknown,
  what: string,
  limits: FilterLimits,
  item: (x: unknown) => x is T,
  rule: string,
): T[] {
  if (!Array.isArray(v)) throw invalid(`${what}: expected an array`);
  if (v.length > limits.maxListEntries) throw invalid(`${what}: more than ${limits.maxListEntries} entries`);
  for (const x of v) if (!item(x)) throw invalid(`${what}: every entry must be ${rule}`);
  return [...v] as T[];
}

const isHex32 = (x: unknown): x is string => typeof x === 'string' && HEX32.test(x);
const isKind = (x: unknown): x is number =>
  typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 65_535;
const isTimestamp = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Validate one filter from the wire and return a clean copy. Unknown fields are refused
 * rather than ignored: a filter we would silently widen could leak more than was asked.
 */
export function checkFilter(x: unknown, limits: FilterLimits = DEFAULT_FILTER_LIMITS): Filter {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw invalid('filter: expected an object');
  const out: Filter = {};
  for (const [k, v] of Object.entries(x)) {
    switch (k) {
      case 'ids':
        out.ids = checkList(v, 'filter.ids', limits, isHex32, '32 bytes of lower-case hex');
        break;
      case 'authors':
        out.authors = checkList(v, 'filter.authors', limits, isHex32, '32 bytes of lower-case hex');
        break;
      case 'kinds':
        out.kinds = checkList(v, 'filter.kinds', limits, isKind, 'an integer from 0 to 65535');
        break;
      case 'since':
      case 'until':
        if (!isTimestamp(v)) throw invalid(`filter.${k}: expected a non-negative integer (seconds)`);
        out[k] = v;
        break;
      case 'limit':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
          throw invalid('filter.limit: expected a non-negative integer');
        }
        out.limit = v;
        break;
      default: {
        if (!TAG_KEY.test(k)) throw invalid(`filter: unsupported field "${k.slice(0, 32)}"`);
        const isValue = (s: unknown): s is string =>
          typeof s === 'string' && Buffer.byteLength(s, 'utf8') <= limits.maxTagValueBytes;
        out[k as `#${string}`] = checkList(
          v,
          `filter.${k}`,
          limits,
          isValue,
          `a string of at most ${limits.maxTagValueBytes} bytes`,
        );
      }
    }
  }
  return out;
}

/** Validate a REQ's filter list (at least one, at most `maxFilters`). */
export function checkFilters(
  x: unknown[],
  maxFilters: number,
  limits: FilterLimits = DEFAULT_FILTER_LIMITS,
): Filter[] {
  if (x.length === 0) throw invalid('filters: at least one filter is required');
  if (x.length > maxFilters) throw invalid(`filters: more than ${maxFilters} filters`);
  return x.map((f) => checkFilter(f, limits));
}

/** Whether `e` matches filter `f` (NIP-01: every present condition holds; `limit` is ignored). */
export function matchFilter(f: Filter, e: NostrEvent): boolean {
  if (f.ids && !f.ids.includes(e.id)) return false;
  if (f.authors && !f.authors.includes(e.pubkey)) return false;
  if (f.kinds && !f.kinds.includes(e.kind)) return false;
  if (f.since !== undefined && e.created_at < f.since) return false;
  if (f.until !== undefined && e.created_at > f.until) return false;
  for (const key of Object.keys(f)) {
    if (key[0] !== '#') continue;
    const values = f[key as `#${string}`];
    if (!values) continue;
    const name = key.slice(1);
    if (!e.tags.some((t) => t[0] === name && t.length > 1 && values.includes(t[1]!))) return false;
  }
  return true;
}

/** Whether `e` matches any of `filters`. */
export function matchFilters(filters: readonly Filter[], e: NostrEvent): boolean {
  return filters.some((f) => matchFilter(f, e));
}
