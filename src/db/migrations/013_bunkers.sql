-- 013: NIP-46 bunkers (DESIGN §14). A key may have one bunker: a remote signer with its own
-- transport keypair (never the user key), the relays it listens on, the clients it answers,
-- the single-use connect secrets it accepts (SHA-256 only) and the requests it holds for an
-- operator. Every table is a tenant table (row-level security as in 006).
--
-- The remote-signer secret key is stored sealed: AES-256-GCM under a key derived from the
-- coordinator's `bunker.key` (src/coordinator/bunkers/seal.ts), with the tenant, key id and
-- remote-signer pubkey as associated data. `seal_key_id` names the sealing key (a derived
-- fingerprint that reveals nothing about it): only a coordinator holding that key opens the row.
--
-- Several coordinators on one database: exactly one runs a given bunker. It holds the lease
-- (lease_owner, lease_until) and renews it periodically; a lease that ran out is taken over by
-- the next coordinator that claims (floe_claim_bunkers), one UPDATE per claim as in 011.

CREATE TABLE IF NOT EXISTS bunkers (
  tenant_id             TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id                TEXT NOT NULL,
  remote_signer_pubkey  TEXT NOT NULL CHECK (remote_signer_pubkey ~ '^[0-9a-f]{64}$'),
  seal_key_id           TEXT NOT NULL CHECK (seal_key_id ~ '^[0-9a-f]{16}$'),
  sealed_nonce          TEXT NOT NULL CHECK (sealed_nonce ~ '^[0-9a-f]{24}$'),
  -- 32-byte secret key and 16-byte GCM tag
  sealed_secret         TEXT NOT NULL CHECK (sealed_secret ~ '^[0-9a-f]{96}$'),
  relays                JSONB NOT NULL CHECK (
                          jsonb_typeof(relays) = 'array' AND jsonb_array_length(relays) BETWEEN 1 AND 16),
  -- requests matching these permissions (method[:kind]) wait for an operator's approval
  require_approval      JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(require_approval) = 'array'),
  enabled               BOOLEAN NOT NULL DEFAULT true,
  lease_owner           TEXT NULL CHECK (lease_owner IS NULL OR length(lease_owner) <= 64),
  lease_until           BIGINT NULL,
  created_at            BIGINT NOT NULL,
  updated_at            BIGINT NOT NULL,
  CONSTRAINT bunkers_pkey PRIMARY KEY (tenant_id, key_id),
  CONSTRAINT bunkers_remote_signer_pubkey_key UNIQUE (remote_signer_pubkey),
  CONSTRAINT bunkers_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS bunker_clients (
  tenant_id     TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id        TEXT NOT NULL,
  pubkey        TEXT NOT NULL CHECK (pubkey ~ '^[0-9a-f]{64}$'),
  -- [{method, kind?, expiresAt? (unix seconds)}] as src/nostr/nip46.ts Permission
  permissions   JSONB NOT NULL CHECK (jsonb_typeof(permissions) = 'array'),
  via           TEXT NOT NULL CHECK (via IN ('bunker', 'nostrconnect')),
  relays        JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(relays) = 'array'),
  name          TEXT NULL CHECK (length(name) <= 256),
  url           TEXT NULL CHECK (length(url) <= 2048),
  image         TEXT NULL CHECK (length(image) <= 2048),
  connected_at  BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL,
  CONSTRAINT bunker_clients_pkey PRIMARY KEY (tenant_id, key_id, pubkey),
  CONSTRAINT bunker_clients_bunker_fkey FOREIGN KEY (tenant_id, key_id)
    REFERENCES bunkers (tenant_id, key_id)
);

