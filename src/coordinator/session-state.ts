/**
 * The signing session state machine (DESIGN §6, §7), as data. Every transition in the
 * database is a conditional UPDATE from an expected status, so two coordinators can never
 * both advance one session; this table says which moves are legal at all.
 *
 *   pending → nonce_collection → signing → aggregating → completed
 *   signing | aggregating | nonce_collection → nonce_collection   (a new attempt)
 *   any non-terminal → failed | expired
 */
export const SESSION_STATUSES = [
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
  'completed',
  'failed',
  'expired',
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

export const TERMINAL: ReadonlySet<SessionStatus> = new Set(['completed', 'failed', 'expired']);

const NEXT: Record<SessionStatus, readonly SessionStatus[]> = {
  pending: ['nonce_collection', 'failed', 'expired'],
  nonce_collection: ['signing', 'nonce_collection', 'failed', 'expired'],
  signing: ['aggregating', 'nonce_collection', 'failed', 'expired'],
  aggregating: ['completed', 'nonce_collection', 'failed', 'expired'],
  completed: [],
  failed: [],
  expired: [],
};

export function canTransition(from: SessionStatus, to: SessionStatus): boolean {
  return NEXT[from].includes(to);
}

/** The statuses a session may be in for a move to `to` to be legal. */
export function legalSources(to: SessionStatus): SessionStatus[] {
  return SESSION_STATUSES.filter((s) => NEXT[s].includes(to));
}

export function isTerminal(s: SessionStatus): boolean {
  return TERMINAL.has(s);
}
