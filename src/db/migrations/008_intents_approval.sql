-- 008: signing intents (DESIGN §12) and the approval stage (DESIGN §13).
--
-- A session signs an intent: intent_type, the intent itself (JSONB, the wire form of
-- src/domain/intent.ts) and intent_hash (what attempt ids and approvals bind). The unused
-- columns message, event_template and event_type are replaced by them; message_hash stays
-- (the 32-byte digest signed) and final_event_id is set for nostr_event sessions.
--
-- Status machine (src/domain/session-state.ts):
--   awaiting_approval → pending | failed | expired
--   pending → nonce_collection → signing → aggregating → completed
--   nonce_collection | signing | aggregating → nonce_collection   (a new attempt)
--   any non-terminal → failed | expired

ALTER TABLE signing_sessions ADD COLUMN IF NOT EXISTS intent_type TEXT NOT NULL DEFAULT 'message';
ALTER TABLE signing_sessions ADD COLUMN IF NOT EXISTS intent JSONB NULL;
ALTER TABLE signing_sessions ADD COLUMN IF NOT EXISTS intent_hash TEXT NULL;

-- Sessions from before intents signed a bare digest: a message intent. Its hash is the one
-- src/domain/intent.ts computes: SHA-256 of the length-prefixed tag, type, digest and an empty tweak.
UPDATE signing_sessions
   SET intent = jsonb_build_object('type', 'message', 'message', message_hash),
       intent_hash = encode(sha256(
         int4send(14) || convert_to('floe/intent/v1', 'UTF8') ||
         int4send(7) || convert_to('message', 'UTF8') ||
         int4send(32) || decode(message_hash, 'hex') ||
         int4send(0)), 'hex')
 WHERE intent IS NULL;

ALTER TABLE signing_sessions ALTER COLUMN intent SET NOT NULL;
ALTER TABLE signing_sessions ALTER COLUMN intent_hash SET NOT NULL;
ALTER TABLE signing_sessions ALTER COLUMN intent_type DROP DEFAULT;
ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS valid_intent;
ALTER TABLE signing_sessions ADD CONSTRAINT valid_intent CHECK (
  intent_type IN ('message', 'nostr_event', 'bitcoin_psbt')
  AND intent ->> 'type' = intent_type
  AND intent_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS valid_final_event_id;
ALTER TABLE signing_sessions ADD CONSTRAINT valid_final_event_id CHECK (
  final_event_id IS NULL OR final_event_id ~ '^[0-9a-f]{64}$');

ALTER TABLE signing_sessions DROP COLUMN IF EXISTS message;
ALTER TABLE signing_sessions DROP COLUMN IF EXISTS event_template;
ALTER TABLE signing_sessions DROP COLUMN IF EXISTS event_type;

ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS signing_sessions_status_check;
ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS valid_status;
ALTER TABLE signing_sessions ADD CONSTRAINT valid_status CHECK (status IN (
  'awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating',
  'completed', 'failed', 'expired'));

DROP INDEX IF EXISTS signing_sessions_expires_idx;
CREATE INDEX IF NOT EXISTS signing_sessions_live_expires_idx ON signing_sessions (expires_at)
  WHERE status IN ('awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating');

CREATE OR REPLACE FUNCTION floe_signing_sessions_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.session_id IS DISTINCT FROM OLD.session_id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.message_hash IS DISTINCT FROM OLD.message_hash
     OR NEW.intent_type IS DISTINCT FROM OLD.intent_type OR NEW.intent IS DISTINCT FROM OLD.intent
     OR NEW.intent_hash IS DISTINCT FROM OLD.intent_hash
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'signing_sessions: identity columns are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF OLD.final_signature IS NOT NULL AND NEW.final_signature IS DISTINCT FROM OLD.final_signature THEN
    RAISE EXCEPTION 'signing_sessions: the final signature is immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'awaiting_approval' AND NEW.status = 'pending')
    OR (OLD.status = 'pending' AND NEW.status = 'nonce_collection')
    OR (OLD.status = 'nonce_collection' AND NEW.status = 'signing')
    OR (OLD.status = 'signing' AND NEW.status = 'aggregating')
    OR (OLD.status = 'aggregating' AND NEW.status = 'completed')
    OR (OLD.status IN ('signing', 'aggregating') AND NEW.status = 'nonce_collection')
    OR (OLD.status IN ('awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating')
        AND NEW.status IN ('failed', 'expired'))) THEN
    RAISE EXCEPTION 'signing_sessions: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  -- Every entry into nonce_collection is a new attempt, and only such an entry changes it.
  IF NEW.attempt IS DISTINCT FROM OLD.attempt THEN
    IF NEW.status <> 'nonce_collection' OR NEW.attempt < OLD.attempt
       OR OLD.status NOT IN ('pending', 'nonce_collection', 'signing', 'aggregating') THEN
      RAISE EXCEPTION 'signing_sessions: attempt % -> % is not a new attempt', OLD.attempt, NEW.attempt
        USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
    END IF;
  ELSIF NEW.status = 'nonce_collection' AND OLD.status <> 'nonce_collection' THEN
    RAISE EXCEPTION 'signing_sessions: entering nonce_collection must start a new attempt'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

-- Sessions whose deadline passed, in every tenant, waiting for approval or being signed.
CREATE OR REPLACE FUNCTION expire_old_signing_sessions() RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  now_ms bigint := floe_now_ms();
  n integer;
BEGIN
  UPDATE signing_sessions
     SET status = 'expired', updated_at = now_ms, error_code = 'session_expired',
         error_message = CASE WHEN status = 'awaiting_approval'
                              THEN 'the session expired before a quorum of stewards approved it'
                              ELSE 'the session expired before it completed' END
   WHERE status IN ('awaiting_approval', 'pending', 'nonce_collection', 'signing', 'aggregating')
     AND expires_at < now_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
