-- 024: the audit chain's row hash (migration 017) was declared IMMUTABLE, but its body calls
-- convert_to(), which is STABLE. Postgres inlines a SQL function only when its body is no more
-- volatile than the function says it is, so floe_audit_row_hash ran as a function of its own
-- at every audit row: its body planned again at each call, 0.04 ms a row on PGlite and
-- 0.07–0.18 ms on the Postgres server (bench/sql.ts; seven rows per signature, ten per DKG).
-- Declared STABLE, it is inlined into the chain trigger's expression; the hash is the same
-- (test/db/audit-chain.test.ts holds it against src/domain/audit-chain.ts).
ALTER FUNCTION floe_audit_row_hash(text, bigint, text, bigint, text, text, text, text, jsonb) STABLE;
