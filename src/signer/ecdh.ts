/**
 * Threshold ECDH on a signer (DESIGN §14): answer `ecdh.share` with S_i = s_i·lift_x(peer) and a
 * DLEQ proof against this member's verifying share (src/crypto/threshold-ecdh.ts). The
 * coordinator combines t answers into the key's ECDH value with the peer — the NIP-04 key and
 * the input of the NIP-44 conversation key — so every answer is a use of the key, gated like
 * one:
 *
 *   - the key is held here and active; this signer is among the included members, all of
 *     them members, at least the threshold;
 *   - the peer is a point of the curve (`invalid_pubkey` otherwise);
 *   - the policy says yes (`SigningPolicy.checkEcdh`; a policy without it refuses);
 *   - a per-key rate limit (token bucket, memory only) is not exceeded (`rate_limited`);
 *   - an audit entry (kind `ecdh`: key, request, peer, purpose — never S_i) is written before
 *     the answer leaves; if it cannot be written, nothing leaves.
 *
 * Pure logic over the SignerStore port; the HTTP server signs the answer like every other.
 */
import { fromHex, toHex, wipe } from '../crypto/hex.js';
import { sortedUniqueIds } from '../crypto/identifier.js';
import { ecdhShare, ecdhShareContext, isEcdhPeer } from '../crypto/threshold-ecdh.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { EcdhShareRequest, EcdhShareResponse } from '../protocol/messages/ecdh.js';
import { allowAll, type SigningPolicy } from './policy.js';
import type { Clock, Rng, SignerStore, StoredKey } from './ports.js';

/** Sustained ECDH answers per key and second, and the burst, by default. */
export const DEFAULT_ECDH_RATE = { perSecond: 20, burst: 200 } as const;

export interface EcdhResponderOptions {
  store: SignerStore;
  clock: Clock;
  /** The same policy object the signing engine uses (so freezing a key stops both). */
  policy?: SigningPolicy;
  /** Randomness for the proofs' nonces (hedged with the share); default the OS CSPRNG. */
  rng?: Rng;
  /** Per-key token bucket; default {@link DEFAULT_ECDH_RATE}. */
  rate?: { perSecond: number; burst: number };
  /** Metrics and tests; never receives a secret. */
  onEvent?: (e: EcdhEvent) => void;
}

export type EcdhEvent = { kind: 'ecdh'; keyId: string } | { kind: 'ecdh_refused'; code: string };

export class EcdhResponder {
  private readonly store: SignerStore;
  private readonly clock: Clock;
  private readonly policy: SigningPolicy;
  private readonly rng: Rng | undefined;
  private readonly rate: { perSecond: number; burst: number };
  private readonly onEvent: (e: EcdhEvent) => void;
  /** Token buckets by key id (only keys held here get one, so the map stays bounded). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(o: EcdhResponderOptions) {
    this.store = o.store;
    this.clock = o.clock;
    this.policy = o.policy ?? allowAll;
    this.rng = o.rng;
    this.rate = o.rate ?? DEFAULT_ECDH_RATE;
    if (!(this.rate.perSecond > 0) || !(this.rate.burst >= 1)) {
      throw new FloeError('invalid_request', 'ECDH rate: perSecond > 0 and burst >= 1');
    }
    this.onEvent = o.onEvent ?? (() => {});
  }

  /** Answer one `ecdh.share` request, or throw the FloeError that refuses it. */
  share(req: EcdhShareRequest): EcdhShareResponse {
    try {
      return this.shareInner(req);
    } catch (e) {
      this.onEvent({ kind: 'ecdh_refused', code: isFloeError(e) ? e.code : 'internal' });
      throw e;
    }
  }

