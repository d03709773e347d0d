-- 023: the retention job (cleanup_old_signing_sessions, at every tick of the coordinator's jobs)
-- finds the terminal sessions past their retention through an index on their last change. It
-- compared updated_at with floe_now_ms(), which is volatile (clock_timestamp), so no index could
-- serve it: every tick read the whole table, which keeps 90 days of sessions (45 ms at 50,000
-- sessions on PGlite). The cutoff is now computed once, before the DELETE.
CREATE INDEX IF NOT EXISTS signing_sessions_terminal_updated_idx ON signing_sessions (updated_at)
  WHERE status IN ('completed', 'failed', 'expired');

CREATE OR REPLACE FUNCTION cleanup_old_signing_sessions(retention_days INTEGER DEFAULT 90) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  n integer;
  cutoff bigint;
BEGIN
  IF retention_days IS NULL OR retention_days < 0 THEN
    RAISE EXCEPTION 'retention_days must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  cutoff := floe_now_ms() - retention_days::bigint * 86400000;
  DELETE FROM signing_sessions
   WHERE status IN ('completed', 'failed', 'expired')
     AND updated_at < cutoff;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
