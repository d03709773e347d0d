/**
 * The coordinator's services, wired together: the signer registry, keys, sessions, the jobs,
 * and the orchestration they share. Holds no secret key material: only its identity (to sign
 * envelopes to signers); the HTTP layer holds the JWT secret.
 */
import type { NetworkName } from '../../bitcoin/network.js';
import type { NodeIdentity } from '../../crypto/identity.js';
import { newId } from '../../domain/ids.js';
import { FloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import { BatchSigning } from '../batch.js';
import { BunkerHost, type BunkerHostConfig } from '../bunkers/host.js';
import { BunkerService } from '../bunkers/service.js';
import { CeremonyDriver } from '../ceremonies.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { PgBackend } from '../pg-backend.js';
import { SignerReachability } from '../reachability.js';
import { RefreshDriver } from '../refresh.js';
import { PgRefreshStore } from '../refresh-store.js';
import { RepairDriver } from '../repair.js';
import { PgRepairStore } from '../repair-store.js';
import { type SigningEvent, SigningOrchestrator } from '../signing.js';
import { WebhookSealer } from '../webhook-seal.js';
import { AddressService, type AddressSettings } from './addresses.js';
import { type ApprovalGate, StewardApprovals } from './approvals.js';
import { EcdhService } from './ecdh.js';
import { Jobs } from './jobs.js';
import { KeyControlService } from './key-controls.js';
import { KeyService } from './keys.js';
import { Publisher, type PublishSettings } from './publish.js';
import { SignerRegistry } from './registry.js';
import { SessionService } from './sessions.js';
import { dbOf, WebhookService } from './webhooks.js';

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
  /**
   * Relays for the requests to stewards of keys without relays of their own, and for reading
   * their decisions (config `approval_relays`). Default none: decisions come by the API only.
   */
  approvalRelays?: string[];
  /** Publishing signed Nostr events to relays: tries, backoff, per-relay deadline (services/publish.ts). */
  publish?: Partial<PublishSettings>;
  /** NIP-46 bunkers (../bunkers/): the database and the sealing key; without them none run here. */
  bunkers?: BunkerHostConfig;
  /** 32 secret bytes the webhook signing secrets are sealed under (node.ts: jwt.key). */
  webhookSealKey?: Uint8Array;
  /** Refuse keys that break the threshold rules instead of warning (config `strict_thresholds`). */
  strictThresholds?: boolean;
  /** Bitcoin addresses (DESIGN §14): the address secret, network and per-passphrase key group. */
  addresses?: Omit<AddressSettings, 'strictThresholds'>;
  /** The network of bitcoin_psbt sessions (config bitcoin_network). Default: the addresses', else regtest. */
  bitcoinNetwork?: NetworkName;
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
  /** Share refresh of keys (../refresh.ts); undefined on a backend other than Postgres/PGlite. */
  readonly refresh: RefreshDriver | undefined;
  /** Share repair of keys (../repair.ts); undefined on a backend other than Postgres/PGlite. */
  readonly repair: RepairDriver | undefined;
  /** Steward approvals (DESIGN §13): requests, decisions, policy changes (routes/approvals.ts). */
  readonly approvals: StewardApprovals;
  /** Addresses per passphrase and derived (DESIGN §14); undefined without `addresses` options. */
  readonly addresses: AddressService | undefined;
  /** Runs this database's bunkers (leases); undefined without `bunkers` options. */
  readonly bunkerHost: BunkerHost | undefined;
  /** The bunker API (routes/bunker.ts). */
  readonly bunkers: BunkerService | undefined;
  /** Threshold ECDH of a key with a peer, and NIP-04 / NIP-44 over it (DESIGN §14). */
  readonly ecdh: EcdhService;
  readonly publisher: Publisher;
  /** Webhooks per tenant, fed from the audit log by the jobs (issue 15 item 9). */
  readonly webhooks: WebhookService;
  /** Who this coordinator last found unreachable (probes and requests; fail fast, ../reachability.ts). */
  readonly reachability = new SignerReachability();
  /** Disable / enable, and the kill switch: freeze / unfreeze by operator instruction. */
  readonly keyControls: KeyControlService;

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
      reachability: this.reachability,
    });
    const clientFor = this.registry.clientFor.bind(this.registry);
    this.approvals = new StewardApprovals({
      backend: o.backend,
      registry: this.registry,
      identity: o.identity,
      now,
      relays: o.approvalRelays ?? [],
      roundTimeoutMs,
      ...(o.log ? { log: o.log } : {}),
    });
    const approvalsFor = this.approvals.approvalsFor.bind(this.approvals);
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
      approvalsFor,
      reachability: this.reachability,
      onEvent: signingEvents,
    });
    this.ecdh = new EcdhService({
      store: o.backend,
      orchestrator: this.signing,
      clientFor,
      roundTimeoutMs,
      quarantineAfter: o.quarantineAfter ?? 3,
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
    this.refresh =
      o.backend instanceof PgBackend
        ? new RefreshDriver({
            store: new PgRefreshStore(o.backend.db, now),
            clientFor,
            signersOf: async (key) => {
              const all = new Map((await o.backend.listSigners()).map((x) => [x.id, x]));
              return key.members.map((m) => {
                const s = all.get(m.signer_id);
                if (!s) throw new FloeError('signer_not_found', `signer ${m.signer_id} is not registered`);
                return s;
              });
            },
            getKey: (tenantId, keyId) => o.backend.getKey(tenantId, keyId),
            audit: (t, k, st, sid, d) => o.backend.audit(t, k, st, sid, d),
            now,
            roundTimeoutMs: Math.max(roundTimeoutMs, 30_000),
            ...(o.ceremonyTtlMs ? { ttlMs: o.ceremonyTtlMs } : {}),
          })
        : undefined;
    this.repair =
      o.backend instanceof PgBackend
        ? new RepairDriver({
            store: new PgRepairStore(o.backend.db, now),
            clientFor,
            getSigner: (id) => o.backend.getSigner(id),
            getKey: (tenantId, keyId) => o.backend.getKey(tenantId, keyId),
            audit: (t, k, st, sid, d) => o.backend.audit(t, k, st, sid, d),
            now,
            roundTimeoutMs: Math.max(roundTimeoutMs, 30_000),
            ...(o.ceremonyTtlMs ? { ttlMs: o.ceremonyTtlMs } : {}),
          })
        : undefined;
    this.keys = new KeyService({
      backend: o.backend,
      registry: this.registry,
      ceremonies: this.ceremonies,
      ...(this.refresh ? { refresh: this.refresh } : {}),
      ...(this.repair ? { repair: this.repair } : {}),
      metrics: m,
      strictThresholds: o.strictThresholds ?? false,
    });
    this.keyControls = new KeyControlService({ backend: o.backend, registry: this.registry, now });
    this.addresses = o.addresses
      ? new AddressService({
          backend: o.backend,
          registry: this.registry,
          ceremonies: this.ceremonies,
          metrics: m,
          settings: { ...o.addresses, strictThresholds: o.strictThresholds ?? false },
          now,
        })
      : undefined;
    const batch = new BatchSigning({
      store: o.backend,
      clientFor,
      orchestrator: this.signing,
      now,
      roundTimeoutMs,
      quarantineAfter: o.quarantineAfter ?? 3,
      approvalsFor,
      onEvent: signingEvents,
    });
    this.publisher = new Publisher({
      backend: o.backend,
      instanceId: this.instanceId,
      now,
      ...(o.publish ? { settings: o.publish } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    this.sessions = new SessionService({
      backend: o.backend,
      orchestrator: this.signing,
      batch,
      approvals: o.approvals ?? this.approvals,
      now,
      sessionTtlMs: o.sessionTtlMs ?? 10 * 60_000,
      ...(o.nostrCreatedAtSkewS === undefined ? {} : { nostrCreatedAtSkewS: o.nostrCreatedAtSkewS }),
      bitcoinNetwork: o.bitcoinNetwork ?? o.addresses?.network.name ?? 'regtest',
      ...(o.log ? { log: o.log } : {}),
      onCompleted: (s) => this.publisher.completed(s),
    });
    this.approvals.bind({ sessions: this.sessions, keys: this.keys });
    const audit = (t: string, k: string, st: string, sid: string, d: unknown) =>
      o.backend.audit(t, k, st, sid, d);
    const getKey = (t: string, k: string) => o.backend.getKey(t, k);
    this.bunkerHost = o.bunkers
      ? new BunkerHost({
          ...o.bunkers,
          instanceId: this.instanceId,
          sessions: this.sessions,
          getKey,
          audit,
          ecdh: () => this.ecdh,
          now,
          ...(o.log ? { log: o.log } : {}),
        })
      : undefined;
    this.bunkers = this.bunkerHost
      ? new BunkerService({ host: this.bunkerHost, getKey, audit, now })
      : undefined;
    this.webhooks = new WebhookService({
      db: dbOf(o.backend),
      instanceId: this.instanceId,
      now,
      ...(o.webhookSealKey ? { sealer: new WebhookSealer(o.webhookSealKey) } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    this.jobs = new Jobs({
      backend: o.backend,
      instanceId: this.instanceId,
      sessions: this.sessions,
      registry: this.registry,
      publisher: this.publisher,
      webhooks: this.webhooks,
      ...(this.refresh || this.repair
        ? {
            refresh: {
              runDue: async () => {
                await this.refresh?.runDue();
                await this.repair?.runDue();
              },
            },
          }
        : {}),
      metrics: m,
      intervalMs: o.jobIntervalMs ?? 2000,
      resumeAfterMs: o.resumeAfterMs ?? 15_000,
      retentionDays: o.retentionDays ?? 90,
      ...(o.log ? { log: o.log } : {}),
    });
  }

  start(): void {
    this.jobs.start();
    void this.approvals.start();
    this.bunkerHost?.start();
  }

  async close(): Promise<void> {
    // first: their requests in progress still need the sessions
    await this.bunkerHost?.close();
    this.jobs.stop();
    await Promise.allSettled([
      ...this.sessions.inFlight(),
      ...this.keys.inFlight(),
      ...(this.addresses?.inFlight() ?? []),
    ]);
    await this.approvals.close();
    // After the sessions: a drive completing now still starts its first publishing round.
    this.publisher.close();
    await this.webhooks.close();
    await Promise.allSettled(this.publisher.inFlight());
  }
}
