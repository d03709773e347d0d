/**
 * The JSON API as the dashboard uses it (src/protocol/api.ts is the contract). The API token is
 * exchanged once at POST /v1/auth/token and forgotten; the access token and the single-use
 * refresh token live in sessionStorage only (never localStorage, a cookie or a URL), so they
 * end with the tab. A 401 is retried once after a refresh; if that fails too, the dashboard
 * signs out and says why.
 */

const ACCESS = 'floe.access';
const REFRESH = 'floe.refresh';

/** A refusal of the API: its HTTP status and problem+json document. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const signedIn = () => sessionStorage.getItem(ACCESS) !== null;

/** Forget the tokens; listeners of `floe:signed-out` show the sign-in form with `reason`. */
export function signOut(reason = '') {
  sessionStorage.removeItem(ACCESS);
  sessionStorage.removeItem(REFRESH);
  window.dispatchEvent(new CustomEvent('floe:signed-out', { detail: reason }));
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: `HTTP ${res.status}: the answer is not JSON` };
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

function keep(t) {
  sessionStorage.setItem(ACCESS, t.access_token);
  sessionStorage.setItem(REFRESH, t.refresh_token);
}

const post = (path, body) =>
  fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit',
  });

/** Exchange an API token for an access token; throws ApiError when it is refused. */
export async function signIn(apiToken) {
  keep(await parse(await post('/v1/auth/token', { token: apiToken })));
}

let refreshing = null;
/** Spend the refresh token once, however many requests met a 401 at the same time. */
function refresh() {
  refreshing ??= (async () => {
    const r = sessionStorage.getItem(REFRESH);
    if (!r) return false;
    try {
      keep(await parse(await post('/v1/auth/refresh', { refresh_token: r })));
      return true;
    } catch {
      return false;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function call(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(ACCESS) ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, {
    method,
    headers,
    credentials: 'omit',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** An authenticated API request: the parsed answer, or an ApiError. */
export async function api(method, path, body) {
  if (!signedIn()) throw new ApiError(401, { code: 'unauthorized', detail: 'not signed in' });
  let res = await call(method, path, body);
  if (res.status === 401 && (await refresh())) res = await call(method, path, body);
  if (res.status === 401) {
    const p = await parse(res).catch((e) => e.problem);
    signOut(`Signed out: ${p?.detail ?? 'the access token was refused'}. Sign in again.`);
    throw new ApiError(401, p);
  }
  return parse(res);
}

/** GET without a token (/healthz). */
export async function open(path) {
  return parse(await fetch(path, { credentials: 'omit' }));
}

/** A path with a query string from the defined values of `q`. */
export function withQuery(path, q) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const qs = s.toString();
  return qs ? `${path}?${qs}` : path;
}
