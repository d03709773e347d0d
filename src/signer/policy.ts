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

/**
 * A threshold ECDH share (src/signer/ecdh.ts): no digest and no intent, the peer instead. What
 * it gives the coordinator is the key's ECDH value with that peer (a NIP-04/44 conversation).
 */
export interface EcdhContext {
  keyId: string;
  phase: 'ecdh';
  /** The coordinator's request id. */
  requestId: string;
  /** The peer's x-only public key, hex. */
  peer: string;
  /** `nip04`, `nip44` or `ecdh` (src/protocol/messages/ecdh.ts). */
  purpose: string;
  /** The tenant the coordinator says it acts for, if it says. */
  tenantId?: string;
}

export interface SigningPolicy {
  /** Throws FloeError('policy_refused') to refuse. */
  check(ctx: SigningContext): void;
  /**
   * Threshold ECDH; throws FloeError('policy_refused') to refuse. A policy without it refuses
   * every ECDH: one written before ECDH existed never said yes to it (fail closed).
   */
  checkEcdh?(ctx: EcdhContext): void;
}

export const allowAll: SigningPolicy = { check: () => {}, checkEcdh: () => {} };

/** Refuse signing (and ECDH) with listed keys (an operator's kill switch, changeable at run time). */
export class FrozenKeysPolicy implements SigningPolicy {
  readonly frozen = new Set<string>();
  check(ctx: SigningContext): void {
    if (this.frozen.has(ctx.keyId))
      throw new FloeError('policy_refused', `key ${ctx.keyId} is frozen on this signer`);
  }
  checkEcdh(ctx: EcdhContext): void {
    if (this.frozen.has(ctx.keyId))
      throw new FloeError('policy_refused', `key ${ctx.keyId} is frozen on this signer`);
  }
}
