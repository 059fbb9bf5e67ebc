// harness.mjs: starts and stops `tessera serve` for the HTTP integration tests, and the HTTP
// helpers they share (raw requests, STOW-RS bodies, multipart parsing, DICOM JSON access).
//
// Access control: every server started here gets its own random admin token in the environment
// variable TESSERA_ADMIN_TOKEN (server.token), and request()/client()/stow() send
// `Authorization: Bearer <token>` to that server by default. To send no credential or another
// one: the option {auth: false}, {auth: '<bearer token>'}, or an explicit Authorization or Cookie
// header (either one turns the default off). server.adminPassword is the password of the user
// "admin" that the server prints at the first start of a data directory.
//
// Environment:
//   TESSERA_BIN    the tessera executable (default ../../build/tessera from this folder)
//   TSR_DICOM_DIR  the shared DICOM corpus (default ../../../shared/dicom from this folder)
//   CI             when set, a missing corpus fails the tests that need it instead of skipping
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

export const TEST_DIR = path.dirname(fileURLToPath(import.meta.url));
export const TESSERA_BIN = path.resolve(process.env.TESSERA_BIN || path.join(TEST_DIR, '../../build/tessera'));
export const CORPUS_DIR = path.resolve(process.env.TSR_DICOM_DIR || path.join(TEST_DIR, '../../../shared/dicom'));
export const IN_CI = !!process.env.CI;

// ---------------------------------------------------------------- temp dirs

const tempDirs = [];
export function tempDir(prefix = 'tessera-http-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}
process.on('exit', () => {
  if (process.env.TSR_KEEP_TMP) return;
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Every file under dir (recursively), sorted.
export function listFiles(dir) {
  const out = [];
  const rec = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) rec(p);
      else if (e.isFile()) out.push(p);
    }
  };
  if (fs.existsSync(dir)) rec(dir);
  return out.sort();
}

// ---------------------------------------------------------------- corpus

export function corpusAvailable() {
  return fs.existsSync(path.join(CORPUS_DIR, 'MANIFEST.tsv'));
}
// Options for test()/describe() that need the corpus: skip when it is missing, except in CI,
// where the test runs and fails through requireCorpus().
export function corpusOpts() {
  return corpusAvailable() || IN_CI ? {} : { skip: `shared DICOM corpus not found at ${CORPUS_DIR}` };
}
export function requireCorpus() {
  assert.ok(corpusAvailable(), `shared DICOM corpus not found at ${CORPUS_DIR} (set TSR_DICOM_DIR); required when CI is set`);
}

// ---------------------------------------------------------------- the binary

export function requireBinary() {
  assert.ok(fs.existsSync(TESSERA_BIN), `tessera binary not found at ${TESSERA_BIN} (set TESSERA_BIN)`);
}

