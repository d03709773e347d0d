/**
 * Autovacuum for the embedded database. A Postgres server vacuums and analyzes its tables in
 * the background; PGlite runs Postgres in single-user mode, where no autovacuum worker exists.
 * Left alone, a PGlite table keeps every row version ever written (a session is written four
 * times) and its indexes an entry for each, and the planner never gets statistics: it guesses
 * from page counts and picks plans that read more with every session served.
 *
 * `maintainTables` does on PGlite what autovacuum would, with autovacuum's default thresholds,
 * from the counters Postgres keeps per table: VACUUM (ANALYZE) a table once its dead rows pass
 * 50 + 20 % of its live ones, ANALYZE it once the rows written since its last analysis pass 50 +
 * 10 %. Each statement holds the single connection while it runs, so it runs between requests,
 * table by table. On a Postgres server it does nothing: autovacuum is there.
 */
import type { Db } from './connection.js';

/** What Postgres counts of one table (pg_stat_user_tables). */
export interface TableActivity {
  table: string;
  live: number;
  dead: number;
  modifiedSinceAnalyze: number;
}

/** Postgres's defaults: autovacuum_vacuum_threshold/_scale_factor, autovacuum_analyze_*. */
export const AUTOVACUUM = {
  vacuumThreshold: 50,
  vacuumScale: 0.2,
  analyzeThreshold: 50,
  analyzeScale: 0.1,
} as const;

/** What autovacuum would do to a table now: VACUUM (ANALYZE), ANALYZE, or nothing. */
export function dueWork(t: TableActivity, o = AUTOVACUUM): 'vacuum' | 'analyze' | null {
  if (t.dead > o.vacuumThreshold + o.vacuumScale * t.live) return 'vacuum';
  if (t.modifiedSinceAnalyze > o.analyzeThreshold + o.analyzeScale * t.live) return 'analyze';
  return null;
}

export interface Maintained {
  vacuumed: string[];
  analyzed: string[];
}

/** On PGlite, vacuums and analyzes the tables that are due (see the module comment). */
export async function maintainTables(db: Db): Promise<Maintained> {
  const done: Maintained = { vacuumed: [], analyzed: [] };
  if (db.kind !== 'pglite') return done;
  // A backend sends its counters to the statistics at most once a second: without this, the
  // rows written in the last second are missing from the counts read below, and reach them after
  // the VACUUM, as dead rows it has already removed.
  await db.adminQuery('SELECT pg_stat_force_next_flush()');
  const r = await db.adminQuery<{
    tbl: string;
    live: number | string;
    dead: number | string;
    mods: number | string;
  }>(
    `SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS tbl, n_live_tup AS live,
            n_dead_tup AS dead, n_mod_since_analyze AS mods
       FROM pg_stat_user_tables ORDER BY relname`,
  );
  for (const row of r.rows) {
    const work = dueWork({
      table: row.tbl,
      live: Number(row.live),
      dead: Number(row.dead),
      modifiedSinceAnalyze: Number(row.mods),
    });
    if (work === 'vacuum') {
      await db.adminQuery(`VACUUM (ANALYZE) ${row.tbl}`);
      done.vacuumed.push(row.tbl);
    } else if (work === 'analyze') {
      await db.adminQuery(`ANALYZE ${row.tbl}`);
      done.analyzed.push(row.tbl);
    }
  }
  return done;
}
