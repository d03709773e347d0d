/**
 * What the decided key ceremonies (refresh, repair) share once they only roll forward: a message
 * sent to each member not yet done, and one push at a time per ceremony in this process.
 */
import type { KeyMember, SignerRecord } from '../domain/records.js';
import { FloeError } from '../protocol/errors.js';

/** One run at a time per id: a second caller (the jobs, while the API request pushes) gets the run in flight. */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  run(id: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(id);
    if (running) return running;
    const p = fn().finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, p);
    return p;
  }
}

/** Send to every member (at once); the identifiers whose signer answered. */
export async function sendToEach(
  members: readonly Pick<KeyMember, 'identifier' | 'signer_id'>[],
  signerOf: (signerId: string) => Promise<SignerRecord | undefined> | SignerRecord | undefined,
  send: (signer: SignerRecord) => Promise<unknown>,
): Promise<number[]> {
  const rs = await Promise.allSettled(
    members.map(async (m) => {
      const s = await signerOf(m.signer_id);
      if (!s) throw new FloeError('signer_not_found', `signer ${m.signer_id} is not registered`);
      await send(s);
      return m.identifier;
    }),
  );
  return rs.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
}
