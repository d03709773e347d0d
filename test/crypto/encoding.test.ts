import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  CryptoError,
  CURVE_ORDER,
  commit,
  type DkgRound1Package,
  type DkgRound2Package,
  dealerSplit,
  decodeCommitments,
  decodeDkgRound1,
  decodeDkgRound2,
  decodeKeyPackage,
  decodePublicKeyPackage,
  decodeSignatureShare,
  decodeSigningPackage,
  dkgRound1,
  dkgRound2,
  dkgRound3,
  encodeCommitments,
  encodeDkgRound1,
  encodeDkgRound2,
  encodeKeyPackage,
  encodePublicKeyPackage,
  encodeSignatureShare,
  encodeSigningPackage,
  type KeyPackage,
  signShare,
  toHex,
  tweakKeyPackage,
  tweakPublicKeyPackage,
} from '../../src/crypto/index.js';
import { describeEachBackend } from './backends.js';

// ---------- fixtures ----------

function randomSecret(): Uint8Array {
  for (;;) {
    const s = randomBytes(32);
    const v = BigInt(`0x${s.toString('hex')}`);
    if (v > 0n && v < CURVE_ORDER) return new Uint8Array(s);
  }
}

const dealer = dealerSplit(randomSecret(), 2, 3);
const scriptRoot = new Uint8Array(randomBytes(32));
const tweakedKey = tweakKeyPackage(dealer.shares[1]!, scriptRoot);

function runDkg(): { keys: KeyPackage[]; round1: DkgRound1Package[]; round2: DkgRound2Package[] } {
  const ids = [1, 2, 3];
  const r1 = ids.map((i) => dkgRound1(i, 2, 3));
  const round1 = r1.map((r) => r.package);
  const others = (i: number) => round1.filter((p) => p.identifier !== i);
  const round2 = ids.flatMap((i) => dkgRound2(r1[i - 1]!.secret, others(i)));
  const keys = ids.map((i) =>
    dkgRound3(
      r1[i - 1]!.secret,
      others(i),
      round2.filter((p) => p.receiver === i),
    ),
  );
  return { keys, round1, round2 };
}
const dkg = runDkg();

const round1 = [1, 2].map((i) => commit(dealer.shares[i - 1]!));
const signingPackage = {
  message: new Uint8Array(randomBytes(32)),
  commitments: round1.map((r) => r.commitments),
};
const sigShare = signShare(dealer.shares[0]!, round1[0]!.nonces, signingPackage);

const N_HEX = 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141';
const ZERO_HEX = '00'.repeat(32);

/** The first x (from 1) for which x^3 + 7 is not a square mod p (Euler's criterion). */
function offCurveX(): bigint {
  const p = 2n ** 256n - 2n ** 32n - 977n;
  const pow = (b: bigint, e: bigint) => {
    let r = 1n;
    b %= p;
    for (; e > 0n; e >>= 1n, b = (b * b) % p) if (e & 1n) r = (r * b) % p;
    return r;
  };
  for (let x = 1n; ; x++) if (pow(x ** 3n + 7n, (p - 1n) / 2n) !== 1n) return x;
}
const xHex = (x: bigint) => x.toString(16).padStart(64, '0');
const OFF_CURVE = `02${xHex(offCurveX())}`;
const ON_CURVE_SMALL_X = `02${xHex(1n)}`; // 1 + 7 = 8 = 2^3 is a square mod p

// ---------- helpers ----------

type Json = any;
const clone = (x: Json): Json => JSON.parse(JSON.stringify(x));

function rejects(decode: (x: unknown) => unknown, json: Json, code: CryptoError['code'], label: string) {
  assert.throws(
    () => decode(json),
    (e: unknown) => {
      assert.ok(e instanceof CryptoError, `${label}: expected a CryptoError, got ${String(e)}`);
      assert.equal(e.code, code, `${label}: ${e.message}`);
      return true;
    },
    label,
  );
}

