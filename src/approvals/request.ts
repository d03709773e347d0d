/**
 * The request a steward receives (DESIGN §13): a human summary of what is to be signed, and
 * exactly what to answer. Pure: the coordinator wraps it in a NIP-17 direct message; the API
 * shows the same summary in GET /v1/approvals.
 */
import { npubEncode } from '../crypto/bech32.js';
import { fromHex } from '../crypto/hex.js';
import type { ApprovalPolicy, ApprovalSubject } from './policy.js';
import { APPROVAL_KIND, dTagOf } from './proof.js';

/** Most characters of an event's content quoted in a summary. */
export const SUMMARY_CONTENT_CHARS = 500;

/** One line on what the intent is: the event kind and content, or the digest. */
export function intentSummary(subject: ApprovalSubject): string {
  switch (subject.type) {
    case 'message':
      return `a 32-byte digest ${subject.digest} (its meaning is not known to Floe: approve only if you know it)`;
    case 'nostr_event': {
      const c = subject.content;
      const quoted = c.length > SUMMARY_CONTENT_CHARS ? `${c.slice(0, SUMMARY_CONTENT_CHARS)}…` : c;
      const tags = subject.tags.length
        ? `, ${subject.tags.length} tag${subject.tags.length > 1 ? 's' : ''}`
        : '';
      return `a Nostr event of kind ${subject.kind}${tags}, id ${subject.id}, content: ${JSON.stringify(quoted)}`;
    }
    case 'bitcoin_psbt': {
      const outs = subject.outputs ?? [];
      const sent = outs.filter((o) => !o.change);
      return outs.length
        ? `a Bitcoin transaction sending ${sent.map((o) => `${o.value} sat`).join(', ')} (${outs.length - sent.length} change output(s))`
        : 'a Bitcoin PSBT';
    }
    default:
      return 'an intent of an unknown type';
  }
}

export interface ApprovalRequest {
  keyId: string;
  keyLabel: string | null;
  sessionId: string;
  /** hex */
  intentHash: string;
  subject: ApprovalSubject;
  /** Unix ms. */
  deadline: number;
  policy: ApprovalPolicy;
}

/** Machine-readable tags for the direct message (beside the p tags NIP-17 puts there). */
export function requestTags(r: ApprovalRequest): string[][] {
  return [
    ['subject', `Floe: approval requested for ${r.keyLabel ?? r.keyId}`],
    ['floe-session', r.sessionId],
    ['floe-intent', r.intentHash],
    ['floe-deadline', String(Math.floor(r.deadline / 1000))],
  ];
}

/** The text of the direct message to each steward. */
export function requestText(r: ApprovalRequest): string {
  const p = r.policy;
  const stewards = p.stewards.map((s) => `  ${npubEncode(fromHex(s, 'steward', 32))}`).join('\n');
  const veto = p.veto ? 'one rejection fails it' : 'rejections count only against the quorum';
  const device = p.require_device
    ? '\nYour decision must carry your device signature (["device", …] tag).'
    : '';
  return [
    `Floe: your approval is requested.`,
    '',
    `Key ${r.keyLabel ? `"${r.keyLabel}" ` : ''}(${r.keyId}) is asked to sign ${intentSummary(r.subject)}.`,
    '',
    `Session:     ${r.sessionId}`,
    `Intent hash: ${r.intentHash}`,
    `Deadline:    ${new Date(r.deadline).toISOString()}`,
    `Needed:      ${p.threshold} of ${p.stewards.length} stewards (${veto})`,
    `Stewards:\n${stewards}`,
    '',
    `To answer, publish a kind-${APPROVAL_KIND} event signed by your key with the tags`,
    `  ["d", "${dTagOf({ kind: 'session', sessionId: r.sessionId, intentHash: r.intentHash })}"]`,
    `  ["session", "${r.sessionId}"]`,
    `  ["intent", "${r.intentHash}"]`,
    `  ["decision", "approve"]   (or "reject")`,
    `to the relays this message came from, or run:`,
    `  floe approve ${r.sessionId} --nsec-file YOUR_NSEC_FILE [--reject]${device}`,
    'Silence until the deadline lets the request expire.',
  ].join('\n');
}
