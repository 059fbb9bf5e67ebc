// The administration page (/admin.html), in Debian's headless Chromium driven by playwright-core
// against a real server with the demo studies. An admin opens /admin.html without a session, is
// sent to the login page and comes back to the admin page after signing in; creates a reader
// (passwords typed twice, refusals in words, the server's own message for a duplicate name and
// for deleting oneself), deletes a user after a confirmation; creates an API token, which is
// shown once with a Copy button and works as a bearer token from Node until it is revoked in the
// page (then 401); the audit table shows the user and token creations with the admin as actor
// and 127.0.0.1 as client, filters them in the page, loads more rows on demand, and its export
// link downloads JSON lines; a share link created through the API is listed with its details and
// revoked in the page (the API then says revoked). On a phone (390 px) nothing scrolls the page
// sideways: the tables scroll inside their own box. A reader, and a read-scope token, opening
// /admin.html see "Administrators only" and nothing is requested beyond GET /api/me. No console
// errors but the expected 4xx answers, no Content-Security-Policy violation (and the server does
// send its CSP with the page). Screenshots go to tests/http/artifacts/.
//
// Needs /usr/bin/chromium (Debian package `chromium`; never downloaded): skips without it,
// fails when CI is set. Override with CHROMIUM_BIN.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { request, login } from './harness.mjs';
import {
  browserSuiteOpts as suiteOpts, PHONE, DESKTOP, launchChromium, recordedPage, useViewerServer, demoStudies, api,
} from './browser.mjs';

const postJson = (s, p, body, headers = {}) => api(s, p, {
  method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: Buffer.from(JSON.stringify(body)),
});