/** Applies `mutate` to a deep copy of `base` and expects `decode` to throw `code`. */
function rejectsMutation(
  decode: (x: unknown) => unknown,
  base: Json,
  mutate: (j: Json) => void,
  code: CryptoError['code'],
  label: string,
) {
  const j = clone(base);
  mutate(j);
  rejects(decode, j, code, label);
}

interface Codec {
  name: string;
  encode: () => Json;
  decode: (x: unknown) => unknown;
  reencode: (x: any) => Json;
  /** A hex field (path to it) to corrupt. */
  hexField: (j: Json) => [Json, string | number];
  /** A required field to delete. */
  required: string;
}

const CODECS: Codec[] = [
  {
    name: 'public_key_package (untweaked)',
    encode: () => encodePublicKeyPackage(dealer.public),
    decode: decodePublicKeyPackage,
    reencode: encodePublicKeyPackage,
    hexField: (j) => [j.commitments, 0],
    required: 'verifying_shares',
  },
  {
    name: 'public_key_package (DKG, BIP-86 tweak)',
    encode: () => encodePublicKeyPackage(dkg.keys[0]!.public),
    decode: decodePublicKeyPackage,
    reencode: encodePublicKeyPackage,
    hexField: (j) => [j.tweak, 'internal_key'],
    required: 'tweak',
  },
  {
    name: 'public_key_package (script-path tweak)',
    encode: () => encodePublicKeyPackage(tweakPublicKeyPackage(dealer.public, scriptRoot)),
    decode: decodePublicKeyPackage,
    reencode: encodePublicKeyPackage,
    hexField: (j) => [j.verifying_shares, '2'],
    required: 'commitments',
  },
  {
    name: 'key_package',
    encode: () => encodeKeyPackage(dealer.shares[2]!),
    decode: decodeKeyPackage,
    reencode: encodeKeyPackage,
    hexField: (j) => [j, 'signing_share'],
    required: 'identifier',
  },
  {
    name: 'key_package (tweaked)',
    encode: () => encodeKeyPackage(tweakedKey),
    decode: decodeKeyPackage,
    reencode: encodeKeyPackage,
    hexField: (j) => [j.public.tweak, 'merkle_root'],
    required: 'public',
  },
  {
    name: 'commitments',
    encode: () => encodeCommitments(round1[0]!.commitments),
    decode: decodeCommitments,
    reencode: encodeCommitments,
    hexField: (j) => [j, 'binding'],
    required: 'hiding',
  },
  {
    name: 'signing_package',
    encode: () => encodeSigningPackage(signingPackage),
    decode: decodeSigningPackage,
    reencode: encodeSigningPackage,
    hexField: (j) => [j.commitments[1], 'hiding'],
    required: 'message',
  },
  {
    name: 'signature_share',
    encode: () => encodeSignatureShare(sigShare),
    decode: decodeSignatureShare,
    reencode: encodeSignatureShare,
    hexField: (j) => [j, 'share'],
    required: 'share',
  },
  {
    name: 'dkg_round1',
    encode: () => encodeDkgRound1(dkg.round1[1]!),
    decode: decodeDkgRound1,
    reencode: encodeDkgRound1,
    hexField: (j) => [j, 'proof_of_knowledge'],
    required: 'proof_of_knowledge',
  },
  {
    name: 'dkg_round2',
    encode: () => encodeDkgRound2(dkg.round2[2]!),
    decode: decodeDkgRound2,
    reencode: encodeDkgRound2,
    hexField: (j) => [j, 'signing_share'],
    required: 'receiver',
  },
];

// ---------- tests ----------

