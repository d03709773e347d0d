-- 009: rate limits shared by every coordinator of a database, and the tenant list.
--
-- One row per limited key (an API token, a client address, a tenant's token creation; the
-- key names the limit it belongs to). The limit is a GCRA ("leaky bucket as a meter"): a key
-- may make `max` requests at once and then one every `window / max`; `tat` (theoretical
-- arrival time, Unix ms) is when the key has its whole burst again. One upsert decides and
-- records a request atomically (src/db/queries/rate-limits.ts), so any number of coordinators
-- share each limit. A row whose `tat` has passed carries no information: the jobs delete it.
--
-- Not a tenant table: keys of the auth routes are known before any tenant is (a client
-- address), so the table is shared like signer_nodes; it holds no secret. UNLOGGED: every API
-- request writes it, and without WAL a write costs no flush at commit; after a database crash
-- (or on a standby) the table is empty, which only restarts the limits.

CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (
  key      TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 300),
  tat      DOUBLE PRECISION NOT NULL,
  allowed  BOOLEAN NOT NULL
);

CREATE INDEX IF NOT EXISTS rate_limits_tat_idx ON rate_limits (tat);

GRANT SELECT, INSERT, UPDATE, DELETE ON rate_limits TO floe_app;

-- Every tenant (system administrators list them; RLS lets a tenant see only itself).
CREATE OR REPLACE FUNCTION floe_list_tenants() RETURNS SETOF tenants
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT * FROM tenants ORDER BY created_at, id $$;

REVOKE EXECUTE ON FUNCTION floe_list_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_list_tenants() TO floe_app;
