-- 004: signing sessions (DESIGN §6, §7) and nonce commitments.
--
-- Status machine:
--   pending → nonce_collection → signing → aggregating → completed
--   nonce_collection | signing | aggregating → nonce_collection   (a new attempt: attempt + 1)
--   any non-terminal → failed | expired
-- completed, failed and expired are terminal. The coordinator advances a session with a
-- conditional UPDATE (… WHERE status = ANY(expected)), so of two writers only one wins; the
-- trigger below refuses any other change whoever makes it.

CREATE TABLE IF NOT EXISTS signing_sessions (
  session_id                   TEXT PRIMARY KEY CHECK (session_id ~ '^[A-Za-z0-9_-]{16,128}$'),
  tenant_id                    TEXT NOT NULL DEFAULT floe_current_tenant() REFERENCES tenants (id),
  key_id                       TEXT NOT NULL,
  message_hash                 TEXT NOT NULL CHECK (message_hash ~ '^[0-9a-f]{64}$'),
  message                      TEXT NULL,
  event_template               JSONB NULL,
  event_type                   TEXT NULL,
  participants                 JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(participants) = 'array'),
  threshold                    INTEGER NOT NULL CHECK (threshold BETWEEN 1 AND 255),
  attempt                      INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  nonce_commitments            JSONB NOT NULL DEFAULT '{}',
  partial_signatures           JSONB NOT NULL DEFAULT '{}',
  final_signature              TEXT NULL CHECK (final_signature ~ '^[0-9a-f]{128}$'),
  created_by                   TEXT NULL,
  status                       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                                 'pending', 'nonce_collection', 'signing', 'aggregating',
                                 'completed', 'failed', 'expired')),
  final_event_id               TEXT NULL,
  idempotency_key              TEXT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  -- hash of the request that carried idempotency_key: the same key with another request is a conflict
  idempotency_fingerprint      TEXT NULL,
  created_at                   BIGINT NOT NULL,
  updated_at                   BIGINT NOT NULL,
  nonce_collection_started_at  BIGINT NULL,
  signing_started_at           BIGINT NULL,
  completed_at                 BIGINT NULL,
  failed_at                    BIGINT NULL,
  expires_at                   BIGINT NOT NULL,
  error_message                TEXT NULL,
  error_code                   TEXT NULL,
  culprits                     JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(culprits) = 'array'),
  CONSTRAINT signing_sessions_tenant_session_key UNIQUE (tenant_id, session_id),
  CONSTRAINT signing_sessions_idempotency_key UNIQUE (tenant_id, idempotency_key),
  CONSTRAINT signing_sessions_key_fkey FOREIGN KEY (tenant_id, key_id) REFERENCES keys (tenant_id, id),
  CONSTRAINT valid_completion CHECK (
    status <> 'completed' OR (final_signature IS NOT NULL AND completed_at IS NOT NULL)),
  CONSTRAINT valid_failure CHECK (
    status <> 'failed' OR (error_message IS NOT NULL AND failed_at IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS signing_sessions_tenant_created_idx
  ON signing_sessions (tenant_id, created_at DESC, session_id DESC);
CREATE INDEX IF NOT EXISTS signing_sessions_status_idx ON signing_sessions (status);
-- the expiry job only ever looks at live sessions
CREATE INDEX IF NOT EXISTS signing_sessions_expires_idx ON signing_sessions (expires_at)
  WHERE status IN ('pending', 'nonce_collection', 'signing', 'aggregating');
CREATE INDEX IF NOT EXISTS signing_sessions_key_idx ON signing_sessions (key_id);

-- One row per participant per attempt. A commitment is hiding||binding, two 33-byte
-- compressed points (132 hex characters). No commitment — and no single nonce point — may
-- ever appear twice, in any session of any tenant: the unique indexes are enforced whatever
-- row-level security hides.
CREATE TABLE IF NOT EXISTS nonce_commitments (
  id                BIGSERIAL PRIMARY KEY,
  tenant_id         TEXT NOT NULL DEFAULT floe_current_tenant(),
  session_id        TEXT NOT NULL,
  attempt           INTEGER NOT NULL CHECK (attempt >= 1),
  participant       INTEGER NOT NULL CHECK (participant BETWEEN 1 AND 255),
  signer_id         TEXT NOT NULL,
  nonce_commitment  TEXT NOT NULL CHECK (nonce_commitment ~ '^0[23][0-9a-f]{64}0[23][0-9a-f]{64}$'),
  nonce_used        BOOLEAN NOT NULL DEFAULT false,
  used_at           BIGINT NULL,
  created_at        BIGINT NOT NULL,
  CONSTRAINT nonce_commitments_session_fkey FOREIGN KEY (tenant_id, session_id)
    REFERENCES signing_sessions (tenant_id, session_id) ON DELETE CASCADE,
  CONSTRAINT unique_nonce_commitment UNIQUE (nonce_commitment),
  CONSTRAINT unique_participant_attempt UNIQUE (session_id, attempt, participant),
  CONSTRAINT valid_nonce_usage CHECK (NOT nonce_used OR used_at IS NOT NULL),
  CONSTRAINT distinct_nonce_points CHECK (substr(nonce_commitment, 1, 66) <> substr(nonce_commitment, 67, 66))
);

CREATE UNIQUE INDEX IF NOT EXISTS unique_nonce_hiding ON nonce_commitments ((substr(nonce_commitment, 1, 66)));
CREATE UNIQUE INDEX IF NOT EXISTS unique_nonce_binding ON nonce_commitments ((substr(nonce_commitment, 67, 66)));
CREATE INDEX IF NOT EXISTS nonce_commitments_tenant_idx ON nonce_commitments (tenant_id);

CREATE OR REPLACE FUNCTION floe_signing_sessions_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.session_id IS DISTINCT FROM OLD.session_id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.message_hash IS DISTINCT FROM OLD.message_hash
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'signing_sessions: identity columns are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF OLD.final_signature IS NOT NULL AND NEW.final_signature IS DISTINCT FROM OLD.final_signature THEN
    RAISE EXCEPTION 'signing_sessions: the final signature is immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status = 'nonce_collection')
    OR (OLD.status = 'nonce_collection' AND NEW.status = 'signing')
    OR (OLD.status = 'signing' AND NEW.status = 'aggregating')
    OR (OLD.status = 'aggregating' AND NEW.status = 'completed')
    OR (OLD.status IN ('signing', 'aggregating') AND NEW.status = 'nonce_collection')
    OR (OLD.status IN ('pending', 'nonce_collection', 'signing', 'aggregating')
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

CREATE OR REPLACE TRIGGER signing_sessions_guard BEFORE UPDATE ON signing_sessions
  FOR EACH ROW EXECUTE FUNCTION floe_signing_sessions_guard();

-- Refuse a flag going back to "unused", and changes to what was committed.
CREATE OR REPLACE FUNCTION floe_nonce_commitments_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.nonce_commitment IS DISTINCT FROM OLD.nonce_commitment OR NEW.session_id IS DISTINCT FROM OLD.session_id
     OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.attempt IS DISTINCT FROM OLD.attempt
     OR NEW.participant IS DISTINCT FROM OLD.participant OR NEW.signer_id IS DISTINCT FROM OLD.signer_id
     OR (OLD.nonce_used AND (NOT NEW.nonce_used OR NEW.used_at IS DISTINCT FROM OLD.used_at)) THEN
    RAISE EXCEPTION 'nonce_commitments: only an unused commitment may change, and only to used'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_nonce_usage';
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER nonce_commitments_guard BEFORE UPDATE ON nonce_commitments
  FOR EACH ROW EXECUTE FUNCTION floe_nonce_commitments_guard();

-- Marks a commitment used; true only for the first caller (the row lock serializes
-- concurrent callers and the second one finds nonce_used = true). Runs with the caller's
-- rights, so only commitments of the caller's tenant can be marked.
CREATE OR REPLACE FUNCTION mark_nonce_as_used(p_nonce_commitment TEXT) RETURNS boolean
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  UPDATE nonce_commitments
     SET nonce_used = true, used_at = floe_now_ms()
   WHERE nonce_commitment = p_nonce_commitment AND nonce_used = false;
  RETURN FOUND;
END
$$;
