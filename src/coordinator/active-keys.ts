/**
 * Active keys as this coordinator last read them, so that a session does not read its key
 * before it is written. Safe because nothing is written on the strength of an entry alone: a
 * session's insert names the version of the key's row it was prepared against, and the database
 * writes nothing if the row changed since (src/domain/key-version.ts) — a freeze, a refresh, a new
 * approval policy, whichever coordinator made it. Only active keys are kept: a refusal (frozen,
 * disabled, not yet active, unknown) is always decided on a fresh read.
 */
import type { VersionedKey } from '../domain/key-version.js';

export class ActiveKeys {
  private readonly entries = new Map<string, VersionedKey>();

  /** `max`: how many keys are kept; the least recently used goes first. */
  constructor(private readonly max = 1024) {}

  get(tenantId: string, keyId: string): VersionedKey | undefined {
    const id = entryId(tenantId, keyId);
    const e = this.entries.get(id);
    if (e) {
      // Most recently used last (a Map keeps insertion order).
      this.entries.delete(id);
      this.entries.set(id, e);
    }
    return e;
  }

  /** Keeps `read` of the key if it is active (and the key asked for, in that tenant); forgets the key otherwise. */
  note(tenantId: string, keyId: string, read: VersionedKey | undefined): void {
    const id = entryId(tenantId, keyId);
    this.entries.delete(id);
    if (read?.key.status !== 'active' || read.key.tenantId !== tenantId || read.key.id !== keyId) return;
    this.entries.set(id, read);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}

const entryId = (tenantId: string, keyId: string) => `${tenantId}\u0000${keyId}`;
