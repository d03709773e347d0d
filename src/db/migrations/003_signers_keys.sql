-- 003: signer nodes (global infrastructure, no tenant), keys and DKG ceremonies.

CREATE TABLE IF NOT EXISTS signer_nodes (
  id                   TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  name                 TEXT NULL,
  url                  TEXT NOT NULL,
  identity_pubkey      TEXT NOT NULL CHECK (identity_pubkey ~ '^[0-9a-f]{64}$'), -- x-only, BIP-340
  status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  fault_count          INTEGER NOT NULL DEFAULT 0 CHECK (fault_count >= 0),
  quarantined          BOOLEAN NOT NULL DEFAULT false,
  quarantined_at       BIGINT NULL,
  quarantine_override  BOOLEAN NOT NULL DEFAULT false,
  last_seen_at         BIGINT NULL,
  last_latency_ms      INTEGER NULL CHECK (last_latency_ms >= 0),
  created_at           BIGINT NOT NULL,
  updated_at           BIGINT NOT NULL,
  CONSTRAINT signer_nodes_identity_pubkey_key UNIQUE (identity_pubkey),
  CONSTRAINT valid_quarantine CHECK (NOT quarantined OR quarantined_at IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS keys (
  id                  TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id           TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  label               TEXT NULL,
  threshold           INTEGER NOT NULL,
  n                   INTEGER NOT NULL,
  group_public_key    TEXT NULL CHECK (group_public_key ~ '^0[23][0-9a-f]{64}$'), -- 33-byte compressed
  x_only_public_key   TEXT NULL CHECK (x_only_public_key ~ '^[0-9a-f]{64}$'),
  public_key_package  JSONB NULL,
  members             JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(members) = 'array'),
  origin              TEXT NOT NULL CHECK (origin IN ('dkg', 'dealer', 'derived')),
  tweak               JSONB NULL,
  status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'active', 'failed', 'disabled')),
  created_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL,
  CONSTRAINT keys_tenant_id_id_key UNIQUE (tenant_id, id),
  CONSTRAINT valid_threshold CHECK (threshold >= 1 AND threshold <= n AND n <= 255),
  CONSTRAINT valid_active_key CHECK (
    status <> 'active'
    OR (group_public_key IS NOT NULL AND x_only_public_key IS NOT NULL AND public_key_package IS NOT NULL)
  )
);

CREATE TABLE IF NOT EXISTS dkg_ceremonies (
  id               TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id        TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id           TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (
                     status IN ('pending', 'round1', 'round2', 'round3', 'certifying', 'completed', 'failed')),
  threshold        INTEGER NOT NULL,
  n                INTEGER NOT NULL,
  participants     JSONB NOT NULL CHECK (jsonb_typeof(participants) = 'array'),
  round1           JSONB NULL,
  -- round-2 packages are end-to-end encrypted to their receiving signer; the coordinator
  -- keeps them only to relay them (and to resume after a restart)
  round2           JSONB NULL,
  transcript_hash  TEXT NULL CHECK (transcript_hash ~ '^[0-9a-f]{64}$'),
  certificates     JSONB NULL,
  error_code       TEXT NULL,
  error_message    TEXT NULL,
  culprits         JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(culprits) = 'array'),
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  completed_at     BIGINT NULL,
  failed_at        BIGINT NULL,
  expires_at       BIGINT NOT NULL,
  CONSTRAINT dkg_ceremonies_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id),
  CONSTRAINT valid_threshold CHECK (threshold >= 1 AND threshold <= n AND n <= 255),
  CONSTRAINT valid_completion CHECK (
    status <> 'completed' OR (transcript_hash IS NOT NULL AND completed_at IS NOT NULL)),
  CONSTRAINT valid_failure CHECK (
    status <> 'failed' OR (error_message IS NOT NULL AND failed_at IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS keys_tenant_created_idx ON keys (tenant_id, created_at DESC, id DESC);
-- one active key per group public key within a tenant
CREATE UNIQUE INDEX IF NOT EXISTS keys_tenant_active_pubkey_key
  ON keys (tenant_id, group_public_key) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS dkg_ceremonies_tenant_created_idx
  ON dkg_ceremonies (tenant_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS dkg_ceremonies_key_idx ON dkg_ceremonies (key_id);
CREATE INDEX IF NOT EXISTS dkg_ceremonies_status_idx ON dkg_ceremonies (status);
CREATE INDEX IF NOT EXISTS dkg_ceremonies_expires_idx ON dkg_ceremonies (expires_at)
  WHERE status NOT IN ('completed', 'failed');

-- Key status machine: pending → active | failed; active ⇄ disabled. Identity columns never change.
CREATE OR REPLACE FUNCTION floe_keys_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'keys: id, tenant_id and created_at are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF OLD.status = 'active' AND (NEW.group_public_key IS DISTINCT FROM OLD.group_public_key
     OR NEW.x_only_public_key IS DISTINCT FROM OLD.x_only_public_key) THEN
    RAISE EXCEPTION 'keys: the public key of an activated key is immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status IN ('active', 'failed'))
    OR (OLD.status = 'active' AND NEW.status = 'disabled')
    OR (OLD.status = 'disabled' AND NEW.status = 'active')) THEN
    RAISE EXCEPTION 'keys: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER keys_guard BEFORE UPDATE ON keys
  FOR EACH ROW EXECUTE FUNCTION floe_keys_guard();

-- Ceremony status machine: pending → round1 → round2 → round3 → certifying → completed;
-- failed from any non-terminal status.
CREATE OR REPLACE FUNCTION floe_dkg_ceremonies_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'dkg_ceremonies: id, tenant_id, key_id and created_at are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status = 'round1')
    OR (OLD.status = 'round1' AND NEW.status = 'round2')
    OR (OLD.status = 'round2' AND NEW.status = 'round3')
    OR (OLD.status = 'round3' AND NEW.status = 'certifying')
    OR (OLD.status = 'certifying' AND NEW.status = 'completed')
    OR (OLD.status NOT IN ('completed', 'failed') AND NEW.status = 'failed')) THEN
    RAISE EXCEPTION 'dkg_ceremonies: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER dkg_ceremonies_guard BEFORE UPDATE ON dkg_ceremonies
  FOR EACH ROW EXECUTE FUNCTION floe_dkg_ceremonies_guard();
