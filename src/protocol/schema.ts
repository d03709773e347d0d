/**
 * Schema helpers: TypeBox declarations give JSON Schema (for fastify and OpenAPI) and
 * TypeScript types from one place; `parseWith` validates at a boundary and reports the
 * failing path and rule, never the offending value.
 */
import { type Static, type TLiteral, type TSchema, type TUnion, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { ID_PATTERN } from '../domain/ids.js';
import { FloeError } from './errors.js';

export const Hex = (bytes: number, description?: string) =>
  Type.String({ pattern: `^[0-9a-f]{${bytes * 2}}$`, ...(description ? { description } : {}) });
export const HexAny = (maxBytes: number, description?: string) =>
  Type.String({
    pattern: '^(?:[0-9a-f]{2})*$',
    maxLength: maxBytes * 2,
    ...(description ? { description } : {}),
  });
/** A string union from one of the `as const` lists of src/domain/vocabulary.ts. */
type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };
export const literalUnion = <const T extends readonly string[]>(
  list: T,
  description?: string,
): TUnion<Literals<T>> =>
  Type.Union(
    list.map((x) => Type.Literal(x)),
    description ? { description } : {},
  ) as unknown as TUnion<Literals<T>>;
export const Identifier = Type.Integer({ minimum: 1, maximum: 255, description: 'member identifier (1..n)' });
export const Id = (description: string) => Type.String({ pattern: ID_PATTERN, description });
export const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Validate `value` against `schema`; throws `invalid_request` naming the first failing path. */
export function parseWith<T extends TSchema>(schema: T, value: unknown, what = 'body'): Static<T> {
  const c = checker(schema);
  if (c.Check(value)) return value;
  const first = c.Errors(value).First();
  const path = first?.path || '/';
  throw new FloeError(
    'invalid_request',
    `${what}${path === '/' ? '' : path}: ${first?.message ?? 'invalid'}`,
  );
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}
