/**
 * PSBT attempts on in-memory signer engines (the production engine over a MemoryStore): a 2-of-3
 * key, open and round-2 requests of a multi-digest attempt as a coordinator builds them, and the
 * signatures aggregated and put into the bitcoinjs-lib PSBT.
 */
import { randomBytes } from 'node:crypto';
import { deriveTaprootPublicKeyPackage } from '../../src/crypto/derive-key.js';
import type { SigningPackageJson } from '../../src/crypto/encoding.js';
import {
  aggregate,
  dealerSplit,
  decodeCommitments,
  decodeSignatureShare,
  type KeyPackage,
  type PublicKeyPackage,
  toHex,
  tweakKeyPackage,
  tweakPublicKeyPackage,
} from '../../src/crypto/index.js';
import { type Intent, intentKeyOf, resolveIntent } from '../../src/domain/intent.js';
import type {
  SignOpenRequest,
  SignOpenResponse,
  SignRound2Request,
} from '../../src/protocol/messages/sign.js';
import { SigningEngine } from '../../src/signer/engine.js';
import type { SigningPolicy } from '../../src/signer/policy.js';
import { FakeClock, MemoryStore } from './memory-store.js';
import { type buildPsbt, type OutputSpec, someAddress, type WalletKey } from './psbt.js';
import { openRequest } from './sign-requests.js';

export interface Node {
  id: number;
  store: MemoryStore;
  engine: SigningEngine;
}

/** A 2-of-3 key: BIP-86 tweaked like a DKG key (default), or a dealer key as imported. */
export function setup(
  o: { dkgLike?: boolean; policy?: (clock: FakeClock) => SigningPolicy; clock?: FakeClock } = {},
) {
  const clock = o.clock ?? new FakeClock(Date.UTC(2026, 0, 15, 12, 0, 0));
  const deal = dealerSplit(new Uint8Array(randomBytes(32)), 2, 3);
  const dkgLike = o.dkgLike ?? true;
  const shares: KeyPackage[] = dkgLike ? deal.shares.map((k) => tweakKeyPackage(k)) : deal.shares;
  const pub: PublicKeyPackage = dkgLike ? tweakPublicKeyPackage(deal.public) : deal.public;
  const nodes: Node[] = shares.map((k) => {
    const store = new MemoryStore();
    store.putKey({
      keyId: 'k1',
      identifier: k.identifier,
      status: 'active',
      origin: dkgLike ? 'dkg' : 'dealer',
      keyPackage: k,
      createdAt: 0,
    });
    const policy = o.policy?.(clock);
    return {
      id: k.identifier,
      store,
      engine: new SigningEngine({ store, clock, ...(policy ? { policy } : {}) }),
    };
  });
  const wallet: WalletKey = {
    groupKey: pub.commitments[0]!,
    ...(pub.tweak.kind === 'taproot' ? { internalKey: pub.tweak.internalKey } : {}),
  };
  return { nodes, pub, wallet, clock };
}

export const psbtIntent = (b64: string, network: 'regtest' | 'testnet' = 'regtest'): Intent => ({
  type: 'bitcoin_psbt',
  psbt: b64,
  network,
});

export function openPsbt(
  pub: PublicKeyPackage,
  sessionId: string,
  b64: string,
  included = [1, 2],
  attempt = 1,
) {
  return openRequest({
    keyId: 'k1',
    sessionId,
    attempt,
    included,
    intent: psbtIntent(b64),
    intentKey: intentKeyOf(pub),
  });
}

/** The round-2 request for a multi-digest attempt from the members' open answers. */
export function round2Of(
  pub: PublicKeyPackage,
  req: SignOpenRequest,
  opens: SignOpenResponse[],
): SignRound2Request {
  const r = resolveIntent(req.intent, intentKeyOf(pub));
  const sorted = [...opens].sort((a, b) => a.commitments.identifier - b.commitments.identifier);
  const pkgs: SigningPackageJson[] = r.digests!.map((d, i) => ({
    v: 1,
    type: 'signing_package',
    message: toHex(d.digest),
    commitments: sorted.map((o) => o.inputs![i]!.commitments),
  }));
  return {
    key_id: 'k1',
    session_id: req.session_id,
    attempt_id: req.attempt_id,
    signing_package: pkgs[0]!,
    inputs: r.digests!.map((d, i) => ({ input: d.input, signing_package: pkgs[i]! })),
  };
}

/** Aggregate each input's signature (each under its own key) and put them into the bitcoinjs PSBT. */
export function finish(
  pub: PublicKeyPackage,
  req: SignOpenRequest,
  r2: SignRound2Request,
  answers: ReturnType<SigningEngine['round2']>[],
  psbt: ReturnType<typeof buildPsbt>,
) {
  const r = resolveIntent(req.intent, intentKeyOf(pub));
  r.digests!.forEach((d, i) => {
    const key = d.key ? deriveTaprootPublicKeyPackage(pub, d.key.derivation, d.key.merkleRoot) : pub;
    const pkg = r2.inputs![i]!.signing_package;
    const sig = aggregate(
      key,
      { message: d.digest, commitments: pkg.commitments.map(decodeCommitments) },
      answers.map((a) => decodeSignatureShare(a.inputs![i]!.share)),
    );
    const type = psbt.data.inputs[d.input]!.sighashType;
    psbt.updateInput(d.input, { tapKeySig: type === 1 ? Uint8Array.from([...sig, 1]) : sig });
  });
  return r.digests!.map((d) => d.input);
}

export const pay = (value: bigint): OutputSpec => ({ address: someAddress(), value });
