/**
 * The user key behind a bunker (the `BunkerBackend` of src/nostr/bunker.ts) in Floe: nothing
 * here holds it. `sign_event` is an ordinary signing session of the key (a `nostr_event`
 * intent through `SessionService.create`, so it is listed in GET /v1/sessions, audited and
 * blamed like any other), created by a system principal of the key's tenant whose `created_by`
 * names the bunker client (`bunker:<client pubkey>`); `nip04_*`/`nip44_*` use threshold ECDH
 * on the signers (`EcdhService.sharedX`); the pubkey is the key's x-only key.
 */
import type { Principal } from '../../domain/records.js';
import type { BunkerBackend } from '../../nostr/bunker.js';
import type { EventTemplate, NostrEvent } from '../../nostr/event.js';
import type { SessionObject } from '../../protocol/api.js';
import { FloeError, isErrorCode } from '../../protocol/errors.js';
import type { SessionService } from '../services/sessions.js';

/** Threshold ECDH, as `EcdhService` (src/coordinator/services/ecdh.ts) offers it. */
export interface SharedXSource {
  /** The 32-byte x of ECDH(the key, peer), computed by the key's signers. */
  sharedX(tenantId: string, keyId: string, peerXOnlyHex: string): Promise<Uint8Array>;
}

export interface FloeBunkerBackendOptions {
  tenantId: string;
  keyId: string;
  /** The key's x-only public key (hex). */
  xOnlyPublicKey: string;
  sessions: SessionService;
  /** The coordinator's threshold ECDH, when it has one. */
  ecdh: () => SharedXSource | undefined;
  /** How long a sign_event waits for its session (ms, at most 120 000). */
  signWaitMs: number;
  /** Audit of the session a client's request became (never the event's content). */
  audit: (kind: string, subjectType: string, subjectId: string, data: unknown) => void;
}

/** The principal a bunker client signs as: its tenant, the requester role, itself named. */
export function bunkerPrincipal(tenantId: string, client: string): Principal {
  return { tenantId, role: 'requester', tokenId: `bunker:${client}` };
}

/** The error a client gets for a session that did not end with a signature. */
export function sessionRefusal(s: SessionObject): FloeError {
  if (s.status === 'failed' || s.status === 'expired') {
    const code = s.error_code !== null && isErrorCode(s.error_code) ? s.error_code : 'session_failed';
    return new FloeError(code, `signing session ${s.id} ${s.status}: ${s.error_message ?? s.status}`);
  }
  if (s.status === 'awaiting_approval') {
    return new FloeError('approval_missing', `signing session ${s.id} awaits its stewards' approval`);
  }
  return new FloeError('unavailable', `signing session ${s.id} did not complete in time (${s.status})`);
}

export class FloeBunkerBackend implements BunkerBackend {
  constructor(private readonly o: FloeBunkerBackendOptions) {}

  userPubkey(): string {
    return this.o.xOnlyPublicKey;
  }

  async signEvent(t: EventTemplate, client: string): Promise<NostrEvent> {
    const p = bunkerPrincipal(this.o.tenantId, client);
    const { session } = await this.o.sessions.create(
      p,
      {
        key_id: this.o.keyId,
        nostr_event: { kind: t.kind, content: t.content, tags: t.tags, created_at: t.created_at },
        wait: this.o.signWaitMs,
      },
      undefined,
    );
    this.o.audit('bunker.session', 'session', session.id, {
      key_id: this.o.keyId,
      client,
      kind: t.kind,
      status: session.status,
    });
    if (session.status === 'completed' && session.event) return session.event;
    if (session.status !== 'failed' && session.status !== 'expired') {
      // the client is told it failed, so the session must not complete behind its back; if it
      // completed in the meantime, the client gets the event after all
      try {
        await this.o.sessions.cancel(p, session.id);
      } catch {
        const now = await this.o.sessions.get(p, session.id);
        if (now.status === 'completed' && now.event) return now.event;
        throw sessionRefusal(now);
      }
    }
    throw sessionRefusal(session);
  }

  async ecdh(peerXOnly: string, _client: string): Promise<Uint8Array> {
    const e = this.o.ecdh();
    if (!e) {
      throw new FloeError('unavailable', 'threshold ECDH is not available on this coordinator', {
        hint: 'nip04_* and nip44_* need the signers’ threshold ECDH (EcdhService)',
      });
    }
    return e.sharedX(this.o.tenantId, this.o.keyId, peerXOnly);
  }
}
