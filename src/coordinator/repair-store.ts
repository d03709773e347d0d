/**
 * Where share repairs are kept (migration 020): the port the repair driver uses, and its
 * Postgres/PGlite implementation over src/db/queries/repairs.ts (tenant-scoped, RLS).
 */
import type { Db, Tx } from '../db/connection.js';
import * as q from '../db/queries/repairs.js';
import type { KeyRepairRecord, RepairStatus } from '../domain/records.js';

export type NewRepair = Parameters<typeof q.insertRepair>[1];

export interface RepairStore {
  insertRepair(tenantId: string, r: NewRepair): Promise<KeyRepairRecord>;
  getRepair(tenantId: string, id: string): Promise<KeyRepairRecord | undefined>;
  listRepairs(tenantId: string, keyId: string, limit?: number): Promise<KeyRepairRecord[]>;
  transitionRepair(
    tenantId: string,
    id: string,
    from: readonly RepairStatus[],
    to: RepairStatus,
    patch?: { failure?: { code: string; message: string; culprits: number[] }; commitRequest?: unknown },
  ): Promise<KeyRepairRecord | undefined>;
  acknowledgeRepair(tenantId: string, id: string, identifier: number): Promise<KeyRepairRecord | undefined>;
  openRepairs(): Promise<{ tenantId: string; id: string; status: RepairStatus }[]>;
  expireRepairs(): Promise<{ tenantId: string; id: string; keyId: string }[]>;
}

export class PgRepairStore implements RepairStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  private t<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn, { tenantId });
  }

  insertRepair(tenantId: string, r: NewRepair) {
    return this.t(tenantId, (tx) => q.insertRepair(tx, r));
  }

  async getRepair(tenantId: string, id: string) {
    return (await this.t(tenantId, (tx) => q.getRepair(tx, id))) ?? undefined;
  }

  listRepairs(tenantId: string, keyId: string, limit?: number) {
    return this.t(tenantId, (tx) => q.listRepairs(tx, keyId, limit));
  }

  async transitionRepair(
    tenantId: string,
    id: string,
    from: readonly RepairStatus[],
    to: RepairStatus,
    patch: { failure?: { code: string; message: string; culprits: number[] }; commitRequest?: unknown } = {},
  ) {
    return (
      (await this.t(tenantId, (tx) => q.transitionRepair(tx, id, from, to, this.now(), patch))) ?? undefined
    );
  }

  async acknowledgeRepair(tenantId: string, id: string, identifier: number) {
    return (await this.t(tenantId, (tx) => q.acknowledgeRepair(tx, id, identifier, this.now()))) ?? undefined;
  }

  openRepairs() {
    return this.db.transaction((tx) => q.openRepairs(tx));
  }

  expireRepairs() {
    return this.db.transaction((tx) => q.expireRepairs(tx));
  }
}
