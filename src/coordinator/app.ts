/**
 * The coordinator application: the operations behind the HTTP API, the orchestration of
 * sessions and ceremonies, and the periodic jobs. Holds no secret key material: only its
 * identity key (to sign envelopes to signers) and the JWT secret.
 */
import { randomBytes } from 'node:crypto';
import { npubEncode } from '../crypto/bech32.js';
import type { SealedBox } from '../crypto/box.js';
import type { PublicKeyPackageJson } from '../crypto/encoding.js';
import { fromHex, toHex } from '../crypto/hex.js';
import { identityPublicKey } from '../crypto/identity.js';
import { FloeError } from '../protocol/errors.js';
import type { KeyObject, SessionObject, SignerObject } from './api/schemas.js';
import { hasRole, type Principal } from './auth/tokens.js';
import type { Backend } from './backend.js';
import { CeremonyDriver, newId } from './ceremonies.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { CeremonyRecord, KeyRecord, SessionRecord, SignerRecord } from './ports.js';
import { isTerminal } from './session-state.js';
import { SignerClient } from './signer-client.js';
import { SigningOrchestrator } from './signing.js';

export interface CoordinatorOptions {
  backend: Backend;
  identity: Uint8Array;
  metrics: CoordinatorMetrics;
  now?: () => number;
  sessionTtlMs?: number;
  roundTimeoutMs?: number;
  maxAttempts?: number;
  quarantineAfter?: number;
  /** A signer not seen for this long is chosen only when fresher ones do not suffice. Default 10 s. */
  signerStaleAfterMs?: number;
  /** Signer latencies within one bucket of this width rank as equally fast. Default 100 ms. */
  latencyBucketMs?: number;
  /** Interval of the expiry / resume / health jobs. Default 2 s. */
  jobIntervalMs?: number;
  /** A non-terminal session not updated for this long is resumed by any coordinator. Default 15 s. */
  resumeAfterMs?: number;
  retentionDays?: number;
  /** The tenant whose admins manage the shared signer registry. Default `default`. */
  systemTenant?: string;
  log?: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

const JOB_LOCK = 0x466c6f65; // "Floe"

export class Coordinator {
  readonly backend: Backend;
  readonly identityPub: string;
  readonly signing: SigningOrchestrator;
  readonly ceremonies: CeremonyDriver;
  private readonly o: Required<Omit<CoordinatorOptions, 'log'>> & { log?: CoordinatorOptions['log'] };
  private readonly clients = new Map<string, SignerClient>();
  /** Sessions being driven by this process (so one process never drives one twice). */
  private readonly driving = new Map<string, Promise<SessionRecord>>();
  private readonly ceremoniesRunning = new Map<string, Promise<KeyRecord>>();
  private timer: NodeJS.Timeout | undefined;
  private jobRunning = false;
  private closed = false;

  constructor(o: CoordinatorOptions) {
    this.o = {
      now: Date.now,
      sessionTtlMs: 10 * 60_000,
      roundTimeoutMs: 10_000,
      maxAttempts: 5,
      quarantineAfter: 3,
      signerStaleAfterMs: 10_000,
      latencyBucketMs: 100,
      jobIntervalMs: 2000,
      resumeAfterMs: 15_000,
      retentionDays: 90,
      systemTenant: 'default',
      ...o,
    };
    this.backend = o.backend;
    this.identityPub = toHex(identityPublicKey(o.identity));
    const clientFor = (s: SignerRecord) => this.clientFor(s);
    const m = o.metrics;
    this.signing = new SigningOrchestrator({
      store: o.backend,
      clientFor,
      now: this.o.now,
      roundTimeoutMs: this.o.roundTimeoutMs,
      maxAttempts: this.o.maxAttempts,
      quarantineAfter: this.o.quarantineAfter,
      staleAfterMs: this.o.signerStaleAfterMs,
      latencyBucketMs: this.o.latencyBucketMs,
      onEvent: (e) => {
        if (e.kind === 'round') m.roundLatency.observe({ round: e.round }, e.ms / 1000);
        if (e.kind === 'fault') m.signerFaults.inc({ signer: e.signerId, fault: e.fault.split(':')[0]! });
        if (e.kind === 'terminal') {
          m.sessions.inc({ status: e.status });
          m.attempts.observe(e.attempts);
        }
      },
    });
    this.ceremonies = new CeremonyDriver({
      keys: o.backend,
      clientFor,
      audit: (t, k, st, sid, d) => o.backend.audit(t, k, st, sid, d),
      now: this.o.now,
      roundTimeoutMs: Math.max(this.o.roundTimeoutMs, 30_000),
    });
  }

