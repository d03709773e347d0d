/**
 * The signer node's durable state on SQLite (better-sqlite3): key packages sealed at rest,
 * the node identity key (sealed), consumption markers and the audit log.
 *
 * Durability: WAL journal with `synchronous = FULL`, so every committed write (in
 * particular a consumption marker, DESIGN §4.4) is fsync'd before the call returns.
 * The database file is created with mode 0600 (SQLite gives its -wal/-shm files the same
 * mode); a newly created parent directory gets 0700.
 *
 * Integrity of key rows: the key package is sealed (AES-GCM, bound to key id and
 * identifier), and the columns in the clear (status, transcript hash, origin, identifier,
 * created_at) are bound by a MAC under a key derived from the data key (keystore.ts
 * KeyRowMac), written with every insert and status change and checked at every read, so
 * write access to signer.db without the passphrase cannot activate an uncertified key.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { decodePolicyState, encodePolicyState, type PolicyState } from '../approvals/policy.js';
import { decodeKeyPackage, encodeKeyPackage } from '../crypto/encoding.js';
import { parseScalar } from '../crypto/group.js';
import { u32be, utf8 } from '../crypto/hash.js';
import { wipe } from '../crypto/hex.js';
import { FloeError, isFloeError } from '../protocol/errors.js';
import type { FreezeRecord } from './freeze.js';
import type { KeySource } from './keys/key-source.js';
import {
  identityAad,
  type KeyRowFields,
  KeyRowMac,
  RecordCipher,
  refreshAad,
  sealCheck,
  shareAad,
  verifyCheck,
} from './keystore.js';
import { MIGRATIONS, SCHEMA_MIGRATIONS_DDL } from './migrations.js';
import type {
  AuditEntry,
  ConsumptionMarker,
  PendingRefresh,
  ShareOrigin,
  ShareStatus,
  SignerStore,
  StoredKey,
} from './ports.js';

// ---------- the slice of better-sqlite3 used here (the package ships no type declarations) ----------

interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

interface Statement {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

interface Database {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): void;
}

type DatabaseConstructor = new (
  filename: string,
  options?: { fileMustExist?: boolean; timeout?: number },
) => Database;

const Database = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;

// ---------- rows ----------

interface KeyRow {
  key_id: string;
  identifier: number;
  status: ShareStatus;
  origin: ShareOrigin;
  sealed: Buffer;
  transcript_hash: Buffer | null;
  created_at: number;
  mac: Buffer | null;
  /** The approval policy state's canonical JSON (migration 3), under the MAC when set. */
  approval_policy: string | null;
  /** Share generation (migration 5), under the MAC and the record's AAD once above 0. */
  generation: number;
}

interface RefreshRow {
  key_id: string;
  ceremony_id: string;
  generation: number;
  identifier: number;
  sealed: Buffer;
  public_hash: Buffer;
  members: string;
  created_at: number;
  mac: Buffer;
}

const REFRESH_ROW_TAG = 'floe/signer/refresh-row/v1';

function refreshRowFields(r: Omit<RefreshRow, 'sealed' | 'mac'>): Uint8Array[] {
  return [
    utf8(r.key_id),
    utf8(r.ceremony_id),
    u32be(r.generation),
    u32be(r.identifier),
    new Uint8Array(r.public_hash),
    utf8(r.members),
    utf8(String(r.created_at)),
  ];
}

function rowFields(r: Omit<KeyRow, 'sealed' | 'mac'>): KeyRowFields {
  return {
    keyId: r.key_id,
    identifier: r.identifier,
    status: r.status,
    origin: r.origin,
    transcriptHash: r.transcript_hash,
    createdAt: r.created_at,
    approvalPolicy: r.approval_policy,
    generation: r.generation,
  };
}

const KEY_COLUMNS =
  'key_id, identifier, status, origin, sealed, transcript_hash, created_at, mac, approval_policy, generation';

interface MarkerRow {
  key_id: string;
  session_id: string;
  attempt_id: string;
  identifier: number;
  message_digest: string;
  at: number;
}

interface AuditRow {
  at: number;
  kind: string;
  key_id: string | null;
  session_id: string | null;
  attempt_id: string | null;
  message_digest: string | null;
  detail: string | null;
}

/** The key source's stored parameters (named for the passphrase source's salt, which came first). */
const META_PARAMS = 'kdf_salt';
const META_CHECK = 'passphrase_check';
const META_KEY_SOURCE = 'key_source';

