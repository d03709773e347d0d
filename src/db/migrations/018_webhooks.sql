-- 018: webhooks per tenant (issue 15 item 9). Events are derived from the audit log (an outbox
-- the coordinator already writes, chained by 017): a job reads each tenant's new audit rows after
-- its cursor, turns the ones a webhook subscribes to into deliveries, and sends due deliveries,
-- claimed with FOR UPDATE SKIP LOCKED so that no two coordinators send the same one at once.
--
-- The signing secret is stored sealed (AES-256-GCM under a key the coordinators derive from their
-- shared jwt.key, bound to the tenant and webhook id: src/coordinator/webhook-seal.ts), under
-- row-level security; the API never returns it after creation or rotation, and no log carries it.

CREATE TABLE IF NOT EXISTS webhooks (
  tenant_id                   TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  id                          TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
  url                         TEXT NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  events                      JSONB NOT NULL CHECK (jsonb_typeof(events) = 'array' AND jsonb_array_length(events) >= 1),
  description                 TEXT NULL CHECK (length(description) <= 200),
  secret                      TEXT NOT NULL CHECK (length(secret) BETWEEN 16 AND 400),
  previous_secret             TEXT NULL CHECK (length(previous_secret) BETWEEN 16 AND 400),
  previous_secret_expires_at  BIGINT NULL,
  secret_rotated_at           BIGINT NULL,
  -- Only audit rows after this one become deliveries (nothing from before the webhook existed).
  start_audit_id              BIGINT NOT NULL,
  created_at                  BIGINT NOT NULL,
  CONSTRAINT webhooks_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT valid_previous_secret CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  tenant_id        TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  webhook_id       TEXT NOT NULL,
  event_id         TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
  audit_id         BIGINT NOT NULL,
  event_type       TEXT NOT NULL,
  payload          JSONB NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  BIGINT NULL,
  lease_owner      TEXT NULL CHECK (length(lease_owner) <= 64),
  lease_until      BIGINT NULL,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (tenant_id, webhook_id, event_id),
  CONSTRAINT webhook_deliveries_webhook_fkey FOREIGN KEY (tenant_id, webhook_id)
    REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT valid_schedule CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);

-- The delivery log: one row per attempt.
CREATE TABLE IF NOT EXISTS webhook_attempts (
  tenant_id    TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  webhook_id   TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  attempt      INTEGER NOT NULL CHECK (attempt >= 1),
  status_code  INTEGER NULL,
  error        TEXT NULL CHECK (length(error) <= 500),
  at           BIGINT NOT NULL,
  CONSTRAINT webhook_attempts_pkey PRIMARY KEY (tenant_id, webhook_id, event_id, attempt),
  CONSTRAINT webhook_attempts_delivery_fkey FOREIGN KEY (tenant_id, webhook_id, event_id)
    REFERENCES webhook_deliveries (tenant_id, webhook_id, event_id) ON DELETE CASCADE
);

-- How far each tenant's audit log has been turned into deliveries.
CREATE TABLE IF NOT EXISTS webhook_cursors (
  tenant_id      TEXT PRIMARY KEY DEFAULT floe_current_tenant() REFERENCES tenants (id),
  last_audit_id  BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
  ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_webhook_idx
  ON webhook_deliveries (tenant_id, webhook_id, created_at DESC);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['webhooks', 'webhook_deliveries', 'webhook_attempts', 'webhook_cursors'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS floe_tenant_isolation ON %I', t);
    EXECUTE format(
      'CREATE POLICY floe_tenant_isolation ON %I USING (tenant_id = floe_current_tenant()) '
      'WITH CHECK (tenant_id = floe_current_tenant())', t);
    EXECUTE format('DROP POLICY IF EXISTS floe_owner_access ON %I', t);
    EXECUTE format('CREATE POLICY floe_owner_access ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', t);
  END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks, webhook_deliveries, webhook_attempts, webhook_cursors TO floe_app;

-- The tenants that have (or had) webhooks: the job walks their audit logs.
CREATE OR REPLACE FUNCTION floe_webhook_tenants() RETURNS SETOF text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT c.tenant_id FROM webhook_cursors c ORDER BY c.tenant_id $$;

-- Leases up to p_limit due deliveries of every tenant to p_owner for p_lease_ms. SKIP LOCKED:
-- two coordinators claiming at once get different rows; a lease that ran out (its coordinator
-- died mid-send) is claimed again.
CREATE OR REPLACE FUNCTION floe_claim_webhook_deliveries(p_owner TEXT, p_lease_ms BIGINT, p_limit INTEGER, p_now BIGINT)
  RETURNS TABLE (tenant_id TEXT, webhook_id TEXT, event_id TEXT)
  LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH due AS (
    SELECT d.tenant_id, d.webhook_id, d.event_id FROM webhook_deliveries d
     WHERE d.status = 'pending' AND d.next_attempt_at <= p_now
       AND (d.lease_until IS NULL OR d.lease_until < p_now)
     ORDER BY d.next_attempt_at
     LIMIT greatest(p_limit, 0)
     FOR UPDATE SKIP LOCKED
  )
  UPDATE webhook_deliveries w SET lease_owner = p_owner, lease_until = p_now + p_lease_ms
    FROM due
   WHERE w.tenant_id = due.tenant_id AND w.webhook_id = due.webhook_id AND w.event_id = due.event_id
  RETURNING w.tenant_id, w.webhook_id, w.event_id
$$;

REVOKE EXECUTE ON FUNCTION floe_webhook_tenants(), floe_claim_webhook_deliveries(TEXT, BIGINT, INTEGER, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_webhook_tenants(), floe_claim_webhook_deliveries(TEXT, BIGINT, INTEGER, BIGINT) TO floe_app;

-- Signers serve every tenant: a quarantine is written to every tenant's audit log (and so
-- reaches their `signer.quarantined` webhooks). Tenants in id order, one audit lock at a time.
CREATE OR REPLACE FUNCTION floe_audit_signer_quarantined() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO audit_events (tenant_id, at, actor, kind, subject_type, subject_id, data)
  SELECT t.id, floe_now_ms(), 'coordinator', 'signer.quarantined', 'signer', NEW.id,
         jsonb_build_object('fault_count', NEW.fault_count)
    FROM tenants t ORDER BY t.id;
  RETURN NEW;
END
$$;

REVOKE EXECUTE ON FUNCTION floe_audit_signer_quarantined() FROM PUBLIC;

CREATE OR REPLACE TRIGGER signer_nodes_quarantine_audit AFTER UPDATE OF quarantined ON signer_nodes
  FOR EACH ROW WHEN (NEW.quarantined AND NOT OLD.quarantined)
  EXECUTE FUNCTION floe_audit_signer_quarantined();
