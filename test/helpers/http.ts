/**
 * Small HTTP helpers for the coordinator API tests: requests with any (or no) bearer token
 * and raw bodies, and an assertion for RFC 9457 problem responses.
 */
import assert from 'node:assert/strict';

export interface HttpResult<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  /** Bearer token; omitted: no Authorization header at all. */
  token?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (with `contentType`, default application/json). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export async function request<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  o: RequestOptions = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
  let body: string | undefined;
  if (o.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.json);
  } else if (o.raw !== undefined) {
    headers['content-type'] = o.contentType ?? 'application/json';
    body = o.raw;
  }
  Object.assign(headers, o.headers);
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed as T, text, headers: res.headers };
}

/** A problem+json answer with this status and stable code. */
export function assertProblem(
  r: { status: number; body: any; headers: Headers | Record<string, unknown> },
  status: number,
  code: string,
  what = '',
): void {
  const ctx = `${what} → ${r.status} ${JSON.stringify(r.body)}`;
  assert.equal(r.status, status, ctx);
  const ct =
    r.headers instanceof Headers ? r.headers.get('content-type') : String(r.headers['content-type'] ?? '');
  assert.match(ct ?? '', /^application\/problem\+json/, `content-type of ${ctx}`);
  assert.equal(typeof r.body, 'object', ctx);
  assert.equal(r.body.code, code, ctx);
  assert.equal(r.body.status, status, ctx);
  assert.equal(typeof r.body.detail, 'string', ctx);
}
