/**
 * The deterministic DKG as signers run it (src/signer/ceremony.ts dkgRound1Deterministic), with
 * real deterministic secrets: the store stand-in (StoreDeterministicSecret) and, when SoftHSM2 is
 * installed, HMAC keys inside PKCS#11 tokens. Same passphrase id, group and secrets: the same
 * key packages on empty stores; anything else different: an unrelated key. The signer also
 * derives its identity from its HSM, so a rebuilt signer keeps the identity its peers pin.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeKeyPackage, identityPublicKey, softwareIdentity, toHex } from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import type { DkgRound1Request } from '../../src/protocol/messages/dkg.js';
import { CeremonyParticipant } from '../../src/signer/ceremony.js';
import {
  type DeterministicSecret,
  deriveIdentityKey,
  StoreDeterministicSecret,
} from '../../src/signer/keys/deterministic.js';
import { Pkcs11KeySource } from '../../src/signer/keys/pkcs11.js';
import { provisionToken } from '../../src/signer/keys/provision.js';
import { openSignerStore } from '../../src/signer/node.js';
import { FakeClock, MemoryStore } from '../helpers/memory-store.js';
import { makeSoftHsm, secretFile, softhsmSkipReason } from '../helpers/softhsm.js';

const bytes = (label: string) => new Uint8Array(createHash('sha256').update(label).digest());
const PASSPHRASE_ID = toHex(bytes('passphrase id 1'));

interface Member {
  identity: ReturnType<typeof softwareIdentity>;
  secret: DeterministicSecret | undefined;
}

/** Members with fixed identity keys (as a signer rebuilt from its HSM has). */
function members(secrets: (DeterministicSecret | undefined)[], identitySeed = 'id'): Member[] {
  return secrets.map((secret, i) => ({
    identity: softwareIdentity(bytes(`${identitySeed}/${i}`)),
    secret,
  }));
}

/**
 * One DKG over fresh (empty) stores: round 1 deterministic over `passphraseId`, rounds 2, 3 and
 * certification as the coordinator drives them. Returns each member's stored key package.
 */
async function run(ms: Member[], t: number, passphraseId = PASSPHRASE_ID, keyId = 'k1') {
  const clock = new FakeClock();
  const roster = ms.map((m) => m.identity.publicKeyHex);
  const nodes = ms.map((m) => {
    const store = new MemoryStore();
    return {
      store,
      p: new CeremonyParticipant({
        store,
        clock,
        identity: m.identity,
        roster,
        ...(m.secret ? { deterministic: m.secret } : {}),
      }),
    };
  });
  const participants = ms.map((m, i) => ({ identifier: i + 1, identity: m.identity.publicKeyHex }));
  const req = (i: number): DkgRound1Request => ({
    ceremony_id: `c-${keyId}`,
    key_id: keyId,
    threshold: t,
    n: ms.length,
    identifier: i + 1,
    participants,
    deterministic: { passphrase_id: passphraseId },
  });
  const r1 = await Promise.all(nodes.map((x, i) => x.p.dkgRound1Deterministic(req(i))));
  // A repeat of round 1 answers the same (idempotent per ceremony).
  assert.deepEqual(await nodes[0]!.p.dkgRound1Deterministic(req(0)), r1[0]);
  const round1 = r1.map((r) => r.round1);
  const r2 = nodes.map((x) => x.p.dkgRound2({ ceremony_id: `c-${keyId}`, round1 }));
  const r3 = nodes.map((x, i) =>
    x.p.dkgRound3({
      ceremony_id: `c-${keyId}`,
      boxes: r2.flatMap((r) =>
        r.boxes.filter((b) => b.receiver === i + 1).map((b) => ({ sender: r.identifier, box: b.box })),
      ),
    }),
  );
  const certificates = r3.map((r) => ({
    identifier: r.identifier,
    transcript_hash: r.transcript_hash,
    group_public_key: r.public_key_package.commitments[0]!,
    certificate: r.certificate,
  }));
  for (const x of nodes) x.p.dkgCertify({ ceremony_id: `c-${keyId}`, key_id: keyId, certificates });
  return {
    round1,
    keys: nodes.map((x) => {
      const k = x.store.getKey(keyId)!;
      assert.equal(k.status, 'active');
      return JSON.stringify(encodeKeyPackage(k.keyPackage));
    }),
    groupKey: r3[0]!.public_key_package.commitments[0]!,
  };
}

