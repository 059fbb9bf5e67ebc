// Access control in the viewer (issue 7), in Debian's headless Chromium driven by playwright-core
// against a real server with the demo studies. The story of the issue: the admin logs in through
// the login page (a wrong password is refused in words; a name with too many failures is told to
// wait), opens the demo CT study, creates a share link with a PIN in the Share dialog and reads
// the link and the PIN there; a fresh phone-emulated browser context (390x844, touch, DPR 3)
// opens the link, the token leaves the address bar, a wrong PIN says how many attempts are left,
// the right one shows the study's first image; there is no study list (none in the DOM, "/" leads
// back to the study, QIDO returns only this study, other studies are 404, raw frames 403: the ROI
// shows its area only); the admin revokes the link in the dialog's list and the phone page, on
// its next request and after a reload, says "This link has been revoked.". No console errors but
// the expected 4xx answers, no Content-Security-Policy violation, and the server does send its
// CSP (so that the check means something). Screenshots go to tests/http/artifacts/.
//
// Needs /usr/bin/chromium (Debian package `chromium`; never downloaded): skips without it,
// fails when CI is set. Override with CHROMIUM_BIN.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { request } from './harness.mjs';
import {
  browserSuiteOpts as suiteOpts, PHONE, DESKTOP, launchChromium, recordedPage, useViewerServer, demoStudies, api,
} from './browser.mjs';


// Console errors that are only the browser reporting an expected 4xx answer.
const EXPECTED_4XX = /Failed to load resource: the server responded with a status of 4(01|03|04|10|23|29)/;

