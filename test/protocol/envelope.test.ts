import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateIdentityKey, type NodeIdentity, softwareIdentity } from '../../src/crypto/index.js';
import {
  acceptResponse,
  type Envelope,
  FloeError,
  openEnvelope,
  prepareRequest,
  problemOf,
  ReplayGuard,
  SIGNER_MESSAGES,
  sealEnvelope,
  sealResponse,
} from '../../src/protocol/index.js';

const coord = softwareIdentity(generateIdentityKey());
const signer = softwareIdentity(generateIdentityKey());
const stranger = softwareIdentity(generateIdentityKey());
const pub = (k: NodeIdentity) => k.publicKeyHex;
const NOW = 1_800_000_000_000;
const body = JSON.stringify({ session_id: 's1' });

function seal(
  over: Partial<{ identity: NodeIdentity; to: string; type: string; now: number; body: string }> = {},
) {
  return sealEnvelope({
    identity: over.identity ?? coord,
    to: over.to ?? pub(signer),
    type: over.type ?? 'sign.abort',
    body: over.body ?? body,
    now: over.now ?? NOW,
  });
}

function open(
  env: unknown,
  over: Partial<{ body: string; now: number; replay: ReplayGuard; type: string }> = {},
) {
  return openEnvelope(JSON.stringify(env), {
    body: over.body ?? body,
    self: pub(signer),
    isAllowedSender: (from) => from === pub(coord),
    type: over.type ?? 'sign.abort',
    now: over.now ?? NOW,
    replay: over.replay ?? new ReplayGuard(60_000),
  });
}

function refuses(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof FloeError && e.code === code, `expected ${code}`);
}

describe('signed envelope', () => {
  it('a valid envelope verifies and yields its header', () => {
    const env = seal();
    const h = open(env);
    assert.equal(h.from, pub(coord));
    assert.equal(h.to, pub(signer));
    assert.equal(h.type, 'sign.abort');
  });

  it('a forged signature is refused', () => {
    const env = seal();
    const sig = env.sig.split('');
    sig[10] = sig[10] === '0' ? '1' : '0';
    refuses(() => open({ ...env, sig: sig.join('') }), 'envelope_bad_signature');
    // Signed by someone else but claiming to be the coordinator.
    const other = seal({ identity: stranger });
    refuses(() => open({ ...other, from: pub(coord) }), 'envelope_bad_signature');
  });

  it('any change to a signed header field breaks the signature', () => {
    const env = seal();
    for (const [k, v] of [
      ['ts', NOW + 1],
      ['nonce', '00'.repeat(16)],
      ['type', 'sign.abort'],
    ] as const) {
      if (env[k as keyof Envelope] === v) continue;
      refuses(() => open({ ...env, [k]: v }), 'envelope_bad_signature');
    }
  });

  it('a wrong recipient is refused', () => {
    refuses(() => open(seal({ to: pub(stranger) })), 'envelope_wrong_recipient');
  });

  it('a sender not on the allowlist is refused', () => {
    refuses(() => open(seal({ identity: stranger })), 'envelope_unknown_sender');
  });

  it('a stale timestamp and a future timestamp are refused with their own codes', () => {
    refuses(() => open(seal({ now: NOW - 60_001 })), 'envelope_stale');
    refuses(() => open(seal({ now: NOW + 60_001 })), 'envelope_future');
    // Inside the window on both sides is fine.
    open(seal({ now: NOW - 59_000 }));
    open(seal({ now: NOW + 59_000 }));
  });

  it('a replayed nonce is refused', () => {
    const guard = new ReplayGuard(60_000);
    const env = seal();
    open(env, { replay: guard });
    refuses(() => open(env, { replay: guard }), 'envelope_replay');
    // A fresh envelope with the same body is fine.
    open(seal(), { replay: guard });
  });

  it('a tampered body is refused', () => {
    refuses(() => open(seal(), { body: JSON.stringify({ session_id: 's2' }) }), 'envelope_body_mismatch');
  });

  it('a signed body cannot be replayed at another message type', () => {
    refuses(() => open(seal(), { type: 'sign.round2' }), 'envelope_wrong_type');
  });

  it('malformed envelopes are refused', () => {
    refuses(
      () =>
        openEnvelope(undefined, {
          body,
          self: pub(signer),
          isAllowedSender: () => true,
          type: 'x',
          now: NOW,
        }),
      'envelope_malformed',
    );
    refuses(
      () =>
        openEnvelope('{nope', { body, self: pub(signer), isAllowedSender: () => true, type: 'x', now: NOW }),
      'envelope_malformed',
    );
    refuses(() => open({ ...seal(), extra: 1 }), 'envelope_malformed');
    refuses(() => open({ ...seal(), from: 'AB'.repeat(32) }), 'envelope_malformed');
  });

  it('the replay guard remembers a nonce for as long as its timestamp stays inside the window (injected clock)', () => {
    const guard = new ReplayGuard(60_000);
    // Stamped 55 s ago: accepted now, replayed 4 s later (still inside its window) → refused.
    const past = seal({ now: NOW - 55_000 });
    open(past, { replay: guard, now: NOW });
    // Other traffic in between makes the guard sweep.
    for (let i = 1; i <= 3; i++) open(seal({ now: NOW + i * 1000 }), { replay: guard, now: NOW + i * 1000 });
    refuses(() => open(past, { replay: guard, now: NOW + 4_000 }), 'envelope_replay');
    // Up to the last millisecond of its window, then it is simply stale.
    refuses(() => open(past, { replay: guard, now: NOW + 5_000 }), 'envelope_replay');
    refuses(() => open(past, { replay: guard, now: NOW + 5_001 }), 'envelope_stale');

    // Stamped 55 s ahead of our clock: valid until 115 s from now, remembered as long.
    const ahead = seal({ now: NOW + 55_000 });
    open(ahead, { replay: guard, now: NOW });
    for (const later of [NOW + 30_000, NOW + 61_000, NOW + 100_000, NOW + 115_000]) {
      open(seal({ now: later }), { replay: guard, now: later });
      refuses(() => open(ahead, { replay: guard, now: later }), 'envelope_replay');
    }
    refuses(() => open(ahead, { replay: guard, now: NOW + 115_001 }), 'envelope_stale');
  });

  it('a signer refuses envelopes stamped before it started (notBefore), with envelope_stale', () => {
    const started = NOW - 10_000;
    const opts = (env: unknown) =>
      openEnvelope(JSON.stringify(env), {
        body,
        self: pub(signer),
        isAllowedSender: (from) => from === pub(coord),
        type: 'sign.abort',
        now: NOW,
        notBefore: started,
      });
    refuses(() => opts(seal({ now: started - 1 })), 'envelope_stale');
    opts(seal({ now: started }));
    opts(seal({ now: NOW }));
  });

  it('the replay guard forgets entries only after the window', () => {
    const g = new ReplayGuard(1000);
    assert.ok(g.check('a', 0, 0));
    assert.equal(g.check('a', 0, 900), false);
    g.sweep(5000);
    assert.equal(g.size, 0);
  });
});

