-- 006: row-level security, grants to floe_app, and the narrow cross-tenant paths.
--
-- Every tenant table has RLS enabled and forced, with one policy: a row is visible and
-- writable only when its tenant is the transaction's `floe.tenant_id` (see
-- floe_current_tenant()); with no tenant set nothing is. The service runs as floe_app, which
-- is not a superuser, has no BYPASSRLS and does not own the tables.
--
-- A second policy, `floe_owner_access`, is for the migrating role only (the role running
-- this file, which owns the tables and the SECURITY DEFINER functions below). A superuser
-- ignores RLS anyway; the policy gives a non-superuser owner the same cross-tenant reach, so
-- that the SECURITY DEFINER functions keep working when FORCE ROW LEVEL SECURITY applies to
-- the owner. floe_app is never a member of that role.

DO $$
DECLARE
  t text;
  col text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'api_tokens', 'refresh_tokens', 'keys', 'dkg_ceremonies',
                           'signing_sessions', 'nonce_commitments', 'audit_events'] LOOP
    col := CASE WHEN t = 'tenants' THEN 'id' ELSE 'tenant_id' END;
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS floe_tenant_isolation ON %I', t);
    EXECUTE format(
      'CREATE POLICY floe_tenant_isolation ON %I USING (%I = floe_current_tenant()) '
      'WITH CHECK (%I = floe_current_tenant())', t, col, col);
    EXECUTE format('DROP POLICY IF EXISTS floe_owner_access ON %I', t);
    EXECUTE format('CREATE POLICY floe_owner_access ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
  END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO floe_app;
GRANT SELECT, INSERT, UPDATE ON tenants, api_tokens, refresh_tokens, keys, dkg_ceremonies,
  signing_sessions, nonce_commitments TO floe_app;
GRANT SELECT, INSERT ON audit_events TO floe_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON signer_nodes TO floe_app;
GRANT SELECT ON schema_migrations TO floe_app;
GRANT USAGE ON SEQUENCE nonce_commitments_id_seq, audit_events_id_seq TO floe_app;

-- Sessions whose deadline passed, in every tenant (run by one coordinator under an advisory lock).
CREATE OR REPLACE FUNCTION expire_old_signing_sessions() RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  now_ms bigint := floe_now_ms();
  n integer;
BEGIN
  UPDATE signing_sessions
     SET status = 'expired', updated_at = now_ms, error_code = 'session_expired',
         error_message = 'the session expired before it completed'
   WHERE status IN ('pending', 'nonce_collection', 'signing', 'aggregating') AND expires_at < now_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Deletes terminal sessions (and, by cascade, their nonce commitments) last updated more than
-- retention_days ago, in every tenant.
CREATE OR REPLACE FUNCTION cleanup_old_signing_sessions(retention_days INTEGER DEFAULT 90) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  n integer;
BEGIN
  IF retention_days IS NULL OR retention_days < 0 THEN
    RAISE EXCEPTION 'retention_days must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  DELETE FROM signing_sessions
   WHERE status IN ('completed', 'failed', 'expired')
     AND updated_at < floe_now_ms() - retention_days::bigint * 86400000;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- DKG ceremonies whose deadline passed fail, and so does the key they were creating.
CREATE OR REPLACE FUNCTION expire_old_dkg_ceremonies() RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  now_ms bigint := floe_now_ms();
  n integer;
BEGIN
  WITH expired AS (
    UPDATE dkg_ceremonies
       SET status = 'failed', updated_at = now_ms, failed_at = now_ms, error_code = 'dkg_failed',
           error_message = 'the ceremony expired before it completed'
     WHERE status NOT IN ('completed', 'failed') AND expires_at < now_ms
    RETURNING tenant_id, key_id
  ), failed_keys AS (
    UPDATE keys k SET status = 'failed', updated_at = now_ms
      FROM expired e
     WHERE k.tenant_id = e.tenant_id AND k.id = e.key_id AND k.status = 'pending'
    RETURNING k.id
  )
  SELECT count(*) INTO n FROM expired;
  RETURN n;
END
$$;

-- Login: find a token by the hash of the secret presented, before the tenant is known.
CREATE OR REPLACE FUNCTION floe_lookup_token(p_token_sha256 TEXT) RETURNS SETOF api_tokens
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT * FROM api_tokens WHERE token_sha256 = p_token_sha256 $$;

CREATE OR REPLACE FUNCTION floe_lookup_refresh_token(p_token_sha256 TEXT) RETURNS SETOF refresh_tokens
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT * FROM refresh_tokens WHERE token_sha256 = p_token_sha256 $$;

-- Whether a nonce commitment, or either of its two points, was ever stored in any tenant.
-- Reveals one bit about a random value the caller already holds.
CREATE OR REPLACE FUNCTION floe_nonce_commitment_seen(p_nonce_commitment TEXT) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM nonce_commitments WHERE nonce_commitment = p_nonce_commitment)
      OR EXISTS (SELECT 1 FROM nonce_commitments
                  WHERE substr(nonce_commitment, 1, 66) IN (substr(p_nonce_commitment, 1, 66), substr(p_nonce_commitment, 67, 66)))
      OR EXISTS (SELECT 1 FROM nonce_commitments
                  WHERE substr(nonce_commitment, 67, 66) IN (substr(p_nonce_commitment, 1, 66), substr(p_nonce_commitment, 67, 66)))
$$;

-- Live sessions nobody advanced for stale_ms, in every tenant: a coordinator that crashed
-- mid-session left them; another one resumes them (under the tenant, through RLS).
CREATE OR REPLACE FUNCTION floe_list_stale_sessions(p_stale_ms BIGINT, p_limit INTEGER, p_now BIGINT DEFAULT NULL)
  RETURNS TABLE (tenant_id TEXT, session_id TEXT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT s.tenant_id, s.session_id FROM signing_sessions s
   WHERE s.status IN ('pending', 'nonce_collection', 'signing', 'aggregating')
     AND s.updated_at < coalesce(p_now, floe_now_ms()) - p_stale_ms
   ORDER BY s.updated_at
   LIMIT greatest(p_limit, 0)
$$;

-- Session counts by status over all tenants (metrics).
CREATE OR REPLACE FUNCTION floe_count_sessions_by_status() RETURNS TABLE (status TEXT, count BIGINT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT s.status, count(*) FROM signing_sessions s GROUP BY s.status $$;

REVOKE EXECUTE ON FUNCTION expire_old_signing_sessions(), cleanup_old_signing_sessions(INTEGER),
  expire_old_dkg_ceremonies(), floe_lookup_token(TEXT), floe_lookup_refresh_token(TEXT),
  floe_nonce_commitment_seen(TEXT), floe_list_stale_sessions(BIGINT, INTEGER, BIGINT),
  floe_count_sessions_by_status(), mark_nonce_as_used(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION expire_old_signing_sessions(), cleanup_old_signing_sessions(INTEGER),
  expire_old_dkg_ceremonies(), floe_lookup_token(TEXT), floe_lookup_refresh_token(TEXT),
  floe_nonce_commitment_seen(TEXT), floe_list_stale_sessions(BIGINT, INTEGER, BIGINT),
  floe_count_sessions_by_status(), mark_nonce_as_used(TEXT) TO floe_app;
