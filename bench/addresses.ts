/**
 * Bitcoin address throughput (DESIGN §14, issue 14 "Bench"):
 *
 *   per-passphrase   POST /v1/addresses for new passphrases: one deterministic DKG each, over a
 *                    t-of-n group of n signer processes on this machine (2-of-3, then larger groups
 *                    up to the largest that runs here), one request at a time and `--concurrency`
 *                    at once; and the same passphrases again (answered from the database)
 *   derived          GET /v1/keys/:id/addresses?count=1000 through the API, and the derivation alone
 *                    in this process (BIP-32 CKDpub + BIP-86 + bech32m per address)
 *
 * Usage: node --import tsx bench/addresses.ts [--sizes 2-3,3-5,5-7,10-15] [--seconds 10]
 *          [--concurrency 4] [--runtime build|tsx] [--json] [--out FILE]
 * A size that does not start (or whose DKGs fail) ends the list: the last one that ran is the
 * largest this machine allows. Prints a table; --json prints the results document.
 */

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { deriveTweak, keyRootXpub, REGTEST, taprootOutput } from '../src/bitcoin/index.js';
import { fromHex } from '../src/crypto/hex.js';
import { type BenchCluster, type Runtime, startBenchCluster } from './cluster.js';
import { machineInfo } from './machine.js';
import { latencySummary, now, round } from './stats.js';

