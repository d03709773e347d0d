/**
 * Bitcoin addresses (DESIGN §14, seed 004): the two ways Floe gives one, both regenerable.
 *
 * - Per passphrase (`createForPassphrase`): the passphrase gets a key of its own, made by a
 *   deterministic DKG over the configured signers (config `address_threshold`, `address_signers`).
 *   Every signer seeds its polynomial from an HMAC in its HSM over the key group and a
 *   *passphrase id*; the address is the key's BIP-86 output (the DKG key is already tweaked, so
 *   the output key is its x_only_public_key). Same passphrase, same signers' HSM keys and the
 *   same address secret: same key, on any rebuild. A repeated request answers from the database.
 * - Derived (`derived`, `descriptor`, `deriveForPassphrase`): non-hardened BIP-32 children of one
 *   key's root xpub (group key K, chain code keyChainCode(K)), receive m/0/i and change m/1/i, or
 *   a passphrase mapped to a four-step path (passphrasePath). No signer round trip; a watch-only
 *   descriptor shows the same addresses in a wallet.
 *
 * The passphrase is never stored, logged or sent anywhere in the clear. The coordinator keeps a
 * 32-byte address secret (`address.key` in its data dir, backed up with the configs) and uses
 * two HMACs of (tenant, passphrase) under it: the *lookup id* (stored, to find the passphrase's
 * row) and the *passphrase id* (sent to the signers for their HSM HMAC, never stored). A database
 * leak gives neither; whoever has the HSMs but not the address secret cannot regenerate a key
 * from a guessed passphrase.
 */
import { createHmac } from 'node:crypto';
import { addChecksum } from '../../bitcoin/descriptor.js';
import {
  type BitcoinNetwork,
  deriveTweak,
  encodeSegwitAddress,
  encodeXpub,
  formatPath,
  keyRootXpub,
  passphrasePath,
  taprootDescriptor,
  taprootOutput,
} from '../../bitcoin/index.js';
import { lengthPrefixed, utf8 } from '../../crypto/hash.js';
import { fromHex, toHex } from '../../crypto/hex.js';
import type { KeyRecord, PassphraseAddressRecord, Principal, SignerRecord } from '../../domain/records.js';
import { thresholdHint, thresholdWarnings } from '../../domain/threshold-rules.js';
import type {
  CreateAddressBody,
  DerivedAddressList,
  DerivedAddressQuery,
  DescriptorObject,
  PassphraseAddressObject,
  PassphraseDerivedAddressObject,
} from '../../protocol/api.js';
import { FloeError } from '../../protocol/errors.js';
import type { Backend } from '../backend.js';
import type { CeremonyDriver } from '../ceremonies.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { SignerRegistry } from './registry.js';
import { sleep, within } from './wait.js';

export const ADDRESS_SECRET_BYTES = 32;
const LOOKUP_TAG = 'floe/address/lookup-id/v1';
const PASSPHRASE_ID_TAG = 'floe/address/passphrase-id/v1';
/** Label of a per-passphrase key (never the passphrase). */
export const PASSPHRASE_KEY_LABEL = 'passphrase address';
const DEFAULT_WAIT_MS = 60_000;
const DEFAULT_DERIVED_COUNT = 20;

function hmacHex(secret: Uint8Array, tag: string, tenantId: string, passphrase: string): string {
  return createHmac('sha256', secret)
    .update(lengthPrefixed(tag, [utf8(tenantId), utf8(passphrase)]))
    .digest('hex');
}

/** The stored handle of a tenant's passphrase: HMAC under the address secret. */
export function passphraseLookupId(secret: Uint8Array, tenantId: string, passphrase: string): string {
  return hmacHex(secret, LOOKUP_TAG, tenantId, passphrase);
}

/** What the signers' HSMs HMAC for a passphrase's key (never stored): HMAC under the address secret. */
export function passphraseDkgId(secret: Uint8Array, tenantId: string, passphrase: string): string {
  return hmacHex(secret, PASSPHRASE_ID_TAG, tenantId, passphrase);
}

export interface AddressSettings {
  /** The coordinator's address secret (address.key), 32 bytes. */
  secret: Uint8Array;
  network: BitcoinNetwork;
  /** Threshold of per-passphrase keys. */
  threshold: number;
  /** Identity keys of their signers (config `address_signers`); undefined: every active signer. */
  signers?: readonly string[];
  /** Refuse keys that break the threshold rules instead of warning. */
  strictThresholds: boolean;
}

