/**
 * PSBT signing (issue 14 item 8): `node --import tsx bench/psbt.ts [options]`. Not a test: prints
 * JSON figures.
 *
 *   service     a 2-of-3 cluster of real processes (bench/cluster.ts, PGlite): POST /v1/sessions
 *               {bitcoin_psbt, wait} with PSBTs of 1 and 10 inputs of the key (its own output key
 *               and BIP-86 addresses derived from it, built by bitcoinjs-lib), one at a time
 *               (latency) and from several clients at once (throughput); a message session as the
 *               baseline. Every signed PSBT is checked with bitcoinjs-lib (not timed).
 *   engine      the same PSBTs on in-memory signer engines in this process (no HTTP, no database):
 *               the CPU cost of one attempt (both signers' open and round 2, aggregation).
 *
 *   --inputs 1,10        inputs per PSBT (default 1,10)
 *   --runs N             sequential sessions per size (default 20)
 *   --clients K          concurrent clients of the throughput run (default 4)
 *   --seconds S          seconds of the throughput run per size (default 8)
 *   --runtime tsx|build  how the cluster's processes run (default tsx; build: a fresh tsc build)
 *   --only service,engine
 */
import { parseArgs } from 'node:util';
import { deriveTaprootPublicKeyPackage } from '../src/crypto/derive-key.js';
import { aggregate, decodeCommitments, decodeSignatureShare, toHex } from '../src/crypto/index.js';
import { intentKeyOf, resolveIntent } from '../src/domain/intent.js';
import {
  buildPsbt,
  fromBase64,
  type InputSpec,
  someAddress,
  validInput,
  walletKeyOf,
} from '../test/helpers/psbt.js';
import { openPsbt, setup } from '../test/helpers/psbt-attempt.js';
import { type BenchCluster, type Runtime, startBenchCluster } from './cluster.js';
import { latencySummary, now, round } from './stats.js';

const { values: args } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1,10' },
    runs: { type: 'string', default: '20' },
    clients: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '8' },
    runtime: { type: 'string', default: 'tsx' },
    only: { type: 'string', default: 'service,engine' },
  },
});
const sizes = args.inputs!.split(',').map(Number);
const runs = Number(args.runs);
const clients = Number(args.clients);
const seconds = Number(args.seconds);
const only = new Set(args.only!.split(','));

/** k inputs of the key: every third its own output key, the others derived addresses. */
function inputsOf(k: number, salt: number): InputSpec[] {
  return Array.from({ length: k }, (_, i) =>
    i % 3 === 0
      ? { kind: 'own', value: 50_000n }
      : { kind: 'derived', value: 50_000n, path: [i % 2, (salt * 1000 + i) % 2 ** 31] },
  );
}

function psbtFor(wallet: ReturnType<typeof walletKeyOf>, k: number, salt: number) {
  return buildPsbt(wallet, inputsOf(k, salt), [
    { address: someAddress(), value: BigInt(k) * 50_000n - 1_000n },
  ]);
}

async function service() {
  const c: BenchCluster = await startBenchCluster({
    signers: 3,
    database: { kind: 'pglite' },
    runtime: args.runtime as Runtime,
  });
  try {
    await c.registerSigners();
    const key = await c.createKey(2);
    const wallet = walletKeyOf(key);
    const signOne = async (body: Record<string, unknown>) => {
      const t0 = now();
      const r = await c.api('POST', '/v1/sessions', { key_id: key.id, wait: 60_000, ...body });
      return { ms: now() - t0, r };
    };
    // Baseline: a message session, same cluster.
    const base: number[] = [];
    for (let i = 0; i < runs + 2; i++) {
      const { ms, r } = await signOne({ message: Buffer.alloc(32, i + 1).toString('hex') });
      if (r.body.status !== 'completed') throw new Error(`message session: ${JSON.stringify(r.body)}`);
      if (i >= 2) base.push(ms);
    }
    const out: Record<string, unknown>[] = [{ intent: 'message', sequential: latencySummary(base) }];
    let salt = 1;
    for (const k of sizes) {
      const lat: number[] = [];
      for (let i = 0; i < runs + 2; i++) {
        const psbt = psbtFor(wallet, k, salt++);
        const { ms, r } = await signOne({ bitcoin_psbt: psbt.toBase64() });
        if (r.body.status !== 'completed') throw new Error(`psbt session: ${JSON.stringify(r.body)}`);
        const signed = fromBase64(r.body.psbt);
        for (let j = 0; j < k; j++)
          if (!validInput(signed, j)) throw new Error(`input ${j} does not validate`);
        if (i >= 2) lat.push(ms);
      }
      // Throughput: `clients` concurrent clients for `seconds`.
      let sessions = 0;
      let errors = 0;
      const clat: number[] = [];
      const t0 = now();
      const stop = t0 + seconds * 1000;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (now() < stop) {
            const psbt = psbtFor(wallet, k, salt++);
            const { ms, r } = await signOne({ bitcoin_psbt: psbt.toBase64() });
            if (r.body.status === 'completed') {
              sessions++;
              clat.push(ms);
            } else errors++;
          }
        }),
      );
      const elapsed = (now() - t0) / 1000;
      out.push({
        intent: 'bitcoin_psbt',
        inputs: k,
        sequential: latencySummary(lat),
        sequential_signatures_per_s: round((k * 1000) / (lat.reduce((a, b) => a + b, 0) / lat.length), 1),
        concurrent: {
          clients,
          seconds: round(elapsed, 1),
          sessions,
          errors,
          sessions_per_s: round(sessions / elapsed, 1),
          signatures_per_s: round((sessions * k) / elapsed, 1),
          ...latencySummary(clat),
        },
      });
    }
    return out;
  } finally {
    await c.close();
  }
}

