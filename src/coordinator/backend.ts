/** Everything the coordinator keeps, in one storage backend (Postgres / PGlite). */
import type { RateLimitHit } from '../db/queries/rate-limits.js';
import type { TenantRow } from '../db/queries/tenants.js';
import type { ApiTokenRecord } from '../domain/records.js';
import type { TokenStore } from './auth/tokens.js';
import type {
  AddressStore,
  ApprovalStore,
  CoordinatorStore,
  JobStore,
  KeyStore,
  ListingStore,
  PublishStore,
  RegistryStore,
  SessionStore,
  TenantStore,
} from './ports.js';

export type TenantRecord = TenantRow;

/** Creating and listing tenants (admins of the system tenant). */
export interface TenantAdminStore {
  /** Creates the tenant and its first API token in one transaction; false if the id is taken. */
  createTenant(t: TenantRecord, firstToken: ApiTokenRecord & { hash: string }): Promise<boolean>;
  /** Every tenant, oldest first. */
  listTenants(): Promise<TenantRecord[]>;
}

/** Rate limits shared by every coordinator of the database (a GCRA per key, see 009_rate_limits.sql). */
export interface RateLimitStore {
  hitRateLimit(key: string, o: { now: number; intervalMs: number; windowMs: number }): Promise<RateLimitHit>;
  /** Deletes keys whose bucket is full again at `now`. */
  cleanupRateLimits(now: number): Promise<number>;
}

export interface Backend
  extends CoordinatorStore,
    SessionStore,
    KeyStore,
    RegistryStore,
    ListingStore,
    TenantStore,
    TenantAdminStore,
    RateLimitStore,
    JobStore,
    TokenStore,
    PublishStore,
    AddressStore,
    ApprovalStore {
  close(): Promise<void>;
  readonly kind: 'pglite' | 'postgres';
}
