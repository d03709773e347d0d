/**
 * Policy gates a signer applies before it commits and again before it releases a share
 * (DESIGN §4 rule 3: re-checked at round 2, not only at open).
 */
import type { IntentView } from '../domain/intent.js';
import { FloeError } from '../protocol/errors.js';

export interface SigningContext {
  keyId: string;
  sessionId: string;
  /** hex of the 32-byte digest, as this signer resolved it from the intent */
  digest: string;
  /** The decoded intent (event kind, content and tags; later PSBT outputs). */
  intent: IntentView;
  phase: 'open' | 'round2';
}

export interface SigningPolicy {
  /** Throws FloeError('policy_refused') to refuse. */
  check(ctx: SigningContext): void;
}

export const allowAll: SigningPolicy = { check: () => {} };

/** Refuse signing with listed keys (an operator's kill switch, changeable at run time). */
export class FrozenKeysPolicy implements SigningPolicy {
  readonly frozen = new Set<string>();
  check(ctx: SigningContext): void {
    if (this.frozen.has(ctx.keyId))
      throw new FloeError('policy_refused', `key ${ctx.keyId} is frozen on this signer`);
  }
}
