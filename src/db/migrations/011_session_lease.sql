-- 011: a lease on live sessions, for several coordinators on one database (issue: scale out).
-- The coordinator that creates a session drives it; every move it makes (updated_at) keeps the
-- session fresh. A session nobody moved for stale_ms is claimed by exactly one coordinator: the
-- claim is one UPDATE that sets lease_owner and lease_until, and no other coordinator can claim
-- it again before lease_until, or while the new owner keeps moving it. The conditional
-- transitions stay the only way forward: a lease decides who tries, never what is legal.

ALTER TABLE signing_sessions
  ADD COLUMN IF NOT EXISTS lease_owner TEXT CHECK (lease_owner IS NULL OR length(lease_owner) <= 64),
  ADD COLUMN IF NOT EXISTS lease_until BIGINT;

CREATE INDEX IF NOT EXISTS signing_sessions_live_updated
  ON signing_sessions (updated_at)
  WHERE status IN ('pending', 'nonce_collection', 'signing', 'aggregating');

-- Claim up to p_limit live sessions nobody moved for p_stale_ms and whose lease (if any) ran
-- out, in every tenant, for p_owner until now + p_lease_ms. Rows another claimer holds locked
-- are skipped, so two coordinators claiming at once never get the same session.
CREATE OR REPLACE FUNCTION floe_claim_stale_sessions(
  p_owner TEXT, p_stale_ms BIGINT, p_lease_ms BIGINT, p_limit INTEGER, p_now BIGINT DEFAULT NULL)
  RETURNS TABLE (tenant_id TEXT, session_id TEXT)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH now_ms AS (SELECT coalesce(p_now, floe_now_ms()) AS t),
  due AS (
    SELECT s.session_id FROM signing_sessions s, now_ms
     WHERE s.status IN ('pending', 'nonce_collection', 'signing', 'aggregating')
       AND s.updated_at < now_ms.t - p_stale_ms
       AND coalesce(s.lease_until, 0) < now_ms.t
     ORDER BY s.updated_at
     LIMIT greatest(p_limit, 0)
     FOR UPDATE OF s SKIP LOCKED
  )
  UPDATE signing_sessions s
     SET lease_owner = p_owner, lease_until = (SELECT t FROM now_ms) + p_lease_ms
    FROM due
   WHERE s.session_id = due.session_id
  RETURNING s.tenant_id, s.session_id
$$;

REVOKE EXECUTE ON FUNCTION floe_claim_stale_sessions(TEXT, BIGINT, BIGINT, INTEGER, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_claim_stale_sessions(TEXT, BIGINT, BIGINT, INTEGER, BIGINT) TO floe_app;
