#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// soak.mjs: a long mixed load against one `tessera serve`, watching that it stays healthy. Not a
// test (it runs for minutes); rerun it after changes to the server's resource handling.
//
// The server gets the demo studies (a 120-slice CT, a radiograph, a colour cine) and a cache
// of --cache-mb (default 256: room for the CT volume, small enough that eviction runs all the
// time). `--clients` keep-alive clients (default 8) then loop over a mix, each request checked for its expected status:
//   tiles at random windows (a window repeats now and then: hits and misses), whole rendered
//   frames, thumbnails, QIDO at three levels, series metadata, MPR planes (sagittal, coronal,
//   oblique) at random positions, STOW of new instances (a demo CT file with a fresh SOP
//   Instance UID), share links opened and used by a share session, and refused requests (no
//   credential, another study's UID through the share session, malformed parameters, a
//   malformed upload).
// Every 10 s it samples the server's resident memory, open file descriptors and threads; every
// minute it prints the requests, their p50/p95/p99 latency and any unexpected answer. At the end:
// the verdict, checked as
//   - no unexpected status (no 5xx, no wrong 2xx/4xx) and the server still running;
//   - file descriptors and threads at the end no more than at the end of the first minute + 8;
//   - resident memory in the last third no more than 10% above the middle third (no growth once
//     the caches are full), and never above the cache budget + 256 MiB.
// Exit status 0 when all hold.
//
//   node benchmarks/soak.mjs [--minutes 10] [--clients 8] [--cache-mb 256] [--tessera build/tessera]
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const MINUTES = Number(opt('minutes', 10));
const CLIENTS = Number(opt('clients', 8));
const CACHE_MB = Number(opt('cache-mb', 256));
const TESSERA = path.resolve(opt('tessera', process.env.TESSERA_BIN || path.join(ROOT, 'build/tessera')));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-soak-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const TOKEN = crypto.randomBytes(32).toString('base64url');

// ------------------------------------------------------------------ server
console.error(`demo studies into ${work} ...`);
execFileSync(TESSERA, ['demo', path.join(work, 'demo')], { stdio: 'ignore' });
const dataDir = path.join(work, 'data');
execFileSync(TESSERA, ['import', '--data', dataDir, path.join(work, 'demo')], { stdio: 'ignore' });
const proc = spawn(TESSERA, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--cache-mb', String(CACHE_MB), '--log-level', '1'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TESSERA_ADMIN_TOKEN: TOKEN } });
let stderr = '';
proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
let exited = null;
proc.on('exit', (code, signal) => { exited = { code, signal }; });
const port = await new Promise((resolve, reject) => {
  let out = '';
  proc.stdout.on('data', (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    if (m) resolve(Number(m[1]));
  });
  proc.on('exit', () => reject(new Error(`tessera serve exited: ${out}${stderr}`)));
});

// ------------------------------------------------------------------ HTTP
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS * 2 });
function request(method, p, { headers = {}, body = null, auth = true } = {}) {
  return new Promise((resolve) => {
    const h = { ...headers };
    if (auth === true) h.Authorization = `Bearer ${TOKEN}`;
    else if (auth) h.Cookie = auth;
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks),
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
      }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.message, ms: Number(process.hrtime.bigint() - t0) / 1e6, body: Buffer.alloc(0), headers: {} }));
    if (body) req.write(body);
    req.end();
  });
}
const json = async (p) => JSON.parse((await request('GET', p, { headers: { Accept: 'application/dicom+json' } })).body);
const v = (o, tag) => o[tag]?.Value?.[0];

// ------------------------------------------------------------------ what is stored
const studies = await json('/dicomweb/studies');
const ct = studies.find((s) => v(s, '00080061') === 'CT' || JSON.stringify(s['00080061']).includes('CT'));
const other = studies.find((s) => s !== ct);
const stUid = v(ct, '0020000D');
const otherUid = v(other, '0020000D');
const ctSeries = v((await json(`/dicomweb/studies/${stUid}/series`))[0], '0020000E');
const ctInst = (await json(`/dicomweb/studies/${stUid}/series/${ctSeries}/instances`)).map((i) => v(i, '00080018'));
const otherSeries = v((await json(`/dicomweb/studies/${otherUid}/series`))[0], '0020000E');
const otherInst = v((await json(`/dicomweb/studies/${otherUid}/series/${otherSeries}/instances`))[0], '00080018');
const ctFile = execFileSync('find', [path.join(work, 'demo'), '-type', 'f', '-path', '*ct*']).toString().trim().split('\n')[0];
const ctBytes = fs.readFileSync(ctFile);
console.error(`CT study ${stUid}: ${ctInst.length} instances; serving on port ${port}; ${MINUTES} min, ${CLIENTS} clients`);