// Polls the server (not the page) until fn(value) holds: for the audit log, written by a
// background thread in batches of up to 0.5 s.
async function until(what, get, ok, timeoutMs = 30000) {
  const t0 = Date.now();
  let v;
  for (;;) {
    v = await get();
    if (ok(v)) return v;
    if (Date.now() - t0 > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}


// Console errors that are only the browser reporting an expected 4xx answer: 401 (no session
// yet), 409 (a duplicate user name, deleting oneself).
const EXPECTED_4XX = /Failed to load resource: the server responded with a status of 4(01|09)/;

describe('the administration page (Chromium)', suiteOpts, () => {
  const { srv, password: adminPasswordOf } = useViewerServer('tessera-admin-data-');

  let browser;
  let password;
  let ctUid;
  before(async () => {
    browser = await launchChromium();
    password = await adminPasswordOf();
    ctUid = (await demoStudies(srv)).ct;
  });
  after(async () => {
    if (browser) await browser.close();
  });

  // A page with its errors, CSP violations and requests recorded (browser.mjs).
  const newPage = (name, profile, ctxOpts = {}) => recordedPage(browser, {
    name, profile, ctxOpts: { acceptDownloads: true, ...ctxOpts }, expected4xx: EXPECTED_4XX, shotPrefix: 'admin', fullPage: true,
  });

  // Shows a tab and waits for its table to be loaded.
  async function tab(page, name, table) {
    await page.click(`#tab-${name}`);
    await page.waitForSelector(`#panel-${name}:not([hidden])`);
    await page.waitForSelector(`#${table}[data-state="ready"]`, { timeout: 20000 });
  }
  // Refreshes the audit table once and waits for the new answer.
  async function refreshAudit(page) {
    const n = Number(await page.getAttribute('#audit', 'data-loads') || 0);
    await page.click('#audit-refresh');
    await page.waitForSelector(`#audit[data-state="ready"][data-loads="${n + 1}"]`, { timeout: 20000 });
  }
  const auditRows = (page) => page.$$eval('#audit tbody tr', (trs) => trs.map((tr) => {
    const td = [...tr.children];
    return {
      time: td[0].textContent, utc: td[0].title, actor: td[1].textContent, client: td[2].textContent,
      action: td[3].textContent, target: td[4].textContent, status: td[5].textContent, cls: td[5].className,
    };
  }));

  let admin; // desktop page of the admin
  const reader = { username: 'reader2', password: `pw-${crypto.randomBytes(6).toString('hex')}` };
  let tok; // {id, value}

  test('the server sends the admin page with its Content-Security-Policy, to anyone', async () => {
    for (const p of ['/admin.html', '/js/admin.js', '/viewer.css']) {
      const r = await request(p, { origin: srv.origin, auth: false });
      assert.equal(r.status, 200, `${p} is public (no credential)`);
      const csp = r.headers['content-security-policy'] || '';
      assert.match(csp, /script-src 'self'/, `${p}: CSP script-src`);
      assert.match(csp, /style-src 'self'/, `${p}: CSP style-src`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${p}: CSP is strict`);
    }
    const html = (await request('/admin.html', { origin: srv.origin, auth: false })).text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
    assert.doesNotMatch(html, /\sstyle=|<style/i, 'no inline style');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handler');
  });

  test('without a session /admin.html leads to the login page, and back after signing in', async () => {
    admin = await newPage('admin', DESKTOP);
    const { page } = admin;
    await page.goto(`${srv.origin}/admin.html`);
    await page.waitForURL((u) => u.pathname === '/login.html' && u.searchParams.get('next') === '/admin.html', { timeout: 20000 });
    await page.fill('#username', 'admin');
    await page.fill('#password', password);
    await page.click('#login-submit');
    await page.waitForURL((u) => u.pathname === '/admin.html', { timeout: 20000 });
    await page.waitForSelector('body[data-state="admin"]', { timeout: 20000 });
    assert.ok(await page.isVisible('#admin'), 'the admin sections are shown');
    assert.ok(!(await page.isVisible('#admin-denied')), 'no "administrators only"');
    assert.equal(await page.textContent('#who'), 'admin');
    // the audit log is the first section: loaded, newest first, with the admin's sign-in
    await page.waitForSelector('#audit[data-state="ready"]', { timeout: 20000 });
    assert.equal(await page.getAttribute('#tab-audit', 'aria-selected'), 'true');
    assert.equal(await page.getAttribute('#audit-export', 'href'), '/api/audit?format=jsonl');
    const apiReq = admin.requests.filter((r) => r.url.includes('/api/audit'));
    assert.ok(apiReq.length >= 1 && apiReq.every((r) => /\/api\/audit\?limit=\d+$/.test(r.url)), `GET /api/audit?limit=N: ${apiReq.map((r) => r.url)}`);
    await until('the sign-in in the audit log', () => api(srv, '/api/audit?limit=50').then((r) => r.json()),
      (a) => a.some((x) => x.action === 'login' && x.actor === 'user:admin'));
    await refreshAudit(page);
    const rows = await auditRows(page);
    const li = rows.find((x) => x.action === 'login' && x.actor === 'user:admin');
    assert.ok(li, `the sign-in row: ${JSON.stringify(rows.slice(0, 5))}`);
    assert.equal(li.client, '127.0.0.1');
    assert.equal(li.status, '200');
    assert.match(li.cls, /code-2xx/);
    await admin.shot('audit');
    await admin.clean('login');
  });

  test('the admin adds a reader (passwords twice, refusals in words)', async () => {
    const { page } = admin;
    await tab(page, 'users', 'users');
    assert.ok(await page.$('#users tbody tr[data-username="admin"]'), 'the admin is listed');
    const posts = () => admin.requests.filter((r) => r.url.endsWith('/api/users') && r.method === 'POST').length;
    // in the page: two different passwords, a short one
    await page.fill('#user-name', reader.username);
    await page.selectOption('#user-role', 'reader');
    await page.fill('#user-pw', reader.password);
    await page.fill('#user-pw2', `${reader.password}x`);
    await page.click('#user-add');
    await page.waitForFunction(() => /passwords differ/.test(document.querySelector('#user-error').textContent));
    await page.fill('#user-pw', 'short');
    await page.fill('#user-pw2', 'short');
    await page.click('#user-add');
    await page.waitForFunction(() => /at least 8 characters/.test(document.querySelector('#user-error').textContent));
    assert.equal(posts(), 0, 'nothing sent while the form is wrong');
    // the right form
    await page.fill('#user-pw', reader.password);
    await page.fill('#user-pw2', reader.password);
    const created = page.waitForResponse((r) => r.url().endsWith('/api/users') && r.request().method() === 'POST');
    await page.click('#user-add');
    const resp = await created;
    assert.equal(resp.status(), 201, 'POST /api/users');
    assert.equal(resp.request().headers()['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(resp.request().postData()), { username: reader.username, role: 'reader', password: reader.password });
    await page.waitForSelector(`#users tbody tr[data-username="${reader.username}"]`);
    assert.match(await page.textContent(`#users tbody tr[data-username="${reader.username}"] td.role`), /^reader$/);
    assert.match(await page.textContent('#users-status'), new RegExp(`User ${reader.username} \\(reader\\) added`));
    assert.equal(await page.inputValue('#user-pw'), '', 'the password fields are emptied');
    // the server agrees, and the reader can sign in
    const list = (await api(srv, '/api/users')).json();
    assert.deepEqual(list.find((u) => u.username === reader.username)?.role, 'reader');
    const { r: lr } = await login(srv, reader);
    assert.equal(lr.status, 200, 'the new reader signs in');
    // a second time: the server's refusal, in its words
    await page.fill('#user-name', reader.username);
    await page.fill('#user-pw', reader.password);
    await page.fill('#user-pw2', reader.password);
    await page.click('#user-add');
    await page.waitForFunction(() => /^The user was not added: .*exists/.test(document.querySelector('#user-error').textContent));
    await admin.shot('users');
    await admin.clean('users');
  });

  test('deleting asks first; the server refuses deleting oneself, with its message', async () => {
    const { page } = admin;
    // oneself
    await page.click('#users tbody tr[data-username="admin"] button.delete');
    await page.waitForSelector('#users tbody tr[data-username="admin"] button.confirm');
    assert.match(await page.textContent('#users tbody tr[data-username="admin"] td.act'), /Delete admin\?/);
    await page.click('#users tbody tr[data-username="admin"] button.confirm');
    await page.waitForFunction(() => /you cannot delete your own account/.test(document.querySelector('#users-status').textContent));
    assert.match(await page.getAttribute('#users-status', 'class'), /error/);
    assert.ok((await api(srv, '/api/users')).json().some((u) => u.username === 'admin'), 'the admin still exists');
    // another user: Keep keeps, Yes deletes
    const u = await postJson(srv, '/api/users', { username: 'leaving', password: 'pw-leaving-123', role: 'reader' });
    assert.equal(u.status, 201);
    await tab(page, 'audit', 'audit');
    await tab(page, 'users', 'users');
    const row = '#users tbody tr[data-username="leaving"]';
    await page.click(`${row} button.delete`);
    await page.click(`${row} button.keep`);
    await page.waitForSelector(`${row} button.delete`);
    assert.ok((await api(srv, '/api/users')).json().some((x) => x.username === 'leaving'), 'Keep keeps');
    const del = page.waitForResponse((r) => r.url().endsWith('/api/users/leaving') && r.request().method() === 'DELETE');
    await page.click(`${row} button.delete`);
    await page.click(`${row} button.confirm`);
    const dr = await del;
    assert.ok(dr.status() >= 200 && dr.status() < 300, `DELETE /api/users/leaving: ${dr.status()}`);
    assert.equal(dr.request().headers()['content-type'], 'application/json');
    await page.waitForSelector(row, { state: 'detached' });
    assert.ok(!(await api(srv, '/api/users')).json().some((x) => x.username === 'leaving'), 'deleted on the server');
    await admin.clean('delete');
  });

  test('an API token is shown once, works as a bearer token, and stops working when revoked in the page', async () => {
    const { page } = admin;
    await tab(page, 'tokens', 'tokens');
    await page.fill('#token-name', 'ci reader');
    await page.selectOption('#token-scope', 'read');
    const created = page.waitForResponse((r) => r.url().endsWith('/api/tokens') && r.request().method() === 'POST');
    await page.click('#token-create');
    const resp = await created;
    assert.equal(resp.status(), 201, 'POST /api/tokens');
    assert.deepEqual(JSON.parse(resp.request().postData()), { name: 'ci reader', scope: 'read' });
    await page.waitForSelector('#token-result:not([hidden])');
    const value = await page.inputValue('#token-value');
    assert.match(value, /^[A-Za-z0-9_-]{43}$/, 'a 43-character token');
    assert.match(await page.textContent('#token-result'), /shown only this once/);
    tok = { id: await page.getAttribute('#token-result', 'data-id'), value };
    assert.ok(tok.id, 'the new token id');
    await page.waitForSelector(`#tokens tbody tr[data-id="${tok.id}"][data-state="active"]`);
    const rowText = await page.textContent(`#tokens tbody tr[data-id="${tok.id}"]`);
    assert.match(rowText, /ci reader/);
    assert.match(rowText, /read/);
    assert.match(rowText, /user:admin/);
    assert.ok(!rowText.includes(value), 'the list never shows the token');
    // Copy
    await admin.ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.origin });
    await page.click('#token-copy');
    await page.waitForFunction(() => document.querySelector('#token-copied').textContent !== '');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), value, 'copied');
    await admin.shot('token');
    // it works from Node as a bearer token
    const q = await request('/dicomweb/studies', { origin: srv.origin, auth: value, headers: { Accept: 'application/dicom+json' } });
    assert.equal(q.status, 200, `GET /dicomweb/studies with the new token: ${q.status} ${q.text().slice(0, 200)}`);
    assert.equal(q.json().length, 3);
    // Done: gone from the page (and a reload does not bring it back)
    await page.click('#token-done');
    assert.ok(await page.isHidden('#token-result'));
    assert.equal(await page.inputValue('#token-value'), '');
    await page.reload();
    await page.waitForSelector('#tokens[data-state="ready"]', { timeout: 20000 });
    assert.ok(!(await page.content()).includes(value), 'the token is not shown again');
    // revoke in the page (asks first)
    const row = `#tokens tbody tr[data-id="${tok.id}"]`;
    const del = page.waitForResponse((r) => r.url().endsWith(`/api/tokens/${tok.id}`) && r.request().method() === 'DELETE');
    await page.click(`${row} button.revoke`);
    await page.click(`${row} button.confirm`);
    assert.ok((await del).ok(), 'DELETE /api/tokens/{id}');
    await page.waitForSelector(`${row}[data-state="revoked"]`);
    assert.equal(await page.textContent(`${row} td.state`), 'revoked');
    assert.equal(await page.$(`${row} button.revoke`), null, 'no Revoke for a revoked token');
    const q2 = await request('/dicomweb/studies', { origin: srv.origin, auth: value, headers: { Accept: 'application/dicom+json' } });
    assert.equal(q2.status, 401, 'the revoked token is refused');
    await admin.clean('tokens');
  });

  test('the audit table shows the creations (actor, client, status), filters them and loads more', async () => {
    const { page } = admin;
    await until('the creations in the audit log', () => api(srv, '/api/audit?limit=200').then((r) => r.json()),
      (a) => a.some((x) => x.action === 'user.create' && x.target === reader.username) && a.some((x) => x.action === 'token.revoke' && x.target === tok.id));
    await tab(page, 'audit', 'audit');
    await refreshAudit(page);
    let rows = await auditRows(page);
    const uc = rows.filter((x) => x.action === 'user.create' && x.target === reader.username);
    assert.equal(uc.length, 2, `two user.create rows for ${reader.username} (201, then 409): ${JSON.stringify(uc)}`);
    assert.deepEqual(uc.map((x) => x.status), ['409', '201'], 'newest first');
    for (const x of uc) {
      assert.equal(x.actor, 'user:admin');
      assert.equal(x.client, '127.0.0.1');
      assert.match(x.utc, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC$/, `UTC time in the tooltip: ${x.utc}`);
      assert.match(x.time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    }
    assert.match(uc[0].cls, /code-4xx/);
    assert.match(uc[1].cls, /code-2xx/);
    const tc = rows.find((x) => x.action === 'token.create' && x.target === tok.id);
    assert.ok(tc, 'the token.create row');
    assert.deepEqual([tc.actor, tc.client, tc.status], ['user:admin', '127.0.0.1', '201']);
    // the local time shown is the UTC time of the tooltip in the browser's zone
    const same = await page.$eval('#audit tbody tr td.time', (td) => {
      const d = new Date(td.title.replace(' UTC', 'Z').replace(' ', 'T'));
      const p = (n) => String(n).padStart(2, '0');
      return td.textContent === `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    });
    assert.ok(same, 'local time = the UTC tooltip in the local zone');
    // the filter works in the page, without a request
    const before = admin.requests.length;
    await page.fill('#audit-filter', 'token.');
    await page.waitForFunction(() => [...document.querySelectorAll('#audit tbody tr td.action')].every((td) => td.textContent.startsWith('token.')));
    rows = await auditRows(page);
    assert.deepEqual([...new Set(rows.map((x) => x.action))].sort(), ['token.create', 'token.revoke']);
    assert.match(await page.textContent('#audit-status'), /2 of \d+ entries match/);
    await page.fill('#audit-filter', `user.create ${reader.username} 409`);
    await page.waitForFunction(() => document.querySelectorAll('#audit tbody tr').length === 1);
    await page.fill('#audit-filter', '');
    await page.waitForFunction(() => document.querySelectorAll('#audit tbody tr').length > 2);
    assert.equal(admin.requests.length, before, 'filtering sends nothing');
    // load more: over 100 entries (refused revocations of unknown links, with the admin token)
    for (let k = 0; k < 110; k++) {
      const r = await api(srv, `/api/shares/nolink${k}`, { method: 'DELETE' });
      assert.equal(r.status, 404);
    }
    await until('the 110 refusals in the audit log', () => api(srv, '/api/audit?limit=1000').then((r) => r.json()),
      (a) => a.some((x) => x.action === 'share.revoke' && x.target === 'nolink109'));
    await refreshAudit(page);
    assert.equal(await page.$$eval('#audit tbody tr', (t) => t.length), 100, 'the first 100 entries');
    assert.ok(await page.isVisible('#audit-more'), 'Load more is offered');
    assert.equal((await auditRows(page))[0].target, 'nolink109', 'newest first');
    const more = page.waitForResponse((r) => /\/api\/audit\?limit=\d+$/.test(r.url()));
    await page.click('#audit-more');
    const limit = Number(new URL((await more).url()).searchParams.get('limit'));
    assert.ok(limit > 100, `a bigger limit: ${limit}`);
    await page.waitForFunction(() => document.querySelectorAll('#audit tbody tr').length > 100);
    const all = await auditRows(page);
    assert.ok(all.some((x) => x.action === 'user.create' && x.target === reader.username), 'older rows are back');
    assert.ok(await page.isHidden('#audit-more'), 'nothing more to load');
    await admin.shot('audit-more');
    await admin.clean('audit');
  });

  test('the audit export downloads JSON lines', async () => {
    const { page } = admin;
    // fetched in the page, with the session cookie
    const got = await page.evaluate(async () => {
      const a = document.querySelector('#audit-export');
      const r = await fetch(a.href);
      return { status: r.status, type: r.headers.get('Content-Type'), disp: r.headers.get('Content-Disposition'), text: await r.text(), download: a.getAttribute('download') };
    });
    assert.equal(got.status, 200);
    assert.match(got.type, /application\/x-ndjson/);
    assert.match(got.disp || '', /attachment/);
    assert.ok(got.download, 'the link has a download attribute');
    const lines = got.text.split('\n').filter(Boolean);
    assert.ok(lines.length > 110, `${lines.length} lines`);
    const parsed = lines.map((l, i) => {
      try { return JSON.parse(l); } catch { return assert.fail(`line ${i + 1} is not JSON: ${l}`); }
    });
    for (const o of parsed) for (const k of ['time', 'actor', 'client', 'action', 'target', 'status']) assert.ok(k in o, `every line has ${k}`);
    const uc = parsed.find((o) => o.action === 'user.create' && o.target === reader.username && o.status === 201);
    assert.ok(uc, 'the user creation is exported');
    assert.equal(uc.actor, 'user:admin');
    assert.ok(parsed.findIndex((o) => o.action === 'login') < parsed.findIndex((o) => o.target === 'nolink109'), 'oldest first');
    // clicking the link downloads the file
    const dl = page.waitForEvent('download', { timeout: 20000 });
    await page.click('#audit-export');
    const d = await dl;
    assert.equal(d.suggestedFilename(), 'tessera-audit.jsonl');
    const file = fs.readFileSync(await d.path(), 'utf8');
    const flines = file.split('\n').filter(Boolean);
    assert.ok(flines.length >= lines.length, 'the downloaded file has every line');
    for (const l of flines) JSON.parse(l);
    assert.equal(new URL(page.url()).pathname, '/admin.html', 'the page stays');
    await admin.clean('export');
  });

  test('a share link created through the API is listed and revoked in the page', async () => {
    const { page } = admin;
    const c = await postJson(srv, '/api/shares', { study: ctUid, pin: '4321', max_opens: 3, permissions: ['view', 'download'], expires_in_hours: 48 });
    assert.equal(c.status, 201, `POST /api/shares: ${c.text()}`);
    const link = c.json();
    await tab(page, 'shares', 'shares');
    const row = `#shares tbody tr[data-id="${link.id}"]`;
    await page.waitForSelector(`${row}[data-state="active"]`);
    const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => ({ text: td.textContent, title: td.title })));
    assert.ok(cells[0].text.length < ctUid.length && cells[0].text.includes('…'), `a shortened UID: ${cells[0].text}`);
    assert.match(cells[0].title, new RegExp(ctUid.replace(/\./g, '\\.')), 'the full UID in the title');
    assert.equal(cells[1].text, link.created_by);
    assert.match(cells[1].text, /^token:/);
    assert.match(cells[2].title, /UTC$/);
    assert.match(cells[3].title, /UTC$/);
    assert.ok(Math.abs(Date.parse(cells[3].title.replace(' UTC', 'Z').replace(' ', 'T')) - Date.parse(link.expires)) < 1000, 'expires');
    assert.equal(cells[4].text, '0 / 3');
    assert.equal(cells[5].text, 'yes');
    assert.equal(cells[6].text, 'view + download');
    assert.equal(cells[7].text, 'active');
    assert.ok(!(await page.content()).includes(link.token), 'the list never shows a link token');
    await admin.shot('shares');
    const del = page.waitForResponse((r) => r.url().endsWith(`/api/shares/${link.id}`) && r.request().method() === 'DELETE');
    await page.click(`${row} button.revoke`);
    await page.click(`${row} button.confirm`);
    const dr = await del;
    assert.ok(dr.ok(), `DELETE /api/shares/{id}: ${dr.status()}`);
    assert.equal(dr.request().headers()['content-type'], 'application/json');
    await page.waitForSelector(`${row}[data-state="revoked"]`);
    assert.equal(await page.$(`${row} button.revoke`), null, 'no Revoke for a revoked link');
    const l = (await api(srv, '/api/shares')).json().find((x) => x.id === link.id);
    assert.equal(l.state, 'revoked', 'the server says revoked');
    await admin.clean('shares');
  });

  test('on a phone (390 px) the page never scrolls sideways; tables scroll in their box', async () => {
    const phone = await newPage('phone', PHONE);
    const { page } = phone;
    const { cookie } = await login(srv, { username: 'admin', password });
    assert.ok(cookie, 'a session');
    const [name, value] = cookie.split('=');
    await phone.ctx.addCookies([{ name, value, url: srv.origin }]);
    await page.goto(`${srv.origin}/admin.html#audit`);
    await page.waitForSelector('#audit[data-state="ready"]', { timeout: 20000 });
    for (const [t, table] of [['audit', 'audit'], ['users', 'users'], ['tokens', 'tokens'], ['shares', 'shares']]) {
      await tab(page, t, table);
      const m = await page.evaluate((id) => {
        const wrap = document.querySelector(`#${id}`).closest('.table-wrap');
        const r = wrap.getBoundingClientRect();
        return {
          page: document.documentElement.scrollWidth, body: document.body.scrollWidth, vw: window.innerWidth,
          wrapRight: r.right, wrapScroll: wrap.scrollWidth, wrapClient: wrap.clientWidth, overflow: getComputedStyle(wrap).overflowX,
        };
      }, table);
      assert.ok(m.page <= m.vw && m.body <= m.vw, `${t}: no horizontal page scroll (${JSON.stringify(m)})`);
      assert.ok(m.wrapRight <= m.vw + 0.5, `${t}: the table box fits the screen`);
      assert.equal(m.overflow, 'auto', `${t}: the table scrolls in its box`);
      if (t === 'audit' || t === 'shares') assert.ok(m.wrapScroll > m.wrapClient, `${t}: the wide table scrolls inside its box (${JSON.stringify(m)})`);
      await phone.shot(t);
    }
    await phone.clean('phone');
  });

  test('a reader (and a read token) opening /admin.html sees "administrators only" and no admin data', async () => {
    const rd = await newPage('reader', PHONE);
    const { page } = rd;
    await page.goto(`${srv.origin}/admin.html`);
    await page.waitForURL((u) => u.pathname === '/login.html', { timeout: 20000 });
    await page.fill('#username', reader.username);
    await page.fill('#password', reader.password);
    await page.click('#login-submit');
    await page.waitForURL((u) => u.pathname === '/admin.html', { timeout: 20000 });
    await page.waitForSelector('body[data-state="denied"]', { timeout: 20000 });
    assert.ok(await page.isVisible('#admin-denied'));
    assert.match(await page.textContent('#admin-denied h1'), /Administrators only/);
    assert.match(await page.textContent('#admin-denied-msg'), new RegExp(`signed in as ${reader.username}, with the reader role`));
    assert.ok(await page.isHidden('#admin'), 'no admin sections');
    assert.equal(await page.$$eval('#admin tbody tr', (t) => t.length), 0, 'no admin data in the page');
    // the requests after signing in (before: the first /api/me, 401, that led to the login page)
    const signIn = rd.requests.findIndex((r) => r.url.endsWith('/api/login'));
    assert.ok(signIn > 0, 'signed in through /api/login');
    assert.deepEqual(rd.requests.slice(0, signIn).filter((r) => r.url.includes('/api/')).map((r) => new URL(r.url).pathname), ['/api/me']);
    const later = rd.requests.slice(signIn + 1).filter((r) => r.url.includes('/api/'));
    assert.deepEqual(later.map((r) => new URL(r.url).pathname), ['/api/me'], 'only GET /api/me after signing in');
    assert.ok(!rd.responses.some((r) => r.status === 403), 'no 403 answer');
    await rd.shot('denied');
    await rd.clean('reader');
    // a read-scope token (sent by the browser on every request)
    const t = await postJson(srv, '/api/tokens', { name: 'viewer script', scope: 'read' });
    assert.equal(t.status, 201);
    const tp = await newPage('read-token', DESKTOP, { extraHTTPHeaders: { Authorization: `Bearer ${t.json().token}` } });
    await tp.page.goto(`${srv.origin}/admin.html`);
    await tp.page.waitForSelector('body[data-state="denied"]', { timeout: 20000 });
    assert.match(await tp.page.textContent('#admin-denied-msg'), /viewer script.*read scope/);
    assert.deepEqual(tp.requests.filter((r) => r.url.includes('/api/')).map((r) => new URL(r.url).pathname), ['/api/me']);
    assert.ok(!tp.responses.some((r) => r.status === 403), 'no 403 answer');
    await tp.clean('read token');
  });

  test('the viewer links to the administration page for admins only', async () => {
    const viewerAs = async (who, cred) => {
      const v = await newPage(`viewer-${who}`, DESKTOP);
      const { cookie } = await login(srv, cred);
      assert.ok(cookie, `a session for ${who}`);
      const [name, value] = cookie.split('=');
      await v.ctx.addCookies([{ name, value, url: srv.origin }]);
      await v.page.goto(`${srv.origin}/`);
      await v.page.waitForSelector('#who:not([hidden])', { timeout: 20000 });
      return v;
    };
    const a = await viewerAs('admin', { username: 'admin', password });
    assert.ok(await a.page.isVisible('#admin-link'), 'the admin sees the link');
    assert.equal(await a.page.getAttribute('#admin-link', 'href'), '/admin.html');
    await a.page.click('#admin-link');
    await a.page.waitForSelector('body[data-state="admin"]', { timeout: 20000 });
    await a.clean('viewer link');
    const r = await viewerAs('reader', { username: reader.username, password: reader.password });
    assert.ok(await r.page.isHidden('#admin-link'), 'a reader has no link');
    await r.clean('viewer, reader');
  });
});
