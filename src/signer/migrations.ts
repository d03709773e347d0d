/**
 * Schema migrations of the signer node's SQLite database. Each migration is applied once,
 * in its own transaction, and recorded in `schema_migrations`. Migrations are append-only:
 * never edit one that has shipped; add the next number instead.
 */
export interface Migration {
  /** Sequence number, starting at 1, without gaps. */
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

const INIT = `
CREATE TABLE meta (
  k TEXT PRIMARY KEY,
  v ANY NOT NULL
) STRICT;

CREATE TABLE keys (
  key_id          TEXT PRIMARY KEY,
  identifier      INTEGER NOT NULL CHECK (identifier BETWEEN 1 AND 255),
  status          TEXT NOT NULL CHECK (status IN ('pending', 'active')),
  origin          TEXT NOT NULL CHECK (origin IN ('dkg', 'dealer')),
  sealed          BLOB NOT NULL,
  transcript_hash BLOB,
  created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE markers (
  key_id         TEXT NOT NULL,
  session_id     TEXT NOT NULL,
  attempt_id     TEXT NOT NULL,
  identifier     INTEGER NOT NULL,
  message_digest TEXT NOT NULL,
  at             INTEGER NOT NULL,
  PRIMARY KEY (key_id, session_id, attempt_id, identifier)
) STRICT;

CREATE TABLE audit (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  at             INTEGER NOT NULL,
  kind           TEXT NOT NULL,
  key_id         TEXT,
  session_id     TEXT,
  attempt_id     TEXT,
  message_digest TEXT,
  detail         TEXT
) STRICT;

CREATE TABLE identity (
  slot       INTEGER PRIMARY KEY CHECK (slot = 1),
  sealed     BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
`;

/**
 * Key rows get a MAC over their clear columns (src/signer/keystore.ts KeyRowMac). SQL cannot
 * compute it (it needs the data key): rows from before this migration are given theirs once,
 * by the first open with the passphrase (SqliteSignerStore), which then marks the store under
 * the data key so that from then on a row without a MAC is refused as tampered.
 */
const KEY_ROW_MAC = `
ALTER TABLE keys ADD COLUMN mac BLOB;
`;

/**
 * The steward approval policy a key's members certified (DESIGN §13): the canonical JSON of its
 * policy state (src/approvals/policy.ts encodePolicyState), NULL for a key without one. Bound
 * by the key row MAC whenever it is set, so it cannot be dropped or changed outside floe.
 */
const APPROVAL_POLICY = `
ALTER TABLE keys ADD COLUMN approval_policy TEXT;
`;

/**
 * The kill switch (src/signer/freeze.ts): per key, the last operator instruction this node
 * applied (freeze or unfreeze, with the operator's signature), so a freeze survives a restart
 * and an older instruction is refused as a replay.
 */
const KEY_FREEZES = `
CREATE TABLE key_freezes (
  key_id     TEXT PRIMARY KEY,
  frozen     INTEGER NOT NULL CHECK (frozen IN (0, 1)),
  type       TEXT NOT NULL CHECK (type IN ('freeze', 'unfreeze')),
  issued_at  INTEGER NOT NULL,
  nonce      TEXT NOT NULL,
  operator   TEXT NOT NULL,
  sig        TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
`;

/**
 * Share refresh (src/signer/refresh.ts): a key row's share generation (0 for the share a key was
 * created with, bound by the row MAC and the sealed record's AAD once above 0), and the new
 * share a refresh derived, kept sealed beside the old one until every member certified it
 * (`commit`) — one row per key, replaced by a later refresh, deleted when committed or aborted.
 * Share repair (src/signer/repair.ts): the identities a repair replaced, per key — revoked: never
 * again a member of that key's ceremonies on this node.
 */
const SHARE_GENERATIONS = `
ALTER TABLE keys ADD COLUMN generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0);

CREATE TABLE key_refreshes (
  key_id       TEXT PRIMARY KEY,
  ceremony_id  TEXT NOT NULL,
  generation   INTEGER NOT NULL CHECK (generation >= 1),
  identifier   INTEGER NOT NULL CHECK (identifier BETWEEN 1 AND 255),
  sealed       BLOB NOT NULL,
  public_hash  BLOB NOT NULL,
  members      TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  mac          BLOB NOT NULL
) STRICT;

CREATE TABLE key_revocations (
  key_id       TEXT NOT NULL,
  identity     TEXT NOT NULL,
  identifier   INTEGER NOT NULL CHECK (identifier BETWEEN 1 AND 255),
  ceremony_id  TEXT NOT NULL,
  revoked_at   INTEGER NOT NULL,
  PRIMARY KEY (key_id, identity)
) STRICT;
`;

export const MIGRATIONS: readonly Migration[] = [
  { id: 1, name: '001_init', sql: INIT },
  { id: 2, name: '002_key_row_mac', sql: KEY_ROW_MAC },
  { id: 3, name: '003_approval_policy', sql: APPROVAL_POLICY },
  { id: 4, name: '004_key_freezes', sql: KEY_FREEZES },
  { id: 5, name: '005_share_generations', sql: SHARE_GENERATIONS },
];

export const SCHEMA_MIGRATIONS_DDL = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
`;