describeEachBackend('encoding round trips', () => {
  for (const c of CODECS) {
    it(`${c.name}: encode → JSON → decode → encode is the identity`, () => {
      const first = c.encode();
      const text = JSON.stringify(first);
      const decoded = c.decode(JSON.parse(text));
      const again = c.reencode(decoded);
      assert.deepEqual(again, first);
      assert.equal(JSON.stringify(again), text);
    });
  }

  it('decoded objects equal the originals field by field', () => {
    const rt = <T>(enc: (x: T) => Json, dec: (x: unknown) => T, x: T) =>
      dec(JSON.parse(JSON.stringify(enc(x))));
    const pub = rt(encodePublicKeyPackage, decodePublicKeyPackage, dkg.keys[0]!.public);
    assert.equal(pub.threshold, 2);
    assert.equal(pub.n, 3);
    assert.deepEqual(pub.commitments.map(toHex), dkg.keys[0]!.public.commitments.map(toHex));
    assert.deepEqual(
      [...pub.verifyingShares].map(([k, v]) => [k, toHex(v)]),
      [...dkg.keys[0]!.public.verifyingShares].map(([k, v]) => [k, toHex(v)]).sort((a, b) => +a[0]! - +b[0]!),
    );
    const tweak = dkg.keys[0]!.public.tweak;
    assert.equal(pub.tweak.kind, 'taproot');
    if (pub.tweak.kind === 'taproot' && tweak.kind === 'taproot') {
      assert.equal(toHex(pub.tweak.internalKey), toHex(tweak.internalKey));
      assert.equal(pub.tweak.merkleRoot.length, 0);
    }
    const key = rt(encodeKeyPackage, decodeKeyPackage, tweakedKey);
    assert.equal(key.identifier, tweakedKey.identifier);
    assert.equal(toHex(key.signingShare), toHex(tweakedKey.signingShare));
    assert.equal(key.public.tweak.kind, 'taproot');
    if (key.public.tweak.kind === 'taproot')
      assert.equal(toHex(key.public.tweak.merkleRoot), toHex(scriptRoot));
    const sp = rt(encodeSigningPackage, decodeSigningPackage, signingPackage);
    assert.equal(toHex(sp.message), toHex(signingPackage.message));
    assert.deepEqual(
      sp.commitments.map((c) => [c.identifier, toHex(c.hiding), toHex(c.binding)]),
      signingPackage.commitments.map((c) => [c.identifier, toHex(c.hiding), toHex(c.binding)]),
    );
    const r1 = rt(encodeDkgRound1, decodeDkgRound1, dkg.round1[0]!);
    assert.deepEqual(r1.commitment.map(toHex), dkg.round1[0]!.commitment.map(toHex));
    assert.equal(toHex(r1.proofOfKnowledge), toHex(dkg.round1[0]!.proofOfKnowledge));
    const r2 = rt(encodeDkgRound2, decodeDkgRound2, dkg.round2[0]!);
    assert.deepEqual([r2.sender, r2.receiver], [dkg.round2[0]!.sender, dkg.round2[0]!.receiver]);
    assert.equal(toHex(r2.signingShare), toHex(dkg.round2[0]!.signingShare));
  });

  it('encodeSigningPackage sorts commitments by identifier', () => {
    const reversed = { ...signingPackage, commitments: [...signingPackage.commitments].reverse() };
    assert.deepEqual(encodeSigningPackage(reversed), encodeSigningPackage(signingPackage));
    assert.deepEqual(
      encodeSigningPackage(reversed).commitments.map((c) => c.identifier),
      [1, 2],
    );
  });
});

