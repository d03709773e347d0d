/**
 * A small client of the coordinator's HTTP API (fetch). Errors come back as ApiError with
 * the problem+json `code` and one line of message, or as a plain line when the coordinator
 * cannot be reached.
 */
import { isTerminal } from '../domain/session-state.js';
import type {
  CoordinatorHealth,
  CreatedTenant,
  CreatedToken,
  CreateKeyBody,
  CreateSessionBody,
  CreateTenantBody,
  ImportedKeyObject,
  ImportKeyBody,
  KeyObject,
  Page,
  RefreshKeyBody,
  RefreshObject,
  RegisterSignerBody,
  RepairKeyBody,
  RepairObject,
  SessionObject,
  SignerObject,
  TenantObject,
  TokenObject,
  UpdateKeyBody,
  UpdateSignerBody,
} from '../protocol/api.js';

export type {
  CoordinatorHealth,
  CreatedTenant,
  CreatedToken,
  KeyObject,
  Page,
  SessionObject,
  SignerObject,
  TenantObject,
  TokenObject,
};

export const DEFAULT_URL = 'http://127.0.0.1:8080';
const NO_TOKEN_HINT = 'pass --token, set FLOE_TOKEN, or run `floe up` (it writes .floe/admin.token)';

/** An import request as the client builds it (src/client/dealer-import.ts). */
export type ImportKeyRequest = ImportKeyBody;

/** An error answer of the API (problem+json) or a transport failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** What to do about it: the problem's `hint`, or the client's own advice. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiClientOptions {
  url?: string;
  /**
   * Where `url` came from, named when the coordinator cannot be reached (e.g. `from --url`,
   * `from .floe/cluster.json`).
   */
  urlSource?: string;
  token?: string | undefined;
  /** Per request, on top of any server-side wait. Default 30 s. */
  timeoutMs?: number;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  /** Send the bearer token (default true). */
  auth?: boolean;
  timeoutMs?: number;
}

