/**
 * A byzantine signer for tests of the coordinator's blame (and the chaos bench): the real
 * signer node with its handler table wrapped so that it lies to the coordinator. None of the
 * lies makes the engine reuse a nonce — the engine underneath is the production one, rules
 * and all; the wrapper only changes what leaves it. Test-only: the production signer has no
 * such switch (DESIGN §3).
 *
 *   corrupt_shares       release share + 1 instead of the share (every input's, in a PSBT attempt)
 *   corrupt_input_share  in a multi-digest (PSBT) attempt, release share + 1 for its last input
 *                        only: a bad share on one input, the others good
 *   wrong_commitments    report a commitment to a random point instead of the real one
 *   replay_commitments   report the commitments it sent for an earlier attempt
 *   replay_shares        answer round 2 with the share it released for an earlier attempt
 *   bad_dkg_share        in a DKG, seal a random scalar instead of its share to the first
 *                        other member (a validly sealed lie that member will complain about)
 *   bad_ecdh_share       answer threshold ECDH with S_i + G and the honest proof of S_i, and
 *                        every second time with S_i and a proof with a flipped bit
 *   die_in_refresh_round3   SIGKILL itself when asked for a share refresh's round 3 (the other
 *                        members finish theirs: a refresh interrupted mid-ceremony)
 *   die_at_refresh_commit   SIGKILL itself when asked to commit a refresh (after the decision)
 *
 * A signer that reported other commitments still answers round 2, with a share over its real
 * ones (all it can make), which fails verification under the package the coordinator built.
 */

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sealBox } from '../../src/crypto/box.js';
import {
  encodeSignatureShare,
  type SignatureShareJson,
  type SigningCommitmentsJson,
} from '../../src/crypto/encoding.js';
import { CURVE_ORDER, parseScalar, scalarToBytes } from '../../src/crypto/group.js';
import { fromHex, toHex } from '../../src/crypto/hex.js';
import { generateIdentityKey, identityPublicKey, softwareIdentity } from '../../src/crypto/identity.js';
import { isFloeError } from '../../src/protocol/errors.js';
import { DKG_BOX_INFO, dkgBoxAad } from '../../src/protocol/transcript.js';
import type { SignerHandlers } from '../../src/signer/server.js';

export const FAULTS = [
  'corrupt_shares',
  'wrong_commitments',
  'replay_commitments',
  'replay_shares',
  'bad_dkg_share',
  'bad_ecdh_share',
  'corrupt_input_share',
  'die_in_refresh_round3',
  'die_at_refresh_commit',
] as const;
export type Fault = (typeof FAULTS)[number];
/** The faults that lie while signing (the chaos bench's `--byzantine all`). */
export const SIGNING_FAULTS = FAULTS.filter(
  (f) => !['bad_dkg_share', 'bad_ecdh_share', 'die_in_refresh_round3', 'die_at_refresh_commit'].includes(f),
);

/** A crash: no answer, no clean-up, as a power cut would leave it. */
function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** The environment variable the byzantine entry point reads (never read by production code). */
export const FAULTS_ENV = 'FLOE_TEST_SIGNER_FAULTS';