describe('share links in the viewer (Chromium)', suiteOpts, () => {
  const { srv, password: adminPasswordOf } = useViewerServer('tessera-share-data-');

  let browser;
  let studies; // {ct, others: [uid]}
  let password;
  before(async () => {
    browser = await launchChromium();
    password = await adminPasswordOf();
    studies = await demoStudies(srv);
  });
  after(async () => {
    if (browser) await browser.close();
  });

  // A page with its errors, CSP violations and requests recorded (browser.mjs).
  const newPage = (name, profile) => recordedPage(browser, { name, profile, expected4xx: EXPECTED_4XX, shotPrefix: 'share' });
  const painted = (page) => page.waitForSelector('#grid > .viewport:nth-child(1)[data-painted]:not([data-painted="0"])', { timeout: 30000 })
    .then(() => page.waitForSelector('#grid > .viewport:nth-child(1)[data-state="still"]', { timeout: 30000 }));
  const canvasVariance = (page) => page.$eval('#grid > .viewport:nth-child(1) canvas.image', (c) => {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; let s = 0; let s2 = 0;
    for (let k = 0; k < px.length; k += 4) { n++; s += px[k]; s2 += px[k] * px[k]; }
    return s2 / n - (s / n) ** 2;
  });

  let admin; // desktop page of the admin
  let phone; // phone page of the link's recipient
  let link; // {url, token, pin, id}

  test('the server sends its Content-Security-Policy with the viewer', async () => {
    for (const p of ['/', '/login.html', '/share.html', '/js/app.js']) {
      const r = await request(p, { origin: srv.origin, auth: false });
      assert.equal(r.status, 200, `${p} is public (no credential)`);
      const csp = r.headers['content-security-policy'] || '';
      assert.match(csp, /script-src 'self'/, `${p}: CSP script-src`);
      assert.match(csp, /style-src 'self'/, `${p}: CSP style-src`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${p}: CSP is strict`);
      assert.equal(r.headers['referrer-policy'], 'no-referrer', `${p}: Referrer-Policy`);
    }
  });

  test('the admin logs in through the login page (wrong password, lock-out in words)', async () => {
    admin = await newPage('admin', DESKTOP);
    const { page } = admin;
    await page.goto(`${srv.origin}/#/study/${studies.ct}`);
    await page.waitForURL(/\/login\.html\?next=/, { timeout: 20000 });
    // a name that fails five times in a row is locked for a while: the page says how long (a
    // second user, so that the admin is not locked)
    const u = await api(srv, '/api/users', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: Buffer.from(JSON.stringify({ username: 'reader1', password: crypto.randomBytes(12).toString('hex'), role: 'reader' })),
    });
    assert.equal(u.status, 201, `POST /api/users: ${u.status} ${u.text()}`);
    let locked = 0;
    for (let k = 1; k <= 7 && !locked; k++) {
      await page.evaluate(() => { document.querySelector('#login-error').textContent = ''; });
      await page.fill('#username', 'reader1');
      await page.fill('#password', `guess-${k}`);
      await page.click('#login-submit');
      const said = await (await page.waitForFunction(() => document.querySelector('#login-error').textContent)).jsonValue();
      if (/Too many attempts/.test(said)) locked = k;
      else assert.equal(said, 'Wrong user name or password.', `attempt ${k}`);
    }
    assert.ok(locked >= 5 && locked <= 6, `locked after five failures (attempt ${locked})`);
    await page.waitForFunction(() => /Too many attempts: try again in \d+ s/.test(document.querySelector('#login-error').textContent));
    assert.ok(await page.$eval('#login-submit', (b) => b.disabled), 'the button waits for Retry-After');
    await admin.shot('login-locked');
    // the lock is for that name: the admin logs in (reload: a fresh form)
    await page.reload();
    await page.fill('#username', 'admin');
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    await page.waitForFunction(() => document.querySelector('#login-error').textContent === 'Wrong user name or password.');
    await page.fill('#username', 'admin');
    await page.fill('#password', password);
    await page.click('#login-submit');
    // back where the admin was going: the CT study
    await page.waitForURL((u) => u.pathname === '/' && u.hash === `#/study/${studies.ct}`, { timeout: 20000 });
    await painted(page);
    assert.ok(await canvasVariance(page) > 100, 'the study is shown');
    assert.ok(await page.isVisible('#logout-btn'), 'a logout button for a user session');
    assert.ok(await page.isVisible('#share-btn'), 'a Share button in a study of a user session');
    await admin.clean('login');
  });

  test('an unknown user name is locked like a known one (no user enumeration)', async () => {
    // contract: "429 + Retry-After after 5 failures in a row for that user name"; a lock that
    // only known names get would tell an attacker which names exist
    const statuses = [];
    for (let k = 1; k <= 6; k++) {
      const r = await request('/api/login', {
        origin: srv.origin, method: 'POST', auth: false, headers: { 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ username: 'nobody-by-that-name', password: `guess-${k}` })),
      });
      statuses.push(r.status);
    }
    assert.equal(statuses[5], 429, `six failed logins of an unknown name: ${statuses.join(' ')}`);
  });

  test('the admin creates a link with a PIN in the Share dialog', async () => {
    const { page } = admin;
    await page.click('#share-btn');
    await page.waitForSelector('#share[open]');
    await page.waitForSelector('#share-links-status:has-text("No link")');
    assert.equal(await page.$eval('#share-form input[name=expiry]:checked', (i) => i.value), '168', '7 days by default');
    assert.ok(!(await page.isChecked('#share-download')), 'view only by default');
    await page.click('#share-pin-gen');
    const pin = await page.inputValue('#share-pin');
    assert.match(pin, /^\d{6}$/, 'a generated 6-digit PIN');
    await page.fill('#share-max', '5');
    await admin.shot('dialog');
    const created = page.waitForResponse((r) => r.url().endsWith('/api/shares') && r.request().method() === 'POST');
    await page.click('#share-create');
    const resp = await created;
    assert.equal(resp.status(), 201, 'POST /api/shares');
    const body = JSON.parse(resp.request().postData());
    assert.deepEqual(body, { study: studies.ct, expires_in_hours: 168, permissions: ['view'], pin, max_opens: 5 });
    await page.waitForSelector('#share-result:not([hidden])');
    const url = await page.inputValue('#share-url');
    const m = new RegExp(`^${srv.origin.replace(/[.]/g, '\\.')}/share\\.html#([A-Za-z0-9_-]{43})$`).exec(url);
    assert.ok(m, `the link ${url}: origin/share.html#<43 base64url chars>`);
    assert.equal(await page.textContent('#share-pin-value'), pin, 'the PIN is shown with the link');
    assert.match(await page.textContent('#share-result'), /shown only once/);
    // the QR code (the server's SVG) is drawn
    await page.waitForFunction(() => {
      const i = document.querySelector('#share-qr img');
      return i && i.complete && i.naturalWidth > 0;
    }, null, { timeout: 10000 });
    // Copy: the clipboard gets the link
    await admin.ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.origin });
    await page.click('#share-copy');
    await page.waitForFunction(() => document.querySelector('#share-copied').textContent !== '');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url, 'copied');
    // the list: one active link with a PIN, newest first
    const id = await page.getAttribute('#share-result', 'data-id');
    await page.waitForSelector(`#share-links tbody tr[data-id="${id}"][data-state="active"]`);
    const rowText = await page.textContent(`#share-links tbody tr[data-id="${id}"]`);
    assert.match(rowText, /PIN/);
    assert.match(rowText, /view only/);
    assert.match(rowText, /0 \/ 5/);
    // the server agrees: 168 hours, a PIN, view only, no token in the list
    const lr = await api(srv, `/api/shares?study=${studies.ct}`);
    assert.equal(lr.status, 200);
    const [l] = lr.json();
    assert.equal(l.id, id);
    assert.equal(l.pin, true);
    assert.deepEqual(l.permissions, ['view']);
    const hours = (Date.parse(l.expires) - Date.now()) / 3600e3;
    assert.ok(hours > 167 && hours <= 168.1, `expires in ${hours.toFixed(2)} h`);
    assert.ok(!lr.text().includes(m[1]), 'no token in the list');
    link = { url, token: m[1], pin, id };
    await admin.shot('link');
    await admin.clean('share dialog');
  });

  test('a phone opens the link: PIN (wrong, then right), the study, no study list', async () => {
    phone = await newPage('phone', PHONE);
    const { page } = phone;
    await page.goto(link.url);
    await page.waitForSelector('#pin-form:not([hidden])', { timeout: 20000 });
    assert.ok(!page.url().includes(link.token), `the token left the address bar: ${page.url()}`);
    assert.equal(await page.evaluate(() => location.hash), '');
    const attrs = await page.$eval('#pin', (i) => ({ mode: i.inputMode, ac: i.autocomplete }));
    assert.deepEqual(attrs, { mode: 'numeric', ac: 'one-time-code' }, 'a numeric keypad on phones');
    assert.ok(await page.evaluate(() => window.innerWidth === 390 && document.documentElement.scrollWidth <= 390), 'no horizontal scroll (a phone widens its layout viewport to the content)');
    await phone.shot('pin');
    const wrong = link.pin.replace(/.$/, (d) => String((Number(d) + 1) % 10));
    await page.tap('#pin');
    await page.fill('#pin', wrong);
    await page.tap('#pin-submit');
    await page.waitForFunction(() => /attempts? left/.test(document.querySelector('#pin-error').textContent), null, { timeout: 20000 });
    assert.match(await page.textContent('#pin-error'), /Wrong access code; 4 attempts left/);
    await phone.shot('pin-wrong');
    await page.fill('#pin', link.pin);
    await page.tap('#pin-submit');
    await page.waitForURL((u) => u.pathname === '/' && u.hash === `#/study/${studies.ct}`, { timeout: 20000 });
    await painted(page);
    const v = await canvasVariance(page);
    assert.ok(v > 100, `the first image is painted (canvas variance ${v.toFixed(1)})`);
    // restricted mode
    assert.equal(await page.$$eval('#list-view, #studies, #search', (e) => e.length), 0, 'no study list or search in the DOM');
    assert.ok(await page.isVisible('#share-banner'), 'the shared-study banner');
    assert.match(await page.textContent('#share-banner'), /Shared study \(view only\), available until/);
    assert.ok(!(await page.isVisible('#share-btn')), 'no Share button');
    assert.ok(!(await page.isVisible('#logout-btn')), 'no Log out');
    assert.ok(!page.url().includes(link.token), 'no token in the address bar');
    assert.ok(!phone.requests.some((r) => r.type !== 'document' && r.url.includes(link.token)), 'the token is in no request URL');
    assert.ok(await page.evaluate(() => window.innerWidth === 390 && document.documentElement.scrollWidth <= 390), 'no horizontal scroll (a phone widens its layout viewport to the content)');
    await phone.shot('study');
    // the opens count: one
    const l = (await api(srv, `/api/shares?study=${studies.ct}`)).json().find((x) => x.id === link.id);
    assert.equal(l.opens, 1, 'one open counted');
  });

  test('the share session sees only its study; view only: the ROI shows its area', async () => {
    const { page } = phone;
    // "/" leads back to the shared study, not to a list
    await page.goto(`${srv.origin}/`);
    await page.waitForURL((u) => u.hash === `#/study/${studies.ct}`, { timeout: 20000 });
    await painted(page);
    assert.equal(await page.$$eval('#list-view, #studies tbody tr', (e) => e.length), 0, 'no study list after navigating to /');
    const seen = await page.evaluate(async (others) => {
      const q = await fetch('/dicomweb/studies', { headers: { Accept: 'application/dicom+json' } });
      const list = await q.json();
      const st = await Promise.all(others.map((u) => fetch(`/dicomweb/studies/${u}/series`).then((r) => r.status)));
      const shares = (await fetch('/api/shares?study=x')).status;
      return { status: q.status, uids: list.map((s) => s['0020000D'].Value[0]), others: st, shares };
    }, studies.others);
    assert.equal(seen.status, 200);
    assert.deepEqual(seen.uids, [studies.ct], 'QIDO returns only the shared study');
    assert.deepEqual(seen.others, studies.others.map(() => 404), 'other studies are 404');
    assert.equal(seen.shares, 403, 'a share session cannot list links');
    // a rectangle ROI without the download permission: the area, no mean/SD, no raw frame request
    const from = phone.requests.length;
    await page.tap('[data-tool=rect]');
    const b = await (await page.$('#grid > .viewport:nth-child(1)')).boundingBox();
    const cdp = await phone.ctx.newCDPSession(page);
    const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', {
      type, touchPoints: pts.map(([x, y], id) => ({ x, y, id, radiusX: 1, radiusY: 1, force: 1 })),
    });
    const [x0, y0] = [b.x + b.width / 2 - 40, b.y + b.height / 2 - 30];
    await touch('touchStart', [[x0, y0]]);
    for (let k = 1; k <= 6; k++) await touch('touchMove', [[x0 + (80 * k) / 6, y0 + (60 * k) / 6]]);
    await touch('touchEnd', []);
    await page.waitForFunction(() => /^Area [\d.]+ mm²$/.test(document.querySelector('#grid > .viewport:nth-child(1)').dataset.measures), null, { timeout: 10000 });
    assert.ok(!phone.requests.slice(from).some((r) => /\/frames\/\d+$/.test(new URL(r.url).pathname)), 'no raw frame requested');
    await phone.shot('roi-area-only');
    await page.tap('[data-act=clear]');
    await page.tap('[data-tool=scroll]');
    await phone.clean('restricted mode');
  });

  test('the admin revokes the link in the dialog; the phone then says "link revoked"', async () => {
    const { page } = admin;
    const row = `#share-links tbody tr[data-id="${link.id}"]`;
    await page.waitForSelector(`${row}[data-state="active"]`);
    await page.click(`${row} button.revoke`);
    const del = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().endsWith(`/api/shares/${link.id}`));
    await page.click(`${row} button.confirm-revoke`);
    assert.equal((await del).status(), 204, 'DELETE /api/shares/{id}');
    await page.waitForSelector(`${row}[data-state="revoked"]`);
    assert.equal(await page.$$eval(`${row} button.revoke`, (b) => b.length), 0, 'no Revoke button on a revoked link');
    await admin.shot('revoked');
    await admin.clean('revoke');

    // the phone's next request (a slice it has not loaded yet) is refused: the page says so
    const p = phone.page;
    await p.evaluate(() => window.tessera.active.setIndex(window.tessera.active.src.count - 1));
    await p.waitForSelector('#gone-view:not([hidden])', { timeout: 20000 });
    assert.equal(await p.textContent('#gone-title'), 'This link has been revoked.');
    assert.ok(!(await p.isVisible('#study-view')), 'the study is no longer shown');
    assert.ok(phone.responses.some((r) => r.status === 410), 'a 410 answer');
    await phone.shot('revoked');
    // and after a reload
    await p.reload();
    await p.waitForSelector('#gone-view:not([hidden])', { timeout: 20000 });
    assert.equal(await p.textContent('#gone-title'), 'This link has been revoked.');
    assert.equal(await p.$$eval('#list-view, #studies', (e) => e.length), 0, 'still no study list');
    // the link itself now says revoked, in words
    await p.goto(link.url);
    await p.waitForFunction(() => document.querySelector('#share-page').dataset.state === 'gone', null, { timeout: 20000 });
    assert.equal(await p.textContent('#share-heading'), 'This link has been revoked.');
    await phone.clean('after revocation');
  });

  after(async () => {
    for (const r of [admin, phone]) if (r) await r.ctx.close().catch(() => {});
  });
});