export class AddressService {
  /** Per-passphrase DKGs this process runs, by tenant and lookup id. */
  private readonly running = new Map<string, Promise<KeyRecord>>();

  constructor(
    private readonly o: {
      backend: Backend;
      registry: SignerRegistry;
      ceremonies: CeremonyDriver;
      metrics: CoordinatorMetrics;
      settings: AddressSettings;
      now?: () => number;
    },
  ) {
    if (o.settings.secret.length !== ADDRESS_SECRET_BYTES) {
      throw new FloeError('internal', `the address secret must be ${ADDRESS_SECRET_BYTES} bytes`);
    }
  }

  get network(): BitcoinNetwork {
    return this.o.settings.network;
  }

  /**
   * The address of a passphrase: the stored one, or a new deterministic DKG key's. `beforeDkg`
   * runs before a new DKG starts (the route counts it against the tenant's limit).
   */
  async createForPassphrase(
    p: Principal,
    body: CreateAddressBody,
    beforeDkg: () => Promise<void> = async () => {},
  ): Promise<PassphraseAddressObject> {
    const { secret } = this.o.settings;
    const lookupId = passphraseLookupId(secret, p.tenantId, body.passphrase);
    const deadline = Date.now() + (body.wait ?? DEFAULT_WAIT_MS);
    for (let round = 0; round < 5; round++) {
      const row = await this.o.backend.getPassphraseAddress(p.tenantId, lookupId);
      const key = row ? await this.o.backend.getKey(p.tenantId, row.keyId) : undefined;
      if (row && key?.status === 'active') return this.answer(p, row, key, false);
      if (row && key?.status === 'pending') {
        const done = await this.waitFor(p, row, deadline);
        if (done.status !== 'failed') return this.answer(p, row, done, false);
        continue;
      }
      if (row && key && key.status !== 'failed') {
        throw new FloeError('key_not_active', `the key of this passphrase is ${key.status}`);
      }
      // No row, or its key failed: a new DKG.
      const plan = await this.plan();
      await beforeDkg();
      const started = await this.start(p, lookupId, row ?? undefined, body.passphrase, plan.signers);
      if (!started) continue; // another request claimed it first: read its row
      let failure: unknown;
      await within(
        started.run.catch((e) => {
          failure = e;
        }),
        Math.max(0, deadline - Date.now()),
      );
      if (failure) throw failure;
      const k = (await this.o.backend.getKey(p.tenantId, started.key.id)) ?? started.key;
      const fresh = (await this.o.backend.getPassphraseAddress(p.tenantId, lookupId)) ?? started.row;
      return this.answer(p, fresh, k, true, plan.warnings);
    }
    throw new FloeError('unavailable', 'the address could not be claimed; try again');
  }

  /** Signers and threshold of a new per-passphrase key, with the threshold rules applied. */
  private async plan(): Promise<{ signers: SignerRecord[]; warnings: ReturnType<typeof thresholdWarnings> }> {
    const s = this.o.settings;
    const active = (await this.o.backend.listSigners()).filter((x) => x.status === 'active');
    let signers: SignerRecord[];
    if (s.signers) {
      signers = s.signers.map((id) => {
        const x = active.find((a) => a.identityPubkey === id);
        if (!x) {
          throw new FloeError(
            'unavailable',
            `address signer ${id.slice(0, 16)}… is not an active registered signer`,
            {
              hint: 'register it (POST /v1/signers) or change address_signers: the same passphrase gives the same address only over the same signers',
            },
          );
        }
        return x;
      });
    } else signers = active;
    // Members in the order of their identity keys: the same identifiers on every rebuild,
    // whatever order the signers were registered in.
    signers = [...signers].sort((a, b) => (a.identityPubkey < b.identityPubkey ? -1 : 1));
    if (signers.length < 2 || s.threshold > signers.length) {
      throw new FloeError(
        'unavailable',
        `per-passphrase keys are ${s.threshold}-of-n and ${signers.length} signer(s) are active`,
      );
    }
    const warnings = thresholdWarnings(s.threshold, signers.length);
    if (warnings.length && s.strictThresholds) {
      throw new FloeError('threshold_unsafe', warnings.map((w) => w.detail).join('; '), {
        rules: warnings.map((w) => w.rule),
        hint: thresholdHint(s.threshold),
      });
    }
    return { signers, warnings };
  }

