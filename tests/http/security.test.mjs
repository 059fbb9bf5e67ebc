// Access control (issue 7), each check a real request against a running `tessera serve`:
// credentials on every protected endpoint (401 JSON + WWW-Authenticate) and the public ones;
// share links (scope: another study's UIDs answer exactly like unknown UIDs, QIDO shows only the
// shared study and series; view-only vs download; expiry, revocation, max_opens, PIN attempts
// and lockout); secrets never in clear in the server's output or the audit, and the audit's
// entries; path traversal on /dicomweb, /iiif and static paths; oversized request headers and a
// slow client; session cookies (flags, logout, login rate limit, CSRF); roles and token scopes;
// security headers; TLS (HSTS, Secure cookies).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  useServer, client, demo, tempDir, runTessera, request, login, openShare, sessionCookie, multipartBody,
  assertJsonError, first, uidsOf, T,
} from './harness.mjs';
import { readUids, syntheticInstance, isJpeg, isPng } from './dicom.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const EVIL = 'https://evil.example';
const SECRET = `tessera-secret-${Math.random().toString(36).slice(2)}`; // outside the web root

// A temp folder with web/ (the web root: a few static files), data/ (the data dir) and
// secret.txt next to them, so that a traversal out of the web root has real targets.
function layout() {
  const top = tempDir('tessera-sec-');
  const web = path.join(top, 'web');
  fs.mkdirSync(path.join(web, 'js'), { recursive: true });
  const files = {
    '/index.html': '<!doctype html><title>index</title><script type="module" src="js/app.js"></script>\n',
    '/login.html': '<!doctype html><title>login</title>\n',
    '/share.html': '<!doctype html><title>share</title>\n',
    '/viewer.css': 'body { margin: 0 }\n',
    '/js/app.js': 'export const app = 1;\n',
  };
  for (const [p, text] of Object.entries(files)) fs.writeFileSync(path.join(web, p), text);
  fs.writeFileSync(path.join(top, 'secret.txt'), `${SECRET}\n`);
  return { top, web, data: path.join(top, 'data'), files };
}

// Bodies that must never come back from a traversal attempt.
function assertNoLeak(r, what) {
  const body = r.body.toString('latin1');
  assert.ok(!body.includes(SECRET), `${what}: a file outside the web root (status ${r.status})`);
  assert.ok(!/root:[^:\n]*:0:0:/.test(body), `${what}: /etc/passwd content (status ${r.status})`);
  assert.ok(!body.includes('SQLite format 3'), `${what}: the index file (status ${r.status})`);
  assert.ok(!body.includes('DICM'), `${what}: a DICOM file (status ${r.status})`);
}

const json = (o) => Buffer.from(JSON.stringify(o));

// A raw TCP exchange: connects, writes `chunks` (then nothing), collects what comes back until
// the server closes the connection or timeoutMs. Resolves {data, closed, ms, error}.
function rawExchange(port, chunks, { timeoutMs = 8000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const got = [];
    let error = null;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(got), closed, ms: Date.now() - t0, error });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (c) => got.push(c));
    sock.on('error', (e) => { error = e.code || e.message; });
    sock.on('close', () => finish(true));
    sock.on('connect', () => { for (const c of chunks) sock.write(c); });
  });
}
const statusOf = (buf) => {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1'));
  return m ? Number(m[1]) : null;
};

