/**
 * The signing session state machine (DESIGN §6, §7, §13), as data. Every transition in the
 * database is a conditional UPDATE from an expected status, so two coordinators can never
 * both advance one session; this table says which moves are legal at all, and the trigger
 * of migration 008 enforces the same table for any UPDATE.
 *
 *   awaiting_approval → pending | failed (approval_rejected) | expired
 *   pending → nonce_collection → signing → aggregating → completed
 *   nonce_collection | signing | aggregating → nonce_collection   (a new attempt)
 *   any non-terminal → failed | expired
 */
import { SESSION_STATUSES, type SessionStatus } from './vocabulary.js';

export { SESSION_STATUSES, type SessionStatus };

export const TERMINAL_SESSION_STATUSES = [
  'completed',
  'failed',
  'expired',
] as const satisfies readonly SessionStatus[];

const NEXT: Record<SessionStatus, readonly SessionStatus[]> = {
  awaiting_approval: ['pending', 'failed', 'expired'],
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
  return (TERMINAL_SESSION_STATUSES as readonly string[]).includes(s);
}

/** What a new session starts in: signing at once, or waiting for its stewards (DESIGN §13). */
export const INITIAL_SESSION_STATUSES = [
  'pending',
  'awaiting_approval',
] as const satisfies readonly SessionStatus[];
export type InitialSessionStatus = (typeof INITIAL_SESSION_STATUSES)[number];

/** Statuses in which a coordinator drives the session (signing rounds). */
export const DRIVEN_STATUSES = [
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
] as const satisfies readonly SessionStatus[];

export function nonTerminalStatuses(): SessionStatus[] {
  return SESSION_STATUSES.filter((s) => !isTerminal(s));
}
