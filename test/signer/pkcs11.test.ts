/**
 * The PKCS#11 key source against SoftHSM2 (issue "Bitcoin custody: keys under a PKCS#11 HSM"):
 * provisioning, a store sealed under a token's non-extractable AES key, the deterministic
 * HMAC computed inside the token, the stand-in when no HSM is configured, `floe init --hsm`,
 * and real signer processes sealed under tokens.
 *
 * Without SoftHSM2 (or pkcs11js) every suite here is skipped with the reason; none passes
 * without running.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadSignerConfig } from '../../src/config/signer.js';
import { SignerClient } from '../../src/coordinator/signer-client.js';
import { generateIdentityKey, softwareIdentity, xOnlyGroupKey } from '../../src/crypto/index.js';
import { FloeError } from '../../src/protocol/errors.js';
import { DETERMINISTIC_TAG } from '../../src/signer/keys/deterministic.js';
import { PassphraseKeySource } from '../../src/signer/keys/passphrase.js';
import {
  CKA_ALWAYS_SENSITIVE,
  CKA_CLASS,
  CKA_EXTRACTABLE,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKA_NEVER_EXTRACTABLE,
  CKA_SENSITIVE,
  CKA_SIGN,
  CKA_TOKEN,
  CKA_VALUE,
  CKK_AES,
  CKK_GENERIC_SECRET,
  CKO_SECRET_KEY,
  ckrCode,
  DEFAULT_HMAC_KEY_LABEL,
  DEFAULT_WRAP_KEY_LABEL,
  decodePkcs11Params,
  PKCS11_KIND,
  Pkcs11KeySource,
  pkcs11References,
  slotId,
  TokenSession,
} from '../../src/signer/keys/pkcs11.js';
import { provisionKeys, provisionToken } from '../../src/signer/keys/provision.js';
import { openSignerStore } from '../../src/signer/node.js';
import { SqliteSignerStore } from '../../src/signer/store.js';
import { dkgOver, signOver } from '../helpers/drive.js';
import { runFloe } from '../helpers/e2e-floe.js';
import { libsecpVerify } from '../helpers/independent.js';
import { type SignerProcess, spawnFloe } from '../helpers/processes.js';
import {
  hsmEnv,
  hsmSignerEnv,
  makeSoftHsm,
  type SoftHsm,
  secretFile,
  softhsmSkipReason,
  startHsmSignerProcess,
  tokenDir,
} from '../helpers/softhsm.js';

const skip = softhsmSkipReason();
const dir = mkdtempSync(join(tmpdir(), 'floe-pkcs11-'));
// SoftHSM reads SOFTHSM2_CONF at C_Initialize: this file's tokens live in their own directory.
const hsm: SoftHsm | undefined = skip ? undefined : makeSoftHsm(dir, { inProcess: true });
const MODULE = hsm?.module ?? '';

const SO_PIN = 'so-pin-0123456789';
/** Distinctive, so a leak into any message or log is found by a plain search. */
const PIN = `user-pin-${randomBytes(6).toString('hex')}`;
const WRONG_PIN = `wrong-pin-${randomBytes(6).toString('hex')}`;
const N = 1 << 10;

after(() => rmSync(dir, { recursive: true, force: true }));
// Every source and session disposed: the library is finalized between tests (SoftHSM then
// re-reads its token directory, which the token-removal tests rely on).
afterEach(() => assert.equal(pkcs11References(), 0, 'a PKCS#11 source or session was not disposed'));

if (skip) {
  // Also on the console, so a CI log says it even when the reporter folds skipped suites.
  console.warn(`# pkcs11 tests skipped — ${skip}`);
}

/**
 * A test that needs SoftHSM2: skipped, with the reason, when it is missing (each test counts
 * as skipped in the summary), and a `before` hook that then does nothing.
 */
const hsmIt = (name: string, fn: () => Promise<void> | void) => it(name, { skip }, fn);
const hsmBefore = (fn: () => Promise<void>) =>
  before(async () => {
    if (!skip) await fn();
  });

const source = (tokenLabel: string, pin = PIN, more: { hmacKeyLabel?: string } = {}) =>
  new Pkcs11KeySource({ module: MODULE, tokenLabel, pin, ...more });

