/**
 * The signer's HTTP adapter (fastify): coordinators only. Every request must carry a valid
 * envelope (DESIGN §5) from an allowlisted coordinator; every answer to such a request,
 * refusals included, is signed by this node's identity key and bound to the request it
 * answers. A request whose envelope does not verify gets an unsigned problem document: it
 * proves nothing about who sent it, so nothing this node signs may be bound to it.
 * `GET /healthz` (no auth, no secrets) and `GET /metrics` (Prometheus; loopback only, or a
 * bearer token, or a separate listener: see {@link MetricsAccess}) are unsigned.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { NodeIdentity } from '../crypto/identity.js';
import { ENVELOPE_HEADER, type EnvelopeHeader, encodeEnvelope, openEnvelope } from '../protocol/envelope.js';
import { FloeError, PROBLEM_CONTENT_TYPE, problemOf, toProblem } from '../protocol/errors.js';
import { sealResponse } from '../protocol/exchange.js';
import {
  type MessageSpec,
  type RequestOf,
  type ResponseOf,
  SIGNER_MESSAGES,
  type SignerMessageName,
} from '../protocol/messages/index.js';
import { ReplayGuard } from '../protocol/replay.js';
import { parseWith } from '../protocol/schema.js';
import type { CeremonyParticipant } from './ceremony.js';
import type { EcdhResponder } from './ecdh.js';
import type { SigningEngine } from './engine.js';
import type { KeyFreezes } from './freeze.js';
import type { SignerMetrics } from './metrics.js';
import type { Clock, SignerStore } from './ports.js';
import type { RefreshParticipant } from './refresh.js';
import type { RepairParticipant } from './repair.js';

export const SIGNER_VERSION = '0.1.0';
export const BODY_LIMIT = 512 * 1024;

export interface SignerServerOptions {
  /** What each message does (see {@link signerHandlers}). */
  handlers: SignerHandlers;
  engine: SigningEngine;
  ceremonies: CeremonyParticipant;
  store: SignerStore;
  identity: NodeIdentity;
  /** Coordinator identity keys (x-only hex) allowed to send requests. */
  allowlist: ReadonlySet<string>;
  clock: Clock;
  metrics: SignerMetrics;
  windowMs?: number;
  logger?: FastifyServerOptions['logger'];
  https?: { key: Buffer; cert: Buffer };
  /** Interval of the expiry sweep; default 5 s. */
  sweepMs?: number;
  /**
   * Who may read `GET /metrics` here. Default: loopback peers only. `false`: not served on
   * this server (it has its own listener, {@link buildMetricsServer}).
   */
  metricsAccess?: MetricsAccess | false;
}

/**
 * Access to `/metrics`. Without a token, only peers on a loopback address (127.0.0.0/8, ::1,
 * also IPv4-mapped) are answered, others get 403 `forbidden`. With a token, any address that
 * presents `Authorization: Bearer <token>`, and nothing else (loopback included) — others get
 * 401 `unauthorized`. On a separate metrics listener (`metrics_listen`) `open` serves everyone
 * who can reach it, unless a token is configured.
 */
export interface MetricsAccess {
  token?: string;
  open?: boolean;
}

const LOOPBACK_V4 = /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/;

/** The socket's peer address (never a forwarded header) is a loopback one. */
export function isLoopback(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.toLowerCase().startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || LOOPBACK_V4.test(a);
}

/** A guard for `/metrics`: true to answer; false once the refusal has been sent. */
function metricsGuard(access: MetricsAccess): (req: FastifyRequest, reply: FastifyReply) => boolean {
  // Only a digest of the token is kept; comparing digests is constant time and length-blind.
  const want = access.token === undefined ? undefined : createHash('sha256').update(access.token).digest();
  return (req, reply) => {
    if (want) {
      const auth = req.headers.authorization;
      const m = typeof auth === 'string' ? /^bearer +(.+)$/i.exec(auth) : null;
      const got = createHash('sha256')
        .update(m?.[1] ?? '')
        .digest();
      if (m && timingSafeEqual(got, want)) return true;
      reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="floe-metrics"')
        .type(PROBLEM_CONTENT_TYPE)
        .send(JSON.stringify(problemOf('unauthorized', 'metrics need the bearer token')));
      return false;
    }
    if (access.open || isLoopback(req.socket.remoteAddress)) return true;
    reply
      .code(403)
      .type(PROBLEM_CONTENT_TYPE)
      .send(
        JSON.stringify(
          problemOf(
            'forbidden',
            'metrics are served to loopback peers only (see metrics_token_file, metrics_listen)',
          ),
        ),
      );
    return false;
  };
}

interface MetricsSources {
  engine: SigningEngine;
  ceremonies: CeremonyParticipant;
  store: SignerStore;
  identity: NodeIdentity;
  metrics: SignerMetrics;
}

