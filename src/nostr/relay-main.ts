/**
 * Run the local relay as its own process (tests, `floe up`):
 *
 *   node --import tsx src/nostr/relay-main.ts [--host 127.0.0.1] [--port 7777] [--auth]
 *
 * Also reads FLOE_RELAY_HOST, FLOE_RELAY_PORT and FLOE_RELAY_AUTH=1 (flags win). Prints one
 * JSON line `{"event":"relay_started","url":…}` when listening; stops on SIGINT/SIGTERM and,
 * under a supervisor (FLOE_SUPERVISED=1), when stdin closes.
 */
import { parseArgs } from 'node:util';
import { startRelay } from './relay-server.js';

/** Default port of the relay `floe up` starts (DESIGN §9). */
export const DEFAULT_RELAY_PORT = 7777;

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ event: 'relay_failed', error: message })}\n`);
  process.exit(2);
}

function parsePort(v: string | undefined): number {
  if (v === undefined) return DEFAULT_RELAY_PORT;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n > 65_535)
    fail('port: expected an integer from 0 to 65535');
  return n;
}

async function main(): Promise<void> {
  let values: { host?: string; port?: string; auth?: boolean };
  try {
    ({ values } = parseArgs({
      options: { host: { type: 'string' }, port: { type: 'string' }, auth: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(e instanceof Error ? e.message : 'bad arguments');
  }
  const host = values.host ?? process.env.FLOE_RELAY_HOST ?? '127.0.0.1';
  const port = parsePort(values.port ?? process.env.FLOE_RELAY_PORT);
  const auth = values.auth ?? process.env.FLOE_RELAY_AUTH === '1';
  const relay = await startRelay({
    host,
    port,
    auth,
    log: (line) => process.stderr.write(`${JSON.stringify(line)}\n`),
  }).catch((e: unknown) => fail(e instanceof Error ? e.message : 'cannot start relay'));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    relay.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (process.env.FLOE_SUPERVISED === '1') {
    // the supervisor holds the other end of stdin; when it goes, so do we
    process.stdin.on('data', () => {});
    process.stdin.once('end', stop);
    process.stdin.once('close', stop);
    process.stdin.once('error', stop);
  }
  // announced only once the stop handlers are in place, so a supervisor may signal at once
  process.stdout.write(`${JSON.stringify({ event: 'relay_started', url: relay.url, auth })}\n`);
}

await main();
