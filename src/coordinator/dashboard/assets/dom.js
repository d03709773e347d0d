/**
 * Building the page without HTML strings: every value reaches the DOM as a text node or an
 * attribute set by name, never through innerHTML (the Content-Security-Policy enforces Trusted
 * Types, so a string given to an HTML sink would throw).
 */

/**
 * h('tag.class#id', {attr: value, onclick: fn}, ...children): an element. Children are nodes,
 * strings (text nodes), numbers, or arrays of them; null and undefined are skipped.
 */
export function h(spec, attrs = {}, ...children) {
  const [, tag, rest] = /^([a-z0-9]+)(.*)$/.exec(spec) ?? [null, 'div', ''];
  const el = document.createElement(tag);
  for (const m of rest.matchAll(/([.#])([\w-]+)/g)) {
    if (m[1] === '.') el.classList.add(m[2]);
    else el.id = m[2];
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A link inside the dashboard: `#/` and path segments, each URI-encoded. */
export function link(text, ...segments) {
  return h('a', { href: `#/${segments.map((s) => encodeURIComponent(s)).join('/')}` }, text);
}

/** A table of rows: `columns` are [heading, (row) => cell content]. */
export function table(columns, rows, empty = 'none') {
  if (rows.length === 0) return h('p.empty', {}, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map(([head]) => h('th', {}, head)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          {},
          columns.map(([, cell]) => h('td', {}, cell(r))),
        ),
      ),
    ),
  );
}

/** A definition list of [term, value] pairs; pairs with an undefined value are left out. */
export function fields(pairs) {
  return h(
    'dl',
    {},
    pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]),
  );
}

/** A status badge: the class names the status, the text is the status. */
export function badge(status) {
  return h(`span.badge.s-${String(status).replace(/[^a-z_]/g, '')}`, {}, String(status));
}

/** Unix milliseconds as local date and time. */
export function when(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** Satoshis, with the amount in BTC beside them. */
export function sats(n) {
  return `${n.toLocaleString('en-US')} sat (${(n / 1e8).toFixed(8)} BTC)`;
}

/** The first and last characters of a long hex string or id. */
export function short(s, n = 8) {
  return typeof s === 'string' && s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-n)}` : s;
}

/** A message area for the outcome of an action: ok or error. */
export function notice() {
  const el = h('p.notice', { role: 'status', 'aria-live': 'polite' });
  el.ok = (text) => {
    el.className = 'notice ok';
    el.textContent = text;
  };
  el.error = (e) => {
    el.className = 'notice error';
    el.textContent = errorText(e);
  };
  el.clear = () => {
    el.className = 'notice';
    el.textContent = '';
  };
  return el;
}

/** What a person should read about an error: the problem's detail and hint, with its code. */
export function errorText(e) {
  const p = e?.problem;
  if (p) return `${p.detail ?? p.title} (${p.code})${p.hint ? ` — ${p.hint}` : ''}`;
  return e instanceof Error ? e.message : String(e);
}