/** Milliseconds a connection waits on a lock held by another connection. */
export const BUSY_TIMEOUT_MS = 5000;
export const AUDIT_LIST_MAX = 10_000;
/**
 * SQLite's page cache for the connection, in KiB (SQLite's own default; better-sqlite3 builds
 * it with 16,000). Consumption markers are keyed by random session ids, so every signing
 * touches another leaf of the markers index, and a larger cache fills page by page as the
 * table grows: the signer's memory outside the V8 heap rose about 1 MB a minute in the soak
 * (docs/performance.md, bench/signer-store.ts). The pages not cached stay in the operating
 * system's file cache, and the marker check reads one leaf.
 */
export const PAGE_CACHE_KIB = 2000;

export interface SignerStoreOpenOptions {
  /** Path of the SQLite database file. */
  path: string;
  keySource: KeySource;
  /**
   * Create and initialise the database (salt, passphrase check) if it does not exist yet.
   * Default false: opening a missing or uninitialised database is refused, so a wrong path
   * does not silently start an empty key store.
   */
  create?: boolean;
}

function toBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function inTransaction<T>(db: Database, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** Apply every migration not yet recorded, each in its own transaction. Idempotent. */
function migrate(db: Database, now: number): void {
  db.exec(SCHEMA_MIGRATIONS_DDL);
  const known = new Set(MIGRATIONS.map((m) => m.id));
  const applied = db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[];
  for (const { id } of applied) {
    if (!known.has(id)) {
      throw new FloeError(
        'internal',
        `signer database has schema migration ${id}, unknown to this version of floe (newer database?)`,
      );
    }
  }
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE id = ?');
  const record = db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)');
  for (const m of MIGRATIONS) {
    inTransaction(db, () => {
      if (isApplied.get(m.id) !== undefined) return;
      db.exec(m.sql);
      record.run(m.id, m.name, now);
    });
  }
}

/** The record cipher and the key row MAC from a data key, which is wiped. */
function keysFrom(dataKey: Uint8Array): { cipher: RecordCipher; rowMac: KeyRowMac } {
  try {
    return { cipher: new RecordCipher(dataKey), rowMac: new KeyRowMac(dataKey) };
  } finally {
    wipe(dataKey);
  }
}

/** Whether `src` opens a directory recorded under another kind of its own family (KeySource.opensKind). */
function opensRecordedKind(src: KeySource, recorded: string): boolean {
  return src.opensKind?.(recorded) === true;
}

function restrictMode(path: string): void {
  if (process.platform === 'win32') return;
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(p)) chmodSync(p, 0o600);
  }
}

function tampered(keyId: string): FloeError {
  return new FloeError(
    'internal',
    `key ${keyId} failed its integrity check (its row was changed outside floe); refusing to use it`,
  );
}

