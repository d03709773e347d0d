/** Starts the address service process (`floe address-service`) from its configuration. */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressServiceConfig } from '../config/address-service.js';
import { splitListen } from '../config/listen.js';
import { buildAddressService } from './app.js';

export interface RunningAddressService {
  app: FastifyInstance;
  url: string;
  coordinatorUrl: string;
  close(): Promise<void>;
}

export async function startAddressService(
  cfg: AddressServiceConfig,
  opts: { logger?: unknown } = {},
): Promise<RunningAddressService> {
  const app = await buildAddressService({
    coordinatorUrl: cfg.coordinator_url,
    rateLimitPerMin: cfg.rate_limit_per_min,
    requestTimeoutMs: cfg.request_timeout_ms,
    ...(cfg.trust_proxy ? { trustProxy: cfg.trust_proxy } : {}),
    logger: (opts.logger as never) ?? { level: cfg.log_level },
    ...(cfg.tls ? { https: { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) } } : {}),
  });
  const { host, port } = splitListen(cfg.listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  const url = `${cfg.tls ? 'https' : 'http'}://${host}:${typeof addr === 'object' && addr ? addr.port : port}`;
  app.log.info({ coordinator_url: cfg.coordinator_url }, 'address service: forwarding address requests');
  return { app, url, coordinatorUrl: cfg.coordinator_url, close: () => app.close() };
}