  clientFor(s: SignerRecord): SignerClient {
    const k = `${s.id}|${s.url}|${s.identityPubkey}`;
    let c = this.clients.get(k);
    if (!c) {
      c = new SignerClient({
        url: s.url,
        signerIdentity: s.identityPubkey,
        identity: this.o.identity,
        now: this.o.now,
      });
      this.clients.set(k, c);
    }
    return c;
  }

  // ---------------------------------------------------------------- signers

  /** Signers are shared infrastructure: only admins of the system tenant may change the registry. */
  private needSystemAdmin(p: Principal): void {
    need(p, 'admin');
    if (p.tenantId !== this.o.systemTenant) {
      throw new FloeError('forbidden', 'the signer registry is managed by admins of the system tenant');
    }
  }

  async registerSigner(
    p: Principal,
    body: { url: string; identity: string; name?: string },
  ): Promise<SignerObject> {
    this.needSystemAdmin(p);
    const existing = (await this.backend.listSigners()).find((s) => s.identityPubkey === body.identity);
    if (existing)
      throw new FloeError('conflict', `a signer with this identity is registered as ${existing.id}`);
    const rec: SignerRecord = {
      id: newId('sig'),
      name: body.name ?? null,
      url: body.url.replace(/\/+$/, ''),
      identityPubkey: body.identity,
      status: 'active',
      faultCount: 0,
      quarantined: false,
      quarantinedAt: null,
      quarantineOverride: false,
      lastSeenAt: null,
      lastLatencyMs: null,
      createdAt: this.o.now(),
    };
    await this.backend.insertSigner(rec);
    await this.backend.audit(p.tenantId, 'signer.registered', 'signer', rec.id, {
      url: rec.url,
      identity: rec.identityPubkey,
    });
    await this.probe(rec);
    return signerObject((await this.backend.getSigner(rec.id))!);
  }

  async listSigners(p: Principal): Promise<SignerObject[]> {
    need(p, 'viewer');
    return (await this.backend.listSigners()).map(signerObject);
  }

  async updateSigner(
    p: Principal,
    id: string,
    body: { status?: 'active' | 'disabled'; quarantine_override?: boolean; clear_faults?: boolean },
  ): Promise<SignerObject> {
    this.needSystemAdmin(p);
    const s = await this.backend.getSigner(id);
    if (!s) throw new FloeError('not_found', `no signer ${id}`);
    await this.backend.updateSigner(id, {
      ...(body.status ? { status: body.status } : {}),
      ...(body.quarantine_override === undefined ? {} : { quarantineOverride: body.quarantine_override }),
      ...(body.clear_faults ? { faultCount: 0, quarantined: false, quarantinedAt: null } : {}),
    });
    await this.backend.audit(p.tenantId, 'signer.updated', 'signer', id, body);
    return signerObject((await this.backend.getSigner(id))!);
  }

