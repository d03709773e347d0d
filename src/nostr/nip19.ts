/**
 * NIP-19 bech32 entities: npub, nsec, note (bare 32 bytes) and nprofile, nevent, naddr (TLV).
 * Decoding is strict: the expected prefix, exact lengths, required TLVs present once, and
 * relay strings valid UTF-8. Unknown TLV types are skipped, as NIP-19 requires. Errors name
 * the entity and the rule, never the input (an nsec is a secret).
 */
import { bech32 } from '@scure/base';
import { FloeError } from '../protocol/errors.js';

/** Longest bech32 string accepted (the same bound as nostr-tools). */
export const BECH32_MAX_LENGTH = 5000;

export interface ProfilePointer {
  pubkey: string;
  relays?: string[];
}

export interface EventPointer {
  id: string;
  relays?: string[];
  author?: string;
  kind?: number;
}

export interface AddressPointer {
  identifier: string;
  pubkey: string;
  kind: number;
  relays?: string[];
}

export type Decoded =
  | { type: 'npub'; data: string }
  | { type: 'nsec'; data: Uint8Array }
  | { type: 'note'; data: string }
  | { type: 'nprofile'; data: ProfilePointer }
  | { type: 'nevent'; data: EventPointer }
  | { type: 'naddr'; data: AddressPointer };

export type Nip19Type = Decoded['type'];

const HEX32 = /^[0-9a-f]{64}$/;
const TLV_SPECIAL = 0;
const TLV_RELAY = 1;
const TLV_AUTHOR = 2;
const TLV_KIND = 3;
// secp256k1 group order: an nsec must be a scalar in [1, n-1] to be a key at all.
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function bad(what: string, rule: string): FloeError {
  return new FloeError('invalid_encoding', `${what}: ${rule}`);
}

function hex32(x: unknown, what: string): Uint8Array {
  if (typeof x !== 'string' || !HEX32.test(x)) throw bad(what, 'expected 32 bytes of lower-case hex');
  return new Uint8Array(Buffer.from(x, 'hex'));
}

function isSecretScalar(b: Uint8Array): boolean {
  const k = BigInt(`0x${Buffer.from(b).toString('hex')}`);
  return k > 0n && k < CURVE_ORDER;
}

function encodeBytes(prefix: string, bytes: Uint8Array): string {
  return bech32.encode(prefix, bech32.toWords(bytes), BECH32_MAX_LENGTH);
}

export function npubEncode(pubkeyHex: string): string {
  return encodeBytes('npub', hex32(pubkeyHex, 'npub'));
}

export function nsecEncode(secret: Uint8Array): string {
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw bad('nsec', 'expected 32 bytes');
  if (!isSecretScalar(secret)) throw bad('nsec', 'not a valid secp256k1 secret key');
  return encodeBytes('nsec', secret);
}

export function noteEncode(idHex: string): string {
  return encodeBytes('note', hex32(idHex, 'note'));
}

function relayTlvs(relays: string[] | undefined, what: string): [number, Uint8Array][] {
  return (relays ?? []).map((r) => {
    if (typeof r !== 'string' || r.length === 0) throw bad(`${what}.relays`, 'expected non-empty strings');
    const b = utf8.encode(r);
    if (b.length > 255) throw bad(`${what}.relays`, 'a relay URL must be at most 255 bytes');
    return [TLV_RELAY, b];
  });
}

function encodeTlv(prefix: string, entries: [number, Uint8Array][]): string {
  const size = entries.reduce((n, [, v]) => n + 2 + v.length, 0);
  const out = new Uint8Array(size);
  let o = 0;
  for (const [t, v] of entries) {
    out[o++] = t;
    out[o++] = v.length;
    out.set(v, o);
    o += v.length;
  }
  try {
    return encodeBytes(prefix, out);
  } catch {
    throw bad(prefix, `encoding longer than ${BECH32_MAX_LENGTH} characters`);
  }
}

function u32(n: unknown, what: string): Uint8Array {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw bad(what, 'expected an unsigned 32-bit integer');
  }
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function nprofileEncode(p: ProfilePointer): string {
  return encodeTlv('nprofile', [
    [TLV_SPECIAL, hex32(p.pubkey, 'nprofile.pubkey')],
    ...relayTlvs(p.relays, 'nprofile'),
  ]);
}

export function neventEncode(p: EventPointer): string {
  const entries: [number, Uint8Array][] = [
    [TLV_SPECIAL, hex32(p.id, 'nevent.id')],
    ...relayTlvs(p.relays, 'nevent'),
  ];
  if (p.author !== undefined) entries.push([TLV_AUTHOR, hex32(p.author, 'nevent.author')]);
  if (p.kind !== undefined) entries.push([TLV_KIND, u32(p.kind, 'nevent.kind')]);
  return encodeTlv('nevent', entries);
}

export function naddrEncode(p: AddressPointer): string {
  if (typeof p.identifier !== 'string') throw bad('naddr.identifier', 'expected a string');
  const d = utf8.encode(p.identifier);
  if (d.length > 255) throw bad('naddr.identifier', 'must be at most 255 bytes');
  return encodeTlv('naddr', [
    [TLV_SPECIAL, d],
    ...relayTlvs(p.relays, 'naddr'),
    [TLV_AUTHOR, hex32(p.pubkey, 'naddr.pubkey')],
    [TLV_KIND, u32(p.kind, 'naddr.kind')],
  ]);
}

const TYPES = new Set<string>(['npub', 'nsec', 'note', 'nprofile', 'nevent', 'naddr']);

