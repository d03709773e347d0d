-- 027: the bitcoin and publish guards of signing_sessions (migrations 012 and 015) are called only
-- for an UPDATE that touches what they guard. Each call of a PL/pgSQL function with its own
-- search_path costs ~0.02–0.03 ms on PGlite, and every move of every session called both to
-- find nothing to refuse (a batch of a hundred: two hundred calls per move). A trigger's WHEN
-- condition is evaluated without calling the function; the functions are unchanged and still
-- decide what they refuse.

CREATE OR REPLACE TRIGGER signing_sessions_bitcoin_guard BEFORE UPDATE ON signing_sessions
  FOR EACH ROW
  WHEN (NEW.bitcoin IS DISTINCT FROM OLD.bitcoin)
  EXECUTE FUNCTION floe_signing_sessions_bitcoin_guard();

CREATE OR REPLACE TRIGGER signing_sessions_publish_guard BEFORE UPDATE ON signing_sessions
  FOR EACH ROW
  WHEN (NEW.publish_relays IS DISTINCT FROM OLD.publish_relays
        OR NEW.publish_results IS DISTINCT FROM OLD.publish_results)
  EXECUTE FUNCTION floe_signing_sessions_publish_guard();
