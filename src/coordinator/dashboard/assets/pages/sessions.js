/**
 * Sessions: the list with live status, a session's page with its intent as a person reads it
 * (a Nostr event's kind and content, a PSBT's outputs and amounts, a digest), and the form that
 * signs a message (text is hashed here with SHA-256, or a 64-hex digest is taken as it is).
 */
import { api, withQuery } from '../api.js';
import { badge, errorText, fields, fill, h, link, notice, sats, short, table, when } from '../dom.js';

export const TERMINAL = ['completed', 'failed', 'expired'];
const STATUSES = [
  'awaiting_approval',
  'pending',
  'nonce_collection',
  'signing',
  'aggregating',
  'completed',
  'failed',
  'expired',
];

const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');

/** SHA-256 of the UTF-8 text, hex (crypto.subtle: the page is served from a secure context). */
export async function sha256Hex(text) {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** What an intent asks for, in a few words (lists). */
export function intentLine(s) {
  const i = s.intent;
  if (i.type === 'nostr_event') {
    const c = i.event.content;
    return `Nostr kind ${i.event.kind}: ${c.length > 60 ? `${c.slice(0, 60)}…` : c}`;
  }
  if (i.type === 'bitcoin_psbt') {
    return s.bitcoin ? `PSBT: send ${sats(s.bitcoin.sent)}, fee ${sats(s.bitcoin.fee)}` : 'PSBT';
  }
  return `digest ${short(i.message, 10)}`;
}

/** The intent in full, as a person reads it. */
export function intentView(s) {
  const i = s.intent;
  if (i.type === 'nostr_event') {
    return h(
      'div.intent',
      {},
      fields([
        ['type', 'Nostr event'],
        ['kind', h('span.intent-kind', {}, String(i.event.kind))],
        ['created', when(i.event.created_at * 1000)],
        [
          'tags',
          i.event.tags.length ? h('pre', {}, i.event.tags.map((t) => JSON.stringify(t)).join('\n')) : 'none',
        ],
      ]),
      h('h3', {}, 'Content'),
      h('pre.intent-content', {}, i.event.content),
    );
  }
  if (i.type === 'bitcoin_psbt') {
    const b = s.bitcoin;
    if (!b) return h('div.intent', {}, h('p', {}, `Bitcoin PSBT on ${i.network} (no summary).`));
    return h(
      'div.intent',
      {},
      fields([
        ['type', `Bitcoin transaction (${b.network})`],
        ['txid', h('code', {}, b.txid)],
        ['sends', sats(b.sent)],
        ['change', sats(b.change)],
        ['fee', sats(b.fee)],
        ['inputs signed', b.inputs_signed.join(', ') || 'none'],
        ['cannot finalize', b.finalize_error],
      ]),
      h('h3', {}, 'Outputs'),
      table(
        [
          ['#', (o) => String(o.index)],
          ['to', (o) => h('code', {}, o.address ?? `script ${short(o.script, 12)}`)],
          ['amount', (o) => sats(o.value)],
          ['', (o) => (o.change ? `change${o.path ? ` (${o.path})` : ''}` : '')],
        ],
        b.outputs,
      ),
      h('h3', {}, 'Inputs'),
      table(
        [
          ['#', (x) => String(x.index)],
          ['spends', (x) => h('code', {}, short(x.prevout, 12))],
          ['amount', (x) => sats(x.value)],
          ['ours', (x) => (x.ours ? (x.path ?? 'own key') : 'no')],
        ],
        b.inputs,
      ),
    );
  }
  return h(
    'div.intent',
    {},
    fields([
      ['type', 'message digest (32 bytes)'],
      ['digest', h('code.intent-digest', {}, i.message)],
    ]),
  );
}

/** The sign-a-message form over `keys` (active ones), `selected` chosen first. */
export function signForm(keys, selected) {
  const key = h(
    'select#sign-key',
    { required: true },
    keys.map((k) =>
      h(
        'option',
        { value: k.id, selected: k.id === selected },
        `${k.label ?? short(k.id, 10)} (${k.threshold}/${k.n})`,
      ),
    ),
  );
  const asText = h('input', {
    type: 'radio',
    name: 'sign-mode',
    value: 'text',
    checked: true,
    id: 'sign-mode-text',
  });
  const asHex = h('input', { type: 'radio', name: 'sign-mode', value: 'hex', id: 'sign-mode-hex' });
  const input = h('textarea#sign-input', { required: true, placeholder: 'text to sign, or 64 hex digits' });
  const msg = notice();
  const button = h('button.primary#sign-button', { type: 'submit' }, 'Sign');
  return h(
    'form#sign-form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        msg.clear();
        let message;
        if (asHex.checked) {
          message = input.value.trim().toLowerCase();
          if (!/^[0-9a-f]{64}$/.test(message)) {
            msg.error(new Error('A digest is 64 hex digits (32 bytes); choose "text" to hash text first.'));
            return;
          }
        } else message = await sha256Hex(input.value);
        button.disabled = true;
        try {
          const s = await api('POST', '/v1/sessions', { key_id: key.value, message, wait: 0 });
          location.hash = `#/sessions/${encodeURIComponent(s.id)}`;
        } catch (err) {
          msg.error(err);
          button.disabled = false;
        }
      },
    },
    h('label', {}, 'Key', key),
    h(
      'div.row',
      {},
      h('label.check', {}, asText, 'text (signed as its SHA-256)'),
      h('label.check', {}, asHex, 'digest (64 hex digits)'),
    ),
    h('label', {}, 'Message', input),
    button,
    msg,
  );
}