export function parseFaults(list: string | undefined): Set<Fault> {
  const out = new Set<Fault>();
  for (const f of (list ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (!(FAULTS as readonly string[]).includes(f))
      throw new Error(`unknown fault ${f}; one of ${FAULTS.join(', ')}`);
    out.add(f as Fault);
  }
  return out;
}

/** A point nobody knows the discrete log of a nonce for: lift_x of a fresh identity key. */
function randomPoint(): string {
  return `02${toHex(identityPublicKey(generateIdentityKey()))}`;
}

export function byzantine(h: SignerHandlers, faults: ReadonlySet<Fault>): SignerHandlers {
  let lastSent: SigningCommitmentsJson | undefined;
  /** The real commitments of attempts it lied about, by attempt id. */
  const real = new Map<string, SigningCommitmentsJson>();
  let lastShare: string | undefined;
  let ecdhLies = 0;
  /** DKG members by ceremony (from round 1), to seal the lie to the right key. */
  const members = new Map<
    string,
    { ceremony: string; key: string; participants: { identifier: number; identity: string }[] }
  >();
  const wrapped: SignerHandlers = {
    ...h,
    dkgRound1(b) {
      members.set(b.ceremony_id, { ceremony: b.ceremony_id, key: b.key_id, participants: b.participants });
      return h.dkgRound1(b);
    },
    dkgRound2(b) {
      const r = h.dkgRound2(b);
      const m = members.get(b.ceremony_id);
      if (!faults.has('bad_dkg_share') || !m) return r;
      const victim = r.boxes[0]!;
      const to = m.participants.find((p) => p.identifier === victim.receiver)!;
      const lie = sealBox(
        softwareIdentity(generateIdentityKey()),
        fromHex(to.identity, 'identity', 32),
        scalarToBytes(1234567n),
        dkgBoxAad(m.ceremony, m.key, r.identifier, victim.receiver),
        DKG_BOX_INFO,
      );
      return { ...r, boxes: r.boxes.map((x) => (x === victim ? { receiver: x.receiver, box: lie } : x)) };
    },
    signOpen(b) {
      const r = h.signOpen(b);
      let sent = r.commitments;
      if (faults.has('replay_commitments') && lastSent) sent = lastSent;
      else if (faults.has('wrong_commitments')) sent = { ...r.commitments, binding: randomPoint() };
      if (sent !== r.commitments) real.set(b.attempt_id, r.commitments);
      lastSent = sent;
      return { ...r, commitments: sent };
    },
    signRound2(b) {
      const mine = real.get(b.attempt_id);
      const pkg = mine
        ? {
            ...b.signing_package,
            commitments: b.signing_package.commitments.map((c) =>
              c.identifier === mine.identifier ? mine : c,
            ),
          }
        : b.signing_package;
      const r = h.signRound2({ ...b, signing_package: pkg });
      let share = r.share.share;
      if (faults.has('corrupt_shares')) {
        const s = parseScalar(fromHex(share, 'share', 32), 'share', false);
        share = toHex(scalarToBytes((s + 1n) % CURVE_ORDER));
      }
      if (faults.has('replay_shares')) {
        const previous = lastShare;
        lastShare = share;
        if (previous) share = previous;
      }
      const plusOne = (x: SignatureShareJson) => {
        const s = parseScalar(fromHex(x.share, 'share', 32), 'share', false);
        return encodeSignatureShare({
          identifier: x.identifier,
          share: scalarToBytes((s + 1n) % CURVE_ORDER),
        });
      };
      const last = (r.inputs?.length ?? 0) - 1;
      const inputs = r.inputs?.map((x, i) =>
        faults.has('corrupt_shares') || (faults.has('corrupt_input_share') && i === last && i > 0)
          ? { ...x, share: plusOne(x.share) }
          : x,
      );
      return {
        ...r,
        share: encodeSignatureShare({ identifier: r.share.identifier, share: fromHex(share, 'share', 32) }),
        ...(inputs ? { inputs } : {}),
      };
    },
    ecdhShare(b) {
      const r = h.ecdhShare(b);
      if (!faults.has('bad_ecdh_share')) return r;
      ecdhLies++;
      if (ecdhLies % 2 === 1) {
        const { Point } = secp256k1;
        return { ...r, shared: Point.fromHex(r.shared).add(Point.BASE).toHex(true) };
      }
      const proof = fromHex(r.proof, 'proof', 64);
      proof[40]! ^= 1;
      return { ...r, proof: toHex(proof) };
    },
    refreshRound3(b) {
      if (faults.has('die_in_refresh_round3')) die();
      return h.refreshRound3(b);
    },
    refreshCommit(b) {
      if (faults.has('die_at_refresh_commit')) die();
      return h.refreshCommit(b);
    },
    // Batches misbehave item by item, as the single messages do.
    signOpenBatch(b) {
      return { items: b.items.map((item) => perItem(() => wrapped.signOpen(item))) };
    },
    signRound2Batch(b) {
      return { items: b.items.map((item) => perItem(() => wrapped.signRound2(item))) };
    },
  };
  return wrapped;
}

function perItem<T>(fn: () => T): T | { error: { code: string; message: string } } {
  try {
    return fn();
  } catch (e) {
    return { error: { code: isFloeError(e) ? e.code : 'internal', message: 'refused' } };
  }
}