describeEachBackend('strict decoding: generic rules for every type', () => {
  for (const c of CODECS) {
    it(`${c.name}: version, type, field set and hex form`, () => {
      const base = c.encode();
      c.decode(clone(base)); // control: the unmodified encoding decodes

      rejectsMutation(c.decode, base, (j) => (j.v = 2), 'unsupported_version', 'v = 2');
      rejectsMutation(c.decode, base, (j) => (j.v = '1'), 'unsupported_version', 'v = "1"');
      rejectsMutation(c.decode, base, (j) => delete j.v, 'unsupported_version', 'no v');
      rejectsMutation(c.decode, base, (j) => (j.type = 'something_else'), 'invalid_encoding', 'wrong type');
      rejectsMutation(c.decode, base, (j) => (j.extra = 1), 'invalid_encoding', 'extra field');
      rejectsMutation(c.decode, base, (j) => delete j[c.required], 'invalid_encoding', 'missing field');
      for (const bad of [null, [], 'x', 1, undefined])
        rejects(c.decode, bad, 'invalid_encoding', `input ${bad}`);

      const field = (j: Json) => c.hexField(j);
      const set = (j: Json, f: (s: string) => string) => {
        const [o, k] = field(j);
        o[k] = f(o[k]);
      };
      rejectsMutation(
        c.decode,
        base,
        (j) => set(j, (s) => s.toUpperCase()),
        'invalid_encoding',
        'upper-case hex',
      );
      rejectsMutation(c.decode, base, (j) => set(j, (s) => `${s}0`), 'invalid_encoding', 'odd-length hex');
      rejectsMutation(
        c.decode,
        base,
        (j) => set(j, (s) => `${s}00`),
        'invalid_encoding',
        'one byte too long',
      );
      rejectsMutation(c.decode, base, (j) => set(j, (s) => `${s}zz`), 'invalid_encoding', 'non-hex chars');
      rejectsMutation(c.decode, base, (j) => set(j, (s) => `0x${s}`), 'invalid_encoding', '0x prefix');
      rejectsMutation(c.decode, base, (j) => set(j, () => 42 as any), 'invalid_encoding', 'number for hex');
    });
  }

  it('upper-case hex is rejected even where the upper-case string has letters only in the value', () => {
    const j = clone(encodeCommitments(round1[0]!.commitments));
    j.hiding = j.hiding.replace(/[a-f]/, (ch: string) => ch.toUpperCase());
    assert.notEqual(j.hiding, j.hiding.toLowerCase());
    rejects(decodeCommitments, j, 'invalid_encoding', 'one upper-case letter');
  });
});

