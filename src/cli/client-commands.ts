/**
 * Client commands of the `floe` CLI: keys, signing, sessions, tokens, status. They talk to
 * the coordinator's HTTP API (src/client/api-client.ts).
 *
 * URL: --url, else FLOE_URL, else the coordinator of ./.floe/cluster.json (written by
 * `floe up`), else http://127.0.0.1:8080 (./target.ts). Token: --token, else FLOE_TOKEN,
 * else the contents of ./.floe/admin.token (written by `floe up`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  ApiClient,
  ApiError,
  DEFAULT_URL,
  type KeyObject,
  type SessionObject,
  type SignerObject,
  type TokenObject,
} from '../client/api-client.js';
import { newKeyId, prepareDealerImport, verifyImportCertificates } from '../client/dealer-import.js';
import { loadRoster, pinnedRecipients } from '../client/roster.js';
import { clusterLayout, DEFAULT_DATA_DIR } from '../cluster/layout.js';
import { readClusterState } from '../cluster/state.js';
import { readSecretFile } from '../config/secret-file.js';
import { nsecDecode } from '../crypto/bech32.js';
import { wipe } from '../crypto/hex.js';
import { isTerminal } from '../domain/session-state.js';
import { ROLES, SESSION_STATUSES } from '../domain/vocabulary.js';
import type { CreateSessionBody, RefreshObject, RepairObject } from '../protocol/api.js';
import { readPolicyFile, registerApprovalCommands } from './approval-commands.js';
import { registerKeyRelaysCommand, registerNostrCommands } from './nostr-commands.js';
import { integer } from './options.js';
import { emit, emitResult, fail, fields, Progress, quietOption, table, when } from './output.js';
import { coordinatorTarget } from './target.js';

export interface ClientOpts {
  url?: string;
  token?: string;
  json?: boolean;
  /** Only on commands with --quiet (quietOption). */
  quiet?: boolean;
}

/** Adds --url, --token and --json to a client command. */
export function clientOptions(cmd: Command): Command {
  return cmd
    .option(
      '--url <url>',
      `coordinator API URL (env FLOE_URL; default: the coordinator of ./.floe/cluster.json when floe up made one, else ${DEFAULT_URL})`,
    )
    .option(
      '--token <token>',
      'API token (env FLOE_TOKEN; default: the contents of ./.floe/admin.token). Prefer the environment: arguments show in the process list',
    )
    .option('--json', 'print one JSON document instead of text');
}

export function defaultTokenFile(): string {
  return clusterLayout(DEFAULT_DATA_DIR).adminTokenFile;
}

function resolveToken(o: ClientOpts): string | undefined {
  if (o.token) return o.token;
  if (process.env.FLOE_TOKEN) return process.env.FLOE_TOKEN;
  const f = defaultTokenFile();
  return existsSync(f) ? readSecretFile(f, 'admin token file') : undefined;
}

/** The API client of a command: its coordinator (./target.ts, in `dataDir`) and token. */
export function client(o: ClientOpts, dataDir = DEFAULT_DATA_DIR): ApiClient {
  const target = coordinatorTarget(o, dataDir);
  return new ApiClient({ url: target.url, urlSource: target.source, token: resolveToken(o) });
}

/** Wraps an action: any error becomes one line on stderr (JSON with --json) and exit code 1. */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      fail(e);
    }
  };
}

/** A non-negative whole number (commander's usage error otherwise); see ./options.ts. */
export const int = (_what: string) => integer({ min: 0 });
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

// ------------------------------------------------------------------ rendering

function keyRows(keys: KeyObject[]): string {
  return table(
    ['ID', 'LABEL', 'T-OF-N', 'STATUS', 'ORIGIN', 'NPUB'],
    keys.map((k) => [k.id, k.label, `${k.threshold}-of-${k.n}`, k.status, k.origin, k.npub]),
  );
}

function keyDetail(k: KeyObject): string {
  const out = fields([
    ['id', k.id],
    ['label', k.label],
    ['status', k.status],
    ['threshold', `${k.threshold}-of-${k.n}`],
    ['origin', k.origin],
    ['public_key', k.public_key],
    ['x_only_public_key', k.x_only_public_key],
    ['npub', k.npub],
    ['tweak', k.tweak ? String((k.tweak as { kind?: unknown }).kind ?? 'yes') : 'none'],
    ['relays', k.relays?.length ? k.relays.join(' ') : null],
    ['created_at', when(k.created_at)],
  ]);
  const members = table(
    ['MEMBER', 'SIGNER', 'IDENTITY'],
    k.members.map((m) => [m.identifier, m.signer_id, m.identity]),
  );
  return `${out}\n\n${members}`;
}

