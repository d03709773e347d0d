/**
 * The signer's HTTP adapter (fastify): coordinators only. Every request must carry a valid
 * envelope (DESIGN §5) from an allowlisted coordinator; every response, errors included, is
 * signed by this node's identity key and bound to the request it answers.
 * `GET /healthz` (no auth, no secrets) and `GET /metrics` (Prometheus) are unsigned.
 */

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { NodeIdentity } from '../crypto/identity.js';
import {
  ENVELOPE_HEADER,
  type EnvelopeHeader,
  encodeEnvelope,
  openEnvelope,
  parseEnvelope,
} from '../protocol/envelope.js';
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
import type { SigningEngine } from './engine.js';
import type { SignerMetrics } from './metrics.js';
import type { Clock, SignerStore } from './ports.js';

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
}

/** One function per signer message: the table the HTTP adapter dispatches to. */
export type SignerHandlers = {
  [K in SignerMessageName]: (body: RequestOf<K>) => ResponseOf<K>;
};

/** The production handler table: the engine (DESIGN §4) and the ceremonies (DESIGN §8). */
export function signerHandlers(o: {
  engine: SigningEngine;
  ceremonies: CeremonyParticipant;
  store: SignerStore;
  identity: NodeIdentity;
}): SignerHandlers {
  return {
    nodeInfo: () => ({
      identity: o.identity.publicKeyHex,
      version: SIGNER_VERSION,
      keys: o.store.countKeys(),
      live_attempts: o.engine.liveAttempts,
    }),
    dkgRound1: (b) => o.ceremonies.dkgRound1(b),
    dkgRound2: (b) => o.ceremonies.dkgRound2(b),
    dkgRound3: (b) => o.ceremonies.dkgRound3(b),
    dkgCertify: (b) => o.ceremonies.dkgCertify(b),
    dkgAbort: (b) => o.ceremonies.dkgAbort(b),
    keyImport: (b) => o.ceremonies.importKey(b),
    signOpen: (b) => o.engine.open(b),
    signRound2: (b) => o.engine.round2(b),
    signAbort: (b) => o.engine.abort(b),
  };
}

export async function buildSignerServer(o: SignerServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    logger: o.logger ?? false,
    disableRequestLogging: false,
    ...(o.https ? { https: o.https } : {}),
  } as FastifyServerOptions);
  const replay = new ReplayGuard((o.windowMs ?? 60_000) * 2);

  // Keep the exact body bytes: the envelope signs their hash.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const handlers = o.handlers;
  const self = o.identity.publicKeyHex;

  const updateGauges = () => {
    o.metrics.liveAttempts.set(o.engine.liveAttempts);
    o.metrics.liveCeremonies.set(o.ceremonies.liveCeremonies);
  };

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
          ...(o.windowMs === undefined ? {} : { windowMs: o.windowMs }),
        });
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          throw new FloeError('invalid_request', 'body is not JSON');
        }
        const body = parseWith(spec.request, json, spec.type);
        const result = (handlers[name] as (b: unknown) => unknown)(body);
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
        // Sign the refusal too, when we know who asked (even if the envelope was bad).
        if (!header) {
          try {
            const env = parseEnvelope(req.headers[ENVELOPE_HEADER]);
            header = env;
          } catch {
            header = undefined;
          }
        }
      }
      updateGauges();
      o.metrics.latency.observe({ type: spec.type }, Number(process.hrtime.bigint() - started) / 1e9);
      reply.code(status).type(status === 200 ? 'application/json' : PROBLEM_CONTENT_TYPE);
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

  app.get('/healthz', async () => ({
    status: 'ok',
    role: 'signer',
    identity: self,
    version: SIGNER_VERSION,
  }));
  app.get('/metrics', async (_req, reply) => {
    updateGauges();
    o.metrics.keys.set(o.store.countKeys());
    reply.type(o.metrics.registry.contentType);
    return o.metrics.registry.metrics();
  });
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

  const timer = setInterval(() => {
    o.engine.sweep();
    o.ceremonies.sweep();
    updateGauges();
  }, o.sweepMs ?? 5000);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    o.engine.wipeAll();
    o.ceremonies.wipeAll();
  });
  return app;
}