function refused(code: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof FloeError, `a FloeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    assert.ok(!`${e.message}\n${e.stack}`.includes(PIN), 'the PIN is never in an error');
    assert.ok(!`${e.message}\n${e.stack}`.includes(WRONG_PIN), 'nor a wrong PIN');
    return true;
  };
}

function boolAttr(s: TokenSession, k: Buffer, type: number): boolean {
  const v = s.attributes(k, [type]).get(type);
  assert.ok(v && v.length > 0, `attribute 0x${type.toString(16)} is readable`);
  return v[0] !== 0;
}

/** A store at `path` sealed with `src`, holding an identity key; returns the key. */
async function sealedStore(path: string, src: Pkcs11KeySource | PassphraseKeySource): Promise<Uint8Array> {
  const store = await SqliteSignerStore.open({ path, keySource: src, create: true });
  const id = generateIdentityKey();
  store.setIdentity(id);
  store.close();
  await src.dispose();
  return id;
}

async function reopen(
  path: string,
  src: Pkcs11KeySource | PassphraseKeySource,
): Promise<Uint8Array | undefined> {
  try {
    const store = await SqliteSignerStore.open({ path, keySource: src });
    const id = store.getIdentity();
    store.close();
    return id;
  } finally {
    await src.dispose();
  }
}

describe('provisioning a token (SoftHSM2)', () => {
  hsmIt('initialises a token and makes a non-extractable, sensitive AES-256 key and HMAC key', async () => {
    const r = await provisionToken({ module: MODULE, tokenLabel: 'prov', soPin: SO_PIN, userPin: PIN });
    assert.deepEqual(
      { label: r.tokenLabel, init: r.tokenInitialized, wrap: r.wrapKey, hmac: r.hmacKey },
      { label: 'prov', init: true, wrap: 'created', hmac: 'created' },
    );
    const s = TokenSession.open(MODULE, { tokenLabel: 'prov' }, PIN);
    try {
      for (const [label, type] of [
        [DEFAULT_WRAP_KEY_LABEL, CKK_AES],
        [DEFAULT_HMAC_KEY_LABEL, CKK_GENERIC_SECRET],
      ] as const) {
        const keys = s.findSecretKeys(label);
        assert.equal(keys.length, 1, label);
        const k = keys[0]!;
        assert.equal(s.attributes(k, [CKA_KEY_TYPE]).get(CKA_KEY_TYPE)!.readUInt32LE(0), type, label);
        assert.equal(boolAttr(s, k, CKA_EXTRACTABLE), false, `${label}: CKA_EXTRACTABLE`);
        assert.equal(boolAttr(s, k, CKA_SENSITIVE), true, `${label}: CKA_SENSITIVE`);
        assert.equal(boolAttr(s, k, CKA_NEVER_EXTRACTABLE), true, `${label}: CKA_NEVER_EXTRACTABLE`);
        assert.equal(boolAttr(s, k, CKA_ALWAYS_SENSITIVE), true, `${label}: CKA_ALWAYS_SENSITIVE`);
        assert.equal(boolAttr(s, k, CKA_TOKEN), true, `${label}: a token object`);
        // The value cannot be read: CKR_ATTRIBUTE_SENSITIVE.
        assert.throws(
          () => s.lib.C_GetAttributeValue(s.handle, k, [{ type: CKA_VALUE }]),
          (e: unknown) => ckrCode(e) === 0x11,
          `${label}: CKA_VALUE is not readable`,
        );
      }
    } finally {
      s.close();
    }
  });

  hsmIt('is idempotent: existing keys are kept (same HMAC), and replaced only when asked', async () => {
    const first = source('prov');
    const before = await first.hmac('probe', Uint8Array.of(1));
    first.dispose();
    const again = await provisionToken({ module: MODULE, tokenLabel: 'prov', soPin: SO_PIN, userPin: PIN });
    assert.deepEqual([again.tokenInitialized, again.wrapKey, again.hmacKey], [false, 'existing', 'existing']);
    const keys = await provisionKeys({ module: MODULE, tokenLabel: 'prov', userPin: PIN });
    assert.deepEqual([keys.wrapKey, keys.hmacKey], ['existing', 'existing']);
    const src = source('prov');
    assert.deepEqual(await src.hmac('probe', Uint8Array.of(1)), before, 'same HMAC key');
    src.dispose();

    const replaced = await provisionKeys({ module: MODULE, tokenLabel: 'prov', userPin: PIN, replace: true });
    assert.deepEqual([replaced.wrapKey, replaced.hmacKey], ['replaced', 'replaced']);
    const src2 = source('prov');
    assert.notDeepEqual(await src2.hmac('probe', Uint8Array.of(1)), before, 'a new HMAC key');
    src2.dispose();
  });

  hsmIt('refuses a key under its label that is extractable, and a wrong user PIN', async () => {
    await provisionToken({ module: MODULE, tokenLabel: 'unfit', soPin: SO_PIN, userPin: PIN });
    const s = TokenSession.open(MODULE, { tokenLabel: 'unfit' }, PIN, { rw: true });
    try {
      for (const k of s.findSecretKeys(DEFAULT_HMAC_KEY_LABEL)) s.lib.C_DestroyObject(s.handle, k);
      s.lib.C_CreateObject(s.handle, [
        { type: CKA_CLASS, value: CKO_SECRET_KEY },
        { type: CKA_KEY_TYPE, value: CKK_GENERIC_SECRET },
        { type: CKA_TOKEN, value: true },
        { type: CKA_LABEL, value: DEFAULT_HMAC_KEY_LABEL },
        { type: CKA_VALUE, value: Buffer.alloc(32, 7) },
        { type: CKA_SIGN, value: true },
        { type: CKA_SENSITIVE, value: false },
        { type: CKA_EXTRACTABLE, value: true },
      ]);
    } finally {
      s.close();
    }
    await assert.rejects(
      provisionKeys({ module: MODULE, tokenLabel: 'unfit', userPin: PIN }),
      refused('invalid_request', /not sensitive|extractable/),
    );
    const src = source('unfit');
    assert.throws(() => src.checkKeys(), refused('invalid_request', /not sensitive|extractable/));
    src.dispose();
    await assert.rejects(
      provisionKeys({ module: MODULE, tokenLabel: 'unfit', userPin: WRONG_PIN }),
      refused('unauthorized', /refused the PIN/),
    );
  });
});

describe('a store sealed under a token (SoftHSM2)', () => {
  hsmBefore(async () => {
    for (const t of ['store-a', 'store-b', 'store-keyless', 'store-gone']) {
      await provisionToken({ module: MODULE, tokenLabel: t, soPin: SO_PIN, userPin: PIN });
    }
  });

  hsmIt('opens again with the same token and PIN; the stored parameters carry no data key', async () => {
    const path = join(dir, 'a', 'signer.db');
    const id = await sealedStore(path, source('store-a'));
    assert.deepEqual(await reopen(path, source('store-a')), id);

    // What the store keeps in the clear: the kind and the wrapped key (format, label, IV, ciphertext).
    const src = source('store-a');
    const { params, dataKey } = await src.init();
    src.dispose();
    const p = decodePkcs11Params(params);
    assert.equal(p.wrapLabel, DEFAULT_WRAP_KEY_LABEL);
    assert.equal(p.iv.length, 12);
    assert.equal(p.sealed.length, 48);
    assert.ok(!Buffer.from(params).includes(Buffer.from(dataKey)), 'the data key is not in the parameters');
    assert.equal(new Pkcs11KeySource({ module: MODULE, tokenLabel: 'x', pin: 'y' }).kind, PKCS11_KIND);
  });

  hsmIt('selects the token by slot id as well', async () => {
    const s = TokenSession.open(MODULE, { tokenLabel: 'store-a' }, PIN);
    const slot = Number(slotId(s.slot));
    s.close();
    const id = await reopen(
      join(dir, 'a', 'signer.db'),
      new Pkcs11KeySource({ module: MODULE, slot, pin: PIN }),
    );
    assert.equal(id?.length, 32);
  });

  hsmIt('refuses a wrong PIN, and no error carries it', async () => {
    const path = join(dir, 'a', 'signer.db');
    await assert.rejects(
      reopen(path, source('store-a', WRONG_PIN)),
      refused('unauthorized', /refused the PIN/),
    );
  });

  hsmIt('refuses another token (the data key does not decrypt under its key)', async () => {
    const path = join(dir, 'a', 'signer.db');
    await assert.rejects(reopen(path, source('store-b')), refused('unauthorized', /does not decrypt/));
  });

  hsmIt('refuses a passphrase source, and a passphrase store refuses the HSM source', async () => {
    await assert.rejects(
      reopen(join(dir, 'a', 'signer.db'), new PassphraseKeySource('pw', { N })),
      refused('invalid_request', /sealed with key source pkcs11/),
    );
    const pp = join(dir, 'pp', 'signer.db');
    await sealedStore(pp, new PassphraseKeySource('pw', { N }));
    await assert.rejects(
      reopen(pp, source('store-a')),
      refused('invalid_request', /sealed with key source passphrase/),
    );
  });

  hsmIt('refuses to open when the wrap key is gone', async () => {
    const path = join(dir, 'keyless', 'signer.db');
    await sealedStore(path, source('store-keyless'));
    const s = TokenSession.open(MODULE, { tokenLabel: 'store-keyless' }, PIN, { rw: true });
    for (const k of s.findSecretKeys(DEFAULT_WRAP_KEY_LABEL)) s.lib.C_DestroyObject(s.handle, k);
    s.close();
    await assert.rejects(
      reopen(path, source('store-keyless')),
      refused('invalid_request', /no key "floe-data-key-wrap"/),
    );
  });

  hsmIt(
    'refuses to open when the token is gone, and opens again once it is restored from a backup',
    async () => {
      const path = join(dir, 'gone', 'signer.db');
      const id = await sealedStore(path, source('store-gone'));
      const tdir = tokenDir(hsm!, 'store-gone');
      assert.ok(tdir, 'SoftHSM keeps the token in its own directory');
      // The HSM's own backup mechanism, SoftHSM's way: a copy of the token directory (kept outside
      // the token directory, where SoftHSM would load it as a token).
      const backup = join(dir, 'store-gone.token-backup');
      cpSync(tdir, backup, { recursive: true });
      rmSync(tdir, { recursive: true });
      await assert.rejects(
        reopen(path, source('store-gone')),
        refused('invalid_request', /no PKCS#11 token "store-gone"/),
      );
      cpSync(backup, tdir, { recursive: true });
      assert.deepEqual(await reopen(path, source('store-gone')), id);
    },
  );

  hsmIt('refuses a library that is not PKCS#11, naming it', async () => {
    const src = new Pkcs11KeySource({ module: join(dir, 'no-such-lib.so'), tokenLabel: 'store-a', pin: PIN });
    await assert.rejects(
      SqliteSignerStore.open({ path: join(dir, 'nolib', 'signer.db'), keySource: src, create: true }),
      refused('invalid_request', /cannot be loaded/),
    );
    src.dispose();
  });
});

describe('the deterministic HMAC (SoftHSM2)', () => {
  const IMPORTED = 'floe-test-hmac-imported';
  const testKey = new Uint8Array(randomBytes(32));
  hsmBefore(async () => {
    for (const t of ['hmac-a', 'hmac-b']) {
      await provisionToken({ module: MODULE, tokenLabel: t, soPin: SO_PIN, userPin: PIN });
    }
    // A test key imported in the clear (extractable, not sensitive): only to check the mechanism.
    const s = TokenSession.open(MODULE, { tokenLabel: 'hmac-a' }, PIN, { rw: true });
    s.lib.C_CreateObject(s.handle, [
      { type: CKA_CLASS, value: CKO_SECRET_KEY },
      { type: CKA_KEY_TYPE, value: CKK_GENERIC_SECRET },
      { type: CKA_TOKEN, value: true },
      { type: CKA_LABEL, value: IMPORTED },
      { type: CKA_VALUE, value: Buffer.from(testKey) },
      { type: CKA_SIGN, value: true },
      { type: CKA_SENSITIVE, value: false },
      { type: CKA_EXTRACTABLE, value: true },
    ]);
    s.close();
  });

  hsmIt('is deterministic per key, and differs across tokens, labels and data', async () => {
    const data = new TextEncoder().encode('passphrase-id:42');
    const a = source('hmac-a');
    const x = await a.hmac('dkg/polynomial', data);
    assert.equal(x.length, 32);
    assert.deepEqual(await a.hmac('dkg/polynomial', data), x);
    a.dispose();
    const a2 = source('hmac-a');
    assert.deepEqual(await a2.hmac('dkg/polynomial', data), x, 'same key, new session');
    assert.notDeepEqual(await a2.hmac('dkg/nonce', data), x, 'the label separates uses');
    assert.notDeepEqual(await a2.hmac('dkg/polynomial', Uint8Array.of(...data, 0)), x);
    a2.dispose();
    const b = source('hmac-b');
    assert.notDeepEqual(await b.hmac('dkg/polynomial', data), x, 'another token, another key');
    b.dispose();
    assert.equal(source('hmac-a').origin, 'hsm');
  });

  hsmIt(
    'is HMAC-SHA256 over the length-prefixed tag, label and data (checked with an imported test key only)',
    async () => {
      const label = 'dkg/polynomial';
      const data = new Uint8Array(randomBytes(40));
      const src = source('hmac-a', PIN, { hmacKeyLabel: IMPORTED });
      const inToken = await src.hmac(label, data);
      // The signer refuses such a key: it is extractable.
      assert.throws(() => src.checkKeys(), refused('invalid_request', /not sensitive|extractable/));
      src.dispose();
      const u32 = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(n);
        return b;
      };
      const tag = Buffer.from(DETERMINISTIC_TAG);
      const l = Buffer.from(label);
      const expected = createHmac('sha256', testKey)
        .update(Buffer.concat([u32(tag.length), tag, u32(l.length), l, u32(data.length), data]))
        .digest();
      assert.deepEqual(Buffer.from(inToken), expected);

      // The test key can be read back; the provisioned one cannot.
      const s = TokenSession.open(MODULE, { tokenLabel: 'hmac-a' }, PIN);
      try {
        const imported = s.findSecretKeys(IMPORTED)[0]!;
        const v = s.lib.C_GetAttributeValue(s.handle, imported, [{ type: CKA_VALUE }])[0]!.value;
        assert.deepEqual(new Uint8Array(v), testKey);
        const provisioned = s.findSecretKeys(DEFAULT_HMAC_KEY_LABEL)[0]!;
        assert.throws(
          () => s.lib.C_GetAttributeValue(s.handle, provisioned, [{ type: CKA_VALUE }]),
          (e: unknown) => ckrCode(e) === 0x11,
        );
      } finally {
        s.close();
      }
    },
  );

  hsmIt('fails after dispose, and refuses an empty label', async () => {
    const src = source('hmac-a');
    await assert.rejects(src.hmac('', Uint8Array.of()), refused('invalid_request'));
    src.dispose();
    await assert.rejects(src.hmac('x', Uint8Array.of()), refused('internal', /disposed/));
  });
});

describe('the stand-in deterministic secret (no HSM configured)', () => {
  // No SoftHSM needed: a passphrase store keeps the stand-in.
  const env = { FLOE_SIGNER_PASSPHRASE: 'stand-in test passphrase' };
  const open = async (name: string) => {
    const o = await openSignerStore({ data_dir: join(dir, 'standin', name) }, env, {
      scryptN: N,
      keepDeterministic: true,
    });
    o.store.close();
    o.identity.dispose();
    return o.deterministic!;
  };

  it('is stable across opens of one store, differs between stores, and says it lives in the store', async () => {
    const d1 = await open('one');
    assert.equal(d1.origin, 'store');
    assert.match(d1.description, /stand-in/);
    const x = await d1.hmac('dkg/polynomial', Uint8Array.of(1, 2));
    d1.dispose();
    await assert.rejects(d1.hmac('dkg/polynomial', Uint8Array.of(1, 2)), /disposed/);
    const again = await open('one');
    assert.deepEqual(await again.hmac('dkg/polynomial', Uint8Array.of(1, 2)), x);
    again.dispose();
    const other = await open('two');
    assert.notDeepEqual(await other.hmac('dkg/polynomial', Uint8Array.of(1, 2)), x);
    other.dispose();
  });

  it('a signer without key_source refuses an HSM PIN in its environment', async () => {
    await assert.rejects(
      openSignerStore(
        { data_dir: join(dir, 'standin', 'pin') },
        { ...env, FLOE_SIGNER_HSM_PIN: PIN },
        { scryptN: N },
      ),
      refused('invalid_request', /no HSM is configured/),
    );
  });
});

describe('signer config: key_source', () => {
  const base = { FLOE_SIGNER_DATA_DIR: join(dir, 'cfg'), FLOE_SIGNER_COORDINATORS: '11'.repeat(32) };

  it('is the passphrase by default, and pkcs11 from the environment', () => {
    assert.equal(loadSignerConfig(undefined, base).key_source, undefined);
    const cfg = loadSignerConfig(undefined, {
      ...base,
      FLOE_SIGNER_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      FLOE_SIGNER_PKCS11_TOKEN: 'tok',
      FLOE_SIGNER_HSM_PIN_FILE: 'rel/pin',
    });
    assert.deepEqual(cfg.key_source, {
      kind: 'pkcs11',
      module: '/usr/lib/softhsm/libsofthsm2.so',
      token_label: 'tok',
      pin_file: join(process.cwd(), 'rel/pin'),
    });
  });

  it('needs the module, and exactly one of token label and slot', () => {
    assert.throws(
      () => loadSignerConfig(undefined, { ...base, FLOE_SIGNER_PKCS11_TOKEN: 'tok' }),
      (e: unknown) => e instanceof FloeError && e.code === 'invalid_request',
    );
    assert.throws(
      () => loadSignerConfig(undefined, { ...base, FLOE_SIGNER_PKCS11_MODULE: '/x.so' }),
      /exactly one of token_label and slot/,
    );
  });

  it('refuses a passphrase for a signer sealed by an HSM', async () => {
    await assert.rejects(
      openSignerStore(
        { data_dir: join(dir, 'cfg'), key_source: { kind: 'pkcs11', module: '/x.so', token_label: 't' } },
        { FLOE_SIGNER_PASSPHRASE: 'pw' },
      ),
      refused('invalid_request', /takes no passphrase/),
    );
  });
});

describe('floe init --hsm (SoftHSM2)', () => {
  hsmIt('provisions a token per signer and writes key_source; the stores open with it', async () => {
    const out = join(dir, 'init-out');
    const r = await runFloe(
      ['init', '--signers', '2', '--threshold', '2', '--out', out, '--hsm', '--pkcs11-lib', MODULE, '--json'],
      { cwd: dir, env: hsmEnv(hsm!) },
    );
    assert.equal(r.code, 0, r.stderr);
    const deployment = JSON.parse(readFileSync(join(out, 'deployment.json'), 'utf8'));
    for (const [i, s] of (deployment.signers as { identity: string; passphrase_file: unknown }[]).entries()) {
      const name = `signer-${i + 1}`;
      assert.equal(s.passphrase_file, null);
      assert.ok(!existsSync(join(out, `${name}.passphrase`)), 'no passphrase with an HSM');
      for (const f of [`${name}.pin`, `${name}.so-pin`]) {
        assert.equal(statSync(join(out, f)).mode & 0o077, 0, `${f} is 0600`);
      }
      const raw = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8'));
      assert.deepEqual(raw.key_source, {
        kind: 'pkcs11',
        module: MODULE,
        token_label: `floe-signer-${i + 1}`,
        pin_file: `${name}.pin`,
      });
      const cfg = loadSignerConfig(join(out, `${name}.json`), {});
      const o = await openSignerStore(cfg, {});
      o.store.close();
      o.identity.dispose();
      assert.equal(o.identityPub, s.identity);
      const pin = readFileSync(join(out, `${name}.pin`), 'utf8').trim();
      assert.ok(!(r.stdout + r.stderr).includes(pin), 'the PIN is not printed');
    }
  });

  it('refuses --hsm without --pkcs11-lib', async () => {
    const r = await runFloe(
      ['init', '--signers', '2', '--threshold', '2', '--out', join(dir, 'x'), '--hsm'],
      {
        cwd: dir,
      },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--hsm and --pkcs11-lib/);
  });
});

describe('signer processes sealed under tokens (SoftHSM2)', () => {
  const coordinator = softwareIdentity(generateIdentityKey());
  const procs: SignerProcess[] = [];
  const labels = ['proc-1', 'proc-2', 'proc-3'];
  const dataDirs = labels.map((l) => join(dir, l));
  const pins = labels.map(() => `proc-pin-${randomBytes(8).toString('hex')}`);
  const pinFiles = labels.map((l, i) => secretFile(join(dir, `${l}.pin`), pins[i]!));
  let peers: string[] = [];

  const procEnv = (i: number) => ({
    hsm: hsm!,
    dataDir: dataDirs[i]!,
    coordinators: [coordinator.publicKeyHex],
    peers,
    tokenLabel: labels[i]!,
    pinFile: pinFiles[i]!,
    logLevel: 'info',
  });

  hsmBefore(async () => {
    for (const [i, l] of labels.entries()) {
      await provisionToken({ module: MODULE, tokenLabel: l, soPin: SO_PIN, userPin: pins[i]! });
    }
    // The roster: each store's identity, read with the token (as floe init does).
    peers = [];
    for (const [i, l] of labels.entries()) {
      const o = await openSignerStore(
        {
          data_dir: dataDirs[i]!,
          key_source: { kind: 'pkcs11', module: MODULE, token_label: l, pin_file: pinFiles[i]! },
        },
        {},
      );
      o.store.close();
      o.identity.dispose();
      peers.push(o.identityPub);
    }
    for (const i of [0, 1, 2]) procs.push(await startHsmSignerProcess(procEnv(i)));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  });

  hsmIt('sign after a DKG', async () => {
    const clients = procs.map(
      (p) => new SignerClient({ url: p.url, signerIdentity: p.identity, identity: coordinator }),
    );
    assert.deepEqual(
      procs.map((p) => p.identity),
      peers,
    );
    const pub = await dkgOver(clients, 2, 'key-hsm');
    const signed = await signOver(
      [
        { client: clients[0]!, id: 1 },
        { client: clients[2]!, id: 3 },
      ],
      pub,
      'key-hsm',
    );
    assert.ok(libsecpVerify(signed.sig, signed.message, xOnlyGroupKey(pub)));
  });

  hsmIt('log that the deterministic secret is in the token, and never the PIN', () => {
    for (const [i, p] of procs.entries()) {
      const messages = p.stdout.map((l) => {
        try {
          return String((JSON.parse(l) as { msg?: unknown }).msg ?? '');
        } catch {
          return '';
        }
      });
      assert.ok(
        messages.includes(
          `deterministic secret: HMAC key "floe-deterministic-hmac" in PKCS#11 token "${labels[i]}"`,
        ),
        p.stdout.join('\n'),
      );
      const all = p.stdout.join('\n') + p.stderr.join('');
      assert.ok(!all.includes(pins[i]!), 'the PIN is never logged');
    }
  });

  hsmIt(
    'a signer refuses to start without its token, or with a wrong PIN, and starts once the token is back',
    async () => {
      await procs[2]!.kill('SIGKILL');
      const tdir = tokenDir(hsm!, 'proc-3')!;
      const away = join(dir, 'proc-3.token-away');
      renameSync(tdir, away);
      const gone = spawnFloe(['signer'], hsmSignerEnv(procEnv(2)));
      assert.notEqual(await gone.exited, 0);
      const goneOut = gone.stdout.join('\n') + gone.stderr.join('');
      assert.match(goneOut, /no PKCS#11 token "proc-3"/);
      assert.ok(!goneOut.includes(pins[2]!));
      renameSync(away, tdir);

      const wrongPin = secretFile(join(dir, 'proc-3.wrong-pin'), WRONG_PIN);
      const wrong = spawnFloe(['signer'], hsmSignerEnv({ ...procEnv(2), pinFile: wrongPin }));
      assert.notEqual(await wrong.exited, 0);
      const wrongOut = wrong.stdout.join('\n') + wrong.stderr.join('');
      assert.match(wrongOut, /refused the PIN/);
      assert.ok(!wrongOut.includes(WRONG_PIN) && !wrongOut.includes(pins[2]!));

      procs[2] = await startHsmSignerProcess(procEnv(2));
      assert.equal(procs[2].identity, peers[2], 'same store, same identity');
    },
  );
});
