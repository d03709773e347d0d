-- 014: steward approvals (DESIGN §13, issue 13).
--
-- keys.approval_policy: the policy state every member of the key certified and holds itself
-- ({revision, policy}, src/approvals/policy.ts); NULL: the key has none. Changed only after a
-- quorum of the current stewards approved the change and every member applied it.
--
-- session_approvals: the stewards' decisions on a session waiting for them, each the
-- steward-signed kind-30078 event it came as (checked before it is written). One decision per
-- steward and session, final: the service role may insert and read, never update or delete
-- (rows go with their session when it is cleaned up). The signers are sent the events again
-- with every signing request and check them themselves.

ALTER TABLE keys ADD COLUMN IF NOT EXISTS approval_policy JSONB NULL;
ALTER TABLE keys DROP CONSTRAINT IF EXISTS valid_approval_policy;
ALTER TABLE keys ADD CONSTRAINT valid_approval_policy CHECK (
  approval_policy IS NULL
  OR (jsonb_typeof(approval_policy) = 'object'
      AND jsonb_typeof(approval_policy -> 'revision') = 'number'
      AND jsonb_typeof(approval_policy -> 'policy') IN ('object', 'null')));

CREATE TABLE IF NOT EXISTS session_approvals (
  tenant_id    TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  session_id   TEXT NOT NULL REFERENCES signing_sessions (session_id) ON DELETE CASCADE,
  steward      TEXT NOT NULL CHECK (steward ~ '^[0-9a-f]{64}$'),
  decision     TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
  event_id     TEXT NOT NULL CHECK (event_id ~ '^[0-9a-f]{64}$'),
  event        JSONB NOT NULL CHECK (jsonb_typeof(event) = 'object'),
  -- how it arrived: POST /v1/sessions/:id/approvals, or read from a relay
  via          TEXT NOT NULL CHECK (via IN ('api', 'relay')),
  -- the event's created_at (Unix seconds), and when the coordinator recorded it (Unix ms)
  decided_at   BIGINT NOT NULL,
  recorded_at  BIGINT NOT NULL,
  PRIMARY KEY (session_id, steward)
);

CREATE INDEX IF NOT EXISTS session_approvals_tenant_idx ON session_approvals (tenant_id, session_id);

ALTER TABLE session_approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_approvals FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS floe_tenant_isolation ON session_approvals;
CREATE POLICY floe_tenant_isolation ON session_approvals
  USING (tenant_id = floe_current_tenant()) WITH CHECK (tenant_id = floe_current_tenant());
DROP POLICY IF EXISTS floe_owner_access ON session_approvals;
CREATE POLICY floe_owner_access ON session_approvals TO CURRENT_USER USING (true) WITH CHECK (true);

GRANT SELECT, INSERT ON session_approvals TO floe_app;

-- Sessions waiting for their stewards, in every tenant: a coordinator that starts listens on
-- the relays for their decisions (the requests were sent when the sessions were created).
CREATE OR REPLACE FUNCTION floe_sessions_awaiting_approval(p_limit INTEGER)
  RETURNS TABLE (tenant_id TEXT, session_id TEXT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT s.tenant_id, s.session_id FROM signing_sessions s
   WHERE s.status = 'awaiting_approval' AND s.expires_at >= floe_now_ms()
   ORDER BY s.expires_at
   LIMIT greatest(p_limit, 0)
$$;

REVOKE EXECUTE ON FUNCTION floe_sessions_awaiting_approval(INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_sessions_awaiting_approval(INTEGER) TO floe_app;
