/** BIP-340 tagged hashes: SHA256(SHA256(tag) || SHA256(tag) || msg). */
import { createHash } from 'node:crypto';

const enc = new TextEncoder();
const prefixes = new Map<string, Uint8Array>();

function prefix(tag: string): Uint8Array {
  let p = prefixes.get(tag);
  if (!p) {
    const t = createHash('sha256').update(enc.encode(tag)).digest();
    p = new Uint8Array(Buffer.concat([t, t]));
    prefixes.set(tag, p);
  }
  return p;
}

/** BIP-340 tagged hash of the concatenation of `msgs`. */
export function taggedHash(tag: string, ...msgs: Uint8Array[]): Uint8Array {
  const h = createHash('sha256').update(prefix(tag));
  for (const m of msgs) h.update(m);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