CREATE TABLE IF NOT EXISTS bunker_secrets (
  tenant_id      TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id         TEXT NOT NULL,
  secret_sha256  TEXT NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
  permissions    JSONB NOT NULL CHECK (jsonb_typeof(permissions) = 'array'),
  label          TEXT NULL CHECK (length(label) <= 200),
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  used_at        BIGINT NULL,
  used_by        TEXT NULL CHECK (used_by ~ '^[0-9a-f]{64}$'),
  CONSTRAINT bunker_secrets_pkey PRIMARY KEY (tenant_id, key_id, secret_sha256),
  CONSTRAINT bunker_secrets_bunker_fkey FOREIGN KEY (tenant_id, key_id)
    REFERENCES bunkers (tenant_id, key_id),
  CONSTRAINT valid_use CHECK ((used_at IS NULL) = (used_by IS NULL)),
  CONSTRAINT valid_expiry CHECK (expires_at > created_at)
);

CREATE TABLE IF NOT EXISTS bunker_approvals (
  tenant_id    TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id       TEXT NOT NULL,
  approval_id  TEXT NOT NULL CHECK (approval_id ~ '^[0-9a-f]{32}$'),
  client       TEXT NOT NULL CHECK (client ~ '^[0-9a-f]{64}$'),
  request_id   TEXT NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
  method       TEXT NOT NULL CHECK (method ~ '^[a-z0-9_]{1,32}$'),
  kind         INTEGER NULL CHECK (kind BETWEEN 0 AND 65535),
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  created_at   BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL,
  decided_at   BIGINT NULL,
  decided_by   TEXT NULL CHECK (length(decided_by) <= 128),
  CONSTRAINT bunker_approvals_pkey PRIMARY KEY (tenant_id, key_id, approval_id),
  CONSTRAINT bunker_approvals_bunker_fkey FOREIGN KEY (tenant_id, key_id)
    REFERENCES bunkers (tenant_id, key_id),
  CONSTRAINT valid_decision CHECK ((status = 'pending') = (decided_at IS NULL))
);

CREATE INDEX IF NOT EXISTS bunkers_enabled_lease_idx ON bunkers (lease_until) WHERE enabled;
CREATE INDEX IF NOT EXISTS bunker_approvals_pending_idx
  ON bunker_approvals (tenant_id, key_id, created_at) WHERE status = 'pending';

-- The transport identity of a bunker never changes: a new remote-signer key is a new bunker.
CREATE OR REPLACE FUNCTION floe_bunkers_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.key_id IS DISTINCT FROM OLD.key_id
     OR NEW.remote_signer_pubkey IS DISTINCT FROM OLD.remote_signer_pubkey
     OR NEW.seal_key_id IS DISTINCT FROM OLD.seal_key_id OR NEW.sealed_nonce IS DISTINCT FROM OLD.sealed_nonce
     OR NEW.sealed_secret IS DISTINCT FROM OLD.sealed_secret
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'bunkers: the key, the remote-signer key and created_at are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER bunkers_guard BEFORE UPDATE ON bunkers
  FOR EACH ROW EXECUTE FUNCTION floe_bunkers_guard();

-- A secret is redeemed once: used_at and used_by are set once and never change; nothing else does.
CREATE OR REPLACE FUNCTION floe_bunker_secrets_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.key_id IS DISTINCT FROM OLD.key_id
     OR NEW.secret_sha256 IS DISTINCT FROM OLD.secret_sha256
     OR NEW.permissions IS DISTINCT FROM OLD.permissions OR NEW.label IS DISTINCT FROM OLD.label
     OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
     OR (OLD.used_at IS NOT NULL AND (NEW.used_at IS DISTINCT FROM OLD.used_at
                                      OR NEW.used_by IS DISTINCT FROM OLD.used_by)) THEN
    RAISE EXCEPTION 'bunker_secrets: a secret is redeemed once and never changes otherwise'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER bunker_secrets_guard BEFORE UPDATE ON bunker_secrets
  FOR EACH ROW EXECUTE FUNCTION floe_bunker_secrets_guard();

