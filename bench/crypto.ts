/**
 * Crypto-only benchmark: one complete t-of-n FROST signing in one process — t nonce
 * commitments, t signature shares, aggregation, and a BIP-340 verification of the result —
 * with three implementations, interleaved run by run so that they share the machine's state:
 *
 *   floe     Floe's crypto layer (src/crypto: commit, signShare, aggregate) on the crypto backend
 *            chosen at start-up (`backend` in the results: native libsecp256k1 unless
 *            FLOE_CRYPTO_BACKEND says otherwise). Its aggregate() checks that the shares add up
 *            to a valid BIP-340 signature before returning it. With `backends`, Floe is also
 *            measured on each other backend (`floe_backends`, same runs, interleaved).
 *   noble    raw @noble/curves schnorr_FROST (commit, signShare, aggregate; noble's aggregate
 *            checks the group signature itself).
 *   cmdcode  @cmdcode/frost (the library under FROSTR/bifrost): create_commit_pkg, and per
 *            signer get_group_signing_ctx + sign_msg (each signer derives the signing context
 *            itself, as it would on its own machine); get_group_signing_ctx + combine_partial_sigs
 *            to aggregate (which does not verify).
 *
 * Every run ends with a BIP-340 verification timed as the "verify" phase, by the implementation's
 * own verifier (floe: verifySignature on its backend; noble and cmdcode: noble's schnorr.verify),
 * and then, untimed, an independent check by libsecp256k1 (tiny-secp256k1): a run whose
 * signature does not verify aborts the benchmark. Keys come from each library's own
 * trusted dealer (set-up, not timed), all three splitting the same two secrets (see keyPair). Shares are not verified one by one in any of them (the
 * optimistic path: shares are checked only when the aggregate fails).
 */
import { randomBytes } from 'node:crypto';
import {
  combine_partial_sigs,
  create_commit_pkg,
  create_dealer_set,
  get_commit_pkg,
  get_group_signing_ctx,
  sign_msg,
} from '@cmdcode/frost/lib';
import { schnorr, schnorr_FROST, secp256k1 } from '@noble/curves/secp256k1.js';
import * as ecc from 'tiny-secp256k1';
import { type BackendName, backendInfo, cryptoBackend, useBackend } from '../src/crypto/backend.js';
import { dealerSplit } from '../src/crypto/dealer.js';
import { aggregate, commit, signShare, verifySignature, xOnlyGroupKey } from '../src/crypto/signing.js';
import type { SigningPackage } from '../src/crypto/types.js';
import { median, now, round } from './stats.js';

export const IMPLS = ['floe', 'noble', 'cmdcode'] as const;
export type ImplName = (typeof IMPLS)[number];
/** What one timed run executes: an implementation, or Floe on a given backend. */
type Runner = ImplName | `floe:${BackendName}`;

export interface Phases {
  commit: number;
  sign: number;
  aggregate: number;
  verify: number;
}

/** One prepared key: sign(msg) runs one complete signing and returns the phase times (ms). */
export interface PreparedKey {
  sign(msg: Uint8Array): Phases;
}

function check(ok: boolean, impl: string, t: number, n: number): void {
  if (!ok) throw new Error(`${impl} ${t}-of-${n}: the signature does not verify`);
}

/** Untimed independent check (libsecp256k1 through tiny-secp256k1) after the timed verify. */
function independentCheck(
  sig: Uint8Array,
  msg: Uint8Array,
  xonly: Uint8Array,
  impl: string,
  t: number,
  n: number,
) {
  check(ecc.verifySchnorr(msg, xonly, sig), `${impl} (libsecp256k1 check)`, t, n);
}