  /** Health probe: a signed node.info round trip; records latency or nothing. */
  async probe(s: SignerRecord): Promise<boolean> {
    const t0 = performance.now();
    try {
      const info = await this.clientFor(s).call('nodeInfo', {}, 3000);
      if (info.identity !== s.identityPubkey) return false;
      await this.backend.recordSignerSeen(s.id, Math.round(performance.now() - t0));
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- keys

  private async resolveSigners(ids: string[] | undefined): Promise<SignerRecord[]> {
    const all = await this.backend.listSigners();
    if (!ids) {
      const active = all.filter((s) => s.status === 'active').sort((a, b) => a.createdAt - b.createdAt);
      return active;
    }
    return ids.map((id) => {
      const s = all.find((x) => x.id === id);
      if (!s) throw new FloeError('invalid_request', `unknown signer ${id}`);
      if (s.status !== 'active') throw new FloeError('invalid_request', `signer ${id} is disabled`);
      return s;
    });
  }

  async createKey(
    p: Principal,
    body: { threshold: number; signers?: string[]; label?: string; wait?: number },
  ): Promise<KeyObject> {
    need(p, 'operator');
    const signers = await this.resolveSigners(body.signers);
    const { key, ceremony } = await this.ceremonies.createDkg(
      p.tenantId,
      signers,
      body.threshold,
      body.label ?? null,
    );
    this.o.metrics.ceremonies.inc({ status: 'started' });
    const run = this.ceremonies
      .runDkg(key, ceremony, signers)
      .then((k) => {
        this.o.metrics.ceremonies.inc({ status: 'completed' });
        return k;
      })
      .catch((e) => {
        this.o.metrics.ceremonies.inc({ status: 'failed' });
        throw e;
      })
      .finally(() => this.ceremoniesRunning.delete(key.id));
    this.ceremoniesRunning.set(key.id, run);
    run.catch(() => {});
    if (body.wait) await within(run, body.wait);
    return this.getKey(p, key.id);
  }

  async importKey(
    p: Principal,
    body: {
      key_id: string;
      signers: string[];
      public_key_package: PublicKeyPackageJson;
      sealed_shares: SealedBox[];
      label?: string;
    },
  ): Promise<KeyObject> {
    need(p, 'operator');
    if (await this.backend.getKey(p.tenantId, body.key_id)) {
      throw new FloeError('conflict', `key ${body.key_id} already exists`);
    }
    const signers = await this.resolveSigners(body.signers);
    const key = await this.ceremonies.importDealer(
      p.tenantId,
      signers,
      body.public_key_package,
      body.sealed_shares,
      body.label ?? null,
      body.key_id,
    );
    return this.getKey(p, key.id);
  }

  async getKey(p: Principal, id: string): Promise<KeyObject> {
    need(p, 'viewer');
    const k = await this.backend.getKey(p.tenantId, id);
    if (!k) throw new FloeError('not_found', `no key ${id}`);
    const c = k.origin === 'dkg' ? await this.backend.getCeremonyForKey(p.tenantId, id) : undefined;
    return keyObject(k, c);
  }

  async listKeys(p: Principal, limit: number, cursor: string | null) {
    need(p, 'viewer');
    const page = await this.backend.listKeys(p.tenantId, limit, cursor);
    return { items: page.items.map((k) => keyObject(k)), next_cursor: page.nextCursor };
  }

  // ---------------------------------------------------------------- sessions

  async createSession(
    p: Principal,
    body: { key_id: string; message: string; wait?: number },
    idempotencyKey: string | undefined,
  ): Promise<{ session: SessionObject; created: boolean }> {
    need(p, 'requester');
    const key = await this.backend.getKey(p.tenantId, body.key_id);
    if (!key) throw new FloeError('not_found', `no key ${body.key_id}`);
    if (key.status !== 'active') throw new FloeError('key_not_active', `key ${body.key_id} is ${key.status}`);
    const now = this.o.now();
    const { session, created } = await this.backend.insertSession(
      {
        sessionId: `ses_${toHex(randomBytes(16))}`,
        tenantId: p.tenantId,
        keyId: key.id,
        messageHash: body.message,
        threshold: key.threshold,
        createdBy: p.tokenId,
        idempotencyKey: idempotencyKey ?? null,
        createdAt: now,
        expiresAt: now + this.o.sessionTtlMs,
      },
      { kind: 'session.created', data: { key_id: key.id } },
    );
    if (!created && (session.keyId !== body.key_id || session.messageHash !== body.message)) {
      throw new FloeError('idempotency_conflict', 'Idempotency-Key was used for another request');
    }
    const run = this.drive(p.tenantId, session.sessionId);
    let s = session;
    if (body.wait) {
      const done = await within(run, body.wait);
      s = done ?? (await this.backend.getSession(p.tenantId, session.sessionId)) ?? session;
    }
    return { session: sessionObject(s), created };
  }

  /** Drive a session in this process (at most once at a time). */
  drive(tenantId: string, sessionId: string): Promise<SessionRecord> {
    let run = this.driving.get(sessionId);
    if (!run) {
      run = this.signing.drive(tenantId, sessionId).finally(() => this.driving.delete(sessionId));
      this.driving.set(sessionId, run);
      run.catch((e) =>
        this.o.log?.warn(
          { session: sessionId, err: e instanceof Error ? e.message : 'error' },
          'drive failed',
        ),
      );
    }
    return run;
  }

  async getSession(p: Principal, id: string, waitMs = 0): Promise<SessionObject> {
    need(p, 'viewer');
    let s = await this.backend.getSession(p.tenantId, id);
    if (!s) throw new FloeError('session_not_found', `no session ${id}`);
    const deadline = this.o.now() + waitMs;
    while (!isTerminal(s.status) && this.o.now() < deadline) {
      const running = this.driving.get(id);
      await Promise.race([running?.catch(() => {}), sleep(Math.min(200, deadline - this.o.now()))]);
      s = (await this.backend.getSession(p.tenantId, id))!;
    }
    return sessionObject(s);
  }

  async listSessions(p: Principal, limit: number, cursor: string | null, status: string | null) {
    need(p, 'viewer');
    const page = await this.backend.listSessions(p.tenantId, limit, cursor, status);
    return { items: page.items.map(sessionObject), next_cursor: page.nextCursor };
  }

  async cancelSession(p: Principal, id: string): Promise<SessionObject> {
    need(p, 'requester');
    const s = await this.backend.getSession(p.tenantId, id);
    if (!s) throw new FloeError('session_not_found', `no session ${id}`);
    if (isTerminal(s.status)) throw new FloeError('session_conflict', `session is already ${s.status}`);
    const done = await this.backend.transitionSession(
      p.tenantId,
      id,
      ['pending', 'nonce_collection', 'signing', 'aggregating'],
      s.attempt,
      'failed',
      { errorCode: 'cancelled', errorMessage: 'cancelled by request', failedAt: this.o.now() },
    );
    if (!done) throw new FloeError('session_conflict', 'the session moved on; try again');
    await this.backend.audit(p.tenantId, 'session.cancelled', 'session', id, {});
    return sessionObject(done);
  }

  // ---------------------------------------------------------------- jobs

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.o.jobIntervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Expiry, cleanup and resumption of stalled sessions (one coordinator at a time), then health probes. */
  async tick(): Promise<void> {
    if (this.jobRunning || this.closed) return;
    this.jobRunning = true;
    try {
      await this.backend.withJobLock(JOB_LOCK, async () => {
        await this.backend.expireSessions();
        await this.backend.cleanupSessions(this.o.retentionDays);
      });
      for (const s of await this.backend.listStaleSessions(this.o.resumeAfterMs, 50)) {
        if (!this.driving.has(s.sessionId)) this.drive(s.tenantId, s.sessionId);
      }
      const counts = await this.backend.countSessionsByStatus();
      for (const [status, n] of Object.entries(counts)) this.o.metrics.sessionsByStatus.set({ status }, n);
      await Promise.all(
        (await this.backend.listSigners()).filter((s) => s.status === 'active').map((s) => this.probe(s)),
      );
    } catch (e) {
      this.o.log?.warn({ err: e instanceof Error ? e.message : 'error' }, 'job tick failed');
    } finally {
      this.jobRunning = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.driving.values(), ...this.ceremoniesRunning.values()]);
  }
}

function need(p: Principal, role: Principal['role']): void {
  if (!hasRole(p.role, role)) throw new FloeError('forbidden', `this needs the ${role} role`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/**
 * `p`'s value, or undefined once `ms` have passed or if `p` rejects. The timer is cleared when
 * `p` settles first, so a request's `wait` does not keep a timer (and the process) alive.
 */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(r, Math.max(0, ms), undefined);
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function keyObject(k: KeyRecord, c?: CeremonyRecord): KeyObject {
  const active = k.xOnlyPublicKey.length === 64;
  return {
    id: k.id,
    label: k.label,
    threshold: k.threshold,
    n: k.n,
    status: k.status,
    origin: k.origin,
    public_key: active ? k.groupPublicKey : null,
    x_only_public_key: active ? k.xOnlyPublicKey : null,
    npub: active ? npubEncode(fromHex(k.xOnlyPublicKey, 'x', 32)) : null,
    tweak: (k.tweak as Record<string, unknown> | null) ?? null,
    members: k.members,
    ...(c ? { ceremony: { id: c.id, status: c.status, error_code: c.errorCode, culprits: c.culprits } } : {}),
    created_at: k.createdAt,
  };
}

export function sessionObject(s: SessionRecord): SessionObject {
  return {
    id: s.sessionId,
    key_id: s.keyId,
    message: s.messageHash,
    status: s.status,
    attempt: s.attempt,
    participants: s.participants,
    signature: s.finalSignature,
    error_code: s.errorCode,
    error_message: s.errorMessage,
    culprits: s.culprits,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    expires_at: s.expiresAt,
    completed_at: s.completedAt,
  };
}

export function signerObject(s: SignerRecord): SignerObject {
  return {
    id: s.id,
    name: s.name,
    url: s.url,
    identity: s.identityPubkey,
    status: s.status,
    fault_count: s.faultCount,
    quarantined: s.quarantined,
    quarantine_override: s.quarantineOverride,
    last_seen_at: s.lastSeenAt,
    last_latency_ms: s.lastLatencyMs,
    created_at: s.createdAt,
  };
}
