/**
 * Keys: the list, creation by DKG with its progress, and a key's page (npub, addresses, bunker
 * and its clients, approval policy, the kill switch).
 */
import { ApiError, api, withQuery } from '../api.js';
import { badge, errorText, fields, fill, h, link, notice, short, table, when } from '../dom.js';
import { signForm } from './sessions.js';

const keyPath = (id) => `/v1/keys/${encodeURIComponent(id)}`;

/** Lines of a textarea, trimmed, without empty ones. */
const lines = (s) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export async function renderList(view, _params, ctx) {
  const list = h('section#key-list');
  const create = h('section#create-key');
  fill(view, h('h1', {}, 'Keys'), create, list);

  const load = async () => {
    const page = await api('GET', withQuery('/v1/keys', { limit: 200 }));
    if (!ctx.live()) return;
    fill(
      list,
      h('h2', {}, 'All keys'),
      table(
        [
          ['key', (k) => link(short(k.id, 10), 'keys', k.id)],
          ['label', (k) => h('span.label', {}, k.label ?? '—')],
          ['status', (k) => badge(k.status)],
          ['threshold', (k) => `${k.threshold} of ${k.n}`],
          ['npub', (k) => h('code', {}, short(k.npub ?? '—', 12))],
          ['approvals', (k) => (k.approval_policy ? `${k.approval_policy.threshold} steward(s)` : '—')],
          ['created', (k) => when(k.created_at)],
        ],
        page.items,
        'No keys yet.',
      ),
    );
  };

  const signers = (await api('GET', '/v1/signers')).items.filter((s) => s.status === 'active');
  fill(create, h('h2', {}, 'Create a key (DKG)'), createForm(signers, load));
  await load();
  ctx.every(5000, load);
}

function createForm(signers, reload) {
  const threshold = h('input#key-threshold', {
    type: 'number',
    min: 2,
    max: Math.max(2, signers.length),
    value: Math.min(2, signers.length),
    required: true,
  });
  const label = h('input#key-label', { type: 'text', maxlength: 200, placeholder: 'optional' });
  const boxes = signers.map((s) =>
    h('input', { type: 'checkbox', name: 'signer', value: s.id, checked: true }),
  );
  const stewards = h('textarea#key-stewards', { placeholder: 'npub1… (one per line); empty: no approvals' });
  const stewardThreshold = h('input#key-steward-threshold', { type: 'number', min: 1, value: 1 });
  const msg = notice();
  const progress = h('div#key-progress');
  const button = h('button.primary#create-key-button', { type: 'submit' }, 'Create key');
  return h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        msg.clear();
        const body = {
          threshold: Number(threshold.value),
          signers: boxes.filter((b) => b.checked).map((b) => b.value),
          wait: 0,
        };
        if (label.value.trim()) body.label = label.value.trim();
        const st = lines(stewards.value);
        if (st.length) body.approval_policy = { stewards: st, threshold: Number(stewardThreshold.value) };
        button.disabled = true;
        try {
          let k = await api('POST', '/v1/keys', body);
          const show = () =>
            fill(
              progress,
              h(
                'p',
                {},
                'Key ',
                link(short(k.id, 10), 'keys', k.id),
                ': ',
                h('span#key-progress-status', {}, k.status),
                k.ceremony ? ` (ceremony ${k.ceremony.status})` : '',
              ),
            );
          show();
          while (k.status === 'pending') {
            await new Promise((r) => setTimeout(r, 500));
            k = await api('GET', keyPath(k.id));
            show();
          }
          if (k.status === 'active') msg.ok(`Key ${k.id} is active: ${k.npub}`);
          else msg.error(`Key generation ended ${k.status}: ${k.ceremony?.error_code ?? ''}`);
          for (const w of k.warnings ?? []) progress.append(h('p.muted', {}, `warning: ${w.detail}`));
          await reload();
        } catch (err) {
          msg.error(err);
        } finally {
          button.disabled = false;
        }
      },
    },
    h('div.row', {}, h('label', {}, 'Threshold', threshold), h('label', {}, 'Label', label)),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Signers'),
      signers.length
        ? signers.map((s, i) => h('label.check', {}, boxes[i], s.name ?? s.id, ' ', h('code', {}, s.url)))
        : h('p.empty', {}, 'No active signers.'),
    ),
    h(
      'details',
      {},
      h('summary', {}, 'Steward approval policy (optional)'),
      h('label', {}, 'Stewards', stewards),
      h('label', {}, 'Approvals needed', stewardThreshold),
    ),
    button,
    progress,
    msg,
  );
}

