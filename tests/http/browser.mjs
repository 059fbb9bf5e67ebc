// browser.mjs: what the browser tests share: Debian's Chromium (never downloaded) through
// playwright-core, the device profiles, and the admin's credentials on a test server.
//
// Needs /usr/bin/chromium (Debian package `chromium`): a suite given `browserSuiteOpts` skips
// without it, and fails when CI is set. Override the path with CHROMIUM_BIN.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, demo, tempDir, runTessera, request, IN_CI, TEST_DIR } from './harness.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const WEB_ROOT = path.resolve(TEST_DIR, '../../web');
export const ARTIFACTS = process.env.TSR_ARTIFACTS || path.join(TEST_DIR, 'artifacts');
const haveChromium = fs.existsSync(CHROMIUM);
export const browserSuiteOpts = haveChromium || IN_CI ? {} : { skip: `${CHROMIUM} not found (Debian package chromium)` };

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, hasTouch: true, isMobile: true };
export const DESKTOP = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 };

// Headless Chromium with the flags of the brief (no sandbox, no background traffic); the
// artifacts folder exists afterwards. `extraArgs` for a suite's own flags.
export async function launchChromium(extraArgs = []) {
  assert.ok(haveChromium, `${CHROMIUM} not found (install the Debian package chromium); required when CI is set`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

// The server's admin bearer token: the harness's server.token when it sets one, else the
// TESSERA_ADMIN_TOKEN this process gives every server it starts.
if (!process.env.TESSERA_ADMIN_TOKEN) process.env.TESSERA_ADMIN_TOKEN = crypto.randomBytes(24).toString('base64url');
export const tokenOf = (s) => s.token || process.env.TESSERA_ADMIN_TOKEN;

// The admin's password: the harness's server.adminPassword, else the first-start line on the
// server's (or an import's) stdout.
const PASSWORD_RE = /first start: user "admin" created with password (\S+)/;
export async function adminPassword(s, ...texts) {
  for (let i = 0; i < 50; i++) {
    if (s.adminPassword) return s.adminPassword;
    for (const t of [s.stdout(), ...texts]) {
      const m = PASSWORD_RE.exec(t || '');
      if (m) return m[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no admin password: neither server.adminPassword nor a first-start line on stdout:\n${s.stdout()}`);
  return '';
}

// A request with the admin token, JSON by default.
export const api = (s, p, o = {}) => request(p, {
  origin: s.origin, ...o, headers: { Authorization: `Bearer ${tokenOf(s)}`, Accept: 'application/json', ...(o.headers || {}) },
});

// A new browser context and page that records what the tests check afterwards: console errors
// (less those matching `expected4xx`, the browser's own reports of answers the test expects),
// Content-Security-Policy violations, page errors, failed requests, and every request and
// response. rec.shot(n) saves a screenshot as ARTIFACTS/<shotPrefix>-<name>-<n>.png;
// rec.clean(what) asserts that nothing unexpected was recorded.
export async function recordedPage(browser, { name, profile, ctxOpts = {}, expected4xx, shotPrefix, fullPage = false }) {
  const ctx = await browser.newContext({ ...profile, ...ctxOpts });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile || ''}:${e.lineNumber || ''}`);
    });
  });
  const page = await ctx.newPage();
  const rec = { name, page, ctx, errors: [], csp: [], requests: [], responses: [] };
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) rec.csp.push(m.text());
    if (m.type() === 'error' && !expected4xx.test(m.text())) rec.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => rec.errors.push(`page error: ${e}`));
  page.on('request', (r) => rec.requests.push({ url: r.url(), type: r.resourceType(), method: r.method(), headers: r.headers() }));
  page.on('response', (r) => rec.responses.push({ url: r.url(), status: r.status(), method: r.request().method() }));
  page.on('requestfailed', (r) => {
    if (!/ERR_ABORTED/.test(r.failure()?.errorText || '')) rec.errors.push(`failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  rec.shot = (n) => page.screenshot({ path: path.join(ARTIFACTS, `${shotPrefix}-${name}-${n}.png`), fullPage });
  rec.clean = async (what) => {
    const inPage = await page.evaluate(() => window.__csp || []).catch(() => []);
    assert.deepEqual([...rec.csp, ...inPage], [], `${name}: no Content-Security-Policy violation (${what})`);
    assert.deepEqual(rec.errors, [], `${name}: no console errors but expected 4xx answers (${what})`);
  };
  return rec;
}

// For a describe() block: a server with the demo studies imported and the viewer (web/) as its
// web root. Returns the harness's server and password(), the admin's first-start password.
export function useViewerServer(prefix) {
  let importOut = '';
  const srv = useServer(async () => {
    const dataDir = tempDir(prefix);
    const d = await demo();
    const r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    importOut = r.stdout;
    return { dataDir, args: ['--web-root', WEB_ROOT] };
  });
  return { srv, password: () => adminPassword(srv, importOut) };
}

// The demo's study UIDs through QIDO-RS with the admin token: {ct, others}.
export async function demoStudies(srv) {
  const r = await api(srv, '/dicomweb/studies?includefield=00081030', { headers: { Accept: 'application/dicom+json' } });
  assert.equal(r.status, 200, `QIDO with the admin token: ${r.status} ${r.text().slice(0, 300)}`);
  const all = r.json();
  assert.equal(all.length, 3, 'three demo studies');
  const ct = all.find((s) => s['00081030']?.Value?.[0] === 'Tessera demo CT');
  assert.ok(ct, 'the demo CT study');
  return { ct: ct['0020000D'].Value[0], others: all.filter((s) => s !== ct).map((s) => s['0020000D'].Value[0]) };
}