function headerChecks(r, what) {
  const csp = r.headers['content-security-policy'] || '';
  assert.match(csp, /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none' (CSP: ${csp})`);
  assert.match(csp, /default-src 'self'/, `${what}: CSP default-src 'self'`);
  assert.match(csp, /script-src 'self'/, `${what}: CSP script-src 'self'`);
  assert.match(csp, /object-src 'none'/, `${what}: CSP object-src 'none'`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${what}: no unsafe-* in the CSP`);
  assert.equal(r.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
  assert.equal(String(r.headers['x-frame-options'] || '').toUpperCase(), 'DENY', `${what}: X-Frame-Options`);
}

function cookieAttrs(r) {
  const sc = [].concat(r.headers['set-cookie'] || []).find((c) => /^\s*tsr_session=/.test(c));
  assert.ok(sc, `a tsr_session Set-Cookie: ${JSON.stringify(r.headers['set-cookie'])}`);
  const attrs = sc.split(';').slice(1).map((a) => a.trim());
  const has = (name) => attrs.some((a) => a.toLowerCase() === name.toLowerCase() || a.toLowerCase().startsWith(`${name.toLowerCase()}=`));
  const val = (name) => attrs.find((a) => a.toLowerCase().startsWith(`${name.toLowerCase()}=`))?.split('=')[1];
  return { raw: sc, has, val };
}

function assertUnauthorized(r, what) {
  const j = assertJsonError(r, 401, what);
  assert.equal(j.error, 'Unauthorized', `${what}: error field`);
  assert.match(String(r.headers['www-authenticate'] || ''), /^Bearer realm="tessera"/, `${what}: WWW-Authenticate`);
}

// text with the given UIDs replaced by their names (longest first: a series UID often extends
// its study's)
const normUids = (text, uids) => Object.entries(uids).sort((a, b) => b[1].length - a[1].length)
  .reduce((t, [k, v]) => t.split(v).join(`<${k}>`), text);
// An audit entry names `id` (a share or token id, a user name) in its actor, action or target.
const mentions = (e, id) => [e.actor, e.action, e.target].some((f) => String(f ?? '').split(/[^A-Za-z0-9_-]+/).includes(String(id)));

const fakeUid = () => `2.25.${Date.now()}${Math.floor(Math.random() * 1e9)}`;

describe('access control', () => {
  let d;
  let L;
  const srv = useServer(async () => {
    d = await demo();
    L = layout();
    const r = await runTessera(['import', '--data', L.data, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    return { dataDir: L.data, args: ['--web-root', L.web] };
  });

  let admin; // client with the admin token
  let anon; // client without any credential
  let ct;
  let cr;
  let us;
  let bulkPath; // the CT instance's PixelData bulkdata path
  const secrets = []; // [kind, value]: must never appear in the server's output or the audit
  const audit = { shareIds: {}, tokenIds: [], users: [] };

  const inst = (u) => `/dicomweb/studies/${u.study}/series/${u.series}/instances/${u.sop}`;
  const series = (u) => `/dicomweb/studies/${u.study}/series/${u.series}`;

  before(async () => {
    admin = client(srv);
    anon = client(srv, { auth: false });
    secrets.push(['admin token', srv.token]);
    const uids = (f) => {
      const u = readUids(fs.readFileSync(f));
      return { study: u.study, series: u.series, sop: u.sop };
    };
    ct = uids(d.ct[60]);
    cr = uids(d.cr[0]);
    us = uids(d.us[0]);
    const meta = await admin.json(`${inst(ct)}/metadata`);
    const uri = meta[0][T.PixelData]?.BulkDataURI;
    assert.ok(uri, 'the CT instance has a PixelData BulkDataURI');
    bulkPath = new URL(uri).pathname;
  });

  // POST/DELETE with the admin token (JSON body).
  const adminCall = (method, p, body) => admin.request(p, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? json(body) : null,
  });
  async function createShare(body, { via = admin } = {}) {
    const r = await via.request('/api/shares', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json(body) });
    assert.equal(r.status, 201, `POST /api/shares ${JSON.stringify(body)}: ${r.status} ${r.text().slice(0, 300)}`);
    const s = r.json();
    assert.match(s.token, /^[A-Za-z0-9_-]{43}$/, 'the share token: 43 base64url characters');
    secrets.push(['share token', s.token]);
    return s;
  }
  async function openOk(token, opts) {
    const { r, cookie } = await openShare(srv, token, opts);
    assert.equal(r.status, 200, `POST /api/share/open: ${r.status} ${r.text().slice(0, 300)}`);
    assert.ok(cookie, 'a share session cookie');
    secrets.push(['share session cookie', cookie.slice('tsr_session='.length)]);
    return cookie;
  }
  const as = (cookie) => client(srv, { headers: { Cookie: cookie } });
  async function createUser(username, role) {
    const password = `pw-${Math.random().toString(36).slice(2)}-${username}`;
    const r = await adminCall('POST', '/api/users', { username, password, role });
    assert.equal(r.status, 201, `POST /api/users ${username}: ${r.status} ${r.text().slice(0, 300)}`);
    audit.users.push(username);
    return password;
  }
  async function createToken(name, scope) {
    const r = await adminCall('POST', '/api/tokens', { name, scope });
    assert.equal(r.status, 201, `POST /api/tokens: ${r.status} ${r.text().slice(0, 300)}`);
    const t = r.json();
    assert.equal(t.scope, scope);
    assert.equal(typeof t.token, 'string');
    assert.ok(t.token.length >= 32, `a long token: ${t.token.length}`);
    secrets.push(['API token', t.token]);
    audit.tokenIds.push(t.id);
    return t;
  }

  // Every protected resource, with a check that the admin token gets it (so a 401 means the
  // credential is missing, not that the resource does not exist).
  const protectedGets = () => [
    '/dicomweb/studies', '/dicomweb/series', '/dicomweb/instances',
    `/dicomweb/studies/${ct.study}/series`, `/dicomweb/studies/${ct.study}/instances`, `${series(ct)}/instances`,
    `/dicomweb/studies/${cr.study}`, series(cr), inst(cr),
    `/dicomweb/studies/${ct.study}/metadata`, `${series(ct)}/metadata`, `${inst(ct)}/metadata`,
    `${inst(us)}/frames/2`, bulkPath,
    `${inst(cr)}/rendered`, `${inst(us)}/frames/3/rendered`, `${series(ct)}/rendered`,
    `${inst(ct)}/thumbnail`, `${series(ct)}/thumbnail`, `/dicomweb/studies/${ct.study}/thumbnail`,
    `${inst(ct)}/frames/1/tiles`, `${inst(ct)}/frames/1/tiles/default/90/0/0/0.jpg`,
    `/iiif/3/${ct.sop}:1:default/info.json`, `/iiif/3/${ct.sop}:1:default/full/max/0/default.jpg`,
    `${series(ct)}/volume`, `${series(ct)}/mpr/rendered?plane=sagittal`, `${series(ct)}/mpr/geometry?plane=coronal`,
    '/stats', '/metrics',
    '/api/users', '/api/tokens', `/api/shares?study=${ct.study}`, '/api/audit', '/api/audit?format=jsonl',
  ];

  test('every protected endpoint without credentials: 401 JSON with WWW-Authenticate', async () => {
    for (const p of protectedGets()) {
      const ok = await admin.get(p);
      assert.equal(ok.status, 200, `control: GET ${p} with the admin token: ${ok.status} ${ok.text().slice(0, 200)}`);
      assertUnauthorized(await anon.get(p), `GET ${p}`);
      assertUnauthorized(await anon.get(p, { Authorization: `Bearer ${'A'.repeat(43)}` }), `GET ${p} with a wrong bearer token`);
    }
    // no difference between existing and unknown resources without credentials
    assertUnauthorized(await anon.get(`/dicomweb/studies/${fakeUid()}/metadata`), 'unknown study');
    assertUnauthorized(await anon.get('/dicomweb/studies', { Authorization: `Basic ${Buffer.from(`admin:${srv.adminPassword}`).toString('base64')}` }), 'Basic auth');
    assertUnauthorized(await anon.get('/dicomweb/studies', { Authorization: `Bearer ${srv.token}x` }), 'the admin token plus a character');
    assertUnauthorized(await anon.get('/dicomweb/studies', { Cookie: 'tsr_session=bm90LWEtc2Vzc2lvbg' }), 'a made-up session cookie');

    // state-changing requests: 401 and no effect
    const small = syntheticInstance({ study: '2.25.7001', series: '2.25.7001.1', sop: '2.25.7001.1.1' });
    const mp = multipartBody([small]);
    const posts = [
      ['POST', '/dicomweb/studies', { 'Content-Type': mp.contentType }, Buffer.concat(mp.body)],
      ['POST', `/dicomweb/studies/2.25.7001`, { 'Content-Type': mp.contentType }, Buffer.concat(mp.body)],
      ['POST', '/api/users', { 'Content-Type': 'application/json' }, json({ username: 'mallory', password: 'mallory-pass-1', role: 'admin' })],
      ['DELETE', '/api/users/admin', {}, null],
      ['POST', '/api/tokens', { 'Content-Type': 'application/json' }, json({ name: 'mallory', scope: 'admin' })],
      ['DELETE', '/api/tokens/1', {}, null],
      ['POST', '/api/shares', { 'Content-Type': 'application/json' }, json({ study: ct.study, permissions: ['view', 'download'] })],
      ['DELETE', '/api/shares/1', {}, null],
    ];
    for (const [method, p, headers, body] of posts) {
      assertUnauthorized(await anon.request(p, { method, headers, body }), `${method} ${p}`);
    }
    assert.deepEqual(await admin.json('/dicomweb/studies?StudyInstanceUID=2.25.7001'), [], 'the unauthenticated STOW stored nothing');
    const users = (await admin.get('/api/users')).json();
    assert.ok(!users.some((u) => u.username === 'mallory'), 'no user mallory');
    assert.ok(users.some((u) => u.username === 'admin'), 'admin still exists');
    assert.ok(!(await admin.get('/api/tokens')).json().some((t) => t.name === 'mallory'), 'no token mallory');
    assert.deepEqual((await admin.get(`/api/shares?study=${ct.study}`)).json(), [], 'no share was created');
  });

  test('static viewer files, /api/login, /api/share/open and /api/logout stay public; /api/me is 401 without a session', async () => {
    for (const [p, text] of Object.entries(L.files)) {
      const r = await anon.get(p);
      assert.equal(r.status, 200, `GET ${p} without credentials: ${r.status} ${r.text().slice(0, 200)}`);
      assert.equal(r.text(), text, `${p} content`);
    }
    const root = await anon.get('/');
    assert.equal(root.status, 200, `GET / without credentials: ${root.status}`);
    assert.equal(root.text(), L.files['/index.html'], '/ serves index.html');
    const { r } = await login(srv);
    assert.equal(r.status, 200, `POST /api/login without any other credential: ${r.status} ${r.text()}`);
    const open = await openShare(srv, 'A'.repeat(43));
    const j = assertJsonError(open.r, 404, 'POST /api/share/open of an unknown token');
    assert.match(j.message, /no such link/);
    const out = await anon.request('/api/logout', { method: 'POST' });
    assert.ok([200, 204].includes(out.status), `POST /api/logout without a session: ${out.status} ${out.text()}`);
    assertUnauthorized(await anon.get('/api/me'), 'GET /api/me without a session');
  });

  test('the admin token is an admin; the share answer carries a fragment URL and a script-free QR code', async () => {
    const me = await admin.get('/api/me');
    assert.equal(me.status, 200, me.text());
    assert.equal(me.json().scope, 'admin', `GET /api/me with the admin token: ${me.text()}`);
    const s = await createShare({ study: us.study });
    assert.equal(s.url, `${srv.origin}/share.html#${s.token}`, 'url: the token travels in the fragment');
    assert.equal(s.study, us.study);
    assert.deepEqual(s.permissions, ['view'], 'view only by default');
    assert.equal(s.pin, false, 'no PIN');
    const days = (Date.parse(s.expires) - Date.now()) / 86400000;
    assert.ok(days > 6.9 && days < 7.1, `default expiry in 7 days: ${s.expires}`);
    assert.match(s.qr_svg, /^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/, 'qr_svg is an SVG document');
    assert.doesNotMatch(s.qr_svg, /<script|<style|\sstyle\s*=|\son[a-z]+\s*=|javascript:|<foreignObject|href\s*=/i, 'qr_svg: no scripts, styles, handlers or links');
    const list = await admin.get(`/api/shares?study=${us.study}`);
    assert.equal(list.status, 200);
    const mine = list.json().find((x) => x.id === s.id);
    assert.ok(mine, 'the new link is listed');
    assert.equal(mine.state, 'active');
    assert.equal(mine.opens, 0);
    assert.ok(!list.text().includes(s.token), 'the list does not contain the token');
    assert.ok(!Object.keys(mine).some((k) => /token|hash/i.test(k)), `no token or hash field: ${Object.keys(mine)}`);
    // bad requests
    for (const bad of [{ study: fakeUid() }, { study: us.study, pin: '12' }, { study: us.study, pin: 'abcd' }, { study: us.study, permissions: ['admin'] }, { study: us.study, expires_in_hours: -1 }]) {
      const r = await adminCall('POST', '/api/shares', bad);
      assert.ok(r.status >= 400 && r.status < 500, `POST /api/shares ${JSON.stringify(bad)}: ${r.status}`);
    }
  });

  test('a share session sees only its study: other UIDs answer exactly like unknown UIDs; QIDO lists only the study', async () => {
    // download permission, so that 403 "viewing only" cannot hide a scope mistake
    const s = await createShare({ study: cr.study, permissions: ['view', 'download'] });
    audit.shareIds.scope = s.id;
    const c = as(await openOk(s.token));
    const me = (await c.get('/api/me')).json();
    assert.equal(me.kind, 'share');
    assert.equal(me.id, s.id);
    assert.equal(me.study, cr.study);

    // its own study works
    assert.equal((await c.get(inst(cr), { Accept: 'application/dicom' })).status, 200);
    assert.equal((await c.get(`${inst(cr)}/metadata`)).status, 200);

    // QIDO at every level: only the shared study
    const studies = await c.json('/dicomweb/studies');
    assert.deepEqual(uidsOf(studies, T.StudyInstanceUID), [cr.study]);
    assert.deepEqual(uidsOf(await c.json('/dicomweb/series'), T.SeriesInstanceUID), [cr.series]);
    assert.deepEqual(uidsOf(await c.json('/dicomweb/instances?limit=1000'), T.SOPInstanceUID), [cr.sop]);
    assert.deepEqual(uidsOf(await c.json(`/dicomweb/studies/${cr.study}/instances`), T.SOPInstanceUID), [cr.sop]);
    for (const q of [`/dicomweb/studies?StudyInstanceUID=${ct.study}`, `/dicomweb/studies?ModalitiesInStudy=CT`,
      `/dicomweb/series?Modality=US`, `/dicomweb/instances?SOPInstanceUID=${ct.sop}`, `/dicomweb/studies?PatientName=*`]) {
      const r = await c.get(q);
      assert.ok(!r.text().includes(ct.study) && !r.text().includes(us.study), `${q}: no other study in ${r.text().slice(0, 200)}`);
      if (r.status === 200) assert.ok(r.json().every((o) => first(o, T.StudyInstanceUID) === cr.study), `${q}: only the shared study`);
    }

    // another study's UIDs: the same answer as UIDs that do not exist
    const other = [ct, us];
    const templates = [
      (u) => `/dicomweb/studies/${u.study}`, (u) => series(u), (u) => inst(u),
      (u) => `/dicomweb/studies/${u.study}/metadata`, (u) => `${series(u)}/metadata`, (u) => `${inst(u)}/metadata`,
      (u) => `/dicomweb/studies/${u.study}/series`, (u) => `/dicomweb/studies/${u.study}/instances`, (u) => `${series(u)}/instances`,
      (u) => `/dicomweb/studies?StudyInstanceUID=${u.study}`, (u) => `/dicomweb/series?SeriesInstanceUID=${u.series}`,
      (u) => `/dicomweb/instances?SOPInstanceUID=${u.sop}`,
      (u) => `${inst(u)}/frames/1`, (u) => `${inst(u)}/bulkdata/7FE00010`,
      (u) => `${inst(u)}/rendered`, (u) => `${inst(u)}/frames/1/rendered`, (u) => `${inst(u)}/thumbnail`,
      (u) => `${series(u)}/rendered`, (u) => `${series(u)}/thumbnail`, (u) => `/dicomweb/studies/${u.study}/thumbnail`,
      (u) => `${inst(u)}/frames/1/tiles`, (u) => `${inst(u)}/frames/1/tiles/default/90/0/0/0.jpg`,
      (u) => `${series(u)}/volume`, (u) => `${series(u)}/mpr/rendered?plane=axial`, (u) => `${series(u)}/mpr/tiles?plane=axial`,
      (u) => `/iiif/3/${u.sop}:1:default/info.json`, (u) => `/iiif/3/${u.sop}:1:default/full/max/0/default.jpg`,
      (u) => `/iiif/3/${u.sop}:1:default/0,0,256,256/max/0/default.png`,
      // the shared study's UID with another study's series or instance
      (u) => `/dicomweb/studies/${cr.study}/series/${u.series}/metadata`,
      (u) => `/dicomweb/studies/${cr.study}/series/${u.series}/instances/${u.sop}`,
      (u) => `/dicomweb/studies/${cr.study}/series/${cr.series}/instances/${u.sop}/rendered`,
    ];
    const differ = []; // every difference, reported together at the end
    for (const u of other) {
      const fake = { study: fakeUid(), series: fakeUid(), sop: fakeUid() };
      for (const tpl of templates) {
        const pReal = tpl(u);
        const pFake = tpl(fake);
        const real = await c.get(pReal);
        const unknown = await c.get(pFake);
        const a = `${real.status} ${real.headers['content-type']} ${normUids(real.text(), u)}`;
        const b = `${unknown.status} ${unknown.headers['content-type']} ${normUids(unknown.text(), fake)}`;
        if (a !== b) differ.push(`${pReal}\n    another study: ${a.slice(0, 300)}\n    unknown UIDs:  ${b.slice(0, 300)}`);
        if (!pReal.includes('?') || pReal.includes('/mpr/')) assert.equal(real.status, 404, `${pReal}: 404 for another study`);
        else assert.ok(!real.text().includes(u.study), `${pReal}: no other study`);
        // and the admin does see it (the UIDs are real)
        if (tpl === templates[0]) assert.equal((await admin.get(pReal)).status, 200);
      }
    }
    // the CT volume exists for the admin
    assert.equal((await admin.get(`${series(ct)}/volume`)).status, 200, 'control: the CT volume');

    // a share session cannot reach the administration, STOW or the statistics
    const small = syntheticInstance({ study: cr.study, series: '2.25.7002.1', sop: '2.25.7002.1.1' });
    const mp = multipartBody([small]);
    const stowR = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType }, body: Buffer.concat(mp.body) });
    assertJsonError(stowR, 403, 'STOW with a share session');
    for (const p of ['/stats', '/metrics', '/api/users', '/api/tokens', `/api/shares?study=${cr.study}`, '/api/audit']) {
      assertJsonError(await c.get(p), 403, `GET ${p} with a share session`);
    }
    assertJsonError(await c.request('/api/shares', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ study: cr.study }) }), 403, 'POST /api/shares with a share session');
    assertJsonError(await c.request('/api/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ name: 'x', scope: 'admin' }) }), 403, 'POST /api/tokens with a share session');
    assert.deepEqual(await admin.json('/dicomweb/series?SeriesInstanceUID=2.25.7002.1'), [], 'nothing stored');
    assert.deepEqual(differ, [], `answers that tell another study's UIDs from unknown ones:\n${differ.join('\n')}`);
  });

  test('a share of a series subset: QIDO and retrieval see only those series', async () => {
    // a second series in the CR study
    const extra = { study: cr.study, series: '2.25.7003.1', sop: '2.25.7003.1.1' };
    const st = await admin.stow([syntheticInstance({ ...extra, modality: 'OT' })]);
    assert.equal(st.status, 200, st.text());
    assert.equal((await admin.json(`/dicomweb/studies/${cr.study}/series`)).length, 2, 'control: the study has 2 series');
    const s = await createShare({ study: cr.study, series: [cr.series], permissions: ['view', 'download'] });
    assert.deepEqual(s.series, [cr.series]);
    const c = as(await openOk(s.token));
    assert.deepEqual((await c.get('/api/me')).json().series, [cr.series]);
    assert.deepEqual(uidsOf(await c.json(`/dicomweb/studies/${cr.study}/series`), T.SeriesInstanceUID), [cr.series]);
    assert.deepEqual(uidsOf(await c.json('/dicomweb/series'), T.SeriesInstanceUID), [cr.series]);
    assert.deepEqual(uidsOf(await c.json('/dicomweb/instances'), T.SOPInstanceUID), [cr.sop]);
    // study-wide resources: refused (403) or limited to the shared series, never the other one
    for (const [p, h] of [[`/dicomweb/studies/${cr.study}/metadata`, {}], [`/dicomweb/studies/${cr.study}`, { Accept: 'multipart/related; type="application/dicom"' }],
      [`/dicomweb/studies/${cr.study}/rendered`, {}], [`/dicomweb/studies/${cr.study}/thumbnail`, {}]]) {
      const r = await c.get(p, h);
      assert.ok(r.status === 200 || r.status === 403, `GET ${p}: ${r.status} ${r.text().slice(0, 200)}`);
      if (r.status === 403) assertJsonError(r, 403, p);
      assert.ok(!r.body.includes(Buffer.from(extra.sop)) && !r.body.includes(Buffer.from(extra.series)), `GET ${p}: nothing of the other series`);
      if (p.endsWith('/metadata') && r.status === 200) assert.deepEqual(uidsOf(r.json(), T.SOPInstanceUID), [cr.sop], 'study metadata: only the shared series');
    }
    assert.equal((await c.get(`${series(cr)}/metadata`)).status, 200, 'the shared series');
    const fake = { study: cr.study, series: fakeUid(), sop: fakeUid() };
    for (const tpl of [(u) => `${series(u)}/metadata`, (u) => inst(u), (u) => `${inst(u)}/rendered`, (u) => `/iiif/3/${u.sop}:1:default/info.json`]) {
      const real = await c.get(tpl(extra));
      const unknown = await c.get(tpl(fake));
      assert.equal(real.status, 404, `${tpl(extra)}: ${real.status}`);
      assert.equal(normUids(real.text(), { series: extra.series, sop: extra.sop }), normUids(unknown.text(), { series: fake.series, sop: fake.sop }), `${tpl(extra)}: like an unknown UID`);
    }
  });

  test('a view-only share: 403 on DICOM retrieve, frames and bulkdata; 200 on rendered, tiles, IIIF, MPR', async () => {
    const s = await createShare({ study: ct.study, permissions: ['view'] });
    audit.shareIds.view = s.id;
    const c = as(await openOk(s.token));
    assert.deepEqual((await c.get('/api/me')).json().permissions, ['view']);
    const denied = [
      [`/dicomweb/studies/${ct.study}`, {}], [series(ct), {}], [inst(ct), {}], [inst(ct), { Accept: 'application/dicom' }],
      [`${inst(ct)}/frames/1`, {}], [`${inst(ct)}/frames/1`, { Accept: 'application/octet-stream' }], [bulkPath, {}],
    ];
    for (const [p, h] of denied) {
      const j = assertJsonError(await c.get(p, h), 403, `GET ${p} (view only)`);
      assert.match(j.message, /viewing only/, `${p}: message`);
    }
    const allowed = [
      ['/dicomweb/studies', /json/], [`${series(ct)}/instances`, /json/], [`${inst(ct)}/metadata`, /json/],
      [`${inst(ct)}/rendered`, /^image\/jpeg/], [`${inst(ct)}/frames/1/rendered`, /^image\/jpeg/],
      [`${inst(ct)}/thumbnail`, /^image\//], [`${series(ct)}/thumbnail`, /^image\//],
      [`${inst(ct)}/frames/1/tiles`, /json/], [`${inst(ct)}/frames/1/tiles/default/90/0/0/0.jpg`, /^image\/jpeg/],
      [`${inst(ct)}/frames/1/tiles/default/lossless/1/0/0.png`, /^image\/png/],
      [`/iiif/3/${ct.sop}:1:default/info.json`, /json/], [`/iiif/3/${ct.sop}:1:default/full/max/0/default.png`, /^image\/png/],
      [`${series(ct)}/volume`, /json/], [`${series(ct)}/mpr/rendered?plane=coronal`, /^image\//],
    ];
    for (const [p, type] of allowed) {
      const r = await c.get(p);
      assert.equal(r.status, 200, `GET ${p} (view only): ${r.status} ${r.text().slice(0, 200)}`);
      assert.match(r.headers['content-type'] || '', type, `${p}: content type`);
    }
    assert.ok(isJpeg((await c.get(`${inst(ct)}/rendered`)).body));
  });

  test('a download share: DICOM retrieve, frames and bulkdata too', async () => {
    const s = await createShare({ study: ct.study, permissions: ['view', 'download'] });
    const c = as(await openOk(s.token));
    const one = await c.get(inst(ct), { Accept: 'application/dicom' });
    assert.equal(one.status, 200, one.text().slice(0, 200));
    assert.ok(one.body.equals(fs.readFileSync(d.ct[60])), 'the stored bytes');
    assert.equal((await c.get(`${inst(ct)}/frames/1`, { Accept: 'application/octet-stream' })).status, 200);
    const b = await c.get(bulkPath);
    assert.equal(b.status, 200, b.text().slice(0, 200));
    assert.ok(b.body.length >= 512 * 512 * 2, `bulkdata of ${b.body.length} bytes`);
    assert.ok(isPng((await c.get(`${inst(ct)}/rendered`, { Accept: 'image/png' })).body));
  });

  test('an expired link: refused at open and for its sessions (410 "link expired")', async () => {
    const t0 = Date.now();
    const s = await createShare({ study: cr.study, expires_in_hours: 0.0003 }); // ~1.1 s
    assert.ok(Date.parse(s.expires) <= t0 + 5000, `expires soon: ${s.expires}`);
    const { r: first0, cookie } = await openShare(srv, s.token);
    const early = Date.now() - t0 < 700; // the open surely happened before the expiry
    if (early) assert.equal(first0.status, 200, `open right after creation: ${first0.status} ${first0.text()}`);
    // past the announced expiry (which may be rounded to whole seconds)
    await sleep(Math.max(0, Math.max(t0 + 1500, Date.parse(s.expires) + 1100) - Date.now()));
    const { r } = await openShare(srv, s.token);
    const j = assertJsonError(r, 410, 'open of an expired link');
    assert.match(j.message, /link expired/);
    assert.equal((await admin.get(`/api/shares?study=${cr.study}`)).json().find((x) => x.id === s.id)?.state, 'expired');
    if (cookie) {
      const c = as(cookie);
      for (const p of [`/dicomweb/studies/${cr.study}/metadata`, '/dicomweb/studies', '/api/me']) {
        const jj = assertJsonError(await c.get(p), 410, `GET ${p} with the session of an expired link`);
        assert.match(jj.message, /link expired/);
        assert.equal(jj.error, 'Gone');
      }
    }
  });

  test('a revoked link: the next request of its session is 410 "link revoked", and it cannot be opened again', async () => {
    const s = await createShare({ study: us.study });
    audit.shareIds.revoked = s.id;
    const c = as(await openOk(s.token));
    assert.equal((await c.get(`${inst(us)}/metadata`)).status, 200, 'before the revocation');
    const del = await admin.request(`/api/shares/${s.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204, `DELETE /api/shares/${s.id}: ${del.status} ${del.text()}`);
    for (const p of [`${inst(us)}/metadata`, `${inst(us)}/rendered`, '/dicomweb/studies', '/api/me']) {
      const j = assertJsonError(await c.get(p), 410, `GET ${p} after the revocation`);
      assert.deepEqual(j, { status: 410, error: 'Gone', message: 'link revoked' });
    }
    const { r } = await openShare(srv, s.token);
    assert.match(assertJsonError(r, 410, 'open of a revoked link').message, /link revoked/);
    assert.equal((await admin.get(`/api/shares?study=${us.study}`)).json().find((x) => x.id === s.id)?.state, 'revoked');
    assertJsonError(await admin.request('/api/shares/does-not-exist', { method: 'DELETE' }), 404, 'DELETE of an unknown link');
  });

  test('max_opens: the link is used up after that many opens (410 "link used up")', async () => {
    const s = await createShare({ study: us.study, max_opens: 2 });
    assert.equal(s.max_opens, 2);
    await openOk(s.token);
    await openOk(s.token);
    const { r } = await openShare(srv, s.token);
    assert.match(assertJsonError(r, 410, 'third open of a 2-open link').message, /link used up/);
    const row = (await admin.get(`/api/shares?study=${us.study}`)).json().find((x) => x.id === s.id);
    assert.equal(row.opens, 2);
    assert.equal(row.state, 'used up');
  });

  test('PIN: required, wrong codes count down, lockout (423) after 5 even with the right code', async () => {
    const good = await createShare({ study: cr.study, pin: '482193' });
    assert.equal(good.pin, true);
    // control: a wrong code, then the right one
    let { r } = await openShare(srv, good.token, { pin: '000000' });
    assert.equal(r.status, 401);
    await openOk(good.token, { pin: '482193' });

    const s = await createShare({ study: cr.study, pin: '7391' });
    audit.shareIds.pin = s.id;
    ({ r } = await openShare(srv, s.token));
    let j = assertJsonError(r, 401, 'open without the PIN');
    assert.equal(j.pin_required, true);
    assert.match(j.message, /access code required/);
    assert.equal(sessionCookie(r), null, 'no session');
    for (let i = 1; i <= 4; i++) {
      ({ r } = await openShare(srv, s.token, { pin: String(1000 + i) }));
      j = assertJsonError(r, 401, `wrong PIN #${i}`);
      assert.equal(j.pin_required, true);
      assert.match(j.message, new RegExp(`wrong access code; ${5 - i} attempts? left`), `attempt ${i}: ${j.message}`);
      assert.equal(sessionCookie(r), null, 'no session');
    }
    ({ r } = await openShare(srv, s.token, { pin: '1005' }));
    assert.ok([401, 423].includes(r.status), `wrong PIN #5: ${r.status} ${r.text()}`);
    assert.equal(sessionCookie(r), null, 'no session');
    ({ r } = await openShare(srv, s.token, { pin: '7391' }));
    j = assertJsonError(r, 423, 'the right PIN after 5 wrong ones');
    assert.match(j.message, /locked/);
    assert.equal(sessionCookie(r), null, 'no session from a locked link');
    ({ r } = await openShare(srv, s.token, { pin: '7391' }));
    assertJsonError(r, 423, 'still locked');
    assert.equal((await admin.get(`/api/shares?study=${cr.study}`)).json().find((x) => x.id === s.id)?.state, 'locked');
  });

  test('session cookie flags over plain HTTP; /api/me; logout invalidates the session on the server', async () => {
    const { r, cookie } = await login(srv);
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json(), { kind: 'user', username: 'admin', role: 'admin' });
    const a = cookieAttrs(r);
    assert.ok(a.has('HttpOnly'), `HttpOnly: ${a.raw}`);
    assert.equal(a.val('SameSite'), 'Strict', `SameSite=Strict: ${a.raw}`);
    assert.equal(a.val('Path'), '/', `Path=/: ${a.raw}`);
    assert.ok(!a.has('Secure'), `no Secure over plain HTTP: ${a.raw}`);
    assert.ok(cookie.length > 'tsr_session='.length + 20, 'a long session id');
    secrets.push(['user session cookie', cookie.slice('tsr_session='.length)]);
    const c = as(cookie);
    const me = await c.get('/api/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.json(), { kind: 'user', username: 'admin', role: 'admin' });
    assert.equal((await c.get('/dicomweb/studies')).status, 200);
    const out = await c.request('/api/logout', { method: 'POST' });
    assert.equal(out.status, 204, `logout: ${out.status} ${out.text()}`);
    const cleared = cookieAttrs(out);
    assert.ok(/^\s*tsr_session=;/.test(cleared.raw) || cleared.val('Max-Age') === '0', `the cookie is cleared: ${cleared.raw}`);
    assert.equal(cleared.val('Max-Age'), '0', `Max-Age=0: ${cleared.raw}`);
    // replaying the old cookie
    assertUnauthorized(await c.get('/api/me'), 'the old session after logout: /api/me');
    assertUnauthorized(await c.get('/dicomweb/studies'), 'the old session after logout: QIDO');
  });

  test('login: the same 401 for a wrong password and an unknown user; 429 + Retry-After after 5 failures, even with the right password', async () => {
    const password = await createUser('locky', 'reader');
    const ok = await login(srv, { username: 'locky', password });
    assert.equal(ok.r.status, 200, `control: locky logs in: ${ok.r.text()}`);
    assert.deepEqual(ok.r.json(), { kind: 'user', username: 'locky', role: 'reader' });
    const wrong = await login(srv, { username: 'locky', password: 'not-the-password' });
    const nobody = await login(srv, { username: 'nobody-here', password: 'not-the-password' });
    assertJsonError(wrong.r, 401, 'wrong password');
    assertJsonError(nobody.r, 401, 'unknown user');
    assert.equal(wrong.r.text(), nobody.r.text(), 'the same answer for a wrong password and an unknown user');
    // wrong.r was failure 1
    for (let i = 2; i <= 4; i++) assert.equal((await login(srv, { username: 'locky', password: `wrong-${i}` })).r.status, 401, `failure ${i}`);
    const fifth = await login(srv, { username: 'locky', password: 'wrong-5' });
    assert.ok([401, 429].includes(fifth.r.status), `failure 5: ${fifth.r.status}`);
    const sixth = await login(srv, { username: 'locky', password: 'wrong-6' });
    assertJsonError(sixth.r, 429, 'after 5 failures');
    const ra = sixth.r.headers['retry-after'];
    assert.match(String(ra), /^\d+$/, `Retry-After in seconds: ${ra}`);
    assert.ok(Number(ra) >= 1, `Retry-After ${ra}`);
    const right = await login(srv, { username: 'locky', password });
    assertJsonError(right.r, 429, 'the right password while locked');
    assert.equal(right.cookie, null, 'no session while locked');
    // other users are not locked
    assert.equal((await login(srv)).r.status, 200, 'admin still logs in');
  });

  test('CSRF: a cookie-authenticated POST/DELETE with a foreign Origin is 403 and has no effect', async () => {
    const { cookie } = await login(srv);
    const c = as(cookie);
    const small = syntheticInstance({ study: '2.25.7004', series: '2.25.7004.1', sop: '2.25.7004.1.1' });
    const mp = multipartBody([small]);
    const share = await createShare({ study: us.study });
    const sharesBefore = (await admin.get(`/api/shares?study=${ct.study}`)).json().length;
    for (const origin of [EVIL, 'null', `http://localhost:${srv.port}`, `${srv.origin}.evil.example`]) {
      const h = { Origin: origin };
      assertJsonError(await c.request('/api/users', { method: 'POST', headers: { ...h, 'Content-Type': 'application/json' }, body: json({ username: 'csrf', password: 'csrf-pass-123', role: 'admin' }) }), 403, `POST /api/users from ${origin}`);
      assertJsonError(await c.request('/api/shares', { method: 'POST', headers: { ...h, 'Content-Type': 'application/json' }, body: json({ study: ct.study }) }), 403, `POST /api/shares from ${origin}`);
      assertJsonError(await c.request('/dicomweb/studies', { method: 'POST', headers: { ...h, 'Content-Type': mp.contentType }, body: Buffer.concat(mp.body) }), 403, `STOW from ${origin}`);
      assertJsonError(await c.request(`/api/shares/${share.id}`, { method: 'DELETE', headers: h }), 403, `DELETE /api/shares from ${origin}`);
      assertJsonError(await c.request('/api/tokens', { method: 'POST', headers: { ...h, 'Content-Type': 'application/json' }, body: json({ name: 'csrf', scope: 'admin' }) }), 403, `POST /api/tokens from ${origin}`);
    }
    assert.ok(!(await admin.get('/api/users')).json().some((u) => u.username === 'csrf'), 'no user csrf');
    assert.ok(!(await admin.get('/api/tokens')).json().some((t) => t.name === 'csrf'), 'no token csrf');
    assert.deepEqual(await admin.json('/dicomweb/studies?StudyInstanceUID=2.25.7004'), [], 'nothing stored');
    assert.equal((await admin.get(`/api/shares?study=${us.study}`)).json().find((x) => x.id === share.id)?.state, 'active', 'the link is not revoked');
    assert.equal((await admin.get(`/api/shares?study=${ct.study}`)).json().length, sharesBefore, 'no link was created');
    // the same requests from the server's own origin are accepted
    const own = { Origin: srv.origin };
    const sh = await c.request('/api/shares', { method: 'POST', headers: { ...own, 'Content-Type': 'application/json' }, body: json({ study: ct.study }) });
    assert.equal(sh.status, 201, `POST /api/shares from the own origin: ${sh.status} ${sh.text()}`);
    secrets.push(['share token', sh.json().token]);
    const st = await c.request('/dicomweb/studies', { method: 'POST', headers: { ...own, 'Content-Type': mp.contentType }, body: Buffer.concat(mp.body) });
    assert.equal(st.status, 200, `STOW from the own origin: ${st.status} ${st.text().slice(0, 200)}`);
    const del = await c.request(`/api/shares/${share.id}`, { method: 'DELETE', headers: own });
    assert.equal(del.status, 204, `DELETE from the own origin: ${del.status}`);
  });

  test('role reader: reads everything, creates shares; no STOW, no users, tokens or audit (403)', async () => {
    const password = await createUser('rita', 'reader');
    const { r, cookie } = await login(srv, { username: 'rita', password });
    assert.equal(r.status, 200, r.text());
    secrets.push(['user session cookie', cookie.slice('tsr_session='.length)]);
    const c = as(cookie);
    assert.equal((await c.json('/dicomweb/studies')).length >= 3, true, 'all studies');
    assert.equal((await c.get(inst(ct), { Accept: 'application/dicom' })).status, 200, 'DICOM retrieve');
    assert.equal((await c.get(`${inst(ct)}/rendered`)).status, 200);
    const small = syntheticInstance({ study: '2.25.7005', series: '2.25.7005.1', sop: '2.25.7005.1.1' });
    const st = await c.stow([small]);
    assertJsonError(st, 403, 'STOW as reader');
    assertJsonError(await c.request('/api/users', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ username: 'rita2', password: 'rita2-pass-123', role: 'admin' }) }), 403, 'POST /api/users as reader');
    assertJsonError(await c.request('/api/users/admin', { method: 'DELETE' }), 403, 'DELETE /api/users/admin as reader');
    for (const p of ['/api/users', '/api/tokens', '/api/audit']) assertJsonError(await c.get(p), 403, `GET ${p} as reader`);
    assertJsonError(await c.request('/api/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ name: 'r', scope: 'read' }) }), 403, 'POST /api/tokens as reader');
    assert.deepEqual(await admin.json('/dicomweb/studies?StudyInstanceUID=2.25.7005'), [], 'nothing stored');
    assert.ok(!(await admin.get('/api/users')).json().some((u) => u.username === 'rita2'));
    const s = await createShare({ study: cr.study }, { via: c });
    assert.match(String((await c.get(`/api/shares?study=${cr.study}`)).json().find((x) => x.id === s.id)?.created_by), /\brita\b/, 'created_by names rita');
    assert.equal((await c.request(`/api/shares/${s.id}`, { method: 'DELETE' })).status, 204, 'a reader revokes a link');
  });

  test('API tokens: /api/me; scope read cannot STOW or share (403); write can STOW; a revoked token is 401', async () => {
    const rt = await createToken('reader-token', 'read');
    const wt = await createToken('writer-token', 'write');
    const rc = client(srv, { auth: rt.token });
    const wc = client(srv, { auth: wt.token });
    const me = await rc.get('/api/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.json(), { kind: 'token', id: rt.id, name: 'reader-token', scope: 'read' });
    assert.equal((await rc.json('/dicomweb/studies')).length >= 3, true);
    assert.equal((await rc.get(`${inst(ct)}/frames/1/tiles/default/90/0/0/0.jpg`)).status, 200);
    const small = syntheticInstance({ study: '2.25.7006', series: '2.25.7006.1', sop: '2.25.7006.1.1' });
    assertJsonError(await rc.stow([small]), 403, 'STOW with a read token');
    assertJsonError(await rc.request('/api/shares', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ study: ct.study }) }), 403, 'POST /api/shares with a read token');
    for (const p of ['/api/tokens', '/api/users', '/api/audit']) assertJsonError(await rc.get(p), 403, `GET ${p} with a read token`);
    assert.deepEqual(await admin.json('/dicomweb/studies?StudyInstanceUID=2.25.7006'), [], 'nothing stored');
    const ws = await wc.stow([small]);
    assert.equal(ws.status, 200, `STOW with a write token: ${ws.status} ${ws.text().slice(0, 200)}`);
    await createShare({ study: ct.study }, { via: wc });
    assertJsonError(await wc.request('/api/users', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ username: 'w', password: 'w-pass-12345', role: 'reader' }) }), 403, 'POST /api/users with a write token');
    assertJsonError(await wc.get('/api/tokens'), 403, 'GET /api/tokens with a write token');
    // the token list: no secrets; revocation
    const list = await admin.get('/api/tokens');
    assert.equal(list.status, 200);
    assert.ok(!list.text().includes(rt.token) && !list.text().includes(wt.token), 'GET /api/tokens shows no token');
    const row = list.json().find((t) => t.id === rt.id);
    assert.ok(row && row.name === 'reader-token' && row.scope === 'read' && !row.revoked, JSON.stringify(row));
    const del = await admin.request(`/api/tokens/${rt.id}`, { method: 'DELETE' });
    assert.equal(del.status, 204, `DELETE /api/tokens/${rt.id}: ${del.status}`);
    assertUnauthorized(await rc.get('/dicomweb/studies'), 'a revoked token');
    assertUnauthorized(await rc.get('/api/me'), 'a revoked token: /api/me');
    assert.ok((await admin.get('/api/tokens')).json().find((t) => t.id === rt.id)?.revoked, 'listed as revoked');
    assert.equal((await wc.get('/dicomweb/studies')).status, 200, 'the other token still works');
    const rt2 = client(srv, { auth: (await createToken('reader-token-2', 'read')).token });
    const ls = await rt2.get(`/api/shares?study=${ct.study}`);
    assert.equal(ls.status, 200, `a read token lists shares: ${ls.status} ${ls.text().slice(0, 200)}`);
  });

  test('security headers on DICOMweb, static, error and API responses', async () => {
    headerChecks(await admin.get('/dicomweb/studies'), 'QIDO');
    headerChecks(await admin.get(`${inst(ct)}/rendered`), 'rendered');
    headerChecks(await anon.get('/index.html'), 'static /index.html');
    headerChecks(await anon.get('/js/app.js'), 'static /js/app.js');
    headerChecks(await anon.get('/dicomweb/studies'), '401');
    headerChecks(await admin.get(`/dicomweb/studies/${fakeUid()}`), '404');
    headerChecks(await anon.get('/no-such-file.html'), 'static 404');
    headerChecks((await login(srv)).r, 'POST /api/login');
    assert.equal((await anon.get('/index.html')).headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
  });

  test('path traversal on /dicomweb, /iiif and static paths never returns files outside the web root', async () => {
    const dicomweb = [
      '/dicomweb/../secret.txt', '/dicomweb/%2e%2e/%2e%2e/secret.txt', '/dicomweb/..%2f..%2fsecret.txt',
      '/dicomweb/studies/..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd', '/dicomweb/studies/../../../../../../etc/passwd',
      '/dicomweb/studies/%2e%2e%2f%2e%2e%2findex.sqlite', '/dicomweb/studies/%252e%252e%252f%252e%252e%252findex.sqlite',
      `${series(ct)}/instances/..%2F..%2F..%2F..%2Findex.sqlite`, `${series(ct)}/instances/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2findex.sqlite/metadata`,
      `${inst(ct)}/bulkdata/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd`, `${inst(ct)}/bulkdata/../../../../../../../../etc/passwd`,
      `${inst(ct)}/bulkdata/%252e%252e%252f%252e%252e%252fetc%252fpasswd`, `${inst(ct)}/frames/1/tiles/..%2f..%2f..%2f..%2f..%2f..%2fsecret.txt`,
      `/dicomweb/studies/${ct.study}/..%2f..%2f..%2fobjects`, '/dicomweb/studies/%2fetc%2fpasswd', '/dicomweb//etc/passwd',
    ];
    const iiif = [
      '/iiif/3/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd/info.json', '/iiif/3/../../../../../etc/passwd',
      '/iiif/3/%2e%2e%2f%2e%2e%2findex.sqlite/info.json', '/iiif/3/%252e%252e%252findex.sqlite/info.json',
      '/iiif/%2e%2e/%2e%2e/secret.txt', `/iiif/3/${ct.sop}:1:default/..%2f..%2f..%2fsecret.txt`,
      `/iiif/3/${ct.sop}:1:..%2f..%2fsecret.txt/info.json`, '/iiif/3/%2fetc%2fpasswd/full/max/0/default.jpg',
    ];
    const statics = [
      '/../secret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt', '/..%2fsecret.txt', '/.%2e/secret.txt',
      '/%252e%252e%252fsecret.txt', '/%252e%252e/secret.txt', '/js/../../secret.txt', '/js/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/js/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/js/..%5c..%5csecret.txt', '/%c0%ae%c0%ae/secret.txt',
      '/../data/index.sqlite', '/%2e%2e/data/index.sqlite', '/..%2fdata%2findex.sqlite',
      '/../../../../../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd', '/%2fetc%2fpasswd', '//etc/passwd', '/%252e%252e/%252e%252e/%252e%252e/%252e%252e/%252e%252e/%252e%252e/etc/passwd',
    ];
    for (const p of [...dicomweb, ...iiif, ...statics]) {
      for (const [who, c] of [['admin', admin], ['anonymous', anon]]) {
        let r;
        try {
          r = await c.get(p);
        } catch (e) {
          continue; // the server closed the connection: nothing was served
        }
        assertNoLeak(r, `${who} GET ${p}`);
        assert.ok(r.status >= 400 && r.status < 500, `${who} GET ${p}: status ${r.status} ${r.text().slice(0, 120)}`);
      }
    }
    // a traversal inside the web root may resolve, but only to web root files
    const inside = await anon.get('/js/../index.html');
    assert.ok(inside.status === 200 ? inside.text() === L.files['/index.html'] : inside.status >= 400, `/js/../index.html: ${inside.status}`);
    assert.equal((await admin.get(`${inst(ct)}/metadata`)).status, 200, 'the server still works');
  });

  test('secrets never appear in clear in the server output or the audit; the audit records opens, refusals and admin actions', async () => {
    // a few more refused attempts that carry secrets
    const t = await createToken('log-probe', 'read');
    await admin.request(`/api/tokens/${t.id}`, { method: 'DELETE' });
    await client(srv, { auth: t.token }).get('/dicomweb/studies'); // revoked: 401
    const s = await createShare({ study: cr.study, pin: '5555' });
    await openShare(srv, s.token, { pin: '1234' }); // wrong PIN
    await login(srv, { username: 'admin', password: 'wrong-password-for-audit' });

    const jl = await admin.get('/api/audit?format=jsonl');
    // when the JSON lines fail, the other checks run on the JSON view (and the failure is
    // reported at the end)
    const jsonlOk = jl.status === 200;
    const all = jsonlOk ? null : await admin.get('/api/audit?limit=100000');
    if (jsonlOk) assert.match(jl.headers['content-type'] || '', /^application\/x-ndjson/);
    const text = jsonlOk ? jl.text() : all.text();
    const entries = jsonlOk ? text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : all.json().reverse();
    assert.ok(entries.length >= 20, `audit entries: ${entries.length}`);
    for (const e of entries) {
      for (const k of ['seq', 'time', 'actor', 'client', 'action', 'target', 'status']) assert.ok(k in e, `audit entry has ${k}: ${JSON.stringify(e)}`);
    }
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i].seq > entries[i - 1].seq, 'jsonl: oldest first');

    const out = srv.stdout() + srv.stderr();
    const latest = await admin.get('/api/audit?limit=500');
    const latestText = latest.text();
    for (const [kind, v] of secrets) {
      assert.ok(v && v.length >= 16, `secret ${kind} recorded`);
      assert.ok(!out.includes(v), `a ${kind} appears in the server's stdout/stderr`);
      assert.ok(!text.includes(v), `a ${kind} appears in GET /api/audit?format=jsonl`);
      assert.ok(!latestText.includes(v), `a ${kind} appears in GET /api/audit`);
    }

    const str = (e) => JSON.stringify(e);
    const isLocal = (e) => /^(::ffff:)?127\.0\.0\.1$/.test(String(e.client));
    const about = (id) => entries.filter((e) => mentions(e, id));
    // opens and refused opens of share links, with the client address
    const opened = about(audit.shareIds.scope).filter((e) => e.status === 200);
    assert.ok(opened.length >= 1, `an entry for opening share ${audit.shareIds.scope}`);
    assert.ok(opened.every(isLocal), `client address: ${str(opened[0])}`);
    const refused = about(audit.shareIds.pin).filter((e) => [401, 423].includes(e.status));
    assert.ok(refused.length >= 6, `refused opens of the PIN link: ${refused.length}`);
    assert.ok(refused.every(isLocal));
    assert.ok(about(s.id).some((e) => e.status === 401), 'the last wrong PIN is audited');
    // each request of a share session, with method and path
    assert.ok(about(audit.shareIds.view).some((e) => /GET/.test(str(e)) && str(e).includes('/dicomweb/') && e.status === 403), 'a refused request of the view-only session (method, path, 403)');
    assert.ok(about(audit.shareIds.view).some((e) => str(e).includes('/rendered') && e.status === 200), 'a request of the view-only session');
    assert.ok(about(audit.shareIds.revoked).some((e) => e.status === 410), 'the requests after the revocation');
    assert.ok(about(audit.shareIds.revoked).some((e) => /revok|delete/i.test(`${e.action}`) || /DELETE/.test(str(e))), 'the revocation');
    // administrative actions
    for (const u of audit.users) assert.ok(about(u).length >= 1, `the creation of user ${u}`);
    for (const id of audit.tokenIds) assert.ok(about(id).length >= 1, `token ${id} created/revoked`);
    const logins = entries.filter((e) => /login/i.test(e.action));
    assert.ok(logins.some((e) => e.status === 200 && isLocal(e)), 'a successful login');
    assert.ok(logins.some((e) => e.status === 401 || e.status === 429), 'a failed login');
    assert.ok(entries.some((e) => /logout/i.test(e.action)), 'a logout');
    assert.ok(entries.some((e) => /stow|store/i.test(e.action) || (/POST/.test(str(e)) && str(e).includes('/dicomweb/studies'))), 'a STOW');
    // the newest-first JSON view
    const five = await admin.get('/api/audit?limit=5');
    assert.equal(five.status, 200);
    const fj = five.json();
    assert.equal(fj.length, 5);
    for (let i = 1; i < fj.length; i++) assert.ok(fj[i].seq < fj[i - 1].seq, '?limit: newest first');
    assert.equal(jl.status, 200, `GET /api/audit?format=jsonl: ${jl.status} ${jl.text().slice(0, 300)}`);
  });
});