  /**
   * Create the key and claim the lookup id for it (a new row, or the row of a failed key); then
   * run the DKG. Undefined when another request claimed the lookup id first (this key is failed
   * before any signer saw it).
   */
  private async start(
    p: Principal,
    lookupId: string,
    failedRow: PassphraseAddressRecord | undefined,
    passphrase: string,
    signers: SignerRecord[],
  ): Promise<{ row: PassphraseAddressRecord; key: KeyRecord; run: Promise<KeyRecord> } | undefined> {
    const s = this.o.settings;
    const { key, ceremony } = await this.o.ceremonies.createDkg(
      p.tenantId,
      signers,
      s.threshold,
      PASSPHRASE_KEY_LABEL,
    );
    const row = failedRow
      ? await this.o.backend.repointPassphraseAddress(p.tenantId, {
          lookupId,
          fromKeyId: failedRow.keyId,
          keyId: key.id,
          network: s.network.name,
        })
      : await this.o.backend.claimPassphraseAddress(p.tenantId, {
          lookupId,
          keyId: key.id,
          network: s.network.name,
        });
    if (!row) {
      await this.o.backend.updateCeremony(p.tenantId, ceremony.id, {
        status: 'failed',
        errorCode: 'dkg_failed',
        errorMessage: 'another request made the key of this passphrase',
        culprits: [],
      });
      await this.o.backend.updateKey(p.tenantId, key.id, { status: 'failed' });
      return undefined;
    }
    const m = this.o.metrics.ceremonies;
    m.inc({ status: 'started' });
    const runKey = `${p.tenantId}|${lookupId}`;
    const run = this.o.ceremonies
      .runDkg(key, ceremony, signers, {
        deterministic: { passphrase_id: passphraseDkgId(s.secret, p.tenantId, passphrase) },
      })
      .then(async (k) => {
        m.inc({ status: 'completed' });
        await this.recordOutput(p, lookupId, k);
        return k;
      })
      .catch((e) => {
        m.inc({ status: 'failed' });
        throw e;
      })
      .finally(() => this.running.delete(runKey));
    this.running.set(runKey, run);
    run.catch(() => {});
    await this.o.backend.audit(p.tenantId, 'address.key_started', 'key', key.id, {
      kind: 'passphrase',
      threshold: key.threshold,
      n: key.n,
    });
    return { row, key, run };
  }

