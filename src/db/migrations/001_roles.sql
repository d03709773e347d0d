-- 001: the service role and the tenant helper.
--
-- The coordinator connects as the migrating role (normally a superuser) and runs every
-- query of the service as `floe_app` (SET LOCAL ROLE inside each transaction), a role that
-- is neither a superuser nor BYPASSRLS, so row-level security always applies to it.
-- Roles are global to a Postgres server: several databases (or test runs) may race to
-- create it, hence the exception handler.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'floe_app') THEN
    BEGIN
      CREATE ROLE floe_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created concurrently from another database of this server
    END;
  END IF;
  -- Refuse to go on if someone widened the role: the isolation of tenants depends on it.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'floe_app' AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'role floe_app must not be SUPERUSER or BYPASSRLS';
  END IF;
  -- A non-superuser migrating role must be a member of floe_app to SET ROLE to it.
  IF NOT pg_has_role(current_user, 'floe_app', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT floe_app TO %I', current_user);
    EXCEPTION WHEN unique_violation THEN
      NULL;
    END;
  END IF;
END
$$;

-- The tenant of the current transaction (set by the service with
-- set_config('floe.tenant_id', ..., true)), or NULL when none is set. current_setting gives
-- '' rather than NULL once a transaction-local setting has been used in the session, so the
-- empty string means "no tenant" too.
CREATE OR REPLACE FUNCTION floe_current_tenant() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT NULLIF(current_setting('floe.tenant_id', true), '') $$;

-- Current time in Unix milliseconds (clock time, not transaction start).
CREATE OR REPLACE FUNCTION floe_now_ms() RETURNS bigint
  LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$ SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint $$;
