/**
 * Threshold ECDH for a key (DESIGN §14): the x coordinate of d·P for the key's secret d — the
 * one behind its `x_only_public_key`, its Nostr pubkey — and a peer's x-only key P, computed by
 * t signers that each return s_i·P with a DLEQ proof (src/crypto/threshold-ecdh.ts), and NIP-04 /
 * NIP-44 encryption and decryption over it.
 *
 *   choose t members (the signing orchestrator's choice: active, not quarantined, fewest
 *   faults) → `ecdh.share` to each in parallel → combine, checking every proof against the
 *   member's verifying share → x
 *
 * A member that does not answer (or refuses) is left out and another set is tried, keeping the
 * valid shares already received (a share does not depend on the set: the coordinator applies
 * the Lagrange coefficients). A member whose share fails its proof signed that answer: it is
 * left out and its fault recorded as proven, as an invalid signature share is. Bounded attempts.
 *
 * The coordinator learns x (it has to: NIP-04 and NIP-44 need it), never d nor any s_i; see
 * docs/threat-model.md. Each use is audited (key, peer, purpose, request, members); a refusal
 * that needs no key (a bad pubkey, a plaintext too large, a malformed payload) is made before
 * any signer is asked and leaves nothing behind. x, conversation keys and plaintexts never
 * reach a log, an error or the audit.
 */
import { randomBytes } from 'node:crypto';
import { decodePublicKeyPackage } from '../../crypto/encoding.js';
import { isCryptoError } from '../../crypto/errors.js';
import { fromHex, wipe } from '../../crypto/hex.js';
import {
  combineEcdhShares,
  type EcdhShare,
  ecdhShareContext,
  isEcdhPeer,
} from '../../crypto/threshold-ecdh.js';
import type { PublicKeyPackage } from '../../crypto/types.js';
import {
  type ConversationScheme,
  checkPayload,
  checkPlaintext,
  decryptWith,
  encryptWith,
} from '../../nostr/conversation.js';
import { type ErrorCode, FloeError, isFloeError } from '../../protocol/errors.js';
import type { EcdhPurpose } from '../../protocol/messages/ecdh.js';
import type { CoordinatorStore, KeyRecord, SignerRecord } from '../ports.js';
import type { SignerClient } from '../signer-client.js';
import type { Member, SigningEvent, SigningOrchestrator } from '../signing.js';

export interface EcdhServiceOptions {
  store: Pick<CoordinatorStore, 'getKey' | 'audit' | 'recordSignerFault'>;
  /** The members of each attempt come from the signing orchestrator's choice. */
  orchestrator: Pick<SigningOrchestrator, 'choose' | 'forgetSigners'>;
  clientFor: (signer: SignerRecord) => SignerClient;
  /** Per-request timeout for a signer. Default 10 s. */
  roundTimeoutMs?: number;
  /** Sets of members tried per ECDH. Default 3. */
  maxAttempts?: number;
  /** Proven faults after which a signer is quarantined. Default 3. */
  quarantineAfter?: number;
  /** Faults, as the signing orchestrator reports them (metrics). */
  onEvent?: (e: SigningEvent) => void;
}

/** What the audit says about one ECDH (no secret: the peer is the conversation's other end). */
interface EcdhUse {
  x: Uint8Array;
  requestId: string;
  participants: number[];
  culprits: number[];
}

/** Refusal codes of the signers worth passing on as they are (the caller can act on them). */
const PASS_ON: readonly ErrorCode[] = ['policy_refused', 'rate_limited'];

const PUBKEY_HEX = /^[0-9a-f]{64}$/;

/** The peer's x-only key from hex: 64 lower-case hex characters, the x of a point of the curve. */
export function parsePeerPubkey(hex: unknown): Uint8Array {
  if (typeof hex !== 'string' || !PUBKEY_HEX.test(hex)) {
    throw new FloeError(
      'invalid_pubkey',
      'pubkey: expected 64 lower-case hex characters (an x-only public key)',
    );
  }
  const peer = fromHex(hex, 'pubkey', 32);
  if (!isEcdhPeer(peer)) {
    throw new FloeError('invalid_pubkey', 'pubkey: not the x coordinate of a point on secp256k1');
  }
  return peer;
}

/** A request id: one per ECDH, signed into every member's proof (the ids' `<prefix>_<hex>` form). */
const newRequestId = () => `ecd_${randomBytes(16).toString('hex')}`;

export class EcdhService {
  private readonly o: Required<Omit<EcdhServiceOptions, 'onEvent'>> & {
    onEvent: (e: SigningEvent) => void;
  };

