/**
 * Nostr commands of the `floe` CLI (DESIGN §14):
 *
 *   floe nostr post --key K --content "…" [--kind 1] [--tag t=floe …] [--relay wss://… …]
 *   floe key relays <id> [wss://… …] [--clear]
 *
 * `nostr post` signs the event with the threshold key and has the coordinator publish it
 * (POST /v1/sessions {nostr_event, publish}); it prints the event id, its note and nevent, and
 * every relay's answer. Exit code 1 when no relay accepted the event.
 */
import type { Command } from 'commander';
import type { SessionObject } from '../client/api-client.js';
import { isTerminal } from '../domain/session-state.js';
import { neventEncode, noteEncode } from '../nostr/nip19.js';
import { type ClientOpts, client, clientOptions, int, nostrTag, run } from './client-commands.js';
import { emit, fields, Progress, table } from './output.js';

/** What `floe nostr post --json` prints. */
export interface PostResult {
  session_id: string;
  event_id: string;
  note: string;
  nevent: string;
  event: NonNullable<SessionObject['event']>;
  publish: NonNullable<SessionObject['publish']>;
  accepted: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Enough answers to report: publishing is over, or every relay answered once and one accepted. */
function settled(s: SessionObject): boolean {
  const p = s.publish;
  if (p?.status !== 'pending') return true;
  return p.results.length === p.relays.length && p.results.some((r) => r.accepted);
}

function renderPost(r: PostResult): string {
  const head = fields([
    ['event id', r.event_id],
    ['note', r.note],
    ['nevent', r.nevent],
    ['session', r.session_id],
    [
      'published',
      `${r.accepted} of ${r.publish.relays.length} relays accepted${r.publish.status === 'pending' ? ' (the others are retried in the background)' : ''}`,
    ],
  ]);
  const rows = r.publish.relays.map((relay) => {
    const x = r.publish.results.find((y) => y.relay === relay);
    return [
      relay,
      x ? (x.accepted ? 'accepted' : 'refused') : 'pending',
      x?.attempts ?? 0,
      x ? x.message || '-' : '-',
    ];
  });
  return `${head}\n\n${table(['RELAY', 'RESULT', 'TRIES', 'MESSAGE'], rows)}`;
}

export function registerNostrCommands(program: Command): void {
  const nostr = program
    .command('nostr')
    .description('Nostr: sign events with a threshold key and publish them');
  clientOptions(
    nostr
      .command('post')
      .description(
        "sign a Nostr event with a key and publish it to relays (--relay, else the key's default relays)",
      )
      .requiredOption('-k, --key <id>', 'key id')
      .requiredOption('--content <text>', 'the event content')
      .option('--kind <kind>', 'event kind (0-65535)', int('--kind'), 1)
      .option(
        '--tag <name=value,...>',
        'a tag, e.g. --tag t=floe or --tag p=<hex>,wss://relay (repeatable)',
        (v: string, acc: string[][] = []) => [...acc, nostrTag(v)],
      )
      .option(
        '--relay <url>',
        "a ws:// or wss:// relay to publish to (repeatable; default: the key's relays)",
        (v: string, acc: string[] = []) => [...acc, v],
      )
      .option('--idempotency-key <k>', 'retrying with the same key returns the same session')
      .option('--timeout <s>', 'seconds to wait for the signature and the relays', int('--timeout'), 60),
  ).action(
    run(
      async (
        o: ClientOpts & {
          key: string;
          content: string;
          kind: number;
          tag?: string[][];
          relay?: string[];
          idempotencyKey?: string;
          timeout: number;
        },
      ) => {
        const api = client(o);
        const deadline = Date.now() + o.timeout * 1000;
        const s = await Progress.during('signing and publishing', !o.json, async (progress) => {
          const first = await api.createSession(
            {
              key_id: o.key,
              nostr_event: { kind: o.kind, content: o.content, tags: o.tag ?? [] },
              publish: o.relay ? { relays: o.relay } : {},
              wait: Math.min(o.timeout * 1000, 30_000),
            },
            o.idempotencyKey,
          );
          let cur = isTerminal(first.status)
            ? first
            : await api.waitForSession(first.id, Math.max(0, deadline - Date.now()));
          if (cur.status !== 'completed') return cur;
          progress.update('publishing');
          while (!settled(cur) && Date.now() < deadline) {
            await sleep(250);
            cur = await api.getSession(cur.id);
          }
          return cur;
        });
        if (s.status !== 'completed' || !s.event || !s.publish) {
          const why = s.error_code
            ? `: ${s.error_code}${s.error_message ? ` (${s.error_message})` : ''}`
            : '';
          throw new Error(`session ${s.id} is ${s.status}${why}`);
        }
        const accepted = s.publish.results.filter((r) => r.accepted);
        const r: PostResult = {
          session_id: s.id,
          event_id: s.event.id,
          note: noteEncode(s.event.id),
          nevent: neventEncode({
            id: s.event.id,
            author: s.event.pubkey,
            kind: s.event.kind,
            // Where to find it: up to three relays that took it (NIP-19 caps a relay at 255 bytes).
            relays: accepted
              .map((x) => x.relay)
              .filter((u) => Buffer.byteLength(u) <= 255)
              .slice(0, 3),
          }),
          event: s.event,
          publish: s.publish,
          accepted: accepted.length,
        };
        emit(Boolean(o.json), r, () => renderPost(r));
        if (accepted.length === 0) {
          process.stderr.write(
            `floe: no relay accepted event ${r.event_id}${s.publish.status === 'pending' ? ' yet (still retrying)' : ''}\n`,
          );
          process.exitCode = 1;
        }
      },
    ),
  );
}

/** `floe key relays <id> [url…] [--clear]`: show or set a key's default relays. */
export function registerKeyRelaysCommand(key: Command): void {
  clientOptions(
    key
      .command('relays')
      .description(
        "show a key's default relays, or set them (ws:// or wss://, at most 20); `floe nostr post` and publish: {} use them",
      )
      .argument('<id>', 'key id')
      .argument('[relays...]', 'the new default relays (they replace the old ones)')
      .option('--clear', 'remove every default relay'),
  ).action(
    run(async (id: string, relays: string[], o: ClientOpts & { clear?: boolean }) => {
      const api = client(o);
      if (o.clear && relays.length) throw new Error('give relays or --clear, not both');
      const k =
        o.clear || relays.length
          ? await api.updateKey(id, { relays: o.clear ? [] : relays })
          : await api.getKey(id);
      emit(Boolean(o.json), { key_id: k.id, relays: k.relays ?? [] }, () =>
        (k.relays ?? []).length ? (k.relays ?? []).join('\n') : 'no default relays',
      );
    }),
  );
}
