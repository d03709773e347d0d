/**
 * The operator dashboard (issue 15 item 11) in a real browser: Debian's Chromium, headless,
 * driven by puppeteer-core, against a real cluster (an in-process coordinator, three signer
 * processes). Everything the dashboard shows is compared with the JSON API or with independent
 * code (node:crypto's SHA-256, libsecp256k1, nostr-tools), never with the dashboard's own.
 *
 * Without Chromium the tests skip and say so (.ci/run installs it). With
 * FLOE_DASHBOARD_SCREENSHOTS=1 they also save the screenshots under docs/img/.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { finalizeEvent } from 'nostr-tools/pure';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { assetDirectory, DASHBOARD_CSP } from '../../src/coordinator/dashboard/plugin.js';
import { toHex } from '../../src/crypto/hex.js';
import { generateIdentityKey, identityPublicKey } from '../../src/crypto/identity.js';
import { signInstruction } from '../../src/domain/operator-instruction.js';
import { decide, steward } from '../approvals/helpers.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { libsecpVerify } from '../helpers/independent.js';
import { buildPsbt, someAddress, walletKeyOf } from '../helpers/psbt.js';
import { until } from '../helpers/until.js';

// The functions given to page.evaluate run in the page: its globals, typed loosely here (the
// project's TypeScript has no DOM library).
declare const window: any;
declare const document: any;
declare const location: any;
declare const sessionStorage: any;
declare const localStorage: any;

const CHROMIUM = process.env.FLOE_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (install Debian's chromium, as .ci/run does, or set FLOE_CHROMIUM)`;
const SCREENSHOTS = process.env.FLOE_DASHBOARD_SCREENSHOTS === '1';
const IMG = join(import.meta.dirname, '..', '..', 'docs', 'img');
const XSS = '<img src=x onerror="window.__xss=1">';
const WAIT = 30_000;

describe('dashboard assets are served safely', () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster({ signers: 0 });
  });
  after(() => c?.close());

  it('/ is the page, with a strict CSP, nosniff, no framing and no inline script', async () => {
    const r = await fetch(`${c.url}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('content-security-policy'), DASHBOARD_CSP);
    const csp = DASHBOARD_CSP.split('; ');
    for (const d of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(d), d);
    }
    assert.ok(!DASHBOARD_CSP.includes('unsafe-inline') && !DASHBOARD_CSP.includes('unsafe-eval'));
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const html = await r.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline handler');
    const etag = r.headers.get('etag')!;
    const again = await fetch(`${c.url}/`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });

  it('assets have their content types; an unknown one is a 404 problem; none is in OpenAPI', async () => {
    const js = await fetch(`${c.url}/dashboard/app.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
    const css = await fetch(`${c.url}/dashboard/style.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    for (const path of ['/dashboard/nope.js', '/dashboard/../package.json', '/dashboard/pages']) {
      const r = await fetch(`${c.url}${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(((await r.json()) as { code: string }).code, 'not_found');
    }
    const doc = (await c.api('GET', '/openapi.json')).body;
    assert.ok(doc.paths['/v1/keys']);
    assert.deepEqual(
      Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/dashboard')),
      [],
    );
  });

  it('the compiled plugin (dist/) finds the assets in src/', () => {
    const root = join(import.meta.dirname, '..', '..');
    const fromDist = assetDirectory(`file://${join(root, 'dist', 'coordinator', 'dashboard', 'plugin.js')}`);
    assert.equal(fromDist, join(root, 'src', 'coordinator', 'dashboard', 'assets'));
    assert.throws(() => assetDirectory('file:///nowhere/plugin.js'), /dashboard assets not found/);
  });
});

describe('dashboard in headless Chromium', { skip: SKIP }, () => {
  const operator = generateIdentityKey();
  const stewardA = steward();
  let c: TestCluster;
  let browser: Browser;
  let page: Page;
  let approvalKey: any;
  let uiKey: any;
  const problems: string[] = [];

  /** docs/img/dashboard-<name>.png: the window, or the whole page. */
  const shot = async (name: string, fullPage = false) => {
    if (!SCREENSHOTS) return;
    mkdirSync(IMG, { recursive: true });
    await page.screenshot({ path: join(IMG, `dashboard-${name}.png`), fullPage });
  };
  const go = async (hash: string) => {
    await page.evaluate((h) => {
      location.hash = h;
    }, hash);
  };
  const text = (selector: string) =>
    page.$eval(selector, (e) => e.textContent ?? '').catch(() => null as string | null);
  const waitText = (selector: string, want: (t: string) => boolean, what: string) =>
    until(
      what,
      async () => {
        const t = await text(selector);
        return t !== null && want(t) ? t : null;
      },
      WAIT,
    );

  before(async () => {
    const operatorPub = toHex(identityPublicKey(operator));
    c = await startCluster({ signers: 3, signerEnv: () => ({ FLOE_SIGNER_OPERATORS: operatorPub }) });
    await c.registerSigners();
    const k = await c.api('POST', '/v1/keys', {
      threshold: 2,
      label: 'family savings',
      approval_policy: { stewards: [stewardA.npub], threshold: 1 },
      wait: WAIT,
    });
    assert.equal(k.body.status, 'active', JSON.stringify(k.body));
    approvalKey = k.body;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 860 });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
    page.on('console', (m) => {
      // Refused requests are logged by Chrome itself ("Failed to load resource"): expected here.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
    });
    // A NIP-07 signer (as a browser extension provides): signs in Node with the steward's key.
    await page.exposeFunction('__stewardSign', (ev: any) => finalizeEvent(ev, stewardA.sk));
    // A string: tsx would wrap a function in helpers (__name) that the page does not have.
    await page.evaluateOnNewDocument('window.nostr = { signEvent: (ev) => window.__stewardSign(ev) };');
    await page.goto(`${c.url}/`);
  });
  after(async () => {
    await browser?.close();
    await c?.close();
  });

  it('a wrong token is refused with a visible message', async () => {
    await page.waitForSelector('#token');
    await page.type('#token', 'floe_0000000000000000_wrongwrongwrongwrong');
    await page.click('#sign-in');
    const msg = await waitText(
      '#sign-in-form .notice',
      (t) => t.includes('Sign-in refused'),
      'refusal shown',
    );
    assert.match(msg, /unauthorized/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await page.$('#nav:not([hidden])'), null);
  });

  it('signs in with the admin token: the access token is in sessionStorage only', async () => {
    await page.$eval('#token', (e) => {
      (e as any).value = '';
    });
    await page.type('#token', c.adminToken);
    await page.click('#sign-in');
    await page.waitForSelector('#nav:not([hidden])');
    const stored = await page.evaluate(() => ({
      access: sessionStorage.getItem('floe.access'),
      local: localStorage.length,
      cookie: document.cookie,
      url: location.href,
      tokenField: document.querySelector('#token') !== null,
    }));
    assert.ok(stored.access && stored.access.length > 20 && stored.access !== c.adminToken);
    assert.equal(stored.local, 0);
    assert.equal(stored.cookie, '');
    assert.ok(!stored.url.includes(stored.access) && !stored.url.includes(c.adminToken));
    assert.equal(stored.tokenField, false);
  });

  it('overview: the crypto backend of /healthz, three signers, sessions by status', async () => {
    const health = (await c.api('GET', '/healthz')).body;
    await waitText('#crypto-backend', (t) => t === health.crypto_backend, 'crypto backend shown');
    const rows = await page.$$eval('#signers tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    assert.equal(rows.length, 3);
    for (const r of rows) assert.match(r, /active/);
    assert.ok(await page.$('#counts .card[data-status="completed"]'));
    await shot('overview');
  });

  it('keys: creates a key by DKG and sees it become active; a label is shown as text (XSS)', async () => {
    await go('#/keys');
    await page.waitForSelector('#key-threshold');
    await page.$eval('#key-threshold', (e) => {
      (e as any).value = '2';
    });
    await page.type('#key-label', XSS);
    await page.click('#create-key-button');
    await waitText('#key-progress-status', (t) => t === 'active', 'the new key becomes active');
    const keys = (await c.api('GET', '/v1/keys')).body.items;
    uiKey = keys.find((k: any) => k.label === XSS);
    assert.ok(uiKey, 'the key was created with the label as typed');
    assert.equal(uiKey.status, 'active');
    assert.equal(uiKey.threshold, 2);
    assert.equal(uiKey.n, 3);
    await until('the list shows the label', async () =>
      (await page.$$eval('#key-list .label', (els) => els.map((e) => e.textContent))).includes(XSS),
    );
    const xss = await page.evaluate(() => ({
      fired: typeof window.__xss,
      imgs: document.querySelectorAll('main img').length,
    }));
    assert.deepEqual(xss, { fired: 'undefined', imgs: 0 });
    await shot('keys');
  });

  it("a key's page: npub, label as text, addresses or why not, bunker, approval policy", async () => {
    await go(`#/keys/${uiKey.id}`);
    await waitText('#key-npub', (t) => t === uiKey.npub, 'npub shown');
    assert.match(uiKey.npub, /^npub1/);
    assert.equal(await text('#key-label-value'), XSS);
    await waitText('#key-bunker p', (t) => t.length > 0, 'bunker section filled');
    await waitText('#key-addresses', (t) => t.length > 'Addresses'.length, 'addresses section filled');
    assert.match((await text('#approval-policy')) ?? '', /No approval policy/);
    assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');

    await go(`#/keys/${approvalKey.id}`);
    const policy = await waitText('#approval-policy', (t) => t.includes(stewardA.npub), 'steward listed');
    assert.match(policy, /1 of 1/);
  });

  it('signs a message: text is hashed with SHA-256 in the browser; the session completes', async () => {
    await go(`#/keys/${uiKey.id}`);
    await page.waitForSelector('#sign-input');
    const textToSign = 'hello from the dashboard';
    await page.type('#sign-input', textToSign);
    await page.click('#sign-button');
    await until('the session page opens', async () =>
      (await page.evaluate(() => location.hash)).startsWith('#/sessions/'),
    );
    await page.waitForSelector('#session-status[data-status="completed"]', { timeout: WAIT });
    const id = decodeURIComponent((await page.evaluate(() => location.hash)).slice('#/sessions/'.length));
    const s = (await c.api('GET', `/v1/sessions/${id}`)).body;
    const digest = createHash('sha256').update(textToSign).digest('hex');
    assert.equal(s.message, digest);
    assert.equal(await text('.intent-digest'), digest);
    assert.equal(await text('#session-signature'), s.signature);
    assert.ok(
      libsecpVerify(
        Buffer.from(s.signature, 'hex'),
        Buffer.from(digest, 'hex'),
        Buffer.from(uiKey.x_only_public_key, 'hex'),
      ),
    );
    await go('#/sessions');
    await page.waitForSelector(`#session-list a[href="#/sessions/${id}"]`);
    await shot('sessions');
  });

  it('a 64-hex digest is signed as it is; a malformed one is refused in the page', async () => {
    await go('#/sessions');
    await page.waitForSelector('#sign-input');
    await page.click('#sign-mode-hex');
    await page.type('#sign-input', 'abc');
    await page.click('#sign-button');
    await waitText('#sign-form .notice', (t) => t.includes('64 hex digits'), 'malformed digest refused');
    const digest = 'AB'.repeat(32);
    await page.$eval('#sign-input', (e) => {
      (e as any).value = '';
    });
    await page.type('#sign-input', digest);
    await page.select('#sign-key', uiKey.id);
    await page.click('#sign-button');
    await page.waitForSelector('#session-status[data-status="completed"]', { timeout: WAIT });
    assert.equal(await text('.intent-digest'), digest.toLowerCase());
  });

  it("a PSBT session shows its outputs and amounts from the session's bitcoin summary", async () => {
    const to = someAddress();
    const psbt = buildPsbt(
      walletKeyOf(uiKey),
      [{ kind: 'own', value: 100_000n }],
      [{ address: to, value: 98_765n }],
    );
    const r = await c.api('POST', '/v1/sessions', {
      key_id: uiKey.id,
      bitcoin_psbt: psbt.toBase64(),
      wait: WAIT,
    });
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    await go(`#/sessions/${r.body.id}`);
    await page.waitForSelector('#session-status[data-status="completed"]', { timeout: WAIT });
    const outputs = await page.$$eval('#session-intent table:first-of-type tbody tr', (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td: any) => td.textContent)),
    );
    assert.deepEqual(outputs, [['0', to, '98,765 sat (0.00098765 BTC)', '']]);
    const shown = (await text('#session-intent'))!;
    assert.ok(shown.includes(`fee${'1,235 sat (0.00001235 BTC)'}`), shown);
    assert.ok(shown.includes(r.body.bitcoin.txid));
  });

  it('approvals: shows what is to be signed; a pasted signed decision approves it', async () => {
    const content = 'Pay the <b>rent</b>: 1200 EUR to the landlord <script>window.__xss=2</script>';
    const r = await c.api('POST', '/v1/sessions', {
      key_id: approvalKey.id,
      nostr_event: { kind: 1, content, tags: [['t', 'family']] },
    });
    assert.equal(r.body.status, 'awaiting_approval', JSON.stringify(r.body));
    const s = r.body;
    await go('#/approvals');
    const panel = `article[data-session="${s.id}"]`;
    await page.waitForSelector(panel, { timeout: WAIT });
    assert.equal(await text(`${panel} .intent-content`), content);
    assert.equal(await text(`${panel} .intent-kind`), '1');
    const tags = JSON.parse((await text(`${panel} .approval-tags`))!);
    assert.deepEqual(tags, [
      ['d', `floe-approval:${s.id}`],
      ['session', s.id],
      ['intent', s.intent_hash],
      ['decision', 'approve'],
    ]);
    await shot('approvals');
    const event = decide(stewardA, { sessionId: s.id, intentHash: s.intent_hash });
    await page.$eval(
      `${panel} .approval-event`,
      (e, v) => {
        (e as any).value = v;
      },
      JSON.stringify(event),
    );
    await page.click(`${panel} .submit-approval`);
    await waitText('#approval-result', (t) => t.includes('Decision recorded'), 'decision recorded');
    const done = await until(
      'the approved session completes',
      async () => {
        const x = (await c.api('GET', `/v1/sessions/${s.id}`)).body;
        return x.status === 'completed' && x;
      },
      WAIT,
    );
    assert.deepEqual(
      done.approvals.map((a: any) => [a.steward, a.decision, a.event_id]),
      [[stewardA.pk, 'approve', event.id]],
    );
    await go(`#/sessions/${s.id}`);
    await page.waitForSelector('#session-status[data-status="completed"]', { timeout: WAIT });
    assert.equal(await text('#session-intent .intent-content'), content);
    await shot('session');
    assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
  });

  it('approvals: a NIP-07 signer in the browser approves with one click', async () => {
    const r = await c.api('POST', '/v1/sessions', {
      key_id: approvalKey.id,
      nostr_event: { kind: 1, content: 'approve me with the extension', tags: [] },
    });
    assert.equal(r.body.status, 'awaiting_approval', JSON.stringify(r.body));
    await go('#/approvals');
    const panel = `article[data-session="${r.body.id}"]`;
    await page.waitForSelector(`${panel} .nip07-approve`, { timeout: WAIT });
    await page.click(`${panel} .nip07-approve`);
    await waitText('#approval-result', (t) => t.includes('Decision recorded'), 'decision recorded');
    const done = await until(
      'the session completes',
      async () => {
        const x = (await c.api('GET', `/v1/sessions/${r.body.id}`)).body;
        return x.status === 'completed' && x;
      },
      WAIT,
    );
    assert.equal(done.approvals[0].steward, stewardA.pk);
  });

  it('audit log: the chain, newest first', async () => {
    await go('#/audit');
    await page.waitForSelector('#audit-rows tbody tr');
    const kinds = await page.$$eval('#audit-rows tbody tr td:nth-child(3)', (tds) =>
      tds.map((t) => t.textContent),
    );
    const chain = (await c.api('GET', '/v1/audit?limit=1000')).body;
    assert.equal(chain.next_after, null);
    const newest = chain.items.map((x: any) => x.kind).reverse();
    assert.ok(newest.length > 0);
    assert.deepEqual(kinds, newest.slice(0, 100), 'newest first');
    assert.ok(kinds.includes('session.approval_recorded'));
    await shot('audit');
  });

  it('webhooks: add one (its secret shown once), then delete it', async () => {
    await go('#/webhooks');
    await page.waitForSelector('#webhook-url');
    await page.type('#webhook-url', 'http://127.0.0.1:9/hook');
    await page.click('form button.primary');
    const secret = await waitText('#webhook-secret pre', (t) => t.length > 10, 'secret shown');
    const hooks = (await c.api('GET', '/v1/webhooks')).body.items;
    assert.equal(hooks.length, 1);
    assert.equal(hooks[0].url, 'http://127.0.0.1:9/hook');
    assert.ok(!JSON.stringify(hooks).includes(secret));
    await page.waitForSelector('#webhook-list tbody tr');
    await page.click('#webhook-list tbody tr button.danger');
    await page.waitForSelector('#webhook-list p.empty');
    assert.equal((await c.api('GET', '/v1/webhooks')).body.items.length, 0);
  });

  it('the kill switch: a pasted operator-signed instruction freezes the key', async () => {
    await go(`#/keys/${uiKey.id}`);
    await page.waitForSelector('#freeze-instruction');
    const shown = (await text('#key-controls'))!;
    assert.ok(shown.includes(`floe key freeze ${uiKey.id}`), 'the CLI command is shown');
    const instruction = signInstruction({ type: 'freeze', keyId: uiKey.id, now: Date.now() }, operator);
    await page.$eval(
      '#freeze-instruction',
      (e, v) => {
        (e as any).value = v;
      },
      JSON.stringify(instruction),
    );
    await page.click('#freeze-button');
    await waitText('#key-controls .notice', (t) => t.includes('frozen'), 'freeze confirmed');
    await waitText('#key-status', (t) => t === 'frozen', 'status shows frozen');
    assert.equal((await c.api('GET', `/v1/keys/${uiKey.id}`)).body.status, 'frozen');
    await shot('key', true);
    const refused = await c.sign(uiKey.id, 'cd'.repeat(32), 5000);
    assert.equal(refused.body.code, 'key_frozen', JSON.stringify(refused.body));
  });

  it('a refused access token is refreshed once; with no refresh left, the dashboard signs out', async () => {
    await page.evaluate(() => sessionStorage.setItem('floe.access', 'not-a-token'));
    await go('#/webhooks');
    await page.waitForSelector('#webhook-list p.empty');
    const renewed = await page.evaluate(() => sessionStorage.getItem('floe.access'));
    assert.ok(renewed && renewed !== 'not-a-token', 'the refresh token got a new access token');

    await page.evaluate(() => {
      sessionStorage.setItem('floe.access', 'not-a-token');
      sessionStorage.removeItem('floe.refresh');
    });
    await go('#/keys');
    await waitText('#sign-in-form .notice', (t) => t.startsWith('Signed out'), 'signed out, saying why');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await page.$('#nav:not([hidden])'), null);
  });

  it('no script error and no CSP or Trusted Types violation on any page', () => {
    assert.deepEqual(problems, []);
  });
});
