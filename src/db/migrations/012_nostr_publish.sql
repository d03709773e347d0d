-- 012: publishing signed Nostr events to relays (DESIGN §14), and default relays per key.
--
-- keys.relays: the key's default relays (normalized ws:// or wss:// URLs, at most 20), used when
-- a session asks to be published without naming relays.
--
-- On signing_sessions (nostr_event intents only):
--   publish_relays   the relays the request asked for (NULL: not published); never changes
--   publish_results  one answer per relay tried: {relay, accepted, message, at, attempts}
--   publish_status   'pending' (more to do once the session is completed) or 'done' (every relay
--                    answered, or ran out of tries)
--   publish_next_at  when the next round is due (the retry backoff survives a restart)
--   publish_lease_owner / publish_lease_until: the coordinator publishing it now. A round is
--                    claimed with one conditional UPDATE (as the session lease of 011), so with
--                    several coordinators on one database only one publishes a session at a time,
--                    and only the lease owner may record results.

ALTER TABLE keys ADD COLUMN IF NOT EXISTS relays JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE keys DROP CONSTRAINT IF EXISTS valid_relays;
ALTER TABLE keys ADD CONSTRAINT valid_relays CHECK (
  jsonb_typeof(relays) = 'array' AND jsonb_array_length(relays) <= 20);

ALTER TABLE signing_sessions
  ADD COLUMN IF NOT EXISTS publish_relays JSONB NULL,
  ADD COLUMN IF NOT EXISTS publish_results JSONB NOT NULL DEFAULT '[]'::jsonb,
  ADD COLUMN IF NOT EXISTS publish_status TEXT NULL,
  ADD COLUMN IF NOT EXISTS publish_next_at BIGINT NULL,
  ADD COLUMN IF NOT EXISTS publish_lease_owner TEXT
    CHECK (publish_lease_owner IS NULL OR length(publish_lease_owner) <= 64),
  ADD COLUMN IF NOT EXISTS publish_lease_until BIGINT NULL;

ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS valid_publish;
ALTER TABLE signing_sessions ADD CONSTRAINT valid_publish CHECK (
  jsonb_typeof(publish_results) = 'array'
  AND ((publish_relays IS NULL AND publish_status IS NULL)
    OR (intent_type = 'nostr_event'
        AND jsonb_typeof(publish_relays) = 'array'
        AND jsonb_array_length(publish_relays) BETWEEN 1 AND 20
        AND publish_status IN ('pending', 'done'))));

-- The relays asked for are part of the request: fixed once written. Results only ever concern
-- a completed session.
CREATE OR REPLACE FUNCTION floe_signing_sessions_publish_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.publish_relays IS DISTINCT FROM OLD.publish_relays THEN
    RAISE EXCEPTION 'signing_sessions: the relays to publish to are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.publish_results IS DISTINCT FROM OLD.publish_results AND NEW.status <> 'completed' THEN
    RAISE EXCEPTION 'signing_sessions: publish results before the session completed'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER signing_sessions_publish_guard BEFORE UPDATE ON signing_sessions
  FOR EACH ROW EXECUTE FUNCTION floe_signing_sessions_publish_guard();

CREATE INDEX IF NOT EXISTS signing_sessions_publish_due
  ON signing_sessions (publish_next_at)
  WHERE publish_status = 'pending' AND status = 'completed';

-- Claim up to p_limit completed sessions whose publishing is due (publish_next_at passed) and
-- not leased, in every tenant, for p_owner until now + p_lease_ms. Rows another claimer holds
-- locked are skipped, so two coordinators claiming at once never get the same session.
CREATE OR REPLACE FUNCTION floe_claim_due_publishes(
  p_owner TEXT, p_lease_ms BIGINT, p_limit INTEGER, p_now BIGINT DEFAULT NULL)
  RETURNS TABLE (tenant_id TEXT, session_id TEXT)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH now_ms AS (SELECT coalesce(p_now, floe_now_ms()) AS t),
  due AS (
    SELECT s.session_id FROM signing_sessions s, now_ms
     WHERE s.status = 'completed' AND s.publish_status = 'pending'
       AND coalesce(s.publish_next_at, 0) <= now_ms.t
       AND coalesce(s.publish_lease_until, 0) < now_ms.t
     ORDER BY s.publish_next_at NULLS FIRST
     LIMIT greatest(p_limit, 0)
     FOR UPDATE OF s SKIP LOCKED
  )
  UPDATE signing_sessions s
     SET publish_lease_owner = p_owner, publish_lease_until = (SELECT t FROM now_ms) + p_lease_ms
    FROM due
   WHERE s.session_id = due.session_id
  RETURNING s.tenant_id, s.session_id
$$;

REVOKE EXECUTE ON FUNCTION floe_claim_due_publishes(TEXT, BIGINT, INTEGER, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION floe_claim_due_publishes(TEXT, BIGINT, INTEGER, BIGINT) TO floe_app;
