/** Waiting on work a request started, without keeping timers (or the process) alive after it. */

/**
 * `p`'s value, or undefined once `ms` have passed or if `p` rejects. The timer is cleared when
 * `p` settles first, so a request's `wait` does not keep a timer (and the process) alive.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(r, Math.max(0, ms), undefined);
  });
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
