/**
 * Mutations of valid JSON bodies for the fuzz tests, driven by the shape of the body and, when
 * given, by its JSON Schema (the TypeBox request schemas of src/protocol/messages are JSON
 * Schema). Nothing here knows a message's fields: a new field, or a new variant of a union
 * (say a sign.open `intent`), is walked and mutated like every other.
 *
 * A body gets one to three mutations: a value replaced by one of the same kind but wrong (a
 * point off the curve or at infinity, a scalar >= n or 0, hex of another length or with a
 * flipped nibble, numbers like -1, 2^53 or 1e308, ~100 kB strings, ids of other live objects),
 * by junk of another type, deleted, added, arrays reordered / shortened / duplicated / blown
 * up, a schema bound crossed or met exactly (minimum - 1, maximum, maxItems + 1, a property
 * the schema does not allow, a pattern broken), a union value turned into another variant, or
 * a message-specific change the caller supplies (`DomainOp`) that passes the schema and reaches
 * deep validation.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';

// ------------------------------------------------------------------------------------------
// Values that are wrong in interesting ways

export const N = secp256k1.Point.Fn.ORDER;
export const P = secp256k1.Point.Fp.ORDER;
/** `n` as big-endian hex of `bytes` bytes. */
export const hexN = (n: bigint, bytes = 32) => n.toString(16).padStart(bytes * 2, '0');
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** 33-byte compressed encodings that are not points of secp256k1 (x with no curve point, x >= p). */
export const OFF_CURVE: string[] = (() => {
  const out = [`02${hexN(P)}`, `03${hexN(P + 1n)}`, `02${'ff'.repeat(32)}`];
  for (let x = 1n; out.length < 12; x++) {
    try {
      secp256k1.Point.fromHex(`02${hexN(x)}`);
    } catch {
      out.push(`02${hexN(x)}`, `03${hexN(x)}`);
    }
  }
  return out;
})();
/** Encodings of the point at infinity (SEC1 `00`, also padded; x = 0 has no point) and the uncompressed prefix. */
export const INFINITY = [
  '00',
  `00${'00'.repeat(32)}`,
  `02${'00'.repeat(32)}`,
  `03${'00'.repeat(32)}`,
  `04${'00'.repeat(64)}`,
];
/** 32-byte values that are not scalars: 0 (where a non-zero one is needed), n, n + 1, p, 2^256 - 1. */
export const BAD_SCALARS = [hexN(0n), hexN(N), hexN(N + 1n), hexN(P), 'ff'.repeat(32)];
/** A non-zero scalar derived from `salt`. */
export const scalarFrom = (salt: Uint8Array) =>
  (BigInt(`0x${toHex(salt.subarray(0, 32)) || '01'}`) % (N - 1n)) + 1n;
/** A valid compressed point derived from `salt`. */
export const pointFrom = (salt: Uint8Array) => secp256k1.Point.BASE.multiply(scalarFrom(salt)).toHex(true);
/** `n` bytes derived from `salt`. */
export const bytesFrom = (salt: Uint8Array, n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (salt[i % salt.length]! + i * 31) & 0xff;
  return out;
};

/** A ~100 kB (or other size) string, shown by its size in counterexamples. */
export class Huge {
  constructor(
    readonly size: number,
    readonly unit: string,
  ) {}
  value(): string {
    return this.unit.repeat(Math.ceil(this.size / this.unit.length)).slice(0, this.size);
  }
  [fc.toStringMethod](): string {
    return `Huge(${this.size}, ${JSON.stringify(this.unit)})`;
  }
}
/**
 * The junk value to put into a body: a Huge spelled out, a container copied. fast-check hands
 * out the same object for `fc.constant({})` in every run (and the same counterexample while it
 * shrinks): put into a body as it is, a later mutation of that body (a member added into it)
 * would change the generated value itself, and a second copy of it put inside the first would
 * make the body circular.
 */
export const materialize = (x: unknown): unknown =>
  x instanceof Huge ? x.value() : x !== null && typeof x === 'object' ? structuredClone(x) : x;

