-- 002: tenants and credentials. Token secrets are never stored: only their SHA-256 (hex).

CREATE TABLE IF NOT EXISTS tenants (
  id          TEXT PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS api_tokens (
  id            TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id     TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  token_sha256  TEXT NOT NULL CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
  role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'requester', 'viewer')),
  label         TEXT NULL,
  created_at    BIGINT NOT NULL,
  expires_at    BIGINT NULL,
  revoked_at    BIGINT NULL,
  last_used_at  BIGINT NULL,
  CONSTRAINT api_tokens_token_sha256_key UNIQUE (token_sha256),
  -- target of composite foreign keys, so that a row can only point inside its own tenant
  CONSTRAINT api_tokens_tenant_id_id_key UNIQUE (tenant_id, id)
);

-- Refresh tokens for JWT sessions. Each use rotates the token (used_at set, a new one issued in
-- the same family); presenting a used token again revokes the whole family.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  id            TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id     TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  token_id      TEXT NOT NULL,
  family_id     TEXT NOT NULL CHECK (length(family_id) BETWEEN 1 AND 128),
  token_sha256  TEXT NOT NULL CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
  created_at    BIGINT NOT NULL,
  expires_at    BIGINT NOT NULL,
  used_at       BIGINT NULL,
  revoked_at    BIGINT NULL,
  CONSTRAINT refresh_tokens_token_sha256_key UNIQUE (token_sha256),
  CONSTRAINT refresh_tokens_token_fkey FOREIGN KEY (tenant_id, token_id)
    REFERENCES api_tokens (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS api_tokens_tenant_created_idx ON api_tokens (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_token_idx ON refresh_tokens (tenant_id, token_id);
