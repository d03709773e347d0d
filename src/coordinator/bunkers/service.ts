/**
 * The bunker API of a key (routes/bunker.ts; docs/nostr.md): enable it and issue a
 * single-use `bunker://` secret, accept a client's `nostrconnect://` URI, list and revoke
 * clients, list and decide held requests, disable it, show its state. Works on any
 * coordinator of the database: everything but `connect` is rows (the coordinator that runs
 * the bunker picks changes up on its next tick, or at once when it is this one).
 *
 * A secret is generated here, returned once in the bunker URL and stored only as its SHA-256;
 * it never reaches a log or the audit (which records who issued what, for how long).
 */
import { randomBytes } from 'node:crypto';
import { wipe } from '../../crypto/hex.js';
import { generateIdentityKey, softwareIdentity } from '../../crypto/identity.js';
import type { Tx } from '../../db/connection.js';
import * as q from '../../db/queries/bunkers.js';
import type { KeyRecord, Principal } from '../../domain/records.js';
import { secretHash } from '../../nostr/bunker.js';
import { formatPermission, type Permission, toBunkerUrl } from '../../nostr/nip46.js';
import type {
  BunkerApprovalObject,
  BunkerClientObject,
  BunkerConnectBody,
  BunkerConnectedObject,
  BunkerObject,
  BunkerUrlObject,
  EnableBunkerBody,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { BunkerHost } from './host.js';
import { DEFAULT_BUNKER_PERMISSIONS, parsePermissionList, parseRelayList } from './policy.js';
import { clientOfRow } from './store.js';

/** Lifetime of a secret unless the request says otherwise (the bunker's own default). */
export const DEFAULT_SECRET_TTL_S = 15 * 60;

export interface BunkerServiceOptions {
  host: BunkerHost;
  getKey(tenantId: string, keyId: string): Promise<KeyRecord | undefined>;
  audit(tenantId: string, kind: string, subjectType: string, subjectId: string, data: unknown): Promise<void>;
  now?: () => number;
}

function clientObject(r: q.BunkerClientRow): BunkerClientObject {
  const c = clientOfRow(r);
  return {
    pubkey: c.pubkey,
    via: c.via,
    permissions: c.permissions.map(formatPermission),
    relays: c.relays,
    name: c.name ?? null,
    url: c.url ?? null,
    image: c.image ?? null,
    connected_at: r.connectedAt,
  };
}

function approvalObject(a: q.BunkerApprovalRow): BunkerApprovalObject {
  return {
    id: a.approvalId,
    client: a.client,
    request_id: a.requestId,
    method: a.method,
    kind: a.kind,
    status: a.status,
    created_at: a.createdAt,
    expires_at: a.expiresAt,
    decided_at: a.decidedAt,
    decided_by: a.decidedBy,
  };
}

export class BunkerService {
  private readonly now: () => number;

  constructor(private readonly o: BunkerServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  private t<T>(p: Principal, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.o.host.db.transaction(fn, { tenantId: p.tenantId });
  }

  private async activeKey(p: Principal, keyId: string): Promise<KeyRecord & { xOnlyPublicKey: string }> {
    const k = await this.o.getKey(p.tenantId, keyId);
    if (!k) throw new FloeError('key_not_found', `no key ${keyId}`);
    if (k.status !== 'active' || !k.xOnlyPublicKey) {
      throw new FloeError('key_not_active', `key ${keyId} is ${k.status}`);
    }
    return k as KeyRecord & { xOnlyPublicKey: string };
  }

  private async bunkerRow(p: Principal, keyId: string): Promise<q.BunkerRow> {
    await this.keyExists(p, keyId);
    const b = await this.t(p, (tx) => q.getBunker(tx, keyId));
    if (!b) {
      throw new FloeError('bunker_not_found', `key ${keyId} has no bunker`, {
        hint: `enable one with POST /v1/keys/${keyId}/bunker`,
      });
    }
    return b;
  }

  private async keyExists(p: Principal, keyId: string): Promise<void> {
    if (!(await this.o.getKey(p.tenantId, keyId))) throw new FloeError('key_not_found', `no key ${keyId}`);
  }

  private audit(p: Principal, keyId: string, kind: string, data: Record<string, unknown>): Promise<void> {
    return this.o.audit(p.tenantId, kind, 'bunker', keyId, { ...data, by: p.tokenId });
  }

  /**
   * Enable the key's bunker (creating its remote-signer key the first time) and issue a
   * single-use secret. Relays: those given, else the bunker's own, else the key's.
   */
  async enable(p: Principal, keyId: string, body: EnableBunkerBody): Promise<BunkerUrlObject> {
    const key = await this.activeKey(p, keyId);
    // every input is checked before anything is written
    const permissions = parsePermissionList(body.permissions ?? DEFAULT_BUNKER_PERMISSIONS, 'permissions');
    const requireApproval =
      body.require_approval === undefined
        ? undefined
        : parsePermissionList(body.require_approval, 'require_approval').map(formatPermission);
    const given = body.relays === undefined ? undefined : parseRelayList(body.relays, 'relays');
    const ttlS = body.expires_in_s ?? DEFAULT_SECRET_TTL_S;
    const secret = randomBytes(16).toString('hex');
    const now = this.now();
    const expiresAt = now + ttlS * 1000;

    const keyRelays = key.relays?.length ? parseRelayList(key.relays.slice(0, 16), 'key relays') : undefined;
    const { row, created, wasEnabled } = await this.t(p, async (tx) => {
      const existing = await q.getBunker(tx, keyId, true);
      const relays = given ?? existing?.relays ?? keyRelays;
      if (!relays) {
        throw new FloeError('invalid_request', 'relays: the bunker needs relays to listen on', {
          hint: `give "relays": ["wss://…"], or set the key's relays with PATCH /v1/keys/${keyId}`,
        });
      }
      let created = false;
      if (!existing) {
        await this.insertBunker(tx, p, keyId, key, relays, requireApproval ?? [], now);
        created = true;
      }
      const row = await q.enableBunker(tx, keyId, {
        relays,
        requireApproval: requireApproval ?? existing?.requireApproval ?? [],
        now,
      });
      await q.insertSecret(tx, keyId, {
        secretSha256: secretHash(secret),
        permissions,
        label: `issued by ${p.tokenId}`.slice(0, 200),
        createdAt: now,
        expiresAt,
      });
      return { row: row!, created, wasEnabled: existing?.enabled ?? false };
    });
    if (created) {
      await this.audit(p, keyId, 'bunker.created', { remote_signer_pubkey: row.remoteSignerPubkey });
    } else if (!wasEnabled) {
      await this.audit(p, keyId, 'bunker.enabled', {});
    }
    await this.audit(p, keyId, 'bunker.secret_issued', {
      permissions: permissions.map(formatPermission),
      expires_at: expiresAt,
      relays: row.relays,
      require_approval: row.requireApproval,
    });
    // run it here unless another coordinator does; once it listens, the URL works
    await this.o.host.ensureRunning(p.tenantId, keyId);
    return {
      bunker_url: toBunkerUrl({ pubkey: row.remoteSignerPubkey, relays: row.relays, secret }),
      remote_signer_pubkey: row.remoteSignerPubkey,
      relays: row.relays,
      expires_at: expiresAt,
    };
  }

  private async insertBunker(
    tx: Tx,
    p: Principal,
    keyId: string,
    key: KeyRecord & { xOnlyPublicKey: string },
    relays: string[],
    requireApproval: string[],
    now: number,
  ): Promise<void> {
    const secret = generateIdentityKey();
    try {
      const id = softwareIdentity(secret);
      const pubkey = id.publicKeyHex;
      id.dispose();
      // NIP-46 allows the user key as transport key, Floe does not (nor could it: the signers hold it)
      if (pubkey === key.xOnlyPublicKey) throw new FloeError('internal', 'remote-signer key collision');
      const sealed = this.o.host.sealer.seal(secret, {
        tenantId: p.tenantId,
        keyId,
        remoteSignerPubkey: pubkey,
      });
      await q.insertBunker(tx, {
        keyId,
        remoteSignerPubkey: pubkey,
        sealKeyId: sealed.sealKeyId,
        sealedNonce: sealed.nonce,
        sealedSecret: sealed.ciphertext,
        relays,
        requireApproval,
        createdAt: now,
      });
    } finally {
      wipe(secret);
    }
  }

  /**
   * The nostrconnect flow: the bunker answers the client's URI with its secret, on the URI's
   * relays. Needs the bunker running on this coordinator (it publishes from there).
   */
  async connect(p: Principal, keyId: string, body: BunkerConnectBody): Promise<BunkerConnectedObject> {
    await this.activeKey(p, keyId);
    const allow: Permission[] = parsePermissionList(
      body.permissions ?? DEFAULT_BUNKER_PERMISSIONS,
      'permissions',
    );
    const row = await this.bunkerRow(p, keyId);
    if (!row.enabled) {
      throw new FloeError('bunker_disabled', `the bunker of key ${keyId} is disabled`, {
        hint: `enable it with POST /v1/keys/${keyId}/bunker`,
      });
    }
    const placement = await this.o.host.ensureRunning(p.tenantId, keyId);
    const bunker = this.o.host.local(p.tenantId, keyId);
    if (placement !== 'here' || !bunker) {
      throw new FloeError(
        'bunker_elsewhere',
        placement === 'elsewhere'
          ? `the bunker of key ${keyId} runs on another coordinator`
          : `the bunker of key ${keyId} cannot run on this coordinator`,
        {
          hint:
            placement === 'elsewhere'
              ? 'send this request to the coordinator that runs it (GET …/bunker shows which), or retry'
              : `its remote-signer key is sealed under bunker.key ${row.sealKeyId}; this coordinator has ${this.o.host.sealKeyId}`,
        },
      );
    }
    const r = await bunker.connectTo(body.uri, allow);
    await this.audit(p, keyId, 'bunker.nostrconnect', {
      client: r.client.pubkey,
      permissions: r.client.permissions.map(formatPermission),
    });
    const rows = await this.t(p, (tx) => q.listClients(tx, keyId));
    const saved = rows.find((c) => c.pubkey === r.client.pubkey);
    if (!saved) throw new FloeError('conflict', 'the client was removed while connecting');
    return { client: clientObject(saved), ignored_permissions: r.ignored };
  }

  async clients(p: Principal, keyId: string): Promise<BunkerClientObject[]> {
    await this.bunkerRow(p, keyId);
    return (await this.t(p, (tx) => q.listClients(tx, keyId))).map(clientObject);
  }

  /** End a client: it is unknown from now on, wherever the bunker runs; its held requests are refused. */
  async revoke(p: Principal, keyId: string, pubkey: string): Promise<void> {
    await this.bunkerRow(p, keyId);
    const local = this.o.host.local(p.tenantId, keyId);
    const existed = local
      ? await local.revoke(pubkey)
      : await this.t(p, (tx) => q.deleteClient(tx, keyId, pubkey));
    if (!existed) throw new FloeError('bunker_client_not_found', `no client ${pubkey} of this bunker`);
    await this.audit(p, keyId, 'bunker.client_revoked', { client: pubkey });
  }

  async approvals(p: Principal, keyId: string): Promise<BunkerApprovalObject[]> {
    await this.bunkerRow(p, keyId);
    return (await this.t(p, (tx) => q.listPendingApprovals(tx, keyId, this.now()))).map(approvalObject);
  }

  async approval(p: Principal, keyId: string, approvalId: string): Promise<BunkerApprovalObject> {
    await this.bunkerRow(p, keyId);
    const a = await this.t(p, (tx) => q.getApproval(tx, keyId, approvalId));
    if (!a) throw new FloeError('bunker_approval_not_found', `no held request ${approvalId}`);
    return approvalObject(a);
  }

  /** Approve or deny a held request; the bunker answers it (here at once, elsewhere on its next tick). */
  async decide(
    p: Principal,
    keyId: string,
    approvalId: string,
    decision: 'approved' | 'denied',
  ): Promise<BunkerApprovalObject> {
    const row = await this.bunkerRow(p, keyId);
    if (!row.enabled) throw new FloeError('bunker_disabled', `the bunker of key ${keyId} is disabled`);
    const now = this.now();
    const done = await this.t(p, (tx) =>
      q.settleApproval(tx, keyId, approvalId, { status: decision, now, by: p.tokenId, unexpired: true }),
    );
    if (!done) {
      const a = await this.t(p, (tx) => q.getApproval(tx, keyId, approvalId));
      if (!a) throw new FloeError('bunker_approval_not_found', `no held request ${approvalId}`);
      throw new FloeError(
        'conflict',
        a.status === 'pending'
          ? `held request ${approvalId} has expired`
          : `held request ${approvalId} is already ${a.status}`,
      );
    }
    const local = this.o.host.local(p.tenantId, keyId);
    if (local) {
      if (decision === 'approved') local.approve(approvalId);
      else local.deny(approvalId);
    }
    await this.audit(p, keyId, 'bunker.approval_decided', { approval_id: approvalId, decision });
    return approvalObject(done);
  }

  /** Stop answering: the bunker stops (wherever it runs), unused secrets are dropped, clients stay. */
  async disable(p: Principal, keyId: string): Promise<BunkerObject> {
    await this.bunkerRow(p, keyId);
    const row = await this.t(p, (tx) => q.disableBunker(tx, keyId, this.now()));
    if (!row) throw new FloeError('bunker_not_found', `key ${keyId} has no bunker`);
    await this.o.host.stopLocal(p.tenantId, keyId, 'disabled');
    await this.audit(p, keyId, 'bunker.disabled', {});
    return this.state(p, keyId);
  }

  async state(p: Principal, keyId: string): Promise<BunkerObject> {
    const b = await this.bunkerRow(p, keyId);
    const clients = await this.t(p, (tx) => q.countClients(tx, keyId));
    const now = this.now();
    const held = b.enabled && b.leaseOwner !== null && b.leaseUntil !== null && b.leaseUntil > now;
    return {
      key_id: b.keyId,
      remote_signer_pubkey: b.remoteSignerPubkey,
      relays: b.relays,
      enabled: b.enabled,
      require_approval: b.requireApproval,
      clients,
      running: held
        ? {
            coordinator: b.leaseOwner!,
            lease_until: b.leaseUntil!,
            here: b.leaseOwner === this.o.host.instanceId && !!this.o.host.local(p.tenantId, keyId),
          }
        : null,
      sealing_key: b.sealKeyId,
      openable_here: b.sealKeyId === this.o.host.sealKeyId,
      created_at: b.createdAt,
      updated_at: b.updatedAt,
    };
  }
}