const standIn = (i: number) => new StoreDeterministicSecret(bytes(`store data key ${i}`));

describe('deterministic DKG on signers, stand-in secret (src/signer/ceremony.ts)', () => {
  it('the same passphrase id, group and secrets on empty stores: identical key packages and group key', async () => {
    const a = await run(members([0, 1, 2].map(standIn)), 2);
    const b = await run(members([0, 1, 2].map(standIn)), 2, PASSPHRASE_ID, 'another-key-id');
    assert.deepEqual(b.keys, a.keys);
    assert.equal(b.groupKey, a.groupKey);
    assert.deepEqual(b.round1, a.round1, 'round 1 is reproducible too (ceremony and key ids are not in it)');
  });

  it('a different passphrase id gives an unrelated key', async () => {
    const a = await run(members([0, 1, 2].map(standIn)), 2);
    const b = await run(members([0, 1, 2].map(standIn)), 2, toHex(bytes('passphrase id 2')));
    assert.notEqual(b.groupKey, a.groupKey);
    for (let i = 0; i < 3; i++) assert.notEqual(b.keys[i], a.keys[i]);
  });

  it('another group (threshold, a member, or the order of the members) gives unrelated polynomials', async () => {
    const base = await run(members([0, 1, 2].map(standIn)), 2);
    const t3 = await run(members([0, 1, 2].map(standIn)), 3);
    assert.notEqual(t3.groupKey, base.groupKey);
    assert.notDeepEqual(t3.round1[0]!.commitment[0], base.round1[0]!.commitment[0]);
    // Member 3 replaced by another identity: members 1 and 2 (same secrets) change polynomials too,
    // so no share of theirs ever reaches a signer outside the original group.
    const swapped = members([0, 1, 2].map(standIn));
    swapped[2] = { identity: softwareIdentity(bytes('an outsider')), secret: standIn(2) };
    const other = await run(swapped, 2);
    assert.notDeepEqual(other.round1[0]!.commitment[0], base.round1[0]!.commitment[0]);
    assert.notDeepEqual(other.round1[1]!.commitment[0], base.round1[1]!.commitment[0]);
    // The same members in another order: other identifiers, other polynomials.
    const reordered = members([0, 1, 2].map(standIn));
    const [m0, m1] = [reordered[0]!, reordered[1]!];
    reordered[0] = m1;
    reordered[1] = m0;
    const r = await run(reordered, 2);
    assert.notEqual(r.groupKey, base.groupKey);
  });

  it('another deterministic secret (another store, or HSM) gives an unrelated key', async () => {
    const a = await run(members([0, 1, 2].map(standIn)), 2);
    const b = await run(members([standIn(0), standIn(1), standIn(9)]), 2);
    assert.notEqual(b.groupKey, a.groupKey);
  });

  it('a signer without a deterministic secret refuses a deterministic round 1; a random round 1 stays random', async () => {
    const ms = members([undefined, standIn(1), standIn(2)]);
    await assert.rejects(run(ms, 2), (e: unknown) => e instanceof FloeError && e.code === 'unavailable');
    const p = new CeremonyParticipant({
      store: new MemoryStore(),
      clock: new FakeClock(),
      identity: ms[1]!.identity,
      roster: ms.map((m) => m.identity.publicKeyHex),
      deterministic: standIn(1),
    });
    const participants = ms.map((m, i) => ({ identifier: i + 1, identity: m.identity.publicKeyHex }));
    const req = { ceremony_id: 'c', key_id: 'k', threshold: 2, n: 3, identifier: 2, participants };
    const q = new CeremonyParticipant({
      store: new MemoryStore(),
      clock: new FakeClock(),
      identity: ms[1]!.identity,
      roster: ms.map((m) => m.identity.publicKeyHex),
      deterministic: standIn(1),
    });
    assert.notDeepEqual(p.dkgRound1(req).round1, q.dkgRound1(req).round1);
    assert.throws(() =>
      p.dkgRound1({ ...req, ceremony_id: 'c2', deterministic: { passphrase_id: PASSPHRASE_ID } }),
    );
  });
});