export class SqliteSignerStore implements SignerStore {
  readonly path: string;
  readonly #db: Database;
  readonly #cipher: RecordCipher;
  readonly #rowMac: KeyRowMac;
  readonly #s: {
    insertKey: Statement;
    getKey: Statement;
    setStatus: Statement;
    setApprovalPolicy: Statement;
    deleteKey: Statement;
    countKeys: Statement;
    hasMarker: Statement;
    insertMarker: Statement;
    listMarkers: Statement;
    insertAudit: Statement;
    listAudit: Statement;
    hasAudit: Statement;
    getIdentity: Statement;
    setIdentity: Statement;
    getFreeze: Statement;
    putFreeze: Statement;
    putRefresh: Statement;
    getRefresh: Statement;
    deleteRefresh: Statement;
    setShare: Statement;
    revoke: Statement;
    isRevoked: Statement;
  };

  private constructor(path: string, db: Database, cipher: RecordCipher, rowMac: KeyRowMac) {
    this.path = path;
    this.#db = db;
    this.#cipher = cipher;
    this.#rowMac = rowMac;
    this.#s = {
      insertKey: db.prepare(
        `INSERT INTO keys (${KEY_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING`,
      ),
      getKey: db.prepare(`SELECT ${KEY_COLUMNS} FROM keys WHERE key_id = ?`),
      setStatus: db.prepare('UPDATE keys SET status = ?, mac = ? WHERE key_id = ?'),
      setApprovalPolicy: db.prepare('UPDATE keys SET approval_policy = ?, mac = ? WHERE key_id = ?'),
      deleteKey: db.prepare('DELETE FROM keys WHERE key_id = ?'),
      countKeys: db.prepare('SELECT count(*) AS n FROM keys'),
      hasMarker: db.prepare(
        'SELECT 1 FROM markers WHERE key_id = ? AND session_id = ? AND attempt_id = ? LIMIT 1',
      ),
      insertMarker: db.prepare(
        `INSERT INTO markers (key_id, session_id, attempt_id, identifier, message_digest, at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_id, session_id, attempt_id, identifier) DO NOTHING`,
      ),
      listMarkers: db.prepare(
        `SELECT key_id, session_id, attempt_id, identifier, message_digest, at FROM markers
         ORDER BY at, key_id, session_id, attempt_id, identifier`,
      ),
      insertAudit: db.prepare(
        `INSERT INTO audit (at, kind, key_id, session_id, attempt_id, message_digest, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      listAudit: db.prepare(
        `SELECT at, kind, key_id, session_id, attempt_id, message_digest, detail FROM audit
         ORDER BY id DESC LIMIT ?`,
      ),
      hasAudit: db.prepare('SELECT 1 FROM audit WHERE kind = ? AND key_id = ? AND detail = ? LIMIT 1'),
      getIdentity: db.prepare('SELECT sealed FROM identity WHERE slot = 1'),
      setIdentity: db.prepare(
        `INSERT INTO identity (slot, sealed, created_at) VALUES (1, ?, ?)
         ON CONFLICT (slot) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`,
      ),
      putRefresh: db.prepare(
        `INSERT INTO key_refreshes (key_id, ceremony_id, generation, identifier, sealed, public_hash, members, created_at, mac)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key_id) DO UPDATE SET ceremony_id = excluded.ceremony_id, generation = excluded.generation,
           identifier = excluded.identifier, sealed = excluded.sealed, public_hash = excluded.public_hash,
           members = excluded.members, created_at = excluded.created_at, mac = excluded.mac`,
      ),
      getRefresh: db.prepare(
        'SELECT key_id, ceremony_id, generation, identifier, sealed, public_hash, members, created_at, mac FROM key_refreshes WHERE key_id = ?',
      ),
      deleteRefresh: db.prepare('DELETE FROM key_refreshes WHERE key_id = ? AND ceremony_id = ?'),
      setShare: db.prepare('UPDATE keys SET sealed = ?, generation = ?, mac = ? WHERE key_id = ?'),
      revoke: db.prepare(
        `INSERT INTO key_revocations (key_id, identity, identifier, ceremony_id, revoked_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, identity) DO NOTHING`,
      ),
      isRevoked: db.prepare('SELECT 1 FROM key_revocations WHERE key_id = ? AND identity = ?'),
      getFreeze: db.prepare(
        'SELECT key_id, frozen, type, issued_at, nonce, operator, sig, applied_at FROM key_freezes WHERE key_id = ?',
      ),
      putFreeze: db.prepare(
        `INSERT INTO key_freezes (key_id, frozen, type, issued_at, nonce, operator, sig, applied_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key_id) DO UPDATE SET frozen = excluded.frozen, type = excluded.type,
           issued_at = excluded.issued_at, nonce = excluded.nonce, operator = excluded.operator,
           sig = excluded.sig, applied_at = excluded.applied_at`,
      ),
    };
  }

  // ---------- operator instructions (the kill switch, src/signer/freeze.ts) ----------

  /** The last operator instruction applied for a key, if any. */
  getFreeze(keyId: string): FreezeRecord | undefined {
    const r = this.#s.getFreeze.get(keyId) as
      | {
          key_id: string;
          frozen: number;
          type: 'freeze' | 'unfreeze';
          issued_at: number;
          nonce: string;
          operator: string;
          sig: string;
          applied_at: number;
        }
      | undefined;
    if (!r) return undefined;
    return {
      keyId: r.key_id,
      frozen: r.frozen === 1,
      instruction: {
        type: r.type,
        key_id: r.key_id,
        issued_at: r.issued_at,
        nonce: r.nonce,
        operator: r.operator,
        sig: r.sig,
      },
      appliedAt: r.applied_at,
    };
  }

  /** Record the instruction now in force for a key (replaces the previous one). */
  putFreeze(r: FreezeRecord): void {
    const i = r.instruction;
    this.#s.putFreeze.run(
      r.keyId,
      r.frozen ? 1 : 0,
      i.type,
      i.issued_at,
      i.nonce,
      i.operator,
      i.sig,
      r.appliedAt,
    );
  }

  /**
   * Open (or, with `create`, create and initialise) the signer database at `opts.path`.
   * On creation: random 16-byte salt and the passphrase check record are stored. On a later
   * open the data key is checked against that record: a wrong passphrase rejects with
   * FloeError('unauthorized').
   */
  static async open(opts: SignerStoreOpenOptions): Promise<SqliteSignerStore> {
    const { path, keySource } = opts;
    const create = opts.create ?? false;
    if (path === '' || path === ':memory:') {
      throw new FloeError('invalid_request', 'signer database path must name a file');
    }
    if (!existsSync(path)) {
      if (!create) {
        throw new FloeError('invalid_request', `no signer database at ${path} (initialise it first)`);
      }
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    const db = new Database(path, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    try {
      restrictMode(path);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal')
        throw new FloeError('internal', `signer database refused WAL mode (${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Deleted rows are overwritten rather than left in free pages.
      db.pragma('secure_delete = ON');
      db.pragma(`cache_size = ${-PAGE_CACHE_KIB}`);
      migrate(db, Date.now());
      restrictMode(path);

      const getMeta = db.prepare('SELECT v FROM meta WHERE k = ?');
      const params = getMeta.get(META_PARAMS) as { v: Buffer } | undefined;
      let keys: { cipher: RecordCipher; rowMac: KeyRowMac };
      if (params === undefined) {
        if (!create) {
          throw new FloeError('invalid_request', `signer database at ${path} is not initialised`);
        }
        keys = await SqliteSignerStore.#initialise(db, keySource);
      } else {
        const kind = getMeta.get(META_KEY_SOURCE) as { v: string } | undefined;
        const check = getMeta.get(META_CHECK) as { v: Buffer } | undefined;
        if (kind === undefined || check === undefined || !Buffer.isBuffer(params.v)) {
          throw new FloeError('internal', `signer database at ${path} has incomplete key metadata`);
        }
        if (kind.v !== keySource.kind && !opensRecordedKind(keySource, String(kind.v))) {
          throw new FloeError(
            'invalid_request',
            `signer database was sealed with key source ${kind.v}; this process uses ${keySource.kind}`,
          );
        }
        keys = keysFrom(await keySource.unwrap(toBytes(params.v)));
        try {
          if (verifyCheck(keys.cipher, check.v) < 2) SqliteSignerStore.#addKeyRowMacs(db, keys);
        } catch (e) {
          keys.cipher.destroy();
          keys.rowMac.destroy();
          throw e;
        }
      }
      return new SqliteSignerStore(path, db, keys.cipher, keys.rowMac);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  static async #initialise(
    db: Database,
    keySource: KeySource,
  ): Promise<{ cipher: RecordCipher; rowMac: KeyRowMac }> {
    const { params, dataKey } = await keySource.init();
    const keys = keysFrom(dataKey);
    const check = sealCheck(keys.cipher);
    const put = db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
    // Plain INSERTs: a concurrent initialiser makes this fail instead of replacing the parameters.
    inTransaction(db, () => {
      put.run(META_PARAMS, params);
      put.run(META_CHECK, check);
      put.run(META_KEY_SOURCE, keySource.kind);
    });
    return keys;
  }

  /**
   * A store from before key row MACs (check record v1): give every key row its MAC and seal
   * the check record as v2, in one transaction. This runs once, at the first open with the
   * passphrase by a version that knows MACs; afterwards the check record (sealed under the
   * data key, so nobody without the passphrase can turn it back to v1) says that every row
   * has a MAC, and a row without one is refused as tampered rather than given one. The MACs
   * made here vouch for the rows as they are at that open, like everything written before
   * this version did.
   */
  static #addKeyRowMacs(db: Database, keys: { cipher: RecordCipher; rowMac: KeyRowMac }): void {
    const getCheck = db.prepare('SELECT v FROM meta WHERE k = ?');
    const rows = db.prepare(`SELECT ${KEY_COLUMNS} FROM keys ORDER BY key_id`);
    const setMac = db.prepare('UPDATE keys SET mac = ? WHERE key_id = ?');
    const setCheck = db.prepare('UPDATE meta SET v = ? WHERE k = ?');
    inTransaction(db, () => {
      // Another process may have upgraded the store since we read the check record.
      const check = getCheck.get(META_CHECK) as { v: Buffer };
      if (verifyCheck(keys.cipher, check.v) >= 2) return;
      for (const r of rows.all() as KeyRow[]) {
        if (r.mac === null) setMac.run(keys.rowMac.mac(rowFields(r)), r.key_id);
        else if (!keys.rowMac.verify(rowFields(r), r.mac)) throw tampered(r.key_id);
      }
      setCheck.run(sealCheck(keys.cipher, 2), META_CHECK);
    });
  }

  // ---------- keys ----------

  putKey(key: StoredKey): void {
    if (key.keyPackage.identifier !== key.identifier) {
      throw new FloeError('invalid_request', 'key package identifier differs from the key identifier');
    }
    const plain = Buffer.from(JSON.stringify(encodeKeyPackage(key.keyPackage)), 'utf8');
    let sealed: Uint8Array;
    try {
      sealed = this.#cipher.seal(plain, shareAad(key.keyId, key.identifier, key.generation ?? 0));
    } finally {
      wipe(plain);
    }
    const fields: KeyRowFields = {
      keyId: key.keyId,
      identifier: key.identifier,
      status: key.status,
      origin: key.origin,
      transcriptHash: key.transcriptHash ?? null,
      createdAt: key.createdAt,
      approvalPolicy: key.approvalPolicy ? encodePolicyState(key.approvalPolicy) : null,
      generation: key.generation ?? 0,
    };
    const r = this.#s.insertKey.run(
      key.keyId,
      key.identifier,
      key.status,
      key.origin,
      sealed,
      fields.transcriptHash,
      key.createdAt,
      this.#rowMac.mac(fields),
      fields.approvalPolicy,
      fields.generation,
    );
    if (r.changes === 0) throw new FloeError('key_exists', `key ${key.keyId} already exists on this node`);
  }

  /**
   * Unsealed keys, decoded and checked once, kept for the life of the store (a signing request
   * must not pay an AES-GCM open, a JSON parse and point validation every time). Each caller
   * gets its own copy of the share, so wiping it does not touch the cache; the public package
   * object is shared (its decoded points are cached by the crypto layer). Wiped on delete and
   * on close. Status changes go through this store and update it.
   */
  readonly #keys = new Map<string, StoredKey>();

  getKey(keyId: string): StoredKey | undefined {
    let k = this.#keys.get(keyId);
    if (!k) {
      k = this.#loadKey(keyId);
      if (!k) return undefined;
      this.#keys.set(keyId, k);
    }
    return {
      ...k,
      keyPackage: { ...k.keyPackage, signingShare: Uint8Array.from(k.keyPackage.signingShare) },
    };
  }

  #forgetKey(keyId: string): void {
    const k = this.#keys.get(keyId);
    if (k) wipe(k.keyPackage.signingShare);
    this.#keys.delete(keyId);
  }

  #loadKey(keyId: string): StoredKey | undefined {
    const row = this.#s.getKey.get(keyId) as KeyRow | undefined;
    if (row === undefined) return undefined;
    this.#checkRow(row);
    let plain: Uint8Array;
    try {
      plain = this.#cipher.open(row.sealed, shareAad(row.key_id, row.identifier, row.generation));
    } catch (e) {
      if (isFloeError(e)) {
        throw new FloeError(
          'internal',
          `stored key package for key ${keyId} does not decrypt (${e.message})`,
        );
      }
      throw e;
    }
    let keyPackage: StoredKey['keyPackage'];
    try {
      keyPackage = decodeKeyPackage(
        JSON.parse(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength).toString('utf8')),
      );
    } catch {
      throw new FloeError('internal', `stored key package for key ${keyId} is malformed`);
    } finally {
      wipe(plain);
    }
    if (keyPackage.identifier !== row.identifier) {
      wipe(keyPackage.signingShare);
      throw new FloeError('internal', `stored key package for key ${keyId} has another identifier`);
    }
    const out: StoredKey = {
      keyId: row.key_id,
      identifier: row.identifier,
      status: row.status,
      origin: row.origin,
      keyPackage,
      createdAt: row.created_at,
    };
    if (row.generation > 0) out.generation = row.generation;
    if (row.transcript_hash !== null) out.transcriptHash = toBytes(row.transcript_hash);
    if (row.approval_policy !== null) {
      try {
        out.approvalPolicy = decodePolicyState(row.approval_policy);
      } catch {
        wipe(keyPackage.signingShare);
        throw new FloeError('internal', `stored approval policy for key ${keyId} is malformed`);
      }
    }
    return out;
  }

  /** Throws FloeError('internal') naming the key (never values) unless the row's MAC verifies. */
  #checkRow(row: KeyRow): void {
    if (!this.#rowMac.verify(rowFields(row), row.mac)) throw tampered(row.key_id);
  }

  /**
   * The row's MAC is checked before the new status and MAC are written (in one transaction),
   * so a status change never vouches for a row altered outside floe. The audit entry, if any,
   * goes in the same transaction (one fsync).
   */
  setKeyStatus(keyId: string, status: ShareStatus, audit?: AuditEntry): void {
    inTransaction(this.#db, () => {
      const row = this.#s.getKey.get(keyId) as KeyRow | undefined;
      if (row === undefined) throw new FloeError('unknown_key', `no key ${keyId} on this node`);
      this.#checkRow(row);
      this.#s.setStatus.run(status, this.#rowMac.mac({ ...rowFields(row), status }), keyId);
      if (audit) this.appendAudit(audit);
    });
    const cached = this.#keys.get(keyId);
    if (cached) cached.status = status;
  }

  /**
   * Replace a key's approval policy state (DESIGN §13): the row's MAC is checked, then the new
   * state and MAC are written in one transaction, as for a status change.
   */
  setApprovalPolicy(keyId: string, state: PolicyState): void {
    const json = encodePolicyState(state);
    inTransaction(this.#db, () => {
      const row = this.#s.getKey.get(keyId) as KeyRow | undefined;
      if (row === undefined) throw new FloeError('unknown_key', `no key ${keyId} on this node`);
      this.#checkRow(row);
      this.#s.setApprovalPolicy.run(
        json,
        this.#rowMac.mac({ ...rowFields(row), approvalPolicy: json }),
        keyId,
      );
    });
    const cached = this.#keys.get(keyId);
    if (cached) cached.approvalPolicy = decodePolicyState(json);
  }

  /** Delete a key (its sealed record is overwritten: secure_delete). No-op if absent. */
  deleteKey(keyId: string): void {
    this.#s.deleteKey.run(keyId);
    this.#forgetKey(keyId);
  }

  countKeys(): number {
    return (this.#s.countKeys.get() as { n: number }).n;
  }

  // ---------- share refresh (src/signer/refresh.ts) ----------

  putPendingRefresh(p: PendingRefresh): void {
    const identifier = p.keyPackage.identifier;
    const plain = Buffer.from(JSON.stringify(encodeKeyPackage(p.keyPackage)), 'utf8');
    let sealed: Uint8Array;
    try {
      sealed = this.#cipher.seal(plain, refreshAad(p.keyId, identifier, p.generation, p.ceremonyId));
    } finally {
      wipe(plain);
    }
    const row = {
      key_id: p.keyId,
      ceremony_id: p.ceremonyId,
      generation: p.generation,
      identifier,
      public_hash: Buffer.from(p.publicHash),
      members: JSON.stringify(p.members),
      created_at: p.createdAt,
    };
    this.#s.putRefresh.run(
      row.key_id,
      row.ceremony_id,
      row.generation,
      row.identifier,
      sealed,
      row.public_hash,
      row.members,
      row.created_at,
      this.#rowMac.macFields(REFRESH_ROW_TAG, refreshRowFields(row)),
    );
  }

  getPendingRefresh(keyId: string): PendingRefresh | undefined {
    const row = this.#s.getRefresh.get(keyId) as RefreshRow | undefined;
    if (!row) return undefined;
    if (!this.#rowMac.verifyFields(REFRESH_ROW_TAG, refreshRowFields(row), row.mac)) throw tampered(keyId);
    let plain: Uint8Array;
    try {
      plain = this.#cipher.open(
        row.sealed,
        refreshAad(row.key_id, row.identifier, row.generation, row.ceremony_id),
      );
    } catch {
      throw new FloeError('internal', `pending refresh of key ${keyId} does not decrypt`);
    }
    let keyPackage: StoredKey['keyPackage'];
    try {
      keyPackage = decodeKeyPackage(
        JSON.parse(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength).toString('utf8')),
      );
    } catch {
      throw new FloeError('internal', `pending refresh of key ${keyId} is malformed`);
    } finally {
      wipe(plain);
    }
    return {
      keyId: row.key_id,
      ceremonyId: row.ceremony_id,
      generation: row.generation,
      keyPackage,
      publicHash: toBytes(row.public_hash),
      members: JSON.parse(row.members) as PendingRefresh['members'],
      createdAt: row.created_at,
    };
  }

  dropPendingRefresh(keyId: string, ceremonyId: string): boolean {
    return this.#s.deleteRefresh.run(keyId, ceremonyId).changes > 0;
  }

  commitRefresh(keyId: string, ceremonyId: string, at: number): void {
    inTransaction(this.#db, () => {
      const row = this.#s.getKey.get(keyId) as KeyRow | undefined;
      if (row === undefined) throw new FloeError('unknown_key', `no key ${keyId} on this node`);
      this.#checkRow(row);
      const pending = this.getPendingRefresh(keyId);
      if (!pending || pending.ceremonyId !== ceremonyId) {
        if (pending) wipe(pending.keyPackage.signingShare);
        throw new FloeError(
          'ceremony_unknown',
          `no pending refresh ${ceremonyId} of key ${keyId} on this node`,
        );
      }
      try {
        if (pending.keyPackage.identifier !== row.identifier || pending.generation !== row.generation + 1) {
          throw new FloeError(
            'ceremony_conflict',
            'the pending refresh is not the next generation of this share',
          );
        }
        const plain = Buffer.from(JSON.stringify(encodeKeyPackage(pending.keyPackage)), 'utf8');
        let sealed: Uint8Array;
        try {
          sealed = this.#cipher.seal(plain, shareAad(keyId, row.identifier, pending.generation));
        } finally {
          wipe(plain);
        }
        // The old sealed share is overwritten in place (secure_delete also zeroes freed pages).
        this.#s.setShare.run(
          sealed,
          pending.generation,
          this.#rowMac.mac({ ...rowFields(row), generation: pending.generation }),
          keyId,
        );
        this.#s.deleteRefresh.run(keyId, ceremonyId);
        this.appendAudit({
          at,
          kind: 'key_refreshed',
          keyId,
          detail: `${ceremonyId} generation ${pending.generation}`,
        });
      } finally {
        wipe(pending.keyPackage.signingShare);
      }
    });
    this.#forgetKey(keyId);
    // Old WAL frames still hold the old record: fold them into the database and truncate the log.
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // best effort: a reader holding the log open delays it to the next checkpoint
    }
  }

  revokeIdentity(keyId: string, identity: string, identifier: number, ceremonyId: string, at: number): void {
    inTransaction(this.#db, () => {
      if (this.#s.revoke.run(keyId, identity, identifier, ceremonyId, at).changes > 0) {
        this.appendAudit({
          at,
          kind: 'member_revoked',
          keyId,
          detail: `${identifier} ${identity} by ${ceremonyId}`,
        });
      }
    });
  }

  isRevoked(keyId: string, identity: string): boolean {
    return this.#s.isRevoked.get(keyId, identity) !== undefined;
  }

  // ---------- share backup (src/signer/backup.ts) ----------

  /**
   * One active key's record for a backup (its share is a copy: wipe it) with the operator
   * instruction in force for it; the export is audited (`key_backup_exported`). unknown_key,
   * key_not_active (a pending share was never certified: nothing to back up).
   */
  exportKey(keyId: string, at: number): { key: StoredKey; freeze?: FreezeRecord } {
    const key = this.getKey(keyId);
    if (!key) throw new FloeError('unknown_key', `no key ${keyId} on this node`);
    if (key.status !== 'active') {
      wipe(key.keyPackage.signingShare);
      throw new FloeError(
        'key_not_active',
        `key ${keyId} is ${key.status} on this node; only an active share is backed up`,
      );
    }
    const freeze = this.getFreeze(keyId);
    this.appendAudit({ at, kind: 'key_backup_exported', keyId });
    return { key, ...(freeze ? { freeze } : {}) };
  }

  /**
   * Insert a restored key (sealed and MAC'd as every key row) and its operator instruction, with
   * the audit entry `key_restored`, in one transaction; key_exists if the key is here already.
   */
  restoreKey(key: StoredKey, freeze: FreezeRecord | undefined, at: number): void {
    inTransaction(this.#db, () => {
      this.putKey(key);
      if (freeze) this.putFreeze(freeze);
      this.appendAudit({ at, kind: 'key_restored', keyId: key.keyId });
    });
  }

  // ---------- consumption markers ----------

  hasMarker(keyId: string, sessionId: string, attemptId: string): boolean {
    return this.#s.hasMarker.get(keyId, sessionId, attemptId) !== undefined;
  }

  /**
   * Every marker and its audit row in ONE transaction: with synchronous = FULL the WAL is
   * fsync'd once, before this returns. A marker already there is `replay` (no audit row);
   * any failure to write → FloeError('marker_write_failed') and nothing written (the caller
   * must not release a share).
   */
  putMarkers(entries: readonly { marker: ConsumptionMarker; audit: AuditEntry }[]): ('ok' | 'replay')[] {
    try {
      return inTransaction(this.#db, () =>
        entries.map(({ marker: m, audit }) => {
          const r = this.#s.insertMarker.run(
            m.keyId,
            m.sessionId,
            m.attemptId,
            m.identifier,
            m.messageDigest,
            m.at,
          );
          if (r.changes === 0) return 'replay' as const;
          this.appendAudit(audit);
          return 'ok' as const;
        }),
      );
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw new FloeError(
        'marker_write_failed',
        `consumption marker could not be written${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
  }

  listMarkers(): ConsumptionMarker[] {
    return (this.#s.listMarkers.all() as MarkerRow[]).map((r) => ({
      keyId: r.key_id,
      sessionId: r.session_id,
      attemptId: r.attempt_id,
      identifier: r.identifier,
      messageDigest: r.message_digest,
      at: r.at,
    }));
  }

  // ---------- audit ----------

  appendAudit(e: AuditEntry): void {
    this.#s.insertAudit.run(
      e.at,
      e.kind,
      e.keyId ?? null,
      e.sessionId ?? null,
      e.attemptId ?? null,
      e.messageDigest ?? null,
      e.detail ?? null,
    );
  }

  hasAudit(kind: string, keyId: string, detail: string): boolean {
    return this.#s.hasAudit.get(kind, keyId, detail) !== undefined;
  }

  /** The newest `limit` entries (default 100, at most 10 000), newest first. */
  listAudit(limit = 100): AuditEntry[] {
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_LIST_MAX) {
      throw new FloeError('invalid_request', `audit limit must be an integer from 1 to ${AUDIT_LIST_MAX}`);
    }
    return (this.#s.listAudit.all(limit) as AuditRow[]).map((r) => {
      const e: AuditEntry = { at: r.at, kind: r.kind };
      if (r.key_id !== null) e.keyId = r.key_id;
      if (r.session_id !== null) e.sessionId = r.session_id;
      if (r.attempt_id !== null) e.attemptId = r.attempt_id;
      if (r.message_digest !== null) e.messageDigest = r.message_digest;
      if (r.detail !== null) e.detail = r.detail;
      return e;
    });
  }

  // ---------- node identity ----------

  /** The node identity secret key, or undefined before {@link setIdentity}. */
  getIdentity(): Uint8Array | undefined {
    const row = this.#s.getIdentity.get() as { sealed: Buffer } | undefined;
    if (row === undefined) return undefined;
    const secret = this.#cipher.open(row.sealed, identityAad());
    if (secret.length !== 32) {
      wipe(secret);
      throw new FloeError('internal', 'stored identity key has the wrong length');
    }
    return secret;
  }

  /** Store (or replace) the node identity secret key, sealed. */
  setIdentity(secret: Uint8Array): void {
    if (secret.length !== 32) throw new FloeError('invalid_request', 'identity key must be 32 bytes');
    parseScalar(secret, 'identity key');
    this.#s.setIdentity.run(this.#cipher.seal(secret, identityAad()), Date.now());
  }

  // ---------- diagnostics ----------

  /** The connection's durability and memory settings, for health checks and tests. */
  settings(): {
    journalMode: string;
    synchronous: number;
    foreignKeys: boolean;
    busyTimeoutMs: number;
    pageCacheKib: number;
  } {
    const db = this.#db;
    const cache = Number(db.pragma('cache_size', { simple: true }));
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    return {
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      synchronous: Number(db.pragma('synchronous', { simple: true })),
      foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
      busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
      // (negative: KiB; positive: pages)
      pageCacheKib: cache < 0 ? -cache : Math.round((cache * pageSize) / 1024),
    };
  }

  close(): void {
    for (const id of [...this.#keys.keys()]) this.#forgetKey(id);
    if (this.#db.open) this.#db.close();
    this.#cipher.destroy();
    this.#rowMac.destroy();
  }
}
