/**
 * What this coordinator last learned about reaching each signer: a failed health probe or a
 * request that found no one there marks it unreachable; any answer it signed clears the mark.
 * Memory only, per process: every coordinator probes for itself (services/jobs.ts), so a mark
 * lives at most one probe interval after the signer is back.
 */
export interface Unreachable {
  /** When it was last found unreachable (ms since the epoch). */
  at: number;
  /** `timed out` or `connection failed`, as the client saw it. */
  why: string;
}

export class SignerReachability {
  private readonly down = new Map<string, Unreachable>();

  /** A probe or a request found no one at the signer's address. */
  markUnreachable(signerId: string, at: number, why = 'connection failed'): void {
    this.down.set(signerId, { at, why });
  }

  /** The signer answered (a signed answer, refusals included). */
  markReachable(signerId: string): void {
    this.down.delete(signerId);
  }

  /** The mark, if the signer was last found unreachable. */
  unreachable(signerId: string): Unreachable | undefined {
    return this.down.get(signerId);
  }
}
