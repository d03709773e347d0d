-- 015: PSBT signing sessions (issue 14): one attempt signs every input of a PSBT that belongs to
-- the key, each with its own nonce pair on every member.
--
-- nonce_commitments.input_index: the PSBT input a commitment is for (0 for single-digest
-- sessions, as before). One row per (session, attempt, participant, input). Every row is still a
-- commitment like any other: unique_nonce_commitment, the hiding and binding point indexes
-- (004) and the permanent used_nonce_points trigger (010) apply to each of them, so a nonce point
-- seen before — in any session, on any input, ever — is refused.
--
-- signing_sessions.bitcoin: what a bitcoin_psbt session shows (its summary from creation, then
-- the signed PSBT, raw transaction and txid); fixed once the session is terminal.
-- signing_sessions.policy_refusals: members that refused by their own policy (policy_refused,
-- with the rule), attempt by attempt: availability events, never faults.

ALTER TABLE nonce_commitments ADD COLUMN IF NOT EXISTS input_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nonce_commitments DROP CONSTRAINT IF EXISTS valid_input_index;
ALTER TABLE nonce_commitments ADD CONSTRAINT valid_input_index CHECK (input_index BETWEEN 0 AND 65535);
ALTER TABLE nonce_commitments DROP CONSTRAINT IF EXISTS unique_participant_attempt;
ALTER TABLE nonce_commitments
  ADD CONSTRAINT unique_participant_attempt UNIQUE (session_id, attempt, participant, input_index);

-- 004's guard, with the input index among what may never change.
CREATE OR REPLACE FUNCTION floe_nonce_commitments_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.nonce_commitment IS DISTINCT FROM OLD.nonce_commitment OR NEW.session_id IS DISTINCT FROM OLD.session_id
     OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.attempt IS DISTINCT FROM OLD.attempt
     OR NEW.participant IS DISTINCT FROM OLD.participant OR NEW.signer_id IS DISTINCT FROM OLD.signer_id
     OR NEW.input_index IS DISTINCT FROM OLD.input_index
     OR (OLD.nonce_used AND (NOT NEW.nonce_used OR NEW.used_at IS DISTINCT FROM OLD.used_at)) THEN
    RAISE EXCEPTION 'nonce_commitments: only an unused commitment may change, and only to used'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_nonce_usage';
  END IF;
  RETURN NEW;
END
$$;

ALTER TABLE signing_sessions
  ADD COLUMN IF NOT EXISTS bitcoin JSONB NULL,
  ADD COLUMN IF NOT EXISTS policy_refusals JSONB NOT NULL DEFAULT '[]'::jsonb;

ALTER TABLE signing_sessions DROP CONSTRAINT IF EXISTS valid_bitcoin;
ALTER TABLE signing_sessions ADD CONSTRAINT valid_bitcoin CHECK (
  (bitcoin IS NULL OR (intent_type = 'bitcoin_psbt' AND jsonb_typeof(bitcoin) = 'object'))
  AND jsonb_typeof(policy_refusals) = 'array');

CREATE OR REPLACE FUNCTION floe_signing_sessions_bitcoin_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF OLD.status IN ('completed', 'failed', 'expired') AND NEW.bitcoin IS DISTINCT FROM OLD.bitcoin THEN
    RAISE EXCEPTION 'signing_sessions: the bitcoin result of a terminal session is immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER signing_sessions_bitcoin_guard BEFORE UPDATE ON signing_sessions
  FOR EACH ROW EXECUTE FUNCTION floe_signing_sessions_bitcoin_guard();
