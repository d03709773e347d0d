/**
 * Operator instructions on the wire (src/domain/operator-instruction.ts): submitted to the
 * coordinator's API (POST /v1/keys/:id/freeze | unfreeze) and forwarded, as they are, to every
 * member signer in `key.freeze` (coordinator → signer), which verifies the operator's signature.
 */
import { type Static, Type } from '@sinclair/typebox';
import { OPERATOR_INSTRUCTION_TYPES } from '../../domain/operator-instruction.js';
import { Hex, literalUnion, Strict } from '../schema.js';
import { KeyId } from './dkg.js';

export const SignedOperatorInstructionSchema = Strict(
  {
    type: literalUnion(OPERATOR_INSTRUCTION_TYPES, 'freeze or unfreeze the key'),
    key_id: KeyId,
    issued_at: Type.Integer({
      minimum: 0,
      maximum: 2 ** 52,
      description: 'ms since the epoch (operator clock)',
    }),
    nonce: Hex(16, '16 random bytes'),
    operator: Hex(32, "the operator's x-only public key (pinned on the signers)"),
    sig: Hex(64, 'BIP-340 signature over the instruction digest'),
  },
  'an operator instruction, signed with the operator key (floe key freeze | unfreeze)',
);

export const KeyFreezeRequest = Strict({ instruction: SignedOperatorInstructionSchema });
export const KeyFreezeResponse = Strict({
  key_id: KeyId,
  frozen: Type.Boolean(),
  /** ms: the issued_at of the instruction in force here. */
  issued_at: Type.Integer({ minimum: 0 }),
  /** live signing attempts of the key this signer dropped (their nonces wiped). */
  dropped: Type.Integer({ minimum: 0 }),
});

export type KeyFreezeRequest = Static<typeof KeyFreezeRequest>;
export type KeyFreezeResponse = Static<typeof KeyFreezeResponse>;