function tokenRows(ts: TokenObject[]): string {
  return table(
    ['ID', 'ROLE', 'LABEL', 'CREATED', 'EXPIRES', 'REVOKED'],
    ts.map((t) => [t.id, t.role, t.label, when(t.created_at), when(t.expires_at), when(t.revoked_at)]),
  );
}

function sessionRows(ss: SessionObject[]): string {
  return table(
    ['ID', 'KEY', 'STATUS', 'ATTEMPT', 'SIGNERS', 'CREATED'],
    ss.map((s) => [s.id, s.key_id, s.status, s.attempt, s.participants.join(',') || '-', when(s.created_at)]),
  );
}

function sessionDetail(s: SessionObject): string {
  return fields([
    ['id', s.id],
    ['key_id', s.key_id],
    ['intent', s.intent_type],
    ['intent_hash', s.intent_hash],
    ['message', s.message],
    ...(s.intent.type === 'nostr_event'
      ? ([
          ['event kind', s.intent.event.kind],
          ['event content', s.intent.event.content],
          ['event id', s.final_event_id],
        ] as [string, string | number | null][])
      : []),
    ['status', s.status],
    ['signature', s.signature],
    ['attempt', s.attempt],
    ['participants', s.participants.join(',') || null],
    ['culprits', s.culprits.join(',') || null],
    ['error', s.error_code ? `${s.error_code}: ${s.error_message ?? ''}` : null],
    ['created_at', when(s.created_at)],
    ['completed_at', when(s.completed_at)],
    ['expires_at', when(s.expires_at)],
  ]);
}

/** `name=value[,more]` → ["name", "value", "more"]. */
export function nostrTag(v: string): string[] {
  const i = v.indexOf('=');
  if (i < 1) throw new InvalidArgumentError('expected name=value, e.g. t=floe');
  return [v.slice(0, i), ...v.slice(i + 1).split(',')];
}

/** How `floe sign --text | --file` made its message: SHA-256 of those bytes. */
export interface HashedInput {
  algorithm: 'sha256';
  /** `text` (--text, UTF-8) or the file name given to --file (`-`: stdin). */
  input: string;
  bytes: number;
}

/** The intent of `floe sign`: exactly one of a message (--message, --text, --file) or a Nostr event. */
async function signIntent(o: {
  message?: string;
  text?: string;
  file?: string;
  nostrKind?: number;
  content?: string;
  tag?: string[][];
}): Promise<{ body: Pick<CreateSessionBody, 'message' | 'nostr_event'>; hashed?: HashedInput }> {
  const nostr = o.nostrKind !== undefined || o.content !== undefined || o.tag !== undefined;
  const given = [
    o.message !== undefined && '--message',
    o.text !== undefined && '--text',
    o.file !== undefined && '--file',
    nostr && 'a Nostr event',
  ].filter((x): x is string => Boolean(x));
  if (given.length > 1) {
    throw new Error(
      `give one of --message, --text, --file or a Nostr event (--nostr-kind, --content), not ${given.join(' and ')}`,
    );
  }
  if (nostr) {
    if (o.nostrKind === undefined)
      throw new Error('--nostr-kind is required for a Nostr event (1 is a note)');
    return { body: { nostr_event: { kind: o.nostrKind, content: o.content ?? '', tags: o.tag ?? [] } } };
  }
  if (o.text !== undefined || o.file !== undefined) {
    const bytes =
      o.text !== undefined
        ? Buffer.from(o.text, 'utf8')
        : o.file === '-'
          ? await readStdin()
          : readFileSync(o.file!);
    const message = createHash('sha256').update(bytes).digest('hex');
    return {
      body: { message },
      hashed: { algorithm: 'sha256', input: o.text !== undefined ? 'text' : o.file!, bytes: bytes.length },
    };
  }
  if (o.message === undefined)
    throw new Error(
      'give --message <hex>, --text <text>, --file <file> or --nostr-kind <kind> --content <text>',
    );
  if (!/^[0-9a-fA-F]{64}$/.test(o.message))
    throw new Error('--message: expected 32 bytes of hex (64 digits); to sign a text, use --text');
  return { body: { message: o.message.toLowerCase() } };
}

