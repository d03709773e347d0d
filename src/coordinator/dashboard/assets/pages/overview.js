/** Overview: the coordinator's health and crypto backend, its signers, sessions by status, recent failures. */
import { api, open, withQuery } from '../api.js';
import { badge, errorText, fields, fill, h, link, short, table, when } from '../dom.js';

/** The session statuses of src/domain/vocabulary.ts, in lifecycle order. */
export const SESSION_STATUSES = [
  'awaiting_approval',
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
  'completed',
  'failed',
  'expired',
];
/** Sessions carry their intents (a PSBT can be large): count at most this many per status. */
const COUNT_LIMIT = 100;

/** How many sessions have `status` (at most COUNT_LIMIT are counted: "100+" beyond). */
async function count(status) {
  const page = await api('GET', withQuery('/v1/sessions', { status, limit: COUNT_LIMIT }));
  return { status, n: page.items.length, more: page.next_cursor !== null, items: page.items };
}

function signerHealth(s) {
  if (s.quarantined && !s.quarantine_override) return 'quarantined';
  return s.status;
}

export async function render(view, _params, ctx) {
  const health = h('section#health');
  const signers = h('section#signers');
  const counts = h('section#counts');
  const failures = h('section#failures');
  fill(view, h('h1', {}, 'Overview'), h('div.grid2', {}, health, signers), counts, failures);

  const load = async () => {
    const [hz, sg, cs] = await Promise.allSettled([
      open('/healthz'),
      api('GET', '/v1/signers'),
      Promise.all(SESSION_STATUSES.map(count)),
    ]);
    if (!ctx.live()) return;
    fill(
      health,
      h('h2', {}, 'Coordinator'),
      hz.status === 'fulfilled'
        ? fields([
            ['status', badge(hz.value.status)],
            ['crypto backend', h('span#crypto-backend', {}, hz.value.crypto_backend)],
            ['database', hz.value.database],
            ['identity', h('code', {}, hz.value.identity)],
          ])
        : h('p.notice.error', {}, `Health check failed: ${errorText(hz.reason)}`),
    );
    fill(
      signers,
      h('h2', {}, 'Signers'),
      sg.status === 'fulfilled'
        ? table(
            [
              ['name', (s) => s.name ?? short(s.id)],
              ['health', (s) => badge(signerHealth(s))],
              ['url', (s) => h('code', {}, s.url)],
              ['last seen', (s) => when(s.last_seen_at)],
              ['latency', (s) => (s.last_latency_ms === null ? '—' : `${s.last_latency_ms} ms`)],
              ['faults', (s) => String(s.fault_count)],
            ],
            sg.value.items,
            'No signers registered (floe signer add, or POST /v1/signers).',
          )
        : h('p.notice.error', {}, errorText(sg.reason)),
    );
    if (cs.status !== 'fulfilled') {
      fill(counts, h('h2', {}, 'Sessions'), h('p.notice.error', {}, errorText(cs.reason)));
      return;
    }
    const hourAgo = Date.now() - 3600_000;
    const completed = cs.value.find((c) => c.status === 'completed');
    const recent = completed.items.filter((s) => (s.completed_at ?? 0) >= hourAgo).length;
    const lastHour = `${recent}${completed.more && recent === completed.items.length ? '+' : ''}`;
    fill(
      counts,
      h('h2', {}, 'Sessions by status'),
      h(
        'div.cards',
        {},
        cs.value.map((c) =>
          h(
            'div.card',
            { 'data-status': c.status },
            h('div.n', {}, `${c.n}${c.more ? '+' : ''}`),
            h('div.l', {}, c.status),
          ),
        ),
        h('div.card', {}, h('div.n', {}, lastHour), h('div.l', {}, 'completed in the last hour')),
      ),
    );
    const failed = cs.value
      .filter((c) => c.status === 'failed' || c.status === 'expired')
      .flatMap((c) => c.items)
      .sort((a, b) => b.updated_at - a.updated_at)
      .slice(0, 10);
    fill(
      failures,
      h('h2', {}, 'Recent failures'),
      table(
        [
          ['session', (s) => link(short(s.id), 'sessions', s.id)],
          ['key', (s) => link(short(s.key_id), 'keys', s.key_id)],
          ['status', (s) => badge(s.status)],
          ['error', (s) => [h('code', {}, s.error_code ?? '—'), ' ', s.error_message ?? '']],
          ['when', (s) => when(s.updated_at)],
        ],
        failed,
        'No failed sessions.',
      ),
    );
  };
  await load();
  ctx.every(10_000, load);
}