// Runs `tessera ARGS...`; resolves {code, stdout, stderr} (never rejects on a non-zero exit).
export function runTessera(args, { timeout = 120000 } = {}) {
  requireBinary();
  return new Promise((resolve, reject) => {
    execFile(TESSERA_BIN, args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

// The synthetic demo studies, written once per test process into a temp dir.
let demoPromise = null;
export function demo() {
  if (!demoPromise) {
    demoPromise = (async () => {
      const dir = tempDir('tessera-demo-');
      const r = await runTessera(['demo', dir]);
      assert.equal(r.code, 0, `tessera demo failed: ${r.stderr}`);
      const files = (sub) => listFiles(path.join(dir, sub)).filter((f) => f.endsWith('.dcm'));
      const d = { dir, ct: files('ct'), cr: files('cr'), us: files('us') };
      assert.equal(d.ct.length, 120, 'demo CT series has 120 files');
      assert.equal(d.cr.length, 1, 'demo CR has 1 file');
      assert.equal(d.us.length, 1, 'demo US has 1 file');
      return d;
    })();
  }
  return demoPromise;
}

// ---------------------------------------------------------------- the server

// http:// or, with --tls-cert, https://
export const LISTEN_RE = /listening on (https?):\/\/127\.0\.0\.1:(\d+)\/ +\(DICOMweb at (https?:\/\/127\.0\.0\.1:\d+\/dicomweb)\)/;
// `... password PASSWORD (shown once)`, also with more words inside the parentheses
export const ADMIN_PASSWORD_RE = /tessera: first start: user "admin" created with password (\S+) \(shown once\b/;

// A fresh random secret: 32 random bytes, base64url (43 characters).
export function randomToken() {
  return crypto.randomBytes(32).toString('base64url');
}

// origin -> the admin token of the harness-started server listening there (the default
// credential of request()).
const tokenOfOrigin = new Map();
// data dir -> the admin password printed at its first start (restarts print none).
const adminPasswordOfDir = new Map();

// Makes request() send `Authorization: Bearer <token>` to origin by default (servers started
// some other way than startServer, e.g. under prlimit). token null: forget the origin.
export function registerToken(origin, token) {
  if (token) tokenOfOrigin.set(origin, token);
  else tokenOfOrigin.delete(origin);
}

// The headers that carry a server's admin token, for clients other than request() (raw
// http.request, the dicomweb-client package, ...).
export function authHeaders(server) {
  const token = server?.token ?? tokenOfOrigin.get(server?.origin);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Environment for a `tessera serve` child process with the given admin token.
export function serverEnv(token, env = {}) {
  const e = { ...process.env, ...env };
  delete e.TESSERA_ADMIN_TOKEN;
  if (token) e.TESSERA_ADMIN_TOKEN = token;
  return e;
}

// Starts `tessera serve --data DATADIR --listen 127.0.0.1:0 ...extraArgs` with a random admin
// token (TESSERA_ADMIN_TOKEN; `token: null` starts it without one) and resolves once it prints
// its listening line. The returned object: {port, origin, base, scheme, dataDir, token,
// adminPassword, proc, stdout(), stderr(), stop(), kill()}. adminPassword is the password
// printed at the first start of dataDir (also remembered for later servers on the same
// dataDir), or null when this process never saw it.
export async function startServer({ dataDir = tempDir('tessera-data-'), args = [], timeoutMs = 30000, token = randomToken(), env = {} } = {}) {
  requireBinary();
  const proc = spawn(TESSERA_BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverEnv(token, env),
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s) => { err += s; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });
  const m = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`tessera serve did not print its listening line within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    proc.stdout.on('data', (s) => {
      out += s;
      const mm = LISTEN_RE.exec(out);
      if (mm) {
        clearTimeout(timer);
        resolve(mm);
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`tessera serve exited (code ${code}, signal ${signal}) before listening\nstdout: ${out}\nstderr: ${err}`));
    });
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const scheme = m[1];
  const port = Number(m[2]);
  const origin = `${scheme}://127.0.0.1:${port}`;
  registerToken(origin, token);
  exited.then(() => { if (tokenOfOrigin.get(origin) === token) tokenOfOrigin.delete(origin); });
  const dirKey = path.resolve(dataDir);
  const server = {
    port,
    scheme,
    origin,
    base: m[3],
    dataDir,
    token,
    // The first-start password: in stdout (before or after the listening line), else the one
    // an earlier server printed for this data dir.
    get adminPassword() {
      const pm = ADMIN_PASSWORD_RE.exec(out);
      if (pm) adminPasswordOfDir.set(dirKey, pm[1]);
      return adminPasswordOfDir.get(dirKey) ?? null;
    },
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    running: () => exitInfo === null,
    // SIGTERM and wait for a clean exit; returns {code, signal}.
    async stop({ timeoutMs: t = 20000 } = {}) {
      if (exitInfo) return exitInfo;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), t);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
    async kill() {
      if (exitInfo) return exitInfo;
      proc.kill('SIGKILL');
      return exited;
    },
  };
  return server;
}

// Registers before/after hooks for a server in the current suite. The returned object is filled
// in by before() (its fields are those of startServer's result). In after(), the server is
// stopped with SIGTERM and must exit 0 having printed "tessera: stopped".
export function useServer(opts = {}) {
  const ctx = {};
  before(async () => {
    const o = typeof opts === 'function' ? await opts() : opts;
    // copies the adminPassword getter as a getter
    Object.defineProperties(ctx, Object.getOwnPropertyDescriptors(await startServer(o)));
  });
  after(async () => {
    if (!ctx.stop) return;
    const wasRunning = ctx.running();
    const e = await ctx.stop();
    assert.ok(wasRunning, `the server died during the tests: ${JSON.stringify(e)}\nstderr: ${ctx.stderr().slice(-4000)}`);
    assert.equal(e.code, 0, `tessera serve exit after SIGTERM: ${JSON.stringify(e)}\nstderr: ${ctx.stderr().slice(-4000)}`);
    assert.match(ctx.stdout(), /tessera: stopped/);
    assertNoSanitizerReport(ctx);
  });
  return ctx;
}

// Sanitizer builds (ASan/UBSan) report on stderr; a report is a failure even when the process
// carried on.
export function assertNoSanitizerReport(server) {
  const m = /(ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:)[^\n]*/.exec(server.stderr());
  assert.equal(m, null, `sanitizer report from tessera serve: ${m?.[0]}\n${server.stderr().slice(-4000)}`);
}

// ---------------------------------------------------------------- HTTP

const agent = new http.Agent({ keepAlive: false });
// https:// servers of the tests use self-signed certificates
const tlsAgent = new https.Agent({ keepAlive: false, rejectUnauthorized: false });

const hasHeader = (h, name) => Object.keys(h).some((k) => k.toLowerCase() === name);

// The request headers with the credential that `auth` asks for (see the top of this file):
// undefined/true: defaultToken, else the admin token of the harness-started server at `origin`,
// unless headers already carry an Authorization or Cookie header; false: none; a string: that
// bearer token.
export function withAuth(headers, origin, auth, defaultToken) {
  const h = { ...headers };
  if (auth === false || hasHeader(h, 'authorization')) return h;
  if (typeof auth === 'string') {
    h.Authorization = `Bearer ${auth}`;
    return h;
  }
  if (hasHeader(h, 'cookie')) return h;
  const token = defaultToken ?? tokenOfOrigin.get(origin);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// A raw HTTP(S) request. `target` is an absolute URL or a path (then `origin` gives the origin).
// The path is sent exactly as given (no normalisation). `auth`: see withAuth (by default the
// harness server's admin token; `defaultToken` replaces that default). Resolves {status, headers, body (Buffer), text(), json()}; a
// response that arrives before the request body is fully sent (e.g. 413) is still returned.
export function request(target, { method = 'GET', headers = {}, body = null, origin, timeoutMs = 120000, auth, defaultToken } = {}) {
  let url;
  let pathPart;
  if (/^https?:\/\//.test(target)) {
    const m = /^(https?:\/\/[^/]+)(\/.*)?$/.exec(target);
    url = new URL(m[1]);
    pathPart = m[2] || '/';
  } else {
    url = new URL(origin);
    pathPart = target;
  }
  return new Promise((resolve, reject) => {
    const h = withAuth(headers, url.origin, auth, defaultToken);
    if (body != null && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) {
      h['Content-Length'] = String(Array.isArray(body) ? body.reduce((n, c) => n + c.length, 0) : body.length);
    }
    const tls = url.protocol === 'https:';
    const req = (tls ? https : http).request(
      { host: url.hostname, port: url.port, path: pathPart, method, headers: h, agent: tls ? tlsAgent : agent, insecureHTTPParser: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const b = Buffer.concat(chunks);
          resolve(wrapResponse(res.statusCode, res.headers, b, res.rawHeaders));
        });
        res.on('error', (e) => { clearTimeout(timer); reject(e); });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`request timed out: ${method} ${pathPart}`)), timeoutMs);
    let responded = false;
    req.on('response', () => { responded = true; });
    req.on('error', (e) => {
      // EPIPE/ECONNRESET while still sending after the server already answered: ignore.
      if (responded && (e.code === 'EPIPE' || e.code === 'ECONNRESET')) return;
      clearTimeout(timer);
      reject(e);
    });
    if (body != null) {
      if (Array.isArray(body)) for (const c of body) req.write(c);
      else req.write(body);
    }
    req.end();
  });
}

function wrapResponse(status, headers, body, rawHeaders) {
  return {
    status,
    headers,
    rawHeaders,
    body,
    text: () => body.toString('utf8'),
    json: () => {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch (e) {
        throw new Error(`response is not JSON (status ${status}, content-type ${headers['content-type']}): ${body.toString('utf8', 0, 300)}`);
      }
    },
  };
}

// Bound helpers for one server: get(path, headers), json(path) (asserts 200 and DICOM JSON).
// Requests carry the server's admin token unless `defaults` say otherwise: {auth} as for
// request() (false: no credential; a string: that bearer token) and {headers} added to every
// request (e.g. {Cookie: 'tsr_session=...'}).
export function client(server, { auth, headers: dh = {} } = {}) {
  const defaultToken = server.token ?? undefined;
  const get = (p, headers = {}) => request(p, { origin: server.origin, headers: { ...dh, ...headers }, auth, defaultToken });
  return {
    get,
    request: (p, o = {}) => request(p, { origin: server.origin, auth, defaultToken, ...o, headers: { ...dh, ...(o.headers || {}) } }),
    async json(p, { status = 200, headers = { Accept: 'application/dicom+json' } } = {}) {
      const r = await get(p, headers);
      assert.equal(r.status, status, `GET ${p}: status ${r.status}: ${r.text().slice(0, 500)}`);
      return r.json();
    },
    stow: (files, o = {}) => stow(server, files, { auth, ...o, headers: { ...dh, ...(o.headers || {}) } }),
  };
}

// ---------------------------------------------------------------- sessions

// The `tsr_session=VALUE` pair of a response's Set-Cookie (for a Cookie header), or null.
export function sessionCookie(r) {
  const sc = [].concat(r.headers['set-cookie'] || []);
  for (const c of sc) {
    const m = /^\s*(tsr_session=[^;]*)/.exec(c);
    if (m) return m[1];
  }
  return null;
}

// POST /api/login as a user (no other credential sent). Resolves {r (the response), cookie
// ('tsr_session=...' or null)}. Default: the user admin with the server's first-start password.
export async function login(server, { username = 'admin', password = server.adminPassword, headers = {} } = {}) {
  const r = await request('/api/login', {
    origin: server.origin,
    method: 'POST',
    auth: false,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify({ username, password })),
  });
  return { r, cookie: r.status === 200 ? sessionCookie(r) : null };
}

// POST /api/share/open with a share token (and PIN). Resolves {r, cookie} like login().
export async function openShare(server, token, { pin, headers = {} } = {}) {
  const r = await request('/api/share/open', {
    origin: server.origin,
    method: 'POST',
    auth: false,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify(pin === undefined ? { token } : { token, pin })),
  });
  return { r, cookie: r.status === 200 ? sessionCookie(r) : null };
}

