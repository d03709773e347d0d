/**
 * An independent transcription of the DLEQ-ECDH proof (src/crypto/dleq.ts) over noble's points
 * and @noble/hashes, written from the spec in that module's comment: the known answers in
 * test/fixtures/vectors/dleq-ecdh.json are computed by this and by every backend.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';

const { Point } = secp256k1;
type Pt = InstanceType<typeof Point>;
const N = Point.Fn.ORDER;
const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const int = (b: Uint8Array) => BigInt(`0x${hex(b) || '0'}`);
const be32 = (x: bigint) => Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));
const mod = (x: bigint) => ((x % N) + N) % N;
const cat = (...p: Uint8Array[]) => Uint8Array.from(Buffer.concat(p));
const lenBe4 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

function tagged(tag: string, ...m: Uint8Array[]): Uint8Array {
  const t = sha256(utf8(tag));
  return sha256(cat(t, t, ...m));
}

const liftX = (x: Uint8Array): Pt => Point.fromBytes(cat(Uint8Array.of(2), x));

export function refProve(
  secret: Uint8Array,
  peerX: Uint8Array,
  ctx: Uint8Array,
  aux: Uint8Array,
): { shared: Uint8Array; proof: Uint8Array; A1: Uint8Array; A2: Uint8Array } {
  const d0 = int(secret);
  const Q0 = Point.BASE.multiply(d0);
  const d = Q0.toAffine().y % 2n === 0n ? d0 : N - d0;
  const Q = Point.BASE.multiply(d).toBytes(true);
  const P = liftX(peerX);
  const shared = P.multiply(d).toBytes(true);
  const t = tagged('floe/dleq-ecdh/v1/aux', aux);
  const db = be32(d);
  for (let i = 0; i < 32; i++) t[i]! ^= db[i]!;
  const c4 = cat(lenBe4(ctx.length), ctx);
  const k = mod(int(tagged('floe/dleq-ecdh/v1/nonce', t, Q, P.toBytes(true), shared, c4)));
  const A1 = Point.BASE.multiply(k).toBytes(true);
  const A2 = P.multiply(k).toBytes(true);
  const c = mod(
    int(
      tagged('floe/dleq-ecdh/v1/challenge', Point.BASE.toBytes(true), Q, P.toBytes(true), shared, A1, A2, c4),
    ),
  );
  return { shared, proof: cat(be32(c), be32(mod(k + c * d))), A1, A2 };
}

export function refVerify(
  proverX: Uint8Array,
  peerX: Uint8Array,
  shared: Uint8Array,
  proof: Uint8Array,
  ctx: Uint8Array,
): boolean {
  try {
    const Q = liftX(proverX);
    const P = liftX(peerX);
    const Sp = Point.fromBytes(shared);
    const c = int(proof.subarray(0, 32));
    const z = int(proof.subarray(32));
    if (proof.length !== 64 || c >= N || z >= N) return false;
    const A1 = Point.BASE.multiplyUnsafe(z).add(Q.multiplyUnsafe(c).negate());
    const A2 = P.multiplyUnsafe(z).add(Sp.multiplyUnsafe(c).negate());
    if (A1.is0() || A2.is0()) return false;
    const want = mod(
      int(
        tagged(
          'floe/dleq-ecdh/v1/challenge',
          Point.BASE.toBytes(true),
          Q.toBytes(true),
          P.toBytes(true),
          shared,
          A1.toBytes(true),
          A2.toBytes(true),
          cat(lenBe4(ctx.length), ctx),
        ),
      ),
    );
    return want === c;
  } catch {
    return false;
  }
}
