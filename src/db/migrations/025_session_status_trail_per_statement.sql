-- 025: a signing session's status changes (migration 007) are recorded once per statement
-- rather than once per row. The row trigger ran its function and an INSERT of its own for each
-- moved row: 0.15 ms a row on PGlite, four rows per signature, and a batch moves a hundred rows
-- in one statement (bench/sql.ts). These statement triggers see the statement's rows as
-- transition tables and append every status change of the statement in one INSERT, with the
-- same rows as before: kind 'status_change', subject 'session', data {attempt, error_code,
-- from, to}, from NULL at creation, inserted as the role that made the change (row-level
-- security confines each row to its session's tenant, as before).
--
-- Postgres allows transition tables only on a trigger of one event without a column list, so
-- there are two triggers and the UPDATE one fires for every UPDATE statement; it writes nothing
-- for rows whose status did not change. Key and ceremony status changes, which come a few at a
-- time, stay on the row trigger of migration 007.

CREATE OR REPLACE FUNCTION floe_audit_session_status_inserted() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
  SELECT n.tenant_id, floe_now_ms(),
         coalesce(NULLIF(current_setting('floe.actor', true), ''), current_user),
         'status_change', 'session', n.session_id,
         jsonb_build_object('attempt', n.attempt, 'error_code', n.error_code, 'from', NULL, 'to', n.status)
    FROM floe_new_sessions n;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION floe_audit_session_status_updated() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
  SELECT n.tenant_id, floe_now_ms(),
         coalesce(NULLIF(current_setting('floe.actor', true), ''), current_user),
         'status_change', 'session', n.session_id,
         jsonb_build_object('attempt', n.attempt, 'error_code', n.error_code, 'from', o.status, 'to', n.status)
    FROM floe_new_sessions n JOIN floe_old_sessions o ON o.session_id = n.session_id
   WHERE n.status IS DISTINCT FROM o.status;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS signing_sessions_status_audit ON signing_sessions;
CREATE OR REPLACE TRIGGER signing_sessions_status_audit_insert AFTER INSERT ON signing_sessions
  REFERENCING NEW TABLE AS floe_new_sessions
  FOR EACH STATEMENT EXECUTE FUNCTION floe_audit_session_status_inserted();
CREATE OR REPLACE TRIGGER signing_sessions_status_audit_update AFTER UPDATE ON signing_sessions
  REFERENCING OLD TABLE AS floe_old_sessions NEW TABLE AS floe_new_sessions
  FOR EACH STATEMENT EXECUTE FUNCTION floe_audit_session_status_updated();
