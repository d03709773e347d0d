/**
 * Cluster set-up through the coordinator's API, shared by the test clusters
 * (test/helpers/cluster.ts) and the benchmark / chaos clusters (bench/cluster.ts).
 */
export type Api = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; body: any }>;

/** Register every signer (admin token), in order; returns their ids. */
export async function registerSigners(
  api: Api,
  signers: readonly { url: string; identity: string }[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const s of signers) {
    const r = await api('POST', '/v1/signers', { url: s.url, identity: s.identity });
    if (r.status !== 201) throw new Error(`register signer: ${r.status} ${JSON.stringify(r.body)}`);
    ids.push(r.body.id);
  }
  return ids;
}

/** A DKG key over the given signer ids (default all), waiting until it is active. */
export async function createKey(
  api: Api,
  threshold: number,
  signerIds: string[] | undefined,
  waitMs: number,
): Promise<any> {
  const r = await api('POST', '/v1/keys', {
    threshold,
    ...(signerIds ? { signers: signerIds } : {}),
    wait: waitMs,
  });
  if (r.body?.status !== 'active') throw new Error(`key not active: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