/** Any JSON value, mostly wrong: edge numbers, bad hex, odd strings, huge strings, containers. */
export const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1,
    2,
    255,
    256,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 32,
    0.5,
  ),
  fc.constantFrom('', '0', '00', 'zz', 'null', '{}', '[]', '\u0000', 'é', ...OFF_CURVE.slice(0, 3)),
  fc.constantFrom(...INFINITY, ...BAD_SCALARS),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.uint8Array({ maxLength: 70 }).map((b) => toHex(b)),
  fc
    .tuple(fc.integer({ min: 1000, max: 100_000 }), fc.constantFrom('x', 'ab', '0', 'é'))
    .map(([n, u]) => new Huge(n, u)),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 300 }), fc.string({ maxLength: 8 })), { maxLength: 20 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), {
    maxKeys: 4,
  }),
  fc.constant({}),
  fc.constant([]),
);

// ------------------------------------------------------------------------------------------
// Mutations

export type Seg = string | number;
export type Body = any;

/** One mutation, as generated: where it lands and the random choices it makes there. */
export interface Mut {
  kind: 'tweak' | 'junk' | 'delete' | 'add' | 'array' | 'schema' | 'domain';
  /** Which node of the body (index into its paths, modulo their number). */
  at: number;
  /** Which variant of the mutation. */
  pick: number;
  salt: Uint8Array;
  junk: unknown;
  /** A property name for `add`. */
  key: string;
}

export const mutArb: fc.Arbitrary<Mut> = fc.record({
  kind: fc.oneof(
    { weight: 4, arbitrary: fc.constant('tweak' as const) },
    { weight: 2, arbitrary: fc.constant('junk' as const) },
    { weight: 1, arbitrary: fc.constant('delete' as const) },
    { weight: 1, arbitrary: fc.constant('add' as const) },
    { weight: 2, arbitrary: fc.constant('array' as const) },
    { weight: 2, arbitrary: fc.constant('schema' as const) },
    { weight: 5, arbitrary: fc.constant('domain' as const) },
  ),
  at: fc.nat({ max: 1023 }),
  pick: fc.nat({ max: 1023 }),
  salt: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  junk: junkArb,
  key: fc.constantFrom(
    'extra',
    '__proto__',
    'constructor',
    'v',
    'type',
    'sig',
    '',
    'identifier',
    'x'.repeat(200),
  ),
});
/** One to three mutations of one request. */
export const mutsArb = fc.array(mutArb, { minLength: 1, maxLength: 3 });
/** Several mutated requests in a row against one fixture. */
export const seqArb = fc.array(mutsArb, { minLength: 1, maxLength: 4 });