  private shareInner(req: EcdhShareRequest): EcdhShareResponse {
    const key = this.activeKey(req.key_id);
    try {
      if ((req.generation ?? 0) !== (key.generation ?? 0)) {
        throw new FloeError(
          'generation_mismatch',
          `this signer holds generation ${key.generation ?? 0} of key ${req.key_id}, not ${req.generation ?? 0}`,
        );
      }
      this.checkIncluded(key, req.included);
      const peer = fromHex(req.peer, 'peer', 32);
      if (!isEcdhPeer(peer)) {
        throw new FloeError('invalid_pubkey', 'peer: not the x coordinate of a point on secp256k1');
      }
      if (!this.policy.checkEcdh) {
        throw new FloeError('policy_refused', "this signer's policy does not cover ECDH");
      }
      this.policy.checkEcdh({
        keyId: req.key_id,
        phase: 'ecdh',
        requestId: req.request_id,
        peer: req.peer,
        purpose: req.purpose,
        ...(req.tenant_id === undefined ? {} : { tenantId: req.tenant_id }),
      });
      this.take(req.key_id);
      const context = ecdhShareContext({
        keyId: req.key_id,
        requestId: req.request_id,
        peer,
        purpose: req.purpose,
        identifier: key.identifier,
      });
      const share = ecdhShare(key.keyPackage, peer, context, this.rng);
      // Audited before it leaves (a failed write throws, and nothing is answered).
      this.store.appendAudit({
        at: this.clock.now(),
        kind: 'ecdh',
        keyId: req.key_id,
        detail: JSON.stringify({
          request_id: req.request_id,
          peer: req.peer,
          purpose: req.purpose,
          included: req.included,
          ...(req.tenant_id === undefined ? {} : { tenant_id: req.tenant_id }),
        }),
      });
      this.onEvent({ kind: 'ecdh', keyId: req.key_id });
      return {
        key_id: req.key_id,
        request_id: req.request_id,
        identifier: share.identifier,
        shared: toHex(share.shared),
        proof: toHex(share.proof),
      };
    } finally {
      // The store hands out a copy of the share: this one is ours to wipe.
      wipe(key.keyPackage.signingShare);
    }
  }

  private activeKey(keyId: string): StoredKey {
    const key = this.store.getKey(keyId);
    if (!key) throw new FloeError('unknown_key', `no share of key ${keyId} on this signer`);
    if (key.status !== 'active') {
      wipe(key.keyPackage.signingShare);
      throw new FloeError('key_not_active', `key ${keyId} is not active on this signer`);
    }
    return key;
  }

  /** The included set as the engine checks an attempt's: sorted, unique, members, ≥ t, self in it. */
  private checkIncluded(key: StoredKey, included: readonly number[]): void {
    const pub = key.keyPackage.public;
    let ids: number[];
    try {
      ids = sortedUniqueIds(included, 'included');
    } catch {
      throw new FloeError('invalid_request', 'included: identifiers must be unique');
    }
    if (ids.some((id, i) => id !== included[i])) {
      throw new FloeError('invalid_request', 'included: identifiers must be sorted');
    }
    if (ids.length < pub.threshold) {
      throw new FloeError('invalid_request', `included: at least ${pub.threshold} identifiers`);
    }
    for (const id of ids) {
      if (!pub.verifyingShares.has(id)) {
        throw new FloeError('not_a_member', `identifier ${id} is not a member of the key`);
      }
    }
    if (!ids.includes(key.identifier)) {
      throw new FloeError('own_identifier_missing', 'this signer is not included in the request');
    }
  }

  /** One token from the key's bucket, or `rate_limited`. */
  private take(keyId: string): void {
    const now = this.clock.now();
    const { perSecond, burst } = this.rate;
    const b = this.buckets.get(keyId) ?? { tokens: burst, at: now };
    const tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * perSecond) / 1000);
    if (tokens < 1) {
      this.buckets.set(keyId, { tokens, at: now });
      const waitS = Math.ceil((1 - tokens) / perSecond);
      throw new FloeError('rate_limited', `too many ECDH requests for key ${keyId}; retry in ${waitS} s`, {
        retry_after_s: waitS,
      });
    }
    this.buckets.set(keyId, { tokens: tokens - 1, at: now });
  }
}
