/**
 * The coordinator's periodic work: expire sessions and DKG ceremonies past their deadlines,
 * clean up old sessions and rate-limit rows that carry no information any more (one
 * coordinator at a time, under an advisory lock), resume sessions a crashed coordinator left
 * behind, run due rounds of publishing signed Nostr events (services/publish.ts), refresh the
 * session and signer-quarantine gauges, and probe the signers. On the embedded database it also
 * does autovacuum's work, at most once per `maintainEveryMs` (src/db/maintenance.ts).
 *
 * The sessions gauge: the live statuses at every tick (read through their index), every status
 * once per `maintainEveryMs` (a scan of the whole table, which keeps 90 days by default).
 */
import type { Backend } from '../backend.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { SignerRegistry } from './registry.js';
import type { SessionService } from './sessions.js';

const JOB_LOCK = 0x466c6f65; // "Floe"

/** How often the tables are looked at for vacuuming (autovacuum's naptime is a minute too) and every session status is counted. */
const MAINTAIN_EVERY_MS = 60_000;

export class Jobs {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  /** When the tables were last looked at (0: at the first tick). */
  private maintainedAt = 0;
  /** When every session status was last counted (0: at the first tick). */
  private countedAllAt = 0;

  constructor(
    private readonly o: {
      backend: Backend;
      sessions: SessionService;
      registry: SignerRegistry;
      /** Publishing rounds that are due (a retry, or left behind by a crashed coordinator). */
      publisher?: { runDue(): Promise<number> };
      /** Webhook events from the audit log, and due deliveries (services/webhooks.ts). */
      webhooks?: { runDue(): Promise<number> };
      /** Share refreshes and repairs: expire undecided ones, push decided ones to every member (../refresh.ts, ../repair.ts). */
      refresh?: { runDue(): Promise<void> };
      metrics: CoordinatorMetrics;
      intervalMs: number;
      /** A live session not updated for this long is claimed and resumed by one coordinator. */
      resumeAfterMs: number;
      /** This coordinator process: the owner of the leases it claims. */
      instanceId: string;
      retentionDays: number;
      /** How often the tables are maintained and every session status counted. Default a minute. */
      maintainEveryMs?: number;
      now?: () => number;
      log?: { warn: (o: object, m?: string) => void };
    },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  async tick(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    const { backend } = this.o;
    try {
      await backend.withJobLock(JOB_LOCK, async () => {
        await backend.expireSessions();
        await backend.expireCeremonies();
        await backend.cleanupSessions(this.o.retentionDays);
        // A minute of slack for clocks of other coordinators a little behind this one's.
        await backend.cleanupRateLimits(Date.now() - 60_000);
        const now = this.now();
        if (now - this.maintainedAt >= this.slowEveryMs()) {
          this.maintainedAt = now;
          // Its own failure: the rest of the tick (claims, publishing, gauges) goes on.
          await backend.maintainTables().catch((e: unknown) => {
            this.o.log?.warn({ err: e instanceof Error ? e.message : 'error' }, 'table maintenance failed');
          });
        }
      });
      // Stalled sessions (their coordinator died): claimed here by one coordinator only.
      const claimed = await backend.claimStaleSessions(
        this.o.instanceId,
        this.o.resumeAfterMs,
        this.o.resumeAfterMs,
        50,
      );
      for (const s of claimed) {
        if (!this.o.sessions.isDriving(s.sessionId)) this.o.sessions.drive(s.tenantId, s.sessionId);
      }
      await this.o.publisher?.runDue();
      await this.o.refresh?.runDue();
      await this.o.webhooks?.runDue();
      const now = this.now();
      const all = now - this.countedAllAt >= this.slowEveryMs();
      const counts = await backend.countSessionsByStatus({ live: !all });
      if (all) this.countedAllAt = now;
      for (const [status, n] of Object.entries(counts)) this.o.metrics.sessionsByStatus.set({ status }, n);
      await this.refreshSignerGauges();
      await this.o.registry.probeAll();
    } catch (e) {
      this.o.log?.warn({ err: e instanceof Error ? e.message : 'error' }, 'job tick failed');
    } finally {
      this.running = false;
    }
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private slowEveryMs(): number {
    return this.o.maintainEveryMs ?? MAINTAIN_EVERY_MS;
  }

  /** floe_signer_quarantined: one series per registered signer (removed signers drop out). */
  private async refreshSignerGauges(): Promise<void> {
    const signers = await this.o.backend.listSigners();
    const g = this.o.metrics.signerQuarantined;
    g.reset();
    for (const s of signers) g.set({ signer: s.id }, s.quarantined ? 1 : 0);
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }
}