  constructor(o: EcdhServiceOptions) {
    this.o = {
      roundTimeoutMs: 10_000,
      maxAttempts: 3,
      quarantineAfter: 3,
      onEvent: () => {},
      ...o,
    };
  }

  /**
   * x(d·lift_x(peer)) for the key's secret d (32 bytes, a fresh buffer the caller may wipe):
   * the NIP-04 key, and what NIP-44's conversation key is derived from. Audited as `purpose`.
   */
  async sharedX(
    tenantId: string,
    keyId: string,
    peerXOnlyHex: string,
    purpose: EcdhPurpose = 'ecdh',
  ): Promise<Uint8Array> {
    const use = await this.derive(tenantId, keyId, peerXOnlyHex, purpose);
    try {
      await this.audit(tenantId, keyId, peerXOnlyHex, purpose, 'shared_x', use);
    } catch (e) {
      wipe(use.x);
      throw e;
    }
    return use.x;
  }

  /** NIP-04 content for `peerHex` from the key. */
  nip04Encrypt(tenantId: string, keyId: string, peerHex: string, plaintext: string): Promise<string> {
    return this.crypt('nip04', 'encrypt', tenantId, keyId, peerHex, plaintext);
  }

  /** The plaintext of NIP-04 content between the key and `peerHex`. */
  nip04Decrypt(tenantId: string, keyId: string, peerHex: string, ciphertext: string): Promise<string> {
    return this.crypt('nip04', 'decrypt', tenantId, keyId, peerHex, ciphertext);
  }

  /** A NIP-44 v2 payload for `peerHex` from the key. */
  nip44Encrypt(tenantId: string, keyId: string, peerHex: string, plaintext: string): Promise<string> {
    return this.crypt('nip44', 'encrypt', tenantId, keyId, peerHex, plaintext);
  }

  /** The plaintext of a NIP-44 v2 payload between the key and `peerHex`. */
  nip44Decrypt(tenantId: string, keyId: string, peerHex: string, payload: string): Promise<string> {
    return this.crypt('nip44', 'decrypt', tenantId, keyId, peerHex, payload);
  }

  // ---------------------------------------------------------------------------------------

  private async crypt(
    scheme: ConversationScheme,
    op: 'encrypt' | 'decrypt',
    tenantId: string,
    keyId: string,
    peerHex: string,
    text: string,
  ): Promise<string> {
    // Everything that needs no key first: a refusal here asks no signer and writes nothing.
    parsePeerPubkey(peerHex);
    if (op === 'encrypt') checkPlaintext(scheme, text);
    else checkPayload(scheme, text);
    const use = await this.derive(tenantId, keyId, peerHex, scheme);
    try {
      const out = op === 'encrypt' ? encryptWith(scheme, use.x, text) : decryptWith(scheme, use.x, text);
      // Audited once something was produced for the caller; a payload that does not
      // authenticate released nothing (the signers audited their shares all the same).
      await this.audit(tenantId, keyId, peerHex, scheme, `${scheme}_${op}`, use);
      return out;
    } finally {
      wipe(use.x);
    }
  }

  private audit(
    tenantId: string,
    keyId: string,
    peer: string,
    purpose: EcdhPurpose,
    operation: string,
    use: EcdhUse,
  ): Promise<void> {
    return this.o.store.audit(tenantId, 'key.ecdh', 'key', keyId, {
      peer,
      purpose,
      operation,
      request_id: use.requestId,
      participants: use.participants,
      ...(use.culprits.length ? { culprits: use.culprits } : {}),
    });
  }

  private async activeKey(
    tenantId: string,
    keyId: string,
  ): Promise<{ key: KeyRecord; pub: PublicKeyPackage }> {
    const key = await this.o.store.getKey(tenantId, keyId);
    if (!key) throw new FloeError('key_not_found', `no key ${keyId}`);
    if (key.status !== 'active' || !key.xOnlyPublicKey) {
      throw new FloeError('key_not_active', `key ${keyId} is not active`);
    }
    return { key, pub: decodePublicKeyPackage(key.publicKeyPackage) };
  }