describeEachBackend('strict decoding: points, scalars, identifiers', () => {
  const comm = encodeCommitments(round1[0]!.commitments);

  it('points: wrong length, off-curve x, 04 prefix, identity encodings', () => {
    // Sanity of the independent off-curve search: a square x^3+7 gives a valid point.
    decodeCommitments({ ...clone(comm), hiding: ON_CURVE_SMALL_X });
    rejects(decodeCommitments, { ...clone(comm), hiding: OFF_CURVE }, 'invalid_point', 'off-curve x');
    rejects(
      decodeCommitments,
      { ...clone(comm), binding: `03${OFF_CURVE.slice(2)}` },
      'invalid_point',
      '03 off-curve',
    );
    rejects(
      decodeCommitments,
      { ...clone(comm), hiding: `04${comm.hiding.slice(2)}` },
      'invalid_point',
      '04 prefix',
    );
    const uncompressed = toHex(secp256k1.Point.fromHex(comm.hiding).toBytes(false));
    assert.equal(uncompressed.length, 130);
    rejects(
      decodeCommitments,
      { ...clone(comm), hiding: uncompressed },
      'invalid_encoding',
      '65-byte 04 point',
    );
    rejects(
      decodeCommitments,
      { ...clone(comm), hiding: comm.hiding.slice(0, 64) },
      'invalid_encoding',
      'x-only',
    );
    rejects(decodeCommitments, { ...clone(comm), hiding: '00'.repeat(33) }, 'invalid_point', 'zero point');
    rejects(decodeCommitments, { ...clone(comm), hiding: `02${'ff'.repeat(32)}` }, 'invalid_point', 'x >= p');

    const pub = encodePublicKeyPackage(dealer.public);
    rejectsMutation(
      decodePublicKeyPackage,
      pub,
      (j) => (j.commitments[1] = OFF_CURVE),
      'invalid_point',
      'commitment',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      pub,
      (j) => (j.verifying_shares['3'] = OFF_CURVE),
      'invalid_point',
      'verifying share',
    );
    const tw = encodePublicKeyPackage(tweakPublicKeyPackage(dealer.public));
    rejectsMutation(
      decodePublicKeyPackage,
      tw,
      (j) => (j.tweak.internal_key = OFF_CURVE),
      'invalid_point',
      'internal key',
    );
    rejectsMutation(
      decodeDkgRound1,
      encodeDkgRound1(dkg.round1[0]!),
      (j) => (j.commitment[1] = OFF_CURVE),
      'invalid_point',
      'dkg commitment',
    );
  });

  it('scalars: n and values above are rejected; zero only where zero is allowed', () => {
    const key = encodeKeyPackage(dealer.shares[0]!);
    rejectsMutation(decodeKeyPackage, key, (j) => (j.signing_share = N_HEX), 'invalid_scalar', 'share = n');
    rejectsMutation(
      decodeKeyPackage,
      key,
      (j) => (j.signing_share = 'ff'.repeat(32)),
      'invalid_scalar',
      'share > n',
    );
    rejectsMutation(
      decodeKeyPackage,
      key,
      (j) => (j.signing_share = ZERO_HEX),
      'invalid_scalar',
      'share = 0',
    );
    // n - 1 is in range.
    const nMinus1 = (BigInt(`0x${N_HEX}`) - 1n).toString(16);
    const ok = clone(key);
    ok.signing_share = nMinus1;
    assert.equal(toHex((decodeKeyPackage(ok) as KeyPackage).signingShare), nMinus1);

    const r2 = encodeDkgRound2(dkg.round2[0]!);
    rejectsMutation(decodeDkgRound2, r2, (j) => (j.signing_share = N_HEX), 'invalid_scalar', 'round2 = n');
    rejectsMutation(decodeDkgRound2, r2, (j) => (j.signing_share = ZERO_HEX), 'invalid_scalar', 'round2 = 0');

    const share = encodeSignatureShare(sigShare);
    rejectsMutation(decodeSignatureShare, share, (j) => (j.share = N_HEX), 'invalid_scalar', 'sig share = n');
    // A signature share of zero is a valid scalar (it is simply wrong, which verifyShare decides).
    assert.equal(toHex(decodeSignatureShare({ ...clone(share), share: ZERO_HEX }).share), ZERO_HEX);
  });

  it('identifiers: 0, 256, 1.5, "1", -1, null are rejected', () => {
    const cases: [string, Codec['decode'], Json, (j: Json, v: unknown) => void][] = [
      ['commitments', decodeCommitments, comm, (j, v) => (j.identifier = v)],
      ['signature_share', decodeSignatureShare, encodeSignatureShare(sigShare), (j, v) => (j.identifier = v)],
      ['dkg_round1', decodeDkgRound1, encodeDkgRound1(dkg.round1[0]!), (j, v) => (j.identifier = v)],
      ['dkg_round2 sender', decodeDkgRound2, encodeDkgRound2(dkg.round2[0]!), (j, v) => (j.sender = v)],
      ['dkg_round2 receiver', decodeDkgRound2, encodeDkgRound2(dkg.round2[0]!), (j, v) => (j.receiver = v)],
      ['key_package', decodeKeyPackage, encodeKeyPackage(dealer.shares[0]!), (j, v) => (j.identifier = v)],
      [
        'signing_package',
        decodeSigningPackage,
        encodeSigningPackage(signingPackage),
        (j, v) => (j.commitments[0].identifier = v),
      ],
    ];
    for (const [name, decode, base, set] of cases) {
      for (const v of [0, 256, 1.5, '1', -1, null]) {
        rejectsMutation(
          decode,
          base,
          (j) => set(j, v),
          'invalid_identifier',
          `${name} identifier ${JSON.stringify(v)}`,
        );
      }
      // 255 is the largest identifier that passes the identifier rule.
      if (name !== 'key_package' && name !== 'signing_package') {
        const j = clone(base);
        set(j, 255);
        decode(j);
      }
    }
  });

  it('public key package: verifying share keys must be "1".."n"', () => {
    const pub = encodePublicKeyPackage(dealer.public);
    const rekey = (from: string, to: string) => (j: Json) => {
      j.verifying_shares[to] = j.verifying_shares[from];
      delete j.verifying_shares[from];
    };
    for (const k of ['0', '4', '01', '1.0', '+1', ' 1', '1e0', 'one', '']) {
      rejectsMutation(
        decodePublicKeyPackage,
        pub,
        rekey('1', k),
        'invalid_encoding',
        `key ${JSON.stringify(k)}`,
      );
    }
    // Three digits pass the key syntax and then fail the identifier range.
    rejectsMutation(decodePublicKeyPackage, pub, rekey('1', '256'), 'invalid_identifier', 'key "256"');
  });

  it('key package: identifier must be a member', () => {
    rejectsMutation(
      decodeKeyPackage,
      encodeKeyPackage(dealer.shares[0]!),
      (j) => (j.identifier = 4),
      'invalid_encoding',
      'identifier 4 of 3',
    );
  });
});