// A demo CT file with a new SOP Instance UID, in a series of its own (so the CT volume stays as
// it is): UIDs of the same lengths, so no element length changes.
const freshUid = (len) => {
  let u = '';
  while (u.length !== len || u.endsWith('.')) u = `2.25.${BigInt(`0x${crypto.randomBytes(20).toString('hex')}`)}`.slice(0, len);
  return u;
};
const soakSeries = freshUid(ctSeries.length);
function replaceAll(b, from, to) {
  const f = Buffer.from(from);
  for (let i = b.indexOf(f); i >= 0; i = b.indexOf(f, i + 1)) b.write(to, i, 'latin1');
}
const ctFileSop = ctInst.find((u) => ctBytes.indexOf(Buffer.from(u)) >= 0);
function newInstance() {
  const b = Buffer.from(ctBytes);
  const sop = ctFileSop;
  replaceAll(b, sop, freshUid(sop.length));
  replaceAll(b, ctSeries, soakSeries);
  return b;
}
function multipart(parts) {
  const boundary = crypto.randomBytes(12).toString('hex');
  const chunks = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

// ------------------------------------------------------------------ the mix
const rnd = (n) => Math.floor(Math.random() * n);
const pick = (a) => a[rnd(a.length)];
const win = () => `${pick([40, 50, 300, -600, 400])},${pick([80, 350, 400, 1500, 2000]) + (Math.random() < 0.3 ? rnd(400) : 0)}`;
const inst = () => `/dicomweb/studies/${stUid}/series/${ctSeries}/instances/${pick(ctInst)}`;
let shareCookie = null;
let shareId = null;

async function newShare() {
  const r = await request('POST', '/api/shares', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ study: stUid, expires_in_hours: 1, max_opens: 1000 }),
  });
  if (r.status !== 201) return { status: r.status, expect: 201 };
  const { token, id } = JSON.parse(r.body);
  const o = await request('POST', '/api/share/open', { auth: false, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }) });
  if (o.status === 200) {
    const old = shareId;
    shareCookie = /tsr_session=[^;]+/.exec(o.headers['set-cookie']?.[0] || '')?.[0];
    shareId = id;
    if (old) {
      const d = await request('DELETE', `/api/shares/${old}`);
      if (d.status !== 204) return { ...d, expect: 204 };
    }
  }
  return { status: o.status, ms: r.ms + o.ms, expect: 200 };
}

const MIX = [
  [30, 'tile', () => {
    const level = rnd(2);
    const q = pick(['85', 'lossless']);
    return [`${inst()}/frames/1/tiles/${win()}/${q}/${level}/${rnd(2 - level)}/${rnd(2 - level)}.${q === '85' ? 'jpg' : 'png'}`, 200];
  }],
  [12, 'rendered', () => [`${inst()}/rendered?window=${win()}&viewport=${pick([256, 512])},${pick([256, 512])}`, 200]],
  [8, 'thumbnail', () => [`${inst()}/thumbnail`, 200]],
  [8, 'qido', () => [pick(['/dicomweb/studies', `/dicomweb/studies/${stUid}/series`, `/dicomweb/studies/${stUid}/series/${ctSeries}/instances?limit=50&offset=${rnd(100)}`]), 200]],
  [6, 'metadata', () => [`/dicomweb/studies/${stUid}/series/${ctSeries}/metadata`, 200]],
  [5, 'mpr', () => {
    const plane = pick(['sagittal', 'coronal', `oblique&point=0,0,${rnd(200) - 100}&normal=1,0,1&up=0,0,1`]);
    const pos = plane.startsWith('oblique') ? '' : `&position=${rnd(200) - 100}`;
    const slab = Math.random() < 0.3 ? `&slab=10,${pick(['mip', 'minip', 'average'])}` : '';
    return [`/dicomweb/studies/${stUid}/series/${ctSeries}/mpr/rendered?plane=${plane}${pos}${slab}&window=${win()}`, 200];
  }],
  [6, 'share', () => [async () => {
    if (!shareCookie || Math.random() < 0.05) return newShare();
    const cookie = shareCookie;
    const r = await request('GET', `${inst()}/frames/1/tiles/40,400/85/1/0/0.jpg`, { auth: cookie });
    // a link revoked while this request was on its way (replaced by a newer one) says so
    return { ...r, expect: r.status === 410 && cookie !== shareCookie ? 410 : 200 };
  }]],
  [3, 'stow', () => [async () => {
    const m = multipart([newInstance()]);
    const r = await request('POST', '/dicomweb/studies', { headers: { 'Content-Type': m.type }, body: m.body });
    return { ...r, expect: 200 };
  }]],
  [6, 'refused', () => [async () => {
    const k = rnd(5);
    if (k === 0) return { ...(await request('GET', '/dicomweb/studies', { auth: false })), expect: 401 };
    if (k === 1 && shareCookie) {
      const cookie = shareCookie;
      const r = await request('GET', `/dicomweb/studies/${otherUid}/series/${otherSeries}/instances/${otherInst}/rendered`, { auth: cookie });
      return { ...r, expect: r.status === 410 && cookie !== shareCookie ? 410 : 404 };
    }
    if (k === 2) return { ...(await request('GET', `${inst()}/rendered?window=abc`)), expect: 400 };
    if (k === 3) return { ...(await request('GET', `/dicomweb/studies/1.2.3.999/series`)), expect: 404 };
    const bad = multipart([crypto.randomBytes(2000)]);
    return { ...(await request('POST', '/dicomweb/studies', { headers: { 'Content-Type': bad.type }, body: bad.body })), expect: 409 };
  }]],
];
const TOTAL = MIX.reduce((s, m) => s + m[0], 0);
function draw() {
  let x = rnd(TOTAL);
  for (const m of MIX) { if ((x -= m[0]) < 0) return m; }
  return MIX[0];
}

