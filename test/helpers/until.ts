/**
 * Wait for a condition instead of sleeping: `until()` polls `fn` until it returns something
 * truthy and hands that back, or fails naming what it waited for. Polling starts at 10 ms and
 * backs off to `maxIntervalMs`, so a quick condition costs little and a slow one little CPU.
 */

/**
 * Resolve with the first truthy value of `fn`; reject with `timed out after … : what` (`what`
 * may be a function, to describe the last state seen).
 */
export async function until<T>(
  what: string | (() => string),
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  maxIntervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let interval = 10;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms: ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(maxIntervalMs, interval * 2);
  }
}
