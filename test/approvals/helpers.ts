/**
 * Stewards for the approval tests: Nostr keys from nostr-tools (an implementation independent of
 * Floe's), their signed decisions, and P-256 devices from node:crypto (as a card would hold).
 */
import { createHash, ECDH, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import * as nip19 from 'nostr-tools/nip19';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';

export interface Steward {
  sk: Uint8Array;
  pk: string;
  npub: string;
}

export function steward(): Steward {
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  return { sk, pk, npub: nip19.npubEncode(pk) };
}

export interface Device {
  privateKey: KeyObject;
  /** 33-byte compressed SEC1, hex. */
  publicKey: string;
  /** 65-byte uncompressed SEC1, hex. */
  uncompressed: string;
}

export function device(): Device {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const uncompressed = `04${Buffer.from(jwk.x!, 'base64url').toString('hex')}${Buffer.from(jwk.y!, 'base64url').toString('hex')}`;
  return {
    privateKey,
    uncompressed,
    publicKey: ECDH.convertKey(uncompressed, 'prime256v1', 'hex', 'hex', 'compressed') as string,
  };
}

/**
 * The device message of the approval docs, built here byte by byte (not with Floe's function):
 * "floe-device-approval/v1" ‖ u16be(len subject) ‖ subject ‖ binding(32) ‖ u8(len decision) ‖
 * decision ‖ u64be(created_at).
 */
export function deviceBytes(
  subject: string,
  bindingHex: string,
  decision: string,
  createdAt: number,
): Buffer {
  const s = Buffer.from(subject, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(s.length);
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(createdAt));
  return Buffer.concat([
    Buffer.from('floe-device-approval/v1', 'utf8'),
    len,
    s,
    Buffer.from(bindingHex, 'hex'),
    Buffer.from([decision.length]),
    Buffer.from(decision, 'utf8'),
    t,
  ]);
}

/** ECDSA P-256 / SHA-256, r‖s hex: what the device tag carries. */
export function deviceSign(d: Device, message: Uint8Array): string {
  return sign('sha256', message, { key: d.privateKey, dsaEncoding: 'ieee-p1363' }).toString('hex');
}

/** A steward's decision on a session, signed with nostr-tools. */
export function decide(
  s: Steward,
  o: {
    sessionId: string;
    intentHash: string;
    decision?: string;
    createdAt?: number;
    content?: string;
    device?: { d: Device; createdAt?: number; key?: string; decision?: string };
    tags?: string[][];
  },
) {
  const createdAt = o.createdAt ?? Math.floor(Date.now() / 1000);
  const decision = o.decision ?? 'approve';
  const tags = o.tags ?? [
    ['d', `floe-approval:${o.sessionId}`],
    ['session', o.sessionId],
    ['intent', o.intentHash],
    ['decision', decision],
  ];
  if (o.device) {
    const at = o.device.createdAt ?? createdAt;
    const sig = deviceSign(
      o.device.d,
      deviceBytes(o.sessionId, o.intentHash, o.device.decision ?? decision, at),
    );
    tags.push(['device', o.device.key ?? o.device.d.publicKey, sig, String(at)]);
  }
  return finalizeEvent({ kind: 30078, created_at: createdAt, tags, content: o.content ?? '' }, s.sk);
}

/** A steward's approval of a key's next policy state. */
export function decidePolicy(
  s: Steward,
  o: { keyId: string; from: string; to: string; decision?: string; createdAt?: number },
) {
  return finalizeEvent(
    {
      kind: 30078,
      created_at: o.createdAt ?? Math.floor(Date.now() / 1000),
      tags: [
        ['d', `floe-policy:${o.keyId}`],
        ['key', o.keyId],
        ['from', o.from],
        ['policy', o.to],
        ['decision', o.decision ?? 'approve'],
      ],
      content: '',
    },
    s.sk,
  );
}

export const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
