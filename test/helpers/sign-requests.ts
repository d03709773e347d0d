/** `sign.open` requests as a coordinator builds them (intent, digest, intent hash, attempt id v2). */
import { toHex } from '../../src/crypto/hex.js';
import { type Intent, type IntentKey, resolveIntent } from '../../src/domain/intent.js';
import { attemptIdHex } from '../../src/protocol/attempt.js';
import type { SignOpenRequest } from '../../src/protocol/messages/sign.js';

export function messageIntent(msg: Uint8Array): Intent {
  return { type: 'message', message: toHex(msg) };
}

/**
 * The open request for `intent` (a message intent when given bytes). `xOnlyKey` matters only
 * for intents that depend on the key (a Nostr event's pubkey).
 */
export function openRequest(o: {
  keyId?: string;
  sessionId: string;
  attempt: number;
  included: number[];
  intent: Intent | Uint8Array;
  xOnlyKey?: Uint8Array;
  /** The whole key context (bitcoin_psbt intents need the group key): intentKeyOf(pub). */
  intentKey?: IntentKey;
}): SignOpenRequest {
  const intent = o.intent instanceof Uint8Array ? messageIntent(o.intent) : o.intent;
  const r = resolveIntent(intent, o.intentKey ?? { xOnlyKey: o.xOnlyKey ?? new Uint8Array(32) });
  return {
    key_id: o.keyId ?? 'k1',
    session_id: o.sessionId,
    attempt: o.attempt,
    included: o.included,
    intent,
    message: toHex(r.digest),
    intent_hash: toHex(r.intentHash),
    attempt_id: attemptIdHex({
      sessionId: o.sessionId,
      digest: r.digest,
      intentHash: r.intentHash,
      attempt: o.attempt,
      included: o.included,
    }),
  };
}
