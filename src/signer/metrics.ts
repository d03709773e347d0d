/** Prometheus metrics of a signer node (no labels carry key material or session secrets). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { backendInfo } from '../crypto/backend.js';

export class SignerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'floe_signer_requests_total',
    help: 'Signed requests handled, by message type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'floe_signer_refusals_total',
    help: 'Requests refused, by stable error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly liveAttempts = new Gauge({
    name: 'floe_signer_live_attempts',
    help: 'Signing attempts holding live nonces',
    registers: [this.registry],
  });
  readonly fencedSessions = new Gauge({
    name: 'floe_signer_fenced_sessions',
    help: 'Sessions past their first attempt whose older attempts are refused (kept an attempt TTL)',
    registers: [this.registry],
  });
  readonly liveCeremonies = new Gauge({
    name: 'floe_signer_live_ceremonies',
    help: 'DKG ceremonies holding secret state',
    registers: [this.registry],
  });
  readonly keys = new Gauge({
    name: 'floe_signer_keys',
    help: 'Key shares held',
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'floe_signer_round_seconds',
    help: 'Handling time by message type',
    labelNames: ['type'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly cryptoBackend = new Gauge({
    name: 'floe_crypto_backend_info',
    help: 'The secp256k1 backend this process runs on (native, wasm or noble), value 1',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  constructor() {
    this.cryptoBackend.set({ backend: backendInfo().name }, 1);
  }
}
