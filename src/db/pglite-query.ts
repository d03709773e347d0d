/**
 * Parameterized statements on PGlite as prepared statements, each execution one call into its
 * WebAssembly Postgres.
 *
 * `PGlite.query` sends the extended-protocol messages one call at a time — Parse, Describe
 * (statement: the parameters' types, which decide how each value is serialized), Bind,
 * Describe (portal), Execute, Sync — and Postgres parses, analyzes and plans the text again on
 * every execution. Here the first execution of a statement text prepares it under a name of
 * its own (Parse, Describe, Sync in one call) and keeps its parameter types and the description
 * of its rows; every execution is then Bind, Execute and Sync in one call, on the prepared
 * statement, whose plan Postgres caches and re-plans when what it depends on changes (tables,
 * the role, row-level security, search_path). A re-plan never changes the rows' columns or
 * types (Postgres refuses the execution instead: "cached plan must not change result type"),
 * so the description kept from the Describe stays the rows' description: the rows arrive
 * without one, in text, and are parsed as if it had come first (the portal's own Describe
 * would be the same columns, rebuilt by Postgres and parsed again here on every execution).
 * Values are serialized as `PGlite.query` does (PGlite's serializer for
 * the parameter's type, `toString()` otherwise), rows parsed by PGlite's own result parser, and
 * a database error is PGlite's `DatabaseError` (SQLSTATE, constraint, …), thrown after the
 * Sync, so the connection is ready for the ROLLBACK.
 *
 * Prepared statements belong to the schema they were prepared on: whoever may have changed it
 * calls {@link PgliteStatements.deallocate}.
 */
import { type PGlite, parse, protocol } from '@electric-sql/pglite';
import { concatBytes } from '../crypto/hex.js';

/** Statement texts kept prepared (the service has a few hundred at most). */
const MAX_PREPARED = 1024;

type BackendMessage = Parameters<typeof parse.parseResults>[0][number];

interface Prepared {
  name: string;
  /** Type OIDs of the parameters, in order. */
  types: readonly number[];
  /** The statement's RowDescription message; undefined when it returns no rows (NoData). */
  rows: BackendMessage | undefined;
}

export class PgliteStatements {
  private readonly prepared = new Map<string, Prepared>();
  private seq = 0;

  constructor(
    private readonly pg: PGlite,
    private readonly maxPrepared = MAX_PREPARED,
  ) {}

  /** Runs one statement; the caller holds the connection (no other statement interleaves). */
  query<R>(sql: string, params: readonly unknown[] = []): Promise<{ rows: R[]; rowCount: number }> {
    return this.pg._runExclusiveQuery(async () => {
      const p = this.prepared.get(sql) ?? (await this.prepare(sql));
      const values = params.map((v, i) => {
        if (v === null || v === undefined) return null;
        const s = this.pg.serializers[p.types[i] ?? -1];
        return s ? s(v) : String(v);
      });
      const serialize = protocol.serialize;
      const { messages } = await this.pg.execProtocol(
        concatBytes(serialize.bind({ statement: p.name, values }), serialize.execute({}), serialize.sync()),
        { syncToFs: false },
      );
      const r = parse.parseResults(p.rows ? [p.rows, ...messages] : messages, this.pg.parsers)[0]!;
      return { rows: r.rows as R[], rowCount: r.affectedRows || r.rows.length };
    });
  }

  /**
   * Runs statements without parameters (a transaction's opening and its COMMIT or ROLLBACK): the
   * simple query and a Sync in one call into the WebAssembly Postgres. `PGlite.exec` makes two
   * calls (the query, then the Sync), and after them asks its file system to sync (a no-op on
   * Node's, whose writes go straight to the files) and looks for a written blob (COPY TO
   * '/dev/blob'); none of that applies here. A database error is thrown as by `exec`.
   */
  exec(sql: string): Promise<void> {
    return this.pg._runExclusiveQuery(async () => {
      const serialize = protocol.serialize;
      await this.pg.execProtocol(concatBytes(serialize.query(sql), serialize.sync()), { syncToFs: false });
    });
  }

  /** Drops every prepared statement (the schema may have changed); they are prepared again on use. */
  deallocate(): Promise<void> {
    return this.pg._runExclusiveQuery(() => this.dropAll());
  }

  private async dropAll(): Promise<void> {
    if (this.prepared.size === 0) return;
    this.prepared.clear();
    await this.pg.execProtocol(protocol.serialize.query('DEALLOCATE ALL'), { syncToFs: false });
  }

  /** Prepares `sql` under a new name; nothing is kept when Postgres refuses it. */
  private async prepare(sql: string): Promise<Prepared> {
    if (this.prepared.size >= this.maxPrepared) await this.dropAll();
    const name = `floe_${++this.seq}`;
    const serialize = protocol.serialize;
    const { messages } = await this.pg.execProtocol(
      concatBytes(
        serialize.parse({ name, text: sql }),
        serialize.describe({ type: 'S', name }),
        serialize.sync(),
      ),
      { syncToFs: false },
    );
    const p = {
      name,
      types: parse.parseDescribeStatementResults(messages),
      rows: messages.find((m) => m.name === 'rowDescription'),
    };
    this.prepared.set(sql, p);
    return p;
  }
}