const skip = softhsmSkipReason();
if (skip) console.warn(`# SoftHSM deterministic DKG tests skipped — ${skip}`);

describe('deterministic DKG on signers, HMAC keys in PKCS#11 tokens (SoftHSM2)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-det-dkg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const hsm = skip ? undefined : makeSoftHsm(dir, { inProcess: true });
  const PIN = 'user-pin-det-dkg';
  const labels = ['det-1', 'det-2', 'det-3'];
  const sources: Pkcs11KeySource[] = [];
  const open = () =>
    labels.map((tokenLabel) => new Pkcs11KeySource({ module: hsm!.module, tokenLabel, pin: PIN }));
  after(() => {
    for (const s of sources) s.dispose();
  });

  it('same tokens, empty stores: byte-identical keys; identities derive from the tokens', async () => {
    for (const tokenLabel of labels) {
      await provisionToken({ module: hsm!.module, tokenLabel, soPin: 'so-pin-det', userPin: PIN });
    }
    const first = open();
    // Identity keys from the token, the same in every session (as a rebuilt signer gets them).
    const ids = await Promise.all(first.map((s) => deriveIdentityKey(s)));
    const ms = ids.map((k, i) => ({
      identity: softwareIdentity(k),
      secret: first[i]! as DeterministicSecret,
    }));
    const a = await run(ms, 2);
    for (const s of first) s.dispose();

    const second = open();
    sources.push(...second);
    const ids2 = await Promise.all(second.map((s) => deriveIdentityKey(s)));
    assert.deepEqual(
      ids2.map((k) => toHex(identityPublicKey(k))),
      ids.map((k) => toHex(identityPublicKey(k))),
    );
    const ms2 = ids2.map((k, i) => ({
      identity: softwareIdentity(k),
      secret: second[i]! as DeterministicSecret,
    }));
    const b = await run(ms2, 2, PASSPHRASE_ID, 'k2');
    assert.deepEqual(b.keys, a.keys);
    assert.equal(b.groupKey, a.groupKey);
    const c = await run(ms2, 2, toHex(bytes('another passphrase')), 'k3');
    assert.notEqual(c.groupKey, a.groupKey);
  });

  it('a signer store created on an HSM takes its identity from the token: empty again, same identity', async () => {
    const pin = secretFile(join(dir, 'pin'), PIN);
    const cfg = (d: string) => ({
      data_dir: join(dir, d),
      key_source: { kind: 'pkcs11' as const, module: hsm!.module, token_label: 'det-1', pin_file: pin },
    });
    const one = await openSignerStore(cfg('store-a'), {});
    one.store.close();
    one.identity.dispose();
    rmSync(join(dir, 'store-a'), { recursive: true, force: true });
    const two = await openSignerStore(cfg('store-a'), {});
    two.store.close();
    two.identity.dispose();
    assert.equal(two.identityPub, one.identityPub);
    const src = new Pkcs11KeySource({ module: hsm!.module, tokenLabel: 'det-1', pin: PIN });
    sources.push(src);
    assert.equal(two.identityPub, toHex(identityPublicKey(await deriveIdentityKey(src))));
  });
});