describe('connection limits: oversized request headers, a slow client', () => {
  const srv = useServer({ args: ['--request-timeout-ms', '1000'] });
  const auth = () => `Authorization: Bearer ${srv.token}\r\n`;
  const req = (extra = '') => Buffer.from(`GET /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n${auth()}${extra}\r\n`, 'latin1');

  test('control: a normal raw request is answered 200', async () => {
    const r = await rawExchange(srv.port, [Buffer.from(`GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`)]);
    assert.equal(statusOf(r.data), 200, r.data.toString('latin1', 0, 300));
  });

  test('request headers over 16 KiB: 4xx and the connection is closed', async () => {
    const cases = [
      ['one 20 KiB header', `X-Big: ${'a'.repeat(20 * 1024)}\r\n`],
      ['40 headers of 1 KiB', [...Array(40)].map((_, i) => `X-H${i}: ${'b'.repeat(1024)}\r\n`).join('')],
      ['a 64 KiB cookie', `Cookie: tsr_session=${'c'.repeat(64 * 1024)}\r\n`],
    ];
    for (const [what, extra] of cases) {
      const r = await rawExchange(srv.port, [req(extra)], { timeoutMs: 8000 });
      const st = statusOf(r.data);
      assert.ok(st !== null, `${what}: an HTTP answer (got ${r.data.length} bytes, ${r.error})`);
      assert.ok(st >= 400 && st < 500, `${what}: status ${st}`);
      assert.ok([400, 413, 431].includes(st), `${what}: 431 or 400 (got ${st})`);
      assert.ok(r.closed, `${what}: the connection is closed`);
    }
    // just under the limit still works
    const okr = await rawExchange(srv.port, [req(`X-Fine: ${'d'.repeat(8 * 1024)}\r\nConnection: close\r\n`)]);
    assert.equal(statusOf(okr.data), 200, `an 8 KiB header: ${okr.data.toString('latin1', 0, 200)}`);
  });

  test('a slow client (half a request line, then nothing) is cut off within --request-timeout-ms while others are served', async () => {
    const slow = [...Array(6)].map(() => rawExchange(srv.port, [Buffer.from('GET /dicomweb/stud')], { timeoutMs: 6000 }));
    const slowHeaders = rawExchange(srv.port, [Buffer.from(`GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n${auth()}X-Slow: aaa`)], { timeoutMs: 6000 });
    await sleep(200);
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await request('/dicomweb/studies', { origin: srv.origin, timeoutMs: 5000 });
      assert.equal(r.status, 200, 'another client is served meanwhile');
    }
    const servedMs = Date.now() - t0;
    const results = await Promise.all([...slow, slowHeaders]);
    for (const r of results) {
      assert.ok(r.closed, `the slow connection was not closed within 6 s (${r.ms} ms)`);
      assert.ok(r.ms <= 1000 + 1500, `closed after ${r.ms} ms (--request-timeout-ms 1000)`);
      const st = statusOf(r.data);
      assert.ok(st === null || st === 408 || st === 400, `a slow client gets nothing or 408/400: ${r.data.toString('latin1', 0, 100)}`);
    }
    assert.ok(servedMs < Math.min(...results.map((r) => r.ms)), `other clients were served (${servedMs} ms) before the slow ones were cut off`);
    assert.equal((await request('/dicomweb/studies', { origin: srv.origin })).status, 200, 'still serving');
  });

  // Slowloris: every byte arrives in time, yet the request never ends. The timeout is on the
  // whole request head, not on each read, so trickling does not keep the connection.
  test('a client that trickles a header line every 300 ms is cut off within --request-timeout-ms plus one line', async () => {
    const trickle = () => new Promise((resolve) => {
      const t0 = Date.now();
      const sock = net.connect(srv.port, '127.0.0.1');
      const got = [];
      let lines = 0;
      let tick = null;
      const finish = (closed) => {
        clearInterval(tick);
        clearTimeout(timer);
        sock.destroy();
        resolve({ closed, ms: Date.now() - t0, lines, data: Buffer.concat(got) });
      };
      const timer = setTimeout(() => finish(false), 8000);
      sock.on('data', (c) => got.push(c));
      sock.on('error', () => {});
      sock.on('close', () => finish(true));
      sock.on('connect', () => {
        sock.write(`GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\n${auth()}`);
        tick = setInterval(() => { if (!sock.destroyed) sock.write(`X-Trickle-${lines++}: a\r\n`); }, 300);
      });
    });
    const slow = [...Array(4)].map(trickle);
    await sleep(100);
    for (let i = 0; i < 5; i++) {
      assert.equal((await request('/dicomweb/studies', { origin: srv.origin, timeoutMs: 5000 })).status, 200, 'another client is served meanwhile');
    }
    for (const r of await Promise.all(slow)) {
      assert.ok(r.closed, `a trickling connection was still open after 8 s (${r.lines} lines sent)`);
      assert.ok(r.lines >= 2, `it did trickle (${r.lines} lines) before being cut off`);
      assert.ok(r.ms <= 1000 + 300 + 1200, `closed after ${r.ms} ms (--request-timeout-ms 1000, a line every 300 ms)`);
      const st = statusOf(r.data);
      assert.ok(st === null || st === 408 || st === 400, `nothing or 408/400: ${r.data.toString('latin1', 0, 100)}`);
    }
  });
});

