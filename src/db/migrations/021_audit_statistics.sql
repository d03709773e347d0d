-- 021: no planner statistics for the audit log's data, hash and prev_hash columns. No query
-- filters or joins on them, and gathering them (a jsonb value and two 64-character hex strings
-- per sampled row) was most of what ANALYZE of the largest table cost: on PGlite that ANALYZE
-- runs in the coordinator's own process and holds its single connection (src/db/maintenance.ts).
ALTER TABLE audit_events ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE audit_events ALTER COLUMN hash SET STATISTICS 0;
ALTER TABLE audit_events ALTER COLUMN prev_hash SET STATISTICS 0;
