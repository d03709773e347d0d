/** Webhooks (admins): the tenant's endpoints, a new one (its secret shown once), delete. */
import { api } from '../api.js';
import { fill, h, notice, table, when } from '../dom.js';

/** The event types of src/protocol/api.ts WEBHOOK_EVENTS. */
const EVENTS = [
  'session.completed',
  'session.failed',
  'approval.pending',
  'key.active',
  'signer.quarantined',
];

export async function render(view, _params, ctx) {
  const list = h('section#webhook-list');
  const msg = notice();
  const load = async () => {
    const r = await api('GET', '/v1/webhooks');
    if (!ctx.live()) return;
    fill(
      list,
      table(
        [
          ['url', (w) => h('code', {}, w.url)],
          ['events', (w) => w.events.join(', ')],
          ['description', (w) => w.description ?? '—'],
          ['created', (w) => when(w.created_at)],
          ['secret rotated', (w) => when(w.secret_rotated_at)],
          [
            '',
            (w) =>
              h(
                'button.danger',
                {
                  type: 'button',
                  onclick: async () => {
                    try {
                      await api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`);
                      msg.ok(`Deleted the webhook to ${w.url}.`);
                      await load();
                    } catch (e) {
                      msg.error(e);
                    }
                  },
                },
                'Delete',
              ),
          ],
        ],
        r.items,
        'No webhooks.',
      ),
    );
  };

  const url = h('input#webhook-url', {
    type: 'url',
    required: true,
    placeholder: 'https://example.com/floe',
  });
  const description = h('input#webhook-description', { type: 'text', maxlength: 200 });
  const boxes = EVENTS.map((e) => h('input', { type: 'checkbox', value: e, checked: true }));
  const secret = h('div#webhook-secret');
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        msg.clear();
        const body = { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) };
        if (description.value.trim()) body.description = description.value.trim();
        try {
          const r = await api('POST', '/v1/webhooks', body);
          fill(
            secret,
            h('p', {}, 'Signing secret (shown once, keep it with the receiver):'),
            h('pre', {}, r.secret),
          );
          msg.ok(`Created the webhook to ${r.webhook.url}.`);
          url.value = '';
          await load();
        } catch (err) {
          msg.error(err);
        }
      },
    },
    h('label', {}, 'URL', url),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Events'),
      EVENTS.map((e, i) => h('label.check', {}, boxes[i], e)),
    ),
    h('label', {}, 'Description', description),
    h('button.primary', { type: 'submit' }, 'Add webhook'),
  );
  fill(
    view,
    h('h1', {}, 'Webhooks'),
    h('p.muted', {}, 'Deliveries are signed with HMAC-SHA256 (docs/webhooks.md).'),
    list,
    msg,
    h('h2', {}, 'Add a webhook'),
    form,
    secret,
  );
  await load();
}
