/**
 * The signer registry: which signer nodes exist, where they listen, their identity keys, and
 * how healthy they are. Signers are shared infrastructure: only admins of the system tenant
 * change the registry (the routes check the admin role; this service checks the tenant).
 */
import type { NodeIdentity } from '../../crypto/identity.js';
import { newId } from '../../domain/ids.js';
import type { KeyRecord, Principal, SignerRecord } from '../../domain/records.js';
import type { RegisterSignerBody, SignerObject, UpdateSignerBody } from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import type { SignerReachability } from '../reachability.js';
import { SignerClient } from '../signer-client.js';

/** A member of a key with its registry entry. */
export interface Member {
  identifier: number;
  signer: SignerRecord;
}

export function signerObject(s: SignerRecord): SignerObject {
  return {
    id: s.id,
    name: s.name,
    url: s.url,
    identity: s.identityPubkey,
    status: s.status,
    fault_count: s.faultCount,
    quarantined: s.quarantined,
    quarantine_override: s.quarantineOverride,
    last_seen_at: s.lastSeenAt,
    last_latency_ms: s.lastLatencyMs,
    created_at: s.createdAt,
  };
}

export class SignerRegistry {
  private readonly clients = new Map<string, SignerClient>();

  constructor(
    private readonly o: {
      backend: Backend;
      identity: NodeIdentity;
      now: () => number;
      /** The tenant whose admins manage the shared registry. */
      systemTenant: string;
      /** Told after a signer is registered or changed here (the orchestrator reads the list again). */
      onChange?: () => void;
      /** Where probes record who answered (shared with the orchestrator: fail fast, ../reachability.ts). */
      reachability?: SignerReachability;
    },
  ) {}

  /** One client (and connection pool) per signer address and identity. */
  clientFor(s: SignerRecord): SignerClient {
    const k = `${s.id}|${s.url}|${s.identityPubkey}`;
    let c = this.clients.get(k);
    if (!c) {
      c = new SignerClient({
        url: s.url,
        signerIdentity: s.identityPubkey,
        identity: this.o.identity,
        now: this.o.now,
      });
      this.clients.set(k, c);
    }
    return c;
  }

  private needSystemTenant(p: Principal): void {
    if (p.tenantId !== this.o.systemTenant) {
      throw new FloeError('forbidden', 'the signer registry is managed by admins of the system tenant');
    }
  }

  async register(p: Principal, body: RegisterSignerBody): Promise<SignerObject> {
    this.needSystemTenant(p);
    const existing = (await this.o.backend.listSigners()).find((s) => s.identityPubkey === body.identity);
    if (existing)
      throw new FloeError('conflict', `a signer with this identity is registered as ${existing.id}`);
    const rec: SignerRecord = {
      id: newId('signer'),
      name: body.name ?? null,
      url: body.url.replace(/\/+$/, ''),
      identityPubkey: body.identity,
      status: 'active',
      faultCount: 0,
      quarantined: false,
      quarantinedAt: null,
      quarantineOverride: false,
      lastSeenAt: null,
      lastLatencyMs: null,
      createdAt: this.o.now(),
    };
    // Proof of identity: the node at that URL must answer a signed node.info signed by the
    // claimed identity key (and accept this coordinator). Nobody registers a key it does not hold.
    const t0 = performance.now();
    try {
      const info = await this.clientFor(rec).call('nodeInfo', {}, 5000);
      if (info.identity !== rec.identityPubkey) throw new Error('identity');
    } catch (e) {
      const why = e instanceof FloeError ? e.code : 'no answer';
      throw new FloeError(
        'signer_unverified',
        `the signer at ${rec.url} did not answer signed by that identity (${why})`,
        {
          hint: "check the URL, that the signer runs, and that this coordinator's identity is on its `coordinators` allowlist",
        },
      );
    }
    await this.o.backend.insertSigner(rec);
    this.o.onChange?.();
    await this.o.backend.recordSignerSeen(rec.id, Math.round(performance.now() - t0));
    await this.o.backend.audit(p.tenantId, 'signer.registered', 'signer', rec.id, {
      url: rec.url,
      identity: rec.identityPubkey,
    });
    return signerObject((await this.o.backend.getSigner(rec.id))!);
  }

  async list(): Promise<SignerObject[]> {
    return (await this.o.backend.listSigners()).map(signerObject);
  }

  async update(p: Principal, id: string, body: UpdateSignerBody): Promise<SignerObject> {
    this.needSystemTenant(p);
    const s = await this.o.backend.getSigner(id);
    if (!s) throw new FloeError('signer_not_found', `no signer ${id}`);
    await this.o.backend.updateSigner(id, {
      ...(body.status ? { status: body.status } : {}),
      ...(body.quarantine_override === undefined ? {} : { quarantineOverride: body.quarantine_override }),
      ...(body.clear_faults ? { faultCount: 0, quarantined: false, quarantinedAt: null } : {}),
    });
    this.o.onChange?.();
    await this.o.backend.audit(p.tenantId, 'signer.updated', 'signer', id, body);
    return signerObject((await this.o.backend.getSigner(id))!);
  }

  /** Health probe: a signed node.info round trip; records latency and reachability. */
  async probe(s: SignerRecord): Promise<boolean> {
    const t0 = performance.now();
    try {
      const info = await this.clientFor(s).call('nodeInfo', {}, 3000);
      if (info.identity !== s.identityPubkey) {
        this.o.reachability?.markUnreachable(s.id, this.o.now(), 'answered with another identity');
        return false;
      }
      this.o.reachability?.markReachable(s.id);
      await this.o.backend.recordSignerSeen(s.id, Math.round(performance.now() - t0));
      return true;
    } catch (e) {
      // A refusal is an answer (the signer is there); only no answer marks it unreachable.
      if (e instanceof FloeError && e.code !== 'signer_unreachable') this.o.reachability?.markReachable(s.id);
      else
        this.o.reachability?.markUnreachable(
          s.id,
          this.o.now(),
          e instanceof FloeError ? e.message : 'no answer',
        );
      return false;
    }
  }

  async probeAll(): Promise<void> {
    const active = (await this.o.backend.listSigners()).filter((s) => s.status === 'active');
    await Promise.all(active.map((s) => this.probe(s)));
  }

  /** The signers of a DKG: the given ids (each active), or every active signer in registration order. */
  async resolve(ids: string[] | undefined): Promise<SignerRecord[]> {
    const all = await this.o.backend.listSigners();
    if (!ids) return all.filter((s) => s.status === 'active').sort((a, b) => a.createdAt - b.createdAt);
    return ids.map((id) => {
      const s = all.find((x) => x.id === id);
      if (!s) throw new FloeError('invalid_request', `unknown signer ${id}`);
      if (s.status !== 'active') throw new FloeError('invalid_request', `signer ${id} is disabled`);
      return s;
    });
  }

  /** A key's members with their current registry entries (members whose signer is gone are left out). */
  async members(key: KeyRecord): Promise<Member[]> {
    const signers = new Map((await this.o.backend.listSigners()).map((x) => [x.id, x]));
    return key.members.flatMap((m) => {
      const signer = signers.get(m.signer_id);
      return signer ? [{ identifier: m.identifier, signer }] : [];
    });
  }
}