interface Args {
  sizes: { t: number; n: number }[];
  seconds: number;
  concurrency: number;
  runtime: Runtime;
  json: boolean;
  out?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    sizes: [
      { t: 2, n: 3 },
      { t: 3, n: 5 },
      { t: 5, n: 7 },
      { t: 10, n: 15 },
    ],
    seconds: 10,
    concurrency: 4,
    runtime: 'build',
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--sizes':
        a.sizes = v!.split(',').map((s) => {
          const [t, n] = s.split('-').map(Number);
          if (!t || !n || t < 2 || t > n) throw new Error(`--sizes: ${s} is not t-n`);
          return { t, n };
        });
        i++;
        break;
      case '--seconds':
        a.seconds = Number(v);
        i++;
        break;
      case '--concurrency':
        a.concurrency = Number(v);
        i++;
        break;
      case '--runtime':
        a.runtime = v as Runtime;
        i++;
        break;
      case '--out':
        a.out = v;
        i++;
        break;
      case '--json':
        a.json = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

interface PassphraseResult {
  t: number;
  n: number;
  in_flight: number;
  addresses: number;
  errors: number;
  error_samples: string[];
  seconds: number;
  addresses_per_s: number;
  p50_ms: number;
  p95_ms: number;
}

/** New passphrases for `seconds` (at least `min`), `inFlight` requests at a time. */
async function perPassphrase(
  c: BenchCluster,
  t: number,
  n: number,
  inFlight: number,
  seconds: number,
  min: number,
): Promise<{ result: PassphraseResult; passphrases: string[] }> {
  const latencies: number[] = [];
  const errors: string[] = [];
  const passphrases: string[] = [];
  const t0 = now();
  const worker = async () => {
    while (latencies.length + errors.length < min || now() - t0 < seconds * 1000) {
      const passphrase = `bench-${randomBytes(12).toString('hex')}`;
      const s = now();
      try {
        const r = await c.api('POST', '/v1/addresses', { passphrase, wait: 120_000 });
        if (r.status === 201 && typeof r.body.address === 'string') {
          latencies.push(now() - s);
          passphrases.push(passphrase);
        } else errors.push(`HTTP ${r.status} ${r.body?.code ?? r.body?.status ?? ''}`);
      } catch (e) {
        errors.push(`transport: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (errors.length > 20) return;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (now() - t0) / 1000;
  const lat = latencySummary(latencies);
  return {
    passphrases,
    result: {
      t,
      n,
      in_flight: inFlight,
      addresses: latencies.length,
      errors: errors.length,
      error_samples: [...new Set(errors)].slice(0, 5),
      seconds: round(secs, 2),
      addresses_per_s: round(latencies.length / secs, 2),
      p50_ms: lat.p50_ms,
      p95_ms: lat.p95_ms,
    },
  };
}

/** The same passphrases again: answered from the database, no DKG. */
async function repeated(c: BenchCluster, passphrases: string[], inFlight: number) {
  let i = 0;
  const t0 = now();
  let ok = 0;
  const worker = async () => {
    while (i < passphrases.length) {
      const r = await c.api('POST', '/v1/addresses', { passphrase: passphrases[i++]! });
      if (r.status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (now() - t0) / 1000;
  return { requests: passphrases.length, ok, addresses_per_s: round(ok / secs, 1) };
}

/** Derived addresses through the API: pages of 1000. */
async function derivedApi(c: BenchCluster, keyId: string, seconds: number) {
  let n = 0;
  let from = 0;
  const t0 = now();
  while (now() - t0 < seconds * 1000) {
    const r = await c.api('GET', `/v1/keys/${keyId}/addresses?from=${from}&count=1000`);
    if (r.status !== 200) throw new Error(`derived: HTTP ${r.status}`);
    n += r.body.items.length;
    from += 1000;
  }
  const secs = (now() - t0) / 1000;
  return { addresses: n, seconds: round(secs, 2), addresses_per_s: round(n / secs, 0) };
}

/**
 * The derivation alone, in this process: CKDpub of m/0/i, BIP-86 output, bech32m. Also per CPU
 * second of this process, which a busy machine does not distort.
 */
function derivedInProcess(groupKeyHex: string, seconds: number) {
  const branch = deriveTweak(keyRootXpub(fromHex(groupKeyHex, 'group key', 33)), [0]).xpub;
  let i = 0;
  const t0 = now();
  const cpu0 = process.cpuUsage();
  while (now() - t0 < seconds * 1000) {
    for (let k = 0; k < 200; k++, i++) taprootOutput(deriveTweak(branch, [i]).publicKey, REGTEST);
  }
  const secs = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  return {
    addresses: i,
    seconds: round(secs, 2),
    addresses_per_s: round(i / secs, 0),
    addresses_per_cpu_s: round(i / cpuSecs, 0),
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const say = (s: string) => {
    if (!a.json) process.stderr.write(`${s}\n`);
  };
  const results: {
    machine: ReturnType<typeof machineInfo>;
    runtime: Runtime;
    /** 1, 5 and 15-minute load averages at the start: other work on the machine slows every figure. */
    load_average: number[];
    per_passphrase: PassphraseResult[];
    repeated: ({ t: number; n: number } & Awaited<ReturnType<typeof repeated>>)[];
    largest: string | null;
    stopped_at?: string;
    derived?: {
      api: Awaited<ReturnType<typeof derivedApi>>;
      in_process: ReturnType<typeof derivedInProcess>;
    };
  } = {
    machine: machineInfo(),
    runtime: a.runtime,
    load_average: loadavg().map((x) => round(x, 2)),
    per_passphrase: [],
    repeated: [],
    largest: null,
  };

  for (const [idx, { t, n }] of a.sizes.entries()) {
    say(`${t}-of-${n}: starting ${n} signer processes and a coordinator (${a.runtime})`);
    let c: BenchCluster | undefined;
    try {
      c = await startBenchCluster({
        signers: n,
        runtime: a.runtime,
        database: { kind: 'pglite' },
        coordinatorConfig: { address_threshold: t, address_create_limit_per_min: 1_000_000 },
      });
      await c.registerSigners();
      const one = await perPassphrase(c, t, n, 1, a.seconds, 3);
      say(`  1 in flight: ${one.result.addresses_per_s} addresses/s (p50 ${one.result.p50_ms} ms)`);
      const many = await perPassphrase(c, t, n, a.concurrency, a.seconds, a.concurrency);
      say(
        `  ${a.concurrency} in flight: ${many.result.addresses_per_s} addresses/s (p50 ${many.result.p50_ms} ms)`,
      );
      results.per_passphrase.push(one.result, many.result);
      if (one.result.addresses === 0 || one.result.errors > 0) {
        results.stopped_at = `${t}-of-${n}: ${one.result.error_samples.join('; ')}`;
        break;
      }
      results.largest = `${t}-of-${n}`;
      const rep = await repeated(c, [...one.passphrases, ...many.passphrases], a.concurrency);
      results.repeated.push({ t, n, ...rep });
      say(`  repeated passphrases (no DKG): ${rep.addresses_per_s} addresses/s`);
      if (idx === 0) {
        const key = await c.createKey(t);
        const api = await derivedApi(c, key.id, a.seconds);
        const inProcess = derivedInProcess(key.public_key, a.seconds);
        results.derived = { api, in_process: inProcess };
        say(
          `  derived: ${api.addresses_per_s} addresses/s through the API, ${inProcess.addresses_per_s}/s in process`,
        );
      }
    } catch (e) {
      results.stopped_at = `${t}-of-${n}: ${e instanceof Error ? e.message : String(e)}`;
      say(`  stopped: ${results.stopped_at}`);
      break;
    } finally {
      await c?.close();
    }
  }

  if (a.out) writeFileSync(a.out, `${JSON.stringify(results, null, 2)}\n`);
  if (a.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const rows = results.per_passphrase.map(
    (r) =>
      `  ${`${r.t}-of-${r.n}`.padEnd(9)} ${String(r.in_flight).padStart(9)} ${String(r.addresses_per_s).padStart(12)} ${String(r.p50_ms).padStart(9)} ${String(r.p95_ms).padStart(9)}`,
  );
  process.stdout.write(
    [
      `Addresses on ${results.machine.cpu_model} (${results.machine.cores} cores, load average ${results.load_average.join(' ')} at the start), ${a.runtime} runtime, PGlite`,
      '',
      'Per passphrase (a deterministic DKG each, n signer processes):',
      '  group     in flight  addresses/s    p50 ms    p95 ms',
      ...rows,
      ...results.repeated.map(
        (r) =>
          `  ${`${r.t}-of-${r.n}`.padEnd(9)} repeated passphrases (stored, no DKG): ${r.addresses_per_s}/s`,
      ),
      `  largest group that ran: ${results.largest ?? 'none'}${results.stopped_at ? ` (stopped at ${results.stopped_at})` : ''}`,
      '',
      results.derived
        ? `Derived (m/0/i): ${results.derived.api.addresses_per_s}/s through the API (pages of 1000); in process ${results.derived.in_process.addresses_per_s}/s, ${results.derived.in_process.addresses_per_cpu_s} per CPU second`
        : 'Derived: not measured',
      '',
    ].join('\n'),
  );
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