function hashedLine(h: HashedInput, message: string | null | undefined): string {
  const what = h.input === 'text' ? 'the --text' : h.input === '-' ? 'stdin' : h.input;
  return `message = SHA-256 of ${what} (${h.bytes} bytes): ${message ?? '?'}`;
}

function moreHint(next: string | null): string {
  return next ? `\n(more: --cursor ${next})` : '';
}

// ------------------------------------------------------------------ secrets

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const s = Buffer.concat(chunks).toString('utf8');
  for (const c of chunks) c.fill(0);
  return s.trim();
}

/** All of stdin, as bytes (`floe sign --file -`). */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The secret to import, from --secret-hex or --nsec ('-' reads it from stdin). Never echoed. */
async function importSecret(o: { secretHex?: string; nsec?: string }): Promise<Uint8Array> {
  if ((o.secretHex === undefined) === (o.nsec === undefined)) {
    throw new Error('give exactly one of --secret-hex and --nsec');
  }
  if (o.secretHex !== undefined) {
    const hex = o.secretHex === '-' ? await readStdinLine() : o.secretHex;
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('--secret-hex: expected 32 bytes of hex (64 digits)');
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  const nsec = o.nsec === '-' ? await readStdinLine() : o.nsec!;
  return nsecDecode(nsec.trim());
}

function chooseSigners(all: SignerObject[], ids: string[] | undefined): SignerObject[] {
  if (!ids) {
    return all.filter((s) => s.status === 'active').sort((a, b) => a.created_at - b.created_at);
  }
  return ids.map((id) => {
    const s = all.find((x) => x.id === id || x.name === id);
    if (!s) throw new Error(`unknown signer ${id} (see GET /v1/signers or floe status)`);
    if (s.status !== 'active') throw new Error(`signer ${id} is disabled`);
    return s;
  });
}

// ------------------------------------------------------------------ commands

export function registerClientCommands(program: Command): void {
  const key = program.command('key').description('create, import, list and show threshold keys');

  clientOptions(
    quietOption(
      key
        .command('create')
        .description('create a key by distributed key generation (no machine ever holds it)'),
      'the key id',
    )
      .requiredOption('-t, --threshold <t>', 'signers needed to sign', integer({ min: 1 }))
      .option('--signers <ids>', 'comma-separated signer ids (default: every active signer)', list)
      .option('--label <label>', 'a label for the key')
      .option('--approval-policy <file>', 'steward approval policy, a JSON file (docs/approvals.md)')
      .option(
        '--strict-thresholds',
        'refuse a key with t > 2n/3 or n - t < 2 (threshold_unsafe) instead of warning',
      )
      .option('--timeout <s>', 'seconds to wait for the ceremony', integer({ min: 1 }), 120),
  ).action(
    run(
      async (
        o: ClientOpts & {
          threshold: number;
          signers?: string[];
          label?: string;
          timeout: number;
          approvalPolicy?: string;
          strictThresholds?: boolean;
        },
      ) => {
        const api = client(o);
        let warnings: NonNullable<KeyObject['warnings']> = [];
        const k = await Progress.during(
          `creating a ${o.threshold}-of-n key (DKG)`,
          !o.json && !o.quiet,
          async () => {
            const created = await api.createKey({
              threshold: o.threshold,
              ...(o.signers ? { signers: o.signers } : {}),
              ...(o.label !== undefined ? { label: o.label } : {}),
              ...(o.approvalPolicy ? { approval_policy: readPolicyFile(o.approvalPolicy) as never } : {}),
              ...(o.strictThresholds ? { strict_thresholds: true } : {}),
              wait: Math.min(o.timeout * 1000, 60_000),
            });
            warnings = created.warnings ?? [];
            // The threshold rules the key breaks (seed 004): said on stderr, the key is made anyway.
            if (!o.json) for (const w of warnings) process.stderr.write(`warning: ${w.detail} (${w.rule})\n`);
            return created.status === 'pending' ? api.waitForKey(created.id, o.timeout * 1000) : created;
          },
        );
        if (k.status !== 'active') {
          const why = k.ceremony?.error_code ? ` (${k.ceremony.error_code})` : '';
          throw new Error(`key ${k.id} is ${k.status}${why}`);
        }
        emitResult(
          o,
          warnings.length ? { ...k, warnings } : k,
          () => keyDetail(k),
          () => k.id,
        );
      },
    ),
  );

  clientOptions(
    quietOption(
      key
        .command('import')
        .description(
          'import an existing secret: split here, each share sealed to its signer; the coordinator never sees it',
        ),
      'the key id',
    )
      .option('--secret-hex <hex>', '32-byte secret key in hex, or - to read it from stdin (safer)')
      .option('--nsec <nsec>', 'NIP-19 nsec, or - to read it from stdin (safer)')
      .requiredOption('-t, --threshold <t>', 'signers needed to sign', integer({ min: 1 }))
      .option(
        '--signers <ids>',
        'comma-separated signer ids, in member order (default: every active signer)',
        list,
      )
      .option('--label <label>', 'a label for the key')
      .option('--approval-policy <file>', 'steward approval policy, a JSON file: sealed into every share')
      .option(
        '--roster <file>',
        "the signers' identity keys you pinned: deployment.json from floe init (default: ./.floe/cluster.json of floe up)",
      ),
  ).action(
    run(
      async (
        o: ClientOpts & {
          secretHex?: string;
          nsec?: string;
          threshold: number;
          signers?: string[];
          label?: string;
          roster?: string;
          approvalPolicy?: string;
        },
      ) => {
        const api = client(o);
        // Shares are sealed only to pinned identity keys, never to what the coordinator lists.
        const rosterFile = o.roster ?? clusterLayout(DEFAULT_DATA_DIR).stateFile;
        if (!o.roster && !existsSync(rosterFile)) {
          throw new Error(
            'no pinned roster: pass --roster FILE (deployment.json written by floe init), or run in the directory of a floe up cluster',
          );
        }
        const roster = loadRoster(rosterFile);
        const approvalPolicy = o.approvalPolicy ? readPolicyFile(o.approvalPolicy) : undefined;
        const secret = await importSecret(o);
        try {
          const signers = pinnedRecipients(chooseSigners(await api.listSigners(), o.signers), roster);
          if (signers.length < 2) throw new Error(`need at least 2 active signers, found ${signers.length}`);
          if (o.threshold < 2 || o.threshold > signers.length) {
            throw new Error(`--threshold must be from 2 to ${signers.length} (the number of signers)`);
          }
          const keyId = newKeyId();
          const { body, xOnlyPublicKey } = prepareDealerImport({
            secret,
            threshold: o.threshold,
            signers: signers.map((s) => ({ id: s.id, identity: s.identity })),
            keyId,
            ...(o.label !== undefined ? { label: o.label } : {}),
            ...(approvalPolicy ? { approvalPolicy } : {}),
          });
          wipe(secret);
          const k = await Progress.during(
            'importing (sealed shares to each signer)',
            !o.json && !o.quiet,
            () => api.importKey(body),
          );
          if (k.x_only_public_key !== xOnlyPublicKey || k.id !== keyId) {
            throw new Error(`the coordinator reports key ${k.id} with a different public key than was split`);
          }
          // Accepted only when every member certified it under its pinned key.
          verifyImportCertificates({
            keyId,
            publicKeyPackage: body.public_key_package,
            members: signers.map((s, i) => ({ identifier: i + 1, identity: s.identity })),
            certificates: k.import_certificates,
            ...(body.approval_policy ? { approvalPolicy: body.approval_policy } : {}),
          });
          emitResult(
            o,
            k,
            () => keyDetail(k),
            () => k.id,
          );
        } finally {
          wipe(secret);
        }
      },
    ),
  );

  clientOptions(
    quietOption(key.command('list').description('list keys'), 'the key ids, one per line')
      .option('--limit <n>', 'page size', integer({ min: 1 }), 50)
      .option('--cursor <c>', 'continue after a previous page'),
  ).action(
    run(async (o: ClientOpts & { limit: number; cursor?: string }) => {
      const page = await client(o).listKeys({ limit: o.limit, ...(o.cursor ? { cursor: o.cursor } : {}) });
      emitResult(
        o,
        page,
        () => (page.items.length ? keyRows(page.items) + moreHint(page.next_cursor) : 'no keys'),
        () => page.items.map((k) => k.id),
      );
    }),
  );

  clientOptions(key.command('show').description('show one key').argument('<id>', 'key id')).action(
    run(async (id: string, o: ClientOpts) => {
      const k = await client(o).getKey(id);
      emit(Boolean(o.json), k, () => keyDetail(k));
    }),
  );

  registerKeyRelaysCommand(key);

  clientOptions(
    key
      .command('refresh')
      .description(
        'give every member a new share of the same key (same public key); the old shares stop working once all members switched',
      )
      .argument('<id>', 'key id')
      .option(
        '--wait <s>',
        'seconds to wait for the refresh to complete (0: return at once)',
        integer({ min: 0, max: 120 }),
        60,
      ),
  ).action(
    run(async (id: string, o: ClientOpts & { wait: number }) => {
      const r = await client(o).refreshKey(id, { wait: o.wait * 1000 });
      emit(Boolean(o.json), r, () => refreshDetail(r));
      if (r.status === 'failed') process.exitCode = 1;
    }),
  );

  clientOptions(
    key.command('refreshes').description("list a key's share refreshes").argument('<id>', 'key id'),
  ).action(
    run(async (id: string, o: ClientOpts) => {
      const page = await client(o).listKeyRefreshes(id);
      emit(Boolean(o.json), page, () =>
        page.items.length ? page.items.map(refreshDetail).join('\n\n') : `key ${id} was never refreshed`,
      );
    }),
  );

  clientOptions(
    quietOption(
      program
        .command('sign')
        .description(
          'sign with a key and wait for the signature: a 32-byte message (--message), the SHA-256 of a text (--text) or of a file (--file), or a Nostr event (--nostr-kind and --content; prints the signed event)',
        ),
      'the signature (for a Nostr event: the signed event, one line)',
    )
      .requiredOption('-k, --key <id>', 'key id')
      .option('-m, --message <hex>', '32-byte message (a digest), hex')
      .option('--text <text>', 'sign the SHA-256 of this text (UTF-8); the digest is shown on stderr')
      .option('--file <file>', 'sign the SHA-256 of this file (- reads stdin); the digest is shown on stderr')
      .option(
        '--nostr-kind <kind>',
        'sign a Nostr event of this kind (0-65535)',
        integer({ min: 0, max: 65_535 }),
      )
      .option('--content <text>', 'the Nostr event content')
      .option(
        '--tag <name=value,...>',
        'a Nostr event tag, e.g. --tag t=floe or --tag p=<hex>,wss://relay (repeatable)',
        (v: string, acc: string[][] = []) => [...acc, nostrTag(v)],
      )
      .option('--idempotency-key <k>', 'retrying with the same key returns the same session')
      .option('--timeout <s>', 'seconds to wait', integer({ min: 1 }), 60),
  ).action(
    run(
      async (
        o: ClientOpts & {
          key: string;
          message?: string;
          text?: string;
          file?: string;
          nostrKind?: number;
          content?: string;
          tag?: string[][];
          idempotencyKey?: string;
          timeout: number;
        },
      ) => {
        const { body, hashed } = await signIntent(o);
        // Said before signing, so a person sees what is signed (the digest, not the text).
        if (hashed && !o.json && !o.quiet) process.stderr.write(`${hashedLine(hashed, body.message)}\n`);
        const api = client(o);
        const s = await Progress.during('signing', !o.json && !o.quiet, async () => {
          const first = await api.createSession(
            { key_id: o.key, ...body, wait: Math.min(o.timeout * 1000, 30_000) },
            o.idempotencyKey,
          );
          return isTerminal(first.status) ? first : api.waitForSession(first.id, o.timeout * 1000);
        });
        if (s.status !== 'completed') {
          const why = s.error_code
            ? `: ${s.error_code}${s.error_message ? ` (${s.error_message})` : ''}`
            : '';
          throw new Error(`session ${s.id} is ${s.status}${why}`);
        }
        if (s.event) {
          emitResult(
            o,
            s.event,
            () => JSON.stringify(s.event),
            () => JSON.stringify(s.event),
          );
        } else {
          emitResult(
            o,
            hashed ? { ...s, hashed } : s,
            () =>
              sessionDetail(s) + (hashed ? `\n${fields([['hashed', hashedLine(hashed, s.message)]])}` : ''),
            () => s.signature ?? '',
          );
        }
      },
    ),
  );

  const session = program.command('session').description('list and show signing sessions');
  clientOptions(
    quietOption(
      session.command('list').description('list signing sessions, newest first'),
      'the session ids, one per line',
    )
      .addOption(new Option('--status <status>', 'only sessions in this status').choices(SESSION_STATUSES))
      .option('--limit <n>', 'page size', integer({ min: 1 }), 50)
      .option('--cursor <c>', 'continue after a previous page'),
  ).action(
    run(async (o: ClientOpts & { status?: string; limit: number; cursor?: string }) => {
      const page = await client(o).listSessions({
        limit: o.limit,
        ...(o.cursor ? { cursor: o.cursor } : {}),
        ...(o.status ? { status: o.status } : {}),
      });
      emitResult(
        o,
        page,
        () => (page.items.length ? sessionRows(page.items) + moreHint(page.next_cursor) : 'no sessions'),
        () => page.items.map((x) => x.id),
      );
    }),
  );
  clientOptions(
    session
      .command('show')
      .description('show one session')
      .argument('<id>', 'session id')
      .option('--wait <s>', 'wait up to this many seconds for it to finish', integer({ min: 0 }), 0),
  ).action(
    run(async (id: string, o: ClientOpts & { wait: number }) => {
      const api = client(o);
      const s = o.wait
        ? await Progress.during('waiting for the session', !o.json, () =>
            api.waitForSession(id, o.wait * 1000),
          )
        : await api.getSession(id);
      emit(Boolean(o.json), s, () => sessionDetail(s));
    }),
  );

  const token = program.command('token').description('API tokens: create, list, revoke (admins)');
  clientOptions(
    quietOption(token.command('create').description('create an API token (shown once)'), 'the token')
      .addOption(
        new Option('-r, --role <role>', 'what the token may do').choices(ROLES).makeOptionMandatory(),
      )
      .option('--label <label>', 'what the token is for')
      .option('--ttl <s>', 'lifetime in seconds (default: no expiry)', integer({ min: 1 })),
  ).action(
    run(async (o: ClientOpts & { role: string; label?: string; ttl?: number }) => {
      const t = await client(o).createToken({
        role: o.role,
        ...(o.label !== undefined ? { label: o.label } : {}),
        ...(o.ttl !== undefined ? { ttl_s: o.ttl } : {}),
      });
      emitResult(
        o,
        t,
        () =>
          `${t.token}\n\n${fields([
            ['id', t.id],
            ['role', t.role],
            ['label', t.label],
            ['expires_at', when(t.expires_at)],
          ])}\n\nThe token is shown once: store it now (it cannot be retrieved later).`,
        () => t.token,
      );
    }),
  );
  clientOptions(
    quietOption(
      token
        .command('list')
        .description("list the tenant's API tokens, revoked ones included (never the secrets)"),
      'the token ids, one per line',
    ),
  ).action(
    run(async (o: ClientOpts) => {
      const items = await client(o).listTokens();
      emitResult(
        o,
        { items },
        () => (items.length ? tokenRows(items) : 'no tokens'),
        () => items.map((t) => t.id),
      );
    }),
  );
  clientOptions(
    quietOption(
      token
        .command('revoke')
        .description('revoke an API token: it stops working at once (see floe token list for the ids)')
        .argument('<id>', 'token id'),
      'nothing (the exit code says it)',
    ),
  ).action(
    run(async (id: string, o: ClientOpts) => {
      await client(o).revokeToken(id);
      emitResult(
        o,
        { id, revoked: true },
        () => `revoked token ${id}`,
        () => '',
      );
    }),
  );

  registerTenantCommands(program);
  registerNostrCommands(program);
  registerApprovalCommands(program);

  clientOptions(
    program
      .command('status')
      .description('health of the coordinator and the signers (and of a local cluster, if any)')
      .option('--data-dir <dir>', 'local cluster data directory', DEFAULT_DATA_DIR),
  ).action(
    run(async (o: ClientOpts & { dataDir: string }) => {
      const r = await status(client(o, o.dataDir), o.dataDir);
      emit(Boolean(o.json), r, () => renderStatus(r));
      if (!r.coordinator.ok) process.exitCode = 1;
    }),
  );
}

// ------------------------------------------------------------------ tenants

/** `floe tenant create|list`: tenants, managed by admins of the system tenant. */
function registerTenantCommands(program: Command): void {
  const tenant = program.command('tenant').description('tenants (admins of the system tenant)');
  clientOptions(
    tenant
      .command('create')
      .description('create a tenant and its first admin token (shown once)')
      .requiredOption('--id <id>', 'tenant id: letters, digits, _ and -, starting with a letter or digit')
      .option('--name <name>', 'display name (default: the id)'),
  ).action(
    run(async (o: ClientOpts & { id: string; name?: string }) => {
      const t = await client(o).createTenant({ id: o.id, ...(o.name !== undefined ? { name: o.name } : {}) });
      emit(
        Boolean(o.json),
        t,
        () =>
          `${fields([
            ['tenant', t.id],
            ['name', t.name],
            ['created_at', when(t.created_at)],
          ])}\n\nadmin token (id ${t.admin_token.id}):\n${t.admin_token.token}\n\n` +
          'The token is shown once: store it now (it cannot be retrieved later).',
      );
    }),
  );
  clientOptions(tenant.command('list').description('list tenants')).action(
    run(async (o: ClientOpts) => {
      const items = await client(o).listTenants();
      emit(Boolean(o.json), { items }, () =>
        table(
          ['ID', 'NAME', 'CREATED'],
          items.map((t) => [t.id, t.name, when(t.created_at)]),
        ),
      );
    }),
  );
}

// ------------------------------------------------------------------ status

interface SignerStatus {
  id: string;
  name: string | null;
  url: string;
  identity: string;
  status: string;
  quarantined: boolean;
  fault_count: number;
  last_seen_at: number | null;
  last_latency_ms: number | null;
  /** GET {url}/healthz from this host answered with the registered identity. */
  reachable: boolean;
  /** The signer's secp256k1 backend, from its /healthz. */
  crypto_backend: string | null;
  pid: number | null;
}

interface StatusReport {
  coordinator: {
    url: string;
    ok: boolean;
    identity: string | null;
    database: string | null;
    crypto_backend: string | null;
    latency_ms: number | null;
    error: string | null;
  };
  signers: SignerStatus[] | null;
  signers_error: string | null;
  local_cluster: {
    data_dir: string;
    running: boolean;
    supervisor_pid: number | null;
    coordinator_pid: number | null;
    demo_key_id: string | null;
    signers: { name: string; pid: number | null; restarts: number; url: string }[];
  } | null;
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A signer's /healthz from this host: reachable with the registered identity, and its crypto backend. */
async function probeSigner(
  url: string,
  identity: string,
): Promise<{ reachable: boolean; crypto_backend: string | null }> {
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    const j = (await r.json()) as { identity?: string; crypto_backend?: string };
    const reachable = r.ok && j.identity === identity;
    return { reachable, crypto_backend: reachable ? (j.crypto_backend ?? null) : null };
  } catch {
    return { reachable: false, crypto_backend: null };
  }
}

async function status(api: ApiClient, dataDir: string): Promise<StatusReport> {
  const t0 = performance.now();
  const coordinator: StatusReport['coordinator'] = {
    url: api.url,
    ok: false,
    identity: null,
    database: null,
    crypto_backend: null,
    latency_ms: null,
    error: null,
  };
  try {
    const h = await api.health();
    Object.assign(coordinator, {
      ok: h.status === 'ok',
      identity: h.identity,
      database: h.database,
      crypto_backend: h.crypto_backend ?? null,
      latency_ms: Math.round(performance.now() - t0),
    });
  } catch (e) {
    coordinator.error =
      e instanceof ApiError && e.hint
        ? `${e.message}; ${e.hint}`
        : e instanceof Error
          ? e.message
          : String(e);
  }

  const layout = clusterLayout(dataDir);
  let state: ReturnType<typeof readClusterState>;
  try {
    state = readClusterState(layout.stateFile);
  } catch {
    state = undefined;
  }
  const local: StatusReport['local_cluster'] = state
    ? {
        data_dir: layout.root,
        running: alive(state.supervisor_pid),
        supervisor_pid: state.supervisor_pid,
        coordinator_pid: state.coordinator.pid,
        demo_key_id: state.demo_key?.id ?? null,
        signers: state.signers.map((s) => ({ name: s.name, pid: s.pid, restarts: s.restarts, url: s.url })),
      }
    : null;

  let signers: SignerStatus[] | null = null;
  let signersError: string | null = null;
  if (coordinator.ok) {
    try {
      const list = await api.listSigners();
      signers = await Promise.all(
        list.map(async (s) => ({
          id: s.id,
          name: s.name,
          url: s.url,
          identity: s.identity,
          status: s.status,
          quarantined: s.quarantined,
          fault_count: s.fault_count,
          last_seen_at: s.last_seen_at,
          last_latency_ms: s.last_latency_ms,
          ...(await probeSigner(s.url, s.identity)),
          pid: state?.signers.find((x) => x.identity === s.identity)?.pid ?? null,
        })),
      );
    } catch (e) {
      signersError = e instanceof ApiError ? e.message : String(e);
    }
  }
  return { coordinator, signers, signers_error: signersError, local_cluster: local };
}

function renderStatus(r: StatusReport): string {
  const c = r.coordinator;
  const out = [
    c.ok
      ? `coordinator  ${c.url}  ok  (${c.database}, crypto ${c.crypto_backend ?? '?'}, ${c.latency_ms} ms, identity ${c.identity})`
      : `coordinator  ${c.url}  DOWN  ${c.error ?? ''}`,
  ];
  if (r.signers) {
    out.push(
      '',
      r.signers.length
        ? table(
            ['SIGNER', 'NAME', 'URL', 'STATE', 'REACHABLE', 'CRYPTO', 'FAULTS', 'LAST SEEN', 'PID'],
            r.signers.map((s) => [
              s.id,
              s.name,
              s.url,
              s.status === 'active' ? (s.quarantined ? 'quarantined' : 'active') : s.status,
              s.reachable ? 'yes' : 'NO',
              s.crypto_backend ?? '-',
              s.fault_count,
              s.last_seen_at
                ? `${Math.max(0, Math.round((Date.now() - s.last_seen_at) / 1000))}s ago`
                : 'never',
              s.pid,
            ]),
          )
        : 'no signers registered',
    );
  } else if (r.signers_error) {
    out.push('', `signers: ${r.signers_error}`);
  }
  if (r.local_cluster) {
    const l = r.local_cluster;
    out.push(
      '',
      `local cluster  ${l.data_dir}  ${l.running ? `running (floe up pid ${l.supervisor_pid}, coordinator pid ${l.coordinator_pid})` : 'not running'}`,
    );
    if (l.demo_key_id) out.push(`demo key       ${l.demo_key_id}`);
  }
  return out.join('\n');
}

/** A share refresh, for people. */
function refreshDetail(r: RefreshObject): string {
  const lines = [
    `refresh ${r.id} of key ${r.key_id}: ${r.status}`,
    `generation ${r.generation}; members switched: ${r.committed.length ? r.committed.join(', ') : 'none yet'}`,
  ];
  if (r.status === 'failed') {
    lines.push(`why: ${r.error_message ?? r.error_code ?? 'unknown'}`);
    lines.push(
      'every member keeps its current share; bring the members back and run `floe key refresh` again',
    );
  } else if (r.status === 'committing') {
    lines.push('decided: the members not yet switched are sent the commit again until they answer');
  } else if (r.status !== 'completed') {
    lines.push(`still running: floe key refreshes ${r.key_id} shows it`);
  }
  return lines.join('\n');
}

/** A share repair, for people. */
function repairDetail(r: RepairObject): string {
  const lines = [
    `repair ${r.id} of key ${r.key_id}: ${r.status}`,
    `member ${r.identifier} → signer ${r.signer_id} (helpers ${r.helpers.join(', ')}); applied by: ${r.committed.length ? r.committed.join(', ') : 'none yet'}`,
  ];
  if (r.status === 'failed') {
    lines.push(`why: ${r.error_message ?? r.error_code ?? 'unknown'}`);
    if (r.culprits.length)
      lines.push(`at fault: helper${r.culprits.length > 1 ? 's' : ''} ${r.culprits.join(', ')}`);
    lines.push('nothing changed; run `floe key repair` again (other helpers with --helpers)');
  } else {
    lines.push(
      `next: floe key refresh ${r.key_id} — the repaired share equals the lost one; a refresh makes any copy of the lost machine's share worthless`,
    );
  }
  return lines.join('\n');
}