export async function renderList(view, _params, ctx) {
  const status = h(
    'select#session-status',
    {},
    h('option', { value: '' }, 'all'),
    STATUSES.map((s) => h('option', { value: s }, s)),
  );
  const list = h('section#session-list');
  const sign = h('section#sign');
  fill(view, h('h1', {}, 'Sessions'), sign, h('div.row', {}, h('label', {}, 'Status', status)), list);

  const load = async () => {
    const page = await api('GET', withQuery('/v1/sessions', { limit: 50, status: status.value }));
    if (!ctx.live()) return;
    fill(
      list,
      table(
        [
          ['session', (s) => link(short(s.id, 10), 'sessions', s.id)],
          ['status', (s) => badge(s.status)],
          ['what', (s) => intentLine(s)],
          ['key', (s) => link(short(s.key_id, 10), 'keys', s.key_id)],
          ['created', (s) => when(s.created_at)],
          ['error', (s) => s.error_code ?? ''],
        ],
        page.items,
        'No sessions.',
      ),
    );
  };
  status.addEventListener('change', load);
  const keys = (await api('GET', withQuery('/v1/keys', { limit: 200 }))).items.filter(
    (k) => k.status === 'active',
  );
  fill(
    sign,
    h('h2', {}, 'Sign a message'),
    keys.length
      ? signForm(keys, keys[0].id)
      : h('p.muted', {}, 'No active key: create one on the Keys page.'),
  );
  await load();
  ctx.every(2000, load);
}

export async function renderSession(view, [id], ctx) {
  const head = h('section#session-head');
  const intent = h('section#session-intent');
  const result = h('section#session-result');
  fill(view, h('h1', {}, 'Session ', h('code', {}, id)), head, intent, result);
  let shownIntent = false;
  let done = false;

  const load = async () => {
    if (done) return;
    const s = await api('GET', `/v1/sessions/${encodeURIComponent(id)}`);
    if (!ctx.live()) return;
    done = TERMINAL.includes(s.status);
    fill(
      head,
      fields([
        ['status', h('span#session-status', { 'data-status': s.status }, badge(s.status))],
        ['key', link(s.key_id, 'keys', s.key_id)],
        ['attempt', String(s.attempt)],
        ['participants', s.participants.join(', ') || '—'],
        ['created', when(s.created_at)],
        ['expires', when(s.expires_at)],
        ['completed', s.completed_at ? when(s.completed_at) : undefined],
        ['intent hash', h('code', {}, s.intent_hash)],
      ]),
    );
    if (!shownIntent) {
      fill(intent, h('h2', {}, 'What is signed'), intentView(s));
      shownIntent = true;
    }
    fill(
      result,
      h('h2', {}, 'Result'),
      fields([
        ['signature', s.signature ? h('code#session-signature', {}, s.signature) : 'not yet'],
        ['signed event', s.event ? h('pre', {}, JSON.stringify(s.event, null, 2)) : undefined],
        ['transaction', s.raw_tx ? h('code', {}, s.raw_tx) : undefined],
        [
          'error',
          s.error_code ? h('span#session-error', {}, `${s.error_code}: ${s.error_message ?? ''}`) : undefined,
        ],
        ['culprits', s.culprits.length ? s.culprits.join(', ') : undefined],
      ]),
      s.approvals?.length
        ? [
            h('h3', {}, 'Steward decisions'),
            table(
              [
                ['steward', (a) => h('code', {}, short(a.steward, 10))],
                ['decision', (a) => badge(a.decision)],
                ['when', (a) => when(a.at)],
              ],
              s.approvals,
            ),
          ]
        : null,
    );
  };
  try {
    await load();
  } catch (e) {
    fill(head, h('p.notice.error', { role: 'alert' }, errorText(e)));
    return;
  }
  ctx.every(1000, load);
}
