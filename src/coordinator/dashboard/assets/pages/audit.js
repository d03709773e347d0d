/**
 * The audit log (GET /v1/audit, admins): the tenant's hash chain. The API pages it oldest first;
 * the page reads it to the end (at most MAX_ROWS rows) and shows the newest first.
 */
import { ApiError, api, withQuery } from '../api.js';
import { fill, h, short, table, when } from '../dom.js';

const PAGE = 1000;
const MAX_ROWS = 20_000;
const SHOWN = 100;

export async function render(view) {
  const rows = h('section#audit-rows');
  const older = h('button#audit-older', { type: 'button', hidden: true }, 'Older rows');
  fill(
    view,
    h('h1', {}, 'Audit log'),
    h(
      'p.muted',
      {},
      "Each row carries the hash of the tenant's previous row; ",
      h('code', {}, 'floe audit verify'),
      ' walks the chain and reports the first break.',
    ),
    rows,
    older,
  );
  const all = [];
  let after = 0;
  try {
    while (all.length < MAX_ROWS) {
      const page = await api('GET', withQuery('/v1/audit', { after, limit: PAGE }));
      all.push(...page.items);
      if (page.next_after === null) break;
      after = page.next_after;
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.problem?.code === 'not_found') {
      fill(rows, h('p.muted', {}, 'This coordinator has no audit log API (GET /v1/audit).'));
      return;
    }
    throw e;
  }
  all.reverse();
  let shown = 0;
  const show = () => {
    shown = Math.min(all.length, shown + SHOWN);
    fill(
      rows,
      h(
        'p.muted',
        {},
        `Newest first: ${shown} of ${all.length} rows${all.length >= MAX_ROWS ? ' (the first read)' : ''}.`,
      ),
      table(
        [
          ['#', (r) => String(r.id)],
          ['when', (r) => when(r.at)],
          ['what', (r) => h('code', {}, r.kind)],
          ['subject', (r) => (r.subject_type ? `${r.subject_type} ${short(r.subject_id ?? '', 10)}` : '—')],
          ['actor', (r) => r.actor],
          ['data', (r) => h('code', {}, JSON.stringify(r.data))],
          ['hash', (r) => h('code', { title: `previous ${r.prev_hash}` }, short(r.hash, 6))],
        ],
        all.slice(0, shown),
        'No audit rows.',
      ),
    );
    older.hidden = shown >= all.length;
  };
  older.addEventListener('click', show);
  show();
}
