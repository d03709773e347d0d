/**
 * The crypto backend seam (DESIGN §10). Every piece of elliptic-curve arithmetic in Floe goes
 * through one {@link CurveBackend}; FROST, DKG, dealer split, tweaks, BIP-340, boxes and
 * identity keys are written over it. Three implementations:
 *
 *   native  libsecp256k1 through N-API (npm `secp256k1` 5.x, its prebuilt binary; never its
 *           pure-JS `elliptic` fallback, which is refused)
 *   wasm    libsecp256k1 compiled to WebAssembly (npm `tiny-secp256k1`)
 *   noble   `@noble/curves`, the reference every backend is tested against
 *
 * One is chosen when this module is first imported: native, else wasm (saying why), else noble;
 * `FLOE_CRYPTO_BACKEND=native|wasm|noble` forces one and refuses to start if it cannot load.
 *
 * Rules every backend keeps: secret scalars reach points only through {@link CurveBackend.mulBase},
 * {@link CurveBackend.ecdh} or {@link CurveBackend.mulSecret} (constant time); the variable-time operations
 * ({@link CurveBackend.mulPublic}, {@link CurveBackend.mulBaseAddPublic}) only ever see public
 * scalars (binding factors, challenges, Lagrange coefficients, identifiers, signature shares).
 */
import { loadNative } from './backend-native.js';
import { loadNoble } from './backend-noble.js';
import { loadWasm } from './backend-wasm.js';