/** Every path of `v` (the root first), depth first. */
export function paths(v: Body, p: Seg[] = [], out: Seg[][] = []): Seg[][] {
  out.push(p);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, [...p, i], out);
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k], [...p, k], out);
  return out;
}
export function getAt(root: Body, p: Seg[]): Body {
  return p.reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), root);
}
/** Own property assignment (so `__proto__` becomes a JSON member, not a prototype). */
function put(o: Body, k: Seg, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
export function setAt(root: Body, p: Seg[], v: unknown): Body {
  if (p.length === 0) return v;
  put(getAt(root, p.slice(0, -1)), p[p.length - 1]!, v);
  return root;
}

/** What the mutations may draw on besides the body itself. */
export interface Ctx {
  /** Ids of live or existing objects (keys, sessions, ceremonies) a string may be replaced by. */
  ids: string[];
  /** The body's JSON Schema (e.g. `SIGNER_MESSAGES[name].request`), for `schema` mutations. */
  schema?: object;
}

/** The parts of JSON Schema (as TypeBox emits it) that the mutations read. */
export interface JsonSchema {
  type?: string;
  const?: unknown;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  patternProperties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

/** A change of `v` that keeps its kind (hex stays hex of a nearby length, a number a number, ...). */
export function tweak(v: unknown, m: Mut, ctx: Ctx): unknown {
  const { pick, salt } = m;
  const choose = (opts: (() => unknown)[]) => opts[pick % opts.length]!();
  if (typeof v === 'string' && v.length >= 2 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v)) {
    const flip = () => {
      const i = salt[0]! % v.length;
      return (
        v.slice(0, i) +
        ((Number.parseInt(v[i]!, 16) ^ (1 + (salt[1]! % 15))) & 15).toString(16) +
        v.slice(i + 1)
      );
    };
    const opts: (() => unknown)[] = [
      flip,
      () => v.slice(0, -1),
      () => `${v}00`,
      () => v.slice(0, -2),
      () => v.toUpperCase(),
      () => `${v.slice(0, 2)}zz${v.slice(4)}`,
      () => '',
      () => `0x${v}`,
      () => ` ${v}`,
      () => 'ab'.repeat(50_000),
      () => toHex(bytesFrom(salt, v.length / 2)),
    ];
    if (v.length === 66) {
      opts.push(
        () => OFF_CURVE[salt[2]! % OFF_CURVE.length],
        () => OFF_CURVE[salt[3]! % OFF_CURVE.length],
        () => INFINITY[salt[4]! % INFINITY.length],
        () => pointFrom(salt),
        () => `${v.startsWith('02') ? '03' : '02'}${v.slice(2)}`,
        () => `04${v.slice(2)}`,
      );
    }
    if (v.length === 64) {
      opts.push(
        () => BAD_SCALARS[salt[2]! % BAD_SCALARS.length],
        () => hexN(scalarFrom(salt)),
        () => OFF_CURVE[salt[3]! % OFF_CURVE.length]!.slice(2),
      );
    }
    if (v.length === 128)
      opts.push(
        () => `${hexN(P)}${v.slice(64)}`,
        () => `${v.slice(0, 64)}${hexN(N)}`,
      );
    return choose(opts);
  }
  if (typeof v === 'string') {
    return choose([
      () => '',
      () => 'x'.repeat(65),
      () => `${v}é`,
      () => `${v} x`,
      () => `${v}\u0000`,
      () => v.toUpperCase(),
      () => 'x'.repeat(100_000),
      () => `${v}x`,
      () => ctx.ids[salt[5]! % Math.max(1, ctx.ids.length)] ?? v,
      () => ctx.ids[salt[6]! % Math.max(1, ctx.ids.length)] ?? v,
    ]);
  }
  if (typeof v === 'number') {
    return choose([
      () => v + 1,
      () => v - 1,
      () => 0,
      () => -1,
      () => 256,
      () => 255,
      () => 1e308,
      () => -1e308,
      () => 2 ** 53,
      () => 2 ** 53 + 2,
      () => 0.5,
      () => v + 0.5,
      () => 1_000_001,
      () => 2 ** 32,
      () => `${v}`,
      () => null,
      () => v * 1000,
    ]);
  }
  if (typeof v === 'boolean') return choose([() => !v, () => `${v}`, () => 0]);
  if (v === null || v === undefined) return choose([() => 0, () => '', () => ({})]);
  if (Array.isArray(v)) {
    return choose([
      () => [],
      () => v.slice(0, 1),
      () => [...v, ...v],
      () => 'x',
      () => ({}),
      () => Array.from({ length: 300 }, () => structuredClone(v[0] ?? 1)),
    ]);
  }
  return choose([() => ({}), () => [], () => null, () => 'x', () => 1]);
}

function arrayOp(root: Body, p: Seg[], m: Mut): Body {
  // The array at p or the nearest enclosing one.
  let q = p;
  while (q.length > 0 && !Array.isArray(getAt(root, q))) q = q.slice(0, -1);
  const a = getAt(root, q);
  if (!Array.isArray(a)) return root;
  const i = a.length ? m.salt[0]! % a.length : 0;
  const j = a.length ? m.salt[1]! % a.length : 0;
  const b = [...a];
  switch (m.pick % 7) {
    case 0:
      if (a.length) b.splice(i + 1, 0, structuredClone(a[i]));
      break;
    case 1:
      b.splice(i, 1);
      break;
    case 2:
      b.reverse();
      break;
    case 3:
      b.length = 0;
      break;
    case 4:
      [b[i], b[j]] = [b[j], b[i]];
      break;
    case 5: {
      // Just over the body limit at most: enough copies to hit every count limit.
      const each = JSON.stringify(a[0] ?? 1).length + 1;
      const count = Math.min(300, Math.floor(600_000 / each) + 1);
      for (let k = b.length; k < count; k++) b.push(structuredClone(a[k % Math.max(1, a.length)] ?? 1));
      break;
    }
    default:
      if (a.length) b[i] = structuredClone(a[j]);
  }
  return setAt(root, q, b);
}

// ------------------------------------------------------------------------------------------
// Schema-driven mutations

/** The branch of a union that `v` belongs to: the first whose constant properties `v` has. */
function branchOf(s: JsonSchema, v: unknown): JsonSchema | undefined {
  if (!s.anyOf) return s;
  const fits = (b: JsonSchema) =>
    v !== null &&
    typeof v === 'object' &&
    Object.entries(b.properties ?? {}).every(
      ([k, p]) => p.const === undefined || (v as Record<string, unknown>)[k] === p.const,
    );
  return s.anyOf.find(fits) ?? s.anyOf.find((b) => b.type === typeof v);
}

/** The schema of the value at `p` (a union stays a union, so that it can change variant). */
export function schemaAt(schema: JsonSchema, root: Body, p: Seg[]): JsonSchema | undefined {
  let s: JsonSchema | undefined = schema;
  for (const [i, k] of p.entries()) {
    s = s && branchOf(s, getAt(root, p.slice(0, i)));
    if (!s) return undefined;
    if (typeof k === 'number') s = s.items;
    else {
      const pattern = Object.entries(s.patternProperties ?? {}).find(([re]) => new RegExp(re).test(k));
      s =
        s.properties?.[k] ??
        pattern?.[1] ??
        (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    }
  }
  return s;
}

/** A small value that fits `s` as far as a generic reading can tell (hex of the right length, minimum sizes). */
export function instanceOf(s: JsonSchema, salt: Uint8Array): unknown {
  if (s.const !== undefined) return s.const;
  if (s.anyOf) return instanceOf(s.anyOf[0]!, salt);
  switch (s.type) {
    case 'object':
      return Object.fromEntries(
        (s.required ?? []).map((k) => [k, instanceOf(s.properties?.[k] ?? {}, salt)]),
      );
    case 'array':
      return Array.from({ length: s.minItems ?? 0 }, () => instanceOf(s.items ?? {}, salt));
    case 'integer':
    case 'number':
      return s.minimum ?? 0;
    case 'boolean':
      return false;
    case 'string': {
      const hex = /^\^\[0-9a-f\]\{(\d+)\}\$$/.exec(s.pattern ?? '');
      if (hex) return Number(hex[1]) === 66 ? pointFrom(salt) : toHex(bytesFrom(salt, Number(hex[1]) / 2));
      if (s.pattern?.includes('[0-9a-f]{2})*')) return toHex(bytesFrom(salt, 32));
      if (s.pattern?.includes('A-Za-z0-9+/')) return 'AAAA';
      return 'x'.repeat(Math.max(1, s.minLength ?? 1));
    }
    default:
      return null;
  }
}

/** Values at or across the bounds `s` sets, or `v` turned into another variant of its union. */
export function schemaMutation(s: JsonSchema, v: unknown, m: Mut): unknown {
  const { salt } = m;
  const opts: (() => unknown)[] = [];
  if (s.anyOf) {
    const mine = branchOf(s, v);
    for (const b of s.anyOf.filter((x) => x !== mine)) {
      opts.push(() => instanceOf(b, salt));
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        // This value under another variant's tag (and the other variant's fields beside its own).
        const tags = Object.entries(b.properties ?? {}).filter(([, p]) => p.const !== undefined);
        opts.push(() => ({ ...v, ...Object.fromEntries(tags.map(([k, p]) => [k, p.const])) }));
        opts.push(() => ({ ...(instanceOf(b, salt) as object), ...v }));
      }
    }
  }
  if (s.const !== undefined) {
    opts.push(() => (typeof s.const === 'number' ? s.const + 1 : `${String(s.const)}x`));
  }
  if (s.type === 'integer' || s.type === 'number') {
    if (s.minimum !== undefined)
      opts.push(
        () => s.minimum,
        () => s.minimum! - 1,
      );
    if (s.maximum !== undefined)
      opts.push(
        () => s.maximum,
        () => s.maximum! + 1,
      );
    if (s.type === 'integer') opts.push(() => (typeof v === 'number' ? v + 0.5 : 0.5));
  }
  if (s.type === 'string') {
    const str = typeof v === 'string' ? v : '';
    if (s.maxLength !== undefined && s.maxLength < 200_000) {
      opts.push(() => 'a'.repeat(s.maxLength! + 1));
      opts.push(() => 'a'.repeat(s.maxLength!));
    }
    if (s.minLength) opts.push(() => str.slice(0, s.minLength! - 1));
    if (s.pattern)
      opts.push(
        () => `${str}!`,
        () => `!${str.slice(1)}`,
      );
  }
  if (s.type === 'array' && Array.isArray(v)) {
    const item = () => structuredClone(v[0] ?? instanceOf(s.items ?? {}, salt));
    if (s.minItems) opts.push(() => v.slice(0, s.minItems! - 1));
    if (s.maxItems !== undefined && s.maxItems < 300) {
      opts.push(() => [...v, ...Array.from({ length: s.maxItems! + 1 - v.length }, item)]);
    }
  }
  if (s.type === 'object' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const k of s.required ?? []) {
      opts.push(() => {
        const { [k]: _gone, ...rest } = o;
        return rest;
      });
    }
    if (s.additionalProperties === false) opts.push(() => ({ ...o, [`x${salt[0]}`]: 1 }));
    for (const [re, sub] of Object.entries(s.patternProperties ?? {})) {
      for (const key of ['0', '1000', 'x', '01']) {
        if (!new RegExp(re).test(key)) opts.push(() => ({ ...o, [key]: instanceOf(sub, salt) }));
      }
    }
  }
  return opts.length ? opts[m.pick % opts.length]!() : undefined;
}

