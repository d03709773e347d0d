/**
 * Steward commands of the `floe` CLI (DESIGN §13, docs/approvals.md):
 *
 *   floe approvals list [--steward NPUB]              what waits for the stewards
 *   floe approve SESSION --nsec-file F [--reject]     sign a decision locally and hand it in
 *
 * The steward's key never leaves this process: the kind-30078 decision is signed here and only
 * the signed event goes to the coordinator (which checks it, as every signer does later).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type Decision,
  decisionTemplate,
  deviceKey,
  deviceMessage,
  signDeviceMessage,
} from '../approvals/index.js';
import { nsecDecode } from '../crypto/bech32.js';
import { fromHex, wipe } from '../crypto/hex.js';
import { finalizeEvent, nowSeconds } from '../nostr/event.js';
import type { PendingApprovalObject, SessionObject } from '../protocol/api.js';
import { type ClientOpts, client, clientOptions, run } from './client-commands.js';
import { emit, fields, table, when } from './output.js';

/** An approval policy from a JSON file (`--approval-policy`): checked by the coordinator and signers. */
export function readPolicyFile(file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(
      `approval policy ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'not JSON'})`,
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new Error(`approval policy ${file}: expected a JSON object {stewards, threshold, …}`);
  }
  return v as Record<string, unknown>;
}

/**
 * A steward's secret key from a file holding an nsec or 64 hex digits; refused when group or
 * others may read it (as ssh refuses private keys). The error never carries the file's content.
 */
function readNsecFile(file: string): Uint8Array {
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
    throw new Error(`nsec file ${file} is accessible by group or others; chmod 600 it`);
  }
  const text = readFileSync(file, 'utf8').trim();
  if (text.startsWith('nsec1')) return nsecDecode(text);
  if (/^[0-9a-fA-F]{64}$/.test(text)) return fromHex(text.toLowerCase(), 'secret key', 32);
  throw new Error(`nsec file ${file}: expected an nsec or 64 hex digits`);
}

function pendingRows(items: PendingApprovalObject[]): string {
  return table(
    ['SESSION', 'KEY', 'DECIDED', 'NEEDED', 'DEADLINE', 'WHAT'],
    items.map((x) => [
      x.session_id,
      x.key_label ?? x.key_id,
      `${x.approvals.filter((d) => d.decision === 'approve').length} ok, ${x.approvals.filter((d) => d.decision === 'reject').length} no`,
      `${x.threshold} of ${x.stewards.length}${x.veto ? ' (veto)' : ''}`,
      when(x.deadline),
      x.summary.length > 80 ? `${x.summary.slice(0, 79)}…` : x.summary,
    ]),
  );
}

function decidedDetail(s: SessionObject, decision: Decision): string {
  return fields([
    ['session', s.id],
    ['decision', decision],
    ['status', s.status],
    ['approvals', (s.approvals ?? []).filter((d) => d.decision === 'approve').length],
    ['rejections', (s.approvals ?? []).filter((d) => d.decision === 'reject').length],
    ['error', s.error_code],
  ]);
}

export function registerApprovalCommands(program: Command): void {
  const approvals = program.command('approvals').description('steward approvals (docs/approvals.md)');
  clientOptions(
    approvals
      .command('list')
      .description('sessions waiting for their stewards')
      .option('--steward <npub>', 'only what this steward (npub or hex) has not decided yet'),
  ).action(
    run(async (o: ClientOpts & { steward?: string }) => {
      const page = await client(o).request<{ items: PendingApprovalObject[] }>('GET', '/v1/approvals', {
        query: { status: 'pending', steward: o.steward },
      });
      emit(Boolean(o.json), page.items, () =>
        page.items.length ? pendingRows(page.items) : 'nothing waits for the stewards',
      );
    }),
  );

  clientOptions(
    program
      .command('approve')
      .description(
        "sign a steward's decision on a session locally (kind 30078) and hand it to the coordinator",
      )
      .argument('<session>', 'session id')
      .requiredOption(
        '--nsec-file <file>',
        "the steward's secret key: a file with an nsec or 64 hex digits (mode 0600)",
      )
      .option('--reject', 'reject instead of approve')
      .option('--comment <text>', 'the content of the decision event')
      .option(
        '--device-key <pem>',
        "second factor: the steward's registered P-256 device key (PKCS#8 PEM), to sign the device tag",
      ),
  ).action(
    run(
      async (
        sessionId: string,
        o: ClientOpts & { nsecFile: string; reject?: boolean; comment?: string; deviceKey?: string },
      ) => {
        const api = client(o);
        const decision: Decision = o.reject ? 'reject' : 'approve';
        const s = await api.getSession(sessionId);
        if (s.status !== 'awaiting_approval')
          throw new Error(`session ${sessionId} is ${s.status}: nothing to decide`);
        const subject = { kind: 'session' as const, sessionId, intentHash: s.intent_hash };
        const createdAt = nowSeconds();
        let device: { key: string; sig: string; createdAt: number } | undefined;
        if (o.deviceKey) {
          let pk: KeyObject;
          try {
            pk = createPrivateKey(readFileSync(o.deviceKey));
          } catch {
            throw new Error(`device key ${o.deviceKey}: expected a P-256 private key (PEM)`);
          }
          device = {
            key: deviceKey(publicSec1(pk)),
            sig: signDeviceMessage(pk, deviceMessage(subject, decision, createdAt)),
            createdAt,
          };
        }
        const secret = readNsecFile(o.nsecFile);
        let event: ReturnType<typeof finalizeEvent>;
        try {
          event = finalizeEvent(
            decisionTemplate(subject, decision, {
              createdAt,
              ...(o.comment !== undefined ? { content: o.comment } : {}),
              ...(device ? { device } : {}),
            }),
            secret,
          );
        } finally {
          wipe(secret);
        }
        const after = await api.request<SessionObject>(
          'POST',
          `/v1/sessions/${encodeURIComponent(sessionId)}/approvals`,
          {
            body: { event },
          },
        );
        emit(Boolean(o.json), after, () => decidedDetail(after, decision));
      },
    ),
  );
}

/** The uncompressed SEC1 hex of a P-256 private key's public key. */
function publicSec1(pk: KeyObject): string {
  const jwk = pk.export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new Error('device key: expected a P-256 key');
  return `04${Buffer.from(jwk.x, 'base64url').toString('hex')}${Buffer.from(jwk.y, 'base64url').toString('hex')}`;
}
