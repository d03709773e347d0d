/**
 * Publishing signed Nostr events to relays (DESIGN §14). A session created with `publish` keeps
 * the relays it asked for (normalized, deduplicated); once it is completed the coordinator sends
 * the signed event to each relay and records every relay's answer: its OK (true or false, with
 * its message), or `accepted: false` with the reason there was none.
 *
 * Work happens in rounds. A round is claimed with one conditional UPDATE (a lease, migration
 * 012), so with several coordinators on one database only one publishes a session at a time;
 * it tries every relay still without a final answer in parallel, then records the answers and
 * when the next round is due (exponential backoff), releasing the lease. The first round runs
 * right after signing in the coordinator that signed; later rounds (and any round a crashed
 * coordinator left behind) are claimed by the background jobs, so publishing survives restarts.
 *
 * Final answers: an OK from the relay, except `rate-limited:` and `error:` refusals, which
 * NIP-01 marks as worth another try. No answer (timeout, connection refused or lost) is tried
 * again, up to `maxAttempts` tries per relay.
 */
import { unsignedEvent } from '../../domain/intent.js';
import type { KeyRecord, RelayPublishResult, SessionRecord } from '../../domain/records.js';
import { isTerminal } from '../../domain/session-state.js';
import { type NostrEvent, validateEvent } from '../../nostr/event.js';
import { RelayPool } from '../../nostr/pool.js';
import type { PublishFailure, PublishResult } from '../../nostr/relay.js';
import { normalizeRelayUrl } from '../../nostr/url.js';
import { MAX_RELAYS, type PublishBody, type PublishObject } from '../../protocol/api.js';
import { FloeError, isFloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';

export interface PublishSettings {
  /** Tries per relay (the first included). Default 5. */
  maxAttempts: number;
  /** Delay before the second round; doubled for each further one. Default 4 s (5 tries ≈ 1 min). */
  retryMs: number;
  /** Deadline for one relay's OK in a round, connecting included. Default 10 s. */
  timeoutMs: number;
}

export const PUBLISH_DEFAULTS: Readonly<PublishSettings> = Object.freeze({
  maxAttempts: 5,
  retryMs: 4000,
  timeoutMs: 10_000,
});

/** A stored result: the API's fields plus why there was no OK, if there was none. */
export interface StoredRelayResult extends RelayPublishResult {
  failure?: PublishFailure;
}

const RELAY_HINT = 'a ws:// or wss:// URL, e.g. wss://relay.example.com';

/**
 * Normalize and deduplicate relay URLs (src/nostr/url.ts: only ws and wss). Throws
 * `relay_url_invalid` naming the field and index of the first bad one (never its value).
 */
export function normalizeRelays(list: readonly string[], field: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of list.entries()) {
    let url: string;
    try {
      url = normalizeRelayUrl(raw);
    } catch (e) {
      const why = isFloeError(e) ? e.message.replace(/^relay url: /, '') : 'not a relay URL';
      throw new FloeError('relay_url_invalid', `${field}[${i}]: ${why}`, { hint: RELAY_HINT });
    }
    if (!out.includes(url)) out.push(url);
  }
  if (out.length > MAX_RELAYS) {
    throw new FloeError('invalid_request', `${field}: at most ${MAX_RELAYS} relays`);
  }
  return out;
}

/**
 * The relays a request asks its signed event to be published to: `publish.relays`, else the
 * key's default relays. Null when it does not ask. Refuses `publish` without a Nostr event and
 * a request that leaves no relay at all.
 */
