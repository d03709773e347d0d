/** The coordinator's database layer: connection (PGlite | Postgres), migrations, queries. */
export * from './connection.js';
export * from './migrate.js';
export * as audit from './queries/audit.js';
export * as ceremonies from './queries/ceremonies.js';
export * as keys from './queries/keys.js';
export * as nonces from './queries/nonces.js';
export * as sessions from './queries/sessions.js';
export * as signers from './queries/signers.js';
export * as tenants from './queries/tenants.js';
export * as tokens from './queries/tokens.js';
