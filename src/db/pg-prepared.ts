/**
 * Prepared statements on the Postgres server (the `pg` driver). A query given a name is
 * prepared on its connection the first time (`pg` remembers which names each connection has
 * parsed) and then only bound and executed: the server keeps its plan instead of parsing,
 * analyzing and planning the text again every time (bench/session-store.ts: about a third of
 * the database time of a signature).
 *
 * A prepared statement can go stale. When another process changes the schema so that a
 * statement's rows change shape (a column added to a table read with `SELECT *` or `RETURNING
 * *`), the server refuses it: "cached plan must not change result type" (0A000); once
 * deallocated behind `pg`'s back (DISCARD ALL, DEALLOCATE), it no longer exists (26000). The
 * server re-plans on its own for every other change. Either refusal aborts the transaction;
 * src/db/connection.ts then drops every connection that prepared statements before it, and runs
 * the transaction again on a fresh one.
 */

/** How many statement texts get a name (the rest run unnamed, as before). */
export const MAX_PREPARED_TEXTS = 1024;

/** One name per statement text, the same on every connection of a pool. */
export class PreparedNames {
  private readonly names = new Map<string, string>();

  constructor(private readonly max = MAX_PREPARED_TEXTS) {}

  /** The text's name; a new one the first time; undefined once `max` texts have one. */
  nameOf(text: string): string | undefined {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < this.max) {
      name = `floe_${this.names.size}`;
      this.names.set(text, name);
    }
    return name;
  }

  get size(): number {
    return this.names.size;
  }
}

/** Whether the server refused one of the connection's prepared statements as stale (above). */
export function isStalePrepared(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (typeof message !== 'string') return false;
  if (code === '0A000') return /cached plan must not change result type/.test(message);
  return code === '26000' && /prepared statement "floe_\d+" does not exist/.test(message);
}