describe('TLS (--tls-cert)', () => {
  let certDir;
  const srv = useServer(async () => {
    certDir = tempDir('tessera-tls-');
    const key = path.join(certDir, 'k.pem');
    const cert = path.join(certDir, 'c.pem');
    await new Promise((resolve, reject) => execFile('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
      '-days', '1', '-keyout', key, '-out', cert], { timeout: 60000 }, (e, so, se) => (e ? reject(new Error(`openssl: ${e.message} ${se}`)) : resolve())));
    const pem = path.join(certDir, 'server.pem');
    fs.writeFileSync(pem, Buffer.concat([fs.readFileSync(key), fs.readFileSync(cert)]));
    const dataDir = tempDir('tessera-tls-data-');
    const d = await demo();
    const r = await runTessera(['import', '--data', dataDir, d.us[0]]);
    assert.equal(r.code, 0, r.stderr);
    return { dataDir, args: ['--tls-cert', pem] };
  });

  test('the server listens on https://', () => {
    assert.equal(srv.scheme, 'https');
    assert.match(srv.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('responses carry Strict-Transport-Security; the security headers too', async () => {
    const c = client(srv);
    for (const [p, r] of [['/dicomweb/studies', await c.get('/dicomweb/studies')], ['401', await client(srv, { auth: false }).get('/dicomweb/studies')],
      ['/api/me', await c.get('/api/me')]]) {
      assert.match(String(r.headers['strict-transport-security'] || ''), /max-age=31536000/, `${p}: HSTS (${r.status})`);
      headerChecks(r, `https ${p}`);
    }
    assert.equal((await c.get('/dicomweb/studies')).status, 200);
  });

  test('the login and share cookies are Secure (and HttpOnly, SameSite=Strict)', async () => {
    const { r, cookie } = await login(srv);
    assert.equal(r.status, 200, r.text());
    const a = cookieAttrs(r);
    assert.ok(a.has('Secure'), `Secure: ${a.raw}`);
    assert.ok(a.has('HttpOnly'), `HttpOnly: ${a.raw}`);
    assert.equal(a.val('SameSite'), 'Strict');
    assert.equal((await client(srv, { headers: { Cookie: cookie } }).get('/api/me')).status, 200, 'the session works over https');
    const us = readUids(fs.readFileSync((await demo()).us[0]));
    const sr = await client(srv).request('/api/shares', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json({ study: us.study }) });
    assert.equal(sr.status, 201, sr.text());
    assert.ok(sr.json().url.startsWith(`${srv.origin}/share.html#`), `an https share URL: ${sr.json().url}`);
    const o = await openShare(srv, sr.json().token);
    assert.equal(o.r.status, 200);
    assert.ok(cookieAttrs(o.r).has('Secure'), `share cookie Secure: ${cookieAttrs(o.r).raw}`);
  });

  test('plain HTTP on the TLS port gets no data', async () => {
    const r = await rawExchange(srv.port, [Buffer.from(`GET /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\n\r\n`)], { timeoutMs: 5000 });
    assert.ok(!r.data.toString('latin1').includes('00080020') && !r.data.toString('latin1').includes('0020000D'), 'no DICOM JSON over plain HTTP');
  });
});

describe('behind a TLS-terminating proxy (--public-url https://...)', () => {
  const srv = useServer(async () => ({ args: ['--public-url', 'https://pacs.example.org/dicomweb'] }));

  test('the session cookie is Secure although this hop is plain HTTP', async () => {
    const { r } = await login(srv);
    assert.equal(r.status, 200, r.text());
    const a = cookieAttrs(r);
    assert.ok(a.has('Secure'), `Secure: ${a.raw}`);
    assert.ok(a.has('HttpOnly'), `HttpOnly: ${a.raw}`);
  });
});
