/** Prometheus metrics of the coordinator. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { backendInfo } from '../crypto/backend.js';

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly http = new Counter({
    name: 'floe_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly sessions = new Counter({
    name: 'floe_sessions_finished_total',
    help: 'Signing sessions that reached a terminal state, by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly sessionsByStatus = new Gauge({
    name: 'floe_sessions',
    help: 'Signing sessions in the database, by status (live statuses read at every job tick, the others once a minute)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly roundLatency = new Histogram({
    name: 'floe_round_seconds',
    help: 'Latency of signing rounds (open, sign, aggregate)',
    labelNames: ['round'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly attempts = new Histogram({
    name: 'floe_session_attempts',
    help: 'Attempts per finished session',
    buckets: [1, 2, 3, 4, 5, 8],
    registers: [this.registry],
  });
  readonly signerFaults = new Counter({
    name: 'floe_signer_faults_total',
    help: 'Faults attributed to signers (unreachable, refused, invalid_share, ...)',
    labelNames: ['signer', 'fault'] as const,
    registers: [this.registry],
  });
  readonly signerQuarantined = new Gauge({
    name: 'floe_signer_quarantined',
    help: 'Whether a registered signer is quarantined (1) or not (0), refreshed by the jobs',
    labelNames: ['signer'] as const,
    registers: [this.registry],
  });
  readonly ceremonies = new Counter({
    name: 'floe_ceremonies_total',
    help: 'DKG ceremonies, by outcome',
    labelNames: ['status'] as const,
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