export const BACKEND_NAMES = ['native', 'wasm', 'noble'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

declare const pointBrand: unique symbol;
/**
 * A valid secp256k1 point other than the identity, in the representation of the backend that
 * made it. Opaque: only the backend that made it may use it.
 */
export type BPoint = { readonly [pointBrand]: true };

/** Elliptic-curve operations on secp256k1. Scalars are 32-byte big-endian. */
export interface CurveBackend {
  readonly name: BackendName;
  /** Library and version, for logs and /healthz. */
  readonly description: string;

  /** Decompress and validate a 33-byte compressed point; `what` names it in the error. */
  decode(compressed: Uint8Array, what: string): BPoint;
  /** BIP-340 lift_x: the point with this x coordinate and an even Y. */
  liftX(x: Uint8Array, what: string): BPoint;
  /** Compress (33 bytes). */
  encode(p: BPoint): Uint8Array;
  hasEvenY(p: BPoint): boolean;
  equals(a: BPoint, b: BPoint): boolean;
  negate(p: BPoint): BPoint;
  /** a + b, or null for the identity. */
  add(a: BPoint, b: BPoint): BPoint | null;
  /** Sum of the points (null for the identity or an empty list). */
  sum(points: readonly BPoint[]): BPoint | null;

  /** k·G in constant time; k secret allowed, 0 < k < n (else invalid_scalar). */
  mulBase(k: Uint8Array): BPoint;
  /** k·P in variable time: PUBLIC scalars only; 0 < k < n (else invalid_scalar). */
  mulPublic(p: BPoint, k: Uint8Array): BPoint;
  /** a·G + b·P in variable time: PUBLIC scalars only; 0 <= a, b < n; null for the identity. */
  mulBaseAddPublic(a: Uint8Array, p: BPoint, b: Uint8Array): BPoint | null;
  /**
   * Σ k_i·P_i in variable time (multi-scalar multiplication, PUBLIC scalars only) over 33-byte
   * compressed points, each validated (errors name `${what} ${i}`); an undefined scalar is 1,
   * a zero scalar drops its term. Null for the identity. The FROST group commitment
   * R = Σ D_i + Σ ρ_i·E_i is one call.
   */
  msmPublic(
    points: readonly Uint8Array[],
    scalars: readonly (Uint8Array | undefined)[],
    what: string,
  ): BPoint | null;

  /** x(d·lift_x(peerX)) in constant time (32 bytes); d secret, 0 < d < n. */
  ecdh(secret: Uint8Array, peerX: Uint8Array): Uint8Array;
  /**
   * k·P as a full point, with k SECRET (0 < k < n, else invalid_scalar): the multiplication
   * runs in time independent of k. For proofs about a secret key (`dleq.ts`: the commitment k·P
   * and the whole ECDH point d·P, whose Y {@link ecdh} does not give). Its result is meant to be
   * published (in a proof, or revealed by a complaint): the wasm backend may take time that
   * depends on the result point, never otherwise on k.
   *
   *   native  libsecp256k1's ECDH (secp256k1_ecmult_const) with a hash function returning x‖y
   *   noble   Point.multiply (constant-time wNAF with fake additions)
   *   wasm    tiny-secp256k1 has none: x(k·P) and x((k+1)·P) from node:crypto (OpenSSL's
   *           constant-time ladder), the Y parity chosen as the one for which x(±S + P) is the
   *           latter (see backend-wasm.ts)
   */
  mulSecret(p: BPoint, k: Uint8Array): BPoint;
  /**
   * BIP-340 signature of `msg` (any length) with 32 bytes of auxiliary randomness, always under
   * `secret`'s own key. `publicKey`, the compressed secret·G when the caller already holds it,
   * saves a backend that computes the key itself a base multiplication (native); the others
   * ignore it. A backend that uses it verifies the result under it: a wrong one throws
   * invalid_signature, never a bad signature.
   */
  schnorrSign(msg: Uint8Array, secret: Uint8Array, aux: Uint8Array, publicKey?: Uint8Array): Uint8Array;
  /** BIP-340 verification; false (never a throw) on any malformed input. */
  schnorrVerify(sig: Uint8Array, msg: Uint8Array, xOnlyPub: Uint8Array): boolean;
}

/** What was chosen at start-up and why, for the logs, /healthz and /metrics. */
export interface BackendInfo {
  name: BackendName;
  description: string;
  /** Why this backend (e.g. "native unavailable: …; using wasm"). */
  reason: string;
}

const LOADERS: Record<BackendName, () => CurveBackend> = {
  native: loadNative,
  wasm: loadWasm,
  noble: loadNoble,
};

const loaded = new Map<BackendName, CurveBackend | Error>();

function tryLoad(name: BackendName): CurveBackend | Error {
  let r = loaded.get(name);
  if (r === undefined) {
    try {
      r = LOADERS[name]();
    } catch (e) {
      r = e instanceof Error ? e : new Error(String(e));
    }
    loaded.set(name, r);
  }
  return r;
}

export const BACKEND_ENV = 'FLOE_CRYPTO_BACKEND';

function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

/** A backend by name; throws an Error saying why it cannot load. */
export function loadBackend(name: BackendName): CurveBackend {
  const r = tryLoad(name);
  if (r instanceof Error) throw new Error(`crypto backend ${name} unavailable: ${r.message}`);
  return r;
}

/** Names of the backends that load on this machine. */
export function availableBackends(): BackendName[] {
  return BACKEND_NAMES.filter((n) => !(tryLoad(n) instanceof Error));
}

/**
 * The start-up choice: the backend `env` (FLOE_CRYPTO_BACKEND) forces, else native, else wasm,
 * else noble, with the reason. `load` returns a backend or the Error that kept it from loading.
 */
export function chooseBackend(
  env: string | undefined,
  load: (name: BackendName) => CurveBackend | Error,
): { backend: CurveBackend; reason: string } {
  if (env !== undefined && env !== '') {
    if (!isBackendName(env)) {
      throw new Error(`${BACKEND_ENV}=${env}: expected one of ${BACKEND_NAMES.join(', ')}`);
    }
    const r = load(env);
    if (r instanceof Error) throw new Error(`${BACKEND_ENV}=${env}, but it cannot load: ${r.message}`);
    return { backend: r, reason: `forced by ${BACKEND_ENV}` };
  }
  const native = load('native');
  if (!(native instanceof Error)) return { backend: native, reason: 'default' };
  const wasm = load('wasm');
  if (!(wasm instanceof Error)) {
    return { backend: wasm, reason: `native unavailable: ${native.message}; using wasm` };
  }
  const noble = load('noble');
  if (noble instanceof Error) throw new Error(`no crypto backend loads: ${noble.message}`);
  return {
    backend: noble,
    reason: `native unavailable: ${native.message}; wasm unavailable: ${wasm.message}; using noble`,
  };
}

const chosen = chooseBackend(process.env[BACKEND_ENV], tryLoad);
let active: CurveBackend = chosen.backend;
const startInfo: BackendInfo = {
  name: chosen.backend.name,
  description: chosen.backend.description,
  reason: chosen.reason,
};

/** The active backend. */
export function cryptoBackend(): CurveBackend {
  return active;
}

/** The backend chosen at start-up, what it is, and why it was chosen. */
export function backendInfo(): BackendInfo {
  return active.name === startInfo.name
    ? { ...startInfo }
    : { name: active.name, description: active.description, reason: 'selected with useBackend()' };
}

/**
 * Make `name` the active backend (tests and benchmarks run suites on every backend this way);
 * returns the previously active name.
 */
export function useBackend(name: BackendName): BackendName {
  const prev = active.name;
  active = loadBackend(name);
  return prev;
}

/** Run `fn` with `name` active, then restore the previous backend. */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  const prev = useBackend(name);
  try {
    return fn();
  } finally {
    useBackend(prev);
  }
}
