/**
 * Talks to one signer node: seals each request in an envelope signed by the coordinator's
 * identity, and accepts only answers signed by that signer and bound to the request.
 */
import type { NodeIdentity } from '../crypto/identity.js';
import type { SignedAnswer } from '../protocol/blame.js';
import { ENVELOPE_HEADER } from '../protocol/envelope.js';
import { FloeError } from '../protocol/errors.js';
import { acceptResponse, prepareRequest } from '../protocol/exchange.js';
import {
  type RequestOf,
  type ResponseOf,
  SIGNER_MESSAGES,
  type SignerMessageName,
} from '../protocol/messages/index.js';
import { postToSigner, type SignerAnswer, SignerTimeoutError } from './signer-http.js';

export interface SignerClientOptions {
  /** Base URL, e.g. http://127.0.0.1:7101 */
  url: string;
  /** The signer's identity key, x-only hex (from the registry). */
  signerIdentity: string;
  /** The coordinator's identity (signs every request envelope). */
  identity: NodeIdentity;
  timeoutMs?: number;
  now?: () => number;
}

export class SignerClient {
  readonly url: string;
  readonly signerIdentity: string;
  private readonly identity: NodeIdentity;
  private readonly self: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(o: SignerClientOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.signerIdentity = o.signerIdentity;
    this.identity = o.identity;
    this.self = o.identity.publicKeyHex;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  async call<K extends SignerMessageName>(
    name: K,
    body: RequestOf<K>,
    timeoutMs?: number,
  ): Promise<ResponseOf<K>> {
    return (await this.exchange(name, body, timeoutMs)).body;
  }

  /**
   * One signed exchange, with the signer's signed answer kept as evidence (its envelope and
   * the exact body bytes): what a third party needs to check a blame (src/protocol/blame.ts).
   */
  async exchange<K extends SignerMessageName>(
    name: K,
    body: RequestOf<K>,
    timeoutMs?: number,
  ): Promise<{ body: ResponseOf<K>; evidence: SignedAnswer }> {
    const spec = SIGNER_MESSAGES[name];
    const req = prepareRequest(spec, body as never, {
      identity: this.identity,
      to: this.signerIdentity,
      now: this.now(),
    });
    let res: SignerAnswer;
    try {
      res = await postToSigner(`${this.url}${req.path}`, req.headers, req.body, timeoutMs ?? this.timeoutMs);
    } catch (e) {
      const why = e instanceof SignerTimeoutError ? 'timed out' : 'connection failed';
      throw new FloeError('signer_unreachable', `signer at ${this.url} ${why}`);
    }
    const { text } = res;
    const header = res.headers[ENVELOPE_HEADER];
    const envelope = typeof header === 'string' ? header : undefined;
    const parsed = acceptResponse(
      spec,
      { status: res.status, envelope, text },
      { self: this.self, peer: this.signerIdentity, re: req.nonce, now: this.now() },
    ) as ResponseOf<K>;
    return { body: parsed, evidence: { signer: this.signerIdentity, envelope: envelope!, body: text } };
  }

  /** Unauthenticated liveness probe. */
  async healthz(timeoutMs = 3000): Promise<{ status: string; identity: string; version: string }> {
    try {
      const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) throw new Error(String(res.status));
      return (await res.json()) as { status: string; identity: string; version: string };
    } catch {
      throw new FloeError('signer_unreachable', `signer at ${this.url} is not healthy`);
    }
  }
}
