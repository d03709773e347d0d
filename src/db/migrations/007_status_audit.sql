-- 007: every status change of a signing session, a DKG ceremony or a key is recorded in
-- audit_events by the database itself, whichever code path (service, expiry job, operator
-- SQL) made it. The trigger inserts as the role that made the change, so row-level security
-- still confines the row to the changed row's tenant.

CREATE OR REPLACE FUNCTION floe_audit_status_change() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
DECLARE
  subject TEXT;
  extra JSONB := '{}'::jsonb;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NEW;
  END IF;
  IF TG_TABLE_NAME = 'signing_sessions' THEN
    subject := NEW.session_id;
    extra := jsonb_build_object('attempt', NEW.attempt, 'error_code', NEW.error_code);
  ELSIF TG_TABLE_NAME = 'dkg_ceremonies' THEN
    subject := NEW.id;
    extra := jsonb_build_object('key_id', NEW.key_id, 'error_code', NEW.error_code);
  ELSE
    subject := NEW.id;
  END IF;
  INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
  VALUES (
    NEW.tenant_id,
    floe_now_ms(),
    coalesce(NULLIF(current_setting('floe.actor', true), ''), current_user),
    'status_change',
    CASE TG_TABLE_NAME WHEN 'signing_sessions' THEN 'session' WHEN 'dkg_ceremonies' THEN 'ceremony' ELSE 'key' END,
    subject,
    extra || jsonb_build_object('from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status)
  );
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER signing_sessions_status_audit AFTER INSERT OR UPDATE OF status ON signing_sessions
  FOR EACH ROW EXECUTE FUNCTION floe_audit_status_change();
CREATE OR REPLACE TRIGGER dkg_ceremonies_status_audit AFTER INSERT OR UPDATE OF status ON dkg_ceremonies
  FOR EACH ROW EXECUTE FUNCTION floe_audit_status_change();
CREATE OR REPLACE TRIGGER keys_status_audit AFTER INSERT OR UPDATE OF status ON keys
  FOR EACH ROW EXECUTE FUNCTION floe_audit_status_change();