export function publishRelaysOf(
  body: { nostr_event?: unknown; publish?: PublishBody | undefined },
  key: Pick<KeyRecord, 'id' | 'relays'>,
  field = 'publish.relays',
): string[] | null {
  if (body.publish === undefined) return null;
  if (body.nostr_event === undefined) {
    throw new FloeError('publish_not_nostr_event', 'publish is only for a nostr_event intent', {
      hint: 'send nostr_event {kind, content, tags?} with publish, or leave publish out',
    });
  }
  const relays = normalizeRelays(body.publish.relays ?? key.relays ?? [], field);
  if (relays.length === 0) {
    throw new FloeError(
      'publish_no_relays',
      body.publish.relays ? `${field}: no relays given` : `key ${key.id} has no default relays`,
      {
        hint: `name them in publish.relays, or set the key's defaults: PATCH /v1/keys/${key.id} {"relays": ["wss://…"]} (floe key relays)`,
      },
    );
  }
  return relays;
}

/** Whether an answer is worth another try: none came, or the relay called its refusal temporary. */
export function retryable(r: { accepted: boolean; message: string; failure?: PublishFailure }): boolean {
  if (r.failure !== undefined) return true;
  return !r.accepted && /^(rate-limited|error):/.test(r.message);
}

/** Delay before the next round after `tries` tries: retryMs · 2^(tries-1). */
export function retryDelay(tries: number, retryMs: number): number {
  return retryMs * 2 ** Math.max(0, tries - 1);
}

/** The relays of a session still to try: no final answer yet and tries left. */
export function outstanding(
  relays: readonly string[],
  results: readonly StoredRelayResult[],
  maxAttempts: number,
): string[] {
  return relays.filter((url) => {
    const r = results.find((x) => x.relay === url);
    return !r || (retryable(r) && r.attempts < maxAttempts);
  });
}

/** The recorded results after a round: each answered relay updated, in the order of `relays`. */
export function mergeResults(
  relays: readonly string[],
  previous: readonly StoredRelayResult[],
  answers: readonly PublishResult[],
): StoredRelayResult[] {
  const out: StoredRelayResult[] = [];
  for (const url of relays) {
    const before = previous.find((x) => x.relay === url);
    const a = answers.find((x) => x.relay === url);
    if (a) {
      out.push({
        relay: url,
        accepted: a.accepted,
        message: a.message,
        at: a.at,
        attempts: (before?.attempts ?? 0) + 1,
        ...(a.failure ? { failure: a.failure } : {}),
      });
    } else if (before) {
      out.push(before);
    }
  }
  return out;
}

/** The signed event of a completed nostr_event session, checked (id and signature); else null. */
export function signedEventOf(s: SessionRecord, xOnlyKey: string | null): NostrEvent | null {
  if (s.intent.type !== 'nostr_event' || !s.finalSignature || !xOnlyKey) return null;
  const e = { id: s.messageHash, ...unsignedEvent(s.intent.event, xOnlyKey), sig: s.finalSignature };
  const check = validateEvent(e);
  return check.ok ? check.event : null;
}

/** The session's `publish` member in the API, when it asked to be published. */
export function publishObject(s: SessionRecord): { publish?: PublishObject } {
  if (!s.publishRelays) return {};
  const status =
    s.status === 'completed' ? (s.publishStatus ?? 'pending') : isTerminal(s.status) ? 'skipped' : 'pending';
  return {
    publish: {
      relays: s.publishRelays,
      status,
      results: (s.publishResults ?? []).map((r) => ({
        relay: r.relay,
        accepted: r.accepted,
        message: r.message,
        at: r.at,
        attempts: r.attempts,
      })),
      next_attempt_at: status === 'pending' && s.status === 'completed' ? (s.publishNextAt ?? null) : null,
    },
  };
}

export class Publisher {
  private readonly running = new Map<string, Promise<void>>();
  private readonly s: PublishSettings;
  private closed = false;

  constructor(
    private readonly o: {
      backend: Backend;
      /** This coordinator process: the owner of the publishing leases it claims. */
      instanceId: string;
      now: () => number;
      settings?: Partial<PublishSettings>;
      log?: { warn: (o: object, m?: string) => void };
    },
  ) {
    this.s = { ...PUBLISH_DEFAULTS, ...o.settings };
  }

  /** How long a claimed round is ours: every relay's deadline, plus slack for the database. */
  get leaseMs(): number {
    return this.s.timeoutMs * 2 + 10_000;
  }

