/**
 * The kill switch on a signer (issue 15 item 8): operator instructions (`key.freeze`, forwarded
 * by the coordinator) are verified here against the operator keys this node pins in its own
 * config (`operators`), checked for freshness and replay (src/domain/operator-instruction.ts),
 * and recorded in the store. While a key is frozen this node refuses to open, sign round 2 or
 * compute ECDH with it (`key_frozen`), whatever the coordinator asks: only a newer unfreeze
 * signed by a pinned operator lifts it.
 */
import {
  judgeFreshness,
  type SignedOperatorInstruction,
  verifyInstruction,
} from '../domain/operator-instruction.js';
import { FloeError } from '../protocol/errors.js';
import type { KeyFreezeRequest, KeyFreezeResponse } from '../protocol/messages/operator.js';
import type { Clock } from './ports.js';

/** The instruction in force for a key on this node. */
export interface FreezeRecord {
  keyId: string;
  frozen: boolean;
  instruction: SignedOperatorInstruction;
  appliedAt: number;
}

/** Where the instructions are kept (the SQLite store, migration 4). */
export interface FreezeStore {
  getFreeze(keyId: string): FreezeRecord | undefined;
  putFreeze(r: FreezeRecord): void;
  appendAudit(e: { at: number; kind: string; keyId?: string; detail?: string }): void;
}

export class KeyFreezes {
  /** Read-through cache of the store's flags (every change goes through apply). */
  private readonly cache = new Map<string, FreezeRecord | null>();

  constructor(
    private readonly o: {
      store: FreezeStore;
      /** Pinned operator x-only public keys (signer config `operators`). */
      operators: readonly string[];
      clock: Clock;
      /** Drop live signing attempts of a key just frozen; returns how many. */
      dropKey?: (keyId: string) => number;
    },
  ) {}

  private record(keyId: string): FreezeRecord | undefined {
    let r = this.cache.get(keyId);
    if (r === undefined) {
      r = this.o.store.getFreeze(keyId) ?? null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(keyId, r);
    }
    return r ?? undefined;
  }

  isFrozen(keyId: string): boolean {
    return this.record(keyId)?.frozen === true;
  }

  /** Throws `key_frozen` while the key is frozen on this node. */
  check(keyId: string): void {
    if (this.isFrozen(keyId)) {
      throw new FloeError('key_frozen', `key ${keyId} is frozen on this signer by an operator instruction`);
    }
  }

  /** Verify and apply an operator instruction (the `key.freeze` message). */
  apply(req: KeyFreezeRequest): KeyFreezeResponse {
    const i = req.instruction;
    verifyInstruction(i, this.o.operators);
    const now = this.o.clock.now();
    const last = this.record(i.key_id);
    const verdict = judgeFreshness(i, last?.instruction, now);
    const frozen = i.type === 'freeze';
    let dropped = 0;
    if (verdict === 'apply') {
      const r: FreezeRecord = { keyId: i.key_id, frozen, instruction: i, appliedAt: now };
      this.o.store.putFreeze(r);
      this.cache.set(i.key_id, r);
      this.o.store.appendAudit({
        at: now,
        kind: frozen ? 'key.frozen' : 'key.unfrozen',
        keyId: i.key_id,
        detail: JSON.stringify({ operator: i.operator, issued_at: i.issued_at, nonce: i.nonce }),
      });
    }
    if (frozen) dropped = this.o.dropKey?.(i.key_id) ?? 0;
    return { key_id: i.key_id, frozen, issued_at: i.issued_at, dropped };
  }
}
