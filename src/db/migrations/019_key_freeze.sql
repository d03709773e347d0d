-- 019: the kill switch and key controls (issue 15 items 7, 8; src/domain/vocabulary.ts KEY_STATUSES).
--
-- keys.status gains `frozen`: an operator's signed instruction stopped all signing with the key
-- (the coordinator refuses it, and every signer that was told refuses it on its own). The
-- instruction itself is kept in the audit log (kind key.frozen / key.unfrozen, with its
-- signature), where the hash chain covers it. `disabled` stays the coordinator-only switch.
--
-- Moves: pending → active | failed; active ⇄ disabled; active | disabled → frozen;
-- frozen → active (unfreeze). Identity columns never change.

ALTER TABLE keys DROP CONSTRAINT IF EXISTS keys_status_check;
ALTER TABLE keys ADD CONSTRAINT keys_status_check
  CHECK (status IN ('pending', 'active', 'failed', 'disabled', 'frozen'));

CREATE OR REPLACE FUNCTION floe_keys_guard() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
    RAISE EXCEPTION 'keys: id, tenant_id and created_at are immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF OLD.status IN ('active', 'disabled', 'frozen')
     AND (NEW.group_public_key IS DISTINCT FROM OLD.group_public_key
       OR NEW.x_only_public_key IS DISTINCT FROM OLD.x_only_public_key) THEN
    RAISE EXCEPTION 'keys: the public key of an activated key is immutable'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status IN ('active', 'failed'))
    OR (OLD.status = 'active' AND NEW.status IN ('disabled', 'frozen'))
    OR (OLD.status = 'disabled' AND NEW.status IN ('active', 'frozen'))
    OR (OLD.status = 'frozen' AND NEW.status = 'active')) THEN
    RAISE EXCEPTION 'keys: illegal status transition % -> %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'valid_transition';
  END IF;
  RETURN NEW;
END
$$;
