/**
 * The roster an operator pinned (DESIGN §11): the identity keys of the signers this client
 * will seal shares to. Never what the coordinator lists: whoever chooses the receivers of an
 * import learns the key. Read from the deployment bundle `floe init` wrote
 * (`deployment.json`), a local cluster's `.floe/cluster.json`, or any JSON file holding
 * `{"signers": [{"identity": "<x-only hex>"}, …]}` or a plain array of identity keys.
 */
import { readFileSync } from 'node:fs';

export interface PinnedSigner {
  identity: string;
  name?: string;
}

const HEX32 = /^[0-9a-f]{64}$/;

export function loadRoster(file: string): PinnedSigner[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? 'not JSON';
    throw new Error(`roster ${file} cannot be read (${why})`);
  }
  const list: unknown = Array.isArray(doc) ? doc : (doc as { signers?: unknown } | null)?.signers;
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`roster ${file}: expected a list of signers (or {"signers": [...]})`);
  }
  const out = list.map((x, i): PinnedSigner => {
    const identity = typeof x === 'string' ? x : (x as { identity?: unknown } | null)?.identity;
    if (typeof identity !== 'string' || !HEX32.test(identity)) {
      throw new Error(
        `roster ${file}: signer ${i + 1} has no x-only identity key (64 lower-case hex digits)`,
      );
    }
    const name = typeof x === 'object' && x !== null ? (x as { name?: unknown }).name : undefined;
    return { identity, ...(typeof name === 'string' ? { name } : {}) };
  });
  if (new Set(out.map((s) => s.identity)).size !== out.length) {
    throw new Error(`roster ${file}: an identity key appears twice`);
  }
  return out;
}

/**
 * The coordinator's signers for an import, each checked against the pinned roster: a signer
 * whose identity is not pinned is refused, so shares are only ever sealed to pinned keys.
 */
export function pinnedRecipients<T extends { id: string; identity: string }>(
  chosen: readonly T[],
  roster: readonly PinnedSigner[],
): T[] {
  const pinned = new Set(roster.map((s) => s.identity));
  for (const s of chosen) {
    if (!pinned.has(s.identity)) {
      throw new Error(
        `the coordinator lists signer ${s.id} with identity ${s.identity.slice(0, 16)}…, which is not in your roster; refusing to seal a share to it`,
      );
    }
  }
  return [...chosen];
}