/** A message-specific change of a (possibly already mutated) valid body. */
export type DomainOp = (b: Body, m: Mut) => Body | Promise<Body>;

/** `valid` with `muts` applied in order (a deep copy; `valid` is not touched). */
export async function mutate(valid: Body, muts: Mut[], ctx: Ctx, domain: DomainOp[]): Promise<Body> {
  let body: Body = structuredClone(valid);
  for (const m of muts) {
    const all = body === undefined ? [[]] : paths(body);
    const p = all[m.at % all.length]!;
    switch (m.kind) {
      case 'tweak':
        body = setAt(body, p, tweak(getAt(body, p), m, ctx));
        break;
      case 'junk':
        body = setAt(body, p, materialize(m.junk));
        break;
      case 'delete':
        if (p.length === 0) body = undefined;
        else {
          const parent = getAt(body, p.slice(0, -1));
          if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
          else delete parent[p[p.length - 1]!];
        }
        break;
      case 'add': {
        let q = p;
        while (q.length > 0 && (getAt(body, q) === null || typeof getAt(body, q) !== 'object'))
          q = q.slice(0, -1);
        const t = getAt(body, q);
        if (Array.isArray(t)) t.push(materialize(m.junk));
        else if (t !== null && typeof t === 'object') put(t, m.key, materialize(m.junk));
        else body = { [m.key]: materialize(m.junk) };
        break;
      }
      case 'array':
        body = arrayOp(body, p, m);
        break;
      case 'schema': {
        const s = ctx.schema && schemaAt(ctx.schema as JsonSchema, body, p);
        const v = s && schemaMutation(s, getAt(body, p), m);
        body = setAt(body, p, v !== undefined ? v : tweak(getAt(body, p), m, ctx));
        break;
      }
      case 'domain':
        if (!domain.length) body = setAt(body, p, tweak(getAt(body, p), m, ctx));
        else {
          try {
            body = await domain[m.pick % domain.length]!(body, m);
          } catch {
            // an earlier mutation already broke the shape this change needs
          }
        }
        break;
    }
  }
  return body;
}