/**
 * One attempt on in-memory engines (2 of 3), timed by step: the coordinator's reading of the PSBT
 * (resolveIntent), both signers' open (each reads the PSBT again and draws a nonce pair per
 * input), both signers' round 2 (a derived key package and a share per input), and aggregation.
 */
function engine() {
  const out: Record<string, unknown>[] = [];
  for (const k of sizes) {
    const { nodes, pub, wallet } = setup();
    const t = {
      resolve: [] as number[],
      open: [] as number[],
      round2: [] as number[],
      aggregate: [] as number[],
    };
    for (let i = 0; i < runs + 5; i++) {
      const psbt = psbtFor(wallet, k, 10_000 + i);
      const intent = { type: 'bitcoin_psbt' as const, psbt: psbt.toBase64(), network: 'regtest' as const };
      let t0 = now();
      const resolved = resolveIntent(intent, intentKeyOf(pub));
      const tResolve = now() - t0;
      const req = openPsbt(pub, `ses_bench_${k}_${i}`, intent.psbt);
      t0 = now();
      const opens = [nodes[0]!.engine.open(req), nodes[1]!.engine.open(req)];
      const tOpen = now() - t0;
      const pkgs = resolved.digests!.map((d, j) => ({
        v: 1 as const,
        type: 'signing_package' as const,
        message: toHex(d.digest),
        commitments: opens.map((o) => o.inputs![j]!.commitments),
      }));
      const r2 = {
        key_id: 'k1',
        session_id: req.session_id,
        attempt_id: req.attempt_id,
        signing_package: pkgs[0]!,
        inputs: resolved.digests!.map((d, j) => ({ input: d.input, signing_package: pkgs[j]! })),
      };
      t0 = now();
      const answers = [nodes[0]!.engine.round2(r2), nodes[1]!.engine.round2(r2)];
      const tRound2 = now() - t0;
      t0 = now();
      resolved.digests!.forEach((d, j) => {
        const key = d.key ? deriveTaprootPublicKeyPackage(pub, d.key.derivation, d.key.merkleRoot) : pub;
        aggregate(
          key,
          { message: d.digest, commitments: pkgs[j]!.commitments.map(decodeCommitments) },
          answers.map((a) => decodeSignatureShare(a.inputs![j]!.share)),
        );
      });
      const tAggregate = now() - t0;
      if (i >= 5) {
        t.resolve.push(tResolve);
        t.open.push(tOpen);
        t.round2.push(tRound2);
        t.aggregate.push(tAggregate);
      }
    }
    out.push({
      inputs: k,
      coordinator_resolve_psbt: latencySummary(t.resolve),
      two_signers_open: latencySummary(t.open),
      two_signers_round2: latencySummary(t.round2),
      coordinator_aggregate_all_inputs: latencySummary(t.aggregate),
    });
  }
  return out;
}

const result: Record<string, unknown> = {
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
};
if (only.has('engine')) result.engine = engine();
if (only.has('service')) result.service = await service();
console.log(JSON.stringify(result, null, 2));
