/**
 * Key controls of the `floe` CLI (issue 15 items 7, 8):
 *
 *   floe key disable KEY | floe key enable KEY            the coordinator alone (admin)
 *   floe key freeze KEY [--operator-key-file F]           the kill switch: sign a freeze here, hand it in
 *   floe key unfreeze KEY [--operator-key-file F]         the same, unfreeze
 *
 * The operator key never leaves this process: the instruction is signed here
 * (src/domain/operator-instruction.ts) and only the signed instruction goes to the coordinator,
 * which forwards it to the signers; each verifies it against the operator keys it pins.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_DATA_DIR } from '../cluster/layout.js';
import { OPERATOR_KEY_FILE } from '../config/operator-key.js';
import { fromHex, wipe } from '../crypto/hex.js';
import { signInstruction } from '../domain/operator-instruction.js';
import type { KeyControlObject } from '../protocol/api.js';
import { type ClientOpts, client, clientOptions, run } from './client-commands.js';
import { emit, fields } from './output.js';

/** The operator's secret key: 64 hex digits in a file nobody else may read (as ssh refuses keys). */
export function readOperatorKey(file: string): Uint8Array {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    throw new Error(
      `operator key file ${file} not found; give --operator-key-file (floe up / floe init write .floe/${OPERATOR_KEY_FILE})`,
    );
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new Error(`operator key file ${file} is accessible by group or others; chmod 600 it`);
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`operator key file ${file}: expected 64 hex digits`);
  return fromHex(text.toLowerCase(), 'operator key', 32);
}

function show(r: KeyControlObject): string {
  const rows: [string, unknown][] = [
    ['key', r.key.id],
    ['status', r.key.status],
  ];
  if (r.sessions_failed !== undefined) rows.push(['sessions failed', r.sessions_failed]);
  for (const s of r.signers ?? []) {
    rows.push([
      `signer ${s.identifier}`,
      s.applied ? `${s.signer_id}: applied` : `${s.signer_id}: NOT told (${s.error_code}: ${s.detail ?? ''})`,
    ]);
  }
  return fields(rows as never);
}

export function registerKeyControlCommands(program: Command): void {
  const key = program.commands.find((c) => c.name() === 'key') ?? program.command('key');
  for (const [name, what] of [
    ['disable', 'refuse new sessions with a key (coordinator only; admin)'],
    ['enable', 'let a disabled key sign again (admin)'],
  ] as const) {
    clientOptions(key.command(`${name} <key>`).description(what)).action(
      run(async (id: string, o: ClientOpts) => {
        const r = await client(o).request<KeyControlObject>(
          'POST',
          `/v1/keys/${encodeURIComponent(id)}/${name}`,
        );
        emit(Boolean(o.json), r, () => show(r));
      }),
    );
  }
  for (const [name, what] of [
    [
      'freeze',
      'kill switch: stop all signing with a key, on the coordinator and every signer (admin + operator key)',
    ],
    ['unfreeze', 'lift a freeze: signed by the operator key the signers pin (admin + operator key)'],
  ] as const) {
    clientOptions(
      key
        .command(`${name} <key>`)
        .description(what)
        .option(
          '--operator-key-file <file>',
          `the operator key (default ${join(DEFAULT_DATA_DIR, OPERATOR_KEY_FILE)})`,
        ),
    ).action(
      run(async (id: string, o: ClientOpts & { operatorKeyFile?: string }) => {
        const secret = readOperatorKey(o.operatorKeyFile ?? join(DEFAULT_DATA_DIR, OPERATOR_KEY_FILE));
        let instruction: ReturnType<typeof signInstruction>;
        try {
          instruction = signInstruction({ type: name, keyId: id, now: Date.now() }, secret);
        } finally {
          wipe(secret);
        }
        const r = await client(o).request<KeyControlObject>(
          'POST',
          `/v1/keys/${encodeURIComponent(id)}/${name}`,
          { body: { instruction } },
        );
        emit(Boolean(o.json), r, () => show(r));
      }),
    );
  }
}
