/**
 * The `BunkerStore` of one bunker (src/nostr/bunker.ts) over the coordinator's database: its
 * clients and single-use secrets in the tenant's rows (migration 013, row-level security).
 * Every coordinator reads the same rows, so a revoke or a disable written by any of them
 * holds at once for the one that runs the bunker: a client of a disabled bunker is unknown
 * and its secrets are refused. The bunker works in Unix seconds, the database in milliseconds.
 */
import type { Db, Tx } from '../../db/connection.js';
import * as q from '../../db/queries/bunkers.js';
import { isUniqueViolation } from '../../db/queries/util.js';
import type { BunkerClient, BunkerSecretRecord, BunkerStore } from '../../nostr/bunker.js';
import { type Permission, validatePermission } from '../../nostr/nip46.js';
import { FloeError } from '../../protocol/errors.js';

const toMs = (s: number) => s * 1000;
const toS = (ms: number) => Math.floor(ms / 1000);

/** Stored permissions, checked again on the way out (a row is input like any other). */
function permissions(raw: unknown[]): Permission[] {
  return raw.map(validatePermission);
}

export function clientOfRow(r: q.BunkerClientRow): BunkerClient {
  const c: BunkerClient = {
    pubkey: r.pubkey,
    permissions: permissions(r.permissions),
    via: r.via,
    connectedAt: toS(r.connectedAt),
    relays: [...r.relays],
  };
  if (r.name !== null) c.name = r.name;
  if (r.url !== null) c.url = r.url;
  if (r.image !== null) c.image = r.image;
  return c;
}

export class PgBunkerStore implements BunkerStore {
  constructor(
    private readonly db: Db,
    private readonly tenantId: string,
    private readonly keyId: string,
    private readonly now: () => number = Date.now,
  ) {}

  private t<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(fn, { tenantId: this.tenantId });
  }

  async listClients(): Promise<BunkerClient[]> {
    return (await this.t((tx) => q.listClients(tx, this.keyId))).map(clientOfRow);
  }

  async getClient(pubkey: string): Promise<BunkerClient | undefined> {
    const r = await this.t((tx) => q.getActiveClient(tx, this.keyId, pubkey));
    return r ? clientOfRow(r) : undefined;
  }

  async saveClient(c: BunkerClient): Promise<void> {
    const row: q.BunkerClientRow = {
      pubkey: c.pubkey,
      permissions: c.permissions.map(validatePermission),
      via: c.via,
      relays: [...c.relays],
      name: c.name ?? null,
      url: c.url ?? null,
      image: c.image ?? null,
      connectedAt: toMs(c.connectedAt),
    };
    await this.t((tx) => q.upsertClient(tx, this.keyId, row, this.now()));
  }

  deleteClient(pubkey: string): Promise<boolean> {
    return this.t((tx) => q.deleteClient(tx, this.keyId, pubkey));
  }

  async addSecret(r: BunkerSecretRecord): Promise<void> {
    try {
      await this.t((tx) =>
        q.insertSecret(tx, this.keyId, {
          secretSha256: r.hash,
          permissions: r.permissions.map(validatePermission),
          label: r.label ?? null,
          createdAt: toMs(r.createdAt),
          expiresAt: toMs(r.expiresAt),
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw new FloeError('conflict', 'secret: already exists');
      throw e;
    }
  }

  async consumeSecret(hash: string, now: number, client: string): Promise<BunkerSecretRecord | undefined> {
    const r = await this.t((tx) =>
      q.consumeSecret(tx, this.keyId, { secretSha256: hash, now: toMs(now), client }),
    );
    if (!r) return undefined;
    const out: BunkerSecretRecord = {
      hash: r.secretSha256,
      permissions: permissions(r.permissions),
      createdAt: toS(r.createdAt),
      expiresAt: toS(r.expiresAt),
    };
    if (r.label !== null) out.label = r.label;
    return out;
  }
}
