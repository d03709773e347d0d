/**
 * `npm run chaos -- --sessions N`: a fault-injection run (a tool, not a test).
 *
 * A cluster — the coordinator and the signers each a child process — gets a DKG key, then a
 * few concurrent clients ask it for N signatures (POST /v1/sessions with an Idempotency-Key,
 * retried across outages, then polled until terminal) while signers and the coordinator are
 * kill -9'd at random moments and restarted on the same ports. After the load, in-flight
 * sessions are left to settle (the coordinator resumes stalled sessions; the session TTL is
 * set low so that a session that cannot finish expires instead of waiting ten minutes), every
 * process is stopped, and the invariants of bench/chaos-checks.ts are checked over the
 * coordinator's database and every signer's marker table.
 *
 * With --byzantine FAULT one signer (the first) is the test harness's byzantine signer with FAULT (`all`: all
 * four at once); the run then also checks that it was blamed (fault count, culprits in the
 * audit log) and that no honest member ever was.
 *
 * The LAST line printed is the summary:
 *   chaos: sessions=N completed=C failed=F not_terminal=0 nonce_reuse=0 double_release=0 invalid_signatures=0
 * and the exit code is 1 when any of the last four counts (or the byzantine check) is not 0.
 *
 * Options: --sessions N (500)  --clients K (4)  --signers S (3; 4 with --byzantine)
 *   --threshold T (2)  --kills K (one per ~40 sessions, at least 3)  --byzantine FAULT|all
 *   --database pglite|postgres|URL (pglite)  --seed S  --ttl SECONDS (60)
 *   --quarantine-after N (3, the coordinator's default)  --keep (keep the cluster's directory)
 *   --coordinators N (1): N coordinator processes on the one Postgres database (needs
 *   --database postgres); clients alternate between them and move to the next when theirs is
 *   down, and a coordinator kill hits one of them at random: the others take over its stalled
 *   sessions through the session leases.
 *   --refreshes R (0): R share refreshes of the key during the load (issue "Key lifecycle");
 *   --repair: one share repair during the load — a member's signer is lost for good and a spare
 *   signer takes its place. Both add to the summary generation_mismatch (a member whose store
 *   holds another generation than the coordinator counts it on), group_key_changed and
 *   open_ceremonies, all 0 on a good run; every signature, before, during and after, verifies
 *   under the key it was created with (invalid_signatures), so none mixed two generations.
 *
 * --quarantine-after: faults (refusals, bad shares or commitments, nonce reuse) after which the
 * coordinator quarantines a signer. Unreachable signers (the kills) do not count towards it, so
 * honest signers that are killed and restarted keep signing.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FAULTS, type Fault, SIGNING_FAULTS } from '../test/helpers/byzantine-signer.js';
import {
  type AttemptEvent,
  type CheckResult,
  checkInvariants,
  isTerminal,
  type KeyRow,
  type MarkerRow,
  type NonceRow,
  type SessionRow,
} from './chaos-checks.js';
import {
  type BenchCluster,
  type DatabaseChoice,
  DEFAULT_POSTGRES_URL,
  startBenchCluster,
} from './cluster.js';
import { prng, sleep } from './stats.js';

export type FaultName = Fault;
export { FAULTS };

export interface ChaosOptions {
  sessions: number;
  clients: number;
  signers: number;
  threshold: number;
  kills: number;
  byzantine?: FaultName | 'all';
  database: DatabaseChoice;
  seed: number;
  ttlS: number;
  quarantineAfter: number;
  /** Coordinator processes on the one database (default 1; more need Postgres). */
  coordinators?: number;
  /** How long to wait for in-flight sessions after the load (default ttl + 30 s). */
  settleS?: number;
  /** Share refreshes of the key during the load (default 0). */
  refreshes?: number;
  /**
   * One share repair during the load: a member's signer is killed for good (lost) and a spare
   * signer (started with the cluster, on every roster, not a member) takes its place.
   */
  repair?: boolean;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ChaosReport {
  sessions: number;
  completed: number;
  failed: number;
  not_terminal: number;
  nonce_reuse: number;
  double_release: number;
  invalid_signatures: number;
  checks: CheckResult;
  kills: string[];
  byzantine?: {
    fault: string;
    identifier: number;
    fault_count: number;
    /** Attempts in which it was charged: named a culprit, or charged a fault other than unreachable. */
    blamed_attempts: number;
    /** Attempts whose blame / nonce-reuse audit event names it. */
    culprit_attempts: number;
    /** Its faults by kind, from the coordinator's counters (every coordinator lifetime). */
    faults_by_kind: Record<string, number>;
    misblamed: number;
    ok: boolean;
  };
  /** With refreshes or a repair: what they did, and the checks over share generations. */
  lifecycle?: {
    /** Each refresh's answer (`completed`, `failed`, …), counted. */
    refreshes: Record<string, number>;
    /** The repair's status after the settle (its answer when no repair was recorded), `none` without one. */
    repair: string;
    /** Members whose signer store holds another generation than the coordinator recorded for them. */
    generation_mismatch: number;
    /** The key's public key at the end differs from the one it was created with. */
    group_key_changed: number;
    /** Refreshes or repairs still open after the settle. */
    open: number;
  };
  /** The summary line (printed last). */
  summary: string;
  ok: boolean;
}

