/**
 * The safety invariants the chaos tool checks after a run, over what the coordinator's
 * database and every signer's SQLite store hold. Pure functions of that data, so the test
 * suite can also feed them a planted violation of each kind and see it counted.
 *
 * nonce_reuse — a nonce commitment (or either of its two points) used twice:
 *   - duplicate rows in nonce_commitments by whole commitment, hiding point or binding point
 *     (the unique indexes should make these impossible);
 *   - one point in the signing packages of two (session, attempt, member) entries of
 *     signing_sessions.nonce_commitments (the commitments the shares were computed against);
 *   - a commitment in a signing package with no nonce_commitments row, or whose row belongs to
 *     another (session, attempt, member): it escaped the database's uniqueness check.
 *
 * double_release — more than one share released for one (session, attempt, member):
 *   signers record a consumption marker (key, session, attempt_id, member) before releasing a
 *   share, so one marker is one release. attempt_id = H(session, message, attempt number,
 *   included members); markers are mapped back to their attempt number through the
 *   coordinator's `session.attempt` audit events (and, failing that, by trying every attempt
 *   number and member subset). Violations:
 *   - two markers with different attempt ids for the same (session, attempt number, member):
 *     one attempt number, two releases;
 *   - a share the coordinator recorded (partial_signatures) for which the member's signer
 *     holds no marker of that attempt: a release that skipped the marker.
 *   Markers that map to no attempt the coordinator ever started are reported (orphans) and
 *   also count, as do markers whose message digest is not the session's message.
 *
 * invalid_signatures — a completed session's signature, or a signature a client was given,
 *   that does not verify (BIP-340) against the key's x-only public key, checked with noble
 *   and with libsecp256k1 (tiny-secp256k1).
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import * as ecc from 'tiny-secp256k1';
import { attemptIdHex } from '../src/protocol/attempt.js';

/** The attempt id of a session's attempt with the given participants (src/protocol/attempt.ts). */
function attemptIdOf(s: SessionRow, attempt: number, included: number[]): string {
  return attemptIdHex({
    sessionId: s.session_id,
    digest: Buffer.from(s.message_hash, 'hex'),
    intentHash: Buffer.from(s.intent_hash, 'hex'),
    attempt,
    included,
  });
}

export interface SessionRow {
  session_id: string;
  key_id: string;
  message_hash: string;
  intent_hash: string;
  status: string;
  attempt: number;
  nonce_commitments: Record<string, Record<string, { hiding: string; binding: string }>>;
  partial_signatures: Record<string, Record<string, { share: string }>>;
  final_signature: string | null;
  culprits: number[];
  error_code: string | null;
}

export interface NonceRow {
  session_id: string;
  attempt: number;
  participant: number;
  nonce_commitment: string;
  nonce_used: boolean;
}

export interface AttemptEvent {
  session_id: string;
  attempt: number;
  participants: number[];
}

export interface KeyRow {
  id: string;
  threshold: number;
  x_only_public_key: string;
  members: { identifier: number; signer_id: string }[];
}

export interface MarkerRow {
  /** Which signer store it came from (index in the cluster). */
  store: number;
  key_id: string;
  session_id: string;
  attempt_id: string;
  identifier: number;
  message_digest: string;
}

export interface CheckInput {
  sessions: SessionRow[];
  nonces: NonceRow[];
  attempts: AttemptEvent[];
  keys: KeyRow[];
  markers: MarkerRow[];
  /** Signatures clients were given, by session id. */
  clientSignatures: Map<string, string>;
  /** Highest attempt number to try when mapping a marker without an audit event. */
  maxAttempts: number;
}

export interface CheckResult {
  nonce_reuse: number;
  double_release: number;
  invalid_signatures: number;
  detail: {
    duplicate_rows: number;
    duplicate_points_in_packages: number;
    package_commitments_without_row: number;
    markers: number;
    markers_mapped_by_audit: number;
    markers_mapped_by_search: number;
    orphan_markers: number;
    marker_message_mismatch: number;
    attempt_number_conflicts: number;
    shares_recorded: number;
    shares_without_marker: number;
    signatures_checked: number;
  };
  /** Human-readable lines describing each violation found (capped). */
  violations: string[];
}

const TERMINAL = new Set(['completed', 'failed', 'expired']);
export const isTerminal = (s: string) => TERMINAL.has(s);

