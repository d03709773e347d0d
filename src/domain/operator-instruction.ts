/**
 * Operator instructions (the kill switch, issue 15 item 8): `freeze` or `unfreeze` a key,
 * signed (BIP-340) by an operator key whose x-only public key each signer pins in its own
 * config (`operators`). The coordinator stores and forwards them but cannot make one: a signer
 * applies only what a pinned operator signed, so the coordinator alone cannot unfreeze a key.
 *
 * Pure: the signed digest, signing, verification and the freshness / replay rule. The wire
 * schema is src/protocol/messages/operator.ts; the signer's side src/signer/freeze.ts.
 */
import { randomBytes } from 'node:crypto';
import { fromHex, toHex } from '../crypto/hex.js';
import { identityPublicKey, signDigest, verifyDigest } from '../crypto/identity.js';
import { taggedHash } from '../crypto/tagged.js';
import { FloeError } from '../protocol/errors.js';

export const OPERATOR_INSTRUCTION_TYPES = ['freeze', 'unfreeze'] as const;
export type OperatorInstructionType = (typeof OPERATOR_INSTRUCTION_TYPES)[number];

/** What the operator decides: one key, one move, when, and a nonce that makes it unique. */
export interface OperatorInstruction {
  type: OperatorInstructionType;
  key_id: string;
  /** ms since the epoch, on the operator's clock. */
  issued_at: number;
  /** 16 random bytes, hex. */
  nonce: string;
}

/** An instruction with the operator's x-only public key and its BIP-340 signature (hex). */
export interface SignedOperatorInstruction extends OperatorInstruction {
  operator: string;
  sig: string;
}

const TAG = 'floe/operator-instruction/v1';

/** An instruction may be stamped at most this far ahead of the verifier's clock. */
export const INSTRUCTION_MAX_SKEW_MS = 5 * 60_000;
/**
 * An unfreeze older than this is refused (a coordinator cannot hold one back and play it
 * later). A freeze of any age is applied: it can only stop signing.
 */
export const UNFREEZE_MAX_AGE_MS = 15 * 60_000;

/** The 32-byte digest the operator signs: a tagged hash of the fields in a fixed order. */
export function instructionDigest(i: OperatorInstruction): Uint8Array {
  const canonical = JSON.stringify([1, i.type, i.key_id, i.issued_at, i.nonce]);
  return taggedHash(TAG, new TextEncoder().encode(canonical));
}

/** Sign a new instruction now with the operator's secret key (the CLI, on the operator's machine). */
export function signInstruction(
  o: { type: OperatorInstructionType; keyId: string; now: number },
  secret: Uint8Array,
): SignedOperatorInstruction {
  const i: OperatorInstruction = {
    type: o.type,
    key_id: o.keyId,
    issued_at: o.now,
    nonce: randomBytes(16).toString('hex'),
  };
  return {
    ...i,
    operator: toHex(identityPublicKey(secret)),
    sig: toHex(signDigest(secret, instructionDigest(i))),
  };
}

/** Throws unless a pinned operator signed `s` (`operator_not_pinned` when none is pinned). */
export function verifyInstruction(s: SignedOperatorInstruction, pinned: readonly string[]): void {
  if (pinned.length === 0) {
    throw new FloeError('operator_not_pinned', 'no operator key is pinned here');
  }
  if (!pinned.includes(s.operator)) {
    throw new FloeError(
      'operator_instruction_invalid',
      'the instruction is signed by an operator not pinned here',
    );
  }
  const ok = verifyDigest(
    fromHex(s.sig, 'sig', 64),
    instructionDigest(s),
    fromHex(s.operator, 'operator', 32),
  );
  if (!ok) throw new FloeError('operator_instruction_invalid', 'the operator signature does not verify');
}

/** The last instruction applied for a key, as a verifier remembers it. */
export interface AppliedInstruction {
  type: OperatorInstructionType;
  issued_at: number;
  nonce: string;
}

/**
 * Whether `s` may be applied after `last` at `now`: `apply`, or `again` for the very
 * instruction applied last (a re-delivery; nothing changes). Throws `operator_instruction_stale`
 * for one from the future, an unfreeze too old, or anything not newer than `last`.
 */
export function judgeFreshness(
  s: OperatorInstruction,
  last: AppliedInstruction | undefined,
  now: number,
): 'apply' | 'again' {
  if (last && last.issued_at === s.issued_at && last.nonce === s.nonce && last.type === s.type)
    return 'again';
  if (s.issued_at > now + INSTRUCTION_MAX_SKEW_MS) {
    throw new FloeError('operator_instruction_stale', 'the instruction is stamped in the future');
  }
  if (s.type === 'unfreeze' && s.issued_at < now - UNFREEZE_MAX_AGE_MS) {
    throw new FloeError('operator_instruction_stale', 'the unfreeze instruction is too old; sign a new one');
  }
  if (last && s.issued_at <= last.issued_at) {
    throw new FloeError(
      'operator_instruction_stale',
      'the instruction is not newer than the last one applied for this key',
    );
  }
  return 'apply';
}
