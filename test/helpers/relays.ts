/** Helpers for tests that publish to relays: a free port for a relay started later, fetch by id. */
import { createServer } from 'node:net';
import type { NostrEvent } from '../../src/nostr/event.js';
import { RelayPool } from '../../src/nostr/pool.js';

/** A loopback port nothing listens on (yet): where a relay "down for now" will come up. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The event with this id as `relay` serves it (a REQ with an ids filter), or undefined. */
export async function fetchFrom(relay: string, id: string): Promise<NostrEvent | undefined> {
  const pool = new RelayPool({ reconnect: false });
  try {
    return (await pool.fetch([relay], [{ ids: [id] }], { timeoutMs: 5000 }))[0];
  } finally {
    pool.close();
  }
}
