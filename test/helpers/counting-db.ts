/** A Db whose transactions, and the statements run in them, are counted (for "how many" tests). */
import type { Db, TransactionOptions, Tx } from '../../src/db/connection.js';

export interface CountingDb {
  db: Db;
  /** Transactions and statements since the last take. */
  take(): { transactions: number; statements: number };
}

export function countingDb(db: Db): CountingDb {
  const n = { transactions: 0, statements: 0 };
  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === 'transaction') {
        return <T>(fn: (tx: Tx) => Promise<T>, opts?: TransactionOptions) => {
          n.transactions++;
          return target.transaction(
            (tx) =>
              fn({
                tenantId: tx.tenantId,
                query: ((sql: string, params?: readonly unknown[]) => {
                  n.statements++;
                  return tx.query(sql, params);
                }) as Tx['query'],
              }),
            opts,
          );
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    db: wrapped,
    take() {
      const r = { ...n };
      n.transactions = 0;
      n.statements = 0;
      return r;
    },
  };
}