  /** A pending key of this passphrase, until it is no longer pending or the deadline passes. */
  private async waitFor(p: Principal, row: PassphraseAddressRecord, deadline: number): Promise<KeyRecord> {
    const local = this.running.get(`${p.tenantId}|${row.lookupId}`);
    if (local) await within(local, Math.max(0, deadline - Date.now()));
    for (;;) {
      const k = await this.o.backend.getKey(p.tenantId, row.keyId);
      if (!k) throw new FloeError('internal', 'the key of an address row is missing');
      if (k.status !== 'pending' || Date.now() >= deadline) return k;
      // Another coordinator runs it: poll.
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
  }

  /** The BIP-86 output of an active per-passphrase key, recorded on its row. */
  private async recordOutput(
    p: Principal,
    lookupId: string,
    k: KeyRecord,
  ): Promise<PassphraseAddressRecord | undefined> {
    const out = this.outputOf(k);
    return this.o.backend.setPassphraseAddressOutput(p.tenantId, {
      lookupId,
      keyId: k.id,
      address: out.address,
      outputKey: out.outputKey,
      internalKey: out.internalKey,
    });
  }

  /**
   * The address of a DKG key: its x-only key is already the BIP-86 output key of its untweaked
   * group key (the internal key); checked here by recomputing the tweak.
   */
  private outputOf(k: KeyRecord): { address: string; outputKey: string; internalKey: string } {
    const tweak = k.tweak as { kind?: string; internal_key?: string; merkle_root?: string } | null;
    if (!k.xOnlyPublicKey || tweak?.kind !== 'taproot' || !tweak.internal_key || tweak.merkle_root !== '') {
      throw new FloeError('internal', `key ${k.id} is not a BIP-86 tweaked DKG key`);
    }
    const internal = fromHex(tweak.internal_key, 'internal key', 33);
    const out = taprootOutput(internal, this.o.settings.network);
    if (toHex(out.outputKey) !== k.xOnlyPublicKey) {
      throw new FloeError(
        'internal',
        `key ${k.id}: its x-only key is not the BIP-86 output of its internal key`,
      );
    }
    return {
      address: encodeSegwitAddress(this.o.settings.network, 1, out.outputKey),
      outputKey: k.xOnlyPublicKey,
      internalKey: tweak.internal_key,
    };
  }

  private async answer(
    p: Principal,
    row: PassphraseAddressRecord,
    key: KeyRecord,
    created: boolean,
    warnings: ReturnType<typeof thresholdWarnings> = [],
  ): Promise<PassphraseAddressObject> {
    let r = row;
    if (key.status === 'active' && (r.keyId !== key.id || r.address === null)) {
      // The run that activated it records the output; a request that got here first does too.
      r = (await this.recordOutput(p, row.lookupId, key)) ?? r;
    }
    const active = key.status === 'active' && r.keyId === key.id && r.address !== null;
    return {
      key_id: key.id,
      status: key.status,
      network: r.network,
      address: active ? r.address : null,
      output_key: active ? r.outputKey : null,
      internal_key: active ? r.internalKey : null,
      created,
      ...(warnings.length ? { warnings } : {}),
    };
  }

  // ---------------------------------------------------------------- derived (fast path)

  /** An active key's root xpub (its group key and chain code keyChainCode(K)). */
  private async rootOf(p: Principal, keyId: string) {
    const k = await this.o.backend.getKey(p.tenantId, keyId);
    if (!k) throw new FloeError('key_not_found', `no key ${keyId}`);
    if (k.status !== 'active' || !k.groupPublicKey) {
      throw new FloeError('key_not_active', `key ${keyId} is ${k.status}`);
    }
    return keyRootXpub(fromHex(k.groupPublicKey, 'group key', 33));
  }

  /** Receive (branch 0) or change (branch 1) addresses m/<branch>/<from..from+count-1>. */
  async derived(p: Principal, keyId: string, q: DerivedAddressQuery): Promise<DerivedAddressList> {
    const branch = q.branch ?? 0;
    const from = q.from ?? 0;
    const count = q.count ?? DEFAULT_DERIVED_COUNT;
    if (from + count > 0x80000000) {
      throw new FloeError('invalid_request', 'from + count must stay below 2^31 (non-hardened indices)');
    }
    const node = deriveTweak(await this.rootOf(p, keyId), [branch]).xpub;
    const network = this.o.settings.network;
    const items = [];
    for (let index = from; index < from + count; index++) {
      const child = deriveTweak(node, [index]);
      const out = taprootOutput(child.publicKey, network);
      items.push({
        index,
        path: `m/${branch}/${index}`,
        address: out.address,
        internal_key: toHex(child.publicKey),
        output_key: toHex(out.outputKey),
      });
    }
    return { key_id: keyId, network: network.name, branch, items };
  }

  /** The watch-only descriptors of a key (BIP-386 with BIP-380 checksums). */
  async descriptor(p: Principal, keyId: string): Promise<DescriptorObject> {
    const root = await this.rootOf(p, keyId);
    const network = this.o.settings.network;
    const xpub = encodeXpub(root, network);
    return {
      key_id: keyId,
      network: network.name,
      xpub,
      receive: taprootDescriptor(root, network, 0),
      change: taprootDescriptor(root, network, 1),
      multipath: addChecksum(`tr(${xpub}/<0;1>/*)`),
    };
  }

  /** A passphrase mapped to a derivation of the key (passphrasePath): the fast alternative to a DKG. */
  async deriveForPassphrase(
    p: Principal,
    keyId: string,
    passphrase: string,
  ): Promise<PassphraseDerivedAddressObject> {
    const path = passphrasePath(this.o.settings.secret, passphrase);
    const child = deriveTweak(await this.rootOf(p, keyId), path);
    const network = this.o.settings.network;
    const out = taprootOutput(child.publicKey, network);
    return {
      key_id: keyId,
      network: network.name,
      path: formatPath(path),
      address: out.address,
      internal_key: toHex(child.publicKey),
      output_key: toHex(out.outputKey),
    };
  }

  /** Per-passphrase DKGs this process is running (so shutdown can wait for them). */
  inFlight(): Promise<unknown>[] {
    return [...this.running.values()];
  }
}
