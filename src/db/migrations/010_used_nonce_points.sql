-- 010: every nonce point ever committed, kept for good (issue: commitment uniqueness must not
-- die with the session cleanup). nonce_commitments rows go with their session after
-- retention_days (ON DELETE CASCADE); the SHA-256 of each of their points stays here, and a
-- point seen before is refused whatever cleanup deleted since. No tenant column: the point is
-- random and public (a commitment), and uniqueness is across all tenants. floe_app has no
-- rights on the table: only the trigger (SECURITY DEFINER) writes it, only the check reads it.

CREATE TABLE IF NOT EXISTS used_nonce_points (
  point_sha256  TEXT PRIMARY KEY CHECK (point_sha256 ~ '^[0-9a-f]{64}$'),
  first_seen_at BIGINT NOT NULL
);

-- Points of the commitments stored before this migration.
INSERT INTO used_nonce_points (point_sha256, first_seen_at)
SELECT encode(sha256(decode(p, 'hex')), 'hex'), min(created_at)
  FROM (SELECT substr(nonce_commitment, 1, 66) AS p, created_at FROM nonce_commitments
        UNION ALL
        SELECT substr(nonce_commitment, 67, 66), created_at FROM nonce_commitments) pts
 GROUP BY 1
ON CONFLICT (point_sha256) DO NOTHING;

-- Every new commitment's two points, in the inserting transaction: a point seen before
-- (even in a session deleted since) makes the INSERT fail with used_nonce_points_pkey.
CREATE OR REPLACE FUNCTION floe_record_nonce_points() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  INSERT INTO used_nonce_points (point_sha256, first_seen_at)
  VALUES (encode(sha256(decode(substr(NEW.nonce_commitment, 1, 66), 'hex')), 'hex'), NEW.created_at),
         (encode(sha256(decode(substr(NEW.nonce_commitment, 67, 66), 'hex')), 'hex'), NEW.created_at);
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER nonce_commitments_record_points AFTER INSERT ON nonce_commitments
  FOR EACH ROW EXECUTE FUNCTION floe_record_nonce_points();

-- Whether a commitment, or either of its points, was ever committed (live or cleaned up).
CREATE OR REPLACE FUNCTION floe_nonce_commitment_seen(p_nonce_commitment TEXT) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM used_nonce_points
     WHERE point_sha256 IN (encode(sha256(decode(substr(p_nonce_commitment, 1, 66), 'hex')), 'hex'),
                            encode(sha256(decode(substr(p_nonce_commitment, 67, 66), 'hex')), 'hex')))
$$;

REVOKE ALL ON used_nonce_points FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION floe_record_nonce_points() FROM PUBLIC;
