/**
 * `floe nostr post` and `floe key relays` as a person runs them (child processes of the CLI)
 * against a real cluster and real relay processes: the event id, note and nevent printed
 * point at an event the relay serves and nostr-tools verifies; each relay's answer is shown;
 * the exit code is 1 when no relay accepted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decode as nip19Decode } from 'nostr-tools/nip19';
import { verifyEvent as nostrToolsVerify } from 'nostr-tools/pure';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { spawnFloe } from '../helpers/processes.js';
import { fetchFrom } from '../helpers/relays.js';
import { type RelayProcess, spawnRelay } from '../nostr/helpers.js';

describe('floe nostr post | floe key relays', () => {
  let c: TestCluster;
  let key: any;
  let good: RelayProcess;
  let refusing: RelayProcess;
  before(async () => {
    [c, good, refusing] = await Promise.all([
      startCluster({ signers: 3 }),
      spawnRelay(['--port', '0']),
      spawnRelay(['--port', '0', '--auth']),
    ]);
    await c.registerSigners();
    key = await c.createKey(2);
  });
  after(async () => {
    await c?.close();
    await Promise.all([good?.kill(), refusing?.kill()]);
  });

  async function floe(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const p = spawnFloe(args, { FLOE_URL: c.url, FLOE_TOKEN: c.adminToken });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('') };
  }

  it('signs, publishes and prints the event id, note, nevent and every relay answer', async () => {
    const r = await floe([
      'nostr',
      'post',
      '--key',
      key.id,
      '--content',
      'hello from floe',
      '--tag',
      't=floe',
      '--relay',
      good.url,
      '--relay',
      refusing.url,
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.match(j.event_id, /^[0-9a-f]{64}$/);
    assert.deepEqual(nip19Decode(j.note), { type: 'note', data: j.event_id });
    const nevent = nip19Decode(j.nevent);
    assert.equal(nevent.type, 'nevent');
    assert.deepEqual(nevent.data, {
      id: j.event_id,
      relays: [good.url],
      author: key.x_only_public_key,
      kind: 1,
    });
    assert.equal(j.accepted, 1);
    const byRelay = Object.fromEntries(j.publish.results.map((x: any) => [x.relay, x]));
    assert.equal(byRelay[good.url].accepted, true);
    assert.equal(byRelay[refusing.url].accepted, false);
    assert.match(byRelay[refusing.url].message, /^auth-required:/);

    const e = await fetchFrom(good.url, j.event_id);
    assert.ok(e, 'the relay serves the event');
    assert.ok(nostrToolsVerify({ ...e }));
    assert.equal(e.content, 'hello from floe');
    assert.deepEqual(e.tags, [['t', 'floe']]);
  });

  it('prints a table without --json, and exits 1 when no relay accepted', async () => {
    const r = await floe([
      'nostr',
      'post',
      '--key',
      key.id,
      '--content',
      'nobody takes this',
      '--relay',
      refusing.url,
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^event id\s+[0-9a-f]{64}$/m);
    assert.match(r.out, /^note\s+note1/m);
    assert.match(r.out, /^nevent\s+nevent1/m);
    assert.match(r.out, new RegExp(`${refusing.url}\\s+refused\\s+1\\s+auth-required:`));
    assert.match(r.err, /no relay accepted/);

    const bad = await floe(['nostr', 'post', '--key', key.id, '--content', 'x', '--relay', 'http://nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /relay_url_invalid/);
  });

  it("sets a key's default relays, which nostr post then uses", async () => {
    const none = await floe(['nostr', 'post', '--key', key.id, '--content', 'where to?']);
    assert.equal(none.code, 1);
    assert.match(none.err, /publish_no_relays/);

    const set = await floe(['key', 'relays', key.id, `${good.url}/`, '--json']);
    assert.equal(set.code, 0, set.err);
    assert.deepEqual(JSON.parse(set.out), { key_id: key.id, relays: [good.url] });
    const show = await floe(['key', 'relays', key.id]);
    assert.equal(show.out.trim(), good.url);

    const r = await floe(['nostr', 'post', '--key', key.id, '--content', 'to the defaults', '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.deepEqual(j.publish.relays, [good.url]);
    assert.ok(await fetchFrom(good.url, j.event_id));

    const cleared = await floe(['key', 'relays', key.id, '--clear', '--json']);
    assert.deepEqual(JSON.parse(cleared.out).relays, []);
  });
});
