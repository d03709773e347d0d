/**
 * Nostr in the local cluster (`floe up`, DESIGN §14): a relay on loopback as one more
 * supervised child, the demo key's relay, and a NIP-46 bunker for the demo key whose
 * `bunker://` URL the banner prints, so a Nostr client can sign with the threshold key
 * offline, with nothing but this machine.
 *
 * The relay is Floe's own (src/nostr/relay-main.ts over src/nostr/relay-server.ts) rather
 * than an npm relay: no extra dependency for the demo, events verified through Floe's crypto
 * backend and its strict NIP-01 checks, the same relay the tests run. It keeps events in
 * memory (a restart forgets them: NIP-46 traffic is ephemeral anyway) and listens on
 * 127.0.0.1 only.
 */
import type { ApiClient } from '../client/api-client.js';
import { inheritedNodeFlags } from './node-flags.js';
import { selfEntryArgs } from './self.js';
import type { ChildSpec } from './supervisor.js';

/** Default port of the local relay (src/nostr/relay-main.ts uses the same). */
export const DEFAULT_RELAY_PORT = 7777;
/** The relay child's name (its log is logs/relay.log). */
export const RELAY_CHILD = 'relay';
/** How long the printed bunker URL's secret is valid (it is single use too). */
export const DEMO_BUNKER_TTL_S = 24 * 3600;

/**
 * The relay as a supervised child: this same Node, with this process's Node flags, running
 * relay-main, bundled (dist/bundle/nostr/relay-main.js), compiled (dist/nostr/relay-main.js) or
 * TypeScript through tsx, whichever this module runs from (as floeSelfCommand does for the CLI).
 */
export function relayChildSpec(o: {
  host: string;
  port: number;
  env: NodeJS.ProcessEnv;
  logFile: string;
}): ChildSpec {
  return {
    name: RELAY_CHILD,
    command: process.execPath,
    args: [...inheritedNodeFlags(), ...selfEntryArgs('nostr/relay-main')],
    env: { ...o.env, FLOE_RELAY_HOST: o.host, FLOE_RELAY_PORT: String(o.port) },
    readyEvent: 'relay_started',
    logFile: o.logFile,
  };
}

export interface DemoBunker {
  bunker_url: string;
  remote_signer_pubkey: string;
  relays: string[];
  expires_at: number;
}

/**
 * Make the local relay the demo key's relay, enable its bunker there and issue a fresh
 * single-use secret (every start prints a new URL; the bunker's key and clients stay).
 */
export async function enableDemoBunker(api: ApiClient, keyId: string, relayUrl: string): Promise<DemoBunker> {
  const id = encodeURIComponent(keyId);
  await api.request('PATCH', `/v1/keys/${id}`, { body: { relays: [relayUrl] } });
  return api.request<DemoBunker>('POST', `/v1/keys/${id}/bunker`, {
    body: { relays: [relayUrl], expires_in_s: DEMO_BUNKER_TTL_S },
  });
}

/** The banner's lines about the relay and the bunker. */
export function nostrBannerLines(relayUrl: string, bunker: DemoBunker): string[] {
  return [
    `  Nostr relay  ${relayUrl}  (local, in memory; the demo key's relay)`,
    `  bunker URL   ${bunker.bunker_url}`,
    '               (NIP-46 remote signing with the demo key: paste it into a Nostr client;',
    `                single use, valid ${DEMO_BUNKER_TTL_S / 3600} h; docs/nostr.md)`,
  ];
}