  /** The threshold ECDH itself: attempts over member sets until t valid shares combine. */
  private async derive(
    tenantId: string,
    keyId: string,
    peerHex: string,
    purpose: EcdhPurpose,
  ): Promise<EcdhUse> {
    const peer = parsePeerPubkey(peerHex);
    const { key, pub } = await this.activeKey(tenantId, keyId);
    const requestId = newRequestId();
    const contextOf = (identifier: number) =>
      ecdhShareContext({ keyId, requestId, peer, purpose, identifier });
    const have = new Map<number, EcdhShare>();
    const excluded = new Set<number>();
    const refusals: string[] = [];
    const culprits: number[] = [];
    let tried = 0;
    for (let attempt = 1; attempt <= this.o.maxAttempts; attempt++) {
      const chosen = await this.o.orchestrator.choose(key, excluded);
      if (!chosen) break;
      tried++;
      const ids = chosen.map((m) => m.identifier);
      const ask = chosen.filter((m) => !have.has(m.identifier));
      const answers = await Promise.allSettled(
        ask.map((m) =>
          this.o.clientFor(m.signer).exchange(
            'ecdhShare',
            {
              key_id: keyId,
              request_id: requestId,
              included: ids,
              peer: peerHex,
              purpose,
              tenant_id: tenantId,
              ...(key.generation ? { generation: key.generation } : {}),
            },
            this.o.roundTimeoutMs,
          ),
        ),
      );
      for (const [i, r] of answers.entries()) {
        const m = ask[i]!;
        if (r.status === 'rejected') {
          const kind = faultKind(r.reason);
          refusals.push(kind);
          await this.exclude(m, kind, excluded);
          continue;
        }
        const b = r.value.body;
        if (b.identifier !== m.identifier || b.key_id !== keyId || b.request_id !== requestId) {
          refusals.push('bad_answer');
          await this.exclude(m, 'bad_ecdh_answer', excluded);
          continue;
        }
        have.set(m.identifier, {
          identifier: b.identifier,
          shared: fromHex(b.shared, 'shared', 33),
          proof: fromHex(b.proof, 'proof', 64),
        });
      }
      if (!ids.every((id) => have.has(id))) continue;
      try {
        const x = combineEcdhShares(
          pub,
          peer,
          ids.map((id) => have.get(id)!),
          contextOf,
        );
        return { x, requestId, participants: ids, culprits };
      } catch (e) {
        if (!isCryptoError(e)) throw e;
        if (e.code !== 'invalid_share' || e.culprits.length === 0) {
          // Not the members' doing: the key's public package does not combine (crypto messages carry no secret).
          throw new FloeError('ecdh_failed', `key ${keyId}: ${e.message}`);
        }
        // Proven: each culprit signed an answer whose proof fails against its verifying share.
        for (const id of e.culprits) {
          have.delete(id);
          culprits.push(id);
          await this.exclude(chosen.find((m) => m.identifier === id)!, 'invalid_ecdh_share', excluded, true);
        }
        this.o.orchestrator.forgetSigners();
        await this.o.store.audit(tenantId, 'key.ecdh_blame', 'key', keyId, {
          request_id: requestId,
          peer: peerHex,
          culprits: e.culprits,
          signers: e.culprits.map((id) => chosen.find((m) => m.identifier === id)!.signer.id),
        });
      }
    }
    throw failure(key, tried, refusals, culprits);
  }

  /** Leave a member out of this ECDH; only a proven fault counts towards quarantine. */
  private async exclude(m: Member, fault: string, excluded: Set<number>, proven = false): Promise<void> {
    excluded.add(m.identifier);
    this.o.onEvent({ kind: 'fault', signerId: m.signer.id, identifier: m.identifier, fault });
    if (proven) await this.o.store.recordSignerFault(m.signer.id, fault, this.o.quarantineAfter);
  }
}

/** What a failed call was (as the signing orchestrator names it). */
function faultKind(e: unknown): string {
  if (!isFloeError(e)) return 'error';
  if (e.code === 'signer_unreachable') return 'unreachable';
  if (e.code === 'response_unverified') return 'unverified';
  return `refused:${e.code}`;
}

/** Why no value came out: no members at all, one refusal every signer gave, or the lot. */
function failure(key: KeyRecord, tried: number, refusals: string[], culprits: number[]): FloeError {
  if (tried === 0) {
    return new FloeError('no_quorum', `fewer than ${key.threshold} eligible signers for key ${key.id}`);
  }
  const codes = [...new Set(refusals)];
  const only = codes.length === 1 && culprits.length === 0 ? codes[0]!.replace(/^refused:/, '') : null;
  if (only && (PASS_ON as readonly string[]).includes(only)) {
    return new FloeError(only as ErrorCode, `the key's signers refused this ECDH (${only})`);
  }
  return new FloeError(
    'ecdh_failed',
    `no ${key.threshold} valid ECDH shares for key ${key.id} (${[...codes, ...(culprits.length ? ['invalid_ecdh_share'] : [])].join(', ') || 'no answer'})`,
    culprits.length ? { culprits: [...new Set(culprits)].sort((a, b) => a - b) } : {},
  );
}