-- Approval status machine: pending → approved | denied | expired; the rest is immutable.
CREATE OR REPLACE FUNCTION floe_bunker_approvals_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.key_id IS DISTINCT FROM OLD.key_id
     OR NEW.approval_id IS DISTINCT FROM OLD.approval_id OR NEW.client IS DISTINCT FROM OLD.client
     OR NEW.request_id IS DISTINCT FROM OLD.request_id OR NEW.method IS DISTINCT FROM OLD.method
     OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
    RAISE EXCEPTION 'bunker_approvals: identity columns are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND OLD.status <> 'pending' THEN
    RAISE EXCEPTION 'bunker_approvals: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER bunker_approvals_guard BEFORE UPDATE ON bunker_approvals
  FOR EACH ROW EXECUTE FUNCTION floe_bunker_approvals_guard();

-- Row-level security, as 006 does for every tenant table.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['bunkers', 'bunker_clients', 'bunker_secrets', 'bunker_approvals'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS floe_tenant_isolation ON %I', t);
    EXECUTE format(
      'CREATE POLICY floe_tenant_isolation ON %I USING (tenant_id = floe_current_tenant()) '
      'WITH CHECK (tenant_id = floe_current_tenant())', t);
    EXECUTE format('DROP POLICY IF EXISTS floe_owner_access ON %I', t);
    EXECUTE format('CREATE POLICY floe_owner_access ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
  END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON bunkers TO floe_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON bunker_clients, bunker_secrets, bunker_approvals TO floe_app;

-- Renew the leases p_owner holds and claim up to p_limit enabled bunkers whose lease ran out,
-- in every tenant; returns every bunker p_owner holds afterwards, with what it needs to run it
-- (no secret). Only bunkers sealed under p_seal_key_id (the ones this coordinator can open),
-- and none of p_skip (`tenant_id/key_id` of bunkers it failed to start). A free row another
-- claimer holds locked is skipped, so two coordinators claiming at once never get the same bunker;
-- a renewal waits for a row lock instead, so a busy row never loses its lease.
CREATE OR REPLACE FUNCTION floe_claim_bunkers(
  p_owner TEXT, p_seal_key_id TEXT, p_lease_ms BIGINT, p_limit INTEGER,
  p_skip TEXT[] DEFAULT '{}', p_now BIGINT DEFAULT NULL)
  RETURNS TABLE (tenant_id TEXT, key_id TEXT, relays JSONB, require_approval JSONB, updated_at BIGINT)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH now_ms AS (SELECT coalesce(p_now, floe_now_ms()) AS t),
  free AS (
    SELECT b.tenant_id, b.key_id FROM bunkers b, now_ms
     WHERE b.enabled AND b.seal_key_id = p_seal_key_id
       AND b.lease_owner IS DISTINCT FROM p_owner
       AND coalesce(b.lease_until, 0) < now_ms.t
       AND NOT ((b.tenant_id || '/' || b.key_id) = ANY (coalesce(p_skip, '{}')))
     ORDER BY b.created_at
     LIMIT greatest(p_limit, 0)
     FOR UPDATE OF b SKIP LOCKED
  )
  UPDATE bunkers b
     SET lease_owner = p_owner, lease_until = (SELECT t FROM now_ms) + p_lease_ms
   WHERE b.enabled AND b.seal_key_id = p_seal_key_id
     AND NOT ((b.tenant_id || '/' || b.key_id) = ANY (coalesce(p_skip, '{}')))
     AND (b.lease_owner = p_owner
          OR (b.tenant_id, b.key_id) IN (SELECT f.tenant_id, f.key_id FROM free f))
  RETURNING b.tenant_id, b.key_id, b.relays, b.require_approval, b.updated_at
$$;

-- Give up every lease p_owner holds (a coordinator closing), so another takes over at once.
CREATE OR REPLACE FUNCTION floe_release_bunker_leases(p_owner TEXT) RETURNS integer
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  n integer;
BEGIN
  UPDATE bunkers SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = p_owner;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

REVOKE EXECUTE ON FUNCTION floe_claim_bunkers(TEXT, TEXT, BIGINT, INTEGER, TEXT[], BIGINT),
  floe_release_bunker_leases(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_claim_bunkers(TEXT, TEXT, BIGINT, INTEGER, TEXT[], BIGINT),
  floe_release_bunker_leases(TEXT) TO floe_app;
