-- 022: the live sessions counted by status, through the live sessions' partial index (migration
-- 008): the sessions gauge reads them at every tick of the coordinator's jobs, and counts every
-- status — a scan of the whole table, kept for 90 days by default — only once a minute
-- (src/coordinator/services/jobs.ts).
CREATE OR REPLACE FUNCTION floe_count_live_sessions_by_status() RETURNS TABLE (status TEXT, count BIGINT)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT s.status, count(*) FROM signing_sessions s
         WHERE s.status IN ('awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating')
         GROUP BY s.status $$;

REVOKE EXECUTE ON FUNCTION floe_count_live_sessions_by_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_count_live_sessions_by_status() TO floe_app;
