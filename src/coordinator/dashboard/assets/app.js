/**
 * The dashboard's shell: sign-in, navigation and hash routing (#/keys/<id>, …). Each page is a
 * module whose `render(view, params, ctx)` fills `view`; `ctx.every(ms, fn)` polls until the
 * page is left, and `ctx.live()` says whether the page is still the one shown.
 */
import { signedIn, signIn, signOut } from './api.js';
import { errorText, fill, h, notice } from './dom.js';
import * as approvals from './pages/approvals.js';
import * as audit from './pages/audit.js';
import * as keys from './pages/keys.js';
import * as overview from './pages/overview.js';
import * as sessions from './pages/sessions.js';
import * as webhooks from './pages/webhooks.js';

/** [pattern, nav entry, render]: the first pattern that matches the hash path wins. */
const ROUTES = [
  [/^$/, 'overview', overview.render],
  [/^keys$/, 'keys', keys.renderList],
  [/^keys\/([^/]+)$/, 'keys', keys.renderKey],
  [/^sessions$/, 'sessions', sessions.renderList],
  [/^sessions\/([^/]+)$/, 'sessions', sessions.renderSession],
  [/^approvals$/, 'approvals', approvals.render],
  [/^audit$/, 'audit', audit.render],
  [/^webhooks$/, 'webhooks', webhooks.render],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');
let current = { timers: [], alive: false };
let signInMessage = '';

function leave() {
  current.alive = false;
  for (const t of current.timers) clearInterval(t);
}

function showSignIn() {
  leave();
  nav.hidden = true;
  signOutButton.hidden = true;
  const token = h('input#token', {
    type: 'password',
    name: 'token',
    autocomplete: 'off',
    placeholder: 'floe_…',
    required: true,
    'aria-label': 'API token',
  });
  const msg = notice();
  if (signInMessage) msg.error(signInMessage);
  const button = h('button.primary#sign-in', { type: 'submit' }, 'Sign in');
  const form = h(
    'form#sign-in-form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        msg.clear();
        try {
          await signIn(token.value.trim());
          token.value = '';
          signInMessage = '';
          route();
        } catch (err) {
          msg.error(`Sign-in refused: ${errorText(err)}`);
          button.disabled = false;
        }
      },
    },
    h('label', {}, 'API token', token),
    button,
    msg,
  );
  fill(
    main,
    h(
      'div.signin',
      {},
      h('h1', {}, 'Sign in'),
      h(
        'p.muted',
        {},
        'Paste an API token (floe token create, or .floe/admin.token). It is exchanged for a short-lived access token kept in this tab only.',
      ),
      form,
    ),
  );
  token.focus();
}

async function route() {
  if (!signedIn()) return showSignIn();
  leave();
  nav.hidden = false;
  signOutButton.hidden = false;
  const path = decodeURIComponent(location.hash.replace(/^#\/?/, '')).replace(/\/$/, '');
  const found = ROUTES.map(([re, page, render]) => [re.exec(path), page, render]).find(([m]) => m);
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', a.dataset.page === found?.[1]);
  const page = { timers: [], alive: true };
  current = page;
  const view = h('div.view');
  fill(main, view);
  if (!found) {
    fill(view, h('h1', {}, 'Not found'), h('p', {}, 'No such page.'));
    return;
  }
  const ctx = {
    live: () => page.alive,
    every(ms, fn) {
      page.timers.push(setInterval(() => page.alive && fn(), ms));
    },
  };
  try {
    await found[2](view, found[0].slice(1), ctx);
  } catch (e) {
    if (page.alive && signedIn()) fill(view, h('p.notice.error', { role: 'alert' }, errorText(e)));
  }
}

window.addEventListener('floe:signed-out', (e) => {
  signInMessage = e.detail;
  showSignIn();
});
window.addEventListener('hashchange', route);
signOutButton.addEventListener('click', () => signOut(''));
route();
