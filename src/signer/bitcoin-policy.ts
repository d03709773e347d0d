/**
 * The signer-side policy firewall for PSBTs (DESIGN §14, seed 004; issue 14 item 4). Each signer
 * holds its own policy (config `bitcoin_policy` / `bitcoin_policy_file`, never set through the
 * coordinator), sees the PSBT as it decoded it itself (the intent view: outputs, addresses,
 * amounts, fee, change re-derived from the key), and refuses with `policy_refused` and the rule's
 * name in `rule` (src/bitcoin/policy.ts) at `sign.open` and again at `sign.round2`, before the
 * consumption marker.
 *
 * Signatures per minute count per key, in this process's memory: a signature is counted when
 * round 2 passes the policy (just before the marker), so a restart forgets the last minute. Other
 * intents (messages, Nostr events) and ECDH pass through to the policy this one wraps.
 */
import {
  type BitcoinPolicy,
  checkPolicy,
  type PolicyState,
  policyRefusal,
  RATE_WINDOW_MS,
  recordSignatures,
} from '../bitcoin/policy.js';
import type { IntentType } from '../domain/vocabulary.js';
import { FloeError } from '../protocol/errors.js';
import { allowAll, type EcdhContext, type SigningContext, type SigningPolicy } from './policy.js';
import type { Clock } from './ports.js';

/** Keys with a signing history kept before stale histories are pruned. */
const HISTORY_PRUNE_AT = 10_000;

export class BitcoinSigningPolicy implements SigningPolicy {
  private readonly history = new Map<string, PolicyState>();
  private readonly inner: SigningPolicy;

  constructor(
    private readonly o: {
      policy: BitcoinPolicy;
      clock: Clock;
      /** Checked first, for every intent (e.g. FrozenKeysPolicy). Default: allow all. */
      inner?: SigningPolicy;
      /**
       * The intent types this signer signs (config `sign_intents`); default all. A custody signer
       * lists only `bitcoin_psbt`: a `message` intent signs any digest the caller names, a sighash
       * of the key's own output included, and would pass by this firewall.
       */
      intents?: readonly IntentType[];
    },
  ) {
    this.inner = o.inner ?? allowAll;
  }

  /** The policy in force (its network is the signer's `bitcoin_network`). */
  get policy(): BitcoinPolicy {
    return this.o.policy;
  }

  check(ctx: SigningContext): void {
    this.inner.check(ctx);
    const view = ctx.intent;
    if (this.o.intents && !this.o.intents.includes(view.type)) {
      throw new FloeError('policy_refused', `this signer does not sign ${view.type} intents (sign_intents)`, {
        rule: 'intent_not_allowed',
      });
    }
    if (view.type !== 'bitcoin_psbt') return;
    const now = this.o.clock.now();
    const state = this.history.get(ctx.keyId) ?? { signatures: [] };
    const decision = checkPolicy(this.o.policy, view, now, state);
    if (!decision.ok) throw policyRefusal(decision);
    if (ctx.phase === 'round2') {
      this.prune(now);
      this.history.set(ctx.keyId, recordSignatures(state, now, view.signs.length));
    }
  }

  checkEcdh(ctx: EcdhContext): void {
    // A wrapped policy without ECDH support refuses it (see SigningPolicy.checkEcdh).
    if (!this.inner.checkEcdh) {
      throw new FloeError('policy_refused', "ECDH is not allowed by this signer's policy");
    }
    this.inner.checkEcdh(ctx);
  }

  private prune(now: number): void {
    if (this.history.size < HISTORY_PRUNE_AT) return;
    for (const [k, s] of this.history) {
      if (!s.signatures.some((t) => t > now - RATE_WINDOW_MS)) this.history.delete(k);
    }
  }
}
