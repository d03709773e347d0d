/**
 * Approvals: sessions waiting for their stewards, with what is to be signed. A steward decides
 * with a signed kind-30078 event (docs/approvals.md): pasted here, or signed by a NIP-07 browser
 * extension (window.nostr.signEvent) when one is present. The dashboard never holds a steward key.
 */
import { api, withQuery } from '../api.js';
import { badge, fields, fill, h, link, notice, short, table, when } from '../dom.js';
import { intentView } from './sessions.js';

/** The decision tags the coordinator asks for, with `decision` set to approve or reject. */
function decisionTags(a, decision) {
  return a.tags.map((t) => (t[0] === 'decision' ? ['decision', decision] : [...t]));
}

async function submit(a, event, msg, after) {
  try {
    const s = await api('POST', `/v1/sessions/${encodeURIComponent(a.session_id)}/approvals`, { event });
    msg.ok(`Decision recorded: the session is ${s.status}.`);
    await after();
  } catch (e) {
    msg.error(e);
  }
}

/** The decision form of one pending session; the outcome goes to `msg` (outside the panel, which a
 * recorded decision removes). */
function decisionPanel(a, msg, after) {
  const text = h('textarea.approval-event', {
    placeholder: '{"kind":30078,"tags":[…],"pubkey":…,"sig":…}',
    'aria-label': 'signed decision event',
  });
  const pasted = h(
    'form.approval-paste',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        let event;
        try {
          event = JSON.parse(text.value);
        } catch {
          msg.error(new Error('The decision is not JSON: paste the whole signed event.'));
          return;
        }
        await submit(a, event, msg, after);
      },
    },
    h('label', {}, 'Signed decision (kind-30078 event JSON)', text),
    h('button.primary.submit-approval', { type: 'submit' }, 'Submit decision'),
  );
  const nip07 = window.nostr?.signEvent
    ? h(
        'div.row',
        {},
        ['approve', 'reject'].map((decision) =>
          h(
            `button.nip07-${decision}${decision === 'approve' ? '.primary' : '.danger'}`,
            {
              type: 'button',
              onclick: async () => {
                try {
                  const event = await window.nostr.signEvent({
                    kind: 30078,
                    created_at: Math.floor(Date.now() / 1000),
                    tags: decisionTags(a, decision),
                    content: '',
                  });
                  await submit(a, event, msg, after);
                } catch (e) {
                  msg.error(e);
                }
              },
            },
            `${decision === 'approve' ? 'Approve' : 'Reject'} with my Nostr extension`,
          ),
        ),
      )
    : h('p.muted', {}, 'No NIP-07 extension (window.nostr) in this browser: paste a signed event instead.');
  return h(
    'div',
    {},
    h('h3', {}, 'Decide'),
    h(
      'p.muted',
      {},
      'A steward signs a kind-30078 event with exactly these tags (decision approve or reject), empty content:',
    ),
    h('pre.approval-tags', {}, JSON.stringify(a.tags)),
    nip07,
    pasted,
  );
}

export async function render(view, _params, ctx) {
  const list = h('section#approval-list');
  const msg = notice();
  msg.id = 'approval-result';
  fill(view, h('h1', {}, 'Approvals'), msg, list);
  let shown = '';

  const load = async () => {
    const page = await api('GET', withQuery('/v1/approvals', { status: 'pending', limit: 100 }));
    if (!ctx.live()) return;
    // Redrawn only when the set changes, so that a half-pasted decision is not wiped.
    const sig = JSON.stringify(page.items.map((a) => [a.session_id, a.approvals.length]));
    if (sig === shown) return;
    shown = sig;
    if (page.items.length === 0) {
      fill(list, h('p.empty', {}, 'Nothing waits for the stewards.'));
      return;
    }
    fill(
      list,
      page.items.map((a) =>
        h(
          'article.panel.approval',
          { 'data-session': a.session_id },
          h('h2', {}, a.summary),
          fields([
            ['session', link(a.session_id, 'sessions', a.session_id)],
            ['key', [link(a.key_label ?? short(a.key_id, 10), 'keys', a.key_id)]],
            [
              'approvals',
              `${a.approvals.length} of ${a.threshold} needed${a.veto ? ' (one rejection vetoes)' : ''}`,
            ],
            ['waiting for', a.waiting_for.map((p) => short(p, 10)).join(', ') || 'nobody'],
            ['deadline', when(a.deadline)],
            ['intent hash', h('code', {}, a.intent_hash)],
            ['device signature', a.require_device ? 'required' : undefined],
          ]),
          h('h3', {}, 'What is to be signed'),
          intentView(a),
          a.approvals.length
            ? table(
                [
                  ['steward', (d) => h('code', {}, short(d.steward, 10))],
                  ['decision', (d) => badge(d.decision)],
                  ['when', (d) => when(d.at)],
                ],
                a.approvals,
              )
            : null,
          decisionPanel(a, msg, load),
        ),
      ),
    );
  };
  await load();
  ctx.every(3000, load);
}