describe('request/response exchange', () => {
  const spec = SIGNER_MESSAGES.signAbort;

  function roundTrip(mutate?: (r: { status: number; envelope: string; text: string }) => void, re?: string) {
    const req = prepareRequest(spec, { session_id: 's1' }, { identity: coord, to: pub(signer), now: NOW });
    // signer side
    const h = openEnvelope(req.headers['floe-envelope'], {
      body: req.body,
      self: pub(signer),
      isAllowedSender: (f) => f === pub(coord),
      type: spec.type,
      now: NOW,
    });
    const text = JSON.stringify({ session_id: 's1', aborted: 1 });
    const env = sealResponse(spec.type, text, { identity: signer, to: h.from, re: h.nonce, now: NOW });
    const raw = { status: 200, envelope: JSON.stringify(env), text };
    mutate?.(raw);
    return acceptResponse(spec, raw, { self: pub(coord), peer: pub(signer), re: re ?? req.nonce, now: NOW });
  }

  it('a signed response to our request is accepted and validated', () => {
    assert.deepEqual(roundTrip(), { session_id: 's1', aborted: 1 });
  });

  it('a response to another request, a tampered or unsigned response is a signer fault', () => {
    refuses(() => roundTrip(undefined, 'ff'.repeat(16)), 'response_unverified');
    refuses(() => roundTrip((r) => (r.text = r.text.replace('1', '2'))), 'response_unverified');
    refuses(() => roundTrip((r) => (r.envelope = '')), 'response_unverified');
  });

  it('a signed error response becomes the signer FloeError', () => {
    const req = prepareRequest(spec, { session_id: 's1' }, { identity: coord, to: pub(signer), now: NOW });
    const text = JSON.stringify(problemOf('consumed_nonce_replay', 'already signed'));
    const env = sealResponse(spec.type, text, { identity: signer, to: pub(coord), re: req.nonce, now: NOW });
    refuses(
      () =>
        acceptResponse(
          spec,
          { status: 409, envelope: JSON.stringify(env), text },
          {
            self: pub(coord),
            peer: pub(signer),
            re: req.nonce,
            now: NOW,
          },
        ),
      'consumed_nonce_replay',
    );
  });

  it('prepareRequest validates the body against the message schema', () => {
    refuses(
      () =>
        prepareRequest(spec, { session_id: 's1', extra: 1 } as never, {
          identity: coord,
          to: pub(signer),
          now: NOW,
        }),
      'invalid_request',
    );
  });
});
