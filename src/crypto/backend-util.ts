/** Helpers shared by the backend implementations (no curve arithmetic here). */
import type { CurveBackend } from './backend.js';
import { CryptoError } from './errors.js';
import { fromHex, toHex } from './hex.js';
import * as S from './scalar.js';

/** The invalid_point error, naming the field but never the value. */
export function invalidPoint(what: string): CryptoError {
  return new CryptoError('invalid_point', `${what}: not a point on secp256k1`);
}

/** Structural check of a compressed point encoding (length and prefix). */
export function assertCompressed(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)) {
    throw new CryptoError('invalid_point', `${what}: expected a 33-byte compressed point`);
  }
}

export function assertScalarBytes(k: Uint8Array, what: string): void {
  if (!(k instanceof Uint8Array) || k.length !== 32) {
    throw new CryptoError('invalid_scalar', `${what}: expected 32 bytes`);
  }
}

const G_HEX = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
const G2_X = 'c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5';
const G3_HEX = '02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9';
const G6_HEX = '03fff97bd5755eeea420453a14355235d382f6472f8568a18b2f057a1460297556';

/** Known answers, so a broken binary is refused at start-up rather than producing bad keys. */
export function selfTest(b: CurveBackend): void {
  const one = S.toBytes(1n);
  const two = S.toBytes(2n);
  const G = b.mulBase(one);
  const ok =
    toHex(b.encode(G)) === G_HEX &&
    toHex(b.encode(b.add(b.mulPublic(G, two), G)!)) === G3_HEX &&
    toHex(b.encode(b.mulBaseAddPublic(two, G, one)!)) === G3_HEX &&
    toHex(b.ecdh(two, b.encode(G).subarray(1))) === G2_X &&
    toHex(b.encode(b.mulSecret(b.decode(fromHex(G3_HEX, 'G3'), 'G3'), two))) === G6_HEX && // odd Y
    b.add(G, b.negate(G)) === null &&
    b.equals(b.decode(b.encode(G), 'G'), G);
  if (!ok) throw new Error(`${b.name} backend failed its known-answer self-test`);
}
