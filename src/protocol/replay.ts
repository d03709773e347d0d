/**
 * Remembers envelope nonces for as long as their timestamps are acceptable, so that a
 * captured request cannot be played again inside the window. Bounded: entries older than
 * the window are dropped, and a hard cap refuses new nonces rather than forgetting live ones.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries = 200_000,
  ) {}

  /** Records `key` (sender + nonce) seen at `ts`; false if it was seen before or the cache is full. */
  check(key: string, ts: number, now: number): boolean {
    this.sweep(now);
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.maxEntries) return false;
    // Keep until the envelope's own timestamp leaves the window on either side.
    this.seen.set(key, Math.max(ts, now) + this.windowMs);
    return true;
  }

  /** Drops expired entries from the front (insertion order is close to expiry order). */
  sweep(now: number): void {
    for (const [k, until] of this.seen) {
      if (until >= now) break;
      this.seen.delete(k);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}
