-- 017: a tamper-evident audit log (issue 15 item 10). Each row carries the hash of the previous
-- row of its tenant (prev_hash) and its own hash over a canonical encoding of the row:
--
--   hash = hex(SHA-256(utf8('floe.audit.v1' || f(prev_hash) || f(id) || f(tenant_id) || f(at)
--                          || f(actor) || f(kind) || f(subject_type) || f(subject_id) || f(data))))
--   f(NULL) = '~';  f(v) = <octet length of v as decimal> || ':' || v
--
-- with id and at in decimal and data as the jsonb text Postgres prints. The first row of a
-- tenant has prev_hash = 64 zeros. src/domain/audit-chain.ts is the same encoding in TypeScript
-- (test/db/audit-chain.test.ts holds the two against each other).
--
-- The BEFORE INSERT trigger takes a per-tenant transaction advisory lock and only then draws the
-- row's id, so several coordinators on one database append one chain per tenant, in id order:
-- no other row of the tenant gets an id until this one's transaction ends. The same property
-- lets a reader keep a per-tenant cursor on id without skipping a row committed late.

CREATE OR REPLACE FUNCTION floe_audit_field(v text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE WHEN v IS NULL THEN '~' ELSE octet_length(v)::text || ':' || v END $$;

CREATE OR REPLACE FUNCTION floe_audit_row_hash(
  p_prev_hash text, p_id bigint, p_tenant_id text, p_at bigint, p_actor text, p_kind text,
  p_subject_type text, p_subject_id text, p_data jsonb
) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT encode(sha256(convert_to(
    'floe.audit.v1' || floe_audit_field(p_prev_hash) || floe_audit_field(p_id::text)
      || floe_audit_field(p_tenant_id) || floe_audit_field(p_at::text) || floe_audit_field(p_actor)
      || floe_audit_field(p_kind) || floe_audit_field(p_subject_type) || floe_audit_field(p_subject_id)
      || floe_audit_field(p_data::text),
    'UTF8')), 'hex')
$$;

ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS prev_hash TEXT NULL;
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS hash TEXT NULL;

-- Chain the rows written before this migration, per tenant in id order. The append-only
-- trigger refuses UPDATE, so it is off for this one statement's transaction.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
DO $$
DECLARE
  r record;
  prev text;
  cur_tenant text := NULL;
  h text;
BEGIN
  FOR r IN SELECT * FROM audit_events WHERE hash IS NULL ORDER BY tenant_id, id LOOP
    IF cur_tenant IS DISTINCT FROM r.tenant_id THEN
      cur_tenant := r.tenant_id;
      prev := repeat('0', 64);
    END IF;
    h := floe_audit_row_hash(prev, r.id, r.tenant_id, r.at, r.actor, r.kind, r.subject_type,
                             r.subject_id, r.data);
    UPDATE audit_events SET prev_hash = prev, hash = h WHERE id = r.id;
    prev := h;
  END LOOP;
END
$$;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;

ALTER TABLE audit_events ALTER COLUMN prev_hash SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN hash SET NOT NULL;
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_chain_hex;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_chain_hex
  CHECK (prev_hash ~ '^[0-9a-f]{64}$' AND hash ~ '^[0-9a-f]{64}$');
CREATE INDEX IF NOT EXISTS audit_events_tenant_id_idx ON audit_events (tenant_id, id);

-- SECURITY DEFINER: the previous row is found whoever inserts (RLS still checks the new row
-- against the inserting role's tenant, as before). The lock's first key spells "Flaq".
CREATE OR REPLACE FUNCTION floe_audit_chain() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  prev text;
BEGIN
  PERFORM pg_advisory_xact_lock(1181507953, hashtext(NEW.tenant_id));
  -- Drawn under the lock: ids of one tenant follow the order of the chain.
  NEW.id := nextval(pg_get_serial_sequence('audit_events', 'id'));
  SELECT a.hash INTO prev FROM audit_events a
   WHERE a.tenant_id = NEW.tenant_id ORDER BY a.id DESC LIMIT 1;
  NEW.prev_hash := coalesce(prev, repeat('0', 64));
  NEW.hash := floe_audit_row_hash(NEW.prev_hash, NEW.id, NEW.tenant_id, NEW.at, NEW.actor, NEW.kind,
                                  NEW.subject_type, NEW.subject_id, NEW.data);
  RETURN NEW;
END
$$;

REVOKE EXECUTE ON FUNCTION floe_audit_chain() FROM PUBLIC;

CREATE OR REPLACE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION floe_audit_chain();
