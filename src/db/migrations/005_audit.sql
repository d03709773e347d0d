-- 005: append-only audit log. Rows are only ever inserted; UPDATE, DELETE and TRUNCATE are
-- refused by triggers, whoever asks (the service role is not even granted them). Retention,
-- if ever needed, is a separate, deliberate operation (drop the trigger in a migration).

CREATE TABLE IF NOT EXISTS audit_events (
  id            BIGSERIAL PRIMARY KEY,
  tenant_id     TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  at            BIGINT NOT NULL,
  actor         TEXT NOT NULL,
  kind          TEXT NOT NULL,
  subject_type  TEXT NULL,
  subject_id    TEXT NULL,
  data          JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS audit_events_tenant_at_idx ON audit_events (tenant_id, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_events_subject_idx ON audit_events (tenant_id, subject_type, subject_id);

CREATE OR REPLACE FUNCTION floe_audit_events_append_only() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION floe_audit_events_append_only();
CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION floe_audit_events_append_only();