// ------------------------------------------------------------------ run
const pct = (a, p) => (a.length ? [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] : NaN);
let minute = { lat: {}, n: 0, bad: [] };
const badAll = [];
let total = 0;
const samples = [];
const t0 = Date.now();
const end = t0 + MINUTES * 60000;

function sample() {
  try {
    const st = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(st)[1]) / 1024;
    const threads = Number(/Threads:\s+(\d+)/.exec(st)[1]);
    const fds = fs.readdirSync(`/proc/${proc.pid}/fd`).length;
    samples.push({ t: (Date.now() - t0) / 1000, rss, threads, fds });
  } catch { /* gone: reported below */ }
}
sample();
const sampler = setInterval(sample, 10000);
const reporter = setInterval(() => {
  const m = minute;
  minute = { lat: {}, n: 0, bad: [] };
  const s = samples[samples.length - 1] || {};
  const parts = Object.entries(m.lat).map(([k, a]) => `${k} ${a.length} ${pct(a, 50).toFixed(1)}/${pct(a, 95).toFixed(1)}/${pct(a, 99).toFixed(1)}`);
  console.log(`min ${Math.round((Date.now() - t0) / 60000)}: ${m.n} req (${(m.n / 60).toFixed(0)}/s), rss ${s.rss?.toFixed(0)} MiB, fds ${s.fds}, threads ${s.threads}, unexpected ${m.bad.length}`);
  console.log(`   ms p50/p95/p99: ${parts.join('; ')}`);
  for (const b of m.bad.slice(0, 5)) console.log(`   unexpected: ${b}`);
}, 60000);

async function client() {
  while (Date.now() < end && !exited) {
    const [, kind, make] = draw();
    const [what, expect] = make();
    const r = typeof what === 'function' ? await what() : { ...(await request('GET', what)), expect };
    total++;
    minute.n++;
    (minute.lat[kind] ||= []).push(r.ms ?? 0);
    if (r.status !== r.expect) {
      const msg = `${kind}: ${r.status} (expected ${r.expect}) ${typeof what === 'string' ? what : ''} ${String(r.body || r.error || '').slice(0, 160)}`;
      minute.bad.push(msg);
      badAll.push(msg);
    }
  }
}
await Promise.all(Array.from({ length: CLIENTS }, client));
clearInterval(sampler);
clearInterval(reporter);
sample();

// ------------------------------------------------------------------ verdict
const running = !exited;
proc.kill('SIGTERM');
await new Promise((r) => (exited ? r() : proc.on('exit', r)));
const third = (k) => samples.filter((s) => s.t >= (k * MINUTES * 60) / 3 && s.t < ((k + 1) * MINUTES * 60) / 3);
const mean = (a, f) => a.reduce((s, x) => s + f(x), 0) / Math.max(1, a.length);
const mid = mean(third(1), (s) => s.rss);
const last = mean(third(2), (s) => s.rss);
const afterMin1 = samples.find((s) => s.t >= 60) || samples[0];
const fin = samples[samples.length - 1];
const maxRss = Math.max(...samples.map((s) => s.rss));
const checks = [
  ['server running to the end', running],
  [`no unexpected answer (${badAll.length} of ${total})`, badAll.length === 0],
  [`fds ${fin.fds} <= ${afterMin1.fds} + 8`, fin.fds <= afterMin1.fds + 8],
  [`threads ${fin.threads} <= ${afterMin1.threads} + 8`, fin.threads <= afterMin1.threads + 8],
  [`RSS last third ${last.toFixed(0)} MiB <= 1.10 x middle third ${mid.toFixed(0)} MiB`, last <= mid * 1.1],
  [`RSS max ${maxRss.toFixed(0)} MiB <= cache ${CACHE_MB} + 256 MiB`, maxRss <= CACHE_MB + 256],
];
console.log(`\nsoak: ${total} requests in ${MINUTES} min (${(total / MINUTES / 60).toFixed(0)}/s), ${CLIENTS} clients, --cache-mb ${CACHE_MB}`);
for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
for (const b of badAll.slice(0, 10)) console.log(`  unexpected: ${b}`);
if (/ERROR: AddressSanitizer|runtime error:/.test(stderr)) {
  console.log('  FAIL sanitizer report on stderr');
  checks.push(['sanitizer', false]);
}
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
