/**
 * The responses routes document. Errors: application/problem+json (RFC 9457) with a stable
 * `code`, one response per status, described by the codes the route can answer with and
 * their meaning (from ERROR_TABLE in src/protocol/errors.ts, the source of docs/errors.md).
 */
import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Problem } from '../../protocol/api.js';
import { ERROR_TABLE, type ErrorCode, statusPhrase } from '../../protocol/errors.js';

/** A success response with its description: what OpenAPI shows instead of "Default Response". */
export const described = <T extends TSchema>(schema: T, description: string): T => ({
  ...schema,
  description,
});

/** What every route behind the bearer token can answer. */
export const AUTHENTICATED: readonly ErrorCode[] = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'internal',
];

/** What a route that reads a JSON body can answer besides. */
export const WITH_BODY: readonly ErrorCode[] = ['payload_too_large', 'unsupported_media_type'];

/** The problem responses of these codes, by status, each listing its codes and what they mean. */
export function problems(...codes: readonly ErrorCode[]): Record<number, TObject<typeof Problem.properties>> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of new Set(codes)) {
    const s = ERROR_TABLE[c].status;
    byStatus.set(s, [...(byStatus.get(s) ?? []), c]);
  }
  const out: Record<number, TObject<typeof Problem.properties>> = {};
  for (const [status, cs] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const lines = cs.map((c) => `- \`${c}\`: ${ERROR_TABLE[c].meaning}`);
    out[status] = Type.Object(Problem.properties, {
      additionalProperties: true,
      description: `${statusPhrase(status)} (application/problem+json), \`code\` one of:\n${lines.join('\n')}`,
    });
  }
  return out;
}

/** The refusals of any authenticated route (routes add their own with `problems`). */
export const errors = problems(...AUTHENTICATED);