function bech32Bytes(s: unknown): { prefix: string; bytes: Uint8Array } {
  if (typeof s !== 'string') throw bad('nip19', 'expected a string');
  if (s.length > BECH32_MAX_LENGTH) throw bad('nip19', `longer than ${BECH32_MAX_LENGTH} characters`);
  let prefix: string;
  let words: number[];
  try {
    ({ prefix, words } = bech32.decode(s, BECH32_MAX_LENGTH));
  } catch {
    throw bad('nip19', 'not a valid bech32 string');
  }
  if (!TYPES.has(prefix)) throw bad('nip19', 'unknown prefix');
  try {
    return { prefix, bytes: bech32.fromWords(words) };
  } catch {
    throw bad(prefix, 'invalid bech32 padding');
  }
}

/** TLV entries in order; a truncated entry is an error. */
function parseTlv(bytes: Uint8Array, what: string): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  let o = 0;
  while (o < bytes.length) {
    if (o + 2 > bytes.length) throw bad(what, 'truncated TLV');
    const t = bytes[o]!;
    const len = bytes[o + 1]!;
    o += 2;
    if (o + len > bytes.length) throw bad(what, 'truncated TLV');
    const list = out.get(t) ?? [];
    list.push(bytes.subarray(o, o + len));
    out.set(t, list);
    o += len;
  }
  return out;
}

function one(
  tlv: Map<number, Uint8Array[]>,
  t: number,
  what: string,
  required: boolean,
): Uint8Array | undefined {
  const v = tlv.get(t);
  if (!v) {
    if (required) throw bad(what, 'missing');
    return undefined;
  }
  if (v.length !== 1) throw bad(what, 'must appear once');
  return v[0];
}

function fixed32(v: Uint8Array | undefined, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (v.length !== 32) throw bad(what, 'expected 32 bytes');
  return Buffer.from(v).toString('hex');
}

function text(v: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(v);
  } catch {
    throw bad(what, 'not valid UTF-8');
  }
}

function relays(tlv: Map<number, Uint8Array[]>, what: string): string[] {
  return (tlv.get(TLV_RELAY) ?? []).map((r) => {
    if (r.length === 0) throw bad(`${what}.relays`, 'empty relay entry');
    return text(r, `${what}.relays`);
  });
}

function kindOf(v: Uint8Array | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (v.length !== 4) throw bad(what, 'expected 4 bytes');
  return new DataView(v.buffer, v.byteOffset, 4).getUint32(0);
}

/** Decode any NIP-19 entity. */
export function decode(s: string): Decoded {
  const { prefix, bytes } = bech32Bytes(s);
  switch (prefix) {
    case 'npub':
    case 'note':
      return { type: prefix, data: fixed32(bytes, prefix)! };
    case 'nsec':
      if (bytes.length !== 32) throw bad('nsec', 'expected 32 bytes');
      if (!isSecretScalar(bytes)) throw bad('nsec', 'not a valid secp256k1 secret key');
      return { type: 'nsec', data: bytes };
    case 'nprofile': {
      const tlv = parseTlv(bytes, 'nprofile');
      const pubkey = fixed32(one(tlv, TLV_SPECIAL, 'nprofile.pubkey', true), 'nprofile.pubkey')!;
      return { type: 'nprofile', data: { pubkey, relays: relays(tlv, 'nprofile') } };
    }
    case 'nevent': {
      const tlv = parseTlv(bytes, 'nevent');
      const data: EventPointer = {
        id: fixed32(one(tlv, TLV_SPECIAL, 'nevent.id', true), 'nevent.id')!,
        relays: relays(tlv, 'nevent'),
      };
      const author = fixed32(one(tlv, TLV_AUTHOR, 'nevent.author', false), 'nevent.author');
      const kind = kindOf(one(tlv, TLV_KIND, 'nevent.kind', false), 'nevent.kind');
      if (author !== undefined) data.author = author;
      if (kind !== undefined) data.kind = kind;
      return { type: 'nevent', data };
    }
    default: {
      const tlv = parseTlv(bytes, 'naddr');
      return {
        type: 'naddr',
        data: {
          identifier: text(one(tlv, TLV_SPECIAL, 'naddr.identifier', true)!, 'naddr.identifier'),
          pubkey: fixed32(one(tlv, TLV_AUTHOR, 'naddr.pubkey', true), 'naddr.pubkey')!,
          kind: kindOf(one(tlv, TLV_KIND, 'naddr.kind', true), 'naddr.kind')!,
          relays: relays(tlv, 'naddr'),
        },
      };
    }
  }
}

type DataOf = { [D in Decoded as D['type']]: D['data'] };

/** Decode and require one entity type. */
export function decodeAs<T extends Nip19Type>(s: string, type: T): DataOf[T] {
  let d: Decoded;
  try {
    d = decode(s);
  } catch (e) {
    // keep the expected type in the message; the input itself is never echoed
    throw e instanceof FloeError ? bad(type, e.message) : e;
  }
  if (d.type !== type) throw bad(type, `expected a ${type}, got a ${d.type}`);
  return d.data as DataOf[T];
}

export const npubDecode = (s: string): string => decodeAs(s, 'npub');
export const nsecDecode = (s: string): Uint8Array => decodeAs(s, 'nsec');
export const noteDecode = (s: string): string => decodeAs(s, 'note');
export const nprofileDecode = (s: string): ProfilePointer => decodeAs(s, 'nprofile');
export const neventDecode = (s: string): EventPointer => decodeAs(s, 'nevent');
export const naddrDecode = (s: string): AddressPointer => decodeAs(s, 'naddr');