function verifies(sigHex: string, msgHex: string, xOnlyHex: string): boolean {
  try {
    const sig = Buffer.from(sigHex, 'hex');
    const msg = Buffer.from(msgHex, 'hex');
    const key = Buffer.from(xOnlyHex, 'hex');
    if (sig.length !== 64 || msg.length !== 32 || key.length !== 32) return false;
    return schnorr.verify(sig, msg, key) && ecc.verifySchnorr(msg, key, sig);
  } catch {
    return false;
  }
}

function subsets(xs: number[], k: number): number[][] {
  if (k === 0) return [[]];
  if (xs.length < k) return [];
  const [h, ...rest] = xs;
  return [...subsets(rest, k - 1).map((s) => [h!, ...s]), ...subsets(rest, k)];
}

export function checkInvariants(x: CheckInput): CheckResult {
  const violations: string[] = [];
  const note = (s: string) => {
    if (violations.length < 50) violations.push(s);
  };
  const sessions = new Map(x.sessions.map((s) => [s.session_id, s]));
  const keys = new Map(x.keys.map((k) => [k.id, k]));

  // ---------------------------------------------------------------- nonce reuse
  let duplicateRows = 0;
  const byWhole = new Map<string, number>();
  for (const r of x.nonces) byWhole.set(r.nonce_commitment, (byWhole.get(r.nonce_commitment) ?? 0) + 1);
  const byPoint = new Map<string, number>(); // over distinct commitments: two different ones sharing a point
  for (const [c, n] of byWhole) {
    if (n > 1) {
      duplicateRows += n - 1;
      note(`nonce commitment stored ${n} times: ${c.slice(0, 20)}…`);
    }
    for (const p of [c.slice(0, 66), c.slice(66)]) byPoint.set(p, (byPoint.get(p) ?? 0) + 1);
  }
  for (const [p, n] of byPoint) {
    if (n > 1) {
      duplicateRows += n - 1;
      note(`nonce point in ${n} different stored commitments: ${p.slice(0, 20)}…`);
    }
  }
  const rowOf = new Map(x.nonces.map((r) => [r.nonce_commitment, r]));
  let dupInPackages = 0;
  let withoutRow = 0;
  const seenPoint = new Map<string, string>();
  for (const s of x.sessions) {
    for (const [attempt, byId] of Object.entries(s.nonce_commitments ?? {})) {
      for (const [id, c] of Object.entries(byId ?? {})) {
        const where = `${s.session_id}/${attempt}/${id}`;
        for (const p of [c.hiding, c.binding]) {
          const prev = seenPoint.get(p);
          if (prev !== undefined) {
            dupInPackages++;
            note(`nonce point used in ${prev} and in ${where}`);
          } else seenPoint.set(p, where);
        }
        const row = rowOf.get(`${c.hiding}${c.binding}`);
        if (
          !row ||
          row.session_id !== s.session_id ||
          row.attempt !== Number(attempt) ||
          row.participant !== Number(id)
        ) {
          withoutRow++;
          note(
            `signing package commitment of ${where} has ${row ? `the row of ${row.session_id}/${row.attempt}/${row.participant}` : 'no row'}`,
          );
        }
      }
    }
  }

  // ---------------------------------------------------------------- double release
  // attempt id -> (session, attempt number, participants)
  const attemptIds = new Map<string, { session: string; attempt: number }>();
  for (const a of x.attempts) {
    const s = sessions.get(a.session_id);
    if (!s) continue;
    const id = attemptIdOf(s, a.attempt, a.participants);
    attemptIds.set(`${a.session_id}|${id}`, { session: a.session_id, attempt: a.attempt });
  }
  const searched = new Map<string, { session: string; attempt: number } | null>();
  const search = (m: MarkerRow) => {
    const k = `${m.session_id}|${m.attempt_id}`;
    if (searched.has(k)) return searched.get(k)!;
    let found: { session: string; attempt: number } | null = null;
    const s = sessions.get(m.session_id);
    const key = s && keys.get(s.key_id);
    if (s && key) {
      const members = key.members.map((mm) => mm.identifier).sort((a, b) => a - b);
      outer: for (let a = 1; a <= x.maxAttempts; a++) {
        for (let size = key.threshold; size <= members.length; size++) {
          for (const sub of subsets(members, size)) {
            if (attemptIdOf(s, a, sub) === m.attempt_id) {
              found = { session: s.session_id, attempt: a };
              break outer;
            }
          }
        }
      }
    }
    searched.set(k, found);
    return found;
  };
  let mappedAudit = 0;
  let mappedSearch = 0;
  let orphans = 0;
  let mismatch = 0;
  const releases = new Map<string, Set<string>>(); // session|attempt#|member -> attempt ids
  const markerSet = new Set<string>(); // session|attempt_id|member
  for (const m of x.markers) {
    markerSet.add(`${m.session_id}|${m.attempt_id}|${m.identifier}`);
    const s = sessions.get(m.session_id);
    if (s && s.message_hash !== m.message_digest) {
      mismatch++;
      note(`marker of signer ${m.store} for ${m.session_id} names another message`);
    }
    let at = attemptIds.get(`${m.session_id}|${m.attempt_id}`);
    if (at) mappedAudit++;
    else {
      at = search(m) ?? undefined;
      if (at) mappedSearch++;
    }
    if (!at) {
      orphans++;
      note(`marker of signer ${m.store} (member ${m.identifier}) for ${m.session_id} matches no attempt`);
      continue;
    }
    const k = `${at.session}|${at.attempt}|${m.identifier}`;
    const set = releases.get(k) ?? new Set<string>();
    set.add(m.attempt_id);
    releases.set(k, set);
  }
  let conflicts = 0;
  for (const [k, ids] of releases) {
    if (ids.size > 1) {
      conflicts += ids.size - 1;
      note(`${ids.size} releases for session/attempt/member ${k}`);
    }
  }
  // participants of each attempt: from the stored commitments (written before any share is asked for)
  const participants = new Map<string, number[]>();
  for (const r of x.nonces) {
    const k = `${r.session_id}|${r.attempt}`;
    participants.set(k, [...(participants.get(k) ?? []), r.participant]);
  }
  for (const a of x.attempts) {
    const k = `${a.session_id}|${a.attempt}`;
    if (!participants.has(k)) participants.set(k, a.participants);
  }
  let sharesRecorded = 0;
  let sharesWithoutMarker = 0;
  for (const s of x.sessions) {
    for (const [attempt, byId] of Object.entries(s.partial_signatures ?? {})) {
      const ids = (participants.get(`${s.session_id}|${attempt}`) ?? []).slice().sort((a, b) => a - b);
      const aid = ids.length ? attemptIdOf(s, Number(attempt), ids) : '';
      for (const id of Object.keys(byId ?? {})) {
        sharesRecorded++;
        if (!markerSet.has(`${s.session_id}|${aid}|${id}`)) {
          sharesWithoutMarker++;
          note(
            `share of member ${id} recorded for ${s.session_id} attempt ${attempt} without a signer marker`,
          );
        }
      }
    }
  }

  // ---------------------------------------------------------------- signatures
  let invalid = 0;
  let checked = 0;
  const bad = new Set<string>();
  const check = (sessionId: string, sig: string, what: string) => {
    const s = sessions.get(sessionId);
    const key = s && keys.get(s.key_id);
    checked++;
    if (!s || !key || !verifies(sig, s.message_hash, key.x_only_public_key)) {
      if (!bad.has(sessionId)) invalid++;
      bad.add(sessionId);
      note(`${what} signature of ${sessionId} does not verify`);
    }
  };
  for (const s of x.sessions) {
    if (s.status === 'completed') check(s.session_id, s.final_signature ?? '', 'stored');
  }
  for (const [id, sig] of x.clientSignatures) check(id, sig, 'returned');

  return {
    nonce_reuse: duplicateRows + dupInPackages + withoutRow,
    double_release: conflicts + sharesWithoutMarker + orphans + mismatch,
    invalid_signatures: invalid,
    detail: {
      duplicate_rows: duplicateRows,
      duplicate_points_in_packages: dupInPackages,
      package_commitments_without_row: withoutRow,
      markers: x.markers.length,
      markers_mapped_by_audit: mappedAudit,
      markers_mapped_by_search: mappedSearch,
      orphan_markers: orphans,
      marker_message_mismatch: mismatch,
      attempt_number_conflicts: conflicts,
      shares_recorded: sharesRecorded,
      shares_without_marker: sharesWithoutMarker,
      signatures_checked: checked,
    },
    violations,
  };
}