/** A section filled by `load`, or with what went wrong (a missing route or resource says so). */
async function part(el, title, load, missing) {
  try {
    fill(el, h('h2', {}, title), await load());
  } catch (e) {
    const absent = e instanceof ApiError && e.status === 404;
    fill(
      el,
      h('h2', {}, title),
      h(absent ? 'p.muted' : 'p.notice.error', {}, absent ? missing(e) : errorText(e)),
    );
  }
}

function policyView(p) {
  if (!p) return h('p.muted#approval-policy', {}, 'No approval policy: signing needs no steward.');
  return h(
    'div#approval-policy',
    {},
    fields([
      ['approvals needed', `${p.threshold} of ${p.stewards.length}`],
      ['veto', p.veto ? 'one rejection fails the session' : 'no'],
      ['time to decide', `${p.expires_in_s} s`],
      ['required for', p.required_for ? JSON.stringify(p.required_for) : 'every intent'],
      ['device signature', p.require_device ? 'required' : 'not required'],
      ['revision', String(p.revision)],
    ]),
    h('h3', {}, 'Stewards'),
    h(
      'ul',
      {},
      p.stewards_npub.map((n) => h('li', {}, h('code', {}, n))),
    ),
  );
}

function instructionForm(k, type, after) {
  const text = h('textarea', {
    id: `${type}-instruction`,
    placeholder: '{"type":"' + type + '","key_id":…}',
  });
  const msg = notice();
  const result = h('div');
  const button = h(
    `button.${type === 'freeze' ? 'danger' : 'primary'}`,
    { id: `${type}-button`, type: 'submit' },
    type === 'freeze' ? 'Freeze key' : 'Unfreeze key',
  );
  return h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        msg.clear();
        let instruction;
        try {
          instruction = JSON.parse(text.value);
        } catch {
          msg.error(new Error('The instruction is not JSON: paste the signed instruction object.'));
          return;
        }
        button.disabled = true;
        try {
          const r = await api('POST', `${keyPath(k.id)}/${type}`, { instruction });
          msg.ok(`Key is now ${r.key.status}.`);
          fill(
            result,
            fields([
              ['sessions failed', r.sessions_failed === undefined ? undefined : String(r.sessions_failed)],
            ]),
            table(
              [
                ['signer', (s) => `${s.identifier}: ${s.signer_id}`],
                ['applied', (s) => (s.applied ? 'yes' : `no: ${s.error_code ?? ''} ${s.detail ?? ''}`)],
              ],
              r.signers ?? [],
            ),
          );
          await after();
        } catch (err) {
          msg.error(err);
        } finally {
          button.disabled = false;
        }
      },
    },
    h(
      'p.muted',
      {},
      `${type === 'freeze' ? 'Freezing stops all signing with this key at once, here and on every signer.' : 'Unfreezing lets the key sign again.'} It needs an instruction signed with the operator key, which never enters the browser. On the operator's machine run `,
      h('code', {}, `floe key ${type} ${k.id}`),
      ' (it signs and submits), or paste an instruction signed there:',
    ),
    h('label', {}, 'Signed instruction (JSON)', text),
    button,
    msg,
    result,
  );
}

