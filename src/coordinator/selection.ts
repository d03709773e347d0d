/**
 * Choosing the signers of an attempt: `t` members of the key that are active, not
 * quarantined (unless an admin override says so), not last found unreachable, not excluded in this session (culprits
 * and members that failed to answer), preferring healthy and fast ones.
 */
export interface Candidate {
  identifier: number;
  signerId: string;
  status: 'active' | 'disabled';
  quarantined: boolean;
  quarantineOverride: boolean;
  faultCount: number;
  lastLatencyMs: number | null;
  lastSeenAt: number | null;
  /** Last found unreachable by this coordinator (a failed probe or request; ./reachability.ts). */
  unreachable?: boolean;
}

export function eligible(c: Candidate, excluded: ReadonlySet<number>): boolean {
  return (
    c.status === 'active' &&
    (!c.quarantined || c.quarantineOverride) &&
    !c.unreachable &&
    !excluded.has(c.identifier)
  );
}

/** Why a candidate is not eligible, in words for an error message (undefined: it is eligible). */
export function ineligibility(c: Candidate, excluded: ReadonlySet<number>): string | undefined {
  if (c.status !== 'active') return 'disabled';
  if (c.quarantined && !c.quarantineOverride) return 'quarantined';
  if (c.unreachable) return 'unreachable';
  if (excluded.has(c.identifier)) return 'excluded from this session';
  return undefined;
}

/**
 * Pick `t` eligible members: fewest faults first, then recently seen and fast; signers not
 * seen lately rank last. Among equals, `tieBreak` decides: by default the identifier
 * (deterministic); a random rank spreads the load over all members when n > t.
 * Returns undefined when fewer than `t` are eligible.
 */
export function chooseSubset(
  candidates: readonly Candidate[],
  t: number,
  excluded: ReadonlySet<number>,
  /** Signers not seen (by a health probe or a request) since this time rank after the others. */
  staleBefore = 0,
  /** Latencies within one bucket count as equal, so jitter does not reorder signers. */
  latencyBucketMs = 100,
  tieBreak: (c: Candidate) => number = (c) => c.identifier,
): Candidate[] | undefined {
  const ok = candidates.filter((c) => eligible(c, excluded));
  if (ok.length < t) return undefined;
  const unknown = 10 * latencyBucketMs;
  const score = (c: Candidate) =>
    Math.floor((c.lastLatencyMs ?? unknown) / latencyBucketMs) +
    (c.lastSeenAt === null || c.lastSeenAt < staleBefore ? 1_000_000 : 0);
  const rank = new Map(ok.map((c) => [c.identifier, tieBreak(c)]));
  return [...ok]
    .sort(
      (a, b) =>
        a.faultCount - b.faultCount ||
        score(a) - score(b) ||
        rank.get(a.identifier)! - rank.get(b.identifier)! ||
        a.identifier - b.identifier,
    )
    .slice(0, t)
    .sort((a, b) => a.identifier - b.identifier);
}