describeEachBackend('strict decoding: structure', () => {
  it('signing package: unsorted or duplicated commitments are rejected', () => {
    const base = encodeSigningPackage(signingPackage);
    rejectsMutation(
      decodeSigningPackage,
      base,
      (j) => j.commitments.reverse(),
      'invalid_encoding',
      'unsorted',
    );
    rejectsMutation(
      decodeSigningPackage,
      base,
      (j) => (j.commitments[1] = clone(j.commitments[0])),
      'invalid_identifier',
      'duplicate',
    );
    rejectsMutation(
      decodeSigningPackage,
      base,
      (j) => (j.commitments[1].identifier = 1),
      'invalid_identifier',
      'duplicate identifier, different points',
    );
    rejectsMutation(
      decodeSigningPackage,
      base,
      (j) => (j.commitments = {}),
      'invalid_encoding',
      'not an array',
    );
    rejectsMutation(
      decodeSigningPackage,
      base,
      (j) => (j.commitments[0].v = 2),
      'unsupported_version',
      'inner v',
    );
  });

  it('public key package: verifying share count must be n, commitment count must be threshold', () => {
    const base = encodePublicKeyPackage(dealer.public);
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => delete j.verifying_shares['2'],
      'invalid_encoding',
      'n-1 shares',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => {
        j.n = 4;
      },
      'invalid_encoding',
      'n = 4 with 3 shares',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => (j.verifying_shares['4'] = j.verifying_shares['1']),
      'invalid_encoding',
      'n+1 shares',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => j.commitments.pop(),
      'invalid_encoding',
      'threshold-1 commitments',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => j.commitments.push(j.commitments[0]),
      'invalid_encoding',
      'threshold+1 commitments',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => (j.threshold = 3),
      'invalid_encoding',
      'threshold 3, 2 commitments',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => (j.threshold = 4),
      'invalid_encoding',
      'threshold > n',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => (j.threshold = 1),
      'invalid_encoding',
      'threshold 1',
    );
    rejectsMutation(decodePublicKeyPackage, base, (j) => (j.n = 2.5), 'invalid_encoding', 'n 2.5');
    rejectsMutation(
      decodePublicKeyPackage,
      base,
      (j) => (j.verifying_shares = []),
      'invalid_encoding',
      'array shares',
    );
  });

  it('tweak: only {kind:none} or {kind:taproot, internal_key, merkle_root (0 or 32 bytes)}', () => {
    const none = encodePublicKeyPackage(dealer.public);
    const tap = encodePublicKeyPackage(tweakPublicKeyPackage(dealer.public, scriptRoot));
    rejectsMutation(
      decodePublicKeyPackage,
      none,
      (j) => (j.tweak = { kind: 'none', x: 1 }),
      'invalid_encoding',
      'none+x',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      none,
      (j) => (j.tweak = { kind: 'other' }),
      'invalid_encoding',
      'kind',
    );
    rejectsMutation(decodePublicKeyPackage, none, (j) => (j.tweak = null), 'invalid_encoding', 'null');
    rejectsMutation(
      decodePublicKeyPackage,
      tap,
      (j) => (j.tweak.merkle_root = j.tweak.merkle_root.slice(2)),
      'invalid_encoding',
      '31-byte root',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      tap,
      (j) => (j.tweak.extra = ''),
      'invalid_encoding',
      'taproot+extra',
    );
    rejectsMutation(
      decodePublicKeyPackage,
      tap,
      (j) => delete j.tweak.merkle_root,
      'invalid_encoding',
      'no root',
    );
  });

  it('dkg round 1: commitment must be an array of 2..255 points, proof 64 bytes', () => {
    const base = encodeDkgRound1(dkg.round1[0]!);
    rejectsMutation(
      decodeDkgRound1,
      base,
      (j) => (j.commitment = j.commitment.slice(0, 1)),
      'invalid_encoding',
      '1',
    );
    rejectsMutation(decodeDkgRound1, base, (j) => (j.commitment = []), 'invalid_encoding', 'empty');
    rejectsMutation(
      decodeDkgRound1,
      base,
      (j) => (j.commitment = j.commitment[0]),
      'invalid_encoding',
      'string',
    );
    rejectsMutation(
      decodeDkgRound1,
      base,
      (j) => (j.proof_of_knowledge = j.proof_of_knowledge.slice(2)),
      'invalid_encoding',
      '63-byte proof',
    );
  });
});