export async function renderKey(view, [id], ctx) {
  const head = h('section#key-head');
  const policy = h('section#key-policy');
  const addresses = h('section#key-addresses');
  const bunker = h('section#key-bunker');
  const controls = h('section#key-controls');
  const sign = h('section#key-sign');
  fill(view, h('h1', {}, 'Key ', h('code', {}, id)), head, sign, policy, addresses, bunker, controls);

  const load = async () => {
    const k = await api('GET', keyPath(id));
    if (!ctx.live()) return k;
    fill(
      head,
      fields([
        ['label', h('span.label#key-label-value', {}, k.label ?? '—')],
        ['status', h('span#key-status', {}, badge(k.status))],
        ['threshold', `${k.threshold} of ${k.n}`],
        ['origin', k.origin],
        ['npub', h('code#key-npub', {}, k.npub ?? '—')],
        ['public key (x-only)', h('code', {}, k.x_only_public_key ?? '—')],
        ['members', k.members.map((m) => `${m.identifier}: ${m.signer_id}`).join(', ')],
        [
          'ceremony',
          k.ceremony
            ? `${k.ceremony.status}${k.ceremony.error_code ? ` (${k.ceremony.error_code})` : ''}`
            : undefined,
        ],
        ['relays', k.relays?.length ? k.relays.join(', ') : undefined],
        ['created', when(k.created_at)],
      ]),
    );
    return k;
  };
  const k = await load();
  fill(policy, h('h2', {}, 'Approval policy'), policyView(k.approval_policy));
  if (k.status === 'active') fill(sign, h('h2', {}, 'Sign a message'), signForm([k], k.id));
  await Promise.all([
    part(
      addresses,
      'Addresses',
      async () => {
        const a = await api('GET', withQuery(`${keyPath(id)}/addresses`, { count: 5 }));
        return [
          h('p.muted', {}, `Receive addresses on ${a.network} (BIP-86, m/0/i):`),
          table(
            [
              ['path', (x) => x.path],
              ['address', (x) => h('code', {}, x.address)],
            ],
            a.items,
          ),
        ];
      },
      (e) => `Not available: ${errorText(e)}`,
    ),
    part(
      bunker,
      'Bunker (NIP-46)',
      async () => {
        const b = await api('GET', `${keyPath(id)}/bunker`);
        const clients = await api('GET', `${keyPath(id)}/bunker/clients`);
        return [
          fields([
            ['enabled', b.enabled ? 'yes' : 'no'],
            ['remote signer', h('code', {}, b.remote_signer_pubkey)],
            ['relays', b.relays.join(', ') || '—'],
            [
              'runs on',
              b.running ? `${b.running.coordinator}${b.running.here ? ' (here)' : ''}` : 'nowhere now',
            ],
            ['needs approval', b.require_approval.join(', ') || 'nothing'],
          ]),
          h('h3', {}, 'Clients'),
          table(
            [
              ['client', (c) => h('code', {}, short(c.pubkey, 10))],
              ['name', (c) => c.name ?? '—'],
              ['via', (c) => c.via],
              ['permissions', (c) => c.permissions.join(', ')],
              ['connected', (c) => when(c.connected_at)],
            ],
            clients.items,
            'No clients connected.',
          ),
          h(
            'p.muted',
            {},
            'A new bunker:// URL (its secret is shown once): ',
            h('code', {}, `POST /v1/keys/${id}/bunker`),
          ),
        ];
      },
      () => `No bunker for this key. Enable one with POST /v1/keys/${id}/bunker (docs/nostr.md).`,
    ),
  ]);
  const showControls = (key) =>
    fill(
      controls,
      h('h2', {}, key.status === 'frozen' ? 'Unfreeze' : 'Kill switch'),
      key.status === 'frozen'
        ? instructionForm(key, 'unfreeze', load)
        : key.status === 'active' || key.status === 'disabled'
          ? instructionForm(key, 'freeze', load)
          : h('p.muted', {}, `A ${key.status} key cannot be frozen.`),
    );
  showControls(k);
  if (k.status === 'pending') ctx.every(1000, load);
}