// ---------------------------------------------------------------- multipart

export function randomBoundary() {
  return `tessera-test-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
}

// A multipart/related body of DICOM parts. Returns {body: Buffer[], length, contentType}.
export function multipartBody(buffers, { boundary = randomBoundary(), partType = 'application/dicom', closing = true } = {}) {
  const chunks = [];
  for (const b of buffers) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${partType}\r\n\r\n`, 'latin1'), b, Buffer.from('\r\n', 'latin1'));
  }
  if (closing) chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const length = chunks.reduce((n, c) => n + c.length, 0);
  return { body: chunks, length, boundary, contentType: `multipart/related; type="${partType}"; boundary=${boundary}` };
}

// STOW-RS of the given files (paths or Buffers) in one request.
export async function stow(server, files, { path: p = '/dicomweb/studies', headers = {}, auth } = {}) {
  const buffers = files.map((f) => (Buffer.isBuffer(f) ? f : fs.readFileSync(f)));
  const mp = multipartBody(buffers);
  const r = await request(p, {
    origin: server.origin,
    method: 'POST',
    headers: { 'Content-Type': mp.contentType, Accept: 'application/dicom+json', 'Content-Length': String(mp.length), ...headers },
    body: mp.body,
    timeoutMs: 300000,
    auth,
    defaultToken: server.token ?? undefined,
  });
  return r;
}

