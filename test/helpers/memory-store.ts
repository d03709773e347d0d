/**
 * In-memory SignerStore for the engine's unit tests (the engine is pure; the SQLite store
 * has its own tests). `failMarkers` makes marker writes throw, as a full disk would.
 */
import type { PolicyState } from '../../src/approvals/policy.js';
import { FloeError } from '../../src/protocol/errors.js';
import type {
  AuditEntry,
  ConsumptionMarker,
  PendingRefresh,
  ShareStatus,
  SignerStore,
  StoredKey,
} from '../../src/signer/ports.js';

export class MemoryStore implements SignerStore {
  keys = new Map<string, StoredKey>();
  markers: ConsumptionMarker[] = [];
  audit: AuditEntry[] = [];
  failMarkers = false;

  putKey(key: StoredKey): void {
    if (this.keys.has(key.keyId)) throw new FloeError('key_exists', 'exists');
    // Copy like a real store: callers wipe their own buffers after storing.
    this.keys.set(key.keyId, structuredClone(key));
  }
  getKey(keyId: string) {
    const k = this.keys.get(keyId);
    return k && structuredClone(k);
  }
  setKeyStatus(keyId: string, status: ShareStatus, audit?: AuditEntry): void {
    const k = this.keys.get(keyId);
    if (!k) return;
    k.status = status;
    if (audit) this.audit.push(audit);
  }
  setApprovalPolicy(keyId: string, state: PolicyState): void {
    const k = this.keys.get(keyId);
    if (!k) throw new FloeError('unknown_key', 'no key');
    k.approvalPolicy = structuredClone(state);
  }
  deleteKey(keyId: string): void {
    this.keys.delete(keyId);
  }
  countKeys() {
    return this.keys.size;
  }
  revoked = new Set<string>();
  revokeIdentity(keyId: string, identity: string): void {
    this.revoked.add(`${keyId} ${identity}`);
  }
  isRevoked(keyId: string, identity: string): boolean {
    return this.revoked.has(`${keyId} ${identity}`);
  }
  refreshes = new Map<string, PendingRefresh>();
  putPendingRefresh(p: PendingRefresh): void {
    this.refreshes.set(p.keyId, structuredClone(p));
  }
  getPendingRefresh(keyId: string) {
    const p = this.refreshes.get(keyId);
    return p && structuredClone(p);
  }
  dropPendingRefresh(keyId: string, ceremonyId: string): boolean {
    if (this.refreshes.get(keyId)?.ceremonyId !== ceremonyId) return false;
    return this.refreshes.delete(keyId);
  }
  commitRefresh(keyId: string, ceremonyId: string, at: number): void {
    const k = this.keys.get(keyId);
    const p = this.refreshes.get(keyId);
    if (!k) throw new FloeError('unknown_key', 'no key');
    if (!p || p.ceremonyId !== ceremonyId) throw new FloeError('ceremony_unknown', 'no pending refresh');
    if (p.generation !== (k.generation ?? 0) + 1)
      throw new FloeError('ceremony_conflict', 'not the next generation');
    k.keyPackage = p.keyPackage;
    k.generation = p.generation;
    this.refreshes.delete(keyId);
    this.audit.push({ at, kind: 'key_refreshed', keyId });
  }
  hasMarker(keyId: string, sessionId: string, attemptId: string) {
    return this.markers.some(
      (m) => m.keyId === keyId && m.sessionId === sessionId && m.attemptId === attemptId,
    );
  }
  putMarkers(entries: readonly { marker: ConsumptionMarker; audit: AuditEntry }[]): ('ok' | 'replay')[] {
    if (this.failMarkers) throw new FloeError('marker_write_failed', 'disk full');
    return entries.map(({ marker: m, audit }) => {
      const exists = this.markers.some(
        (x) =>
          x.keyId === m.keyId &&
          x.sessionId === m.sessionId &&
          x.attemptId === m.attemptId &&
          x.identifier === m.identifier,
      );
      if (exists) return 'replay';
      this.markers.push(m);
      this.audit.push(audit);
      return 'ok';
    });
  }
  listMarkers() {
    return [...this.markers];
  }
  appendAudit(e: AuditEntry): void {
    this.audit.push(e);
  }
  listAudit(limit = 100) {
    return this.audit.slice(-limit).reverse();
  }
  hasAudit(kind: string, keyId: string, detail: string): boolean {
    return this.audit.some((a) => a.kind === kind && a.keyId === keyId && a.detail === detail);
  }
  close(): void {}
}

export class FakeClock {
  constructor(public t = 1_800_000_000_000) {}
  now() {
    return this.t;
  }
  advance(ms: number) {
    this.t += ms;
  }
}