export class ApiClient {
  readonly url: string;
  private readonly urlSource: string | undefined;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(o: ApiClientOptions = {}) {
    this.url = (o.url ?? DEFAULT_URL).replace(/\/+$/, '');
    this.urlSource = o.urlSource;
    this.token = o.token;
    this.timeoutMs = o.timeoutMs ?? 30_000;
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const q = Object.entries(o.query ?? {}).filter(([, v]) => v !== undefined);
    const qs = q.length
      ? `?${new URLSearchParams(q.map(([k, v]): [string, string] => [k, String(v)])).toString()}`
      : '';
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    if (o.auth !== false) {
      if (!this.token) {
        throw new ApiError(0, 'no_token', `no API token: ${NO_TOKEN_HINT}`, NO_TOKEN_HINT);
      }
      headers.authorization = `Bearer ${this.token}`;
    }
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}${qs}`, {
        method,
        headers,
        ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
        signal: AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs),
      });
    } catch (e) {
      const from = this.urlSource ? ` (${this.urlSource})` : '';
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach the coordinator at ${this.url}${from}: ${transportReason(e)}`,
        'give its URL with --url or FLOE_URL',
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const p = (body ?? {}) as { code?: unknown; detail?: unknown; title?: unknown; hint?: unknown };
      const code = typeof p.code === 'string' ? p.code : `http_${res.status}`;
      const detail =
        typeof p.detail === 'string' && p.detail
          ? p.detail
          : typeof p.title === 'string'
            ? p.title
            : res.statusText || 'request failed';
      throw new ApiError(
        res.status,
        code,
        `${oneLine(detail)} (${code}, HTTP ${res.status})`,
        typeof p.hint === 'string' && p.hint ? oneLine(p.hint) : undefined,
      );
    }
    if (body === undefined && text) {
      throw new ApiError(
        res.status,
        'bad_response',
        `the coordinator answered ${path} with something not JSON`,
      );
    }
    return body as T;
  }

  health(): Promise<CoordinatorHealth> {
    return this.request('GET', '/healthz', { auth: false, timeoutMs: 5000 });
  }

  listKeys(o: { limit?: number; cursor?: string } = {}): Promise<Page<KeyObject>> {
    return this.request('GET', '/v1/keys', { query: { limit: o.limit, cursor: o.cursor } });
  }

  getKey(id: string): Promise<KeyObject> {
    return this.request('GET', `/v1/keys/${encodeURIComponent(id)}`);
  }

  createKey(body: CreateKeyBody): Promise<KeyObject> {
    return this.request('POST', '/v1/keys', { body, timeoutMs: this.timeoutMs + (body.wait ?? 0) });
  }

  /** Change a key: its default relays (PATCH /v1/keys/:id). */
  updateKey(id: string, body: UpdateKeyBody): Promise<KeyObject> {
    return this.request('PATCH', `/v1/keys/${encodeURIComponent(id)}`, { body });
  }

  /** Refresh a key's shares (POST /v1/keys/:id/refresh). */
  refreshKey(id: string, body: RefreshKeyBody = {}): Promise<RefreshObject> {
    return this.request('POST', `/v1/keys/${encodeURIComponent(id)}/refresh`, {
      body,
      timeoutMs: this.timeoutMs + (body.wait ?? 0),
    });
  }

  /** Repair a lost member's share onto a new signer (POST /v1/keys/:id/repair). */
  repairKey(id: string, body: RepairKeyBody): Promise<RepairObject> {
    return this.request('POST', `/v1/keys/${encodeURIComponent(id)}/repair`, {
      body,
      timeoutMs: this.timeoutMs + (body.wait ?? 0),
    });
  }

  getKeyRefresh(keyId: string, refreshId: string): Promise<RefreshObject> {
    return this.request(
      'GET',
      `/v1/keys/${encodeURIComponent(keyId)}/refreshes/${encodeURIComponent(refreshId)}`,
    );
  }

  listKeyRefreshes(keyId: string): Promise<Page<RefreshObject>> {
    return this.request('GET', `/v1/keys/${encodeURIComponent(keyId)}/refreshes`);
  }

  importKey(body: ImportKeyRequest): Promise<ImportedKeyObject> {
    return this.request('POST', '/v1/keys/import', { body, timeoutMs: this.timeoutMs + 30_000 });
  }

  /** Poll until the key leaves `pending` (DKG done or failed), or the deadline passes. */
  async waitForKey(id: string, timeoutMs: number): Promise<KeyObject> {
    const deadline = Date.now() + timeoutMs;
    let k = await this.getKey(id);
    while (k.status === 'pending' && Date.now() < deadline) {
      await sleep(250);
      k = await this.getKey(id);
    }
    return k;
  }

  listSessions(o: { limit?: number; cursor?: string; status?: string } = {}): Promise<Page<SessionObject>> {
    return this.request('GET', '/v1/sessions', {
      query: { limit: o.limit, cursor: o.cursor, status: o.status },
    });
  }

  getSession(id: string, waitMs = 0): Promise<SessionObject> {
    return this.request('GET', `/v1/sessions/${encodeURIComponent(id)}`, {
      query: { wait: waitMs || undefined },
      timeoutMs: this.timeoutMs + waitMs,
    });
  }

  createSession(body: CreateSessionBody, idempotencyKey?: string): Promise<SessionObject> {
    return this.request('POST', '/v1/sessions', {
      body,
      ...(idempotencyKey ? { headers: { 'idempotency-key': idempotencyKey } } : {}),
      timeoutMs: this.timeoutMs + (body.wait ?? 0),
    });
  }

  /** Wait (server-side, in slices of at most 60 s) until the session is terminal or the deadline passes. */
  async waitForSession(id: string, timeoutMs: number): Promise<SessionObject> {
    const deadline = Date.now() + timeoutMs;
    let s = await this.getSession(id);
    while (!isTerminal(s.status) && Date.now() < deadline) {
      s = await this.getSession(id, Math.max(1, Math.min(60_000, deadline - Date.now())));
    }
    return s;
  }

  async listSigners(): Promise<SignerObject[]> {
    return (await this.request<Page<SignerObject>>('GET', '/v1/signers')).items;
  }

  registerSigner(body: RegisterSignerBody): Promise<SignerObject> {
    return this.request('POST', '/v1/signers', { body });
  }

  updateSigner(id: string, body: UpdateSignerBody): Promise<SignerObject> {
    return this.request('PATCH', `/v1/signers/${encodeURIComponent(id)}`, { body });
  }

  createToken(body: { role: string; label?: string; ttl_s?: number }): Promise<CreatedToken> {
    return this.request('POST', '/v1/tokens', { body });
  }

  /** The tenant's API tokens, revoked ones included (never the secrets). */
  async listTokens(): Promise<TokenObject[]> {
    return (await this.request<Page<TokenObject>>('GET', '/v1/tokens')).items;
  }

  /** Revoke an API token (DELETE /v1/tokens/:id); it stops working at once. */
  async revokeToken(id: string): Promise<void> {
    await this.request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  /** A new tenant with its first admin token (shown once). Admins of the system tenant only. */
  createTenant(body: CreateTenantBody): Promise<CreatedTenant> {
    return this.request('POST', '/v1/tenants', { body });
  }

  async listTenants(): Promise<TenantObject[]> {
    return (await this.request<Page<TenantObject>>('GET', '/v1/tenants')).items;
  }
}

function transportReason(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return 'timed out';
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code === 'ECONNREFUSED' ? 'connection refused (is it running?)' : cause.code;
  return oneLine(cause?.message ?? (e instanceof Error ? e.message : String(e)));
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
