/**
 * The DKG ceremony state machine, as data (enforced again by the trigger of migration 003):
 *   pending → round1 → round2 → round3 → certifying → completed; failed from any non-terminal status.
 */
import { CEREMONY_STATUSES, type CeremonyStatus } from './vocabulary.js';

export { CEREMONY_STATUSES, type CeremonyStatus };

const NEXT: Record<CeremonyStatus, readonly CeremonyStatus[]> = {
  pending: ['round1', 'failed'],
  round1: ['round2', 'failed'],
  round2: ['round3', 'failed'],
  round3: ['certifying', 'failed'],
  certifying: ['completed', 'failed'],
  completed: [],
  failed: [],
};

export function canCeremonyTransition(from: CeremonyStatus, to: CeremonyStatus): boolean {
  return NEXT[from].includes(to);
}

export function isCeremonyTerminal(s: CeremonyStatus): boolean {
  return NEXT[s].length === 0;
}

export const NON_TERMINAL_CEREMONY_STATUSES = CEREMONY_STATUSES.filter((s) => NEXT[s].length > 0);
