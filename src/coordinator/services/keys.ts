/** Keys of a tenant: DKG ceremonies, dealer imports, and reading them back (DESIGN §8). */
import { normalizePolicy } from '../../approvals/policy.js';
import { npubEncode } from '../../crypto/bech32.js';
import { fromHex } from '../../crypto/hex.js';
import type {
  CeremonyRecord,
  KeyRecord,
  KeyRefreshRecord,
  KeyRepairRecord,
  Principal,
} from '../../domain/records.js';
import { thresholdHint, thresholdWarnings } from '../../domain/threshold-rules.js';
import type {
  CreateKeyBody,
  ImportedKeyObject,
  ImportKeyBody,
  KeyObject,
  Page,
  RefreshKeyBody,
  RefreshObject,
  RepairKeyBody,
  RepairObject,
  UpdateKeyBody,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import type { CeremonyDriver } from '../ceremonies.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { RefreshDriver } from '../refresh.js';
import type { RepairDriver } from '../repair.js';
import { approvalPolicyObject } from './approvals.js';
import { normalizeRelays } from './publish.js';
import type { SignerRegistry } from './registry.js';
import { within } from './wait.js';

export function keyObject(k: KeyRecord, c?: CeremonyRecord): KeyObject {
  const x = k.xOnlyPublicKey;
  return {
    id: k.id,
    label: k.label,
    threshold: k.threshold,
    n: k.n,
    status: k.status,
    origin: k.origin,
    public_key: k.groupPublicKey,
    x_only_public_key: x,
    npub: x ? npubEncode(fromHex(x, 'x', 32)) : null,
    tweak: (k.tweak as Record<string, unknown> | null) ?? null,
    members: k.members,
    ...(c ? { ceremony: { id: c.id, status: c.status, error_code: c.errorCode, culprits: c.culprits } } : {}),
    relays: k.relays ?? [],
    ...approvalPolicyObject(k),
    generation: k.generation ?? 0,
    created_at: k.createdAt,
  };
}

export function repairObject(r: KeyRepairRecord): RepairObject {
  return {
    id: r.id,
    key_id: r.keyId,
    status: r.status,
    identifier: r.lost,
    replaced: r.replaced,
    signer_id: r.newSignerId,
    helpers: r.helpers,
    generation: r.generation,
    committed: [...r.committed].sort((a, b) => a - b),
    error_code: r.errorCode,
    error_message: r.errorMessage,
    culprits: r.culprits,
    created_at: r.createdAt,
    completed_at: r.completedAt,
    expires_at: r.expiresAt,
  };
}

export function refreshObject(r: KeyRefreshRecord): RefreshObject {
  return {
    id: r.id,
    key_id: r.keyId,
    status: r.status,
    generation: r.generation,
    committed: [...r.committed].sort((a, b) => a - b),
    error_code: r.errorCode,
    error_message: r.errorMessage,
    culprits: r.culprits,
    created_at: r.createdAt,
    completed_at: r.completedAt,
    expires_at: r.expiresAt,
  };
}

export class KeyService {
  private readonly running = new Map<string, Promise<KeyRecord>>();

  constructor(
    private readonly o: {
      backend: Backend;
      registry: SignerRegistry;
      ceremonies: CeremonyDriver;
      /** Share refresh (../refresh.ts); without it, POST /v1/keys/:id/refresh is refused. */
      refresh?: RefreshDriver;
      /** Share repair (../repair.ts). */
      repair?: RepairDriver;
      metrics: CoordinatorMetrics;
      /** Refuse every key that breaks the threshold rules (config `strict_thresholds`). */
      strictThresholds?: boolean;
    },
  ) {}

  /**
   * Start a DKG ceremony; with `wait`, answer once it is done or the wait is over. The threshold
   * rules (src/domain/threshold-rules.ts) give warnings, or a refusal when strict.
   */
  async create(p: Principal, body: CreateKeyBody): Promise<KeyObject> {
    const signers = await this.o.registry.resolve(body.signers);
    const warnings = thresholdWarnings(body.threshold, signers.length);
    if (warnings.length && (body.strict_thresholds || this.o.strictThresholds)) {
      throw new FloeError('threshold_unsafe', warnings.map((w) => w.detail).join('; '), {
        rules: warnings.map((w) => w.rule),
        hint: thresholdHint(body.threshold),
      });
    }
    const { key, ceremony } = await this.o.ceremonies.createDkg(
      p.tenantId,
      signers,
      body.threshold,
      body.label ?? null,
      body.approval_policy ? normalizePolicy(body.approval_policy) : null,
    );
    const m = this.o.metrics.ceremonies;
    m.inc({ status: 'started' });
    const run = this.o.ceremonies
      .runDkg(key, ceremony, signers)
      .then((k) => {
        m.inc({ status: 'completed' });
        return k;
      })
      .catch((e) => {
        m.inc({ status: 'failed' });
        throw e;
      })
      .finally(() => this.running.delete(key.id));
    this.running.set(key.id, run);
    run.catch(() => {});
    if (body.wait) await within(run, body.wait);
    const created = await this.get(p, key.id);
    return warnings.length ? { ...created, warnings } : created;
  }

  /** Relay a dealer split made by the client (the coordinator never sees a share). */
  async import(p: Principal, body: ImportKeyBody): Promise<ImportedKeyObject> {
    if (await this.o.backend.getKey(p.tenantId, body.key_id)) {
      throw new FloeError('conflict', `key ${body.key_id} already exists`);
    }
    const signers = await this.o.registry.resolve(body.signers);
    const { key, certificates } = await this.o.ceremonies.importDealer(
      p.tenantId,
      signers,
      body.public_key_package,
      body.sealed_shares,
      body.label ?? null,
      body.key_id,
      body.approval_policy ? normalizePolicy(body.approval_policy) : null,
    );
    const member = (id: number) => key.members.find((m) => m.identifier === id)!;
    return {
      ...(await this.get(p, key.id)),
      import_certificates: certificates.map((c) => ({
        ...c,
        signer_id: member(c.identifier).signer_id,
        identity: member(c.identifier).identity,
      })),
    };
  }

  async record(p: Principal, id: string): Promise<KeyRecord> {
    const k = await this.o.backend.getKey(p.tenantId, id);
    if (!k) throw new FloeError('key_not_found', `no key ${id}`);
    return k;
  }

  async get(p: Principal, id: string): Promise<KeyObject> {
    const r = await this.o.backend.getKeyWithCeremony(p.tenantId, id);
    if (!r) throw new FloeError('key_not_found', `no key ${id}`);
    return keyObject(r.key, r.ceremony);
  }

  /**
   * Change a key (PATCH /v1/keys/:id): its default relays (normalized, deduplicated, ws/wss
   * only). Everything is checked before anything is written; the change is audited.
   */
  async update(p: Principal, id: string, body: UpdateKeyBody): Promise<KeyObject> {
    if (body.relays === undefined) throw new FloeError('invalid_request', 'nothing to change');
    const relays = normalizeRelays(body.relays, 'relays');
    const k = await this.o.backend.setKeyRelays(p.tenantId, id, relays, {
      actor: p.tokenId,
      kind: 'key.relays_updated',
      data: { relays },
    });
    if (!k) throw new FloeError('key_not_found', `no key ${id}`);
    return this.get(p, id);
  }

  async list(p: Principal, limit: number, cursor: string | null): Promise<Page<KeyObject>> {
    const page = await this.o.backend.listKeys(p.tenantId, limit, cursor);
    return { items: page.items.map((k) => keyObject(k)), next_cursor: page.nextCursor };
  }

  /**
   * Refresh a key's shares (same group key, new shares, old ones wiped once every member
   * certified the new ones); with `wait`, answer once it is done or the wait is over.
   */
  async refresh(p: Principal, id: string, body: RefreshKeyBody): Promise<RefreshObject> {
    const driver = this.o.refresh;
    if (!driver) throw new FloeError('unavailable', 'share refresh is not available on this coordinator');
    const key = await this.record(p, id);
    const r = await driver.create(key);
    const run = driver.run(key, r).finally(() => this.running.delete(r.id));
    this.running.set(r.id, run as Promise<never>);
    run.catch(() => {});
    if (body.wait) await within(run, body.wait);
    return this.getRefresh(p, id, r.id);
  }

  /**
   * Repair a lost member's share onto a new signer (t helpers, nobody learns the secret); with
   * `wait`, answer once it is done or the wait is over.
   */
  async repair(p: Principal, id: string, body: RepairKeyBody): Promise<RepairObject> {
    const driver = this.o.repair;
    if (!driver) throw new FloeError('unavailable', 'share repair is not available on this coordinator');
    const key = await this.record(p, id);
    const [signer] = await this.o.registry.resolve([body.signer]);
    const r = await driver.create(key, body.identifier, signer!, body.helpers);
    const run = driver.run(key, r).finally(() => this.running.delete(r.id));
    this.running.set(r.id, run as Promise<never>);
    run.catch(() => {});
    if (body.wait) await within(run, body.wait);
    return this.getRepair(p, id, r.id);
  }

  async getRepair(p: Principal, keyId: string, repairId: string): Promise<RepairObject> {
    const r = await this.o.repair?.store.getRepair(p.tenantId, repairId);
    if (!r || r.keyId !== keyId)
      throw new FloeError('repair_not_found', `no repair ${repairId} of key ${keyId}`);
    return repairObject(r);
  }

  async listRepairs(p: Principal, keyId: string): Promise<Page<RepairObject>> {
    await this.record(p, keyId);
    const items = (await this.o.repair?.store.listRepairs(p.tenantId, keyId, 100)) ?? [];
    return { items: items.map(repairObject), next_cursor: null };
  }

  async getRefresh(p: Principal, keyId: string, refreshId: string): Promise<RefreshObject> {
    const r = await this.o.refresh?.store.getRefresh(p.tenantId, refreshId);
    if (!r || r.keyId !== keyId)
      throw new FloeError('refresh_not_found', `no refresh ${refreshId} of key ${keyId}`);
    return refreshObject(r);
  }

  async listRefreshes(p: Principal, keyId: string): Promise<Page<RefreshObject>> {
    await this.record(p, keyId);
    const items = (await this.o.refresh?.store.listRefreshes(p.tenantId, keyId, 100)) ?? [];
    return { items: items.map(refreshObject), next_cursor: null };
  }

  /** Ceremonies this process is running (so shutdown can wait for them). */
  inFlight(): Promise<unknown>[] {
    return [...this.running.values()];
  }
}