function updateGauges(o: MetricsSources): void {
  o.metrics.liveAttempts.set(o.engine.liveAttempts);
  o.metrics.fencedSessions.set(o.engine.fencedSessions);
  o.metrics.liveCeremonies.set(o.ceremonies.liveCeremonies);
}

function healthRoute(app: FastifyInstance, o: MetricsSources): void {
  app.get('/healthz', async () => ({
    status: 'ok',
    role: 'signer',
    identity: o.identity.publicKeyHex,
    version: SIGNER_VERSION,
  }));
}

function metricsRoute(app: FastifyInstance, o: MetricsSources, access: MetricsAccess): void {
  const allowed = metricsGuard(access);
  app.get('/metrics', async (req, reply) => {
    if (!allowed(req, reply)) return reply;
    updateGauges(o);
    o.metrics.keys.set(o.store.countKeys());
    reply.type(o.metrics.registry.contentType);
    return o.metrics.registry.metrics();
  });
}

function problemHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((_req, reply) => {
    reply
      .code(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problemOf('not_found', 'no such endpoint')));
  });
  app.setErrorHandler((err, _req, reply) => {
    // Body too large, bad content, etc. Never echo request data.
    const code =
      (err as { statusCode?: number }).statusCode === 413 ? 'payload_too_large' : 'invalid_request';
    reply
      .code(code === 'payload_too_large' ? 413 : 400)
      .type(PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problemOf(code, 'request refused')));
  });
}

/**
 * The separate metrics listener (`metrics_listen`): `/metrics` and `/healthz` only, plain
 * HTTP, for an operator who binds it to a private interface. No request logging (scrapes).
 */
export async function buildMetricsServer(
  o: MetricsSources & { access: MetricsAccess; logger?: FastifyServerOptions['logger'] },
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logger ?? false,
    logController: new LogController({ disableRequestLogging: true }),
  } as FastifyServerOptions);
  healthRoute(app, o);
  metricsRoute(app, o, o.access);
  problemHandlers(app);
  return app;
}

/** One function per signer message: the table the HTTP adapter dispatches to. */
export type SignerHandlers = {
  [K in SignerMessageName]: (
    body: RequestOf<K>,
  ) => K extends AsyncSignerMessage ? ResponseOf<K> | Promise<ResponseOf<K>> : ResponseOf<K>;
};
/** Messages whose handler may answer later: a deterministic DKG round 1 asks the HSM first. */
export type AsyncSignerMessage = 'dkgRound1';

/** The production handler table: the engine (DESIGN §4) and the ceremonies (DESIGN §8). */
export function signerHandlers(o: {
  engine: SigningEngine;
  ceremonies: CeremonyParticipant;
  /** Share refresh (src/signer/refresh.ts). */
  refresh: RefreshParticipant;
  /** Share repair (src/signer/repair.ts). */
  repair: RepairParticipant;
  store: SignerStore;
  identity: NodeIdentity;
  /** Threshold ECDH (src/signer/ecdh.ts). */
  ecdh: EcdhResponder;
  /** The kill switch (src/signer/freeze.ts); without it, every operator instruction is refused. */
  freezes?: KeyFreezes;
}): SignerHandlers {
  // A frozen key (o.freezes): nothing opens, no share and no ECDH value leaves this node.
  return {
    nodeInfo: () => ({
      identity: o.identity.publicKeyHex,
      version: SIGNER_VERSION,
      keys: o.store.countKeys(),
      live_attempts: o.engine.liveAttempts,
    }),
    dkgRound1: (b) => (b.deterministic ? o.ceremonies.dkgRound1Deterministic(b) : o.ceremonies.dkgRound1(b)),
    dkgRound2: (b) => o.ceremonies.dkgRound2(b),
    dkgRound3: (b) => o.ceremonies.dkgRound3(b),
    dkgCertify: (b) => o.ceremonies.dkgCertify(b),
    dkgAbort: (b) => o.ceremonies.dkgAbort(b),
    keyImport: (b) => o.ceremonies.importKey(b),
    keyImportConfirm: (b) => o.ceremonies.confirmImport(b),
    keyImportAbort: (b) => o.ceremonies.abortImport(b),
    signOpen: (b) => {
      o.freezes?.check(b.key_id);
      return o.engine.open(b);
    },
    signRound2: (b) => {
      o.freezes?.check(b.key_id);
      return o.engine.round2(b);
    },
    signOpenBatch: (b) => {
      for (const i of b.items) o.freezes?.check(i.key_id);
      return o.engine.openBatch(b);
    },
    signRound2Batch: (b) => {
      for (const i of b.items) o.freezes?.check(i.key_id);
      return o.engine.round2Batch(b);
    },
    signAbort: (b) => o.engine.abort(b),
    keyApprovalPolicy: (b) => o.ceremonies.changeApprovalPolicy(b),
    ecdhShare: (b) => {
      o.freezes?.check(b.key_id);
      return o.ecdh.share(b);
    },
    refreshRound1: (b) => o.refresh.round1(b),
    refreshRound2: (b) => o.refresh.round2(b),
    refreshRound3: (b) => o.refresh.round3(b),
    refreshCommit: (b) => o.refresh.commit(b),
    refreshAbort: (b) => o.refresh.abort(b),
    repairHelp: (b) => o.repair.help(b),
    repairCombine: (b) => o.repair.combine(b),
    repairEnroll: (b) => o.repair.enroll(b),
    repairCommit: (b) => o.repair.commit(b),
    repairAbort: (b) => o.repair.abort(b),
    keyFreeze: (b) => {
      if (!o.freezes) throw new FloeError('operator_not_pinned', 'this signer pins no operator key');
      return o.freezes.apply(b);
    },
  };
}

