/**
 * Transport-neutral halves of one signed request/response exchange between a coordinator
 * and a signer: what the caller sends, and how it accepts what comes back. The HTTP
 * adapters (signer server, coordinator's signer client) only move these bytes.
 */
import type { Static } from '@sinclair/typebox';
import type { NodeIdentity } from '../crypto/identity.js';
import { ENVELOPE_HEADER, type Envelope, encodeEnvelope, openEnvelope, sealEnvelope } from './envelope.js';
import { FloeError, fromProblem } from './errors.js';
import { type MessageSpec, responseType } from './messages/index.js';
import { parseWith } from './schema.js';

export interface PreparedRequest {
  path: string;
  body: string;
  headers: Record<string, string>;
  /** The request envelope's nonce: the response must carry it as `re`. */
  nonce: string;
}

export function prepareRequest<S extends MessageSpec>(
  spec: S,
  body: Static<S['request']>,
  o: { identity: NodeIdentity; to: string; now: number },
): PreparedRequest {
  const text = JSON.stringify(parseWith(spec.request, body, spec.type));
  const env = sealEnvelope({ ...o, type: spec.type, body: text });
  return {
    path: spec.path,
    body: text,
    headers: { 'content-type': 'application/json', [ENVELOPE_HEADER]: encodeEnvelope(env) },
    nonce: env.nonce,
  };
}

export interface RawResponse {
  status: number;
  /** The `floe-envelope` header, if any. */
  envelope: string | undefined;
  text: string;
}

/**
 * Accept a signer's response: the envelope must be signed by the expected signer, to us,
 * answer our request, and cover the exact body. A signed error is returned as the
 * signer's FloeError; an unsigned or mis-signed answer is `response_unverified`.
 */
export function acceptResponse<S extends MessageSpec>(
  spec: S,
  res: RawResponse,
  o: { self: string; peer: string; re: string; now: number; windowMs?: number },
): Static<S['response']> {
  let parsed: unknown;
  try {
    openEnvelope(res.envelope, {
      body: res.text,
      self: o.self,
      isAllowedSender: (from) => from === o.peer,
      type: responseType(spec.type),
      now: o.now,
      re: o.re,
      ...(o.windowMs === undefined ? {} : { windowMs: o.windowMs }),
    });
    parsed = JSON.parse(res.text);
  } catch (e) {
    // Unsigned, signed by someone else, or not bound to our request: nothing here is the
    // signer's word, so it proves nothing against it (an on-path attacker can produce this).
    const why = e instanceof FloeError ? e.code : 'unreadable body';
    throw new FloeError('response_unverified', `signer response not accepted (${why}, HTTP ${res.status})`);
  }
  if (res.status < 200 || res.status >= 300) throw fromProblem(parsed, res.status);
  try {
    return parseWith(spec.response, parsed, `${spec.type} response`);
  } catch (e) {
    throw new FloeError('signer_fault', e instanceof Error ? e.message : 'bad response');
  }
}

/** Signer side: seal a response body (success or problem) to the requester. */
export function sealResponse(
  type: string,
  text: string,
  o: { identity: NodeIdentity; to: string; re: string; now: number },
): Envelope {
  return sealEnvelope({ ...o, type: responseType(type), body: text });
}