describeEachBackend('error messages never echo secrets', () => {
  const key = dealer.shares[0]!;
  const secretHex = toHex(key.signingShare);

  const failures: [string, (j: Json) => void][] = [
    ['extra field', (j) => (j.extra = true)],
    ['wrong version', (j) => (j.v = 9)],
    ['non-member identifier', (j) => (j.identifier = 7)],
    ['identifier 0', (j) => (j.identifier = 0)],
    ['off-curve commitment', (j) => (j.public.commitments[0] = OFF_CURVE)],
    [
      'bad verifying share',
      (j) => (j.public.verifying_shares['1'] = j.public.verifying_shares['1'].toUpperCase()),
    ],
    ['missing public', (j) => delete j.public],
    ['upper-case share', (j) => (j.signing_share = j.signing_share.toUpperCase())],
    ['share with a trailing byte', (j) => (j.signing_share = `${j.signing_share}00`)],
    ['share with an odd nibble', (j) => (j.signing_share = `${j.signing_share}0`)],
    ['share missing a byte', (j) => (j.signing_share = j.signing_share.slice(2))],
    ['share with a non-hex char', (j) => (j.signing_share = `${j.signing_share.slice(0, 63)}g`)],
  ];

  for (const [name, mutate] of failures) {
    it(`key package with ${name}`, () => {
      const j = clone(encodeKeyPackage(key));
      mutate(j);
      let caught: unknown;
      try {
        decodeKeyPackage(j);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof CryptoError, 'decoding must fail with a CryptoError');
      for (const text of [caught.message, String(caught), caught.stack ?? '', JSON.stringify(caught)]) {
        const lower = text.toLowerCase();
        assert.ok(!lower.includes(secretHex), `${name}: message contains the share`);
        assert.ok(!lower.includes(secretHex.slice(0, 16)), `${name}: message contains part of the share`);
      }
    });
  }

  it('a round-2 package with a bad share does not echo it', () => {
    const r2 = clone(encodeDkgRound2(dkg.round2[0]!));
    const hex = r2.signing_share as string;
    r2.signing_share = hex.toUpperCase();
    try {
      decodeDkgRound2(r2);
      assert.fail('expected a failure');
    } catch (e) {
      assert.ok(e instanceof CryptoError);
      assert.ok(!e.message.toLowerCase().includes(hex.slice(0, 16)));
    }
  });
});
