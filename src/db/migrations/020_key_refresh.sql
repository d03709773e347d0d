-- 020: share refresh (issue "Key lifecycle"; src/coordinator/refresh.ts, src/signer/refresh.ts).
--
-- keys.generation: the share generation every signature is made with (0: the shares the key was
-- created with; +1 per committed refresh). keys.members[i].generation (JSON) records which
-- generation each member acknowledged: a member behind the key's generation is left out of
-- signing until the refresh's commit reaches it.
--
-- key_refreshes: one row per refresh ceremony. pending → round1 → round2 → round3 → committing →
-- completed; failed from any status before committing. `committing` is the decision: every
-- member certified the new public package (the certificates are kept here), the key's
-- generation and public package moved with it in the same transaction, and from then on the
-- refresh only rolls forward (the jobs retry the commit on members that have not answered) —
-- it never fails, so no member is ever asked to drop a share another member committed.

ALTER TABLE keys ADD COLUMN IF NOT EXISTS generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0);

CREATE TABLE IF NOT EXISTS key_refreshes (
  id                  TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id           TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id              TEXT NOT NULL,
  status              TEXT NOT NULL DEFAULT 'pending' CHECK (
                        status IN ('pending', 'round1', 'round2', 'round3', 'committing', 'completed', 'failed')),
  generation          INTEGER NOT NULL CHECK (generation >= 1),
  participants        JSONB NOT NULL CHECK (jsonb_typeof(participants) = 'array'),
  public_key_package  JSONB NULL,
  certificates        JSONB NULL,
  committed           JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(committed) = 'array'),
  error_code          TEXT NULL,
  error_message       TEXT NULL,
  culprits            JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(culprits) = 'array'),
  created_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL,
  completed_at        BIGINT NULL,
  failed_at           BIGINT NULL,
  expires_at          BIGINT NOT NULL,
  CONSTRAINT key_refreshes_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id),
  CONSTRAINT valid_commit CHECK (
    status NOT IN ('committing', 'completed') OR (public_key_package IS NOT NULL AND certificates IS NOT NULL)),
  CONSTRAINT valid_failure CHECK (status <> 'failed' OR (error_message IS NOT NULL AND failed_at IS NOT NULL))
);

-- One refresh at a time per key.
CREATE UNIQUE INDEX IF NOT EXISTS key_refreshes_one_open
  ON key_refreshes (tenant_id, key_id) WHERE status NOT IN ('completed', 'failed');
CREATE INDEX IF NOT EXISTS key_refreshes_key_idx ON key_refreshes (tenant_id, key_id, created_at DESC);
CREATE INDEX IF NOT EXISTS key_refreshes_open_idx ON key_refreshes (status)
  WHERE status NOT IN ('completed', 'failed');

CREATE OR REPLACE FUNCTION floe_key_refreshes_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.generation IS DISTINCT FROM OLD.generation THEN
    RAISE EXCEPTION 'key_refreshes: id, tenant_id, key_id, generation and created_at are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF OLD.status IN ('committing', 'completed') AND (NEW.public_key_package IS DISTINCT FROM OLD.public_key_package
     OR NEW.certificates IS DISTINCT FROM OLD.certificates) THEN
    RAISE EXCEPTION 'key_refreshes: a decided refresh keeps its package and certificates'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status = 'round1')
    OR (OLD.status = 'round1' AND NEW.status = 'round2')
    OR (OLD.status = 'round2' AND NEW.status = 'round3')
    OR (OLD.status = 'round3' AND NEW.status = 'committing')
    OR (OLD.status = 'committing' AND NEW.status = 'completed')
    OR (OLD.status IN ('pending', 'round1', 'round2', 'round3') AND NEW.status = 'failed')) THEN
    RAISE EXCEPTION 'key_refreshes: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER key_refreshes_guard BEFORE UPDATE ON key_refreshes
  FOR EACH ROW EXECUTE FUNCTION floe_key_refreshes_guard();

ALTER TABLE key_refreshes ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_refreshes FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS floe_tenant_isolation ON key_refreshes;
CREATE POLICY floe_tenant_isolation ON key_refreshes USING (tenant_id = floe_current_tenant())
  WITH CHECK (tenant_id = floe_current_tenant());
DROP POLICY IF EXISTS floe_owner_access ON key_refreshes;
CREATE POLICY floe_owner_access ON key_refreshes TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON key_refreshes TO floe_app;

-- For the jobs (every tenant): refreshes to roll forward, and undecided ones past their deadline
-- (failed here; the job then tells the members to drop their pending shares).
CREATE OR REPLACE FUNCTION floe_open_key_refreshes() RETURNS TABLE (tenant_id TEXT, id TEXT, status TEXT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT r.tenant_id, r.id, r.status FROM key_refreshes r
        WHERE r.status NOT IN ('completed', 'failed') ORDER BY r.created_at LIMIT 100 $$;

CREATE OR REPLACE FUNCTION expire_old_key_refreshes() RETURNS TABLE (tenant_id TEXT, id TEXT, key_id TEXT)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ UPDATE key_refreshes r
           SET status = 'failed', updated_at = floe_now_ms(), failed_at = floe_now_ms(),
               error_code = 'refresh_failed', error_message = 'the refresh expired before every member certified it'
         WHERE r.status IN ('pending', 'round1', 'round2', 'round3') AND r.expires_at < floe_now_ms()
        RETURNING r.tenant_id, r.id, r.key_id $$;

REVOKE EXECUTE ON FUNCTION floe_open_key_refreshes(), expire_old_key_refreshes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_open_key_refreshes(), expire_old_key_refreshes() TO floe_app;
