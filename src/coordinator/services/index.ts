/**
 * The coordinator's services, wired together: the signer registry, keys, sessions, the jobs,
 * and the orchestration they share. Holds no secret key material: only its identity (to sign
 * envelopes to signers); the HTTP layer holds the JWT secret.
 */
import type { NodeIdentity } from '../../crypto/identity.js';
import { newId } from '../../domain/ids.js';
import type { Backend } from '../backend.js';
import { BatchSigning } from '../batch.js';
import { CeremonyDriver } from '../ceremonies.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { type SigningEvent, SigningOrchestrator } from '../signing.js';
import { type ApprovalGate, noApprovals } from './approvals.js';
import { Jobs } from './jobs.js';
import { KeyService } from './keys.js';
import { SignerRegistry } from './registry.js';
import { SessionService } from './sessions.js';

export interface CoordinatorOptions {
  backend: Backend;
  identity: NodeIdentity;
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
  /** Among equally good signers: at random (`spread`, default) or by identifier (`ordered`). */
  selection?: 'spread' | 'ordered';
  /** Interval of the expiry / resume / health jobs. Default 2 s. */
  jobIntervalMs?: number;
  /** A non-terminal session not updated for this long is resumed by any coordinator. Default 15 s. */
  resumeAfterMs?: number;
  /** A DKG ceremony not completed by then fails (and its key). Default 10 minutes. */
  ceremonyTtlMs?: number;
  retentionDays?: number;
  /** How far a Nostr event's created_at may be from now, in seconds. Default 15 minutes. */
  nostrCreatedAtSkewS?: number;
  /** The tenant whose admins manage the shared signer registry. Default `default`. */
  systemTenant?: string;
  approvals?: ApprovalGate;
  log?: { info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void };
}

export class Coordinator {
  readonly backend: Backend;
  readonly identityPub: string;
  /** This process among the coordinators of one database (owner of the session leases it claims). */
  readonly instanceId: string;
  readonly registry: SignerRegistry;
  readonly keys: KeyService;
  readonly sessions: SessionService;
  readonly jobs: Jobs;
  readonly signing: SigningOrchestrator;
  readonly ceremonies: CeremonyDriver;

  constructor(o: CoordinatorOptions) {
    const now = o.now ?? Date.now;
    const roundTimeoutMs = o.roundTimeoutMs ?? 10_000;
    const m = o.metrics;
    this.backend = o.backend;
    this.identityPub = o.identity.publicKeyHex;
    this.instanceId = newId('coordinator');
    this.registry = new SignerRegistry({
      backend: o.backend,
      identity: o.identity,
      now,
      systemTenant: o.systemTenant ?? 'default',
      onChange: () => this.signing.forgetSigners(),
    });
    const clientFor = this.registry.clientFor.bind(this.registry);
    const signingEvents = (e: SigningEvent) => {
      if (e.kind === 'round') m.roundLatency.observe({ round: e.round }, e.ms / 1000);
      if (e.kind === 'fault') m.signerFaults.inc({ signer: e.signerId, fault: e.fault.split(':')[0]! });
      if (e.kind === 'terminal') {
        m.sessions.inc({ status: e.status });
        m.attempts.observe(e.attempts);
      }
    };
    this.signing = new SigningOrchestrator({
      store: o.backend,
      clientFor,
      now,
      roundTimeoutMs,
      maxAttempts: o.maxAttempts ?? 5,
      quarantineAfter: o.quarantineAfter ?? 3,
      staleAfterMs: o.signerStaleAfterMs ?? 10_000,
      latencyBucketMs: o.latencyBucketMs ?? 100,
      spreadLoad: o.selection !== 'ordered',
      onEvent: signingEvents,
    });
    this.ceremonies = new CeremonyDriver({
      keys: o.backend,
      clientFor,
      audit: (t, k, st, sid, d) => o.backend.audit(t, k, st, sid, d),
      now,
      roundTimeoutMs: Math.max(roundTimeoutMs, 30_000),
      ...(o.ceremonyTtlMs ? { ceremonyTtlMs: o.ceremonyTtlMs } : {}),
    });
    this.keys = new KeyService({
      backend: o.backend,
      registry: this.registry,
      ceremonies: this.ceremonies,
      metrics: m,
    });
    const batch = new BatchSigning({
      store: o.backend,
      clientFor,
      orchestrator: this.signing,
      now,
      roundTimeoutMs,
      quarantineAfter: o.quarantineAfter ?? 3,
      onEvent: signingEvents,
    });
    this.sessions = new SessionService({
      backend: o.backend,
      orchestrator: this.signing,
      batch,
      approvals: o.approvals ?? noApprovals,
      now,
      sessionTtlMs: o.sessionTtlMs ?? 10 * 60_000,
      ...(o.nostrCreatedAtSkewS === undefined ? {} : { nostrCreatedAtSkewS: o.nostrCreatedAtSkewS }),
      ...(o.log ? { log: o.log } : {}),
    });
    this.jobs = new Jobs({
      backend: o.backend,
      instanceId: this.instanceId,
      sessions: this.sessions,
      registry: this.registry,
      metrics: m,
      intervalMs: o.jobIntervalMs ?? 2000,
      resumeAfterMs: o.resumeAfterMs ?? 15_000,
      retentionDays: o.retentionDays ?? 90,
      ...(o.log ? { log: o.log } : {}),
    });
  }

  start(): void {
    this.jobs.start();
  }

  async close(): Promise<void> {
    this.jobs.stop();
    await Promise.allSettled([...this.sessions.inFlight(), ...this.keys.inFlight()]);
  }
}
