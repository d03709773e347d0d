/**
 * Where share refreshes are kept (migration 020): the port the refresh driver uses, and its
 * Postgres/PGlite implementation over src/db/queries/refreshes.ts (tenant-scoped transactions,
 * RLS as everywhere).
 */
import type { Db, Tx } from '../db/connection.js';
import * as q from '../db/queries/refreshes.js';
import type { KeyMember, KeyRefreshRecord, RefreshStatus } from '../domain/records.js';

export interface RefreshStore {
  insertRefresh(
    tenantId: string,
    r: {
      id: string;
      keyId: string;
      generation: number;
      participants: KeyMember[];
      createdAt: number;
      expiresAt: number;
    },
  ): Promise<KeyRefreshRecord>;
  getRefresh(tenantId: string, id: string): Promise<KeyRefreshRecord | undefined>;
  listRefreshes(tenantId: string, keyId: string, limit?: number): Promise<KeyRefreshRecord[]>;
  transitionRefresh(
    tenantId: string,
    id: string,
    from: readonly RefreshStatus[],
    to: RefreshStatus,
    failure?: { code: string; message: string; culprits: number[] },
  ): Promise<KeyRefreshRecord | undefined>;
  /** round3 → committing, and the key's generation and public package, in one transaction. */
  decideRefresh(
    tenantId: string,
    id: string,
    publicKeyPackage: unknown,
    certificates: { identifier: number; certificate: string }[],
  ): Promise<KeyRefreshRecord | undefined>;
  acknowledgeCommit(tenantId: string, id: string, identifier: number): Promise<KeyRefreshRecord | undefined>;
  openRefreshes(): Promise<{ tenantId: string; id: string; status: RefreshStatus }[]>;
  expireRefreshes(): Promise<{ tenantId: string; id: string; keyId: string }[]>;
}

export class PgRefreshStore implements RefreshStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  private t<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn, { tenantId });
  }

  insertRefresh(tenantId: string, r: Parameters<RefreshStore['insertRefresh']>[1]) {
    return this.t(tenantId, (tx) => q.insertRefresh(tx, r));
  }

  async getRefresh(tenantId: string, id: string) {
    return (await this.t(tenantId, (tx) => q.getRefresh(tx, id))) ?? undefined;
  }

  listRefreshes(tenantId: string, keyId: string, limit?: number) {
    return this.t(tenantId, (tx) => q.listRefreshes(tx, keyId, limit));
  }

  async transitionRefresh(
    tenantId: string,
    id: string,
    from: readonly RefreshStatus[],
    to: RefreshStatus,
    failure?: { code: string; message: string; culprits: number[] },
  ) {
    return (
      (await this.t(tenantId, (tx) => q.transitionRefresh(tx, id, from, to, this.now(), failure))) ??
      undefined
    );
  }

  async decideRefresh(
    tenantId: string,
    id: string,
    publicKeyPackage: unknown,
    certificates: { identifier: number; certificate: string }[],
  ) {
    return (
      (await this.t(tenantId, (tx) => q.decideRefresh(tx, id, publicKeyPackage, certificates, this.now()))) ??
      undefined
    );
  }

  async acknowledgeCommit(tenantId: string, id: string, identifier: number) {
    return (await this.t(tenantId, (tx) => q.acknowledgeCommit(tx, id, identifier, this.now()))) ?? undefined;
  }

  openRefreshes() {
    return this.db.transaction((tx) => q.openRefreshes(tx));
  }

  expireRefreshes() {
    return this.db.transaction((tx) => q.expireRefreshes(tx));
  }
}
