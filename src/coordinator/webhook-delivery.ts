/**
 * Sends one webhook delivery: a POST of the JSON body with the given headers. Redirects are
 * not followed (a 3xx counts as a failure); the answer's body is read and dropped. The outcome
 * names the status code or a short transport error, never a header (they carry signatures).
 */
export interface SendOutcome {
  statusCode: number | null;
  error: string | null;
}

export async function sendWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<SendOutcome> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'floe-webhooks/1', ...headers },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return {
      statusCode: res.status,
      error: res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`,
    };
  } catch (e) {
    const err = e as { name?: string; cause?: { code?: string } };
    const reason =
      err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : (err.cause?.code ?? (e instanceof Error ? e.message : 'request failed'));
    return { statusCode: null, error: reason };
  }
}
