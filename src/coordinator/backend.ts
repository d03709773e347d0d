/** Everything the coordinator keeps, in one storage backend (Postgres / PGlite). */
import type { TokenStore } from './auth/tokens.js';
import type {
  CoordinatorStore,
  JobStore,
  KeyStore,
  ListingStore,
  RegistryStore,
  SessionStore,
  TenantStore,
} from './ports.js';

export interface Backend
  extends CoordinatorStore,
    SessionStore,
    KeyStore,
    RegistryStore,
    ListingStore,
    TenantStore,
    JobStore,
    TokenStore {
  close(): Promise<void>;
  readonly kind: 'pglite' | 'postgres';
}
