/**
 * Provable blame per input (src/protocol/blame.ts, issue 14): in a multi-digest attempt each share
 * is bound to its own package and key tweak, so a member's signed round-2 answer proves an invalid
 * share on any one input — and nothing about the others; a claim made under another key tweak,
 * another package or a digest the answer does not have proves nothing. Equivocation on any input's
 * commitment is caught from the member's two signed answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { taprootDerivationBytes } from '../../src/crypto/derive-key.js';
import { encodePublicKeyPackage } from '../../src/crypto/encoding.js';
import { generateIdentityKey, softwareIdentity } from '../../src/crypto/identity.js';
import { CURVE_ORDER, parseScalar, scalarToBytes, toHex } from '../../src/crypto/index.js';
import { intentKeyOf, resolveIntent } from '../../src/domain/intent.js';
import { judgeCommitments, judgeShare, type SignedAnswer } from '../../src/protocol/blame.js';
import { encodeEnvelope } from '../../src/protocol/envelope.js';
import { sealResponse } from '../../src/protocol/exchange.js';
import { buildPsbt } from '../helpers/psbt.js';
import { openPsbt, pay, round2Of, setup } from '../helpers/psbt-attempt.js';

const coordinator = softwareIdentity(generateIdentityKey());

/** A body signed by `identity` as its answer to a `type` request. */
function signed(identity: ReturnType<typeof softwareIdentity>, type: string, body: unknown): SignedAnswer {
  const text = JSON.stringify(body);
  const env = sealResponse(type, text, {
    identity,
    to: coordinator.publicKeyHex,
    re: 'ab'.repeat(16),
    now: Date.now(),
  });
  return { signer: identity.publicKeyHex, envelope: encodeEnvelope(env), body: text };
}

const plusOne = (hex: string) =>
  toHex(scalarToBytes((parseScalar(Buffer.from(hex, 'hex'), 'share', false) + 1n) % CURVE_ORDER));

describe('blame in a PSBT attempt, input by input', () => {
  const { nodes, pub, wallet } = setup();
  const psbt = buildPsbt(
    wallet,
    [
      { kind: 'own', value: 30_000n },
      { kind: 'derived', value: 30_000n, path: [0, 5] },
      { kind: 'derived', value: 30_000n, path: [1, 5] },
    ],
    [pay(89_000n)],
  );
  const req = openPsbt(pub, 'ses_blame', psbt.toBase64());
  const ids = [1, 2].map(() => softwareIdentity(generateIdentityKey()));
  const opens = [nodes[0]!.engine.open(req), nodes[1]!.engine.open(req)];
  const r2 = round2Of(pub, req, opens);
  const answers = [nodes[0]!.engine.round2(r2), nodes[1]!.engine.round2(r2)];
  const digests = resolveIntent(req.intent, intentKeyOf(pub)).digests!;
  const tweaks = digests.map((d) => (d.key ? toHex(taprootDerivationBytes(d.key)) : null));
  const claim = (
    evidence: SignedAnswer,
    index: number,
    tweak: string | null = tweaks[index]!,
    pkgIndex = index,
  ) =>
    judgeShare({
      evidence,
      sessionId: req.session_id,
      attemptId: req.attempt_id,
      intentHash: req.intent_hash,
      tweak,
      index,
      signingPackage: r2.inputs![pkgIndex]!.signing_package,
      publicKeyPackage: encodePublicKeyPackage(pub),
    });

  it("an honest member's shares verify, each under its own input's key", () => {
    const honest = signed(ids[0]!, 'sign.round2', answers[0]);
    for (let i = 0; i < 3; i++) assert.equal(claim(honest, i), 'valid_share', `input ${i}`);
    assert.deepEqual(
      tweaks.map((t) => t === null),
      [true, false, false],
      'own key: no tweak; derived: d',
    );
  });

  it('a bad share on input 2 is proven by its signed answer; inputs 0 and 1 stay good', () => {
    const a = answers[1]!;
    const lie = {
      ...a,
      inputs: a.inputs!.map((x, i) =>
        i === 2 ? { ...x, share: { ...x.share, share: plusOne(x.share.share) } } : x,
      ),
    };
    const evidence = signed(ids[1]!, 'sign.round2', lie);
    assert.equal(claim(evidence, 2), 'invalid_share');
    assert.equal(claim(evidence, 0), 'valid_share');
    assert.equal(claim(evidence, 1), 'valid_share');
  });

  it('a claim under another tweak, another package or a digest the answer lacks proves nothing', () => {
    const evidence = signed(ids[0]!, 'sign.round2', answers[0]);
    assert.equal(claim(evidence, 1, null), 'other_package', 'the derived input judged under the bare key');
    assert.equal(claim(evidence, 1, tweaks[2]!), 'other_package', "another input's derivation");
    assert.equal(claim(evidence, 1, tweaks[1]!, 2), 'other_package', "another input's package");
    assert.equal(claim(evidence, 3, tweaks[1]!, 1), 'other_package', 'no such digest');
    const edited = {
      ...evidence,
      body: evidence.body.replace(answers[0]!.inputs![2]!.share.share, '00'.repeat(32)),
    };
    assert.equal(claim(edited, 2), 'not_evidence', 'an edited body is nobody’s word');
  });

  it('equivocation on any input: the commitment it opened with is not the one its share used', () => {
    const open = signed(ids[0]!, 'sign.open', opens[0]);
    const honest = signed(ids[0]!, 'sign.round2', answers[0]);
    assert.equal(judgeCommitments(open, honest), 'consistent');
    const other = answers[1]!.inputs![1]!.commitments;
    const swapped = {
      ...answers[0]!,
      inputs: answers[0]!.inputs!.map((x, i) =>
        i === 1 ? { ...x, commitments: { ...other, identifier: 1 } } : x,
      ),
    };
    assert.equal(judgeCommitments(open, signed(ids[0]!, 'sign.round2', swapped)), 'equivocation');
  });
});