  /** The session path's hook: a session just completed here; publish it now if it asks to be. */
  completed(s: SessionRecord): void {
    if (s.status === 'completed' && s.publishStatus === 'pending') this.start(s.tenantId, s.sessionId, false);
  }

  /** Claim the due rounds of every tenant (the background jobs) and run them; how many were claimed. */
  async runDue(limit = 50): Promise<number> {
    if (this.closed) return 0;
    const claimed = await this.o.backend.claimDuePublishes(this.o.instanceId, this.leaseMs, limit);
    for (const c of claimed) this.start(c.tenantId, c.sessionId, true);
    return claimed.length;
  }

  /** Rounds running in this process (so shutdown can wait for them). */
  inFlight(): Promise<unknown>[] {
    return [...this.running.values()];
  }

  close(): void {
    this.closed = true;
  }

  private start(tenantId: string, sessionId: string, claimed: boolean): void {
    if (this.closed || this.running.has(sessionId)) return;
    const run = this.round(tenantId, sessionId, claimed)
      .catch((e) =>
        this.o.log?.warn(
          { session: sessionId, err: e instanceof Error ? e.message : 'error' },
          'publishing round failed',
        ),
      )
      .finally(() => this.running.delete(sessionId));
    this.running.set(sessionId, run);
  }

  /** One round: claim (unless the jobs did), try the outstanding relays, record, release. */
  private async round(tenantId: string, sessionId: string, claimed: boolean): Promise<void> {
    const { backend, instanceId } = this.o;
    const s = claimed
      ? await backend.getSession(tenantId, sessionId)
      : await backend.claimPublish(tenantId, sessionId, instanceId, this.leaseMs);
    if (!s?.publishRelays || s.publishStatus !== 'pending' || s.status !== 'completed') return;
    const relays = s.publishRelays;
    const previous = (s.publishResults ?? []) as StoredRelayResult[];
    const todo = outstanding(relays, previous, this.s.maxAttempts);
    const key = await backend.getKey(tenantId, s.keyId);
    const event = signedEventOf(s, key?.xOnlyPublicKey ?? null);
    let answers: PublishResult[];
    if (!event) {
      // Cannot happen for a session the orchestrator completed (it verified the signature);
      // recorded rather than retried forever.
      const at = this.o.now();
      answers = todo.map((relay) => ({
        relay,
        accepted: false,
        message: 'not sent: the signed event could not be rebuilt',
        at,
      }));
    } else {
      answers = todo.length ? await this.send(event, todo) : [];
    }
    const results = mergeResults(relays, previous, answers);
    const left = event ? outstanding(relays, results, this.s.maxAttempts) : [];
    const tries = Math.max(0, ...left.map((u) => results.find((r) => r.relay === u)?.attempts ?? 0));
    const done = left.length === 0;
    await backend.recordPublish(
      tenantId,
      sessionId,
      instanceId,
      {
        results,
        status: done ? 'done' : 'pending',
        nextAt: done ? null : this.o.now() + retryDelay(tries, this.s.retryMs),
      },
      done
        ? {
            kind: 'session.published',
            data: {
              event_id: s.messageHash,
              relays: relays.length,
              accepted: results.filter((r) => r.accepted).length,
            },
          }
        : undefined,
    );
  }

  /** Send to each relay in parallel over fresh connections; one answer per relay, never a throw. */
  private async send(event: NostrEvent, relays: string[]): Promise<PublishResult[]> {
    const pool = new RelayPool({
      publishTimeoutMs: this.s.timeoutMs,
      connectTimeoutMs: this.s.timeoutMs,
      // Our own rounds are the retries: a connection that fails ends its publish at once.
      reconnect: false,
      pingIntervalMs: 0,
      maxRelays: MAX_RELAYS,
    });
    try {
      return await pool.publish(event, relays);
    } finally {
      pool.close();
    }
  }
}
