/**
 * A key's row as it was read, for a write prepared against it: the coordinator keeps an active
 * key in memory between sessions (src/coordinator/active-keys.ts), and a session's insert names
 * the version it was prepared against. The database writes nothing when the row changed since
 * (a freeze, a refresh, a new approval policy, another coordinator's change) and the insert
 * throws KeyChanged; the caller reads the key again and decides afresh.
 */
import type { KeyRecord } from './records.js';

export interface VersionedKey {
  key: KeyRecord;
  /** The row's version: its system column xmin, which every UPDATE of the row changes. */
  version: string;
}

/** The key's row is no longer the version a write named: nothing was written. */
export class KeyChanged extends Error {
  constructor(readonly keyId: string) {
    super(`key ${keyId} changed since it was read`);
    this.name = 'KeyChanged';
  }
}