// Parses a Content-Type header: {type: 'multipart/related', params: {type, boundary, ...}}.
export function parseContentType(ct) {
  assert.ok(ct, 'missing Content-Type');
  const parts = [];
  let cur = '';
  let inQ = false;
  for (let i = 0; i < ct.length; i++) {
    const c = ct[i];
    if (c === '"') inQ = !inQ;
    if (c === ';' && !inQ) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const type = parts.shift().trim().toLowerCase();
  const params = {};
  for (const p of parts) {
    const i = p.indexOf('=');
    if (i < 0) continue;
    let v = p.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[p.slice(0, i).trim().toLowerCase()] = v;
  }
  return { type, params };
}

// Parses a multipart body strictly (RFC 2046): returns [{headers: {lower-case name: value},
// body: Buffer}]. Throws when the boundary is missing or the close delimiter never comes.
export function parseMultipart(buffer, contentType) {
  const { type, params } = parseContentType(contentType);
  assert.ok(type.startsWith('multipart/'), `not multipart: ${contentType}`);
  const boundary = params.boundary;
  assert.ok(boundary, `no boundary in ${contentType}`);
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const crlfDelim = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let pos;
  if (buffer.subarray(0, delim.length).equals(delim)) pos = 0;
  else {
    pos = buffer.indexOf(crlfDelim);
    if (pos < 0) throw new Error('multipart: first boundary not found');
    pos += 2;
  }
  const parts = [];
  for (;;) {
    pos += delim.length;
    if (buffer[pos] === 0x2d && buffer[pos + 1] === 0x2d) return parts; // close delimiter
    // transport padding, then CRLF
    while (buffer[pos] === 0x20 || buffer[pos] === 0x09) pos++;
    if (buffer[pos] !== 0x0d || buffer[pos + 1] !== 0x0a) throw new Error(`multipart: no CRLF after boundary at ${pos}`);
    pos += 2;
    const hend = buffer.indexOf('\r\n\r\n', pos, 'latin1');
    let headers = {};
    let bodyStart;
    if (buffer[pos] === 0x0d && buffer[pos + 1] === 0x0a) {
      bodyStart = pos + 2; // no headers
    } else {
      if (hend < 0) throw new Error('multipart: part headers not terminated');
      headers = Object.fromEntries(
        buffer
          .toString('latin1', pos, hend)
          .split('\r\n')
          .map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      bodyStart = hend + 4;
    }
    const next = buffer.indexOf(crlfDelim, bodyStart);
    if (next < 0) throw new Error('multipart: close delimiter missing');
    parts.push({ headers, body: buffer.subarray(bodyStart, next) });
    pos = next + 2;
  }
}

// ---------------------------------------------------------------- DICOM JSON

// Tag keys are 8 upper-case hex digits.
export const value = (obj, tag) => obj?.[tag]?.Value;
export const first = (obj, tag) => obj?.[tag]?.Value?.[0];
// A PN value's alphabetic string.
export const pn = (obj, tag = '00100010') => first(obj, tag)?.Alphabetic;
export const uidsOf = (arr, tag) => arr.map((o) => first(o, tag)).sort();

export const T = {
  StudyDate: '00080020',
  ModalitiesInStudy: '00080061',
  Modality: '00080060',
  RetrieveURL: '00081190',
  ReferencedSOPSequence: '00081199',
  FailedSOPSequence: '00081198',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
  ErrorComment: '00000902',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDescription: '00081030',
  PatientName: '00100010',
  PatientID: '00100020',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  Rows: '00280010',
  Columns: '00280011',
  NumberOfFrames: '00280008',
  PixelData: '7FE00010',
};

// The Warning header(s) of a response as one string ('' when none).
export function warningOf(r) {
  const w = r.headers.warning;
  return Array.isArray(w) ? w.join(', ') : w || '';
}

// Asserts a JSON error body {"status":N,"error":"...","message":"..."} with the given status.
export function assertJsonError(r, status, what = '') {
  assert.equal(r.status, status, `${what} status: got ${r.status}: ${r.text().slice(0, 300)}`);
  assert.match(r.headers['content-type'] || '', /json/, `${what} error content-type`);
  const j = r.json();
  assert.equal(j.status, status, `${what} JSON status field`);
  assert.equal(typeof j.error, 'string', `${what} JSON error field`);
  assert.equal(typeof j.message, 'string', `${what} JSON message field`);
  assert.ok(j.message.length > 0, `${what} message is empty`);
  return j;
}
