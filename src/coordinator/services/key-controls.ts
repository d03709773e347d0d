/**
 * Key controls (issue 15 items 7, 8): `disable` / `enable` (the coordinator alone refuses new
 * sessions with a disabled key; the signers are not told), and the kill switch: `freeze` /
 * `unfreeze` by an operator's signed instruction (src/domain/operator-instruction.ts), stored in
 * the audit log, applied here (status `frozen`: new sessions are refused, running ones fail
 * `key_frozen`) and forwarded to every member signer, which verifies it against the operator
 * keys it pins and enforces it on its own (src/signer/freeze.ts). This coordinator cannot make
 * an instruction: a signer stays frozen until a pinned operator signs a newer unfreeze.
 */
import {
  type OperatorInstructionType,
  type SignedOperatorInstruction,
  verifyInstruction,
} from '../../domain/operator-instruction.js';
import type { KeyRecord, Principal } from '../../domain/records.js';
import { legalSources } from '../../domain/session-state.js';
import type { SessionStatus } from '../../domain/vocabulary.js';
import type { KeyControlObject } from '../../protocol/api.js';
import { FloeError, isFloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import { keyObject } from './keys.js';
import type { SignerRegistry } from './registry.js';

/** Sessions that may still sign: a freeze fails them. */
const LIVE: readonly SessionStatus[] = [
  'awaiting_approval',
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
];

export class KeyControlService {
  constructor(
    private readonly o: {
      backend: Backend;
      registry: SignerRegistry;
      now: () => number;
      /** How long a member signer has to answer a forwarded instruction. Default 5 s. */
      forwardTimeoutMs?: number;
    },
  ) {}

  private async key(p: Principal, id: string): Promise<KeyRecord> {
    const k = await this.o.backend.getKey(p.tenantId, id);
    if (!k) throw new FloeError('key_not_found', `no key ${id}`);
    return k;
  }

  /** Refuse new sessions with the key here (its signers are not told). */
  async disable(p: Principal, id: string): Promise<KeyControlObject> {
    const k = await this.key(p, id);
    if (k.status === 'frozen') throw new FloeError('key_frozen', `key ${id} is frozen; unfreeze it first`);
    if (k.status !== 'active' && k.status !== 'disabled') {
      throw new FloeError('key_not_active', `key ${id} is ${k.status}`);
    }
    return this.move(p, k, 'disabled', 'key.disabled', {});
  }

  async enable(p: Principal, id: string): Promise<KeyControlObject> {
    const k = await this.key(p, id);
    if (k.status === 'frozen') {
      throw new FloeError('key_frozen', `key ${id} is frozen`, {
        hint: 'a frozen key is unfrozen by an operator instruction: floe key unfreeze <key id>',
      });
    }
    if (k.status !== 'active' && k.status !== 'disabled') {
      throw new FloeError('key_not_active', `key ${id} is ${k.status}`);
    }
    return this.move(p, k, 'active', 'key.enabled', {});
  }

  /** The kill switch: apply the operator's freeze here, fail running sessions, tell every member. */
  async freeze(p: Principal, id: string, i: SignedOperatorInstruction): Promise<KeyControlObject> {
    const k = await this.key(p, id);
    this.checkInstruction(i, id, 'freeze');
    if (!['active', 'disabled', 'frozen'].includes(k.status)) {
      throw new FloeError('key_not_active', `key ${id} is ${k.status}: nothing to freeze`);
    }
    // Here first: from now on nothing new starts and nothing running gets further.
    const frozen = await this.move(p, k, 'frozen', 'key.frozen', { instruction: i });
    const failed = await this.failLive(p.tenantId, id);
    const signers = await this.forward(k, i);
    return { ...frozen, signers, sessions_failed: failed };
  }

  /**
   * Forward the operator's unfreeze to every member and make the key active here. A signer that
   * refuses it (no valid operator signature, older than its freeze) stays frozen and goes on
   * refusing the key: the response names it.
   */
  async unfreeze(p: Principal, id: string, i: SignedOperatorInstruction): Promise<KeyControlObject> {
    const k = await this.key(p, id);
    this.checkInstruction(i, id, 'unfreeze');
    if (k.status !== 'frozen' && k.status !== 'active') {
      throw new FloeError('key_not_active', `key ${id} is ${k.status}: not frozen`);
    }
    const signers = await this.forward(k, i);
    const done = await this.move(p, k, 'active', 'key.unfrozen', { instruction: i });
    return { ...done, signers };
  }

  /** The instruction is for this key and move, and its signature is the operator key's it names. */
  private checkInstruction(i: SignedOperatorInstruction, id: string, type: OperatorInstructionType): void {
    if (i.key_id !== id || i.type !== type) {
      throw new FloeError('operator_instruction_invalid', `the instruction is not a ${type} of key ${id}`, {
        hint: `sign one for this key: floe key ${type} ${id}`,
      });
    }
    // Which operators count is each signer's decision; here only that the signature is sound.
    verifyInstruction(i, [i.operator]);
  }

  private async move(
    p: Principal,
    k: KeyRecord,
    to: KeyRecord['status'],
    kind: string,
    data: Record<string, unknown>,
  ): Promise<KeyControlObject> {
    if (k.status !== to) await this.o.backend.updateKey(p.tenantId, k.id, { status: to });
    await this.o.backend.audit(p.tenantId, kind, 'key', k.id, { by: p.tokenId, from: k.status, ...data });
    const now = await this.o.backend.getKey(p.tenantId, k.id);
    return { key: keyObject(now ?? { ...k, status: to }) };
  }

  /** Fail every session of the key that may still sign (key_frozen); returns how many. */
  private async failLive(tenantId: string, keyId: string): Promise<number> {
    let n = 0;
    for (const status of LIVE) {
      let cursor: string | null = null;
      do {
        const page = await this.o.backend.listSessions(tenantId, 200, cursor, status);
        for (const s of page.items) {
          if (s.keyId !== keyId) continue;
          const moved = await this.o.backend.transitionSession(
            tenantId,
            s.sessionId,
            legalSources('failed'),
            s.attempt,
            'failed',
            {
              errorCode: 'key_frozen',
              errorMessage: `key ${keyId} was frozen by an operator instruction`,
              failedAt: this.o.now(),
            },
            { kind: 'session.frozen', data: {} },
          );
          if (moved) n++;
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    return n;
  }

  /** Send the instruction, as signed, to every member signer; each one's answer. */
  private async forward(
    k: KeyRecord,
    i: SignedOperatorInstruction,
  ): Promise<NonNullable<KeyControlObject['signers']>> {
    const members = await this.o.registry.members(k);
    return Promise.all(
      members.map(async (m) => {
        const base = { signer_id: m.signer.id, identifier: m.identifier };
        try {
          const r = await this.o.registry
            .clientFor(m.signer)
            .call('keyFreeze', { instruction: i }, this.o.forwardTimeoutMs ?? 5000);
          return { ...base, applied: r.frozen === (i.type === 'freeze') };
        } catch (e) {
          return {
            ...base,
            applied: false,
            error_code: isFloeError(e) ? e.code : 'internal',
            detail: (e instanceof Error ? e.message : 'error').slice(0, 300),
          };
        }
      }),
    );
  }
}