export async function buildSignerServer(o: SignerServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    logger: o.logger ?? false,
    ...(o.https ? { https: o.https } : {}),
  } as FastifyServerOptions);
  const replay = new ReplayGuard((o.windowMs ?? 60_000) * 2);
  /**
   * Replays across a restart: the replay guard is memory only, so the process before this one
   * may have accepted an envelope that is still inside the ±60 s window. Refusing envelopes
   * stamped before this process started closes that: every envelope accepted from now on was
   * stamped after the start, when the previous process was already gone, so it cannot have
   * been seen by it — provided a sender does not stamp ahead of this node's clock. A
   * coordinator whose clock runs s ahead of ours leaves the envelopes it sent in the last s
   * before a crash (minus the restart time) replayable once, as before; a replay gains
   * nothing (docs/design-notes.md, Envelopes), and clocks should be synchronised (NTP).
   * The other side of the trade: a coordinator whose clock runs d behind ours is refused
   * (`envelope_stale`) for the first d after a start and retries. No disk write involved.
   */
  const startedAt = o.clock.now();

  // Keep the exact body bytes: the envelope signs their hash.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const handlers = o.handlers;
  const self = o.identity.publicKeyHex;

  const sources: MetricsSources = o;

  for (const [name, spec] of Object.entries(SIGNER_MESSAGES) as [SignerMessageName, MessageSpec][]) {
    app.post(spec.path, async (req, reply) => {
      const started = process.hrtime.bigint();
      const raw = typeof req.body === 'string' ? req.body : '';
      let header: EnvelopeHeader | undefined;
      let text: string;
      let status = 200;
      try {
        if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/json') {
          throw new FloeError('unsupported_media_type', 'expected application/json');
        }
        header = openEnvelope(req.headers[ENVELOPE_HEADER], {
          body: raw,
          self,
          isAllowedSender: (from) => o.allowlist.has(from),
          type: spec.type,
          now: o.clock.now(),
          replay,
          notBefore: startedAt,
          ...(o.windowMs === undefined ? {} : { windowMs: o.windowMs }),
        });
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          throw new FloeError('invalid_request', 'body is not JSON');
        }
        const body = parseWith(spec.request, json, spec.type);
        let result = (handlers[name] as (b: unknown) => unknown)(body);
        if (result instanceof Promise) result = await result;
        text = JSON.stringify(parseWith(spec.response, result, `${spec.type} response`));
        o.metrics.requests.inc({ type: spec.type, outcome: 'ok' });
      } catch (e) {
        const p = toProblem(e);
        status = p.status;
        text = JSON.stringify(p);
        o.metrics.requests.inc({ type: spec.type, outcome: 'refused' });
        o.metrics.refusals.inc({ code: p.code });
        if (p.code === 'internal')
          req.log.error({ err: e instanceof Error ? e.name : 'unknown' }, 'internal error');
      }
      updateGauges(sources);
      o.metrics.latency.observe({ type: spec.type }, Number(process.hrtime.bigint() - started) / 1e9);
      reply.code(status).type(status === 200 ? 'application/json' : PROBLEM_CONTENT_TYPE);
      // Signed only when the envelope verified (`header` is set only then): a refusal of a
      // forged, replayed, stale, mis-addressed or malformed request stays unsigned, or anyone
      // on the path could make this node sign refusals addressed to a coordinator, which
      // would count them against it. Refusals of authenticated requests are signed.
      if (header) {
        const env = sealResponse(spec.type, text, {
          identity: o.identity,
          to: header.from,
          re: header.nonce,
          now: o.clock.now(),
        });
        reply.header(ENVELOPE_HEADER, encodeEnvelope(env));
      }
      return reply.send(text);
    });
  }

  healthRoute(app, sources);
  if (o.metricsAccess !== false) metricsRoute(app, sources, o.metricsAccess ?? {});
  problemHandlers(app);

  const timer = setInterval(() => {
    o.engine.sweep();
    o.ceremonies.sweep();
    updateGauges(sources);
  }, o.sweepMs ?? 5000);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    o.engine.wipeAll();
    o.ceremonies.wipeAll();
  });
  return app;
}