const NON_TERMINAL = ['pending', 'nonce_collection', 'signing', 'aggregating'];

interface SqliteDb {
  prepare(sql: string): { all(): unknown[] };
  close(): void;
}
type SqliteCtor = new (file: string, o?: { readonly?: boolean; fileMustExist?: boolean }) => SqliteDb;
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as SqliteCtor;

/** One HTTP call to coordinator `at` (0: the first) with a timeout; throws on transport errors. */
async function call(
  c: BenchCluster,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
  at = 0,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${c.urls[at] ?? c.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${c.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

/**
 * The coordinator's signer-fault counters (floe_signer_faults_total{signer, fault}) live in
 * its memory and restart at zero with it, so the run adds up the last reading of every
 * coordinator lifetime: read every second, right before each kill and before the final stop.
 */
class FaultTally {
  private readonly done = new Map<string, number>();
  private current = new Map<string, number>();

  constructor(private readonly at = 0) {}

  async read(c: BenchCluster): Promise<void> {
    try {
      const r = await call(c, 'GET', '/metrics', undefined, {}, 3000, this.at);
      const next = new Map<string, number>();
      for (const line of String(r.body).split('\n')) {
        const m = /^floe_signer_faults_total\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
        if (!m) continue;
        const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        next.set(`${labels.signer}|${labels.fault}`, Number(m[2]));
      }
      this.current = next;
    } catch {
      // down or restarting: keep the last reading of this lifetime
    }
  }

  /** The coordinator is about to die: bank this lifetime's counts. */
  bank(): void {
    for (const [k, v] of this.current) this.done.set(k, (this.done.get(k) ?? 0) + v);
    this.current = new Map();
  }

  /** fault kind -> count, for one signer id, added to `out`. */
  of(signerId: string, out: Record<string, number> = {}): Record<string, number> {
    for (const [k, v] of this.done) {
      const [sid, fault] = k.split('|') as [string, string];
      if (sid === signerId && v > 0) out[fault] = (out[fault] ?? 0) + v;
    }
    return out;
  }
}

/** Fault kinds that only a lying signer earns (an honest one that crashed is unreachable or refuses). */
const LYING = ['invalid_share', 'nonce_reuse', 'bad_commitments', 'bad_share'];

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  const rnd = prng(o.seed);
  const byzIndex = 0;
  const faults = o.byzantine
    ? { [byzIndex]: o.byzantine === 'all' ? SIGNING_FAULTS.join(',') : o.byzantine }
    : undefined;
  const ttlS = o.ttlS;
  const coordinators = o.coordinators ?? 1;
  if (coordinators > 1 && o.database.kind !== 'postgres') {
    throw new Error('--coordinators above 1 needs --database postgres (PGlite serves one process)');
  }
  const lifecycleRun = (o.refreshes ?? 0) > 0 || Boolean(o.repair);
  const spareIndex = o.repair ? o.signers : -1;
  const c = await startBenchCluster({
    signers: o.signers + (o.repair ? 1 : 0),
    database: o.database,
    coordinators,
    // Signers restart after every kill: a 2^12 scrypt (the stores record it) keeps restarts
    // quick; the key derivation's cost is not what chaos is about.
    scryptN: 1 << 12,
    ...(faults ? { faults } : {}),
    coordinatorConfig: {
      session_ttl_s: ttlS,
      round_timeout_ms: 3000,
      resume_after_ms: 1000,
      job_interval_ms: 250,
      quarantine_after: o.quarantineAfter,
      // An undecided refresh or repair whose coordinator died fails soon, so the next can start.
      ...(lifecycleRun ? { ceremony_ttl_s: 20 } : {}),
      // Every member that answers ranks as equally fast, so the random spread puts the byzantine
      // one in about half of the attempts: ranked by its first latencies (a slow answer on a busy
      // machine), it could be left out of every attempt while the others answer, and never caught.
      ...(o.byzantine ? { latency_bucket_ms: 3_600_000 } : {}),
    },
  });
  const kills: string[] = [];
  let reader: NodeJS.Timeout | undefined;
  try {
    const signerIds = await c.registerSigners();
    const key = await c.createKey(o.threshold, o.repair ? signerIds.slice(0, o.signers) : undefined);
    log(
      `chaos: ${coordinators === 1 ? 'coordinator' : `${coordinators} coordinators`} + ${o.signers} signers (processes), key ${o.threshold}-of-${o.signers} (DKG), ` +
        `database ${o.database.kind}, ${o.clients} clients, ${o.sessions} sessions, ${o.kills} kills, seed ${o.seed}` +
        (o.byzantine ? `, byzantine signer 1: ${faults![byzIndex]}` : ''),
    );

    // ------------------------------------------------------------ load
    const runId = randomBytes(4).toString('hex');
    const clientSignatures = new Map<string, string>();
    const clientErrors: string[] = [];
    let started = 0;
    let finished = 0;
    let loadDone = false;
    const giveUpMs = (ttlS + 20) * 1000;

    const oneSession = async (i: number) => {
      // Sessions alternate between the coordinators; a client whose coordinator is down goes on
      // with the next one (same Idempotency-Key, same session).
      let at = i % coordinators;
      const next = () => {
        at = (at + 1) % coordinators;
      };
      const message = randomBytes(32).toString('hex');
      const idem = `chaos-${runId}-${i}`;
      const deadline = Date.now() + giveUpMs;
      let s: any;
      while (!s) {
        try {
          const r = await call(
            c,
            'POST',
            '/v1/sessions',
            { key_id: key.id, message, wait: 15_000 },
            { 'idempotency-key': idem },
            30_000,
            at,
          );
          if ([200, 201, 202].includes(r.status)) s = r.body;
          else if (r.status < 500 && r.status !== 429) {
            clientErrors.push(`POST ${r.status} ${r.body?.code ?? ''}`);
            return;
          }
        } catch {
          // coordinator down or restarting: retry with the same Idempotency-Key
          next();
        }
        if (!s) {
          if (Date.now() > deadline) {
            clientErrors.push('session never created');
            return;
          }
          await sleep(250);
        }
      }
      while (!isTerminal(s.status) && Date.now() < deadline) {
        try {
          const r = await call(c, 'GET', `/v1/sessions/${s.id}?wait=10000`, undefined, {}, 30_000, at);
          if (r.status === 200) s = r.body;
          else await sleep(250);
        } catch {
          next();
          await sleep(250);
        }
      }
      if (s.status === 'completed') clientSignatures.set(s.id, String(s.signature));
    };

    // Kills fire when the load reaches their session number; a client does not start a
    // session past a kill point whose kill has not fired yet, so every kill lands in the load.
    const points = Array.from({ length: o.kills }, () => Math.floor(o.sessions * (0.1 + 0.75 * rnd()))).sort(
      (a, b) => a - b,
    );
    const fired = points.map(() => false);
    const clients = Array.from({ length: o.clients }, async () => {
      for (;;) {
        while (points.some((p, k) => !fired[k] && p < started)) await sleep(10);
        if (started >= o.sessions) return;
        const i = started++;
        await oneSession(i);
        finished++;
      }
    });

    // ------------------------------------------------------------ kills
    // The byzantine signer is never killed, so that its faults are its lies, not its restarts.
    const killable = Array.from({ length: o.signers }, (_, i) => i).filter(
      (i) => !o.byzantine || i !== byzIndex,
    );
    const anySigner = () => killable[Math.floor(rnd() * killable.length)]!;
    // After a repair the lost member's kills hit the signer that took its place.
    let lostIndex = -1;
    let repaired = false;
    const victimNow = (v: number) => (v === lostIndex ? (repaired ? spareIndex : -1) : v);
    const victims: (number | 'coordinator')[] = points.map(() =>
      rnd() < 1 / 3 ? 'coordinator' : anySigner(),
    );
    if (o.kills >= 2) {
      // every run with two kills or more kills the coordinator and a signer at least once
      const ci = Math.floor(rnd() * o.kills);
      victims[ci] = 'coordinator';
      if (!victims.some((v) => v !== 'coordinator')) victims[(ci + 1) % o.kills] = anySigner();
    }
    // Which coordinator a coordinator kill hits (drawn only with several, so that a seed replays
    // the same one-coordinator run as before).
    const coordinatorOf = points.map(() => (coordinators > 1 ? Math.floor(rnd() * coordinators) : 0));
    const tallies = Array.from({ length: coordinators }, (_, k) => new FaultTally(k));
    const faultsOf = (signerId: string) => {
      const out: Record<string, number> = {};
      for (const t of tallies) t.of(signerId, out);
      return out;
    };
    reader = setInterval(() => void Promise.all(tallies.map((t) => t.read(c))), 1000);
    const t0 = Date.now();
    let killerError: unknown;
    const killer = (async () => {
      for (const [k, point] of points.entries()) {
        while (started < point && !loadDone) await sleep(10);
        await sleep(rnd() * 400); // land somewhere inside a round
        const v = victims[k]!;
        const down = Math.floor(rnd() * 1500);
        const at = ((Date.now() - t0) / 1000).toFixed(1);
        const ts = Date.now();
        const ck = coordinatorOf[k]!;
        const sv = v === 'coordinator' ? -1 : victimNow(v);
        if (v !== 'coordinator' && sv < 0) {
          // the lost signer, not yet replaced: nothing to kill
          fired[k] = true;
          continue;
        }
        if (v === 'coordinator') {
          await tallies[ck]!.read(c);
          await c.killCoordinatorAt(ck);
          tallies[ck]!.bank();
        } else await c.killSigner(sv);
        fired[k] = true;
        await sleep(down);
        if (v === 'coordinator') await c.startCoordinatorAt(ck);
        else if (sv !== lostIndex) await c.startSigner(sv); // a signer lost meanwhile stays down
        const what =
          v === 'coordinator'
            ? coordinators > 1
              ? `coordinator ${ck + 1}`
              : 'coordinator'
            : `signer ${sv + 1}`;
        kills.push(
          `${what} at ${at} s (session ${point}, back after ${((Date.now() - ts) / 1000).toFixed(1)} s)`,
        );
      }
    })().catch((e) => {
      // e.g. a process that does not come back: release the clients, then report it
      killerError = e;
      fired.fill(true);
    });
    // ------------------------------------------------------------ refreshes and a repair
    const refreshOutcomes: Record<string, number> = {};
    let repairOutcome = o.repair ? 'not run' : 'none';
    const lifecycle = (async () => {
      if (!lifecycleRun) return;
      const plan: { at: number; what: 'refresh' | 'repair' }[] = [
        ...Array.from({ length: o.refreshes ?? 0 }, () => ({
          at: Math.floor(o.sessions * (0.1 + 0.8 * rnd())),
          what: 'refresh' as const,
        })),
        ...(o.repair ? [{ at: Math.floor(o.sessions * 0.4), what: 'repair' as const }] : []),
      ].sort((a, b) => a.at - b.at);
      /** One ceremony call, again across coordinator outages and while another ceremony is open. */
      const ceremony = async (path: string, body: unknown): Promise<string> => {
        const deadline = Date.now() + 120_000;
        for (let at = 0; Date.now() < deadline; at = (at + 1) % coordinators) {
          try {
            const r = await call(c, 'POST', path, body, {}, 90_000, at);
            if (r.status === 200 || r.status === 202) return String(r.body.status);
            if (r.status !== 409 && r.status < 500) return `refused:${r.body?.code ?? r.status}`;
          } catch {
            // coordinator down: again on the next one
          }
          await sleep(1000);
        }
        return 'gave_up';
      };
      for (const step of plan) {
        while (started < step.at && !loadDone) await sleep(20);
        if (step.what === 'refresh') {
          const out = await ceremony(`/v1/keys/${key.id}/refresh`, { wait: 60_000 });
          refreshOutcomes[out] = (refreshOutcomes[out] ?? 0) + 1;
          log(`chaos: refresh → ${out}`);
          continue;
        }
        // The repair: a member (never the byzantine one) is lost for good.
        lostIndex = killable[Math.floor(rnd() * killable.length)]!;
        await c.killSigner(lostIndex);
        const spareId = signerIds[spareIndex]!;
        for (let tries = 0; tries < 10; tries++) {
          repairOutcome = await ceremony(`/v1/keys/${key.id}/repair`, {
            identifier: lostIndex + 1,
            signer: spareId,
            wait: 60_000,
          });
          if (repairOutcome === 'completed' || repairOutcome === 'committing') break;
          await sleep(1000);
        }
        repaired = repairOutcome === 'completed' || repairOutcome === 'committing';
        log(`chaos: repair of member ${lostIndex + 1} onto signer ${spareIndex + 1} → ${repairOutcome}`);
      }
    })();
    await Promise.all(clients);
    loadDone = true;
    await lifecycle;
    await killer;
    if (killerError) throw killerError;
    const loadS = (Date.now() - t0) / 1000;
    log(
      `chaos: load done in ${loadS.toFixed(1)} s; ${finished} sessions handled by clients; kills: ${kills.length ? kills.join('; ') : 'none'}`,
    );

    // ------------------------------------------------------------ settle
    const settleDeadline = Date.now() + (o.settleS ?? ttlS + 30) * 1000;
    let live = -1;
    while (Date.now() < settleDeadline) {
      try {
        live = 0;
        for (const st of NON_TERMINAL) {
          const r = await call(c, 'GET', `/v1/sessions?status=${st}&limit=500`);
          live += r.status === 200 ? r.body.items.length : 1;
        }
        if (lifecycleRun && live === 0) {
          for (const kind of ['refreshes', 'repairs']) {
            const r = await call(c, 'GET', `/v1/keys/${key.id}/${kind}`);
            live +=
              r.status === 200
                ? r.body.items.filter((x: any) => !['completed', 'failed'].includes(x.status)).length
                : 1;
          }
        }
        if (live === 0) break;
      } catch {
        live = -1;
      }
      await sleep(1000);
    }
    log(
      `chaos: settled after ${((Date.now() - t0) / 1000 - loadS).toFixed(1)} s (${live === 0 ? 'no session in flight' : `${live} still in flight`})`,
    );

    // ------------------------------------------------------------ collect
    clearInterval(reader);
    await Promise.all(tallies.map((t) => t.read(c)));
    await c.stopCoordinator();
    for (const t of tallies) t.bank();
    await c.stopSigners();
    const markers: MarkerRow[] = [];
    for (const [i, dir] of c.signerDirs.entries()) {
      const db = new Sqlite(join(dir, 'signer.db'), { readonly: true, fileMustExist: true });
      try {
        const rows = db
          .prepare('SELECT key_id, session_id, attempt_id, identifier, message_digest FROM markers')
          .all() as Omit<MarkerRow, 'store'>[];
        for (const r of rows) markers.push({ store: i + 1, ...r });
      } finally {
        db.close();
      }
    }
    // Each signer's share generation of the key (the lost signer's store is left out).
    const storeGenerations = new Map<string, number>();
    for (const [i, dir] of c.signerDirs.entries()) {
      if (!lifecycleRun || i === lostIndex) continue;
      const sdb = new Sqlite(join(dir, 'signer.db'), { readonly: true, fileMustExist: true });
      try {
        const rows = sdb.prepare(`SELECT key_id, generation FROM keys`).all() as {
          key_id: string;
          generation: number;
        }[];
        const row = rows.find((r) => r.key_id === key.id);
        if (row) storeGenerations.set(signerIds[i]!, row.generation);
      } finally {
        sdb.close();
      }
    }
    const db = await c.openDatabase();
    let finalKey:
      | {
          generation: number;
          x_only_public_key: string;
          members: { signer_id: string; generation?: number }[];
        }
      | undefined;
    let openCeremonies = 0;
    let sessions: SessionRow[];
    let nonces: NonceRow[];
    let attempts: AttemptEvent[];
    let keys: KeyRow[];
    let blames: { kind: string; data: { culprits?: number[] } }[];
    let signers: { id: string; fault_count: number; quarantined: boolean }[];
    try {
      sessions = (
        await db.adminQuery<SessionRow>(
          `SELECT session_id, key_id, message_hash, intent_hash, status, attempt, nonce_commitments, partial_signatures,
                  final_signature, culprits, error_code FROM signing_sessions`,
        )
      ).rows;
      nonces = (
        await db.adminQuery<NonceRow>(
          'SELECT session_id, attempt, participant, nonce_commitment, nonce_used FROM nonce_commitments',
        )
      ).rows;
      attempts = (
        await db.adminQuery<{ subject_id: string; data: { attempt: number; participants: number[] } }>(
          `SELECT subject_id, data FROM audit_events WHERE kind = 'session.attempt'`,
        )
      ).rows.map((r) => ({
        session_id: r.subject_id,
        attempt: r.data.attempt,
        participants: r.data.participants,
      }));
      keys = (
        await db.adminQuery<KeyRow>(
          `SELECT id, threshold, x_only_public_key, members FROM keys WHERE status = 'active'`,
        )
      ).rows;
      blames = (
        await db.adminQuery<{ kind: string; data: { culprits?: number[] } }>(
          `SELECT kind, data FROM audit_events WHERE kind IN ('session.blame', 'session.nonce_reuse')`,
        )
      ).rows;
      signers = (
        await db.adminQuery<{ id: string; fault_count: number; quarantined: boolean }>(
          'SELECT id, fault_count, quarantined FROM signer_nodes',
        )
      ).rows;
      if (lifecycleRun) {
        finalKey = (
          await db.adminQuery<NonNullable<typeof finalKey>>(
            'SELECT generation, x_only_public_key, members FROM keys WHERE id = $1',
            [key.id],
          )
        ).rows[0];
        // The repair as it ended: its answer may have been `committing` (a member missed the
        // commit; the roll-forward job completes it), which the settle above waited out.
        if (o.repair && repairOutcome !== 'not run') {
          const last = (
            await db.adminQuery<{ status: string }>(
              'SELECT status FROM key_repairs WHERE key_id = $1 ORDER BY created_at DESC LIMIT 1',
              [key.id],
            )
          ).rows[0];
          if (last) repairOutcome = last.status;
        }
        openCeremonies = Number(
          (
            await db.adminQuery<{ n: string }>(
              `SELECT (SELECT count(*) FROM key_refreshes WHERE key_id = $1 AND status NOT IN ('completed', 'failed'))
                    + (SELECT count(*) FROM key_repairs WHERE key_id = $1 AND status NOT IN ('completed', 'failed')) AS n`,
              [key.id],
            )
          ).rows[0]?.n ?? 0,
        );
      }
    } finally {
      await db.close();
    }

    // ------------------------------------------------------------ check
    const checks = checkInvariants({
      sessions,
      nonces,
      attempts,
      keys,
      markers,
      clientSignatures,
      maxAttempts: 50,
    });
    const count = (pred: (s: SessionRow) => boolean) => sessions.filter(pred).length;
    const completed = count((s) => s.status === 'completed');
    const failed = count((s) => s.status === 'failed' || s.status === 'expired');
    const notTerminal = count((s) => !isTerminal(s.status));
    const codes = new Map<string, number>();
    for (const s of sessions) {
      if (s.status === 'failed' || s.status === 'expired') {
        const k = `${s.status}:${s.error_code ?? '?'}`;
        codes.set(k, (codes.get(k) ?? 0) + 1);
      }
    }
    const attemptsHist = new Map<number, number>();
    for (const s of sessions) attemptsHist.set(s.attempt, (attemptsHist.get(s.attempt) ?? 0) + 1);
    log(
      `chaos: requested ${o.sessions}, stored ${sessions.length}; client errors ${clientErrors.length}` +
        `${clientErrors.length ? ` (${[...new Set(clientErrors)].slice(0, 3).join(', ')})` : ''}; ` +
        `failures by code: ${codes.size ? [...codes].map(([k, v]) => `${k}=${v}`).join(' ') : 'none'}; ` +
        `attempts per session: ${[...attemptsHist]
          .sort((a, b) => a[0] - b[0])
          .map(([k, v]) => `${k}:${v}`)
          .join(' ')}`,
    );
    const d = checks.detail;
    log(
      `chaos: checked ${nonces.length} nonce commitments (duplicates ${d.duplicate_rows}, points reused in packages ${d.duplicate_points_in_packages}, package commitments without their row ${d.package_commitments_without_row}); ` +
        `${d.markers} signer markers (${d.markers_mapped_by_audit} mapped by audit, ${d.markers_mapped_by_search} by search, orphans ${d.orphan_markers}, message mismatches ${d.marker_message_mismatch}); ` +
        `${d.shares_recorded} recorded shares (without marker ${d.shares_without_marker}); attempt-number conflicts ${d.attempt_number_conflicts}; ` +
        `${d.signatures_checked} signatures verified (noble + libsecp256k1)`,
    );
    const kinds = (id: string) =>
      Object.entries(faultsOf(id))
        .map(([k, v]) => `${k}:${v}`)
        .join(',');
    log(
      `chaos: signer faults ${[...signers]
        .sort((a, b) => signerIds.indexOf(a.id) - signerIds.indexOf(b.id))
        .map(
          (s) =>
            `${signerIds.indexOf(s.id) + 1}=${s.fault_count}${kinds(s.id) ? `(${kinds(s.id)})` : ''}${s.quarantined ? ' quarantined' : ''}`,
        )
        .join(' ')}`,
    );
    for (const v of checks.violations) log(`chaos: VIOLATION ${v}`);

    let byzantine: ChaosReport['byzantine'];
    if (o.byzantine) {
      const byzId = signerIds[byzIndex]!;
      const member = key.members.find((m: { signer_id: string }) => m.signer_id === byzId);
      const identifier: number = member?.identifier ?? -1;
      const faultCount = signers.find((s) => s.id === byzId)?.fault_count ?? 0;
      const culprit = blames.filter((b) => (b.data.culprits ?? []).includes(identifier)).length;
      const byzKinds = faultsOf(byzId);
      const charged = Object.entries(byzKinds)
        .filter(([k]) => k !== 'unreachable')
        .reduce((n, [, v]) => n + v, 0);
      // honest members named as culprits, or charged with a fault only a liar earns
      const misblamed =
        blames.reduce((n, b) => n + (b.data.culprits ?? []).filter((x) => x !== identifier).length, 0) +
        sessions.reduce((n, s) => n + (s.culprits ?? []).filter((x) => x !== identifier).length, 0) +
        signers
          .filter((s) => s.id !== byzId)
          .reduce((n, s) => n + LYING.reduce((m, k) => m + (faultsOf(s.id)[k] ?? 0), 0), 0);
      const ok = faultCount > 0 && culprit + charged > 0 && misblamed === 0;
      byzantine = {
        fault: faults![byzIndex]!,
        identifier,
        fault_count: faultCount,
        blamed_attempts: Math.max(culprit, charged),
        culprit_attempts: culprit,
        faults_by_kind: byzKinds,
        misblamed,
        ok,
      };
      log(
        `chaos: byzantine signer 1 (member ${identifier}, ${faults![byzIndex]}, never killed): fault_count=${faultCount}, ` +
          `faults by kind ${JSON.stringify(byzKinds)}, named culprit in ${culprit} attempts; ` +
          `honest members blamed: ${misblamed} — ${ok ? 'ok' : 'NOT OK'}`,
      );
    }

    let lifecycleReport: ChaosReport['lifecycle'];
    if (lifecycleRun) {
      // Every member the coordinator counts on a generation holds exactly that one in its store;
      // every completed signature verified under the key above (invalid_signatures), so no
      // signature mixed shares of two generations; the key never changed.
      let mismatch = 0;
      for (const m of finalKey?.members ?? []) {
        const held = storeGenerations.get(m.signer_id);
        if (held === undefined || held !== (m.generation ?? 0)) {
          mismatch++;
          log(
            `chaos: VIOLATION member ${m.signer_id} recorded at generation ${m.generation ?? 0}, its store holds ${held}`,
          );
        }
      }
      const changed = finalKey?.x_only_public_key === key.x_only_public_key ? 0 : 1;
      lifecycleReport = {
        refreshes: refreshOutcomes,
        repair: repairOutcome,
        generation_mismatch: mismatch,
        group_key_changed: changed,
        open: openCeremonies,
      };
      log(
        `chaos: lifecycle: refreshes ${JSON.stringify(refreshOutcomes)}, repair ${repairOutcome}; key at generation ${finalKey?.generation}; ` +
          `open ceremonies ${openCeremonies}; generation mismatches ${mismatch}; group key changed ${changed}`,
      );
    }
    const summary =
      `chaos: sessions=${sessions.length} completed=${completed} failed=${failed} not_terminal=${notTerminal} ` +
      `nonce_reuse=${checks.nonce_reuse} double_release=${checks.double_release} invalid_signatures=${checks.invalid_signatures}` +
      (lifecycleReport
        ? ` generation_mismatch=${lifecycleReport.generation_mismatch} group_key_changed=${lifecycleReport.group_key_changed} open_ceremonies=${lifecycleReport.open}`
        : '');
    const ok =
      (lifecycleReport
        ? lifecycleReport.generation_mismatch === 0 &&
          lifecycleReport.group_key_changed === 0 &&
          lifecycleReport.open === 0
        : true) &&
      notTerminal === 0 &&
      checks.nonce_reuse === 0 &&
      checks.double_release === 0 &&
      checks.invalid_signatures === 0 &&
      (byzantine?.ok ?? true);
    return {
      sessions: sessions.length,
      completed,
      failed,
      not_terminal: notTerminal,
      nonce_reuse: checks.nonce_reuse,
      double_release: checks.double_release,
      invalid_signatures: checks.invalid_signatures,
      checks,
      kills,
      ...(byzantine ? { byzantine } : {}),
      ...(lifecycleReport ? { lifecycle: lifecycleReport } : {}),
      summary,
      ok,
    };
  } finally {
    clearInterval(reader);
    if (o.keep) log(`chaos: cluster kept in ${c.dir}`);
    else await c.close();
  }
}

export function databaseChoice(arg: string | undefined): DatabaseChoice {
  if (!arg || arg === 'pglite') return { kind: 'pglite' };
  const url = arg === 'postgres' ? (process.env.FLOE_TEST_DATABASE_URL ?? DEFAULT_POSTGRES_URL) : arg;
  const u = new URL(url);
  u.pathname = '/postgres';
  return { kind: 'postgres', serverUrl: u.toString() };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '500' },
      clients: { type: 'string', default: '4' },
      signers: { type: 'string' },
      threshold: { type: 'string', default: '2' },
      kills: { type: 'string' },
      byzantine: { type: 'string' },
      database: { type: 'string', default: 'pglite' },
      seed: { type: 'string' },
      ttl: { type: 'string', default: '60' },
      'quarantine-after': { type: 'string', default: '3' },
      coordinators: { type: 'string', default: '1' },
      refreshes: { type: 'string', default: '0' },
      repair: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const byz = values.byzantine as FaultName | 'all' | undefined;
  if (byz && byz !== 'all' && !FAULTS.includes(byz)) {
    throw new Error(`--byzantine: one of ${FAULTS.join(', ')}, all`);
  }
  const sessions = Number(values.sessions);
  const seed = values.seed ? Number(values.seed) : randomBytes(4).readUInt32BE(0);
  const report = await runChaos({
    sessions,
    clients: Number(values.clients),
    signers: Number(values.signers ?? (byz ? 4 : 3)),
    threshold: Number(values.threshold),
    kills: Number(values.kills ?? Math.max(3, Math.round(sessions / 40))),
    ...(byz ? { byzantine: byz } : {}),
    database: databaseChoice(values.database),
    seed,
    ttlS: Number(values.ttl),
    quarantineAfter: Number(values['quarantine-after']),
    coordinators: Number(values.coordinators),
    refreshes: Number(values.refreshes),
    repair: values.repair!,
    keep: values.keep!,
  });
  process.stdout.write(`${report.summary}\n`);
  return report.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`chaos failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.stdout.write('chaos: run failed before the checks (see stderr)\n');
      process.exit(2);
    },
  );
}