/** Floe on `backend` (the active one when undefined). */
function prepareFloe(t: number, n: number, secret: Uint8Array, backend?: BackendName): PreparedKey {
  const name = backend ?? cryptoBackend().name;
  const { shares } = dealerSplit(secret, t, n);
  const signers = shares.slice(0, t);
  const pub = signers[0]!.public;
  const xonly = xOnlyGroupKey(pub);
  return {
    sign(msg) {
      const prev = useBackend(name);
      try {
        const t0 = now();
        const rounds = signers.map((k) => commit(k));
        const t1 = now();
        const pkg: SigningPackage = { message: msg, commitments: rounds.map((r) => r.commitments) };
        const sigShares = signers.map((k, i) => signShare(k, rounds[i]!.nonces, pkg));
        const t2 = now();
        const sig = aggregate(pub, pkg, sigShares);
        const t3 = now();
        check(verifySignature(sig, msg, xonly), `floe (${name})`, t, n);
        const t4 = now();
        independentCheck(sig, msg, xonly, `floe (${name})`, t, n);
        return { commit: t1 - t0, sign: t2 - t1, aggregate: t3 - t2, verify: t4 - t3 };
      } finally {
        useBackend(prev);
      }
    },
  };
}

function prepareNoble(t: number, n: number, secret: Uint8Array): PreparedKey {
  const F = schnorr_FROST;
  const deal = F.trustedDealer({ min: t, max: n }, undefined, secret);
  const secrets = Object.values(deal.secretShares).slice(0, t);
  const pub = deal.public;
  const xonly = pub.commitments[0]!.slice(1);
  return {
    sign(msg) {
      const t0 = now();
      const rounds = secrets.map((s) => F.commit(s));
      const t1 = now();
      const list = rounds.map((r) => r.commitments);
      const sigShares: Record<string, Uint8Array> = {};
      secrets.forEach((s, i) => {
        sigShares[s.identifier] = F.signShare(s, pub, rounds[i]!.nonces, list, msg);
      });
      const t2 = now();
      const sig = F.aggregate(pub, list, msg, sigShares);
      const t3 = now();
      check(schnorr.verify(sig, msg, xonly), 'noble', t, n);
      const t4 = now();
      independentCheck(sig, msg, xonly, 'noble', t, n);
      return { commit: t1 - t0, sign: t2 - t1, aggregate: t3 - t2, verify: t4 - t3 };
    },
  };
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function prepareCmdcode(t: number, n: number, secret: Uint8Array): PreparedKey {
  const group = create_dealer_set(t, n, [hexOf(secret)]);
  const shares = group.shares.slice(0, t);
  const xonly = Buffer.from(group.group_pk.slice(2), 'hex');
  return {
    sign(msg) {
      const m = hexOf(msg);
      const t0 = now();
      const commits = shares.map((s) => create_commit_pkg(s));
      const t1 = now();
      const pnonces = commits.map((c) => ({ idx: c.idx, hidden_pn: c.hidden_pn, binder_pn: c.binder_pn }));
      const psigs = shares.map((s) => {
        const ctx = get_group_signing_ctx(group.group_pk, pnonces, m);
        return sign_msg(ctx, s, get_commit_pkg(commits, s));
      });
      const t2 = now();
      const ctx = get_group_signing_ctx(group.group_pk, pnonces, m);
      const sig = Buffer.from(combine_partial_sigs(ctx, psigs), 'hex');
      const t3 = now();
      check(schnorr.verify(sig, msg, xonly), 'cmdcode', t, n);
      const t4 = now();
      independentCheck(sig, msg, xonly, 'cmdcode', t, n);
      return { commit: t1 - t0, sign: t2 - t1, aggregate: t3 - t2, verify: t4 - t3 };
    },
  };
}

const PREPARE: Record<ImplName, (t: number, n: number, secret: Uint8Array) => PreparedKey> = {
  floe: (t, n, secret) => prepareFloe(t, n, secret),
  noble: prepareNoble,
  cmdcode: prepareCmdcode,
};

function prepare(r: Runner, t: number, n: number, secret: Uint8Array): PreparedKey {
  return r.startsWith('floe:')
    ? prepareFloe(t, n, secret, r.slice(5) as BackendName)
    : PREPARE[r as ImplName](t, n, secret);
}

export interface ImplResult {
  /** Floe only: the crypto backend it ran on. */
  backend?: BackendName;
  /** Set when the implementation cannot do this configuration (and why). */
  unsupported?: string;
  runs: number;
  median_ms: number;
  min_ms: number;
  signings_per_s: number;
  /** Median of each phase (ms). */
  phases_ms: Phases;
}

export interface ConfigResult {
  t: number;
  n: number;
  /** The crypto backend `impls.floe` ran on (the one chosen at start-up). */
  backend: BackendName;
  impls: Partial<Record<ImplName, ImplResult>>;
  /** Floe on each backend measured (the active one is `impls.floe` again). */
  floe_backends?: Partial<Record<BackendName, ImplResult>>;
  /** median floe / median noble (> 1: Floe's layer is slower). */
  ratio_floe_noble: number | null;
  ratio_floe_cmdcode: number | null;
  /** median Floe-on-backend / median noble, per backend measured. */
  ratio_backend_noble?: Partial<Record<BackendName, number>>;
}

export interface MeasureOptions {
  /** Wall-clock budget for the timed runs of one configuration (all implementations). */
  budgetMs: number;
  minRuns: number;
  maxRuns: number;
  warmupRuns: number;
  /** Also measure Floe on these backends (besides the active one, which is `floe`). */
  backends?: readonly BackendName[];
}

/**
 * Two group secrets, one whose public key has an even Y and one with an odd Y. The Taproot
 * suite negates shares and commitments for an odd-Y key (or nonce), which costs point
 * decompressions, so every implementation gets the same two keys and alternates between them.
 */
function keyPair(): [Uint8Array, Uint8Array] {
  let even: Uint8Array | undefined;
  let odd: Uint8Array | undefined;
  while (!even || !odd) {
    const sk = secp256k1.utils.randomSecretKey(); // (schnorr_FROST's randomScalar gives even-Y keys only)
    if (secp256k1.getPublicKey(sk, true)[0] === 2) even ??= sk;
    else odd ??= sk;
  }
  return [even, odd];
}

/** Measure one t-of-n configuration with the given implementations, interleaved. */
export function measureConfig(
  t: number,
  n: number,
  impls: readonly ImplName[],
  o: MeasureOptions,
): ConfigResult {
  const active = cryptoBackend().name;
  const runners: Runner[] = [...impls];
  for (const b of o.backends ?? []) if (b !== active || !impls.includes('floe')) runners.push(`floe:${b}`);
  const prepared = new Map<Runner, PreparedKey[]>();
  const out: ConfigResult = {
    t,
    n,
    backend: active,
    impls: {},
    ratio_floe_noble: null,
    ratio_floe_cmdcode: null,
  };
  const secrets = keyPair();
  const failed = new Map<Runner, string>();
  for (const name of runners) {
    try {
      const ks = secrets.map((sk) => prepare(name, t, n, sk));
      for (let i = 0; i < o.warmupRuns; i++) for (const k of ks) k.sign(randomBytes(32));
      prepared.set(name, ks);
    } catch (e) {
      failed.set(name, e instanceof Error ? e.message : String(e));
    }
  }
  const names = [...prepared.keys()];
  const samples = new Map<Runner, Phases[]>(names.map((nm) => [nm, []]));
  const start = now();
  for (let r = 0; r < o.maxRuns; r++) {
    if (r >= o.minRuns && now() - start > o.budgetMs) break;
    // rotate the order every run, so no implementation always runs first or last
    for (let j = 0; j < names.length; j++) {
      const name = names[(r + j) % names.length]!;
      // alternate the even-Y and the odd-Y key run by run
      samples.get(name)!.push(prepared.get(name)![r % 2]!.sign(randomBytes(32)));
    }
  }
  const summary = (name: Runner): ImplResult => {
    const reason = failed.get(name);
    if (reason !== undefined) {
      return {
        unsupported: reason,
        runs: 0,
        median_ms: Number.NaN,
        min_ms: Number.NaN,
        signings_per_s: Number.NaN,
        phases_ms: { commit: Number.NaN, sign: Number.NaN, aggregate: Number.NaN, verify: Number.NaN },
      };
    }
    const s = samples.get(name)!;
    const totals = s.map((p) => p.commit + p.sign + p.aggregate + p.verify);
    const med = median(totals);
    return {
      runs: s.length,
      median_ms: round(med, 3),
      min_ms: round(Math.min(...totals), 3),
      signings_per_s: round(1000 / med, 1),
      phases_ms: {
        commit: round(median(s.map((p) => p.commit)), 3),
        sign: round(median(s.map((p) => p.sign)), 3),
        aggregate: round(median(s.map((p) => p.aggregate)), 3),
        verify: round(median(s.map((p) => p.verify)), 3),
      },
    };
  };
  for (const name of impls) {
    out.impls[name] = summary(name);
    if (name === 'floe') out.impls.floe!.backend = active;
  }
  if (o.backends?.length) {
    out.floe_backends = {};
    for (const b of o.backends) {
      const r =
        b === active && impls.includes('floe') ? out.impls.floe! : { ...summary(`floe:${b}`), backend: b };
      out.floe_backends[b] = r;
    }
  }
  const med = (r: ImplResult | undefined) => (r && !r.unsupported ? r.median_ms : undefined);
  const f = med(out.impls.floe);
  const nb = med(out.impls.noble);
  const cc = med(out.impls.cmdcode);
  if (f !== undefined && nb !== undefined) out.ratio_floe_noble = round(f / nb, 3);
  if (f !== undefined && cc !== undefined) out.ratio_floe_cmdcode = round(f / cc, 3);
  if (out.floe_backends && nb !== undefined) {
    out.ratio_backend_noble = {};
    for (const [b, r] of Object.entries(out.floe_backends) as [BackendName, ImplResult][]) {
      const m = med(r);
      if (m !== undefined) out.ratio_backend_noble[b] = round(m / nb, 3);
    }
  }
  return out;
}

export const CRYPTO_CONFIGS: readonly (readonly [number, number])[] = [
  [2, 3],
  [3, 5],
  [7, 10],
  [18, 24],
];

export function runCryptoBench(
  quick: boolean,
  log: (s: string) => void,
  backends: readonly BackendName[] = ['native', 'wasm', 'noble'],
): ConfigResult[] {
  const info = backendInfo();
  log(`  crypto backend: ${info.name} (${info.reason}); Floe also measured on: ${backends.join(', ')}`);
  const results: ConfigResult[] = [];
  for (const [t, n] of CRYPTO_CONFIGS) {
    const r = measureConfig(t, n, IMPLS, {
      budgetMs: quick ? 1500 : 12_000,
      minRuns: quick ? 3 : 10,
      maxRuns: quick ? 60 : 400,
      warmupRuns: quick ? 1 : 3,
      backends,
    });
    const show = (label: string, x: ImplResult | undefined) =>
      x?.unsupported ? `${label} unsupported` : `${label} ${x?.median_ms} ms`;
    const parts = [
      ...Object.entries(r.floe_backends ?? { [r.backend]: r.impls.floe }).map(([b, x]) =>
        show(`floe(${b})`, x as ImplResult),
      ),
      ...IMPLS.filter((nm) => nm !== 'floe').map((nm) => show(nm, r.impls[nm])),
    ];
    const ratios = Object.entries(r.ratio_backend_noble ?? {})
      .map(([b, x]) => `${b} ${x}`)
      .join(', ');
    log(
      `  crypto ${t}-of-${n}: ${parts.join(', ')} (${r.impls.floe?.runs ?? 0} runs each; ×noble: ${ratios})`,
    );
    results.push(r);
  }
  return results;
}
