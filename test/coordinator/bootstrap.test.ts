/**
 * First start of a coordinator: the bootstrap admin token goes to a 0600 file (by default
 * next to the identity key), works against the API, and is never created or written twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCoordinatorConfig } from '../../src/config/coordinator.js';
import { startCoordinator } from '../../src/coordinator/node.js';
import { freshServerDatabase } from '../helpers/db.js';
import { request } from '../helpers/http.js';

describe('bootstrap admin token', () => {
  const dirs: string[] = [];
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const d of drops) await d();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function config(extraEnv: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'floe-bootstrap-'));
    dirs.push(dir);
    const db = await freshServerDatabase();
    if (db) drops.push(() => db.drop());
    const env = {
      FLOE_COORDINATOR_DATA_DIR: dir,
      FLOE_COORDINATOR_LISTEN: '127.0.0.1:0',
      FLOE_LOG_LEVEL: 'silent',
      ...(db ? { DATABASE_URL: db.url } : {}),
      ...extraEnv,
    };
    return { dir, cfg: () => loadCoordinatorConfig(undefined, env) };
  }

  it('without admin_token_file it is written to <data_dir>/admin.token, mode 0600, once', async () => {
    const { dir, cfg } = await config();
    const first = await startCoordinator(cfg());
    const file = join(dir, 'admin.token');
    try {
      assert.ok(first.adminToken);
      assert.equal(readFileSync(file, 'utf8').trim(), first.adminToken);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const r = await request(first.url, 'GET', '/v1/keys', { token: first.adminToken });
      assert.equal(r.status, 200);
    } finally {
      await first.close();
    }
    const second = await startCoordinator(cfg());
    try {
      assert.equal(second.adminToken, undefined, 'no second bootstrap token');
      assert.equal(readFileSync(file, 'utf8').trim(), first.adminToken);
    } finally {
      await second.close();
    }
  });

  it('an existing token file is never overwritten', async () => {
    const { dir, cfg } = await config();
    const file = join(dir, 'admin.token');
    writeFileSync(file, 'floe_old_token\n', { mode: 0o600 });
    const node = await startCoordinator(cfg());
    try {
      assert.ok(node.adminToken, 'the empty database still gets its admin');
      assert.equal(readFileSync(file, 'utf8'), 'floe_old_token\n');
    } finally {
      await node.close();
    }
  });
});
