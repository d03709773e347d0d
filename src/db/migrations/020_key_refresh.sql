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

-- key_repairs: one row per share repair (src/coordinator/repair.ts). pending → helping → enrolling →
-- committing → completed; failed before committing. `committing` is the decision (the new member
-- holds the lost member's share, proven by t helper statements and its certificate, kept here);
-- then the commit goes to every member until all answered (jobs), and the key's member entry
-- moves to the new signer when the new member activated its share.
CREATE TABLE IF NOT EXISTS key_repairs (
  id                  TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  tenant_id           TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id              TEXT NOT NULL,
  status              TEXT NOT NULL DEFAULT 'pending' CHECK (
                        status IN ('pending', 'helping', 'enrolling', 'committing', 'completed', 'failed')),
  generation          INTEGER NOT NULL CHECK (generation >= 0),
  lost                INTEGER NOT NULL CHECK (lost BETWEEN 1 AND 255),
  replaced            TEXT NOT NULL CHECK (replaced ~ '^[0-9a-f]{64}$'),
  new_signer_id       TEXT NOT NULL,
  new_identity        TEXT NOT NULL CHECK (new_identity ~ '^[0-9a-f]{64}$'),
  helpers             JSONB NOT NULL CHECK (jsonb_typeof(helpers) = 'array'),
  members             JSONB NOT NULL CHECK (jsonb_typeof(members) = 'array'),
  commit_request      JSONB NULL,
  committed           JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(committed) = 'array'),
  error_code          TEXT NULL,
  error_message       TEXT NULL,
  culprits            JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(culprits) = 'array'),
  created_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL,
  completed_at        BIGINT NULL,
  failed_at           BIGINT NULL,
  expires_at          BIGINT NOT NULL,
  CONSTRAINT key_repairs_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id),
  CONSTRAINT valid_commit CHECK (status NOT IN ('committing', 'completed') OR commit_request IS NOT NULL),
  CONSTRAINT valid_failure CHECK (status <> 'failed' OR (error_message IS NOT NULL AND failed_at IS NOT NULL))
);

-- One lifecycle ceremony at a time per key: no repair beside an open refresh is enforced by the
-- driver; two repairs of one key never run at once.
CREATE UNIQUE INDEX IF NOT EXISTS key_repairs_one_open
  ON key_repairs (tenant_id, key_id) WHERE status NOT IN ('completed', 'failed');
CREATE INDEX IF NOT EXISTS key_repairs_key_idx ON key_repairs (tenant_id, key_id, created_at DESC);

CREATE OR REPLACE FUNCTION floe_key_repairs_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.lost IS DISTINCT FROM OLD.lost OR NEW.new_identity IS DISTINCT FROM OLD.new_identity THEN
    RAISE EXCEPTION 'key_repairs: identity columns are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status = 'helping')
    OR (OLD.status = 'helping' AND NEW.status = 'enrolling')
    OR (OLD.status = 'enrolling' AND NEW.status = 'committing')
    OR (OLD.status = 'committing' AND NEW.status = 'completed')
    OR (OLD.status IN ('pending', 'helping', 'enrolling') AND NEW.status = 'failed')) THEN
    RAISE EXCEPTION 'key_repairs: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER key_repairs_guard BEFORE UPDATE ON key_repairs
  FOR EACH ROW EXECUTE FUNCTION floe_key_repairs_guard();

ALTER TABLE key_repairs ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_repairs FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS floe_tenant_isolation ON key_repairs;
CREATE POLICY floe_tenant_isolation ON key_repairs USING (tenant_id = floe_current_tenant())
  WITH CHECK (tenant_id = floe_current_tenant());
DROP POLICY IF EXISTS floe_owner_access ON key_repairs;
CREATE POLICY floe_owner_access ON key_repairs TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON key_repairs TO floe_app;

CREATE OR REPLACE FUNCTION floe_open_key_repairs() RETURNS TABLE (tenant_id TEXT, id TEXT, status TEXT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT r.tenant_id, r.id, r.status FROM key_repairs r
        WHERE r.status NOT IN ('completed', 'failed') ORDER BY r.created_at LIMIT 100 $$;

CREATE OR REPLACE FUNCTION expire_old_key_repairs() RETURNS TABLE (tenant_id TEXT, id TEXT, key_id TEXT)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ UPDATE key_repairs r
           SET status = 'failed', updated_at = floe_now_ms(), failed_at = floe_now_ms(),
               error_code = 'repair_failed', error_message = 'the repair expired before the new member certified'
         WHERE r.status IN ('pending', 'helping', 'enrolling') AND r.expires_at < floe_now_ms()
        RETURNING r.tenant_id, r.id, r.key_id $$;

REVOKE EXECUTE ON FUNCTION floe_open_key_repairs(), expire_old_key_repairs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_open_key_repairs(), expire_old_key_repairs() TO floe_app;
